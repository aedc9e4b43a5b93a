"""Where a cut is dangerous: a sweep's operation timeline with every cut point's outcome (issue 10).

:func:`plot_sweep` draws, left to right, the update's flash operations grouped in phases
(scratch erase, receive, DCT write, the bootloader's copy, the DCT write that clears the slot)
and under them one strip per kind of cut (clean, torn; real code and model side by side with
``compare_model``), each cut point coloured by its outcome class. Phases with few operations
(a DCT write is 6 chunk operations next to 512 of receive) are stretched to a minimum width so a
hazard window there stays visible; the axis ticks give the real operation numbers.

matplotlib (Agg) is imported inside :func:`plot_sweep` only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path

from flashroom.atomicfile import write_bytes_atomic
from flashroom.scenarios.sweep import SweepResult
from flashroom.scenarios.sweep_config import OUTCOMES

#: Outcome class -> colour (good ones cool, bad ones warm).
OUTCOME_COLOURS: dict[str, str] = {
    "new_app": "#2ca02c",
    "old_app": "#1f77b4",
    "safe_mode": "#bcbd22",
    "dfu": "#ff7f0e",
    "brick": "#d62728",
    "invariant_violation": "#9467bd",
}
#: Phase -> colour of its bar in the timeline.
PHASE_COLOURS: dict[str, str] = {
    "scratch erase": "#c7c7c7",
    "receive": "#9edae5",
    "DCT set": "#f7b6d2",
    "DCT clear": "#e377c2",
    "copy": "#ffbb78",
    "bootloader rewrite": "#8c564b",
    "other": "#dbdb8d",
}
#: The smallest share of the axis one phase gets.
MIN_PHASE_SHARE = 0.08


def phase_of(label: str, after_reset: bool = False) -> str:
    """The timeline phase of a flash call label (``erase ota_scratch``, ``program dct1``...);
    ``after_reset``: the call is made after an update's reset, before the system starts
    receiving the next update (the bootloader's apply, the system's boot)."""
    kind, _, region = label.partition(" ")
    if "dct" in region:
        return "DCT clear" if after_reset else "DCT set"
    if after_reset:
        return "bootloader rewrite" if "bootloader" in region else "copy"
    if "ota_scratch" in region and kind == "erase":
        return "scratch erase"
    return "receive" if region else "other"


def merged_phases(
    phases: Sequence[tuple[str, int, int]], reset_op: int | Sequence[int] | None = None
) -> list[tuple[str, int, int]]:
    """Consecutive calls of one phase merged: (phase, first op, one past the last).

    ``reset_op``: the clean run's reset(s); after each, calls belong to the apply until the
    system erases the OTA scratch for the next update.
    """
    resets = [] if reset_op is None else [reset_op] if isinstance(reset_op, int) else list(reset_op)
    out: list[tuple[str, int, int]] = []
    after = False
    for label, a, b in phases:
        while resets and a >= resets[0]:
            resets.pop(0)
            after = True
        if after and label.startswith("erase ") and "ota_scratch" in label:
            after = False  # the next update begins (FLASH_Begin)
        ph = phase_of(label, after)
        if out and out[-1][0] == ph and out[-1][2] == a:
            out[-1] = (ph, out[-1][1], b)
        else:
            out.append((ph, a, b))
    return out


class _Axis:
    """Piecewise-linear op -> x mapping: every phase at least :data:`MIN_PHASE_SHARE` wide."""

    def __init__(self, phases: list[tuple[str, int, int]], total: int):
        if not phases:
            phases = [("other", 0, max(total, 1))]
        widths = [max(b - a, 1) for _, a, b in phases]
        span = float(sum(widths))
        shown = [max(w, MIN_PHASE_SHARE * span) for w in widths]
        self.starts = [a for _, a, _ in phases]
        self.ends = [b for _, _, b in phases]
        self.x0: list[float] = []
        x = 0.0
        for s in shown:
            self.x0.append(x)
            x += s
        self.shown = shown
        self.width = x

    def __call__(self, op: float) -> float:
        i = max(0, bisect.bisect_right(self.starts, op) - 1)
        a, b = self.starts[i], self.ends[i]
        frac = (op - a) / max(b - a, 1)
        return self.x0[i] + min(max(frac, 0.0), 1.0) * self.shown[i]


def _runs(points: list[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """(first op, one past the last, outcome) runs of consecutive cut points, equal outcome."""
    runs: list[tuple[int, int, str]] = []
    for op, outcome in sorted(points):
        if runs and runs[-1][2] == outcome and runs[-1][1] == op:
            runs[-1] = (runs[-1][0], op + 1, outcome)
        else:
            runs.append((op, op + 1, outcome))
    return runs


def plot_sweep(result: SweepResult, path: str | Path, *, title: str | None = None) -> Path:
    """Draw ``result``'s timeline into a PNG at ``path`` (written atomically).

    ``result`` must have been run with ``keep_points`` (the CLI's ``--plot`` sets it).

    Raises:
        ValueError: the result kept no per-point outcomes.
    """
    out = Path(path)
    write_bytes_atomic(out, sweep_plot_bytes(result, title=title))
    return out


def sweep_plot_bytes(result: SweepResult, *, title: str | None = None) -> bytes:
    """The PNG :func:`plot_sweep` writes (the demo writes it within its file set).

    Raises:
        ValueError: the result kept no per-point outcomes.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not result.point_outcomes:
        raise ValueError("the sweep kept no per-point outcomes: run it with keep_points")
    cfg = result.config
    resets = list(result.reset_ops) or ([] if result.reset_op is None else [result.reset_op])
    phases = merged_phases(result.phases, resets)
    axis = _Axis(phases, result.total_ops)
    compare = cfg.compare_model and any(p[4] is not None for p in result.point_outcomes)
    engine = "real code" if cfg.bootloader_firmware else "model"
    rows: list[tuple[str, list[tuple[int, str]]]] = []
    for torn in (False, True) if cfg.torn else (False,):
        cut = "torn cut" if torn else "cut"
        mine = [p for p in result.point_outcomes if p[1] == torn and p[2] is None]
        rows.append((f"{engine}, {cut}", [(p[0], p[3]) for p in mine]))
        if compare:
            rows.append((f"model, {cut}", [(p[0], p[4] or "") for p in mine]))
    min_w = axis.width / 800.0  # a lone (sampled) point stays visible

    fig, ax = plt.subplots(figsize=(13, 1.7 + 0.5 * (len(rows) + 1)), dpi=120)
    y_phase = len(rows)
    for ph, a, b in phases:
        x0, x1 = axis(a), axis(b)
        ax.broken_barh([(x0, x1 - x0)], (y_phase - 0.4, 0.8), color=PHASE_COLOURS[ph],
                       edgecolor="white")  # fmt: skip
        name = ph.replace(" ", "\n", 1) if x1 - x0 < 0.12 * axis.width else ph
        ax.text((x0 + x1) / 2, y_phase, f"{name}\n{b - a} ops", ha="center", va="center",
                fontsize=6.5)  # fmt: skip
    for r, (_name, pts) in enumerate(rows):
        y = len(rows) - 1 - r
        by_outcome: dict[str, list[tuple[float, float]]] = {}
        for a, b, outcome in _runs(pts):
            x0, x1 = axis(a), axis(b)
            by_outcome.setdefault(outcome, []).append((x0, max(x1 - x0, min_w)))
        for outcome, bars in by_outcome.items():
            ax.broken_barh(bars, (y - 0.35, 0.7), color=OUTCOME_COLOURS.get(outcome, "black"))
    for i, r_op in enumerate(resets):
        xr = axis(r_op)
        ax.axvline(xr, color="black", linewidth=1, linestyle="--")
        label = " reset: the bootloader runs" if i == 0 else " reset"
        ax.text(xr, y_phase + 0.55, label, fontsize=7, va="bottom")
    ax.set_yticks(range(len(rows) + 1))
    ax.set_yticklabels([name for name, _ in reversed(rows)] + ["phase"], fontsize=8)
    ax.set_ylim(-0.6, y_phase + 1.0)
    ticks = sorted({a for _, a, _ in phases} | {result.total_ops})
    ax.set_xticks([axis(t) for t in ticks])
    ax.set_xticklabels([str(t) for t in ticks], fontsize=7, rotation=45)
    ax.set_xlim(0, axis.width)
    ax.set_xlabel("flash operation of the update where power is cut (short phases stretched)",
                  fontsize=8)  # fmt: skip
    bad = result.bad
    seen = {p[3] for p in result.point_outcomes} | {p[4] for p in result.point_outcomes if p[4]}
    handles = [Patch(color=OUTCOME_COLOURS[o], label=o) for o in OUTCOMES if o in seen]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8,
              frameon=False, title="outcome", title_fontsize=8)  # fmt: skip
    if title is None:
        bl = (
            f"real {Path(cfg.bootloader_firmware).stem.split('@')[-1]}"
            if cfg.bootloader_firmware
            else f"model {cfg.bootloader}"
        )
        sampled = f", sample of {cfg.sample}" if cfg.sample else ""
        cmp = result.comparison
        agree = f"; model = real at {cmp.identical}/{cmp.points} points" if cmp is not None else ""
        title = (
            f"{cfg.scenario} {cfg.app_size // 1024}K on {cfg.profile}, bootloader {bl}, "
            f"{cfg.granularity} granularity{sampled}: {bad} bad of {result.points} cut points"
            f"{agree}"
        )
    ax.set_title(title, fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


__all__ = [
    "OUTCOME_COLOURS",
    "PHASE_COLOURS",
    "merged_phases",
    "phase_of",
    "plot_sweep",
    "sweep_plot_bytes",
]
