"""The sweep's independent checkers: DCD selection (spec 8.1), erase plan, classification."""

from __future__ import annotations

import dataclasses

from flashroom.deviceos import get_profile
from flashroom.deviceos.gen2 import (
    DCT_SECTOR_ADDRS,
    DCT_SECTOR_SIZE,
    MAGIC_PENDING,
    SEAL_INVALID_V2,
)
from flashroom.emu.device import Device
from flashroom.emu.outcome import BootMode, Outcome, RunResult
from flashroom.geometry import STM32F205XG
from flashroom.scenarios.sweep_check import read_dcd
from flashroom.scenarios.sweep_config import SweepConfig
from flashroom.scenarios.sweep_engine import _build_setup, _classify
from flashroom.scenarios.sweep_scenarios import SCENARIOS


def _booted_app() -> Outcome:
    """A recovery boot that reports the application running."""
    return Outcome(RunResult.BOOTED, None, BootMode.APPLICATION, None, 0.0, {}, 0)


def _sectors(dev: Device) -> tuple[bytearray, bytearray]:
    return (
        bytearray(dev.flash.read(DCT_SECTOR_ADDRS[0], DCT_SECTOR_SIZE)),
        bytearray(dev.flash.read(DCT_SECTOR_ADDRS[1], DCT_SECTOR_SIZE)),
    )


def test_fresh_device_dct_is_valid_with_no_pending_slot() -> None:
    dev = Device.new(platform="electron", profile="extended")
    s0, s1 = _sectors(dev)
    st = read_dcd(bytes(s0), bytes(s1))
    assert st.valid
    assert st.pending_slots == ()
    assert st.slot_table_problems() == []


def test_corrupt_current_copy_falls_back_to_the_other_or_is_invalid() -> None:
    dev = Device.new(platform="electron", profile="extended")
    s0, s1 = _sectors(dev)
    st = read_dcd(bytes(s0), bytes(s1))
    assert st.current is not None
    cur = [s0, s1][st.current]
    cur[100] ^= 0xFF  # breaks the selected copy's CRC
    again = read_dcd(bytes(s0), bytes(s1))
    assert again.current != st.current or not again.valid


def test_no_valid_header_means_dct_lost() -> None:
    blank = b"\xff" * DCT_SECTOR_SIZE
    st = read_dcd(blank, blank)
    assert st.current is None and not st.valid


def test_invalid_v2_seal_prefers_the_other_copy() -> None:
    dev = Device.new(platform="electron", profile="extended")
    s0, s1 = _sectors(dev)
    st = read_dcd(bytes(s0), bytes(s1))
    assert st.current is not None
    cur = [s0, s1][st.current]
    cur[4:8] = SEAL_INVALID_V2.to_bytes(4, "little")
    other = [s0, s1][1 - st.current]
    if other[:4] == b"\xff\xff\xff\xff":  # single-copy DCT: invalidating it loses the DCT
        assert read_dcd(bytes(s0), bytes(s1)).current == st.current
    else:
        assert read_dcd(bytes(s0), bytes(s1)).current == 1 - st.current


def test_erase_plan_for_256k_user_ota_on_extended() -> None:
    ext = get_profile("electron", "extended")
    plan = SCENARIOS["user-ota"].erase_budget(ext, STM32F205XG, 0x08080000, 256 * 1024)
    assert dict(plan.clean) == {8: 1, 9: 1, 10: 1, 11: 1}
    assert dict(plan.per_cut) == {8: 1, 9: 1}
    assert plan.violations({8: 2, 9: 2, 10: 1, 11: 1, 1: 1, 2: 2}, cuts=1) == []
    over = plan.violations({8: 3, 10: 2}, cuts=1)
    assert any("sector 8" in v for v in over) and any("sector 10" in v for v in over)
    assert plan.violations({1: 2, 2: 2}, cuts=1)  # 4 DCT erases > 2 writes + 1 cut


def test_erase_plan_for_install_allows_no_retry() -> None:
    ext = get_profile("electron", "extended")
    plan = SCENARIOS["install"].erase_budget(ext, STM32F205XG, 0x08080000, 100 * 1024)
    assert dict(plan.clean) == {8: 1}
    assert plan.violations({8: 2}, cuts=1)


def test_classifier_flags_a_mixed_image_that_runs() -> None:
    s = _build_setup(SweepConfig(granularity="chunk", old_size=256 * 1024))
    dev = s.device
    dev.restore(s.snap0)
    half = 128 * 1024
    mix = s.new[:half] + s.old[half:]
    fl = dev.flash
    fl.erase_sector(8)
    fl.erase_sector(9)
    fl.program(s.target_start, mix)
    # pretend the boot ran it: the classifier must not accept a mix as old or new
    cls, _kind, viol = _classify(s, _booted_app(), {8: 1, 9: 1}, 1, None)
    assert cls == "invariant_violation"
    assert any(v.startswith("no_mix") for v in viol)


def test_classifier_flags_changed_dct_data() -> None:
    s = _build_setup(SweepConfig(granularity="chunk"))
    dev = s.device
    dev.restore(s.snap0)
    st = read_dcd(*_sectors_bytes(dev))
    assert st.current is not None
    dev.hw.dct.write_app(16, b"\x00\x01\x02\x03")  # some setting outside the slot table
    cls, _kind, viol = _classify(s, _booted_app(), {}, 1, None)
    assert cls == "invariant_violation"
    assert any("outside the slot table" in v for v in viol)


def test_classifier_flags_a_pending_slot_left_behind() -> None:
    s = _build_setup(SweepConfig(granularity="chunk"))
    dev = s.device
    dev.restore(s.snap0)
    st = read_dcd(*_sectors_bytes(dev))
    slots = dev.hw.dct.read_slots()
    pending = dataclasses.replace(slots[1], magicNumber=MAGIC_PENDING)
    dev.hw.dct.write_slot(1, pending)
    assert st.valid
    cls, _kind, viol = _classify(s, _booted_app(), {}, 1, None)
    assert cls == "invariant_violation"
    assert any("still pending" in v for v in viol)


def _sectors_bytes(dev: Device) -> tuple[bytes, bytes]:
    a, b = _sectors(dev)
    return bytes(a), bytes(b)
