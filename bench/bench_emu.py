"""Emulator and fault-campaign benchmarks (issue 6 section 3).

Every figure is a ratio or a count measured in this run, against a baseline measured in this run:

* sweep throughput (cut points per wall second, modelled device-seconds per wall second), per
  method, and the cost of one cut point in units of one clean scenario run;
* the exhaustive word-granularity sweep of a 256 KB user OTA plus apply with ``--workers 2``,
  against the 60 s target (``equiv``, the default method, measured in full; the literal
  ``replay`` method, which boots every cut point, measured on every 10th point and extrapolated:
  labelled as such);
* apply time against the datasheet lower bound (erases plus word programs needed, spec 8.7);
* sector erases per update, extended against stock;
* wire bytes per update (from ``flashroom.ota``; goodput figures live in bench_ota.py).

``FLASHROOM_BENCH_FULL=1`` also runs the ``replay`` method exhaustively (about a minute more).
"""

from __future__ import annotations

import os
import time
from typing import Any

KiB = 1024
TARGET_S = 60.0


def _row(
    metric: str, value: Any, unit: str = "", target: str = "", note: str = ""
) -> dict[str, Any]:
    return {"metric": metric, "value": value, "unit": unit, "target": target, "note": note}


def _clean_run_s(app_size: int) -> tuple[float, float]:
    """Wall seconds of one clean 256K user OTA + apply (the baseline), and of one boot."""
    from flashroom.emu.device import Device
    from flashroom.particle.build import synthetic_user_app

    dev = Device.new(platform="electron", profile="extended")
    app = synthetic_user_app(app_size, version=7, seed=2)
    snap = dev.snapshot()
    runs = []
    for _ in range(3):
        dev.restore(snap)
        t0 = time.perf_counter()
        dev.ota(app)
        runs.append(time.perf_counter() - t0)
    boots = []
    for _ in range(20):
        t0 = time.perf_counter()
        dev.boot()
        boots.append(time.perf_counter() - t0)
    return min(runs), min(boots)


def _sweep_rows(clean_s: float, boot_s: float) -> list[dict[str, Any]]:
    from flashroom.scenarios.sweep import SweepConfig, run_sweep

    rows: list[dict[str, Any]] = []
    # Throughput of the literal method (every cut point restored, cut and booted).
    rep = run_sweep(SweepConfig(method="replay", stride=10, workers=2))
    rj = rep.to_json()
    rows.append(
        _row(
            "sweep throughput, replay (boot every point), 2 workers",
            rj["points_per_s"],
            "points/s",
            note=f"{rj['points']} points (every 10th word op), 256K user-ota",
        )
    )
    per_point = rep.wall_s / rep.points
    rows.append(
        _row(
            "  one cut point (replay) / one clean scenario run",
            round(per_point * 2 / clean_s, 4),
            "x",
            note=f"per worker; one boot alone = {boot_s / clean_s:.4f} clean runs",
        )
    )
    rows.append(
        _row(
            "  modelled device-seconds per wall-second (replay)",
            rj["device_s_per_wall_s"],
            "x",
        )
    )
    # The exhaustive sweep, default method.
    full = run_sweep(SweepConfig(workers=2))
    fj = full.to_json()
    rows.append(
        _row(
            "exhaustive 256K word sweep (equiv), --workers 2: wall / 60 s target",
            round(full.wall_s / TARGET_S, 3),
            "x",
            "<= 1.0",
            f"{fj['points']} cut points, {fj['booted']} booted, {fj['proven_equivalent']} "
            f"proven equivalent; bad outcomes {fj['bad']}",
        )
    )
    rows.append(
        _row(
            "  exhaustive sweep wall / one clean scenario run",
            round(full.wall_s / clean_s, 1),
            "x",
            note="bound: recovery boots of DCT-write cuts (each reads the whole DCT)",
        )
    )
    rows.append(_row("  sweep throughput (equiv)", fj["points_per_s"], "points/s"))
    rows.append(
        _row("  modelled device-seconds per wall-second (equiv)", fj["device_s_per_wall_s"], "x")
    )
    replay_est = per_point * fj["points"]
    rows.append(
        _row(
            "exhaustive 256K word sweep (replay), --workers 2: wall / 60 s (extrapolated)",
            round(replay_est / TARGET_S, 2),
            "x",
            "<= 1.0",
            "extrapolated from the every-10th-point replay run above; bound: one emulator "
            "boot per cut point",
        )
    )
    if os.environ.get("FLASHROOM_BENCH_FULL"):
        t0 = time.perf_counter()
        exhaustive = run_sweep(SweepConfig(method="replay", workers=2))
        wall = time.perf_counter() - t0
        rows.append(
            _row(
                "exhaustive 256K word sweep (replay), --workers 2: wall / 60 s (measured)",
                round(wall / TARGET_S, 3),
                "x",
                "<= 1.0",
                f"bad outcomes {exhaustive.bad}",
            )
        )
    torn = run_sweep(SweepConfig(torn=True, workers=2))
    tj = torn.to_json()
    rows.append(
        _row(
            "exhaustive 256K word sweep with torn cuts: bricks + violations",
            tj["bad"],
            "points",
            "0",
            f"{tj['points']} cut points in {torn.wall_s / TARGET_S:.3f}x the 60 s target",
        )
    )
    sys_ota = run_sweep(SweepConfig(scenario="system-ota", torn=True, workers=2))
    sj = sys_ota.to_json()
    rows.append(
        _row(
            "exhaustive system-part OTA word sweep with torn cuts: bricks + violations",
            sj["bad"],
            "points",
            "0",
            f"{sj['points']} cut points ({sj['total_ops']} ops, 128K system part 2) in "
            f"{sys_ota.wall_s / TARGET_S:.3f}x the 60 s target",
        )
    )
    return rows


