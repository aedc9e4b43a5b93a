"""Flash geometry of the chips flashroom knows, as frozen data.

A chip is a list of sector spans ``(start, sector_size, count)`` (pyOCD's sector spans), an erased
value, a program unit and datasheet timing. One registry (:data:`CHIPS`) feeds CLI choices and test
parametrisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from flashroom.errors import UsageError
from flashroom.ranges import AddrRange, fmt_addr

KiB = 1024


@dataclass(frozen=True)
class SectorSpan:
    """``count`` consecutive sectors of ``size`` bytes starting at ``start``."""

    start: int
    size: int
    count: int


@dataclass(frozen=True)
class Sector:
    """One erasable sector: its index on the chip and its address range."""

    index: int
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def range(self) -> AddrRange:
        return AddrRange(self.start, self.end)


@dataclass(frozen=True)
class Timing:
    """Erase/program times in seconds, typical and maximum, with their source.

    ``erase_s`` maps a sector size in bytes to ``(typical, maximum)``.
    """

    erase_s: dict[int, tuple[float, float]]
    program_word_s: tuple[float, float]
    source: str

    def erase(self, sector_size: int, worst: bool = False) -> float:
        typ, mx = self.erase_s[sector_size]
        return mx if worst else typ

    def program_words(self, words: int, worst: bool = False) -> float:
        typ, mx = self.program_word_s
        return words * (mx if worst else typ)


@dataclass(frozen=True)
class FlashChip:
    """Internal flash of one MCU.

    Attributes:
        name: registry key (``stm32f205xg``).
        base: first flash address.
        spans: sector spans in address order.
        erased_value: the byte value an erase leaves (0xFF on NOR).
        program_unit: bytes per program operation as the firmware uses it (4: 32-bit words).
        timing: datasheet erase/program times.
        source: where the sector table comes from.
    """

    name: str
    description: str
    base: int
    spans: tuple[SectorSpan, ...]
    erased_value: int
    program_unit: int
    timing: Timing
    source: str
    aliases: tuple[str, ...] = field(default=())

    @cached_property
    def sectors(self) -> tuple[Sector, ...]:
        out: list[Sector] = []
        addr = self.base
        for span in self.spans:
            if span.start != addr:
                raise UsageError(f"{self.name}: sector span at {fmt_addr(span.start)} leaves a gap")
            for _ in range(span.count):
                out.append(Sector(len(out), addr, span.size))
                addr += span.size
        return tuple(out)

    @property
    def size(self) -> int:
        return sum(s.size * s.count for s in self.spans)

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def range(self) -> AddrRange:
        return AddrRange(self.base, self.end)

    def sector_at(self, addr: int) -> Sector:
        """The sector containing ``addr``.

        Raises:
            UsageError: the address is not in this chip's flash.
        """
        if not self.base <= addr < self.end:
            raise UsageError(
                f"address {fmt_addr(addr)} is outside {self.name} flash "
                f"{fmt_addr(self.base)}-{fmt_addr(self.end)}"
            )
        for s in self.sectors:
            if addr < s.end:
                return s
        raise AssertionError("unreachable")  # pragma: no cover

    def sectors_in(self, rng: AddrRange) -> tuple[Sector, ...]:
        """Every sector that shares at least one byte with ``rng``."""
        return tuple(s for s in self.sectors if s.start < rng.end and rng.start < s.end)

    def is_sector_aligned(self, rng: AddrRange) -> bool:
        """True when ``rng`` starts and ends on sector boundaries."""
        bounds = {s.start for s in self.sectors} | {self.end}
        return rng.start in bounds and rng.end in bounds


# RM0033 / DS6329 (STM32F205xx) and Device OS flash_mal.c:43-71 (spec 1.1): 4x16K, 1x64K, 7x128K.
# Timing: STM32F205 datasheet, x32 parallelism (spec 8.7): typical / maximum.
STM32F205XG = FlashChip(
    name="stm32f205xg",
    description="STM32F205xG, 1 MB internal flash (Photon, P1, Electron, E Series)",
    base=0x08000000,
    spans=(
        SectorSpan(0x08000000, 16 * KiB, 4),
        SectorSpan(0x08010000, 64 * KiB, 1),
        SectorSpan(0x08020000, 128 * KiB, 7),
    ),
    erased_value=0xFF,
    program_unit=4,
    timing=Timing(
        erase_s={16 * KiB: (0.250, 0.500), 64 * KiB: (0.500, 1.100), 128 * KiB: (1.0, 2.0)},
        program_word_s=(16e-6, 100e-6),
        source="ST STM32F205xx datasheet (DS6329), x32 parallelism; docs/device-os.md#timing",
    ),
    source="docs/device-os.md#maps; particle-iot/device-os@v2.3.1:platform/MCU/STM32F2xx/"
    "SPARK_Firmware_Driver/src/flash_mal.c:43-71",
    aliases=("stm32f205", "stm32f2"),
)

# nRF52840 product specification v1.7: 256 pages of 4 KB; tERASEPAGE 85 ms max, tWRITE 41 us max
# (typical erase ~ 85 ms is the spec's only figure; typical write 41 us likewise).
NRF52840 = FlashChip(
    name="nrf52840",
    description="nRF52840, 1 MB internal flash in 4 KB pages (Argon, Boron, SoMs: Gen3)",
    base=0x00000000,
    spans=(SectorSpan(0x00000000, 4 * KiB, 256),),
    erased_value=0xFF,
    program_unit=4,
    timing=Timing(
        erase_s={4 * KiB: (0.085, 0.085)},
        program_word_s=(41e-6, 41e-6),
        source="Nordic nRF52840 Product Specification v1.7, NVMC electrical specification",
    ),
    source="Nordic nRF52840 Product Specification v1.7, NVMC; docs/device-os.md#gen3",
)

CHIPS: dict[str, FlashChip] = {c.name: c for c in (STM32F205XG, NRF52840)}


def get_chip(name: str) -> FlashChip:
    """Look a chip up by name or alias.

    Raises:
        UsageError: unknown chip.
    """
    key = name.lower()
    for chip in CHIPS.values():
        if key == chip.name or key in chip.aliases:
            return chip
    raise UsageError(f"unknown chip {name!r}: expected one of {', '.join(CHIPS)}")
