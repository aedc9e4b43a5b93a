"""Independent checkers the power-loss sweep applies after every cut point.

These read the raw flash bytes and re-derive what Device OS would see, without going through the
emulator's own DCT or bootloader code, so a bug there cannot hide itself:

* :func:`read_dcd` applies the Electron DCD selection rules of spec 8.1 to the two DCT sectors;
* :func:`erase_plan` computes, from the scenario alone, how often each sector may be erased
  (spec 4.1 for the receive erase, spec 4.5 for the sector-wise copy, spec 8.1 for DCT writes).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from flashroom.geometry import FlashChip

# spec 8.1: Electron DCD layout (16 KB sectors at 0x08004000 and 0x08008000).
DCD_ADDRS = (0x08004000, 0x08008000)
DCD_SECTOR_SIZE = 0x4000
DCD_WATERMARK = 0x1E1C279A
SEAL_VALID = 0xEDA15E00
SEAL_INVALID_V2 = 0x69A00C00
DCD_DATA_OFFSET = 8
DCD_DATA_LENGTH = 16344
DCD_FLAGS_OFFSET = 0x3FF0
DCD_CRC_OFFSET = 0x3FFC

# spec 4.3: flash_modules[5] at app-DCT offset 0xB24, 20 bytes per slot.
SLOTS_OFFSET = 0xB24
SLOT_SIZE = 20
SLOT_COUNT = 5
MAGIC_UNUSED = 0xFFFF
MAGIC_PENDING = 0xABCD
MAGIC_FACTORY = 0x0FAC


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
    slots_offset: int = SLOTS_OFFSET

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
        lo, hi = self.slots_offset, self.slots_offset + SLOT_SIZE * SLOT_COUNT
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
    data = bytes(chosen[DCD_DATA_OFFSET : DCD_DATA_OFFSET + DCD_DATA_LENGTH])
    slots = app_offset - DCD_DATA_OFFSET + SLOTS_OFFSET
    magics = tuple(
        struct.unpack_from("<H", data, slots + SLOT_SIZE * i)[0] for i in range(SLOT_COUNT)
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


OTA_SCRATCH_ADDR = 0x080C0000
OTA_ERASE_UNIT = 0x20000  # spec 4.1: FLASH_EraseMemory counts sectors in 128 KB units


def erase_plan(chip: FlashChip, scenario: str, module_start: int, module_size: int) -> ErasePlan:
    """The sector-erase budget of ``scenario`` for a module of ``module_size`` bytes.

    * ``user-ota`` / ``system-ota``: FLASH_Begin erases ``ceil(len / 128K)`` sectors from
      0x080C0000, once (spec 4.1 #2.3; the sweep never retries the transfer). The bootloader
      erases every destination sector once per copy attempt (spec 4.5); a power cut can cause one
      more attempt. Two DCT writes: the slot record (spec 4.2 #3) and the slot clear
      (spec 4.5 #2.4); each DCT write erases at most one alternate sector (spec 8.1 write #2), and
      each cut may cost one more (an interrupted write redone, or the clear after a re-copy).
    * ``install`` (USB DFU, spec 3.4): each destination sector is erased once; DFU has no
      automatic retry, so a cut adds nothing; no DCT write.
    """
    dest = [
        s.index
        for s in chip.sectors
        if s.start < module_start + module_size and module_start < s.end
    ]
    notes: list[str] = []
    clean: dict[int, int] = {}
    per_cut: dict[int, int] = {}
    if scenario == "install":
        for s in dest:
            clean[s] = 1
        notes.append(f"DFU erases destination sectors {dest} once each (spec 3.4); no retry")
        return ErasePlan(clean, per_cut, (1, 2), 0, 0, tuple(notes))
    n_scratch = -(-module_size // OTA_ERASE_UNIT)
    first = next(s.index for s in chip.sectors if s.start <= OTA_SCRATCH_ADDR < s.end)
    scratch = list(range(first, first + n_scratch))
    for s in scratch:
        clean[s] = clean.get(s, 0) + 1
    for s in dest:
        clean[s] = clean.get(s, 0) + 1
        per_cut[s] = 1
    notes.append(
        f"FLASH_Begin erases scratch sectors {scratch} once (ceil({module_size}/128K), spec 4.1)"
    )
    notes.append(
        f"the copy erases destination sectors {dest} once per attempt; each cut may add one "
        "attempt (spec 4.5)"
    )
    notes.append(
        "2 DCT writes (slot record spec 4.2, slot clear spec 4.5), each at most one DCT sector "
        "erase (spec 8.1); each cut may add one"
    )
    return ErasePlan(clean, per_cut, (1, 2), 2, 1, tuple(notes))
