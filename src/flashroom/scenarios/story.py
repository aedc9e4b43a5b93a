"""The end-to-end demo as data: each step runs the real API and returns facts and tables.

``flashroom demo`` renders each :class:`DemoStep` as it completes; :mod:`flashroom.report.demo`
turns the same steps into ``report.md`` and ``report.json``. Nothing here prints or writes.

Steps: 1) the stock and extended Electron maps; 2) a 200 KB app refused on stock (-1300, spec
3.5 #20); 3) the same app delivered over the emulated 3G link to an extended device, and running;
4) a bounded power-loss sweep with zero bricks; 5) the 192K/192K explanation from ``layout
check``; 6) the model against the real bootloaders and OTA path
(:mod:`flashroom.scenarios.story_real`); 7) the patched Device OS built, run, packaged and the
migration planned; then the report files and the layout exports.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flashroom.emu.device import Device
from flashroom.emu.inspect import flash_map
from flashroom.layout import check_candidate, get_layout
from flashroom.ota.link import get_link
from flashroom.particle.build import device_os_install
from flashroom.particle.module_info import read_module_info_at
from flashroom.particle.pack import PackRequest, pack_module
from flashroom.ranges import fmt_addr, fmt_size
from flashroom.scenarios.deliver import update_over_loopback
from flashroom.scenarios.sweep import SweepConfig, run_sweep

APP_SIZE = 200 * 1024


@dataclass
class Table:
    """A titled table of plain cells (rendered by rich in the terminal, Markdown in the file)."""

    title: str
    headers: list[str]
    rows: list[list[str]]

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form."""
        return {"title": self.title, "headers": self.headers, "rows": self.rows}


