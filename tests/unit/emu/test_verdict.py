"""The update result classes say what happened to the flash (issue 12 #3)."""

from __future__ import annotations

from flashroom.emu.device import Device
from flashroom.emu.outcome import OutcomeError, RunResult
from flashroom.emu.verdict import capture, judge, ota_region
from flashroom.particle.build import synthetic_user_app

K = 1024


def test_stock_minus_1300_is_rejected_and_says_the_scratch_holds_the_image() -> None:
    dev = Device.new("electron", "stock")
    before_app = dev.user_part_bytes()
    big = synthetic_user_app(200 * K, seed=4)
    out = dev.ota(big)
    assert out.result == "rejected" and out.error is not None and out.error.code == -1300
    assert "now holds the refused image" in out.error.message
    assert out.scratch is not None and out.scratch["holds_refused_image"] is True
    assert (out.scratch["start_hex"], out.scratch["end_hex"]) == ("0x080c0000", "0x08100000")
    assert out.sector_erases == {10: 1, 11: 1}  # the sectors the file needed, both said
    assert dev.user_part_bytes() == before_app  # the running app is unchanged


def test_a_change_outside_the_ota_region_is_damaged_not_rejected() -> None:
    dev = Device.new("electron", "extended")
    before = capture(dev)
    dev.flash.erase_sector(5)  # system part idx 1: outside the OTA region and the DCT
    result, err, note = judge(dev, before, synthetic_user_app(8 * K, seed=1),
                              OutcomeError(-1300, "refused"))  # fmt: skip
    assert result == RunResult.DAMAGED and note is None
    assert err is not None and "sector 5 changed" in err.message


def test_a_changed_running_app_is_damaged() -> None:
    dev = Device.new("electron", "extended")
    before = capture(dev)
    other = synthetic_user_app(16 * K, version=9, seed=3)
    dev.install(other)  # the running app changes behind the update's back
    result, err, _ = judge(dev, before, synthetic_user_app(8 * K, seed=1),
                           OutcomeError(None, "refused"))  # fmt: skip
    assert result == RunResult.DAMAGED and err is not None
    assert "running app changed from v6 to v9" in err.message


def test_nothing_changed_is_rejected_without_a_scratch_claim() -> None:
    dev = Device.new("electron", "extended")
    before = capture(dev)
    result, err, note = judge(dev, before, synthetic_user_app(8 * K, seed=1),
                              OutcomeError(-1360, "wrong platform"))  # fmt: skip
    assert result == RunResult.REJECTED and note is not None
    assert not note.changed and not note.holds_refused_image
    assert err is not None and err.message == "wrong platform"


def test_the_ota_region_covers_the_sectors_the_file_needs() -> None:
    stock = Device.new("electron", "stock")
    assert ota_region(stock, 64 * K) == (0x080C0000, 0x080E0000)
    assert ota_region(stock, 200 * K) == (0x080C0000, 0x08100000)
    assert ota_region(Device.new("electron", "extended"), 8) == (0x080C0000, 0x08100000)
