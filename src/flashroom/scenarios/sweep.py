"""Exhaustive power-loss sweeps: cut power before every flash operation of an update, reboot,
and check that the device still boots a valid image (old or new, never a mix).

How a sweep works (the MCUboot simulator's method, anchors 1.3, plus what it lacks: torn
operations, recovery cuts and bit-level NOR physics):

1. Build the device deterministically from :class:`SweepConfig` (a fresh embedded-default device,
   an *old* app installed by DFU and booted), and snapshot it.
2. Run the scenario once, uncut, recording every flash mutation call (kind, address, data and the
   operation-index range it covers). This gives the op count ``N`` and the clean outcome.
3. For each cut point ``n`` (with ``torn``, a torn variant too) rebuild the flash state the device
   would have when power fails at operation ``n``, boot it again (the recovery boot), classify.
   :mod:`flashroom.scenarios.sweep_engine` explains the three methods (``equiv``, ``replay``,
   ``rerun``) and why they agree; the tests compare them point by point.
4. Optionally cut power again during the recovery boot (``recovery_cuts``), then boot once more.

Outcome classes (:data:`OUTCOMES`): ``new_app`` / ``old_app`` (the updated region holds exactly
the new / old module and the device runs it), ``safe_mode``, ``dfu``, ``brick`` (no path back
without a debug probe), ``invariant_violation`` (see ``sweep_engine._classify`` and
docs/power-loss.md). Bad outcomes (:data:`BAD_OUTCOMES`) make the CLI exit 1.

Points are split into contiguous chunks; with ``workers > 1`` the chunks run in forked worker
processes and are merged in order, so the counts and outcomes do not depend on ``workers``
(only ``booted``/``proven`` may: an equivalence proof never crosses a chunk boundary).
"""

from __future__ import annotations

import functools
import hashlib
import random
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flashroom.atomicfile import write_file_set
from flashroom.errors import EmulatorError, Interrupted, ParamError
from flashroom.progress import ProgressFn
from flashroom.ranges import fmt_addr, fmt_size
from flashroom.scenarios.compare import Comparison
from flashroom.scenarios.sweep_check import ErasePlan
from flashroom.scenarios.sweep_config import (
    BAD_OUTCOMES,
    MAX_FAILURES,
    METHODS,
    OUTCOMES,
    CutResult,
    SweepConfig,
)
from flashroom.scenarios.sweep_engine import (
    _boot,
    _build_setup,
    _classify,
    _erases_since,
    _run_scenario,
    _Runner,
    _Setup,
)
from flashroom.scenarios.sweep_pool import run_dask, run_local, split, worker_state
from flashroom.scenarios.sweep_scenarios import SCENARIOS


