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
