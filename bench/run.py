"""Run every benchmark in bench/ and write bench/results.json.

Each ``bench/bench_*.py`` defines ``run() -> dict`` returning::

    {"name": "...", "rows": [{"metric": "...", "value": 1.23, "unit": "x", "target": "<= 1.01",
                               "note": "..."}], ...any extra keys...}

Every figure is a ratio or a count measured in the same run, never a bare wall time.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str]) -> int:
    only = set(argv)
    results: dict[str, Any] = {"benchmarks": []}
    for path in sorted(HERE.glob("bench_*.py")):
        if only and path.stem.removeprefix("bench_") not in only:
            continue
        print(f"== {path.stem}", flush=True)
        t0 = time.perf_counter()
        res = _load(path).run()
        res.setdefault("name", path.stem)
        res["harness_wall_s"] = round(time.perf_counter() - t0, 3)
        results["benchmarks"].append(res)
        for row in res.get("rows", []):
            target = f"  (target {row['target']})" if row.get("target") else ""
            note = f"  {row['note']}" if row.get("note") else ""
            unit = row.get("unit", "")
            print(f"  {row['metric']:<58} {row['value']:>12} {unit:<8}{target}{note}")
    out = HERE / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
