"""The demo report: the story's steps (:mod:`flashroom.scenarios.story`) as files.

``report.md`` (Markdown), ``report.json``, ``flash-map.png`` and the layout exports in
``export/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flashroom.atomicfile import ensure_dir, write_text_atomic
from flashroom.layout import get_layout
from flashroom.layout.export import write_exports
from flashroom.report.flashmap import render_flash_map
from flashroom.report.markdown import MarkdownDoc
from flashroom.scenarios.story import DemoReport, StepFn, run_story


def to_markdown(report: DemoReport) -> str:
    """The ``report.md`` content."""
    doc = MarkdownDoc()
    doc.heading("flashroom demo: a 256 KB Electron app with OTA kept")
    doc.para(
        "Every figure below was produced by this run, on the emulated Electron (embedded "
        "default device: synthetic Device OS 2.3.1). "
        + ("Quick mode: the sweep is a bounded subset." if report.quick else "")
    )
    doc.image("Stock vs extended Electron flash map", "flash-map.png")
    for i, s in enumerate(report.steps, 1):
        doc.heading(f"{i}. {s.title}" + ("" if s.ok else " (NOT AS EXPECTED)"), 2)
        if s.lines:
            doc.bullets(s.lines)
        for name, _result in s.plots:
            doc.image(name.removesuffix(".png"), name)
        for t in s.tables:
            doc.para(f"**{t.title}**")
            doc.table(t.headers, t.rows)
    doc.heading("Files", 2)
    doc.bullets(f"`{f}`" for f in report.files)
    return doc.render()


def write_report(report: DemoReport, out_dir: Path) -> list[Path]:
    """Write ``report.md``, ``report.json``, ``flash-map.png`` and ``export/`` into ``out_dir``."""
    ensure_dir(out_dir)
    stock = get_layout("electron", "stock")
    ext = get_layout("electron", "extended")
    written = [render_flash_map([stock, ext], out_dir / "flash-map.png")]
    written += write_exports(ext, out_dir / "export")
    from flashroom.report.plot import plot_sweep  # matplotlib: already loaded for the map

    for step in report.steps:
        for name, result in step.plots:
            written.append(plot_sweep(result, out_dir / name))
    names = [str(p.relative_to(out_dir)) for p in written]
    report.files = ["report.md", "report.json", *names]
    write_text_atomic(out_dir / "report.md", to_markdown(report))
    write_text_atomic(out_dir / "report.json", json.dumps(report.to_json(), indent=2) + "\n")
    return [out_dir / "report.md", out_dir / "report.json", *written]


def run_demo(
    out_dir: Path,
    quick: bool = False,
    on_step: StepFn | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Run the whole story (:func:`~flashroom.scenarios.story.run_story`) and write the report
    into ``out_dir`` (see :func:`write_report`)."""
    report = run_story(quick, on_step, progress, out_dir)
    write_report(report, out_dir)
    return report


__all__ = ["run_demo", "to_markdown", "write_report"]
