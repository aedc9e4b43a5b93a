"""Run what was built (issue 11 part 3): a device whose every boot runs the built bootloader
and whose OTA path is the built (patched) idx 2, against the real stock parts for contrast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flashroom.emu.device import Device
from flashroom.ota.link import get_link
from flashroom.scenarios.deliver import update_in_process
from flashroom.scenarios.sweep import SweepConfig, run_sweep


def _patched(out: Path) -> Device:
    return Device.new(
        "electron",
        "extended",
        bootloader_firmware=out / "bootloader.bin",
        system_firmware=out,
    )


def test_emu_new_on_the_build_output_runs_the_patched_real_code(
    devos_build: Any, cli: Any, tmp_path: Path
) -> None:
    out = devos_build.out
    img = tmp_path / "built.img"
    r = cli(["emu", "new", "--image", str(img), "--system-firmware", str(out),
             "--bootloader-firmware", str(out / "bootloader.bin"), "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["boot"] == "application"
    assert doc["bootloader_firmware"]["module_version"] == 1006
    assert doc["system_firmware"]["dir"] == str(Path(out).resolve())
    show = cli(["emu", "show", "--image", str(img), "--format", "json"]).json()
    assert show["profile"] == "extended"  # from the parts' version 2350


def test_the_200k_app_goes_over_3g_and_runs(devos_build: Any) -> None:
    out = devos_build.out
    app = (out / "user-part-big200k.bin").read_bytes()
    dev = _patched(out)
    res = update_in_process(dev, app, link=get_link("3g"))
    assert res.result == "applied", res.error
    assert dev.flash.read(0x08080000, len(app)) == app
    assert dev.state == "application" and dev.running_module() is not None
    assert dev.firmware_runs and dev.firmware_runs[0].flash_ops > 0  # the real copy ran
    assert res.report is not None and res.report.wire_bytes > len(app)


def test_the_same_app_on_the_real_stock_parts_gets_the_real_minus_1300(
    devos_build: Any, real_binaries: Path
) -> None:
    app = (devos_build.out / "user-part-big200k.bin").read_bytes()
    dev = Device.new(
        "electron",
        "stock",
        bootloader_firmware=real_binaries / "electron-bootloader@v2.3.1.bin",
        system_firmware=real_binaries,
    )
    res = update_in_process(dev, app, link=get_link("3g"))
    assert (res.result, res.error_code) == ("rejected", -1300)
    assert dev.flash.read(0x08080000, 64) != app[:64]  # the old app stays


def test_an_extended_app_over_usb_on_stock_boots_safe_mode(
    devos_build: Any, real_binaries: Path
) -> None:
    tiny = (devos_build.out / "user-part-tiny.bin").read_bytes()  # depends on idx 2 >= 2350
    dev = Device.new(
        "electron",
        "stock",
        bootloader_firmware=real_binaries / "electron-bootloader@v2.3.1.bin",
        system_firmware=real_binaries,
    )
    out = dev.install(tiny)
    assert out.boot == "safe_mode"


def test_sweeps_on_the_built_code_have_zero_bricks(devos_build: Any) -> None:
    out = devos_build.out
    for scenario, size in (("user-ota", 200 * 1024), ("system-ota", 128 * 1024)):
        cfg = SweepConfig(
            profile="extended",
            scenario=scenario,
            app_size=size,
            granularity="chunk",
            torn=True,
            bootloader_firmware=str(out / "bootloader.bin"),
            system_firmware=str(out),
            compare_model=True,
            workers=2,
        )
        j = run_sweep(cfg).to_json()
        assert j["counts"]["brick"] == 0 and j["bad"] == 0, (scenario, j["first_failure"])
        assert j["comparison"]["differing"] == 0
        assert j["clean_run"]["outcome"]["system_firmware"]["dir"] == str(Path(out).resolve())
