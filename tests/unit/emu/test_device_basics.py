"""Device API basics: new, OTA, boot, snapshot/restore, save/load, Outcome JSON contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashroom.emu.device import Device
from flashroom.errors import EmulatorError


def _app(size: int, seed: int) -> bytes:
    from flashroom.particle.build import synthetic_user_app

    return synthetic_user_app(size, seed=seed)


CONTRACT_KEYS = {
    "result",
    "error",
    "boot",
    "running",
    "device_time_s",
    "sector_erases",
    "flash_ops",
    "bootloader_firmware",
    "system_firmware",
    "scratch",
}


def test_fresh_electron_stock_device_runs_its_default_app() -> None:
    dev = Device.new("electron", "stock")
    out = dev.boot()
    assert out.result == "booted" and out.boot == "application"
    assert out.running is not None and out.running.module_function == 5
    assert out.running.size == 32 * 1024


def test_outcome_json_has_exactly_the_contract_keys() -> None:
    dev = Device.new()
    out = dev.ota(_app(64 * 1024, 3)).to_json()
    assert set(out) == CONTRACT_KEYS
    assert set(out["running"]) == {
        "module_function",
        "module_index",
        "module_version",
        "size",
        "sha256",
    }
    assert out["result"] == "applied" and out["error"] is None
    assert out["sector_erases"]["10"] == 1 and out["sector_erases"]["8"] == 1
    assert out["flash_ops"] > 64 * 1024 // 4


def test_ota_running_sha_is_the_modules_stored_sha() -> None:
    app = _app(40 * 1024, 4)
    dev = Device.new()
    out = dev.ota(app)
    assert out.running is not None
    assert out.running.sha256 == app[-38:-6].hex()


def test_snapshot_restore_returns_to_the_old_app() -> None:
    dev = Device.new()
    before = dev.running_module()
    snap = dev.snapshot()
    dev.ota(_app(50 * 1024, 9))
    assert dev.running_module() != before
    dev.restore(snap)
    assert dev.running_module() == before


def test_save_load_round_trip(tmp_path: Path) -> None:
    dev = Device.new("electron", "extended")
    dev.ota(_app(50 * 1024, 10))
    p = tmp_path / "dev.img"
    dev.save(p)
    back = Device.load(p)
    assert back.flash.contents() == dev.flash.contents()
    assert back.regs.regs == dev.regs.regs
    assert back.profile.name == "extended" and back.state == "application"
    assert back.running_module() == dev.running_module()


def test_load_refuses_a_corrupt_image(tmp_path: Path) -> None:
    dev = Device.new()
    p = tmp_path / "dev.img"
    dev.save(p)
    data = bytearray(p.read_bytes())
    data[-5] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(EmulatorError, match="corrupt"):
        Device.load(p)
    p.write_bytes(b"not an image at all, really not")
    with pytest.raises(EmulatorError, match="not a flashroom device image"):
        Device.load(p)
    p.write_bytes(bytes(data[:1000]))
    with pytest.raises(EmulatorError, match="truncated"):
        Device.load(p)


def test_ota_on_a_device_that_is_off_is_refused() -> None:
    dev = Device.new()
    out = dev.ota(_app(40 * 1024, 11), cut_at_op=5)
    assert out.result == "interrupted" and out.boot == "off"
    with pytest.raises(EmulatorError, match="boot it first"):
        dev.ota(_app(40 * 1024, 11))
    assert dev.boot().boot == "application"
