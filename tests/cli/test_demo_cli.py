"""``flashroom demo --quick`` writes the report with the key facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_demo_quick_writes_report_with_key_facts(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = cli(["demo", "--quick", "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    for name in (
        "report.md",
        "report.json",
        "flash-map.png",
        "export/user-part.ld",
        "export/flash_layout.h",
        "export/layout.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "flash-map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rep = json.loads((out / "report.json").read_text())
    steps = {s["key"]: s for s in rep["steps"]}
    assert rep["ok"] is True
    assert steps["refused_on_stock"]["facts"]["error_code"] == -1300
    assert steps["refused_on_stock"]["facts"]["old_app_unchanged"] is True
    assert steps["delivered_extended"]["facts"]["runs_new_app"] is True
    assert steps["sweep"]["facts"]["counts"]["brick"] == 0
    assert steps["sweep"]["facts"]["legacy_counts"]["invariant_violation"] > 0
    assert steps["layout_192k"]["facts"]["valid"] is False
    md = (out / "report.md").read_text()
    assert "-1300" in md and "flash-map.png" in md
    assert "sector 9" in r.stdout  # the 192K explanation is shown
    # The device flash map before and after each OTA (issue 4's demo): on stock only the
    # scratch changed; on extended the user part now holds the 200K app.
    stock_rows = {row[0]: row for row in steps["refused_on_stock"]["tables"][0]["rows"]}
    assert stock_rows["user_part"][5] == ""
    assert stock_rows["ota_scratch"][5] == "yes"
    ext_rows = {row[0]: row for row in steps["delivered_extended"]["tables"][0]["rows"]}
    assert "204800 bytes" in ext_rows["user_part"][3] and ext_rows["user_part"][5] == "yes"
    assert "before and after" in md
    real = steps["real_code"]["facts"]
    if "skipped" not in real:  # the real Device OS binaries are beside the checkout
        assert real["sweeps"]["1006"]["differing"] == 0 and real["sweeps"]["1006"]["bad"] == 0
        assert real["sweeps"]["1002"]["differing"] == 0 and real["sweeps"]["1002"]["bad"] > 0
        assert real["real_ota_200k_on_stock"] == {"code": -1300, "identical_to_model": True}
        for name in ("timeline-1006.png", "timeline-1002.png"):
            assert (out / name).read_bytes()[:4] == b"\x89PNG" and name in md
    assert steps["real_electron"]["facts"]["skipped"] == "quick mode"


def test_ctrl_c_in_a_demo_step_is_exit_130_naming_the_step(
    cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """Ctrl-C (a KeyboardInterrupt from any step, real code included) is one line naming the
    step it stopped in, exit 130 (issue 12 #11)."""
    import flashroom.report.demo as report_demo

    def interrupted(out: Path, *, on_step: Any, **_kw: Any) -> Any:
        step = type("Step", (), {"ok": True, "title": "t", "lines": [], "tables": []})()
        on_step(step)
        on_step(step)
        raise KeyboardInterrupt

    monkeypatch.setattr(report_demo, "run_demo", interrupted)
    r = cli(["demo", "--out", str(tmp_path / "out")])
    assert r.exit_code == 130, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == ["interrupted: demo stopped in step 3 (2 steps done); nothing was saved"]
