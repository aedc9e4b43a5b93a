"""Device OS benchmark: what flashroom's patch costs in flash, and what a build costs in time.

Uses the same cached reference build as the tests (``build/devos-cache``, see
:mod:`flashroom.devos.reference`): built here when the cache is cold (about 2-3 minutes on 2
cores), else read. Figures:

* module sizes of the patched build against the stock v2.3.1 fixtures
  (``../shared/fixtures/device-os``), as ratios; idx 2 (system-part3, the HAL) must stay within
  its 128 KB region;
* the 200 KB test app against the 256 KB region, and how far it overflows the stock 128 KB one;
* build step times: bootloader, system, one user app alone, the stock user-only link; as seconds
  measured when the cache entry was built (said in the note), and as ratios; plus one app
  rebuilt against the built system in this run.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = REPO / "tests" / "data" / "apps"
REGION_128K = 128 * 1024
REGION_256K = 256 * 1024


def _row(metric: str, value: Any, unit: str, target: str = "", note: str = "") -> dict[str, Any]:
    return {"metric": metric, "value": value, "unit": unit, "target": target, "note": note}


def run() -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "src"))
    from flashroom.devos.reference import reference_build
    from flashroom.devos.toolchain import find_toolchain
    from flashroom.devos.tree import find_shared_dir
    from flashroom.errors import ToolchainError

    shared = find_shared_dir(REPO)
    if shared is None:
        return {"rows": [_row("devos", 0, "", note="skipped: ../shared not found")]}
    try:
        find_toolchain()
    except ToolchainError as e:
        return {"rows": [_row("devos", 0, "", note=f"skipped: {e}")]}
    t0 = time.perf_counter()
    ref = reference_build(
        shared / "device-os" / "v2.3.1",
        REPO / "build" / "devos-cache",
        apps=[APPS / n for n in ("big200k", "tiny", "tiny-v2")],
        stock_apps=[APPS / n for n in ("big200k", "tiny")],
        jobs=2,
    )
    wall = time.perf_counter() - t0
    when = "built in this run" if ref.built_here else "recorded when the cache entry was built"
    stock_dir = shared / "fixtures" / "device-os"
    m = ref.manifest
    rows: list[dict[str, Any]] = []

    def stock_size(name: str) -> int:
        return (stock_dir / f"electron-{name}@v2.3.1.bin").stat().st_size

    for name, idx in (("system-part3", 2), ("system-part2", 1), ("system-part1", 3)):
        e = m.module(name)
        s = stock_size(name)
        rows.append(
            _row(
                f"idx {idx} ({name}) size: patched / stock",
                round(e.size / s, 5),
                "ratio",
                note=f"{e.size} vs {s} bytes ({e.size - s:+d})",
            )
        )
    s3 = m.module("system-part3")
    rows.append(
        _row(
            "idx 2 (system-part3): share of its 128 KB region used",
            round(s3.size / REGION_128K, 4),
            "ratio",
            "<= 1.0",
            f"{REGION_128K - s3.size} bytes free (0x{s3.start_address:08x}.."
            f"0x{s3.end_address:08x} + CRC)",
        )
    )
    boot = m.module("bootloader")
    same = (ref.out / boot.file).read_bytes() == (
        stock_dir / "electron-bootloader@v2.3.1.bin"
    ).read_bytes()
    rows.append(
        _row("bootloader: identical to stock 1006", int(same), "bool", "== 1", f"{boot.size} B")
    )
    big = m.module("user-part-big200k")
    rows.append(
        _row(
            "200 KB test app: share of the 256 KB user region used",
            round(big.size / REGION_256K, 4),
            "ratio",
            "<= 1.0",
            f"{big.size} bytes, 0x{big.start_address:08x}..0x{big.end_address:08x}",
        )
    )
    link = ref.stock_links.get("big200k")
    over = None
    if link is not None and not link.ok:
        for line in link.excerpt:
            mm = re.search(r"overflowed by (\d+) bytes", line)
            if mm:
                over = int(mm.group(1))
    rows.append(
        _row(
            "200 KB test app on the stock tree: APP_FLASH overflow",
            over if over is not None else -1,
            "bytes",
            "> 0",
            "the linker's 'region `APP_FLASH' overflowed by' (stock user region 128 KB)",
        )
    )
    tiny, tiny2 = m.module("user-part-tiny"), m.module("user-part-tiny-v2")
    rows.append(
        _row("tiny app v2 - v1 size", tiny2.size - tiny.size, "bytes", note="for delta-OTA")
    )
    t = ref.timings
    system_s = t.get("system", 0.0)
    for step in ("bootloader", "system", "app big200k", "app tiny", "stock app big200k"):
        if step in t:
            rows.append(_row(f"build time: {step}", round(t[step], 1), "s", note=when))
    if system_s:
        rows.append(
            _row(
                "build time: one user app alone / the system build",
                round(t.get("app tiny", 0.0) / system_s, 4),
                "ratio",
                "< 0.1",
                when,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        ref.system_build(jobs=2).build_app(APPS / "tiny-v2", tmp)
        rebuild = time.perf_counter() - t1
    rows.append(
        _row(
            "build time: tiny-v2 against the built system, this run",
            round(rebuild, 2),
            "s",
            note="staged sources cached: the user lib and the link only",
        )
    )
    if system_s:
        rows.append(
            _row(
                "  ... / the system build",
                round(rebuild / system_s, 4),
                "ratio",
                "< 0.1",
                f"system {system_s:.1f} s, {when}",
            )
        )
    return {
        "name": "bench_devos",
        "rows": rows,
        "cache_key": ref.key,
        "cache_built_here": ref.built_here,
        "reference_wall_s": round(wall, 1),
    }


if __name__ == "__main__":
    for r in run()["rows"]:
        print(r)
