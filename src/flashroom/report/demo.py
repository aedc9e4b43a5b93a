"""The demo report: the story's steps (:mod:`flashroom.scenarios.story`) as files.

``report.md`` (Markdown), ``report.json``, ``flash-map.png`` and in ``export/`` exactly what
``flashroom layout export --layout extended`` writes (linker fragment, C header, JSON, the
flash-map pictures). Every report says which flashroom made it, when, from which inputs (their
SHA-256), and the commands that reproduce it. The files are written as one set: all of them or,
on an error, none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flashroom import __version__
from flashroom.atomicfile import write_file_set
from flashroom.layout import get_layout
from flashroom.report.flashmap import export_files, figure_bytes
from flashroom.report.markdown import MarkdownDoc
from flashroom.scenarios.story import APP_SIZE, DEMO_APP_COMMAND, DemoReport, StepFn, run_story

#: The folder (inside the report's folder) that holds the ``layout export`` files.
EXPORT_DIR = "export"


def reproduce_commands(report: DemoReport, out_dir: str = "out") -> list[str]:
    """The commands that reproduce the report, then each step by hand."""
    quick = " --quick" if report.quick else ""
    sweep = report.step("sweep").facts.get("config", {}) if _has(report, "sweep") else {}
    gran = sweep.get("granularity", "word")
    app = sweep.get("app_size", APP_SIZE)
    stride = sweep.get("stride", 1)
    main_sweep = (
        f"flashroom emu sweep --profile extended --app-size {app} --granularity {gran}"
        + (" --torn" if sweep.get("torn") else "")
        + (f" --stride {stride}" if stride != 1 else "")
        + (f" --workers {sweep['workers']}" if sweep.get("workers", 1) != 1 else "")
    )
    return [
        f"flashroom demo --out {out_dir}{quick}",
        "flashroom layout show --platform electron --layout stock",
        "flashroom layout show --platform electron --layout extended",
        DEMO_APP_COMMAND,
        "flashroom emu new --platform electron --profile stock --image stock.img",
        "flashroom emu ota --image stock.img app.bin",
        "flashroom emu new --platform electron --profile extended --image ext.img",
        "flashroom ota serve --bind 127.0.0.1:5683 --firmware app.bin --insecure --no-stream "
        "--max-sessions 1 &",
        "flashroom emu connect coap://127.0.0.1:5683 --image ext.img --link 3g",
        main_sweep,
        f"flashroom emu sweep --profile extended --bootloader legacy --granularity chunk "
        f"--app-size {app}",
        "flashroom layout check --platform electron --user-size 192K --ota-size 192K",
    ]


def _has(report: DemoReport, key: str) -> bool:
    return any(s.key == key for s in report.steps)


def provenance(report: DemoReport, out_dir: str = "out") -> dict[str, Any]:
    """Who made the report, when, from what, and how to make it again."""
    return {
        "flashroom_version": __version__,
        "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "inputs": report.inputs,
        "reproduce": reproduce_commands(report, out_dir),
    }


def report_json(report: DemoReport, out_dir: str = "out") -> dict[str, Any]:
    """The ``report.json`` content (and ``demo --format json``): the steps and provenance."""
    return {**report.to_json(), **provenance(report, out_dir)}


def to_markdown(report: DemoReport, prov: dict[str, Any] | None = None) -> str:
    """The ``report.md`` content."""
    prov = prov or provenance(report)
    doc = MarkdownDoc()
    doc.heading("flashroom demo: a 256 KB Electron app with OTA kept")
    doc.para(
        f"Made by flashroom {prov['flashroom_version']} on {prov['generated_at']} "
        f"in {report.wall_s:.1f} s. Every figure below was produced by this run, on the "
        "emulated Electron (embedded default device: synthetic Device OS 2.3.1). "
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
    doc.heading("Inputs", 2)
    doc.table(
        ["input", "bytes", "SHA-256", "made by"],
        [[k, v["size"], f"`{v['sha256']}`", v["how"]] for k, v in prov["inputs"].items()],
    )
    doc.heading("Reproduce", 2)
    doc.para("The whole report, then each step by hand:")
    doc.code("\n".join(prov["reproduce"]), "sh")
    doc.heading("Files", 2)
    doc.bullets(f"`{f}`" for f in report.files)
    return doc.render()


def report_files(report: DemoReport, out_dir: str = "out") -> dict[str, bytes]:
    """Every file of the report, as relative name -> bytes (``report.files`` is set)."""
    stock = get_layout("electron", "stock")
    ext = get_layout("electron", "extended")
    exports = {f"{EXPORT_DIR}/{n}": b for n, b in export_files(ext, stock).items()}
    from flashroom.report.plot import sweep_plot_bytes  # matplotlib: loaded for the map anyway

    plots = {name: sweep_plot_bytes(result) for step in report.steps for name, result in step.plots}
    report.files = ["report.md", "report.json", "flash-map.png", *plots, *exports]
    prov = provenance(report, out_dir)
    doc = {**report.to_json(), **prov}
    return {
        "report.md": to_markdown(report, prov).encode(),
        "report.json": (json.dumps(doc, indent=2) + "\n").encode(),
        "flash-map.png": figure_bytes([stock, ext], "png"),
        **plots,
        **exports,
    }


def write_report(report: DemoReport, out_dir: Path) -> list[Path]:
    """Write ``report.md``, ``report.json``, ``flash-map.png``, the sweep plots and ``export/``
    into ``out_dir`` (created when missing, not its parents), as one set."""
    return write_file_set(out_dir, report_files(report, str(out_dir)))


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


__all__ = [
    "EXPORT_DIR",
    "report_files",
    "report_json",
    "reproduce_commands",
    "run_demo",
    "to_markdown",
    "write_report",
]
