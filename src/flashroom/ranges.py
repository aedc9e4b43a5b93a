"""Half-open address ranges, size parsing and alignment helpers.

Ranges are half-open everywhere: ``end`` is exclusive, as ``module_end_address`` is in Device OS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flashroom.errors import UsageError

_SIZE_RE = re.compile(r"^\s*(0[xX][0-9a-fA-F]+|\d+)\s*([kKmM]?)(?:[iI]?[bB])?\s*$")


def parse_size(text: str | int) -> int:
    """Parse a size such as ``"128K"``, ``"256k"``, ``"1M"``, ``"0x20000"`` or ``"4096"``.

    K and M are binary (1024, 1048576), as in every flash datasheet. A size never exceeds the
    32-bit address space (4G) of the microcontrollers flashroom models.

    Raises:
        UsageError: the text is not a size, or it is larger than the 32-bit address space.
    """
    if isinstance(text, int):
        if text < 0:
            raise UsageError(f"size must not be negative, got {text}")
        value = text
    else:
        m = _SIZE_RE.match(text)
        if not m:
            raise UsageError(
                f"invalid size {text!r}: expected a number with an optional K or M suffix "
                "(e.g. 200K, 0x20000, 131072)"
            )
        value = int(m.group(1), 0) * {"": 1, "K": 1024, "M": 1024 * 1024}[m.group(2).upper()]
    if value > MAX_SIZE:
        raise UsageError(
            f"size {text!r} ({value} bytes) is larger than the 32-bit address space: expected "
            "at most 4096M (0x100000000)"
        )
    return value


#: The largest size :func:`parse_size` accepts: the whole 32-bit address space.
MAX_SIZE = 1 << 32


def parse_addr(text: str | int) -> int:
    """Parse an address such as ``"0x08080000"`` (hex or decimal, 32-bit).

    Raises:
        UsageError: not a number, or outside 0..0xffffffff.
    """
    if isinstance(text, int):
        value = text
    else:
        try:
            value = int(text.strip(), 0)
        except ValueError:
            raise UsageError(
                f"invalid address {text!r}: expected a number such as 0x08080000"
            ) from None
    if value < 0:
        raise UsageError(
            f"invalid address {text!r}: negative; expected 0x00000000..0xffffffff (e.g. 0x08080000)"
        )
    if value > 0xFFFFFFFF:
        raise UsageError(
            f"address 0x{value:x} is outside the 32-bit address space: expected "
            "0x00000000..0xffffffff"
        )
    return value


def fmt_addr(addr: int) -> str:
    """Format an address as ``0x%08x``."""
    return f"0x{addr:08x}"


def fmt_size(size: int) -> str:
    """Human size: ``128K``, ``1M``, or bytes when not a whole KiB."""
    if size and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)}M"
    if size and size % 1024 == 0:
        return f"{size // 1024}K"
    return f"{size}B"


def align_up(value: int, alignment: int) -> int:
    """Round ``value`` up to a multiple of ``alignment`` (> 0)."""
    return -(-value // alignment) * alignment


def align_down(value: int, alignment: int) -> int:
    """Round ``value`` down to a multiple of ``alignment`` (> 0)."""
    return value - value % alignment


@dataclass(frozen=True, order=True)
class AddrRange:
    """A half-open address range ``[start, end)``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise UsageError(
                f"range end {fmt_addr(self.end)} is below its start {fmt_addr(self.start)}"
            )

    @classmethod
    def sized(cls, start: int, size: int) -> AddrRange:
        """The range of ``size`` bytes starting at ``start``."""
        return cls(start, start + size)

    @property
    def size(self) -> int:
        return self.end - self.start

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, int) and self.start <= addr < self.end

    def contains_range(self, other: AddrRange) -> bool:
        """True when ``other`` lies wholly inside this range."""
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: AddrRange) -> bool:
        """True when the two ranges share at least one byte."""
        return self.start < other.end and other.start < self.end

    def intersection(self, other: AddrRange) -> AddrRange | None:
        """The shared part of the two ranges, or None."""
        lo, hi = max(self.start, other.start), min(self.end, other.end)
        return AddrRange(lo, hi) if lo < hi else None

    def __str__(self) -> str:
        return f"{fmt_addr(self.start)}-{fmt_addr(self.end)}"