@dataclass
class SweepResult:
    """Everything a sweep found. ``ok`` is False when any point was a brick or a violation."""

    config: SweepConfig
    total_ops: int
    points: int
    counts: dict[str, int]
    boots: dict[str, int]
    by_label: dict[str, dict[str, int]]
    failures: list[CutResult]
    clean_outcome: dict[str, Any]
    clean_class: str
    clean_violations: list[str]
    plan: ErasePlan
    modules: dict[str, dict[str, Any]]
    wall_s: float
    device_time_s: float
    exhaustive: bool
    booted: int = 0
    proven: int = 0
    #: with ``keep_points``: (cut_at_op, torn, recovery_cut_at_op, outcome, model_outcome)
    point_outcomes: list[tuple[int, bool, int | None, str, str | None]] = field(
        default_factory=list
    )
    #: with ``compare_model``: the model against the real code at every point
    comparison: Comparison | None = None
    #: the clean run's phases: (label, first op, one past the last op), consecutive calls with
    #: the same label merged
    phases: list[tuple[str, int, int]] = field(default_factory=list)
    #: what of the device ran real code (``Device.real``'s JSON), None for the model
    real_code: dict[str, Any] | None = None
    #: the clean run's reset (where the bootloader starts), as an op index; None: no reset
    reset_op: int | None = None
    #: every reset of the clean run (a migration has one per update), op indexes
    reset_ops: tuple[int, ...] = ()
    #: the real bootloader the device boots (``{"sha256", "module_version"}``), None: model
    bootloader_firmware: dict[str, Any] | None = None

    @property
    def bad(self) -> int:
        """Number of points with a bad outcome (brick or invariant violation)."""
        return sum(self.counts.get(k, 0) for k in BAD_OUTCOMES)

    @property
    def ok(self) -> bool:
        """No brick and no invariant violation (including the uncut run)."""
        return self.bad == 0 and not self.clean_violations

    @property
    def first_failure(self) -> CutResult | None:
        """The lowest failing cut point (non-torn before torn at the same op)."""
        return self.failures[0] if self.failures else None

    def reproduce(self, failure: CutResult | None = None, image_dir: str = "DIR") -> list[str]:
        """Shell commands that reproduce ``failure`` (default: the first one) by hand.

        ``image_dir`` is where ``--save-failing`` wrote ``device.img`` (the device before the
        scenario) and the modules.
        """
        f = failure or self.first_failure
        if f is None:
            return []
        c = self.config
        img = f"{image_dir}/device.img"
        new = f"{image_dir}/new.bin"
        cut = f"--cut-at-op {f.cut_at_op}" + (" --torn" if f.torn else "")
        if c.seed:
            cut += f" --seed {c.seed}"
        cmds = [f"cp {image_dir}/device-before.img {img}"]
        cmds.append(SCENARIOS[c.scenario].reproduce(img, new, cut))
        if f.recovery_cut_at_op is not None:
            rcut = f"--cut-at-op {f.recovery_cut_at_op}" + (f" --seed {c.seed}" if c.seed else "")
            cmds.append(f"flashroom emu boot --image {img} {rcut}")
        cmds.append(f"flashroom emu boot --image {img}")
        return cmds

    def reproduce_difference(self, image_dir: str = "DIR") -> list[str]:
        """Commands that show the first model/real difference by hand (empty when none)."""
        cmp = self.comparison
        if cmp is None or cmp.first_difference is None:
            return []
        d = cmp.first_difference
        c = self.config
        img = f"{image_dir}/device.img"
        cut = f"--cut-at-op {d.cut_at_op}" + (" --torn" if d.torn else "")
        if c.seed:
            cut += f" --seed {c.seed}"
        return [
            f"cp {image_dir}/device-before.img {img}",
            SCENARIOS[c.scenario].reproduce(img, f"{image_dir}/new.bin", cut),
            f"flashroom emu boot --image {img} --compare-model",
        ]

    def to_json(self) -> dict[str, Any]:
        """The ``emu sweep --format json`` contract (stable snake_case keys)."""
        ff = self.first_failure
        rate = self.points / self.wall_s if self.wall_s > 0 else None
        extra: dict[str, Any] = {}
        if self.comparison is not None:
            extra["comparison"] = {
                **self.comparison.to_json(),
                "reproduce": self.reproduce_difference(),
            }
        return {
            "config": self.config.to_json(),
            "ok": self.ok,
            "exhaustive": self.exhaustive,
            "total_ops": self.total_ops,
            "points": self.points,
            "booted": self.booted,
            "proven_equivalent": self.proven,
            "counts": {k: self.counts.get(k, 0) for k in OUTCOMES},
            "boots": dict(sorted(self.boots.items())),
            "by_label": {k: dict(v) for k, v in sorted(self.by_label.items())},
            "bad": self.bad,
            "first_failure": None if ff is None else ff.to_json(),
            "reproduce": self.reproduce(),
            "failures": [f.to_json() for f in self.failures],
            "clean_run": {
                "outcome": self.clean_outcome,
                "class": self.clean_class,
                "violations": self.clean_violations,
            },
            "erase_plan": self.plan.to_json(),
            "modules": self.modules,
            "wall_s": round(self.wall_s, 3),
            "points_per_s": None if rate is None else round(rate, 1),
            "device_time_s": round(self.device_time_s, 3),
            "device_s_per_wall_s": (
                round(self.device_time_s / self.wall_s, 1) if self.wall_s > 0 else None
            ),
            "real_code": self.real_code,
            "bootloader_firmware": self.bootloader_firmware,
            **extra,
        }


