"""The Electron DCD store (spec 8.1) and the flash-modules table (spec 4.3)."""

from __future__ import annotations

import struct

import pytest

from flashroom.deviceos.gen2 import DCD_WATERMARK, DCT_SECTOR_ADDRS, SEAL_INVALID_V2, SEAL_VALID
from flashroom.emu.dct import DcdStore, FlashModuleSlot
from flashroom.emu.flash import NorFlash
from flashroom.errors import EmulatorError, PowerCut


def _store() -> DcdStore:
    return DcdStore(NorFlash())


def test_blank_dct_initialises_sector_1_copy_at_0x08008000() -> None:
    s = _store()
    assert s.select() is None
    assert s.read_app(0, 4) == b"\xff" * 4
    assert s.select() == 1
    st = s.copy_state(1)
    assert st.seal == SEAL_VALID and st.crc_ok and st.counter == 0


def test_write_goes_to_the_alternate_copy_and_seals_the_old_one_invalid() -> None:
    s = _store()
    s.write_app(100, b"abc")
    assert s.select() == 0  # initialised copy 1, wrote copy 0
    assert s.copy_state(1).seal == SEAL_INVALID_V2
    assert s.copy_state(0).counter == 1
    s.write_app(200, b"xyz")
    assert s.select() == 1
    assert s.read_app(100, 3) == b"abc" and s.read_app(200, 3) == b"xyz"
    assert s.copy_state(1).counter == 2


def test_each_write_costs_one_16k_erase_once_both_copies_are_used() -> None:
    s = _store()
    s.write_app(0, b"\x01")
    s.write_app(0, b"\x02")
    erases = list(s.flash.erase_counts)
    s.write_app(0, b"\x03")
    assert sum(s.flash.erase_counts) - sum(erases) == 1


def test_electron_app_offset_8_places_slot_i_at_0x08004b2c() -> None:
    s = _store()
    s.write_app(2852, b"\xcd\xab")  # slot 0 magic
    cur = s.select()
    assert cur is not None
    assert s.flash.read(DCT_SECTOR_ADDRS[cur] + 8 + 2852, 2) == b"\xcd\xab"
    assert DCT_SECTOR_ADDRS[0] + 8 + 2852 == 0x08004B2C  # spec 4.3 physical address


def test_photon_app_offset_7548_places_slot_at_0x080068a0() -> None:
    s = DcdStore(NorFlash(), app_offset=7548)
    s.write_slot(0, FlashModuleSlot(0x0FAC, 0, 0, 0x080E0000, 0x080A0000, 0x20000, 0x0E, 5, 0))
    cur = s.select()
    assert cur is not None
    addr = DCT_SECTOR_ADDRS[cur] + 7548 + 2852
    assert addr in (0x080068A0, 0x0800A8A0)  # spec 4.3 Photon/P1 row
    assert s.flash.read(addr, 2) == b"\xac\x0f"


def test_write_beyond_app_area_is_rejected() -> None:
    s = _store()
    with pytest.raises(EmulatorError, match="beyond"):
        s.write_app(16344, b"\x00")
    with pytest.raises(EmulatorError):
        s.write_app(16340, b"\x00" * 8)


def test_selection_prefers_crc_valid_copy_when_both_are_sealed_valid() -> None:
    s = _store()
    s.write_app(0, b"old")
    s.write_app(0, b"new")  # copy 1 current, copy 0 INVALID_V2
    # Re-seal copy 0 VALID is impossible without erase (bits would have to rise); emulate the
    # transient 'both VALID' state of spec 8.1 #2 by cutting before the INVALID_V2 step instead.
    f = s.flash
    snap = f.snapshot()
    ops_before = f.op_count
    s.write_app(0, b"3rd")
    total = f.op_count - ops_before
    f.restore(snap)
    f.arm_fault(total - 1)  # the last op is programming the old seal to INVALID_V2
    with pytest.raises(PowerCut):
        s.write_app(0, b"3rd")
    a, b = s.copy_state(0), s.copy_state(1)
    assert a.seal == SEAL_VALID and b.seal == SEAL_VALID
    assert s.read_app(0, 3) == b"3rd"  # counters: (b+1)&3 == a -> the newer copy


