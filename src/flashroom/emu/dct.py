"""The DCT: Electron's double-buffered "DCD" store and the app-DCT fields the OTA path touches.

Electron (spec 8.1, services/inc/dcd.h:80-585): two 16 KB copies in sectors 1 and 2, each with a
header (watermark, seal), the application data, a footer (2-bit counter, watermark) and a CRC-32
over ``[8, 0x3FFC)``. Writes go to the alternate copy; the header is sealed VALID last and the old
copy is then sealed INVALID_V2 (a bit-subset of VALID, programmable without erase).

Photon/P1 (spec 8.2): the WICED DCT algorithm lives in closed libraries and is not determinable.
**Spec-silent choice:** we reuse the same double-buffered DCD scheme on sectors 1 and 2, with the
app area at ``sector_base + 7548`` (after the 7548-byte WICED system part, spec 4.3 physical
addresses), so every DCT write is one 16 KB erase plus a rewrite there too.

Every flash access goes through :class:`~flashroom.emu.flash.NorFlash`, so DCT writes are
fault-injectable like everything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from flashroom.deviceos.gen2 import (
    DCD_CRC_OFFSET,
    DCD_DATA_OFFSET,
    DCD_FOOTER_OFFSET,
    DCD_WATERMARK,
    DCT_FLASH_MODULES_OFFSET,
    DCT_SECTOR_ADDRS,
    DCT_SECTOR_SIZE,
    FACTORY_SLOT_LENGTH,
    FLAGS_CRC_DEST_FUNCTION,
    FLASH_INTERNAL,
    FLASH_MODULE_SLOT_SIZE,
    FLASH_MODULES_COUNT,
    MAGIC_FACTORY,
    MAGIC_PENDING,
    MAGIC_UNUSED,
    SEAL_CLEARED,
    SEAL_INIT,
    SEAL_INVALID_V2,
    SEAL_VALID,
)
from flashroom.emu.flash import ALIGNED, NorFlash, program_units
from flashroom.errors import EmulatorError, FlashOpError
from flashroom.particle.crc import crc32
from flashroom.particle.module_info import ModuleFunction
from flashroom.ranges import fmt_addr

#: ``InternalFlashStore::write`` retries a failed program this many times (max_tries).
_STORE_RETRIES = 10

if SEAL_INVALID_V2 & ~SEAL_VALID:  # import-time check: INVALID_V2 must be a bit-subset of VALID
    raise RuntimeError("INVALID_V2 is not a bit-subset of VALID")


@dataclass(frozen=True)
class FlashModuleSlot:
    """``platform_flash_modules_t``: 20 bytes (spec 4.3, platform_flash_modules.h:34-44)."""

    magicNumber: int  # +0  u16: 0xABCD pending, 0x0FAC factory, 0xFFFF unused
    sourceDeviceID: int  # +2  u8: 0 internal, 1 serial
    destinationDeviceID: int  # +3  u8
    sourceAddress: int  # +4  u32
    destinationAddress: int  # +8  u32
    length: int  # +12 u32: bytes to copy (module + CRC)
    flags: int  # +16 u8: MODULE_VERIFY_* flags
    module_function: int  # +17 u8: expected function when FUNCTION is set
    reserved: int = 0xFFFF  # +18 u16

    STRUCT = struct.Struct("<HBBIIIBBH")
    SIZE = FLASH_MODULE_SLOT_SIZE

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> FlashModuleSlot:
        return cls(*cls.STRUCT.unpack_from(data, offset))

    def to_bytes(self) -> bytes:
        return self.STRUCT.pack(
            self.magicNumber,
            self.sourceDeviceID,
            self.destinationDeviceID,
            self.sourceAddress,
            self.destinationAddress,
            self.length,
            self.flags,
            self.module_function,
            self.reserved,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "magic": f"0x{self.magicNumber:04x}",
            "state": {MAGIC_PENDING: "pending", MAGIC_FACTORY: "factory"}.get(
                self.magicNumber, "unused"
            ),
            "source_address": fmt_addr(self.sourceAddress),
            "destination_address": fmt_addr(self.destinationAddress),
            "length": self.length,
            "flags": f"0x{self.flags:02x}",
            "module_function": self.module_function,
        }


if FlashModuleSlot.STRUCT.size != FlashModuleSlot.SIZE:
    raise RuntimeError("platform_flash_modules_t struct is not 20 bytes")


@dataclass(frozen=True)
class DcdCopyState:
    """What one DCT copy looks like: header, counter, CRC (for ``emu show`` and tests)."""

    index: int
    address: int
    watermark_ok: bool
    seal: int
    counter: int
    crc_ok: bool
    blank: bool

    @property
    def header_valid(self) -> bool:
        return self.watermark_ok and self.seal in (SEAL_VALID, SEAL_INVALID_V2)

    @property
    def seal_name(self) -> str:
        return {
            SEAL_VALID: "VALID",
            SEAL_INVALID_V2: "INVALID_V2",
            SEAL_INIT: "INIT",
            SEAL_CLEARED: "CLEARED",
        }.get(self.seal, f"0x{self.seal:08x}")


class DcdStore:
    """The double-buffered DCT store on sectors 1 and 2 (spec 8.1).

    Args:
        flash: the chip.
        app_offset: physical offset of app offset 0 inside a copy: 8 on Electron (spec 8.1);
            7548 on Photon/P1 (spec 4.3; our spec-silent WICED stand-in, see module docstring).
    """

    def __init__(self, flash: NorFlash, *, app_offset: int = DCD_DATA_OFFSET):
        self.flash = flash
        self.app_offset = app_offset
        self.app_length = DCD_FOOTER_OFFSET - app_offset

    # ------------------------------------------------------------------ inspection
    def copy_state(self, index: int) -> DcdCopyState:
        base = DCT_SECTOR_ADDRS[index]
        head = self.flash.read(base, 8)
        wm, seal = struct.unpack("<II", head)
        counter = self.flash.read(base + DCD_FOOTER_OFFSET + 0x10, 1)[0] & 0x3
        stored = int.from_bytes(self.flash.read(base + DCD_CRC_OFFSET, 4), "little")
        computed = crc32(self.flash.view(base + DCD_DATA_OFFSET, DCD_CRC_OFFSET - DCD_DATA_OFFSET))
        return DcdCopyState(
            index,
            base,
            wm == DCD_WATERMARK,
            seal,
            counter,
            stored == computed,
            self.flash.is_blank(base, DCT_SECTOR_SIZE),
        )

    def select(self) -> int | None:
        """The current copy's index, or None when neither is valid (spec 8.1 selection)."""
        a, b = self.copy_state(0), self.copy_state(1)
        states = (a, b)
        primary = next((s for s in states if s.header_valid), None)
        if primary is None:
            return None
        other = states[1 - primary.index]
        # spec 8.1 #2-#4 judge the other copy by its seal alone (dcd.h evaluateSectors() is
        # given the secondary's seal, never its watermark).
        if other.seal == SEAL_VALID:
            if primary.crc_ok and not other.crc_ok:
                return primary.index
            if other.crc_ok and not primary.crc_ok:
                return other.index
            if primary.crc_ok and other.crc_ok:
                x, y = a.counter, b.counter
                if (x + 1) & 3 == y:
                    return 1
                if (y + 1) & 3 == x:
                    return 0
                return primary.index
            return 1  # spec 8.1 #2: neither CRC valid -> sector 1 (0x08008000)
        if other.seal == SEAL_INVALID_V2:
            return primary.index if primary.crc_ok else other.index
        return primary.index  # spec 8.1 #4: other not a v2 copy -> primary, no CRC check

    def current(self) -> int:
        """The current copy, initialising sector 1 as empty when none is valid (spec 8.1 #5)."""
        idx = self.select()
        if idx is None:
            self._initialise(1)
            idx = 1
        return idx

    # ------------------------------------------------------------------ app access
    def read_app(self, offset: int, size: int) -> bytes:
        """Read app-DCT bytes (``dct_read_app_data``).

        Raises:
            EmulatorError: the range is beyond the app area.
        """
        self._check(offset, size)
        idx = self.current()
        return self.flash.read(DCT_SECTOR_ADDRS[idx] + self.app_offset + offset, size)

    def peek_app(self, offset: int, size: int) -> bytes | None:
        """Read without side effects (no initialisation); None when no copy is valid."""
        self._check(offset, size)
        idx = self.select()
        if idx is None:
            return None
        return self.flash.read(DCT_SECTOR_ADDRS[idx] + self.app_offset + offset, size)

    def write_app(self, offset: int, data: bytes) -> int:
        """Write app-DCT bytes as ``DCD::write`` does (spec 8.1, services/inc/dcd.h:490-575).

        ``_writeSector``: erase the alternate copy if it is not blank, then through
        ``InternalFlashStore::write`` (word, halfword or byte by alignment, each retried up to
        10 times, then a ``memcmp``) the old data before the offset, the new bytes, the old data
        after them, the footer (the old one with counter + 1, without the CRC), the CRC, the
        header VALID **last**; then the old copy's whole header is rewritten with the seal
        INVALID_V2 (a bit-subset of VALID: programmable without an erase).

        Returns:
            0, or -1 when a step failed (an erase or a program error that 10 retries did not
            clear); the later steps are then not done, as in Device OS.

        Raises:
            EmulatorError: the range is beyond the app area (spec 8.1 write #1).
            PowerCut: the armed fault fired during the write.
        """
        self._check(offset, len(data))
        cur = self.current()
        alt = 1 - cur
        cur_base, alt_base = DCT_SECTOR_ADDRS[cur], DCT_SECTOR_ADDRS[alt]
        if self._write_sector(cur_base, alt_base, self.app_offset - DCD_DATA_OFFSET + offset, data):
            return -1
        return self._store_write(cur_base, struct.pack("<II", DCD_WATERMARK, SEAL_INVALID_V2))

    def _write_sector(self, cur_base: int | None, alt_base: int, start: int, data: bytes) -> int:
        """``DCD::_writeSector``: the new copy at ``alt_base`` from the one at ``cur_base``
        (None: a fresh copy, ``initialize``) with ``data`` at data offset ``start``."""
        if self._erase_if_needed(alt_base):
            return -1
        footer = self._footer(0)
        if cur_base is not None:
            old = self.flash.read(cur_base + DCD_DATA_OFFSET, DCD_FOOTER_OFFSET - DCD_DATA_OFFSET)
            end = start + len(data)
            for at, piece in (
                (DCD_DATA_OFFSET, old[:start]),
                (DCD_DATA_OFFSET + start, data),
                (DCD_DATA_OFFSET + end, old[end:]),
            ):
                if self._store_write(alt_base + at, piece):
                    return -1
            existing = self.flash.read(
                cur_base + DCD_FOOTER_OFFSET, DCD_CRC_OFFSET - DCD_FOOTER_OFFSET
            )
            if int.from_bytes(existing[24:28], "little") == DCD_WATERMARK:  # Footer::isValid
                counter = (existing[16] + 1) & 3
                footer = existing[:16] + bytes([(existing[16] & 0xFC) | counter]) + existing[17:]
        if self._store_write(alt_base + DCD_FOOTER_OFFSET, footer):
            return -1
        crc = crc32(self.flash.view(alt_base + DCD_DATA_OFFSET, DCD_CRC_OFFSET - DCD_DATA_OFFSET))
        if self._store_write(alt_base + DCD_CRC_OFFSET, crc.to_bytes(4, "little")):
            return -1
        return self._store_write(alt_base, struct.pack("<II", DCD_WATERMARK, SEAL_VALID))

    def _erase_if_needed(self, base: int) -> int:
        """``DCD::erase``: ``FLASH_EraseMemory`` of the copy's sector unless it is blank."""
        if self.flash.is_blank(base, DCT_SECTOR_SIZE):
            return 0
        try:
            self.flash.erase_containing(base)
        except FlashOpError:  # FLASH_EraseSector error: FLASH_EraseMemory returns false
            return -1
        return 0

    def _store_write(self, addr: int, data: bytes) -> int:
        """``InternalFlashStore::write`` (flash_storage_impl.h:40-76): aligned units, each
        retried up to 10 times after a program error, then a ``memcmp`` of the whole range."""
        done = 0
        tries = 0
        while done < len(data):
            try:
                self.flash.program(addr + done, data[done:], width=ALIGNED)
                break
            except FlashOpError as e:
                done = e.addr - addr  # the units before it completed; it did not
                tries += 1
                if tries > _STORE_RETRIES:  # give up on this unit and go on with the next
                    done += program_units(addr + done, len(data) - done, ALIGNED)[0]
                    tries = 0
        return 0 if not data or self.flash.read(addr, len(data)) == data else -1

    # ------------------------------------------------------------------ flash modules table
    def read_slots(self) -> list[FlashModuleSlot]:
        """All 5 ``flash_modules`` slots (spec 4.3)."""
        raw = self.read_app(DCT_FLASH_MODULES_OFFSET, FlashModuleSlot.SIZE * FLASH_MODULES_COUNT)
        return [FlashModuleSlot.from_bytes(raw, i * 20) for i in range(FLASH_MODULES_COUNT)]

    def peek_slots(self) -> list[FlashModuleSlot] | None:
        raw = self.peek_app(DCT_FLASH_MODULES_OFFSET, FlashModuleSlot.SIZE * FLASH_MODULES_COUNT)
        if raw is None:
            return None
        return [FlashModuleSlot.from_bytes(raw, i * 20) for i in range(FLASH_MODULES_COUNT)]

    def write_slot(self, index: int, slot: FlashModuleSlot) -> None:
        """Write one 20-byte slot (one DCT write)."""
        self.write_app(DCT_FLASH_MODULES_OFFSET + 20 * index, slot.to_bytes())

    def clear_slot_magic(self, index: int) -> None:
        """Write magic 0xFFFF into slot ``index``: a 2-byte DCT write (spec 4.5 #2.4)."""
        self.write_app(DCT_FLASH_MODULES_OFFSET + 20 * index, MAGIC_UNUSED.to_bytes(2, "little"))

    # ------------------------------------------------------------------ internals
    def _check(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset >= self.app_length or offset + size > self.app_length:
            raise EmulatorError(
                f"DCT access at app offset {offset}+{size} is beyond the {self.app_length}-byte "
                "app area (docs/device-os.md#dct)"
            )

    def _footer(self, counter: int) -> bytes:
        # A fresh footer (spec 8.1): reserved[16], flags (counter in bits 0-1 of the first byte),
        # pad, version_flags, mysize (= 4: the code takes sizeof a pointer), watermark.
        # Footer::initialize sets only the watermark and mysize; the other bytes are whatever
        # the stack held (spec-silent): left erased (0xFF) here.
        return (
            b"\xff" * 16
            + struct.pack("<I", 0xFFFFFFFC | counter)
            + b"\xff\xff"
            + struct.pack("<H", 4)
            + struct.pack("<I", DCD_WATERMARK)
        )

    def _initialise(self, index: int) -> None:
        """Make copy ``index`` a valid empty store (spec 8.1 #5: ``DCD::initialize``)."""
        self._write_sector(None, DCT_SECTOR_ADDRS[index], 0, b"")


def factory_slot(fac_addr: int, user_loc: int, *, reserved: int = 0xFFFF) -> FlashModuleSlot:
    """Slot 0 for the factory image as Device OS builds it (spec 5.1, 5.3 #2).

    Source FAC, destination USER_LOC, the whole 0x20000 region, USER_PART, flags 0x0E, magic
    0x0FAC. ``reserved`` is not one of the fields Device OS sets: ``HAL_Core_Config`` keeps
    whatever slot 0 held (pass it), the bootloader's compiled-in default has no slot at all
    (0xFFFF here).
    """
    return FlashModuleSlot(
        MAGIC_FACTORY,
        FLASH_INTERNAL,
        FLASH_INTERNAL,
        fac_addr,
        user_loc,
        FACTORY_SLOT_LENGTH,
        FLAGS_CRC_DEST_FUNCTION,
        ModuleFunction.USER_PART,
        reserved,
    )


__all__ = [
    "DcdCopyState",
    "DcdStore",
    "FlashModuleSlot",
    "factory_slot",
]
