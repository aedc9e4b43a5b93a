"""The over-the-air migration stock 2.3.1 -> extended: the planner (pure), its emulation, and the
``migrate`` sweep scenario (issue 11 part 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashroom.devos.migrate import (
    embedded_bootloader_version,
    load_migration_modules,
    module_key,
    plan_migration,
    synthetic_migration_modules,
)
from flashroom.errors import ParamError
from flashroom.scenarios.migrate import emulate_plan
from flashroom.scenarios.sweep import SweepConfig, run_sweep


def test_the_dependency_chain_forces_idx3_idx1_idx2_then_the_app() -> None:
    plan = plan_migration(synthetic_migration_modules())
    assert plan.ok and plan.power_safe
    assert [module_key(s.module) for s in plan.steps] == ["idx3", "idx1", "idx2", "app"]
    assert [s.profile_before for s in plan.steps] == ["stock", "stock", "stock", "extended"]
    assert plan.steps[2].profile_after == "extended"
    # every system part fits the stock 128K OTA region; the app needs the extended 256K one
    assert all(len(s.module.data) <= s.scratch for s in plan.steps)
    assert plan.steps[3].scratch == 256 * 1024


def test_the_big_app_first_is_refused_with_minus_1300() -> None:
    plan = plan_migration(synthetic_migration_modules(), order=["app", "idx3", "idx1", "idx2"])
    assert not plan.ok and plan.refusal is not None
    assert plan.refusal.step == 1 and plan.refusal.expected_error == -1300
    assert "128K" in plan.refusal.reason


def test_idx2_before_its_dependencies_is_refused_naming_the_dependency() -> None:
    plan = plan_migration(synthetic_migration_modules(), order=["idx2", "idx3", "idx1", "app"])
    assert plan.refusal is not None and plan.refusal.expected_error == -1340
    assert "system part idx 1 >= 2350" in plan.refusal.reason


def test_an_order_that_stops_short_is_refused() -> None:
    plan = plan_migration(synthetic_migration_modules(), order=["idx3", "idx1"])
    assert plan.refusal is not None and "ends before" in plan.refusal.reason


def test_a_bad_order_key_is_a_param_error() -> None:
    with pytest.raises(ParamError, match="idx9"):
        plan_migration(synthetic_migration_modules(), order=["idx9"])


def test_an_older_fleet_bootloader_makes_the_idx3_step_not_power_safe() -> None:
    plan = plan_migration(synthetic_migration_modules(), fleet_bootloader=1002)
    first = plan.steps[0]
    assert module_key(first.module) == "idx3" and not first.power_safe
    assert any("rewrites sector 0" in h for h in first.hazards)
    assert all(s.power_safe for s in plan.steps[1:])  # 1004 runs from the next boot on


def test_the_emulated_device_does_what_the_plan_says() -> None:
    runs = emulate_plan(plan_migration(synthetic_migration_modules()))
    assert [r.result for r in runs] == ["applied"] * 4 and all(r.agrees for r in runs)
    assert [r.system_after for r in runs] == ["stock", "stock", "extended", "extended"]
    assert all(r.wire_bytes and r.wire_bytes > 0 for r in runs)  # over the emulated 3G link
    refused = emulate_plan(
        plan_migration(synthetic_migration_modules(), order=["app", "idx3", "idx1", "idx2"])
    )
    assert [(r.result, r.error_code, r.agrees) for r in refused] == [("rejected", -1300, True)]


def test_the_migrate_sweep_has_zero_bad_points() -> None:
    r = run_sweep(SweepConfig(profile="stock", scenario="migrate", granularity="chunk", torn=True,
                              workers=1))  # fmt: skip
    j = r.to_json()
    assert j["bad"] == 0 and j["counts"]["new_app"] > 0 and j["points"] > 2000
    assert len(r.reset_ops) == 4  # one reset per update


def test_the_migrate_sweep_finds_the_bootloader_rewrite_of_an_old_fleet() -> None:
    r = run_sweep(SweepConfig(profile="stock", bootloader="legacy", scenario="migrate",
                              granularity="chunk", torn=True, workers=1))  # fmt: skip
    j = r.to_json()
    assert j["bad"] > 0
    assert j["by_label"]["program bootloader"].get("brick", 0) > 0  # the spec 4.7 rewrite


def test_migrate_needs_the_stock_profile() -> None:
    with pytest.raises(ParamError) as e:
        SweepConfig(profile="extended", scenario="migrate").validate()
    assert e.value.params == ("scenario", "profile")


def test_embedded_bootloader_scan() -> None:
    idx3 = next(m for m in synthetic_migration_modules() if module_key(m) == "idx3")
    assert embedded_bootloader_version(idx3.data) == 1004
    assert embedded_bootloader_version(b"\xff" * 4096) is None


# ------------------------------------------------------------------ with the real build


def test_the_real_build_plans_and_migrates_on_the_real_code(
    devos_build: Any, real_binaries: Path
) -> None:
    mods = load_migration_modules(devos_build.out)
    plan = plan_migration(mods)
    assert [module_key(s.module) for s in plan.steps] == ["idx3", "idx1", "idx2", "app"]
    idx3 = plan.steps[0].module
    assert idx3.embedded_bootloader == 1004  # the real patched idx 3 embeds 2.3.1's 1004
    runs = emulate_plan(
        plan,
        bootloader_firmware=real_binaries / "electron-bootloader@v2.3.1.bin",
        system_firmware=real_binaries,
        also_system_firmware=(devos_build.out,),
    )
    assert [r.result for r in runs] == ["applied"] * 4
    assert runs[-1].ota_path == "real" and runs[-1].system_after == "extended"
    big_first = plan_migration(mods, order=["app", "idx3", "idx1", "idx2"])
    refused = emulate_plan(
        big_first, system_firmware=real_binaries, also_system_firmware=(devos_build.out,)
    )
    assert (refused[0].result, refused[0].error_code, refused[0].ota_path) == (
        "rejected",
        -1300,
        "real",
    )


def test_the_migrate_plan_cli(cli: Any) -> None:
    r = cli(["devos", "migrate-plan", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["ok"] and doc["emulation_agrees"] and len(doc["steps"]) == 4
    bad = cli(["devos", "migrate-plan", "--order", "app,idx3,idx1,idx2", "--format", "json"])
    assert bad.exit_code == 1 and bad.json()["refusal"]["expected_error"] == -1300