def test_both_valid_and_neither_crc_ok_picks_sector_1() -> None:
    f = NorFlash()
    for base in DCT_SECTOR_ADDRS:
        f.program(base, struct.pack("<II", 0x1E1C279A, SEAL_VALID))  # CRC not written
    assert DcdStore(f).select() == 1


@pytest.mark.parametrize("torn", [False, True])
def test_every_power_cut_in_a_dct_write_leaves_old_or_new_value(torn: bool) -> None:
    s = _store()
    s.write_app(10, b"OLD!")
    f = s.flash
    snap = f.snapshot()
    start = f.op_count
    s.write_app(10, b"NEW!")
    total = f.op_count - start
    step = 97 if not torn else 211
    for n in [*range(0, total, step), total - 3, total - 2, total - 1]:
        f.restore(snap)
        f.arm_fault(n, torn=torn, seed=n)
        with pytest.raises(PowerCut):
            s.write_app(10, b"NEW!")
        got = s.read_app(10, 4)
        assert got in (b"OLD!", b"NEW!"), (n, got)


def test_flash_module_slot_round_trips() -> None:
    slot = FlashModuleSlot(0xABCD, 0, 0, 0x080C0000, 0x08080000, 0x40000, 0x0E, 5, 0)
    raw = slot.to_bytes()
    assert len(raw) == 20
    assert FlashModuleSlot.from_bytes(raw) == slot
    assert raw[:2] == b"\xcd\xab"


# ------------------------------------------------------------- copy selection and write order


def _two_valid_copies() -> DcdStore:
    """Copy 1 initialised, then one write into copy 0: copy 0 VALID (counter 1), copy 1
    INVALID_V2 (counter 0), both CRCs valid."""
    s = DcdStore(NorFlash())
    s.write_app(10, b"new")
    assert s.select() == 0
    return s


def _set_seal(s: DcdStore, index: int, seal: int, watermark: int = DCD_WATERMARK) -> None:
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


def test_a_dct_write_programs_as_internal_flash_store_and_rewrites_the_old_header_whole() -> None:
    # services/inc/dcd.h:490-575 through flash_storage_impl.h:40-76 (spec 11 table rows 5-8):
    # the 2-byte slot magic is one halfword, the piece after it starts with a halfword, and
    # the old copy's whole header (watermark, then seal INVALID_V2) is programmed again.
    from flashroom.emu.flash import FlashEventKind

    s = _store()
    s.read_app(0, 1)  # initialise copy 1
    events: list[object] = []

    class Rec:
        def flash_event(self, ev: object) -> None:
            events.append(ev)

    with s.flash.subscribe(Rec()):
        s.clear_slot_magic(1)
    programs = [e for e in events if e.kind == FlashEventKind.PROGRAM]  # type: ignore[attr-defined]
    ops = [s.flash.units_of(e.size, e.width, e.addr) for e in programs]  # type: ignore[attr-defined]
    base = DCT_SECTOR_ADDRS[0]
    assert [(e.addr - base, e.size) for e in programs] == [  # type: ignore[attr-defined]
        (8, 2872),
        (8 + 2872, 2),
        (8 + 2874, 16344 - 2874),
        (0x3FE0, 28),
        (0x3FFC, 4),
        (0, 8),
        (DCT_SECTOR_ADDRS[1] - base, 8),
    ]
    assert ops == [718, 1, 3368, 7, 1, 2, 2]  # 4,095 programs for the new copy, then 2 + 2


def test_a_failed_dct_program_is_retried_as_internal_flash_store_does() -> None:
    s = _store()
    s.read_app(0, 1)
    s.flash.arm_fault(5, kind="fail")  # the sixth word of the data before the change
    assert s.write_app(100, b"\x01\x02") == 0  # the retry succeeds; memcmp passes
    assert s.read_app(100, 2) == b"\x01\x02" and s.read_app(20, 4) == b"\xff" * 4
