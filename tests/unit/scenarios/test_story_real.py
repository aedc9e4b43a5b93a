"""The demo's real-Electron step on the shared build (issue 11 part 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flashroom.scenarios.story_real import DEMO_APPS, DEMO_STOCK_APPS, step_real_electron


def test_the_real_electron_step_builds_runs_packages_and_plans(
    devos_build: Any, real_binaries: Path, tmp_path: Path
) -> None:
    # the same apps as the tests' devos_build fixture: one cached build for make test and demo
    assert {p.name for p in devos_build.manifest.modules if p.app} >= {
        f"user-part-{a}" for a in DEMO_APPS
    }
    assert set(DEMO_STOCK_APPS) == set(devos_build.stock_links)
    step = step_real_electron(tmp_path)
    assert step.ok, step.lines
    f = step.facts
    assert f["big_app"]["result"] == "applied" and f["on_stock"]["code"] == -1300
    assert f["idx2_size"] <= 128 * 1024
    assert [r["result"] for r in f["migration_emulated"]] == ["applied"] * 4
    assert "FLASHING.md" in f["packaged"]
    assert (tmp_path / "electron-build" / "FLASHING.md").is_file()
    assert any(n.endswith(".dfu") for n in f["packaged"])
