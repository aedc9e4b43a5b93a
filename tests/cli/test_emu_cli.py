"""``flashroom emu``: new, install, ota, boot, show through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashroom.particle.build import synthetic_user_app

K = 1024


@pytest.fixture
def app_files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, size in (("app100", 100 * K), ("app200", 200 * K), ("app256", 256 * K)):
        p = tmp_path / f"{name}.bin"
        p.write_bytes(synthetic_user_app(size, seed=size))
        out[name] = p
    return out


def _new(cli: Any, img: Path, profile: str = "stock", *extra: str) -> None:
    r = cli(
        ["emu", "new", "--platform", "electron", "--profile", profile, "--image", str(img), *extra]
    )
    assert r.exit_code == 0, r.stderr


def test_emu_ota_rejects_200k_on_stock_with_exit_1_and_json_contract(
    cli: Any, tmp_path: Path, app_files: dict[str, Path]
) -> None:
    img = tmp_path / "dev.img"
    _new(cli, img)
    r = cli(["emu", "ota", "--image", str(img), str(app_files["app200"]), "--format", "json"])
    assert r.exit_code == 1
    doc = r.json()
    assert doc["result"] == "rejected" and doc["error"]["code"] == -1300
    assert doc["boot"] == "application" and doc["running"]["size"] == 32 * K
    assert doc["sector_erases"] == {"10": 1, "11": 1}


def test_emu_ota_applies_200k_on_extended_and_show_reports_it(
    cli: Any, tmp_path: Path, app_files: dict[str, Path]
) -> None:
    img = tmp_path / "dev.img"
    _new(cli, img, "extended")
    r = cli(["emu", "ota", "--image", str(img), str(app_files["app200"]), "--format", "json"])
    assert r.exit_code == 0, r.stdout
    assert r.json()["result"] == "applied"
    s = cli(["emu", "show", "--image", str(img), "--format", "json"])
    assert s.exit_code == 0
    doc = s.json()
    user = next(x for x in doc["regions"] if x["name"] == "user_part")
    assert user["content"] == "module" and user["module"]["size"] == 200 * K
    assert user["module"]["crc_ok"] is True
    assert doc["running"]["size"] == 200 * K
    assert doc["dct"]["current"] in (0, 1)
    text = cli(["emu", "show", "--image", str(img)])
    assert text.exit_code == 0 and "user_part" in text.stdout and "flash_modules" in text.stdout


def test_emu_ota_cut_then_boot_resumes_the_copy(
    cli: Any, tmp_path: Path, app_files: dict[str, Path]
) -> None:
    img = tmp_path / "dev.img"
    _new(cli, img, "extended")
    args = ["emu", "ota", "--image", str(img), str(app_files["app256"]), "--format", "json"]
    r = cli([*args, "--cut-at-op", "100000"])  # receive ~70k ops; this is in the copy
    assert r.exit_code == 1
    assert r.json()["result"] == "interrupted" and r.json()["boot"] == "off"
    b = cli(["emu", "boot", "--image", str(img), "--format", "json"])
    assert b.exit_code == 0
    assert b.json()["boot"] == "application" and b.json()["running"]["size"] == 256 * K


def test_emu_install_256k_on_stock_runs(
    cli: Any, tmp_path: Path, app_files: dict[str, Path]
) -> None:
    img = tmp_path / "dev.img"
    _new(cli, img)
    r = cli(["emu", "install", "--image", str(img), str(app_files["app256"]), "--format", "json"])
    assert r.exit_code == 0
    assert r.json()["running"]["size"] == 256 * K


def test_emu_boot_factory_reset_on_stock_restores_the_factory_app(cli: Any, tmp_path: Path) -> None:
    img = tmp_path / "dev.img"
    _new(cli, img)
    r = cli(["emu", "boot", "--image", str(img), "--factory-reset", "--format", "json"])
    assert r.exit_code == 0
    assert r.json()["boot"] == "factory" and r.json()["running"]["module_version"] == 1


def test_emu_bad_input_exits_2_with_precise_errors(cli: Any, tmp_path: Path) -> None:
    img = tmp_path / "dev.img"
    r = cli(["emu", "show", "--image", str(img)])
    assert r.exit_code == 2 and "does not exist" in r.stderr
    img.write_bytes(b"garbage" * 10)
    r = cli(["emu", "show", "--image", str(img)])
    assert r.exit_code == 2 and "not a flashroom device image" in r.stderr
    _new(cli, img, "stock", "--force")
    r = cli(["emu", "new", "--image", str(img)])
    assert r.exit_code == 2 and "--force" in r.stderr
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    r = cli(["emu", "ota", "--image", str(img), str(empty)])
    assert r.exit_code == 2 and "empty" in r.stderr
    r = cli(
        [
            "emu",
            "new",
            "--platform",
            "photon",
            "--profile",
            "extended",
            "--image",
            str(tmp_path / "p.img"),
        ]
    )
    assert r.exit_code == 2 and "Electron only" in r.stderr
    r = cli(["emu", "ota", "--image", str(img), str(empty), "--torn"])
    assert r.exit_code == 2


def test_emu_help_teaches(cli: Any) -> None:
    r = cli(["emu", "ota", "--help"])
    assert r.exit_code == 0 and "--cut-at-op" in r.stdout and "Example" in r.stdout


def test_cli_granularity_choices_match_the_flash_model() -> None:
    from flashroom.cli.emu import GRANULARITIES as CLI_GRANULARITIES
    from flashroom.emu.flash import GRANULARITIES

    assert CLI_GRANULARITIES == GRANULARITIES


def test_emu_ota_torn_chunk_granularity_and_multi_module_install(
    cli: Any, tmp_path: Path, app_files: dict[str, Path]
) -> None:
    img = tmp_path / "dev.img"
    _new(cli, img, "extended", "--granularity", "chunk")
    args = ["emu", "ota", "--image", str(img), str(app_files["app100"]), "--format", "json"]
    r = cli([*args, "--cut-at-op", "100", "--torn", "--seed", "7"])
    assert r.exit_code == 1 and r.json()["result"] == "interrupted"
    b = cli(["emu", "boot", "--image", str(img), "--format", "json"])
    assert b.exit_code == 0 and b.json()["boot"] == "application"
    r = cli(
        [
            "emu",
            "install",
            "--image",
            str(img),
            str(app_files["app200"]),
            str(app_files["app100"]),
            "--format",
            "json",
        ]
    )
    assert r.exit_code == 0 and r.json()["running"]["size"] == 100 * K


def _copy_start_op(app: bytes, bootloader: str) -> int:
    """The op index at which the bootloader copy erases sector 8 in an uncut OTA of ``app``."""
    from flashroom.emu.device import Device

    dev = Device.new("electron", "extended", bootloader)  # type: ignore[arg-type]
    dev.ota(app)
    erases = [e for e in dev.flash.log if e.kind == "erase" and e.addr == 0x08080000]
    assert len(erases) == 1
    return int(erases[0].first_op)


def test_emu_boot_cut_at_op_double_fault_in_the_copy_still_applies_the_update(
    cli: Any, tmp_path: Path, app_files: dict[str, Path]
) -> None:
    """spec 4.5: the slot stays pending (>= 1003), so a cut in the retried copy is retried too."""
    img = tmp_path / "dev.img"
    _new(cli, img, "extended", "--bootloader", "resumable")
    app = app_files["app100"]
    cut = _copy_start_op(app.read_bytes(), "resumable") + 5000
    r = cli(
        ["emu", "ota", "--image", str(img), str(app), "--cut-at-op", str(cut), "--format", "json"]
    )
    assert r.exit_code == 1 and r.json()["result"] == "interrupted"
    # Power on, and cut again 3000 word programs into the retried copy (op 0 is its erase).
    r = cli(
        ["emu", "boot", "--image", str(img), "--cut-at-op", "3000", "--torn", "--format", "json"]
    )
    assert r.json()["result"] == "interrupted"
    assert r.json()["sector_erases"] == {"8": 1}
    r = cli(["emu", "boot", "--image", str(img), "--format", "json"])
    doc = r.json()
    assert doc["boot"] == "application"
    assert doc["running"]["size"] == 100 * K


def test_emu_install_cut_at_op_leaves_a_broken_app_and_safe_mode(
    cli: Any, tmp_path: Path, app_files: dict[str, Path]
) -> None:
    """spec 3.4 + 3.2: DFU writes in place with no atomicity; a cut app fails its CRC check."""
    img = tmp_path / "dev.img"
    _new(cli, img, "extended")
    args = ["emu", "install", "--image", str(img), str(app_files["app200"])]
    r = cli([*args, "--cut-at-op", "20000", "--format", "json"])
    assert r.exit_code == 1 and r.json()["result"] == "interrupted"
    r = cli(["emu", "boot", "--image", str(img), "--format", "json"])
    assert r.json()["boot"] == "safe_mode"
    bad = cli([*args, "--torn"])
    assert bad.exit_code == 2 and "--torn needs --cut-at-op" in bad.stderr
