"""NorFlash: NOR physics, op numbering, fault hook, counters, snapshots (spec 8.6, 8.7)."""

from __future__ import annotations

import pytest

from flashroom.emu.flash import NorFlash
from flashroom.errors import EmulatorError, PowerCut
from flashroom.geometry import STM32F205XG

SECTOR8 = 0x08080000


def test_fresh_flash_is_erased_and_one_megabyte() -> None:
    f = NorFlash()
    assert f.size == 0x100000
    assert f.read(0x08000000, 8) == b"\xff" * 8
    assert f.is_blank(0x08000000, f.size)


def test_program_ands_with_old_contents_and_never_sets_bits() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x0f\xf0\xaa\x55")
    f.program(SECTOR8, b"\xff\x00\xff\x0f")
    assert f.read(SECTOR8, 4) == bytes([0x0F, 0x00, 0xAA, 0x05])


def test_erase_sets_whole_sector_and_only_that_sector() -> None:
    f = NorFlash()
    f.program(SECTOR8 - 4, b"\x00" * 8)  # last word of sector 7, first of sector 8
    f.program(SECTOR8 + 0x1FFFC, b"\x00" * 4)
    f.erase_sector(8)
    assert f.is_blank(SECTOR8, 0x20000)
    assert f.read(SECTOR8 - 4, 4) == b"\x00" * 4
    assert f.erase_counts[8] == 1 and sum(f.erase_counts) == 1


def test_word_granularity_counts_words_and_tail_bytes() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x00" * 10)  # 2 words + 2 tail bytes (FLASH_Update, spec 4.1 #3)
    assert f.op_count == 4
    f.erase_sector(10)
    assert f.op_count == 5


def test_chunk_granularity_counts_each_call_once() -> None:
    f = NorFlash(granularity="chunk")
    f.program(SECTOR8, b"\x00" * 512)
    f.erase_sector(10)
    assert f.op_count == 2


def test_device_time_uses_datasheet_typical_and_max() -> None:
    f = NorFlash()
    f.erase_sector(8)
    f.program(SECTOR8, b"\x00" * 400)
    t = STM32F205XG.timing
    assert f.device_time_s == pytest.approx(t.erase(0x20000) + t.program_words(100))
    assert f.device_time_max_s == pytest.approx(
        t.erase(0x20000, worst=True) + t.program_words(100, worst=True)
    )
    assert f.device_time_max_s > f.device_time_s


def test_cut_at_op_applies_earlier_words_in_bulk_and_not_the_cut_one() -> None:
    f = NorFlash()
    f.arm_fault(3)
    with pytest.raises(PowerCut) as e:
        f.program(SECTOR8, b"\x00" * 32)
    assert e.value.op_index == 3 and not e.value.torn
    assert f.read(SECTOR8, 12) == b"\x00" * 12
    assert f.read(SECTOR8 + 12, 20) == b"\xff" * 20
    assert f.op_count == 3
    assert not f.armed  # one-shot


def test_ops_are_numbered_from_arming_across_calls() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x00" * 64)  # before arming: not counted for the fault
    f.arm_fault(17)
    f.program(SECTOR8 + 64, b"\x00" * 64)  # ops 0..15
    with pytest.raises(PowerCut):
        f.program(SECTOR8 + 128, b"\x00" * 64)  # op 16 ok, op 17 cut
    assert f.read(SECTOR8 + 128, 4) == b"\x00" * 4
    assert f.read(SECTOR8 + 132, 4) == b"\xff" * 4


def test_cut_on_erase_leaves_sector_untouched() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x12\x34\x56\x78")
    f.arm_fault(0)
    with pytest.raises(PowerCut):
        f.erase_sector(8)
    assert f.read(SECTOR8, 4) == b"\x12\x34\x56\x78"
    assert f.erase_counts[8] == 0


def test_torn_program_clears_a_seeded_subset_of_the_bits() -> None:
    results = []
    for seed in (1, 1, 2):
        f = NorFlash()
        f.arm_fault(0, torn=True, seed=seed)
        with pytest.raises(PowerCut) as e:
            f.program(SECTOR8, b"\x00\x00\x00\x00")
        assert e.value.torn
        results.append(f.read(SECTOR8, 4))
    assert results[0] == results[1]  # same seed, same tear
    assert results[0] != results[2]
    word = int.from_bytes(results[0], "little")
    assert word not in (0, 0xFFFFFFFF)  # partial


