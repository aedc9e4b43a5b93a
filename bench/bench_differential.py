"""Model-vs-real differential power-loss sweeps (issue 10): what they cost and what bounds them.

A differential sweep (``SweepConfig(bootloader_firmware=..., compare_model=True)``) boots the real
v2.3.1 bootloader (Unicorn) and the Python model from the same state at every cut point and
compares flash, backup registers, boot outcome and operation sequence. Measured in this run, on
the 256 KB user-OTA scenario of the extended profile, torn cuts included:

* chunk granularity, exhaustive (~1066 points): points/s with 1 and 2 local workers and the
  speed-up, the same sweep on a Dask ``LocalCluster`` of 2 worker processes started here (with
  a computed check that the counts, the comparison and every point's outcome equal the local
  run's), and the cost of the real code: the differential sweep's wall / a model-only
  ``replay`` sweep (every point booted, no real code) of the same config;
* issue 10's target (the chunk sweep with 2 workers in at most 5 minutes), with the split of
  the cost between cut points in the receive phase (ops before the clean run's reset, where the
  recovery boot just jumps to the old app) and in the apply phase (the bootloader copies the
  256 KB image again);
* word granularity, a seeded sample of 40 cut points (80 with torn variants), and the
  exhaustive sweep extrapolated from it.

Wall times are ``SweepResult.wall_s`` (set-up included) and only ever appear as ratios or rates
of runs in this process; the machine may be shared, so the rates are what it gave this run.
Every differential run's model/real differences are summed into one row with target ``== 0``.

Needs the real binaries (``shared/fixtures/device-os`` above the repo or
``$FLASHROOM_DEVICE_OS_FIXTURES``); without them the benchmark reports that and nothing else.
The Dask row needs ``distributed``; without it that row says so.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

KiB = 1024
APP = 256 * KiB
#: issue 10: the chunk-granularity differential sweep with --workers 2 in at most 5 minutes
TARGET_S = 300.0
WORD_SAMPLE = 40


def _row(
    metric: str, value: Any, unit: str = "", target: str = "", note: str = ""
) -> dict[str, Any]:
    return {"metric": metric, "value": value, "unit": unit, "target": target, "note": note}


def _fixtures() -> Path | None:
    from flashroom.devos.tree import find_device_os_binaries

    return find_device_os_binaries(Path(__file__))


def _rate(r: Any) -> float:
    return float(r.points / r.wall_s) if r.wall_s > 0 else 0.0


def _cmp(r: Any) -> str:
    c = r.comparison
    if c is None:
        return "no comparison"
    return f"compared {c.points}, identical {c.identical}, differing {c.differing}"


def _outcomes(r: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in r.counts.items() if v) or "none"


def _same(a: Any, b: Any) -> list[str]:
    """What differs between two sweeps of the same points (empty: identical results)."""
    out = []
    for name in ("points", "counts", "boots", "by_label", "point_outcomes", "booted", "proven"):
        if getattr(a, name) != getattr(b, name):
            out.append(name)
    ca = None if a.comparison is None else a.comparison.to_json()
    cb = None if b.comparison is None else b.comparison.to_json()
    if ca != cb:
        out.append("comparison")
    if [f.to_json() for f in a.failures] != [f.to_json() for f in b.failures]:
        out.append("failures")
    return out


def run() -> dict[str, Any]:
    d = _fixtures()
    if d is None:
        return {"rows": [_row("skipped: no Device OS binaries", 0, note="see module docstring")]}

    from flashroom.scenarios.sweep import SweepConfig, run_sweep
    from flashroom.scenarios.sweep_pool import split

    cfg = SweepConfig(
        profile="extended",
        scenario="user-ota",
        app_size=APP,
        granularity="chunk",
        torn=True,
        bootloader_firmware=str(d / "electron-bootloader@v2.3.1.bin"),
        compare_model=True,
        keep_points=True,
        workers=1,
    )
    rows: list[dict[str, Any]] = []
    differential: list[Any] = []  # every run with compare_model, for the differences row

    # 1. exhaustive chunk sweep, 1 and 2 local workers
    load0 = os.getloadavg()[0]
    w1 = run_sweep(cfg)
    w2 = run_sweep(replace(cfg, workers=2))
    load1 = os.getloadavg()[0]
    differential += [w1, w2]
    what = (
        f"chunk, torn, 256K user-ota, extended, exhaustive: {w1.points} points "
        f"({w1.total_ops} ops x 2)"
    )
    rows.append(
        _row(
            "differential points/s, local, 1 worker",
            round(_rate(w1), 1),
            "points/s",
            note=f"{what}; wall {w1.wall_s:.1f} s; {_cmp(w1)}; bad {w1.bad}",
        )
    )
    diff12 = _same(w1, w2)
    same12 = (
        "results identical to 1 worker"
        if not diff12
        else f"RESULTS DIFFER from 1 worker in {', '.join(diff12)}"
    )
    rows.append(
        _row(
            "differential points/s, local, 2 workers",
            round(_rate(w2), 1),
            "points/s",
            note=f"same sweep, workers=2; wall {w2.wall_s:.1f} s; {_cmp(w2)}; bad {w2.bad}; "
            f"{same12}",
        )
    )
    rows.append(
        _row(
            "  2-worker / 1-worker speed-up",
            round(w1.wall_s / w2.wall_s, 2),
            "x",
            note=f"wall ratio of the two runs above on {os.cpu_count()} cores, 1-min load "
            f"average {load0:.1f} before and {load1:.1f} after (other work shares the cores); "
            "see the target row for the ideal",
        )
    )

    # 2. the same sweep on a Dask LocalCluster of 2 worker processes
    rows.append(_dask_row(cfg, w2, run_sweep, differential))

    # 3. what the real code costs: differential / model-only replay, same points
    model = run_sweep(
        replace(cfg, bootloader_firmware=None, compare_model=False, method="replay", workers=1)
    )
    same_counts = model.counts == w1.counts and model.point_outcomes == [
        (n, t, rc, out, None) for n, t, rc, out, _m in w1.point_outcomes
    ]
    same_model = (
        "outcomes identical to the real run's"
        if same_counts
        else "OUTCOMES DIFFER from the real run's"
    )
    rows.append(
        _row(
            "real+model differential / model-only sweep, same points",
            round(w1.wall_s / model.wall_s, 1),
            "x",
            note=f"workers=1 both; model-only method replay boots every point: {model.points} "
            f"points ({model.total_ops} ops) in {model.wall_s:.2f} s ({_rate(model):.0f}/s); "
            f"{same_model}",
        )
    )

    # 4. issue 10's target, and what bounds it: receive-phase vs apply-phase cut points
    rows.extend(_target_rows(cfg, w1, w2, run_sweep, split, differential))

    # 5. word granularity: a seeded sample, and the exhaustive sweep extrapolated
    word = run_sweep(replace(cfg, granularity="word", sample=WORD_SAMPLE, seed=1, workers=2))
    differential.append(word)
    wrate = _rate(word)
    rows.append(
        _row(
            "differential points/s, word granularity, sampled",
            round(wrate, 2),
            "points/s",
            note=f"sample={WORD_SAMPLE} seed=1 torn workers=2 of {word.total_ops} ops: "
            f"{word.points} points in {word.wall_s:.1f} s; {_cmp(word)}; bad {word.bad}",
        )
    )
    rows.append(
        _row(
            "word-granularity exhaustive differential estimate",
            round(word.total_ops * 2 / wrate / 3600, 1) if wrate else "n/a",
            "h",
            note=f"{word.total_ops} ops x 2 (torn) / the sample's rate, 2 workers; "
            "extrapolated from the sample; this is why word granularity is sampled",
        )
    )

    differing = sum(r.comparison.differing for r in differential if r.comparison is not None)
    compared = sum(r.comparison.points for r in differential if r.comparison is not None)
    firsts = [
        r.comparison.first_difference.to_json()
        for r in differential
        if r.comparison is not None and r.comparison.first_difference is not None
    ]
    rows.append(
        _row(
            "model/real differing points, all differential runs",
            differing,
            "points",
            target="== 0",
            note=f"{compared} points compared in {len(differential)} runs"
            + (f"; FIRST DIFFERENCE {firsts[0]}" if firsts else ""),
        )
    )
    return {"name": "bench_differential", "rows": rows}


def _dask_row(cfg: Any, local: Any, run_sweep: Any, differential: list[Any]) -> dict[str, Any]:
    metric = "differential points/s, Dask LocalCluster 2 workers"
    try:
        # its API is only partly typed (as in flashroom.scenarios.sweep_pool), so used as Any
        dist: Any = importlib.import_module("distributed")
    except ImportError:
        return _row(metric, "n/a", note="skipped: distributed is not installed")
    with dist.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        remote = run_sweep(replace(cfg, workers=2, scheduler=cluster.scheduler_address))
    differential.append(remote)
    diff = _same(local, remote)
    verdict = (
        "counts, comparison and every point's outcome identical to the local 2-worker run"
        if not diff
        else f"RESULTS DIFFER from the local 2-worker run in {', '.join(diff)}"
    )
    return _row(
        metric,
        round(_rate(remote), 1),
        "points/s",
        note=f"same sweep, scheduler=LocalCluster(n_workers=2, threads_per_worker=1, "
        f"processes=True) started here (start-up not timed); wall {remote.wall_s:.1f} s "
        f"= {local.wall_s / remote.wall_s:.2f}x the local 2-worker speed; {verdict}",
    )


def _target_rows(
    cfg: Any, w1: Any, w2: Any, run_sweep: Any, split: Any, differential: list[Any]
) -> list[dict[str, Any]]:
    reset = w1.reset_op
    target_note = "the 2-worker run above"
    phase_rows: list[dict[str, Any]] = []
    if reset is None or not 0 < reset < w1.total_ops:
        target_note += f"; no receive/apply split (reset op {reset})"
    else:
        # set-up alone (a 1-op sweep: 2 cheap receive-phase points), to take out of the phases
        setup = run_sweep(replace(cfg, keep_points=False, last_op=1)).wall_s
        recv = run_sweep(replace(cfg, keep_points=False, last_op=reset))
        apply = run_sweep(replace(cfg, keep_points=False, first_op=reset))
        differential += [recv, apply]
        apply_labels = sorted({lab for lab, lo, _hi in w1.phases if lo >= reset})
        recv_s, apply_s = max(recv.wall_s - setup, 1e-9), max(apply.wall_s - setup, 1e-9)
        share = apply_s / (recv_s + apply_s)
        per_apply, per_recv = apply_s / apply.points, recv_s / recv.points
        chunks = split(list(range(w1.total_ops)), 2)
        heavy = [sum(1 for n in p if n >= reset) for p in chunks]
        n_heavy = sum(1 for k in heavy if k)
        per_cut = apply.points // max(1, sum(heavy))  # 2 with torn
        heaviest = max(heavy) * per_cut * per_apply
        ideal = setup + max((recv_s + apply_s) / 2, heaviest)
        phase_rows = [
            _row(
                "  receive-phase differential points/s (ops < reset op)",
                round(_rate(recv), 1),
                "points/s",
                note=f"workers=1, first_op=0 last_op={reset}: {recv.points} points in "
                f"{recv.wall_s:.1f} s (set-up {setup:.2f} s included; {per_recv * 1e3:.1f} ms "
                f"per point without it); outcomes {_outcomes(recv)}",
            ),
            _row(
                "  apply-phase differential points/s (ops >= reset op)",
                round(_rate(apply), 2),
                "points/s",
                note=f"workers=1, first_op={reset}: {apply.points} points in "
                f"{apply.wall_s:.1f} s ({per_apply * 1e3:.0f} ms per point without set-up, "
                f"{per_apply / per_recv:.0f}x a receive point); phases "
                f"{', '.join(apply_labels)}; outcomes {_outcomes(apply)}",
            ),
        ]
        target_note += (
            f"; the {apply.points} apply-phase points ({apply.points / w1.points:.1%} of them) "
            f"take {share:.0%} of the 1-worker point time (a recovery boot there may run "
            f"the 256K copy again); they fall in {n_heavy} of the {len(chunks)} contiguous chunks "
            f"(the heaviest holds {max(heavy) * per_cut} of them, ~{heaviest:.1f} s), so on 2 "
            f"free cores the 2-worker wall would be ~{ideal:.1f} s (set-up + max(half the "
            f"1-worker point time, the heaviest chunk))"
        )
    return [
        _row(
            "chunk-granularity 256K user-OTA torn differential, --workers 2: wall / 300 s",
            round(w2.wall_s / TARGET_S, 3),
            "x",
            target="<= 1",
            note=f"{w2.wall_s:.1f} s / {TARGET_S:.0f} s (issue 10: at most 5 minutes); "
            + target_note,
        ),
        *phase_rows,
    ]


if __name__ == "__main__":
    for row in run()["rows"]:
        print(row)
