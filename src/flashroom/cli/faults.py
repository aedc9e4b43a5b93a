"""``flashroom emu sweep`` and ``flashroom emu badinput``: the fault campaigns.

Thin shells: parse options into the API's config, call one function, render the result as rich
tables or JSON, and exit 1 (via :class:`CheckFailed`) when a check found a problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flashroom.cli.common import (
    SIZE,
    CheckFailed,
    emit_json,
    format_option,
    progress_bar,
    stdout_console,
)
from flashroom.cli.emu import GRANULARITIES, platform_option
from flashroom.deviceos import GEN2_PROFILES as PROFILES
from flashroom.deviceos.gen2 import BOOTLOADER_VARIANTS
from flashroom.scenarios.sweep_engine import METHODS
from flashroom.scenarios.sweep_scenarios import SCENARIOS

_STYLE = {
    "new_app": "green",
    "old_app": "green",
    "safe_mode": "yellow",
    "dfu": "yellow",
    "brick": "bold red",
    "invariant_violation": "bold red",
}


@click.command(name="sweep")
@platform_option
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default="extended",
    show_default=True,
    help="Device OS profile: stock v2.3.1 or the extended 256K layout (spec 9).",
)
@click.option(
    "--bootloader",
    type=click.Choice(list(BOOTLOADER_VARIANTS)),
    default="resumable",
    show_default=True,
    help="Copy semantics (spec 4.5): resumable (>= 1003) or legacy (<= 1002).",
)
@click.option(
    "--scenario",
    type=click.Choice(list(SCENARIOS)),
    default="user-ota",
    show_default=True,
    help="What is interrupted: an app OTA + apply, a system-part OTA + apply, or a DFU install.",
)
@click.option("--app-size", type=SIZE, default="256K", show_default=True, help="New module size.")
@click.option("--old-size", type=SIZE, default="100K", show_default=True, help="Old app size.")
@click.option(
    "--granularity",
    type=click.Choice(list(GRANULARITIES)),
    default="word",
    show_default=True,
    help="word: a cut point before every 32-bit word; chunk: before every program call.",
)
@click.option("--torn", is_flag=True, help="Also try a torn (partial) version of every cut.")
@click.option(
    "--stride", type=int, default=1, show_default=True, help="Test every Nth cut point only."
)
@click.option("--first-op", type=int, default=0, show_default=True, help="First cut point.")
@click.option("--last-op", type=int, default=None, help="One past the last cut point.")
@click.option(
    "--recovery-cuts",
    type=int,
    default=0,
    show_default=True,
    help="Per cut point, also cut the recovery boot at this many spread-out operations.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Content and torn seed.")
@click.option(
    "--method",
    type=click.Choice([str(m) for m in METHODS]),
    default="equiv",
    show_default=True,
    help="replay: restore the checkpoint at the cut's flash call, cut, boot every point; "
    "equiv: replay, but a point whose state differs from a booted one only in bytes that boot "
    "never depended on is counted without booting (proven equivalent); rerun: re-run the "
    "whole scenario per point (as emu ota --cut-at-op does).",
)
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--save-failing",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the device image, old/new modules and a reproduce.sh into this folder.",
)
@format_option
def sweep(
    platform: str,
    profile: str,
    bootloader: str,
    scenario: str,
    app_size: int,
    old_size: int,
    granularity: str,
    torn: bool,
    stride: int,
    first_op: int,
    last_op: int | None,
    recovery_cuts: int,
    seed: int,
    method: str,
    workers: int,
    save_failing: Path | None,
    fmt: str,
) -> None:
    """Cut power before every flash operation of an update and check the device survives.

    The scenario runs once to count its flash operations; then, for every cut point, the
    device is restored, power is cut there (with --torn also mid-operation), and it boots
    again. Each point is classified new_app, old_app, safe_mode, dfu, brick or
    invariant_violation (old or new image, never a mix; the update completes or the old app
    stays; the DCT stays valid; no sector erased more than planned). Exits 1 on any brick or
    invariant violation.

    \b
    Example:
      flashroom emu sweep --profile extended --scenario user-ota --app-size 256K --workers 2
      flashroom emu sweep --bootloader legacy --granularity chunk   # shows the spec 4.5 hazard
    """
    from flashroom.scenarios.sweep import SweepConfig, run_sweep
    from flashroom.scenarios.sweep import save_failing as save

    cfg = SweepConfig(
        platform=platform,
        profile=profile,
        bootloader=bootloader,
        scenario=scenario,
        app_size=app_size,
        old_size=old_size,
        granularity=granularity,
        torn=torn,
        stride=stride,
        first_op=first_op,
        last_op=last_op,
        recovery_cuts=recovery_cuts,
        seed=seed,
        method=method,
        workers=workers,
    )
    cfg.validate()
    if save_failing is not None:
        from flashroom.atomicfile import check_writable_dir

        check_writable_dir(save_failing)  # fail now, not after the sweep
    with progress_bar(f"sweep {scenario}") as progress:
        result = run_sweep(cfg, progress=progress)
    saved: list[Path] = []
    if save_failing is not None:
        saved = save(result, save_failing)
    if fmt == "json":
        data = result.to_json()
        if save_failing is not None:
            data["reproduce"] = result.reproduce(image_dir=str(save_failing))
            data["saved"] = [str(p) for p in saved]
        emit_json(data)
    else:
        render_sweep(result, save_failing)
    if not result.ok:
        raise CheckFailed()


def render_sweep(result: Any, saved_dir: Path | None = None, console: Any = None) -> None:
    """Print a sweep result as rich tables (used by ``emu sweep`` and ``demo``)."""
    from rich.table import Table

    con = console or stdout_console()
    j = result.to_json()
    c = j["config"]
    if j["exhaustive"]:
        kind = "exhaustive"
    else:
        parts = [f"every {c['stride']} ops"] if c["stride"] > 1 else []
        last = j["total_ops"] if c["last_op"] is None else min(c["last_op"], j["total_ops"])
        if c["first_op"] or last < j["total_ops"]:
            parts.append(f"ops {c['first_op']}..{last - 1}")
        kind = ", ".join(parts) + " (not exhaustive)"
    con.print(
        f"[bold]Power-loss sweep[/]: {c['platform']} {c['profile']} / {c['bootloader']} "
        f"bootloader, scenario {c['scenario']}, {c['granularity']} granularity"
        f"{', torn cuts too' if c['torn'] else ''}"
    )
    con.print(
        f"{j['total_ops']} flash operations; {j['points']} cut points ({kind}); "
        f"clean run: {j['clean_run']['class']} ({j['clean_run']['outcome'].get('result')})"
    )
    clean = j["clean_run"]["outcome"]
    if clean.get("result") != "applied":
        err = clean.get("error") or {}
        con.print(
            f"[yellow]note[/]: the uncut run did not apply the update ({clean.get('result')}"
            f"{', error ' + str(err.get('code')) if err else ''}), so every cut point can only "
            "keep the old module; choose a module the profile accepts (e.g. --app-size)."
        )
    con.print(
        f"method {c['method']}: {j['booted']} recovery boots run, {j['proven_equivalent']} "
        "points proven equivalent to a booted one"
    )
    table = Table(title="Outcomes")
    table.add_column("class")
    table.add_column("cut points", justify="right")
    for name, count in j["counts"].items():
        style = _STYLE[name] if count else "dim"
        table.add_row(f"[{style}]{name}[/]", f"[{style}]{count}[/]")
    con.print(table)
    by = Table(title="By flash call the cut fell into")
    by.add_column("call")
    names = [k for k in j["counts"] if any(v.get(k) for v in j["by_label"].values())]
    for name in names:
        by.add_column(name, justify="right")
    for label, counts in j["by_label"].items():
        by.add_row(label, *(str(counts.get(n, 0)) for n in names))
    con.print(by)
    ff = j["first_failure"]
    if ff is None:
        con.print("[green]No brick and no invariant violation.[/]")
    else:
        con.print(
            f"[bold red]First failure[/]: cut at op {ff['cut_at_op']}"
            f"{' (torn)' if ff['torn'] else ''} in '{ff['label']}' -> {ff['outcome']} "
            f"(boot: {ff['boot']})"
        )
        for v in ff["violations"]:
            con.print(f"  - {v}")
        where = str(saved_dir) if saved_dir else "DIR"
        if saved_dir is None:
            con.print("Reproduce (after --save-failing DIR):")
        else:
            con.print("Reproduce:")
        for cmd in result.reproduce(image_dir=where):
            con.print(f"  {cmd}", markup=False)
    con.print(
        f"[dim]{j['wall_s']} s wall, {j['points_per_s']} cut points/s, "
        f"{j['device_s_per_wall_s']} modelled device-seconds per wall-second[/]"
    )


@click.command(name="badinput")
@platform_option
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default="extended",
    show_default=True,
    help="Device OS profile.",
)
@click.option("--case", "cases", multiple=True, help="Run only this case (repeatable).")
@format_option
def badinput(platform: str, profile: str, cases: tuple[str, ...], fmt: str) -> None:
    """Throw a catalogue of malformed modules and OTA sessions at a fresh device.

    Each case must end with a specific error (code and message) and leave the running app
    unchanged byte for byte. Exits 1 if any case is accepted or changes the running app.

    \b
    Example:
      flashroom emu badinput --platform electron --profile extended
      flashroom emu badinput --case bad_crc --format json
    """
    from flashroom.scenarios.badinput import run_campaign

    with progress_bar("bad inputs") as progress:
        result = run_campaign(
            platform=platform, profile=profile, only=list(cases) or None, progress=progress
        )
    if fmt == "json":
        emit_json(result.to_json())
    else:
        render_badinput(result)
    if not result.ok:
        raise CheckFailed()


def render_badinput(result: Any, console: Any = None) -> None:
    """Print a bad-input campaign as a rich table."""
    from rich.table import Table

    con = console or stdout_console()
    j = result.to_json()
    # On a narrow terminal (80 columns) the error message gets its own indented line under a
    # one-line case header instead of a column a few characters wide.
    wide = con.width >= 120
    table = Table(title=f"Bad-input campaign: {j['platform']} {j['profile']}")
    table.add_column("case", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("code", justify="right", no_wrap=True)
    if wide:
        table.add_column("error", overflow="fold")
    table.add_column("app", justify="center", no_wrap=True)
    for case in j["cases"]:
        verdict = case["verdict"]
        style = {"refused": "green", "skipped": "dim"}.get(verdict, "bold red")
        message = case["message"]
        if case["device"] is not None:
            d = case["device"]
            alone = "accepts it" if d["accepted"] else f"refuses it ({d['code']})"
            message += (
                f" [dim](the device alone {alone}: boot {d['boot']}, app "
                f"{'unchanged' if d['app_unchanged'] else 'replaced'})[/]"
            )
        code = "" if case["code"] is None else str(case["code"])
        app = "same" if case["app_unchanged"] else "[bold red]CHANGED[/]"
        if wide:
            table.add_row(case["name"], case["layer"], f"[{style}]{verdict}[/]", code, message, app)
        else:
            table.add_row(case["name"], case["layer"], f"[{style}]{verdict}[/]", code, app)
            table.add_row(f"  [dim]{message}[/]", "", "", "", "")
    if not wide:
        table.columns[0].no_wrap = False
        table.columns[0].overflow = "fold"
    con.print(table)
    s = j["summary"]
    con.print(
        f"{s['refused']} refused, {s['accepted']} accepted, {s['app_changed']} changed the app, "
        f"{s['skipped']} skipped"
    )
    for note in j.get("notes", []):
        con.print(f"[dim]note: {note}[/]")