def test_torn_program_never_sets_bits() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x0f\x0f\x0f\x0f")
    f.arm_fault(0, torn=True, seed=5)
    with pytest.raises(PowerCut):
        f.program(SECTOR8, b"\x00\x00\x00\x00")
    for b in f.read(SECTOR8, 4):
        assert b & 0xF0 == 0


def test_torn_erase_leaves_seeded_state_neither_old_nor_blank() -> None:
    states = []
    for seed in (3, 3):
        f = NorFlash()
        f.program(SECTOR8, b"\x00" * 0x20000)
        f.arm_fault(0, torn=True, seed=seed)
        with pytest.raises(PowerCut):
            f.erase_sector(8)
        states.append(f.read(SECTOR8, 0x20000))
    assert states[0] == states[1]
    assert states[0] != b"\x00" * 0x20000 and states[0] != b"\xff" * 0x20000


def test_chunk_granularity_cut_drops_the_whole_call() -> None:
    f = NorFlash(granularity="chunk")
    f.arm_fault(1)
    f.program(SECTOR8, b"\x00" * 8)
    with pytest.raises(PowerCut):
        f.program(SECTOR8 + 8, b"\x00" * 8)
    assert f.read(SECTOR8, 16) == b"\x00" * 8 + b"\xff" * 8


def test_snapshot_restore_round_trips_data_and_counters() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x01\x02\x03\x04")
    snap = f.snapshot()
    f.erase_sector(8)
    f.program(SECTOR8 + 4, b"\x00" * 4)
    f.restore(snap)
    assert f.read(SECTOR8, 8) == b"\x01\x02\x03\x04\xff\xff\xff\xff"
    assert f.op_count == 1 and f.erase_counts[8] == 0


def test_out_of_range_access_is_refused_with_addresses() -> None:
    f = NorFlash()
    with pytest.raises(EmulatorError, match="0x080ffffc"):
        f.program(0x080FFFFC, b"\x00" * 8)
    with pytest.raises(EmulatorError, match="sector index 12"):
        f.erase_sector(12)
    with pytest.raises(EmulatorError):
        f.read(0x07FFFFFF, 2)


def test_sector_index_matches_geometry() -> None:
    f = NorFlash()
    for s in STM32F205XG.sectors:
        assert f.sector_index(s.start) == s.index
        assert f.sector_index(s.end - 1) == s.index


def test_log_keeps_one_entry_per_call() -> None:
    f = NorFlash()
    f.erase_sector(10)
    f.program(0x080C0000, b"\x00" * 4096)
    assert [(e.kind, e.addr, e.ops) for e in f.log] == [
        ("erase", 0x080C0000, 1),
        ("program", 0x080C0000, 1024),
    ]


def test_pickled_flash_keeps_its_numpy_view_aliased() -> None:
    import pickle

    f = NorFlash()
    f.program(SECTOR8, b"\x00\x00\x00\x00")
    g = pickle.loads(pickle.dumps(f))
    g.erase_sector(8)
    assert g.read(SECTOR8, 4) == b"\xff" * 4
    assert f.read(SECTOR8, 4) == b"\x00" * 4


# --------------------------------------------------------------------------- widths, observers


def test_halfword_width_counts_halfwords_and_a_byte_tail() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x00" * 5, width=2)  # 2 halfwords + 1 tail byte
    assert f.op_count == 3
    f.program(SECTOR8 + 8, b"\x00" * 2, width=2)  # one halfword is one operation
    assert f.op_count == 4


def test_byte_width_counts_every_byte() -> None:
    f = NorFlash()
    f.program(SECTOR8, b"\x00" * 3, width=1)
    assert f.op_count == 3


def test_program_refuses_a_width_the_chip_has_not() -> None:
    with pytest.raises(EmulatorError, match="width 3"):
        NorFlash().program(SECTOR8, b"\x00" * 6, width=3)


def test_a_cut_inside_a_halfword_call_keeps_the_halfwords_before_it() -> None:
    f = NorFlash()
    f.arm_fault(2)
    with pytest.raises(PowerCut):
        f.program(SECTOR8, b"\x00" * 8, width=2)
    assert f.read(SECTOR8, 8) == b"\x00" * 4 + b"\xff" * 4