# --------------------------------------------------------------------------- chunks & workers


@dataclass
class _ChunkResult:
    points: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    boots: Counter[str] = field(default_factory=Counter)
    by_label: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[CutResult] = field(default_factory=list)
    device_time_s: float = 0.0
    booted: int = 0
    proven: int = 0
    outcomes: list[tuple[int, bool, int | None, str, str | None]] = field(default_factory=list)
    comparison: Comparison = field(default_factory=Comparison)


def _cut_points(cfg: SweepConfig, total: int) -> list[int]:
    last = total if cfg.last_op is None else min(cfg.last_op, total)
    cuts = list(range(cfg.first_op, last, cfg.stride))
    if cfg.sample is not None and cfg.sample < len(cuts):
        cuts = sorted(random.Random(cfg.seed).sample(cuts, cfg.sample))
    return cuts


def _run_points(s: _Setup, cuts: Sequence[int]) -> _ChunkResult:
    runner = _Runner(s)
    res = _ChunkResult()
    variants = (False, True) if s.cfg.torn else (False,)
    for n in cuts:
        for torn in variants:
            for r in runner.point(n, torn):
                res.points += 1
                res.counts[r.outcome] += 1
                res.boots[r.boot] += 1
                res.by_label.setdefault(r.label, Counter())[r.outcome] += 1
                res.proven += r.proven
                if r.outcome in BAD_OUTCOMES and len(res.failures) < MAX_FAILURES:
                    res.failures.append(r)
                if s.cfg.compare_model:
                    res.comparison.add(r.difference)
                if s.cfg.keep_points:
                    res.outcomes.append(
                        (r.cut_at_op, r.torn, r.recovery_cut_at_op, r.outcome, r.model_outcome)
                    )
    res.device_time_s = runner.device_time
    res.booted = runner.booted
    return res


def _pool_part(cfg: SweepConfig, cuts: list[int]) -> _ChunkResult:
    """One chunk of cut points in a pool or Dask worker (its set-up built once per worker)."""
    return _run_points(worker_state(cfg, lambda: _prepare(cfg)), cuts)


def _prepare(cfg: SweepConfig) -> _Setup:
    return _build_setup(cfg)


def _classify_clean(s: _Setup) -> tuple[str, list[str]]:
    """Run the scenario uncut and classify it like a cut point (0 cuts)."""
    dev = s.device
    dev.restore(s.snap0)
    _run_scenario(dev, s.cfg.scenario, s.new)
    boot, err = _boot(dev)
    cls, _kind, viol = _classify(s, boot, _erases_since(s, None), 0, err)
    dev.restore(s.snap0)
    return cls, list(viol)


def run_sweep(cfg: SweepConfig, progress: ProgressFn | None = None) -> SweepResult:
    """Run a power-loss sweep.

    Args:
        cfg: what to sweep (see :class:`SweepConfig`).
        progress: called as ``progress(done, total)`` in cut points.

    Returns:
        The counts per outcome class, the failures with their evidence, the clean run and the
        erase plan. Results are identical for any ``workers`` (points are merged in order).

    Raises:
        ParamError: bad options (named by their SweepConfig fields).
        Interrupted: Ctrl-C, at any moment of the sweep (its set-up and clean run included);
            the message says how many cut points were done.
    """
    seen = [0, 0]  # cut points done, and their total (0: not counted yet)

    def tracked(done: int, total: int) -> None:
        seen[:] = [done, total]
        if progress:
            progress(done, total)

    try:
        return _sweep(cfg, tracked)
    except KeyboardInterrupt:
        done, total = seen
        where = (
            f"{done} of {total} cut points done"
            if total
            else "before its first cut point (during the set-up and the clean run)"
        )
        raise Interrupted(f"sweep interrupted: {where}") from None


