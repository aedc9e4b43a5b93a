"""``flashroom layout ...`` in-process: exit codes, JSON contracts, the explanations users need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flashroom.layout import PLATFORMS, get_layout


def _flat(text: str) -> str:
    """Collapse rich's line wrapping so phrases can be searched for."""
    return " ".join(text.split())


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_show_text_lists_every_region_with_hex_addresses(cli: Any, platform: str) -> None:
    res = cli(["layout", "show", "--platform", platform])
    assert res.exit_code == 0, res.stderr
    for r in get_layout(platform).regions:
        assert r.name in res.stdout
        assert f"0x{r.start:08x}" in res.stdout


def test_show_json_is_the_contract(cli: Any) -> None:
    res = cli(
        ["layout", "show", "--platform", "electron", "--layout", "extended", "--format", "json"]
    )
    assert res.exit_code == 0
    j = res.json()
    assert (j["platform"], j["platform_id"], j["layout"]) == ("electron", 10, "extended")
    up = next(r for r in j["regions"] if r["name"] == "user_part")
    assert (up["start"], up["end"], up["size"], up["sectors"]) == (
        134742016,
        135004160,
        262144,
        [8, 9],
    )
    assert [r["name"] for r in j["regions"]][-2:] == ["user_part", "ota_scratch"]


def test_show_photon_extended_exits_2_with_the_reason(cli: Any) -> None:
    res = cli(["layout", "show", "--platform", "photon", "--layout", "extended"])
    assert res.exit_code == 2
    assert "system OTA" in res.stderr and "docs/device-os.md#photon-ota" in res.stderr


def test_check_192k_explains_sector_9_and_exits_1(cli: Any) -> None:
    res = cli(
        [
            "layout",
            "check",
            "--platform",
            "electron",
            "--user-size",
            "192K",
            "--ota-size",
            "192K",
        ]
    )
    assert res.exit_code == 1
    out = _flat(res.stdout)
    assert "sector 9 (0x080a0000-0x080c0000) would be shared by user_part and ota_scratch" in out
    assert "smallest erasable unit" in out


def test_check_192k_json_has_valid_and_violations(cli: Any) -> None:
    res = cli(
        [
            "layout",
            "check",
            "--platform",
            "electron",
            "--user-size",
            "192K",
            "--ota-size",
            "192K",
            "--format",
            "json",
        ]
    )
    assert res.exit_code == 1
    j = res.json()
    assert j["valid"] is False
    rules = {(v["rule"], v["address"]) for v in j["violations"]}
    assert ("sector_shared", 0x080A0000) in rules
    for v in j["violations"]:
        assert set(v) >= {"rule", "region", "address", "expected", "message"}


@pytest.mark.parametrize(
    "args",
    [
        ["--platform", "electron", "--layout", "extended"],
        ["--platform", "electron"],
        ["--platform", "photon"],
        ["--platform", "electron", "--user-size", "256K"],
    ],
)
def test_check_valid_layouts_exit_0(cli: Any, args: list[str]) -> None:
    res = cli(["layout", "check", *args, "--format", "json"])
    assert res.exit_code == 0, res.stdout
    assert res.json()["valid"] is True and res.json()["violations"] == []


def test_check_photon_256k_explains_lost_system_ota(cli: Any) -> None:
    res = cli(["layout", "check", "--platform", "photon", "--user-size", "256K"])
    assert res.exit_code == 1
    out = _flat(res.stdout)
    assert "ota_scratch_capacity" in out
    assert "cannot keep system OTA" in out
    assert "sector 11 is both the factory area and the OTA scratch" in out


def test_check_layout_and_sizes_together_is_bad_usage(cli: Any) -> None:
    res = cli(
        ["layout", "check", "--platform", "electron", "--layout", "stock", "--user-size", "1K"]
    )
    assert res.exit_code == 2
    assert "either --layout or --user-size" in res.stderr


def test_check_rejects_a_bad_size_precisely(cli: Any) -> None:
    res = cli(["layout", "check", "--platform", "electron", "--user-size", "192Q"])
    assert res.exit_code == 2
    assert "192Q" in res.stderr


def test_plan_200k_chooses_extended(cli: Any) -> None:
    res = cli(
        ["layout", "plan", "--platform", "electron", "--app-size", "200K", "--format", "json"]
    )
    assert res.exit_code == 0
    j = res.json()
    assert j["layout"] == "extended"
    assert j["max_app_size"] == 262144
    assert j["system_ota_capacity"] == 262144
    assert any("factory reset" in g for g in j["gives_up"])


def test_plan_text_reports_max_size_gives_up_and_ota(cli: Any) -> None:
    res = cli(["layout", "plan", "--platform", "electron", "--app-size", "200K"])
    out = _flat(res.stdout)
    assert res.exit_code == 0
    assert "chosen layout: extended" in out
    assert "max app size: 256K" in out
    assert "gives up: factory reset" in out
    assert "system OTA capacity: 256K" in out


@pytest.mark.parametrize(("platform", "size"), [("electron", "300K"), ("photon", "200K")])
def test_plan_without_a_fit_exits_1_with_reason(cli: Any, platform: str, size: str) -> None:
    res = cli(["layout", "plan", "--platform", platform, "--app-size", size, "--format", "json"])
    assert res.exit_code == 1
    j = res.json()
    assert j["layout"] is None and j["fits"] is False
    assert "OTA scratch" in j["reason"]
    text = cli(["layout", "plan", "--platform", platform, "--app-size", size])
    assert text.exit_code == 1 and "NO FIT" in text.stdout


def test_plan_small_app_keeps_stock(cli: Any) -> None:
    res = cli(
        ["layout", "plan", "--platform", "electron", "--app-size", "100K", "--format", "json"]
    )
    assert res.exit_code == 0 and res.json()["layout"] == "stock"
    assert res.json()["gives_up"] == []


def test_export_writes_all_five_files_and_json_matches_show(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "new"
    res = cli(
        [
            "layout",
            "export",
            "--platform",
            "electron",
            "--layout",
            "extended",
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "flash-map.png",
        "flash-map.svg",
        "flash_layout.h",
        "layout.json",
        "user-part.ld",
    ]
    show = cli(
        ["layout", "show", "--platform", "electron", "--layout", "extended", "--format", "json"]
    )
    assert json.loads((out / "layout.json").read_text()) == {
        k: v for k, v in show.json().items() if k != "warnings"
    }
    assert json.loads((out / "layout.json").read_text())["layout"] == "extended"
    assert "ORIGIN = 0x08080000, LENGTH = 0x00040000" in (out / "user-part.ld").read_text()
    svg = (out / "flash-map.svg").read_text()
    assert "stock" in svg and "extended" in svg  # stock beside the chosen layout


def test_layout_help_teaches_with_an_example(cli: Any) -> None:
    for verb in ("show", "check", "plan", "export"):
        res = cli(["layout", verb, "--help"])
        assert res.exit_code == 0
        assert "Example" in res.stdout and "flashroom layout" in res.stdout
