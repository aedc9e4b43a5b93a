"""``flashroom devos``: patch, build and package Device OS 2.3.1 for the extended Electron layout.

A thin shell over :mod:`flashroom.devos`: parse options into a request, call one API function,
render text or JSON. Exit codes: 0 ok; 1 ``patch --check`` found changes missing; 2 bad input
(not a 2.3.1 tree, read-only tree, local changes where a hunk goes, missing toolchain, an app
that does not compile or link, an output folder in the way); 70 internal error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flashroom.cli.common import CheckFailed, emit_json, format_option, progress_bar, stdout_console
from flashroom.cli.options import bootloader_firmware_option, system_firmware_option
from flashroom.devos.changes import CHANGE_NAMES, CHANGES, PARTS
from flashroom.errors import BuildError, UsageError
from flashroom.ranges import fmt_addr

_CHANGE_LIST = "\n".join(
    f"{part} part:\n" + "\n".join(f"  {c.name:<16} {c.summary}" for c in CHANGES if c.part == part)
    for part in PARTS
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def devos() -> None:
    """Patch, build and package Device OS 2.3.1 for a 256 KB Electron user part.

    The extended layout (docs/device-os.md#extended): user part 0x08080000-0x080C0000
    (sectors 8-9), OTA scratch 0x080C0000-0x08100000 (sectors 10-11), factory reset retired.
    Work on a writable copy of the Device OS tree (the shared one is read-only).

    \b
    Typical session:
      cp -r ../shared/device-os/v2.3.1 /tmp/dos && chmod -R u+w /tmp/dos
      flashroom devos patch /tmp/dos
      flashroom devos build /tmp/dos --out out/electron --app myapp/ --jobs 2
      flashroom devos package out/electron
      flashroom module inspect out/electron/user-part-myapp.dfu
    """


# --- patch --------------------------------------------------------------------------------------


@devos.command(
    "patch",
    help=f"""Apply flashroom's changes to a Device OS 2.3.1 tree.

Two parts: 'layout' (the extended layout, docs/device-os.md#extended, and the OTA address
guard, docs/real-electron.md) and 'toolchain' (gcc 12 flags and parallel make,
docs/real-electron.md#2-build: build rules only; with it alone the tree builds the stock
binaries byte for byte). Idempotent: a second run says "already applied" and writes nothing.
Everything is checked before anything is written: a tree of another version, a read-only
tree or local changes where a hunk goes are refused (exit 2), naming the file and the hunk.

\b
Changes (--only/--skip take these names):
{_CHANGE_LIST}

Exit codes: 0 applied (or already applied; with --check: all applied); 1 --check found
changes missing; 2 bad input (not 2.3.1, read-only, local changes, unknown name).

\b
Examples:
  flashroom devos patch /tmp/dos
  flashroom devos patch /tmp/dos --part toolchain
  flashroom devos patch /tmp/dos --check --format json
  flashroom devos patch /tmp/dos --emit-patch flashroom-electron-256k.patch
""",
)
@click.argument("tree", type=click.Path(file_okay=True, dir_okay=True))
@click.option(
    "--part",
    "parts",
    multiple=True,
    type=click.Choice(PARTS),
    help="Only this part (repeatable; default: both).",
)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(CHANGE_NAMES),
    metavar="NAME",
    help="Only this change (repeatable).",
)
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(CHANGE_NAMES),
    metavar="NAME",
    help="Leave this change out (repeatable).",
)
@click.option("--check", is_flag=True, help="Only report each change's state; write nothing.")
@click.option(
    "--emit-patch",
    "emit_patch",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the changes as a unified diff (git apply / patch -p1) instead; the tree is "
    "left untouched.",
)
@format_option
def patch_cmd(
    tree: str,
    parts: tuple[str, ...],
    only: tuple[str, ...],
    skip: tuple[str, ...],
    check: bool,
    emit_patch: str | None,
    fmt: str,
) -> None:
    from flashroom.devos.patch import ChangeState, PatchMode, PatchRequest, run_patch

    if check and emit_patch:
        raise UsageError("--check and --emit-patch do not go together: pick one")
    mode = PatchMode.CHECK if check else PatchMode.EMIT if emit_patch else PatchMode.APPLY
    report = run_patch(PatchRequest(tree, parts, only, skip, mode, emit_patch))
    if fmt == "json":
        emit_json(report.to_json())
    else:
        console = stdout_console()
        if mode is PatchMode.CHECK:
            from rich.table import Table

            t = Table(
                title=f"{report.tree.root} (Device OS {report.tree.version})", title_justify="left"
            )
            for col in ("Change", "Part", "Spec", "State"):
                t.add_column(col, overflow="fold")
            for s in report.statuses:
                color = "green" if s.state is ChangeState.APPLIED else "red"
                t.add_row(
                    s.change.name, s.change.part, s.change.spec, f"[{color}]{s.state}[/{color}]"
                )
            console.print(t)
            n_ok = sum(1 for s in report.statuses if s.state is ChangeState.APPLIED)
            click.echo(f"{n_ok} of {len(report.statuses)} changes applied")
        elif mode is PatchMode.EMIT:
            files = sorted({p for s in report.statuses for p in s.change.paths})
            click.echo(
                f"wrote {report.patch_file}: {len(report.statuses)} changes in {len(files)} "
                f"files, {report.diff_size} bytes, against pristine Device OS "
                f"{report.tree.version} (apply with 'git apply FILE' or 'patch -p1 < FILE' in "
                f"the tree); {report.tree.root} left untouched"
            )
        else:
            for s in report.statuses:
                done = s.state is ChangeState.APPLIED
                word = "already applied" if done else "applied"
                color = "dim" if done else "green"
                console.print(
                    f"[{color}]{word:<15}[/{color}] {s.change.name:<16} "
                    f"({s.change.spec}) {s.change.summary}",
                    soft_wrap=True,
                    markup=True,
                )
            if report.written:
                click.echo(f"wrote {len(report.written)} files in {report.tree.root}")
            else:
                click.echo(f"already applied: nothing written in {report.tree.root}")
    if mode is PatchMode.CHECK and not report.all_applied:
        missing = [s.change.name for s in report.statuses if s.state is not ChangeState.APPLIED]
        click.echo(f"missing: {', '.join(missing)}", err=True)
        raise CheckFailed()


# --- build --------------------------------------------------------------------------------------


@devos.command("build")
@click.argument("tree", type=click.Path())
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(),
    help="Output folder for the modules and manifest.json (refused if not empty, unless "
    "--force; replaced only once the build is complete).",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    type=click.Path(),
    metavar="APPDIR",
    help="A user app folder (Device OS APPDIR: .cpp/.c/.h files). Repeatable. Default: "
    "Tinker, the app the system build makes.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="make -jN (default: the number of CPUs; 1 unless the parallel-make change is applied).",
)
@click.option("--force", is_flag=True, help="Replace an --out folder that is not empty.")
@click.option("--no-bootloader", "no_bootloader", is_flag=True, help="Do not build the bootloader.")
@format_option
def build_cmd(
    tree: str,
    out: str,
    apps: tuple[str, ...],
    jobs: int | None,
    force: bool,
    no_bootloader: bool,
    fmt: str,
) -> None:
    """Build bootloader, system and user apps with Device OS's own makefiles.

    Runs 'make -C bootloader', 'make -C modules/electron' and, per app, 'make -C
    modules/electron/user-part APPDIR=...' (PLATFORM=electron, -jN). Writes into OUT each
    module as NAME.bin with NAME.elf beside it (symbols kept, debug info dropped) and
    manifest.json: per module its file, module function and index (on Electron system-part1
    holds idx 3, system-part2 idx 1, system-part3 idx 2: docs/device-os.md#electron-naming),
    version, address range, size, sha256 and dependencies. Every module is parsed by
    flashroom's own parser and refused unless it verifies. A clean build takes about 2 minutes
    on 2 cores; user apps alone, seconds.
    TREE/build/target is removed first when the tree changed since flashroom last built it
    (Device OS's makefiles do not rebuild objects when only a makefile define changes).

    Exit codes: 0 built; 2 bad input: not a writable 2.3.1 tree, toolchain missing (the
    message names the Debian packages), OUT not empty, a compile error (the compiler's first
    error lines are shown) or an app too large (the linker's overflow message and a summary).
    A failed build leaves OUT absent or as it was; the full log stays in
    TREE/build/flashroom/logs/.

    \b
    Example:
      flashroom devos build /tmp/dos --out out/electron --app apps/big --jobs 2
    """
    from flashroom.devos.build import BuildRequest, build

    req = BuildRequest(tree, out, apps, jobs, force, not no_bootloader)
    try:
        with progress_bar("building Device OS") as progress:
            result = build(req, progress)
    except BuildError as e:
        for line in e.excerpt:
            click.echo(line, err=True)
        raise
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if fmt == "json":
        emit_json(result.to_json())
        return
    from rich.table import Table

    console = stdout_console()
    t = Table(
        title=f"{result.out}  (Device OS {result.manifest.device_os_version})", title_justify="left"
    )
    for col, just in (
        ("File", "left"),
        ("Module", "left"),
        ("Version", "right"),
        ("Range", "left"),
        ("Size", "right"),
        ("Depends on", "left"),
    ):
        t.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for m in result.manifest.modules:
        deps = "; ".join(d.describe() for d in m.dependencies) or "-"
        t.add_row(
            m.file,
            f"{m.function_name} idx {m.module_index}",
            str(m.module_version),
            f"{fmt_addr(m.start_address)}..{fmt_addr(m.end_address)}",
            str(m.size),
            deps,
        )
    console.print(t)
    times = ", ".join(f"{x.step} {x.seconds:.1f} s" for x in result.timings)
    click.echo(f"make -j{result.jobs}: {times}" + (" (after a clean)" if result.cleaned else ""))
    click.echo(f"wrote {len(result.manifest.modules)} modules and manifest.json to {result.out}")
    click.echo(f"next: flashroom devos package {result.out}")


# --- package ------------------------------------------------------------------------------------


@devos.command("package")
@click.argument("out", type=click.Path())
@format_option
def package_cmd(out: str, fmt: str) -> None:
    """Write a DfuSe .dfu per module of OUT's manifest, and FLASHING.md.

    Each NAME.dfu holds the module at its start address (target 0, "Internal Flash"; suffix
    for Particle's DFU mode 2b04:d00a). FLASHING.md gives the exact dfu-util and particle CLI
    commands in order: system parts, then the user part; the bootloader separately, with the
    warning that its write is not power-loss safe. Every module is re-checked against the
    manifest first.

    Exit codes: 0 written; 2 no manifest, or a module changed since the build.

    \b
    Example:
      flashroom devos package out/electron
    """
    from flashroom.devos.package import package

    result = package(out)
    if fmt == "json":
        emit_json(result.to_json())
        return
    for m in result.modules:
        e = m.entry
        click.echo(
            f"wrote {m.dfu_file}: {fmt_addr(e.start_address)}, {e.size} bytes "
            f"({e.function_name} idx {e.module_index} v{e.module_version})"
        )
    click.echo(f"wrote {result.flashing}: the dfu-util and particle commands, in order")


@devos.command("migrate-plan")
@click.option(
    "--from",
    "from_",
    type=click.Choice(["stock"]),
    default="stock",
    show_default=True,
    help="What the fleet runs now: stock Device OS 2.3.1.",
)
@click.option(
    "--to",
    type=click.Choice(["extended"]),
    default="extended",
    show_default=True,
    help="Where it goes: the extended layout (256K user part, 256K OTA scratch).",
)
@click.option(
    "--modules",
    "out",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    metavar="OUT",
    help="A 'devos build' output: its patched system parts (and its largest app, unless "
    "--app) are what the plan sends. Default: synthetic stand-ins with the build's sizes, "
    "versions and dependencies (measured), clearly labelled.",
)
@click.option(
    "--app",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The user part to send last (a .bin built for the extended layout).",
)
@click.option(
    "--order",
    default=None,
    metavar="KEYS",
    help="Check this order instead of planning one: comma-separated idx1, idx2, idx3, app. "
    "An order that cannot work is refused with the device's reason (exit 1).",
)
@click.option(
    "--fleet-bootloader",
    type=click.IntRange(min=1),
    default=1004,
    show_default=True,
    help="The oldest bootloader module_version in the fleet (2.3.1 writes 1004 over older "
    "ones at first boot, docs/device-os.md#bootloader-updates); steps that would rewrite it are "
    "marked not power-safe.",
)
@click.option(
    "--emulate/--no-emulate",
    default=True,
    show_default=True,
    help="Also send every step to an emulated stock device over the emulated 3G link and "
    "report what it did (result, error, boot, bytes on the air).",
)
@system_firmware_option(
    help="With --emulate: the emulated device's stock system parts are these real ones (e.g. "
    "../shared/fixtures/device-os) and the app step runs the real OTA path (the patched one, "
    "from --modules)."
)
@bootloader_firmware_option(help="With --emulate: the emulated device boots this real bootloader.")
@format_option
def migrate_plan_cmd(
    from_: str,
    to: str,
    out: str | None,
    app: str | None,
    order: str | None,
    fleet_bootloader: int,
    emulate: bool,
    system_firmware: Path | None,
    bootloader_firmware: Path | None,
    fmt: str,
) -> None:
    """Plan the OTA updates that move deployed stock 2.3.1 Electrons to the extended layout.

    Over the air only: each module goes through the OTA path of the system running at that
    moment. The stock system takes at most 128 KB and checks every module's dependencies, and
    the patched build chains them (idx 3, then idx 1, then idx 2, then the 256K app), so the
    order is forced; the plan gives each step's size, what the device does with it, and
    whether it is power-safe. With --order, an order that cannot work is refused with the
    reason the device would give (the big app first: -1300).

    Exit codes: 0 the plan works (and the emulated device agreed at every step); 1 the order
    cannot work, or the emulated device disagreed with the plan; 2 bad input.

    \b
    Example:
      flashroom devos migrate-plan --modules out/electron
      flashroom devos migrate-plan --order app,idx3,idx1,idx2     # refused: -1300
      flashroom emu sweep --profile stock --scenario migrate --granularity chunk --torn
    """
    from flashroom.devos.migrate import (
        load_migration_modules,
        plan_migration,
        synthetic_migration_modules,
    )

    if system_firmware is not None and out is None:
        raise UsageError(
            "--system-firmware runs the real OTA path: give --modules OUT too (the patched "
            "idx 2 whose real code takes the app)"
        )
    if out is not None:
        mods = load_migration_modules(out, app)
        source = out
    else:
        if app is not None:
            raise UsageError("--app needs --modules OUT (the patched system parts to send first)")
        mods = synthetic_migration_modules()
        source = "synthetic stand-ins (no --modules): sizes, versions, dependencies of the build"
    keys = None if order is None else [k.strip() for k in order.split(",") if k.strip()]
    plan = plan_migration(mods, order=keys, fleet_bootloader=fleet_bootloader, source=source)
    runs: list[Any] = []
    if emulate:
        from flashroom.scenarios.migrate import emulate_plan  # the emulator: deferred

        with progress_bar("emulating the migration") as progress:
            progress(0, 1)
            runs = emulate_plan(
                plan,
                bootloader_firmware=bootloader_firmware,
                system_firmware=system_firmware,
                also_system_firmware=() if system_firmware is None else (out,),  # type: ignore[arg-type]
            )
            progress(1, 1)
    agree = all(r.agrees for r in runs)
    doc = plan.to_json()
    doc["emulated"] = None if not emulate else [r.to_json() for r in runs]
    doc["emulation_agrees"] = None if not emulate else agree
    if fmt == "json":
        emit_json(doc)
    else:
        _render_plan(doc)
    if not plan.ok or not agree:
        raise CheckFailed()


def _render_plan(doc: dict[str, Any]) -> None:
    from rich.table import Table

    con = stdout_console()
    con.print(f"[bold]Migration stock 2.3.1 -> extended[/], over the air; modules: {doc['source']}")
    t = Table(show_lines=True)
    for col in ("step", "send", "bytes", "runs on", "what the device does", "power-safe"):
        t.add_column(col, overflow="fold")
    for st in doc["steps"]:
        safe = "yes" if st["power_safe"] else "[red]NO[/]: " + "; ".join(st["hazards"])
        t.add_row(str(st["step"]), st["label"], str(st["size"]), st["runs_on"], st["does"], safe)
    con.print(t)
    ref = doc["refusal"]
    if ref is not None:
        code = "" if ref["expected_error"] is None else f" ({ref['expected_error']})"
        con.print(f"[bold red]Refused[/] at step {ref['step']}, {ref['module']}{code}: "
                  f"{ref['reason']}")  # fmt: skip
    for n in doc["notes"]:
        con.print(f"[dim]note: {n}[/]")
    runs = doc["emulated"]
    if runs:
        e = Table(title="on an emulated stock Electron, over the emulated 3G link")
        for col in ("step", "result", "error", "boot", "system after", "OTA path", "on the air"):
            e.add_column(col)
        for r in runs:
            e.add_row(
                str(r["step"]),
                r["result"] if r["agrees_with_plan"] else f"[red]{r['result']} (plan: other)[/]",
                "" if r["error_code"] is None else str(r["error_code"]),
                r["boot"],
                r["system_after"],
                r["ota_path"],
                "" if r["wire_bytes"] is None else f"{r['wire_bytes']} B, {r['link_time_s']} s",
            )
        con.print(e)


def render_dfu_text(info: Any, console: Any) -> None:
    """``module inspect`` for a ``.dfu``: each element's address and size, and its module."""
    from rich.table import Table

    from flashroom.cli.module import _render_module_text

    t = Table(
        title=f"{info.filename}  (DfuSe, {info.size} bytes)",
        show_header=False,
        title_justify="left",
    )
    t.add_column("field", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")
    t.add_row(
        "usb", f"{info.dfu.vendor:04x}:{info.dfu.product:04x}, bcdDevice 0x{info.dfu.device:04x}"
    )
    for ti, target in enumerate(info.dfu.targets):
        t.add_row(
            f"target {ti}",
            f'alt {target.alternate_setting} "{target.name}", {len(target.elements)} element(s)',
        )
        for ei, el in enumerate(target.elements):
            t.add_row(
                f"  element {ei}", f"{fmt_addr(el.address)}..{fmt_addr(el.end)}, {el.size} bytes"
            )
    for c in info.checks():
        mark = "[green]ok[/green]" if c.ok else "[red]FAIL[/red]"
        t.add_row(f"check {c.name}", f"{mark} {c.detail}")
    console.print(t)
    for m in info.modules:
        if m is not None:
            _render_module_text(m, console)


__all__ = ["devos", "render_dfu_text"]