def _sweep(cfg: SweepConfig, progress: ProgressFn) -> SweepResult:
    cfg.validate()
    _check_old_app_fits(cfg)
    t0 = time.perf_counter()
    try:
        setup = _prepare(cfg)
    except EmulatorError as e:
        raise ParamError(
            f"app_size {cfg.app_size} / old_size {cfg.old_size}: the {cfg.scenario} "
            f"scenario cannot be set up on {cfg.platform} {cfg.profile}: {e}",
            "app_size",
            "old_size",
        ) from None
    flash = setup.device.flash
    if setup.target_start + len(setup.new) > flash.base + flash.size:
        raise ParamError(
            f"app_size {len(setup.new)}: a module at {fmt_addr(setup.target_start)} would end "
            f"at {fmt_addr(setup.target_start + len(setup.new))}, past the end of flash "
            f"{fmt_addr(flash.base + flash.size)}; expected at most "
            f"{flash.base + flash.size - setup.target_start} bytes",
            "app_size",
        )
    cuts = _cut_points(cfg, setup.total_ops)
    if not cuts:
        raise ParamError(
            f"first_op {cfg.first_op} is past the end of the scenario: it has "
            f"{setup.total_ops} flash operations (cut points 0..{setup.total_ops - 1})",
            "first_op",
        )
    per_cut = (2 if cfg.torn else 1) * (1 + cfg.recovery_cuts)
    total_points = len(cuts) * per_cut
    progress(0, total_points)
    chunks: list[_ChunkResult]

    def units(part: list[int]) -> int:
        return len(part) * per_cut

    if cfg.scheduler is not None:
        parts = split(cuts, cfg.workers)
        chunks = run_dask(_pool_part, cfg, parts, cfg.scheduler, units, total_points, progress)
    elif cfg.workers > 1 and len(cuts) >= 2 * cfg.workers:
        parts = split(cuts, cfg.workers)
        run = functools.partial(_pool_part, cfg)
        chunks = run_local(
            run, parts, cfg.workers, units, total_points, progress, inherit=(cfg, setup)
        )
    else:
        chunks = []
        step = max(1, len(cuts) // 50)
        done = 0
        for i in range(0, len(cuts), step):
            part = cuts[i : i + step]
            chunks.append(_run_points(setup, part))
            done += len(part) * per_cut
            progress(done, total_points)
    clean_cls, clean_viol = _classify_clean(setup)
    merged = _ChunkResult()
    for c in chunks:
        merged.points += c.points
        merged.counts.update(c.counts)
        merged.boots.update(c.boots)
        for label, cnt in c.by_label.items():
            merged.by_label.setdefault(label, Counter()).update(cnt)
        merged.failures.extend(c.failures)
        merged.device_time_s += c.device_time_s
        merged.booted += c.booted
        merged.proven += c.proven
        merged.outcomes.extend(c.outcomes)
        merged.comparison.merge(c.comparison)
    merged.failures.sort(key=lambda r: (r.cut_at_op, r.torn, r.recovery_cut_at_op or -1))
    exhaustive = (
        cfg.sample is None
        and cfg.stride == 1
        and cfg.first_op == 0
        and (cfg.last_op is None or cfg.last_op >= setup.total_ops)
    )
    return SweepResult(
        config=cfg,
        total_ops=setup.total_ops,
        points=merged.points,
        counts={k: merged.counts.get(k, 0) for k in OUTCOMES},
        boots=dict(merged.boots),
        by_label={k: dict(v) for k, v in merged.by_label.items()},
        failures=merged.failures[:MAX_FAILURES],
        clean_outcome=setup.clean_outcome,
        clean_class=clean_cls,
        clean_violations=clean_viol,
        plan=setup.plan,
        modules={
            "old": _module_json(setup.old, setup.target_start),
            "new": _module_json(setup.new, setup.target_start),
        },
        wall_s=time.perf_counter() - t0,
        device_time_s=merged.device_time_s,
        exhaustive=exhaustive,
        booted=merged.booted,
        proven=merged.proven,
        point_outcomes=merged.outcomes,
        comparison=merged.comparison if cfg.compare_model else None,
        phases=_phases(setup),
        reset_op=setup.reset_op,
        reset_ops=setup.reset_ops,
        bootloader_firmware=_identity(setup),
        real_code=setup.device.real.to_json() if setup.device.real.any else None,
    )


def _identity(s: _Setup) -> dict[str, Any] | None:
    dev = s.device
    dev.restore(s.snap0)
    return dev.bootloader_firmware()  # type: ignore[no-any-return]


def _phases(s: _Setup) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    for c in s.calls:
        end = c.first_op + c.ops
        if out and out[-1][0] == c.label and out[-1][2] == c.first_op:
            out[-1] = (c.label, out[-1][1], end)
        else:
            out.append((c.label, c.first_op, end))
    return out


def _check_old_app_fits(cfg: SweepConfig) -> None:
    """The old app is installed at the user part's start: one larger than the profile's user
    part would overlap the next region (the OTA scratch on extended) and every cut point would
    report false violations, so refuse it before any work (issue 12 #8)."""
    from flashroom.deviceos import get_profile

    b = get_profile(cfg.platform, cfg.profile, gen2_only=True).user_bounds
    if cfg.old_size > b.maximum_size:
        raise ParamError(
            f"old_size {cfg.old_size} bytes: the old app is installed at "
            f"{fmt_addr(b.start_address)} and would end at "
            f"{fmt_addr(b.start_address + cfg.old_size)}, past the {cfg.profile} user part "
            f"{fmt_addr(b.start_address)}-{fmt_addr(b.start_address + b.maximum_size)}; "
            f"expected at most {b.maximum_size} bytes ({fmt_size(b.maximum_size)})",
            "old_size",
        )


def _module_json(data: bytes, start: int) -> dict[str, Any]:
    return {
        "start_address": start,
        "size": len(data),
        "size_text": fmt_size(len(data)),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def save_failing(result: SweepResult, out_dir: Path) -> list[Path]:
    """Write what a sweep used, so a failure can be reproduced by hand with ``flashroom emu``.

    Writes ``device-before.img`` (the device just before the scenario: old app installed and
    booted), ``old.bin``, ``new.bin`` and an executable ``reproduce.sh`` (the commands of
    :meth:`SweepResult.reproduce` for the first failure, or for cut point 0 when none failed),
    as one set. The script runs from any folder (it works on the files beside it) and runs
    the flashroom that wrote it unless ``$FLASHROOM`` names another.

    Returns:
        The files written.
    """

    setup = _prepare(replace(result.config, workers=1))
    setup.device.restore(setup.snap0)
    target = result.first_failure or CutResult(0, False, "", "", "")
    cmds = result.reproduce(target, ".")
    files = {
        "device-before.img": setup.device.image_bytes(),
        "old.bin": setup.old,
        "new.bin": setup.new,
        **dict(SCENARIOS[result.config.scenario].files()),
        "reproduce.sh": reproduce_script(cmds).encode(),
    }
    return write_file_set(out_dir, files, modes={"reproduce.sh": 0o755})


def reproduce_script(commands: Sequence[str]) -> str:
    """A POSIX sh script running ``commands`` (``flashroom ...`` lines) in its own folder."""
    this = f"{shlex.quote(sys.executable)} -m flashroom"  # the flashroom that wrote it
    lines = [
        "#!/bin/sh",
        "# Reproduce a sweep cut point by hand: run it from anywhere; it works on the files",
        "# beside it. FLASHROOM=... picks the flashroom to run (default: the one that wrote it).",
        "# No 'set -e': the cut run itself exits non-zero (interrupted) by design.",
        'cd "$(dirname "$0")" || exit 2',
        f"FLASHROOM=${{FLASHROOM:-{shlex.quote(this)}}}",
    ]
    for c in commands:
        lines.append(
            "$FLASHROOM " + c.removeprefix("flashroom ") if c.startswith("flashroom ") else c
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "BAD_OUTCOMES",
    "METHODS",
    "OUTCOMES",
    "SCENARIOS",
    "CutResult",
    "SweepConfig",
    "SweepResult",
    "run_sweep",
    "save_failing",
]
