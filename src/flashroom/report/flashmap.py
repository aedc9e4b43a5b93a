"""Flash-map pictures: sectors and regions of one or more layouts side by side (SVG or PNG).

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch), and
imported inside the functions so ``import flashroom`` stays light.

Reading the picture: low addresses at the bottom. On chips with few sectors (STM32F205: 12)
every sector is drawn the same height, so the 16K sectors stay legible beside the 128K ones; the
sector column on the left gives each sector's index, start address and size. On chips with many
equal pages (nRF52840) the scale is linear in address. Regions that differ from the first
(reference) layout get a thick outline; regions that share bytes by design (Photon's OTA scratch
over the factory sector) are drawn side by side, hatched.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flashroom.atomicfile import ensure_dir, write_bytes_atomic
from flashroom.errors import UsageError
from flashroom.layout.model import Layout, Region
from flashroom.ranges import fmt_addr, fmt_size

_COLORS: dict[str, str] = {
    "bootloader": "#9e9e9e",
    "softdevice": "#bdbdbd",
    "dct1": "#d7c49e",
    "dct2": "#d7c49e",
    "eeprom1": "#e6d690",
    "eeprom2": "#e6d690",
    "system_part_1": "#7fa7d9",
    "system_part_2": "#5b8cc9",
    "system_part_3": "#3f74b5",
    "user_part": "#6cc070",
    "user_part_compat": "#a8dba8",
    "factory": "#f2a65a",
    "ota_scratch": "#b48ad6",
    "free": "#ffffff",
}

#: Sector-row scale is used when the chip has at most this many sectors.
_MAX_ROWS = 16


def _y_mapper(layout: Layout) -> tuple[Callable[[int], float], float]:
    """Map an address to a y coordinate; returns (mapper, total height)."""
    chip = layout.chip
    sectors = chip.sectors
    if len(sectors) <= _MAX_ROWS:

        def ymap(addr: int) -> float:
            if addr >= chip.end:
                return float(len(sectors)) + (addr - chip.end) / sectors[-1].size
            if addr < chip.base:
                return (addr - chip.base) / sectors[0].size
            s = chip.sector_at(addr)
            return s.index + (addr - s.start) / s.size

        return ymap, float(len(sectors))
    height = 12.0

    def ylin(addr: int) -> float:
        return (addr - chip.base) / chip.size * height

    return ylin, height


def _lanes(regions: Sequence[Region]) -> dict[int, tuple[int, int]]:
    """For each region position: (lane, lanes) so overlapping regions sit side by side."""
    out: dict[int, tuple[int, int]] = {}
    for i, r in enumerate(regions):
        group = [j for j, o in enumerate(regions) if o.range.overlaps(r.range)]
        out[i] = (group.index(i), len(group))
    return out


def _draw_layout(
    ax: Any, layout: Layout, x0: float, width: float, reference: Layout | None
) -> None:
    from matplotlib.patches import Rectangle  # matplotlib: deferred for start-up time

    ymap, height = _y_mapper(layout)
    lanes = _lanes(layout.regions)
    ref_ranges = {(r.name, r.start, r.end) for r in reference.regions} if reference else set()
    for i, r in enumerate(layout.regions):
        lane, nlanes = lanes[i]
        w = width / nlanes
        x = x0 + lane * w
        y0, y1 = ymap(r.start), ymap(r.end)
        changed = reference is not None and (r.name, r.start, r.end) not in ref_ranges
        rect = Rectangle(
            (x, y0),
            w,
            max(y1 - y0, 0.02),
            facecolor=_COLORS.get(r.name, "#cccccc"),
            edgecolor="#c62828" if changed else "#333333",
            linewidth=2.6 if changed else 0.8,
            hatch="//" if nlanes > 1 else ("..." if r.name == "free" else None),
            zorder=3 if changed else 2,
        )
        ax.add_patch(rect)
        label = f"{r.name}\n{fmt_addr(r.start)}-{fmt_addr(r.end)}\n{fmt_size(r.size)}"
        if y1 - y0 < 0.9:
            label = f"{r.name} {fmt_size(r.size)}"
        ax.text(
            x + w / 2,
            (y0 + y1) / 2,
            label,
            ha="center",
            va="center",
            fontsize=7 if nlanes == 1 else 6,
            family="monospace",
            zorder=4,
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1.0},
        )
    # Sector grid across the column.
    chip = layout.chip
    if len(chip.sectors) <= _MAX_ROWS:
        for s in chip.sectors:
            ax.plot([x0, x0 + width], [ymap(s.start)] * 2, color="#666666", lw=0.4, zorder=5)
    ax.plot([x0, x0 + width], [height] * 2, color="#666666", lw=0.4, zorder=5)
    app = layout.find("user_part")
    sub = f"max app {fmt_size(app.size)}" if app else ""
    ota = layout.find("ota_scratch")
    if ota:
        sub += f", OTA scratch {fmt_size(ota.size)}"
    ax.text(
        x0 + width / 2,
        height + 0.25,
        f"{layout.platform} {layout.name}\n{sub}",
        ha="center",
        va="bottom",
        fontsize=9,
        weight="bold",
    )


def _draw_sector_column(ax: Any, layout: Layout, x0: float, width: float) -> None:
    from matplotlib.patches import Rectangle  # matplotlib: deferred for start-up time

    ymap, height = _y_mapper(layout)
    chip = layout.chip
    if len(chip.sectors) <= _MAX_ROWS:
        for s in chip.sectors:
            y0, y1 = ymap(s.start), ymap(s.end)
            ax.add_patch(
                Rectangle(
                    (x0, y0), width, y1 - y0, facecolor="#f5f5f5", edgecolor="#666666", lw=0.6
                )
            )
            ax.text(
                x0 + width / 2,
                (y0 + y1) / 2,
                f"sector {s.index}\n{fmt_addr(s.start)}\n{fmt_size(s.size)}",
                ha="center",
                va="center",
                fontsize=6.5,
                family="monospace",
            )
        title = "sectors\n(equal height)"
    else:
        step = max(chip.size // 16, chip.sectors[0].size)
        for addr in range(chip.base, chip.end + 1, step):
            ax.text(
                x0 + width,
                ymap(addr),
                fmt_addr(addr) + " -",
                ha="right",
                va="center",
                fontsize=6.5,
                family="monospace",
            )
        title = f"address\n({len(chip.sectors)} x {fmt_size(chip.sectors[0].size)} pages)"
    ax.text(x0 + width / 2, height + 0.25, title, ha="center", va="bottom", fontsize=8)


def figure_bytes(layouts: Sequence[Layout], fmt: str, title: str | None = None) -> bytes:
    """Render ``layouts`` side by side and return the image bytes (``fmt``: ``svg``/``png``).

    The first layout is the reference: regions of later layouts that differ from it are outlined
    in red.

    Raises:
        UsageError: no layouts, mixed chips, or an unknown format.
    """
    if not layouts:
        raise UsageError("render_flash_map needs at least one layout")
    if len({lay.chip.name for lay in layouts}) != 1:
        raise UsageError("layouts drawn side by side must be on the same chip")
    if fmt not in ("svg", "png"):
        raise UsageError(f"unknown picture format {fmt!r}: expected svg or png")
    import matplotlib  # matplotlib: deferred for start-up time
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib: deferred
    from matplotlib.figure import Figure  # matplotlib: deferred

    ref = layouts[0]
    col_w, gap, sec_w = 3.0, 0.5, 1.6
    total_w = sec_w + gap + len(layouts) * (col_w + gap)
    with matplotlib.rc_context({"svg.hashsalt": "flashroom", "svg.fonttype": "none"}):
        fig = Figure(figsize=(1.2 + total_w * 1.05, 9.0), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.02, 0.06, 0.96, 0.86))
        _, height = _y_mapper(ref)
        _draw_sector_column(ax, ref, 0.0, sec_w)
        for i, lay in enumerate(layouts):
            x0 = sec_w + gap + i * (col_w + gap)
            _draw_layout(ax, lay, x0, col_w, ref if i > 0 else None)
        ax.set_xlim(-0.1, total_w)
        ax.set_ylim(-0.2, height + 1.2)
        ax.axis("off")
        names = " vs ".join(f"{lay.name}" for lay in layouts)
        fig.suptitle(
            title or f"{ref.platform} flash map: {names}", fontsize=12, weight="bold", y=0.985
        )
        fig.text(
            0.02,
            0.008,
            "Low addresses at the bottom; ranges half-open [start, end).\nRed outline: differs "
            "from the leftmost layout. Hatched: regions that share bytes by design.",
            fontsize=7.5,
            color="#444444",
        )
        buf = io.BytesIO()
        meta: dict[str, Any] = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


def render_flash_map(layouts: Sequence[Layout], path: Path, title: str | None = None) -> Path:
    """Draw ``layouts`` side by side into ``path`` (SVG or PNG chosen by suffix), atomically.

    Args:
        layouts: one or more layouts on the same chip; the first is the reference (e.g. stock).
        path: output file ending in ``.svg`` or ``.png``.
        title: figure title (default: platform and layout names).

    Returns:
        ``path``.

    Raises:
        UsageError: bad suffix, no layouts, or mixed chips.
    """
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise UsageError(f"flash map {path}: expected a .svg or .png file name")
    write_bytes_atomic(path, figure_bytes(layouts, fmt, title))
    return path


def write_flash_maps(
    layouts: Sequence[Layout], out_dir: Path, stem: str = "flash-map", title: str | None = None
) -> list[Path]:
    """Write ``<stem>.svg`` and ``<stem>.png`` into ``out_dir``; returns the paths."""
    ensure_dir(out_dir)
    return [render_flash_map(layouts, out_dir / f"{stem}.{ext}", title) for ext in ("svg", "png")]
