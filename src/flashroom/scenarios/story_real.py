"""The demo's real-code steps: the model against the real Device OS binaries, and the way to a
real Electron (issues 10 and 11). Each step says what it skipped, and why, when the real
binaries, the Device OS source or the toolchain are not there.

* :func:`step_real_code`: differential power-loss sweeps of a 256 KB user OTA with the real
  1006 and 1002 bootloaders (every cut point booted by the real code and by the model from the
  same state, compared), their two timelines, and the real stock OTA path's -1300.
* :func:`step_real_electron`: the patched Device OS built from source (once, cached and shared
  with the tests), a device running that real code taking a >128 KB app over the emulated 3G
  link, the same app refused by the real stock parts, the DfuSe packages, the migration plan.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flashroom.scenarios.story import DemoStep, Table

BL_1006 = "electron-bootloader@v2.3.1.bin"
BL_1002 = "electron-bootloader@v2.0.0-rc.1.bin"
#: The apps of the shared reference build (tests/data/apps; the tests' ``devos_build`` fixture
#: builds the same list, so ``make test`` and ``make demo`` share one cached build).
DEMO_APPS = ("big200k", "big200k-v2", "tiny", "tiny-v2")
DEMO_STOCK_APPS = ("big200k", "tiny")
HEADERS = ["bootloader", "cut points", "identical", "differing", "bad"]


def repo_root() -> Path:
    """The checkout flashroom runs from (``src/flashroom`` two levels down)."""
    import flashroom

    return Path(flashroom.__file__).resolve().parents[2]


def real_binaries_dir() -> Path | None:
    """``shared/fixtures/device-os`` beside the checkout ($FLASHROOM_DEVICE_OS_FIXTURES), or
    None."""
    from flashroom.devos.tree import find_device_os_binaries

    return find_device_os_binaries(repo_root())


def _skipped(key: str, title: str, why: str) -> DemoStep:
    return DemoStep(key, title, [f"Skipped: {why}."], facts={"skipped": why})


def step_real_code(quick: bool, progress: Callable[[int, int], None] | None = None) -> DemoStep:
    """The model checked against the real bootloaders at every cut point, and the real OTA
    path's answer to a 200 KB app on stock."""
    title = "The model against the real Device OS code"
    fixtures = real_binaries_dir()
    if fixtures is None:
        return _skipped("real_code", title, "the real Device OS binaries (shared/fixtures/"
                        "device-os) are not beside this checkout")  # fmt: skip
    from flashroom.emu.device import Device
    from flashroom.particle.build import synthetic_user_app
    from flashroom.scenarios.compare import compare_run
    from flashroom.scenarios.sweep import SweepConfig, run_sweep

    results: dict[str, Any] = {}
    for name in (BL_1006, BL_1002):
        cfg = SweepConfig(
            profile="extended",
            scenario="user-ota",
            app_size=256 * 1024,
            granularity="chunk",
            torn=True,
            first_op=505 if quick else 0,
            bootloader_firmware=str(fixtures / name),
            compare_model=True,
            keep_points=True,
            workers=1 if quick else 2,
        )
        results[name] = run_sweep(cfg, progress=progress)
    r6, r2 = results[BL_1006], results[BL_1002]
    c6, c2 = r6.comparison, r2.comparison
    assert c6 is not None and c2 is not None
    dev = Device.new(
        "electron", "stock", bootloader_firmware=fixtures / BL_1006, system_firmware=fixtures
    )
    app = synthetic_user_app(200 * 1024, seed=3)
    _model, real, diff = compare_run(dev, lambda: dev.ota(app))
    out = real.result
    code = None if out is None or out.error is None else out.error.code
    scope = "cut points 505 on (quick)" if quick else "every cut point"
    rows = [
        [
            "v2.3.1 (1006, resumable)",
            str(r6.points),
            str(c6.identical),
            str(c6.differing),
            str(r6.bad),
        ],
        [
            "v2.0.0-rc.1 (1002, legacy)",
            str(r2.points),
            str(c2.identical),
            str(c2.differing),
            str(r2.bad),
        ],
    ]
    lines = [
        "Every recovery boot ran the real bootloader binary, instruction by instruction "
        "(Unicorn), against flashroom's own NOR flash, and the Python model from the same state; "
        "all 1 MB of flash, the backup registers, the boot outcome and the operation sequence "
        f"were compared ({scope}, chunk granularity, torn too).",
        f"1006: {c6.differing} differences, {r6.bad} bad outcomes. 1002: {c2.differing} "
        f"differences, {r2.bad} bad outcomes, at exactly the points where the model has them "
        "(the legacy copy clears the slot before copying).",
        "The real OTA path of the stock system (Spark_*_Firmware_Update of system module idx 2, "
        f"called at function level) answered {code} to a 200 KB app; flash, DCT and backup "
        f"registers are {'identical to' if diff is None else 'DIFFERENT from'} the model's.",
        "Timelines: timeline-1006.png (clean) and timeline-1002.png (the hazard window).",
    ]
    ok = (
        c6.differing == 0
        and c2.differing == 0
        and r6.bad == 0
        and r2.bad > 0
        and code == -1300
        and diff is None
    )
    step = DemoStep(
        "real_code",
        title,
        lines,
        [
            Table(
                "differential sweeps",
                ["bootloader", "cut points", "identical", "differing", "bad"],
                rows,
            )
        ],
        {
            "scope": scope,
            "sweeps": {
                "1006": {"points": r6.points, **c6.to_json(), "bad": r6.bad},
                "1002": {"points": r2.points, **c2.to_json(), "bad": r2.bad},
            },
            "real_ota_200k_on_stock": {"code": code, "identical_to_model": diff is None},
        },
        ok,
    )
    step.plots = [("timeline-1006.png", r6), ("timeline-1002.png", r2)]
    return step