def test_op_bytes_is_the_numbering_of_each_width() -> None:
    f = NorFlash()
    assert [f.op_bytes(k, 7, 2) for k in range(5)] == [0, 2, 4, 6, 7]
    assert [f.op_bytes(k, 6, 4) for k in range(4)] == [0, 4, 5, 6]
    c = NorFlash(granularity="chunk")
    assert [c.op_bytes(k, 6, 2) for k in range(3)] == [0, 6, 6]
    assert f.op_count_of(7, 2) == 4 and c.op_count_of(7, 2) == 1


class _Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    def flash_event(self, event: object) -> None:
        self.events.append(event)


def test_observer_sees_reads_programs_and_erases_with_op_numbers_and_width() -> None:
    from flashroom.emu.flash import FlashEventKind

    f = NorFlash()
    f.program(SECTOR8 + 64, b"\x00" * 4)  # before subscribing: not seen
    rec = _Recorder()
    with f.subscribe(rec):
        f.read(SECTOR8, 4)
        f.program(SECTOR8, b"\x00" * 6, width=2)
        f.erase_sector(9)
    f.read(SECTOR8, 4)  # after unsubscribing: not seen
    kinds = [(e.kind, e.addr, e.size, e.width, e.first_op, e.ops) for e in rec.events]  # type: ignore[attr-defined]
    assert kinds == [
        (FlashEventKind.READ, SECTOR8, 4, 0, 1, 0),
        (FlashEventKind.PROGRAM, SECTOR8, 6, 2, 1, 3),
        (FlashEventKind.ERASE, 0x080A0000, 0x20000, 0, 4, 1),
    ]
    assert rec.events[1].data == b"\x00" * 6  # type: ignore[attr-defined]
    assert rec.events[2].sector == 9  # type: ignore[attr-defined]


def test_observer_sees_only_the_completed_part_of_a_cut_call() -> None:
    f = NorFlash()
    rec = _Recorder()
    f.subscribe(rec)
    f.arm_fault(3)
    with pytest.raises(PowerCut):
        f.program(SECTOR8, b"\x00" * 32)
    (ev,) = rec.events
    assert (ev.size, ev.ops) == (12, 3)  # type: ignore[attr-defined]


def test_fail_fault_writes_nothing_for_its_op_and_the_device_keeps_running() -> None:
    from flashroom.errors import FlashOpError

    f = NorFlash()
    f.arm_fault(1, kind="fail")
    with pytest.raises(FlashOpError) as e:
        f.program(SECTOR8, b"\x00" * 12)
    assert e.value.op_index == 1 and e.value.addr == SECTOR8 + 4
    assert f.read(SECTOR8, 12) == b"\x00" * 4 + b"\xff" * 8
    assert not f.armed
    f.program(SECTOR8 + 4, b"\x00" * 4)  # a retry succeeds: the fault fired once
    assert f.read(SECTOR8, 8) == b"\x00" * 8


def test_fail_fault_on_an_erase_leaves_the_sector_as_it_was() -> None:
    from flashroom.errors import FlashOpError

    f = NorFlash()
    f.program(SECTOR8, b"\x00" * 4)
    f.arm_fault(0, kind="fail")
    with pytest.raises(FlashOpError):
        f.erase_sector(8)
    assert f.read(SECTOR8, 4) == b"\x00" * 4 and f.erase_counts[8] == 0


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(EmulatorError, match="fault kind"):
        NorFlash().arm_fault(0, kind="melt")


def test_aligned_width_programs_as_internal_flash_store_write() -> None:
    # InternalFlashStore::write (flash_storage_impl.h:40-76): a word where 4-aligned with >= 4
    # left, else a halfword where 2-aligned with >= 2 left, else a byte
    from flashroom.emu.flash import ALIGNED, program_units

    assert program_units(0x08008B40, 2, ALIGNED) == [2]  # the DCT's slot magic: one halfword
    assert program_units(0x08008B42, 10, ALIGNED) == [2, 4, 4]
    assert program_units(0x08008B41, 8, ALIGNED) == [1, 2, 4, 1]
    assert program_units(0x08008B40, 7, ALIGNED) == [4, 2, 1]
    f = NorFlash()
    f.program(0x08008B42, b"\x00" * 10, width=ALIGNED)
    assert f.op_count == 3
    assert [f.op_bytes(k, 10, ALIGNED, 0x08008B42) for k in range(4)] == [0, 2, 6, 10]
    f.arm_fault(1)  # the word after the halfword
    with pytest.raises(PowerCut):
        f.program(0x08008B82, b"\x00" * 10, width=ALIGNED)
    assert f.read(0x08008B82, 10) == b"\x00" * 2 + b"\xff" * 8
