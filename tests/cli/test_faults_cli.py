"""``flashroom emu sweep`` and ``flashroom emu badinput`` in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_sweep_json_extended_chunk_exits_0(cli: Any) -> None:
    r = cli(["emu", "sweep", "--granularity", "chunk", "--stride", "5", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    j = r.json()
    assert j["ok"] is True
    assert j["counts"]["brick"] == 0 and j["counts"]["invariant_violation"] == 0
    assert j["exhaustive"] is False
    assert j["config"]["stride"] == 5


def test_sweep_legacy_exits_1_with_reproduce_command(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "fail"
    r = cli(
        [
            "emu",
            "sweep",
            "--bootloader",
            "legacy",
            "--granularity",
            "chunk",
            "--save-failing",
            str(out),
            "--format",
            "json",
        ]
    )
    assert r.exit_code == 1
    j = r.json()
    ff = j["first_failure"]
    assert ff is not None and ff["outcome"] == "invariant_violation"
    assert any(f"--cut-at-op {ff['cut_at_op']}" in c for c in j["reproduce"])
    for name in ("device-before.img", "old.bin", "new.bin", "reproduce.sh"):
        assert (out / name).is_file()
    assert (out / "new.bin").stat().st_size == 256 * 1024


def test_sweep_text_output_names_the_classes(cli: Any) -> None:
    r = cli(["emu", "sweep", "--granularity", "chunk", "--stride", "7", "--scenario", "system-ota"])
    assert r.exit_code == 0, r.stderr
    for word in ("new_app", "old_app", "brick", "invariant_violation", "not exhaustive"):
        assert word in r.stdout


def test_sweep_rejects_bad_stride(cli: Any) -> None:
    r = cli(["emu", "sweep", "--stride", "0"])
    assert r.exit_code == 2
    assert "stride" in r.stderr


def test_badinput_json_all_refused(cli: Any) -> None:
    r = cli(["emu", "badinput", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    j = r.json()
    assert j["summary"]["cases"] >= 30
    # every case refused, but the documented hazards flashroom's server never sends
    assert j["summary"]["refused"] + j["summary"]["hazard"] == j["summary"]["cases"]
    # the zero-length update; the wrapping file_address is refused by the extended system
    assert j["summary"]["hazard"] == 1
    stock = cli(["emu", "badinput", "--profile", "stock", "--format", "json"]).json()
    assert stock["summary"]["hazard"] == 2  # there it erases the bootloader


def test_badinput_single_case_text(cli: Any) -> None:
    r = cli(["emu", "badinput", "--case", "bad_crc"])
    assert r.exit_code == 0
    assert "-1330" in r.stdout


def test_badinput_unknown_case_exits_2(cli: Any) -> None:
    r = cli(["emu", "badinput", "--case", "nope"])
    assert r.exit_code == 2
    assert "nope" in r.stderr
