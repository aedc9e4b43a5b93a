"""Independent checkers the power-loss sweep applies after every cut point.

These read the raw flash bytes and re-derive what Device OS would see, without going through the
emulator's own DCT or bootloader code, so a bug there cannot hide itself:

* :func:`read_dcd` applies the Electron DCD selection rules of spec 8.1 to the two DCT sectors;
* :class:`ErasePlan` is how often each sector may be erased, which each scenario computes
  from the scenario alone (:mod:`flashroom.scenarios.sweep_scenarios`; spec 4.1 for the
  receive erase, spec 4.5 for the sector-wise copy, spec 8.1 for DCT writes).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from flashroom.deviceos.gen2 import (
    DCD_CRC_OFFSET,
    DCD_DATA_OFFSET,
    DCD_FLAGS_OFFSET,
    DCD_LENGTH,
    DCD_WATERMARK,
    DCT_FLASH_MODULES_OFFSET,
    FLASH_MODULE_SLOT_SIZE,
    FLASH_MODULES_COUNT,
    MAGIC_FACTORY,
    MAGIC_PENDING,
    MAGIC_UNUSED,
    SEAL_INVALID_V2,
    SEAL_VALID,
)

# The raw layout facts (addresses, watermark, seals, offsets) come from flashroom.deviceos; the
# selection algorithm below is re-derived independently of flashroom.emu.dct.


@dataclass(frozen=True)
class DcdCopy:
    """One DCD sector as the selection rules see it (spec 8.1)."""

    header_ok: bool
    seal: int
    crc_ok: bool
    counter: int


@dataclass(frozen=True)
class DcdState:
    """The outcome of the DCD selection rules on the raw flash (spec 8.1).

    Attributes:
        current: 0 or 1 (which sector Device OS would read), or None when neither header is
            valid (Device OS would then re-initialise an empty DCT: every key and setting lost).
        crc_ok: the selected copy's CRC is valid.
        app_data: the selected copy's application data (16344 bytes), or b"".
        slot_magics: the magic of each of the 5 flash-module slots (spec 4.3).
    """

    current: int | None
    crc_ok: bool
    app_data: bytes
    slot_magics: tuple[int, ...]
    slots_offset: int = DCT_FLASH_MODULES_OFFSET

    @property
    def valid(self) -> bool:
        """A copy was selected and its CRC checks."""
        return self.current is not None and self.crc_ok

    @property
    def pending_slots(self) -> tuple[int, ...]:
        """Indices (1-4) of slots that still hold a pending copy (magic 0xABCD)."""
        return tuple(i for i, m in enumerate(self.slot_magics) if i >= 1 and m == MAGIC_PENDING)

    def slot_table_problems(self) -> list[str]:
        """Slot magics outside what Device OS ever writes (spec 4.3)."""
        out = []
        for i, magic in enumerate(self.slot_magics):
            allowed = (MAGIC_UNUSED, MAGIC_FACTORY) if i == 0 else (MAGIC_UNUSED, MAGIC_PENDING)
            if magic not in allowed:
                out.append(
                    f"slot {i} magic 0x{magic:04x} (expected "
                    + " or ".join(f"0x{a:04x}" for a in allowed)
                    + ")"
                )
        return out

    def app_data_outside_slots(self) -> bytes:
        """Application data with the slot table masked out (for 'nothing else changed')."""
        d = self.app_data
        lo, hi = self.slots_offset, self.slots_offset + FLASH_MODULE_SLOT_SIZE * FLASH_MODULES_COUNT
        return d[:lo] + d[hi:] if d else b""


def _copy(sector: bytes) -> DcdCopy:
    watermark, seal = struct.unpack_from("<II", sector, 0)
    header_ok = watermark == DCD_WATERMARK and seal in (SEAL_VALID, SEAL_INVALID_V2)
    (stored,) = struct.unpack_from("<I", sector, DCD_CRC_OFFSET)
    crc = zlib.crc32(sector[DCD_DATA_OFFSET:DCD_CRC_OFFSET])
    # The footer CRC is written as a native (little-endian) word by the DCD code; accept the
    # byte-reversed form too, because the CRC *convention* is not what this checker tests.
    crc_ok = stored in (crc, int.from_bytes(crc.to_bytes(4, "little"), "big"))
    counter = sector[DCD_FLAGS_OFFSET] & 0x3
    return DcdCopy(header_ok, seal, crc_ok, counter)


def read_dcd(s0: bytes, s1: bytes, app_offset: int = DCD_DATA_OFFSET) -> DcdState:
    """Apply the DCD selection rules (spec 8.1) to the raw bytes of both DCT sectors.

    Args:
        s0: the 16 KB at 0x08004000 (DCD sector index 0).
        s1: the 16 KB at 0x08008000 (DCD sector index 1).
        app_offset: where the application DCT starts in a sector: 8 on Electron (spec 8.1);
            the emulator's Photon/P1 choice puts it at 7548 (spec 4.3 physical addresses).
    """
    copies = (_copy(s0), _copy(s1))
    sectors = (s0, s1)
    primary = next((i for i, c in enumerate(copies) if c.header_ok), None)
    if primary is None:
        return DcdState(None, False, b"", ())
    other = 1 - primary
    p, o = copies[primary], copies[other]
    if o.header_ok and o.seal == SEAL_VALID:
        if p.crc_ok != o.crc_ok:
            current = primary if p.crc_ok else other
        elif p.crc_ok:
            # spec 8.1 rule 2: 2-bit counters, (a+1)&3 == b picks b.
            a, b = p.counter, o.counter
            if (a + 1) & 3 == b:
                current = other
            elif (b + 1) & 3 == a:
                current = primary
            else:
                current = primary
        else:
            current = 1  # spec 8.1: neither CRC valid -> sector 1
    elif o.header_ok and o.seal == SEAL_INVALID_V2:
        current = primary if p.crc_ok else other
    else:
        current = primary
    chosen = sectors[current]
    data = bytes(chosen[DCD_DATA_OFFSET : DCD_DATA_OFFSET + DCD_LENGTH])
    slots = app_offset - DCD_DATA_OFFSET + DCT_FLASH_MODULES_OFFSET
    magics = tuple(
        struct.unpack_from("<H", data, slots + FLASH_MODULE_SLOT_SIZE * i)[0]
        for i in range(FLASH_MODULES_COUNT)
    )
    return DcdState(current, copies[current].crc_ok, data, magics, slots)


@dataclass(frozen=True)
class ErasePlan:
    """How often each sector may be erased in one scenario run, and why.

    ``clean[s]`` is the planned count for an uninterrupted run; ``per_cut[s]`` is what each power
    cut may add (an interrupted copy restarts from its first sector, spec 4.5; an interrupted or
    repeated DCT write costs one more alternate-sector erase, spec 8.1). ``dct_sectors`` share
    one budget because DCT writes alternate between the two copies.
    """

    clean: Mapping[int, int]
    per_cut: Mapping[int, int]
    dct_sectors: tuple[int, ...]
    dct_writes: int
    dct_per_cut: int
    explanation: tuple[str, ...]

    def bound(self, sector: int, cuts: int) -> int:
        """The most erases allowed on a non-DCT ``sector`` after ``cuts`` power cuts."""
        return self.clean.get(sector, 0) + cuts * self.per_cut.get(sector, 0)

    def dct_bound(self, cuts: int) -> int:
        """The most erases allowed on the DCT sectors together after ``cuts`` power cuts."""
        return self.dct_writes + cuts * self.dct_per_cut

    def violations(self, erases: Mapping[int, int], cuts: int) -> list[str]:
        """Human-readable budget overruns for the per-sector ``erases`` of one cut point."""
        out = []
        dct_total = 0
        for sector, count in sorted(erases.items()):
            if not count:
                continue
            if sector in self.dct_sectors:
                dct_total += count
                continue
            limit = self.bound(sector, cuts)
            if count > limit:
                out.append(f"sector {sector} erased {count}x (plan allows {limit})")
        if dct_total > self.dct_bound(cuts):
            out.append(
                f"DCT sectors {'+'.join(map(str, self.dct_sectors))} erased {dct_total}x "
                f"(plan allows {self.dct_bound(cuts)})"
            )
        return out

    def to_json(self) -> dict[str, object]:
        """Stable JSON form for reports."""
        return {
            "clean": {str(k): v for k, v in sorted(self.clean.items())},
            "per_cut": {str(k): v for k, v in sorted(self.per_cut.items())},
            "dct_sectors": list(self.dct_sectors),
            "dct_writes": self.dct_writes,
            "dct_per_cut": self.dct_per_cut,
            "explanation": list(self.explanation),
        }