@dataclass
class DemoStep:
    """One step of the story: what was shown, the evidence, and whether it went as expected.

    Attributes:
        key: snake_case id (``maps``, ``refused_on_stock``...).
        title: one line.
        lines: the explanation, a sentence per line.
        tables: tables of evidence.
        facts: machine-readable results (numbers, codes), the JSON report's content.
        ok: the step showed what it is meant to show.
    """

    key: str
    title: str
    lines: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    #: pictures the report draws: (file name, a SweepResult kept with its points); not JSON
    plots: list[tuple[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form."""
        return {
            "key": self.key,
            "title": self.title,
            "ok": self.ok,
            "lines": self.lines,
            "tables": [t.to_json() for t in self.tables],
            "facts": self.facts,
        }


@dataclass
class DemoReport:
    """All steps plus the files written."""

    steps: list[DemoStep]
    files: list[str]
    quick: bool
    wall_s: float = 0.0
    #: What the story ran on: name -> {"sha256", "size", "how"} (the report prints them).
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every step showed what it should."""
        return all(s.ok for s in self.steps)

    def step(self, key: str) -> DemoStep:
        """The step called ``key``.

        Raises:
            KeyError: no such step.
        """
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        """The ``report.json`` content."""
        return {
            "ok": self.ok,
            "quick": self.quick,
            "wall_s": round(self.wall_s, 2),
            "inputs": self.inputs,
            "steps": [s.to_json() for s in self.steps],
            "files": self.files,
        }


StepFn = Callable[[DemoStep], None]


def _region_rows(layout: Any) -> list[list[str]]:
    return [
        [
            r.name,
            fmt_addr(r.start),
            fmt_addr(r.end),
            fmt_size(r.size),
            ",".join(str(i) for i in layout.sector_indices(r)),
        ]
        for r in layout.regions
    ]


def step_maps() -> DemoStep:
    """Step 1: the stock and extended Electron maps."""
    stock = get_layout("electron", "stock")
    ext = get_layout("electron", "extended")
    heads = ["region", "start", "end", "size", "sectors"]
    return DemoStep(
        "maps",
        "The stock and extended Electron flash maps",
        [
            f"Stock Device OS 2.3.1: user part {fmt_size(stock.user_part.size)} at "
            f"{fmt_addr(stock.user_part.start)} (sector 8), factory image in sector 9, "
            "OTA scratch in sector 10, sector 11 unused (docs/device-os.md#maps).",
            f"Extended (docs/device-os.md#extended): user part {fmt_size(ext.user_part.size)} "
            f"{fmt_addr(ext.user_part.start)}-{fmt_addr(ext.user_part.end)} (sectors 8-9), "
            f"OTA scratch {fmt_size(ext.ota_capacity)} (sectors 10-11), factory image retired. "
            "The user start address and the dynalib table do not move.",
        ],
        [
            Table("stock", heads, _region_rows(stock)),
            Table("extended", heads, _region_rows(ext)),
        ],
        {
            "stock_max_app_size": stock.max_app_size,
            "extended_max_app_size": ext.max_app_size,
            "extended_ota_capacity": ext.ota_capacity,
        },
    )


def _outcome(out: Any) -> dict[str, Any]:
    if isinstance(out, dict):
        return out
    j: dict[str, Any] = out.to_json()
    return j


def _device_map_table(title: str, before: list[Any], after: list[Any]) -> Table:
    """What each region of an emulated device holds, before and after a step (``emu show``)."""
    rows = []
    for b, a in zip(before, after, strict=True):
        changed = (b.content, b.detail, b.erases) != (a.content, a.detail, a.erases)
        rows.append(
            [
                b.name,
                f"{fmt_addr(b.start)}-{fmt_addr(b.end)}",
                b.detail,
                a.detail,
                str(a.erases - b.erases),
                "yes" if changed else "",
            ]
        )
    return Table(title, ["region", "range", "before", "after", "erases", "changed"], rows)


def step_refused(app: bytes) -> DemoStep:
    """Step 2: the 200 KB app is refused on stock with -1300 and the old app keeps running."""
    dev = Device.new(platform="electron", profile="stock")
    dev.boot()
    before = dev.user_part_bytes()
    map_before = flash_map(dev)
    out = _outcome(dev.ota(app))
    after = dev.user_part_bytes()
    map_table = _device_map_table(
        "stock device flash, before and after", map_before, flash_map(dev)
    )
    err = out.get("error") or {}
    info = read_module_info_at(app, 0)
    stock = get_layout("electron", "stock")
    code = err.get("code")
    ok = code == -1300 and before == after
    return DemoStep(
        "refused_on_stock",
        f"A {fmt_size(len(app))} app is refused by stock Device OS",
        [
            f"OTA result: {out.get('result')}, error {code}: {err.get('message')}",
            f"Why (docs/device-os.md#extended): fetch_module requires module_end_address "
            f"{fmt_addr(info.module_end_address)} <= the user bounds end "
            f"{fmt_addr(stock.user_part.end)}; -1300 is OTA_MODULE_NOT_FOUND and no slot is "
            "written.",
            f"The old app still runs, byte for byte: {'yes' if before == after else 'NO'} "
            f"(boot: {out.get('boot')}).",
        ],
        [map_table],
        {
            "result": out.get("result"),
            "error_code": code,
            "error_message": err.get("message"),
            "module_end_address": info.module_end_address,
            "user_bounds_end": stock.user_part.end,
            "old_app_unchanged": before == after,
            "boot": out.get("boot"),
        },
        ok,
    )


#: The demo's app: the README tour's ``app200.bin`` (a 200 KB user part for the extended
#: layout, depending on the extended system as ``pack --layout extended`` makes it).
DEMO_APP_COMMAND = (
    f"flashroom module pack --synthetic {APP_SIZE // 1024}K --platform electron --function user "
    "--index 1 --version 7 --start 0x08080000 --layout extended -o app.bin"
)


def demo_app() -> bytes:
    """The module :data:`DEMO_APP_COMMAND` writes."""
    req = PackRequest(
        platform="electron",
        function="user",
        index=1,
        version=7,
        start_address=None,  # the user part's start on the extended layout: the command's --start
        layout="extended",
        synthetic_size=APP_SIZE,
    )
    return pack_module(req, None).module


def step_delivered(app: bytes, link_name: str = "3g") -> DemoStep:
    """Step 3: the same app over the emulated 3G link to an extended device, then running."""
    dev = Device.new(platform="electron", profile="extended")
    dev.boot()
    map_before = flash_map(dev)
    lines: list[str] = []
    facts: dict[str, Any] = {"link": link_name}
    link = get_link(link_name)
    # the tour's `ota serve --insecure --no-stream` + `emu connect --link 3g`, in one process
    res = update_over_loopback(dev, app, link=link)
    rep = res.report.to_json()
    facts.update({"transport": "CoAP over UDP on loopback, simulated link time", **rep})
    facts["device_status"] = res.device_status
    lines.append(
        f"Delivered with fast OTA over real CoAP/UDP (loopback) on the emulated '{link_name}' "
        f"link: {rep['payload_bytes']} payload bytes, {rep['wire_bytes']} bytes on the wire "
        f"({rep['wire_overhead_ratio']}x), {rep['messages']} datagrams, "
        f"{rep['retransmissions']} retransmissions, {rep['link_time_s']} s of link time "
        f"(simulated; goodput {rep['goodput_ratio'] * 100:.1f}% of the link)."
    )
    out = res.outcome or {}
    running = out.get("running") or {}
    # byte for byte: the user part now holds exactly the delivered file, and it runs
    runs_new = out.get("boot") == "application" and dev.user_part_bytes() == app
    lines.append(
        "After the reset the bootloader copied sectors 8-9 (docs/device-os.md#copy); boot: "
        f"{out.get('boot')}, "
        f"running a {running.get('size')}-byte USER_PART v{running.get('module_version')}: "
        f"{'the new app' if runs_new else 'NOT the new app'}."
    )
    facts.update(
        {
            "boot": out.get("boot"),
            "running": running,
            "runs_new_app": runs_new,
            "sector_erases": out.get("sector_erases"),
            "device_time_s": out.get("device_time_s"),
        }
    )
    map_table = _device_map_table(
        "extended device flash, before and after", map_before, flash_map(dev)
    )
    return DemoStep(
        "delivered_extended",
        f"The same app over emulated {link_name.upper()} to an extended Electron, and running",
        lines,
        [map_table],
        facts,
        runs_new,
    )


def step_sweep(
    quick: bool, progress: Callable[[int, int], None] | None = None
) -> tuple[DemoStep, Any]:
    """Step 4: a power-loss sweep (clearly labelled), expecting zero bricks, plus the same sweep
    on a legacy bootloader to show that the sweep can fail (spec 4.5)."""
    cfg = (
        SweepConfig(granularity="chunk", stride=4, app_size=APP_SIZE)
        if quick
        else SweepConfig(granularity="word", torn=True, app_size=256 * 1024, workers=2)
    )
    res = run_sweep(cfg, progress=progress)
    j = res.to_json()
    legacy = run_sweep(SweepConfig(granularity="chunk", bootloader="legacy", app_size=cfg.app_size))
    lj = legacy.to_json()
    label = (
        f"exhaustive at {cfg.granularity} granularity"
        + (", every cut also torn" if cfg.torn else "")
        if j["exhaustive"]
        else f"every {cfg.stride}th cut point at {cfg.granularity} granularity (bounded subset)"
    )
    rows = [[k, str(v), str(lj["counts"][k])] for k, v in j["counts"].items()]
    lines = [
        f"Scenario user-ota: a {fmt_size(cfg.app_size)} app over a 100K app, extended profile: "
        f"{j['total_ops']} flash operations, {j['points']} cut points, {label}.",
        f"Resumable bootloader (>= 1003): bricks {j['counts']['brick']}, invariant violations "
        f"{j['counts']['invariant_violation']}. {j['booted']} recovery boots were run; "
        f"{j['proven_equivalent']} cut points were proven to behave exactly like a booted one "
        "(their state differs only in bytes the recovery boot never depended on).",
        f"The same sweep with a legacy bootloader (<= 1002, clears the slot before copying, "
        f"docs/device-os.md#copy), at chunk granularity: {lj['counts']['invariant_violation']} "
        "cut points "
        "leave the device in safe mode with neither app: the sweep does catch the hazard.",
        f"{j['wall_s']} s for the main sweep ({j['points_per_s']} cut points/s).",
    ]
    ok = bool(j["ok"]) and lj["counts"]["invariant_violation"] > 0
    step = DemoStep(
        "sweep",
        "Power-loss sweep: zero bricks (and the legacy hazard caught)",
        lines,
        [Table("outcomes", ["class", "resumable (main sweep)", "legacy (chunk)"], rows)],
        {
            "label": label,
            "config": j["config"],
            "total_ops": j["total_ops"],
            "points": j["points"],
            "booted": j["booted"],
            "proven_equivalent": j["proven_equivalent"],
            "counts": j["counts"],
            "exhaustive": j["exhaustive"],
            "ok": j["ok"],
            "wall_s": j["wall_s"],
            "legacy_counts": lj["counts"],
            "legacy_first_failure": lj["first_failure"],
        },
        ok,
    )
    return step, res


def step_192k() -> DemoStep:
    """Step 5: why 192K user + 192K OTA is impossible (layout check)."""
    res = check_candidate("electron", 192 * 1024, 192 * 1024)
    rows = [[v.rule, v.region, fmt_addr(v.address), v.message] for v in res.violations]
    return DemoStep(
        "layout_192k",
        "Why not 192K app + 192K OTA? (layout check)",
        [
            "`flashroom layout check --platform electron --user-size 192K --ota-size 192K` "
            f"{'passes' if res.valid else 'fails'}: a sector is the smallest erasable unit, "
            "so a sector cannot belong to both the user part and the OTA scratch.",
        ],
        [Table("violations", ["rule", "region", "address", "message"], rows)],
        {"valid": res.valid, "violations": [v.to_json() for v in res.violations]},
        not res.valid,
    )


def run_story(
    quick: bool = False,
    on_step: StepFn | None = None,
    progress: Callable[[int, int], None] | None = None,
    out_dir: Any = None,
) -> DemoReport:
    """Run the whole story (every step runs the real API); nothing is written.

    Args:
        quick: a smaller sweep (for tests).
        on_step: called with each step as soon as it completes (the CLI renders it).
        progress: called as ``progress(done, total)``: one unit per step, plus one per sweep
            cut point once the sweep has counted them (the sweep is most of the run).
        out_dir: where the real-Electron step copies and packages the build (None: it only
            builds and runs it).
    """
    t0 = time.perf_counter()
    steps: list[DemoStep] = []
    n_steps = 7
    sweep_total = [0]

    def done(step: DemoStep) -> None:
        steps.append(step)
        if on_step:
            on_step(step)
        if progress:
            progress(len(steps) + sweep_total[0], n_steps + sweep_total[0])

    def sweep_progress(d: int, total: int) -> None:
        sweep_total[0] = total
        if progress:
            progress(len(steps) + d, n_steps + total)

    app = demo_app()
    done(step_maps())
    done(step_refused(app))
    done(step_delivered(app))
    sweep_step, _ = step_sweep(quick, sweep_progress)
    done(sweep_step)
    done(step_192k())
    # the real Device OS code (each says what it skipped when its inputs are missing)
    from flashroom.scenarios.story_real import step_real_code, step_real_electron

    done(step_real_code(quick))
    if quick:
        done(
            DemoStep(
                "real_electron",
                "On a real Electron: the patched Device OS, built, run, packaged",
                ["Skipped in quick mode: the Device OS build takes minutes (make demo runs it)."],
                facts={"skipped": "quick mode"},
            )
        )
    else:
        done(step_real_electron(out_dir))
    report = DemoReport(steps, [], quick)
    report.wall_s = time.perf_counter() - t0
    report.inputs = {
        "app": {
            "sha256": hashlib.sha256(app).hexdigest(),
            "size": len(app),
            "how": DEMO_APP_COMMAND,
        },
        "device_os_install": {
            "sha256": hashlib.sha256(b"".join(device_os_install("electron"))).hexdigest(),
            "size": sum(len(m) for m in device_os_install("electron")),
            "how": "device_os_install('electron'): the synthetic Device OS 2.3.1 modules",
        },
    }
    return report


__all__: Sequence[str] = [
    "DemoReport",
    "DemoStep",
    "Table",
    "run_story",
]