def step_real_electron(out_dir: Path | None) -> DemoStep:
    """Build the patched Device OS (cached), run it, package it, plan the migration."""
    title = "On a real Electron: the patched Device OS, built, run, packaged"
    fixtures = real_binaries_dir()
    repo = repo_root()
    apps = repo / "tests" / "data" / "apps"
    from flashroom.devos.toolchain import find_toolchain
    from flashroom.devos.tree import find_shared_dir
    from flashroom.errors import ToolchainError

    shared = find_shared_dir(repo)
    src = None if shared is None else shared / "device-os" / "v2.3.1"
    if src is None or not (src / "build" / "version.mk").is_file():
        return _skipped("real_electron", title, "the Device OS 2.3.1 source (shared/device-os/"
                        "v2.3.1) is not beside this checkout")  # fmt: skip
    if fixtures is None or not apps.is_dir():
        return _skipped("real_electron", title, "the real stock binaries or the example apps "
                        "(tests/data/apps) are missing")  # fmt: skip
    try:
        find_toolchain()
    except ToolchainError as e:
        return _skipped("real_electron", title, str(e))
    from flashroom.devos.migrate import load_migration_modules, plan_migration
    from flashroom.devos.package import package
    from flashroom.devos.reference import reference_build
    from flashroom.emu.device import Device
    from flashroom.ota.link import get_link
    from flashroom.scenarios.deliver import update_in_process
    from flashroom.scenarios.migrate import emulate_plan

    ref = reference_build(
        src,
        repo / "build" / "devos-cache",
        apps=[apps / n for n in DEMO_APPS],
        stock_apps=[apps / n for n in DEMO_STOCK_APPS],
        jobs=2,
    )
    out = Path(ref.out)
    big = (out / "user-part-big200k.bin").read_bytes()
    dev = Device.new(
        "electron", "extended", bootloader_firmware=out / "bootloader.bin", system_firmware=out
    )
    res = update_in_process(dev, big, link=get_link("3g"))
    stock = Device.new(
        "electron", "stock", bootloader_firmware=fixtures / BL_1006, system_firmware=fixtures
    )
    refused = update_in_process(stock, big, link=get_link("3g"))
    packaged: list[str] = []
    if out_dir is not None:
        dest = out_dir / "electron-build"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(out, dest)
        result = package(dest)
        packaged = [Path(m.dfu_file).name for m in result.modules] + [Path(result.flashing).name]
    plan = plan_migration(load_migration_modules(out))
    runs = emulate_plan(
        plan,
        bootloader_firmware=fixtures / BL_1006,
        system_firmware=fixtures,
        also_system_firmware=(out,),
    )
    idx2 = next(e for e in ref.manifest.modules if e.name == "system-part3")
    steps_text = ", ".join(
        f"{st.module.label().split(' (')[0]} {len(st.module.data)} B" for st in plan.steps
    )
    wire = 0 if res.report is None else res.report.wire_bytes
    lines = [
        "Device OS 2.3.1 patched with flashroom's changes and built from source with Debian's "
        f"arm-none-eabi-gcc (cached in build/devos-cache): system idx 2 is {idx2.size} bytes "
        "(its region holds 131,072), version 2350.",
        f"A device running that real code (bootloader at every boot, the patched OTA path) took "
        f"the {len(big)}-byte app over the emulated 3G link ({wire} bytes on the air): "
        f"{res.result}, running.",
        f"The same app against the real stock 2.3.1 parts: {refused.result} "
        f"({refused.error_code}).",
        "Migration over the air (devos migrate-plan): "
        + steps_text
        + "; on the emulated stock Electron: "
        + ", ".join(f"{r.result} ({r.ota_path} OTA path)" for r in runs)
        + ".",
        "Not verified here: no hardware was used, and whether the Particle cloud accepts a "
        "256 KB Electron binary is unknown (docs/real-electron.md).",
    ]
    if packaged:
        lines.append("USB packages in electron-build/: " + ", ".join(packaged))
    ok = (
        res.result == "applied"
        and refused.error_code == -1300
        and plan.ok
        and [r.result for r in runs] == ["applied"] * len(runs)
    )
    return DemoStep(
        "real_electron",
        title,
        lines,
        [],
        {
            "idx2_size": idx2.size,
            "big_app": {"size": len(big), "result": res.result, "wire_bytes": wire},
            "on_stock": {"result": refused.result, "code": refused.error_code},
            "migration": plan.to_json(),
            "migration_emulated": [r.to_json() for r in runs],
            "packaged": packaged,
        },
        ok,
    )


__all__ = ["real_binaries_dir", "repo_root", "step_real_code", "step_real_electron"]