def _apply_rows() -> list[dict[str, Any]]:
    """Apply (bootloader copy) device time against the datasheet lower bound (spec 8.7)."""
    from flashroom.emu.device import Device
    from flashroom.geometry import STM32F205XG
    from flashroom.particle.build import synthetic_user_app

    size = 256 * KiB
    dev = Device.new(platform="electron", profile="extended")
    app = synthetic_user_app(size, version=7, seed=2)
    rc = dev.ota_begin(len(app), 512, 0)
    if rc != 0:
        return [_row("apply time", "n/a", note=f"ota_begin returned {rc}")]
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    if dev.ota_finish() != 1:
        return [_row("apply time", "n/a", note="HAL_FLASH_End refused the 256K app")]
    out = dev.reset().to_json()
    timing = STM32F205XG.timing
    words = -(-size // 4)
    dest_sectors = [s for s in STM32F205XG.sectors if 0x08080000 <= s.start < 0x08080000 + size]
    copy_bound = sum(timing.erase(s.size) for s in dest_sectors) + timing.program_words(words)
    dct_write = timing.erase(16 * KiB) + timing.program_words(16 * KiB // 4)
    measured = float(out["device_time_s"])
    return [
        _row(
            "apply device time / datasheet bound (erases + word programs of the copy)",
            round(measured / copy_bound, 4),
            "x",
            "<= 1.01",
            f"{measured:.3f} s modelled vs {copy_bound:.3f} s; includes the slot-clear DCT write",
        ),
        _row(
            "apply device time / (copy bound + one DCT write)",
            round(measured / (copy_bound + dct_write), 4),
            "x",
            "<= 1.01",
            "the DCT write (16K erase + rewrite, spec 8.1) clears the slot (spec 4.5)",
        ),
    ]


def _erase_rows() -> list[dict[str, Any]]:
    """Sector erases per update: extended against stock, same app; and the 256K app.

    Application-flash erases (sectors 5-11) and DCT erases (sectors 1-2) are counted apart: a
    DCT write erases its alternate sector only when it is not blank (spec 8.1), so the DCT count
    depends on the device's DCT history, not on the layout.
    """
    from flashroom.emu.device import Device
    from flashroom.particle.build import synthetic_user_app

    def erases(profile: str, size: int) -> tuple[int, int]:
        dev = Device.new(platform="electron", profile=profile)
        out = dev.ota(synthetic_user_app(size, version=7, seed=3)).to_json()
        if out["result"] != "applied":
            return -1, -1
        per = {int(k): int(v) for k, v in out["sector_erases"].items()}
        dct = sum(v for k, v in per.items() if k in (1, 2))
        return sum(per.values()) - dct, dct

    stock, stock_dct = erases("stock", 100 * KiB)
    ext, ext_dct = erases("extended", 100 * KiB)
    ext256, ext256_dct = erases("extended", 256 * KiB)
    return [
        _row(
            "app-flash sector erases per 100K app update, extended / stock",
            round(ext / stock, 3),
            "x",
            note=f"{ext} vs {stock} (scratch + destination); DCT erases {ext_dct} vs {stock_dct}",
        ),
        _row(
            "app-flash sector erases per 256K app update (extended)",
            ext256,
            "erases",
            note=f"sectors 8-11 once each; DCT erases {ext256_dct}; stock refuses it (-1300)",
        ),
    ]


def _wire_rows() -> list[dict[str, Any]]:
    from flashroom.emu.device import Device
    from flashroom.ota.server_end import ServerConfig
    from flashroom.ota.simulate import simulate
    from flashroom.particle.build import synthetic_user_app

    dev = Device.new(platform="electron", profile="extended")
    app = synthetic_user_app(256 * KiB, version=7, seed=4)
    rep = simulate(app, dev, server_config=ServerConfig(fast=True), seed=1).report
    return [
        _row(
            "wire bytes per 256K update / payload bytes (fast OTA, ideal link)",
            round(rep.wire_bytes / rep.payload_bytes, 4),
            "x",
            note=f"{rep.wire_bytes} wire bytes; from flashroom.ota (goodput: see bench_ota)",
        )
    ]


def run() -> dict[str, Any]:
    """The emulator benchmark (see the module docstring)."""
    clean_s, boot_s = _clean_run_s(256 * KiB)
    rows = _sweep_rows(clean_s, boot_s)
    rows += _apply_rows()
    rows += _erase_rows()
    rows += _wire_rows()
    return {
        "name": "emu",
        "rows": rows,
        "baseline": {"clean_scenario_run_s": round(clean_s, 4), "boot_s": round(boot_s, 5)},
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":  # pragma: no cover
    for r in run()["rows"]:
        print(r)
