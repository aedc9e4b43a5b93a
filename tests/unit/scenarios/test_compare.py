"""The model against the real code, from the same state (issue 10 part 3), and the timeline
picture (part 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashroom.emu.device import Device
from flashroom.errors import ParamError
from flashroom.particle.build import synthetic_user_app
from flashroom.scenarios.compare import (
    Comparison,
    Difference,
    FlashOp,
    Trace,
    compare_run,
    difference,
)
from flashroom.scenarios.sweep import SweepConfig, run_sweep

K = 1024
BL_1006 = "electron-bootloader@v2.3.1.bin"
BL_1002 = "electron-bootloader@v2.0.0-rc.1.bin"


def _trace(**kw: object) -> Trace:
    base: dict[str, object] = {
        "boot": "application",
        "bootloader_runs": ("jump",),
        "ops": (FlashOp("program", 0x08004000, 4, 4),),
        "flash": b"\xff" * 16,
        "regs": (0,) * 20,
    }
    base.update(kw)
    return Trace(**base)  # type: ignore[arg-type]


def test_difference_names_the_first_aspect_that_differs() -> None:
    t = _trace()
    assert difference(t, _trace()) is None
    assert difference(t, _trace(boot="safe_mode")).what == "boot"  # type: ignore[union-attr]
    d = difference(t, _trace(ops=(FlashOp("program", 0x08004000, 4, 2),)))
    assert d is not None and d.what == "operations" and "width 2" in d.real
    d = difference(t, _trace(flash=b"\xff" * 8 + b"\x00" + b"\xff" * 7))
    assert d is not None and d.what == "flash" and "0x08000008" in d.real
    d = difference(t, _trace(regs=(0,) * 9 + (1,) + (0,) * 10))
    assert d is not None and d.what == "backup_registers" and d.real.startswith("DR9")


def test_compare_run_sees_a_step_that_differs_by_engine() -> None:
    # the machinery itself: a step that writes only when the real engine is selected
    dev = Device.new("electron", "extended")

    def step() -> None:
        if dev.use_real_code:
            dev.flash.program(0x080E0000, b"\x00\x00\x00\x00")

    model, real, diff = compare_run(dev, step)
    assert diff is not None and diff.what == "operations"
    assert len(model.ops) == 0 and len(real.ops) == 1


def test_comparison_keeps_the_earliest_difference() -> None:
    c = Comparison()
    c.add(None)
    c.add(Difference("flash", "a", "b", cut_at_op=9))
    other = Comparison()
    other.add(Difference("boot", "a", "b", cut_at_op=3))
    c.merge(other)
    j = c.to_json()
    assert (j["points"], j["identical"], j["differing"]) == (3, 1, 2)
    assert j["first_difference"]["cut_at_op"] == 3
    assert j["by_aspect"] == {"boot": 1, "flash": 1}


def test_a_pending_apply_is_identical_in_model_and_real(real_binaries: Path) -> None:
    dev = Device.new("electron", "extended", bootloader_firmware=real_binaries / BL_1006)
    app = synthetic_user_app(255 * K, seed=3)
    model, real, diff = compare_run(dev, lambda: dev.ota(app))
    assert diff is None, diff
    assert len(real.ops) == len(model.ops) > 130_000


def test_the_real_ota_path_leaves_what_the_model_leaves(real_binaries: Path) -> None:
    dev = Device.new(
        "electron",
        "stock",
        bootloader_firmware=real_binaries / BL_1006,
        system_firmware=real_binaries,
    )
    app = synthetic_user_app(200 * K, seed=3)
    _model, real, diff = compare_run(dev, lambda: dev.ota(app))
    assert diff is None, diff  # spec 11.2: flash, DCT, slot, and now the backup registers
    assert real.result.error.code == -1300


def test_compare_model_needs_a_real_bootloader() -> None:
    with pytest.raises(ParamError) as e:
        SweepConfig(compare_model=True).validate()
    assert e.value.params == ("compare_model", "bootloader_firmware")


def _sweep(real_binaries: Path, bl: str, **kw: object) -> object:
    opts: dict[str, object] = {
        "profile": "extended",
        "scenario": "user-ota",
        "app_size": 256 * K,
        "granularity": "chunk",
        "torn": True,
        "first_op": 505,  # the end of the receive, the DCT writes and the copy (chunk ops)
        "bootloader_firmware": str(real_binaries / bl),
        "compare_model": True,
        "keep_points": True,
    }
    opts.update(kw)
    return run_sweep(SweepConfig(**opts))  # type: ignore[arg-type]


def test_resumable_sweep_shows_zero_differences_and_zero_bad(real_binaries: Path) -> None:
    r = _sweep(real_binaries, BL_1006)
    assert r.config.effective_method == "replay"  # type: ignore[attr-defined]
    j = r.to_json()  # type: ignore[attr-defined]
    assert j["comparison"]["differing"] == 0 and j["comparison"]["points"] == j["points"]
    assert j["bad"] == 0 and j["counts"]["new_app"] > 0
    assert j["bootloader_firmware"]["module_version"] == 1006
    assert j["config"]["method_used"] == "replay"


def test_legacy_hazard_is_where_the_model_says_it_is(real_binaries: Path) -> None:
    r = _sweep(real_binaries, BL_1002)
    j = r.to_json()  # type: ignore[attr-defined]
    assert j["bad"] > 0
    assert j["comparison"]["differing"] == 0
    pts = r.point_outcomes  # type: ignore[attr-defined]
    assert pts and all(p[3] == p[4] for p in pts)
    assert {p[0] for p in pts if p[3] == "invariant_violation"}  # the hazard window


def test_word_granularity_sample_says_it_sampled(real_binaries: Path) -> None:
    cfg = SweepConfig(
        profile="extended",
        app_size=64 * K,
        granularity="word",
        sample=12,
        seed=4,
        bootloader_firmware=str(real_binaries / BL_1006),
        compare_model=True,
    )
    j = run_sweep(cfg).to_json()
    assert j["config"]["sample"] == 12 and j["exhaustive"] is False
    assert j["comparison"]["points"] == 12 and j["comparison"]["differing"] == 0


def test_the_timeline_has_the_phases_in_order_and_is_a_png(
    real_binaries: Path, tmp_path: Path
) -> None:
    from flashroom.report.plot import merged_phases, plot_sweep

    for bl, order in (
        (BL_1006, ["scratch erase", "receive", "DCT set", "copy", "DCT clear"]),
        (BL_1002, ["scratch erase", "receive", "DCT set", "DCT clear", "copy"]),
    ):
        r = _sweep(real_binaries, bl, first_op=520)
        assert [p for p, _, _ in merged_phases(r.phases, r.reset_op)] == order  # type: ignore[attr-defined]
        out = plot_sweep(r, tmp_path / f"{bl}.png")  # type: ignore[arg-type]
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
