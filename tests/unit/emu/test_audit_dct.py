"""Fidelity audit: the Electron DCD store's copy selection and write order (spec 8.1)."""

from __future__ import annotations

import struct

from flashroom.deviceos.gen2 import DCT_SECTOR_ADDRS, SEAL_INVALID_V2, SEAL_VALID
from flashroom.emu.dct import DcdStore
from flashroom.emu.flash import NorFlash

WATERMARK = 0x1E1C279A


def _two_valid_copies() -> DcdStore:
    """Copy 1 initialised, then one write into copy 0: copy 0 VALID (counter 1), copy 1
    INVALID_V2 (counter 0), both CRCs valid."""
    s = DcdStore(NorFlash())
    s.write_app(10, b"new")
    assert s.select() == 0
    return s


def _set_seal(s: DcdStore, index: int, seal: int, watermark: int = WATERMARK) -> None:
    """Force a copy's header (test set-up: erase-free rewrite through a snapshot)."""
    data = bytearray(s.flash.contents())
    off = DCT_SECTOR_ADDRS[index] - s.flash.base
    data[off : off + 8] = struct.pack("<II", watermark, seal)
    s.flash.load_contents(bytes(data))


def test_other_copy_seal_valid_is_judged_by_its_seal_alone_spec_8_1_2() -> None:
    # spec 8.1 #2: "If the other copy's seal is also VALID, prefer the copy whose CRC is valid"
    # (dcd.h evaluateSectors() is passed the secondary's seal only, not its watermark).
    # Copy 0 is primary (VALID, CRC good); copy 1 gets seal VALID but a broken watermark and a
    # broken CRC: the CRC comparison still runs and keeps copy 0.
    s = _two_valid_copies()
    _set_seal(s, 1, SEAL_VALID, watermark=0)
    assert s.select() == 0
    # Now break copy 0's CRC (primary) too: neither CRC is valid -> sector 1 (spec 8.1 #2),
    # although copy 1's watermark is broken. Before the fix the watermark test sent this to
    # rule #4 (primary without CRC check) and returned 0.
    data = bytearray(s.flash.contents())
    off = DCT_SECTOR_ADDRS[0] - s.flash.base + 100
    data[off] ^= 0xFF
    s.flash.load_contents(bytes(data))
    assert not s.copy_state(0).crc_ok
    assert s.select() == 1


def test_other_copy_seal_invalid_v2_is_judged_by_its_seal_alone_spec_8_1_3() -> None:
    # spec 8.1 #3: other seal INVALID_V2 -> primary if its CRC is valid, otherwise the other.
    s = _two_valid_copies()
    _set_seal(s, 1, SEAL_INVALID_V2, watermark=0x12345678)
    data = bytearray(s.flash.contents())
    off = DCT_SECTOR_ADDRS[0] - s.flash.base + 100
    data[off] ^= 0xFF  # primary (copy 0) CRC broken
    s.flash.load_contents(bytes(data))
    assert s.select() == 1


def test_other_copy_v1_or_blank_means_primary_without_crc_check_spec_8_1_4() -> None:
    s = _two_valid_copies()
    _set_seal(s, 1, 0x00000000)  # SEAL_CLEARED: written by v1 code
    data = bytearray(s.flash.contents())
    data[DCT_SECTOR_ADDRS[0] - s.flash.base + 100] ^= 0xFF
    s.flash.load_contents(bytes(data))
    assert s.select() == 0


def test_both_crcs_valid_uses_the_2_bit_counters_spec_8_1_2() -> None:
    s = _two_valid_copies()  # copy 0 counter 1, copy 1 counter 0
    _set_seal(s, 1, SEAL_VALID)  # the INVALID_V2 programming "did not happen"
    assert s.select() == 0  # (0 + 1) & 3 == 1 -> copy 0 is newer
    s.write_app(20, b"x")  # copy 1 counter 2
    assert s.select() == 1
    _set_seal(s, 0, SEAL_VALID)
    assert s.select() == 1  # (1 + 1) & 3 == 2 -> copy 1


def test_write_order_ends_with_header_valid_then_old_seal_invalid_spec_8_1_write() -> None:
    # spec 8.1 write #2-#7: erase alt (only if not blank), data, footer, CRC, header VALID
    # last, then the old copy's seal INVALID_V2. Program calls are logged in order.
    s = _two_valid_copies()  # current 0, alternate 1 (not blank: INVALID_V2 copy)
    before = len(s.flash.log)
    s.write_app(30, b"abcd")
    ops = list(s.flash.log)[before:]
    kinds = [
        (op.kind, op.addr - DCT_SECTOR_ADDRS[1] if op.addr >= DCT_SECTOR_ADDRS[1] else None)
        for op in ops
    ]
    assert kinds[0] == ("erase", 0)
    header = [
        i for i, op in enumerate(ops) if op.kind == "program" and op.addr == DCT_SECTOR_ADDRS[1]
    ]
    crc = [i for i, op in enumerate(ops) if op.addr == DCT_SECTOR_ADDRS[1] + 0x3FFC]
    footer = [i for i, op in enumerate(ops) if op.addr == DCT_SECTOR_ADDRS[1] + 0x3FE0]
    assert footer and crc and header and footer[0] < crc[0] < header[0]
    assert ops[-1].addr in (DCT_SECTOR_ADDRS[0], DCT_SECTOR_ADDRS[0] + 4)  # old copy's seal, last
    assert s.copy_state(0).seal == SEAL_INVALID_V2
    assert s.copy_state(1).seal == SEAL_VALID and s.copy_state(1).counter == 2


def test_blank_alternate_is_not_erased_spec_8_1_write_2() -> None:
    s = DcdStore(NorFlash())
    s.read_app(0, 1)  # initialises copy 1; copy 0 is blank
    erases = sum(s.flash.erase_counts)
    s.write_app(0, b"\x00")
    assert sum(s.flash.erase_counts) == erases
