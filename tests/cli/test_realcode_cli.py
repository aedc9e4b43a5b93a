"""``emu new --bootloader-firmware/--system-firmware``, ``--compare-model`` and ``--plot``
(issue 10) through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flashroom.particle.build import synthetic_user_app

BL_1006 = "electron-bootloader@v2.3.1.bin"
BL_1002 = "electron-bootloader@v2.0.0-rc.1.bin"


def test_new_show_boot_on_a_real_bootloader_device(
    cli: Any, real_binaries: Path, tmp_path: Path
) -> None:
    img = tmp_path / "d.img"
    r = cli(["emu", "new", "--image", str(img), "--bootloader-firmware",
             str(real_binaries / BL_1006), "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.json()["bootloader_firmware"]["module_version"] == 1006
    show = cli(["emu", "show", "--image", str(img), "--format", "json"])
    assert show.json()["bootloader_firmware"]["module_version"] == 1006
    text = cli(["emu", "show", "--image", str(img)])
    assert "real bootloader" in text.stdout
    boot = cli(["emu", "boot", "--image", str(img), "--compare-model", "--format", "json"])
    assert boot.exit_code == 0, boot.stdout + boot.stderr
    cmp = boot.json()["comparison"]
    assert cmp["identical"] is True and cmp["real"]["bootloader_runs"] == ["jump"]


def test_ota_compare_model_on_the_real_ota_path(
    cli: Any, real_binaries: Path, tmp_path: Path
) -> None:
    img = tmp_path / "s.img"
    r = cli(["emu", "new", "--image", str(img), "--system-firmware", str(real_binaries),
             "--bootloader-firmware", str(real_binaries / BL_1006)])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    app = tmp_path / "app.bin"
    app.write_bytes(synthetic_user_app(200 * 1024, seed=2))
    ota = cli(["emu", "ota", "--image", str(img), str(app), "--compare-model",
               "--format", "json"])  # fmt: skip
    assert ota.exit_code == 1  # rejected: the real -1300 on stock
    doc = ota.json()
    assert doc["error"]["code"] == -1300 and doc["comparison"]["identical"] is True
    assert doc["system_firmware"]["dir"] == str(real_binaries.resolve())


def test_compare_model_on_a_model_device_is_refused(cli: Any, tmp_path: Path) -> None:
    img = tmp_path / "m.img"
    assert cli(["emu", "new", "--image", str(img)]).exit_code == 0
    r = cli(["emu", "boot", "--image", str(img), "--compare-model"])
    assert r.exit_code == 2 and "--bootloader-firmware" in r.stderr


def test_bootloader_and_bootloader_firmware_together_are_refused(
    cli: Any, real_binaries: Path, tmp_path: Path
) -> None:
    r = cli(["emu", "new", "--image", str(tmp_path / "x.img"), "--bootloader", "legacy",
             "--bootloader-firmware", str(real_binaries / BL_1006)])  # fmt: skip
    assert r.exit_code == 2
    assert "--bootloader" in r.stderr and "--bootloader-firmware" in r.stderr


def test_a_file_that_is_not_a_bootloader_is_exit_2_naming_it(
    cli: Any, real_binaries: Path, tmp_path: Path
) -> None:
    part = real_binaries / "electron-system-part1@v2.3.1.bin"
    r = cli(["emu", "new", "--image", str(tmp_path / "x.img"), "--bootloader-firmware",
             str(part)])  # fmt: skip
    assert r.exit_code == 2 and part.name in r.stderr
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"\x7fELF\x01\x01\x01" + b"\x00" * 9 + b"\x02\x00\x03\x00" + b"\x00" * 40)
    r = cli(["emu", "new", "--image", str(tmp_path / "y.img"), "--bootloader-firmware",
             str(junk)])  # fmt: skip
    assert r.exit_code == 2 and "junk.elf" in r.stderr and "Traceback" not in r.stderr


def test_sweep_compare_model_with_plot(cli: Any, real_binaries: Path, tmp_path: Path) -> None:
    png = tmp_path / "t.png"
    r = cli(["emu", "sweep", "--granularity", "chunk", "--first-op", "518", "--workers", "1",
             "--bootloader-firmware", str(real_binaries / BL_1002), "--compare-model",
             "--plot", str(png), "--format", "json"])  # fmt: skip
    assert r.exit_code == 1  # the legacy hazard: bad outcomes (identical in model and real)
    doc = r.json()
    assert doc["bad"] > 0
    assert doc["comparison"]["differing"] == 0 and doc["comparison"]["points"] == doc["points"]
    assert doc["plot"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"


def test_sweep_compare_model_needs_the_firmware(cli: Any) -> None:
    r = cli(["emu", "sweep", "--compare-model", "--granularity", "chunk"])
    assert r.exit_code == 2 and "--bootloader-firmware" in r.stderr
