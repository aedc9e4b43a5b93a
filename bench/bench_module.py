"""Module benchmark: parse + verify every fixture, and the whole ``module inspect`` process.

Every figure is a ratio against a baseline measured in the same run:

* parse + verify throughput (MB/s) of :func:`flashroom.particle.module.parse_module` over all
  fixture bytes, against raw ``zlib.crc32`` + ``hashlib.sha256`` over the same bytes (the
  unavoidable work of verifying a module); the ratio is flashroom time / baseline time.
* whole-process time of ``flashroom module inspect --format json`` on all fixtures, against
  ``python -c pass`` (interpreter start-up), both as subprocesses with the same interpreter.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _fixture_files() -> tuple[list[Path], str]:
    env = os.environ.get("FLASHROOM_FIXTURES")
    d = Path(env) if env else REPO.parent / "shared" / "fixtures" / "particle-modules"
    files = sorted(d.glob("*.bin")) if d.is_dir() else []
    return files, str(d)


def _best_of(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _median_process(argv: list[str], repeat: int) -> float:
    times = []
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "src"))
    from flashroom.errors import FlashroomError
    from flashroom.particle.build import device_os_install, synthetic_user_app
    from flashroom.particle.module import parse_module

    files, where = _fixture_files()
    note_src = f"{len(files)} fixtures from {where}"
    blobs: list[bytes] = [p.read_bytes() for p in files]
    tmpdir: Path | None = None
    if not blobs:  # no fixtures: synthetic Device OS install + app, written to a temp dir
        import tempfile

        blobs = [*device_os_install("electron"), synthetic_user_app(200 * 1024)]
        tmpdir = Path(tempfile.mkdtemp(prefix="flashroom-bench-"))
        files = []
        for i, b in enumerate(blobs):
            f = tmpdir / f"m{i}.bin"
            f.write_bytes(b)
            files.append(f)
        note_src = "no fixtures found; synthetic Electron install + 200K app"
    total = sum(len(b) for b in blobs)
    repeat = 5
    loops = max(1, (8 * 1024 * 1024) // max(1, total))  # ~8 MB of input per timing

    def flashroom_parse() -> None:
        for _ in range(loops):
            for b in blobs:
                try:
                    m = parse_module(b)
                    m.ok  # noqa: B018 - run every check
                except FlashroomError:
                    pass

    def baseline() -> None:
        for _ in range(loops):
            for b in blobs:
                zlib.crc32(b[:-4])
                hashlib.sha256(b[:-38]).digest()

    t_fr = _best_of(flashroom_parse, repeat)
    t_base = _best_of(baseline, repeat)
    mb = total * loops / 1e6
    fr_mbs = mb / t_fr
    base_mbs = mb / t_base

    proc_repeat = 5
    inspect = [sys.executable, "-m", "flashroom", "module", "inspect", "--format", "json"]
    t_inspect = _median_process([*inspect, *map(str, files)], proc_repeat)
    t_python = _median_process([sys.executable, "-c", "pass"], proc_repeat)
    t_import = _median_process([sys.executable, "-c", "import flashroom.particle.module"], 3)
    if tmpdir is not None:
        for f in files:
            f.unlink()
        tmpdir.rmdir()

    return {
        "name": "module",
        "rows": [
            {
                "metric": "parse+verify throughput, flashroom",
                "value": round(fr_mbs, 1),
                "unit": "MB/s",
                "target": "",
                "note": f"{note_src}, {total} bytes x {loops}",
            },
            {
                "metric": "parse+verify throughput, baseline crc32+sha256",
                "value": round(base_mbs, 1),
                "unit": "MB/s",
                "target": "",
                "note": "raw zlib.crc32 + hashlib.sha256 over the same bytes, same run",
            },
            {
                "metric": "parse+verify time / crc32+sha256 time",
                "value": round(t_fr / t_base, 2),
                "unit": "x",
                "target": "<= 2.5",
                "note": "includes decompressing compressed and walking combined fixtures",
            },
            {
                "metric": "`module inspect` all fixtures / `python -c pass`",
                "value": round(t_inspect / t_python, 2),
                "unit": "x",
                "target": "<= 12",
                "note": f"median of {proc_repeat} processes each; {len(files)} files",
            },
            {
                "metric": "`import flashroom.particle.module` / `python -c pass`",
                "value": round(t_import / t_python, 2),
                "unit": "x",
                "target": "<= 8",
                "note": "parser import alone (no click/rich); stdlib dataclasses dominate",
            },
            {
                "metric": "fixture files parsed",
                "value": len(blobs),
                "unit": "files",
                "target": "",
                "note": "",
            },
        ],
    }


if __name__ == "__main__":  # pragma: no cover
    for row in run()["rows"]:
        print(row)
