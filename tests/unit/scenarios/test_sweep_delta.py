"""The delta-ota sweep: every cut point of a delta update (rebuild into the scratch, finish,
bootloader copy) leaves the old app or the new one, never a brick; a cut point reproduces by hand.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from flashroom.emu.device import Device
from flashroom.scenarios.sweep import SweepConfig, run_sweep, save_failing
from flashroom.scenarios.sweep_config import CutResult
from flashroom.scenarios.sweep_scenarios import SCENARIOS

SMALL = 128 * 1024


@pytest.mark.parametrize("torn", [False, True])
def test_every_phase_of_a_delta_update_is_cut_and_survived(torn: bool) -> None:
    res = run_sweep(
        SweepConfig(scenario="delta-ota", granularity="chunk", torn=torn, app_size=SMALL)
    )
    assert res.exhaustive and res.ok
    assert res.counts["brick"] == 0 and res.counts["invariant_violation"] == 0
    labels = res.to_json()["by_label"]
    # the rebuild (streamed writes into the scratch), its erase, the slot record (finish) and
    # the bootloader copy all had cut points
    assert labels["program ota_scratch"] == {"old_app": labels["program ota_scratch"]["old_app"]}
    assert "erase ota_scratch" in labels and "program user_part" in labels
    assert any(k.startswith("program dct") for k in labels)
    assert res.clean_class == "new_app"


def test_the_delta_sweep_erases_the_whole_scratch_once() -> None:
    res = run_sweep(
        SweepConfig(scenario="delta-ota", granularity="chunk", stride=40, app_size=SMALL)
    )
    plan = res.to_json()["erase_plan"]
    assert plan["clean"]["10"] == 1 and plan["clean"]["11"] == 1
    assert res.clean_outcome["sector_erases"]["11"] == 1  # a 128K module: sector 11 too


def test_on_a_device_without_the_capability_the_scenario_sends_raw() -> None:
    res = run_sweep(
        SweepConfig(
            scenario="delta-ota", profile="stock", granularity="chunk", stride=7, app_size=64 * 1024
        )
    )
    assert res.ok and res.clean_class == "new_app"
    assert "program ota_scratch" in res.to_json()["by_label"]


def test_a_cut_point_reproduces_with_the_printed_commands(tmp_path: Path, cli: Any) -> None:
    cfg = SweepConfig(scenario="delta-ota", granularity="chunk", stride=97, app_size=SMALL)
    res = run_sweep(cfg)
    files = save_failing(res, tmp_path)
    assert {p.name for p in files} >= {"device-before.img", "old.bin", "new.bin"}
    point = CutResult(40, False, "", "", "")  # inside the rebuild
    cmds = res.reproduce(point, str(tmp_path))
    assert SCENARIOS["delta-ota"].name == cfg.scenario
    (tmp_path / "device.img").write_bytes((tmp_path / "device-before.img").read_bytes())
    for line in cmds[1:]:
        for part in line.split(" && "):
            argv = shlex.split(part)
            assert argv[0] == "flashroom"
            r = cli(argv[1:])
            assert r.exit_code in (0, 1), r.stderr  # the cut run exits 1 (interrupted)
    dev = Device.load(tmp_path / "device.img")
    assert dev.user_part_bytes() == (tmp_path / "old.bin").read_bytes()
