"""``flashroom layout``: show, check, plan and export flash layouts.

A thin shell over :mod:`flashroom.layout` (maps, validation, planner, exporters) and
:mod:`flashroom.report.flashmap` (pictures): each command parses its options, calls one API
function and renders the result as rich tables or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flashroom.cli.common import (
    SIZE,
    CheckFailed,
    FlashroomGroup,
    emit_json,
    format_option,
    progress_bar,
)
from flashroom.cli.common import stdout_console as _console
from flashroom.cli.options import platform_option
from flashroom.errors import UsageError
from flashroom.layout import (
    LAYOUT_NAMES,
    CheckResult,
    Layout,
    Plan,
    Region,
    check_candidate,
    check_layout,
    get_layout,
    plan,
)
from flashroom.layout.export import write_exports
from flashroom.ranges import fmt_addr, fmt_size
from flashroom.report.flashmap import write_flash_maps

_FUNCTION_NAMES = {0: "NONE", 2: "BOOTLOADER", 4: "SYSTEM_PART", 5: "USER_PART", 8: "RADIO_STACK"}

_platform_option = platform_option(gen2_only=False, required=True)


def _module_text(r: Region) -> str:
    if r.module_function is None:
        return ""
    name = _FUNCTION_NAMES.get(r.module_function, str(r.module_function))
    if r.store == "scratchpad":
        return "OTA scratchpad"
    store = "" if r.store == "main" else f" ({r.store})"
    return f"{name} #{r.module_index}{store}"


def _sectors_text(layout: Layout, r: Region) -> str:
    idx = layout.sector_indices(r)
    if not idx:
        return "-"
    return str(idx[0]) if len(idx) == 1 else f"{idx[0]}-{idx[-1]}"


#: Below this console width the Note column moves under the table (80-column terminals).
_WIDE = 110


def _print_region_table(console: Any, layout: Layout, title: str) -> None:
    """The region table; on a narrow console the notes follow it as lines instead of a column."""
    from rich.text import Text  # rich: deferred for start-up time

    wide = console.width >= _WIDE
    console.print(_region_table(layout, title, notes=wide))
    if not wide:
        for r in layout.regions:
            if r.note:
                console.print(Text(f"  {r.name}: {r.note}"))


def _region_table(layout: Layout, title: str, notes: bool = True) -> Any:
    from rich.table import Table  # rich: deferred for start-up time

    t = Table(title=title, title_justify="left")
    # Names, addresses and sizes never wrap or get cut (0x%08x must stay whole at 80 columns);
    # the module and note columns wrap instead.
    cols = [
        ("Region", "left", True),
        ("Start", "right", True),
        ("End (excl.)", "right", True),
        ("Size", "right", True),
        ("Sectors", "right", True),
        ("Module", "left", False),
    ]
    if notes:
        cols.append(("Note", "left", False))
    for col, just, keep in cols:
        t.add_column(
            col,
            justify=just,  # type: ignore[arg-type]
            no_wrap=keep,
            overflow="ellipsis" if keep else "fold",
        )
    for r in layout.regions:
        t.add_row(
            r.name,
            fmt_addr(r.start),
            fmt_addr(r.end),
            fmt_size(r.size),
            _sectors_text(layout, r),
            _module_text(r),
            *([r.note] if notes else []),
        )
    return t


def _print_notes(console: Any, notes: Any, label: str = "note") -> None:
    from rich.text import Text  # rich: deferred for start-up time

    for n in notes:
        console.print(Text(f"{label}: {n}"))


# ---------------------------------------------------------------------------------------------
@click.group(cls=FlashroomGroup)
def layout() -> None:
    """Plan, check, show and export flash layouts (Photon, P1, Electron; Argon/Boron to compare).

    \b
    Example:
      flashroom layout plan --platform electron --app-size 200K
      flashroom layout export --platform electron --layout extended --out build/
    """


@layout.command("show")
@_platform_option
@click.option(
    "--layout",
    "name",
    type=click.Choice(LAYOUT_NAMES),
    default="stock",
    show_default=True,
    help="Named layout: stock, extended (Electron), v3.1 (Argon/Boron).",
)
@format_option
def show(platform: str, name: str, fmt: str) -> None:
    """Show a platform's flash map: every region, its sectors and the module it holds.

    Addresses print as 0x%08x, ranges are half-open. The JSON (--format json) is a stable
    contract: platform, platform_id, layout, regions[name, start, end, size, sectors].

    \b
    Example:
      flashroom layout show --platform electron --layout extended --format json
    """
    lay = get_layout(platform, name)
    if fmt == "json":
        emit_json(lay.to_json())
        return
    console = _console()
    _print_region_table(
        console,
        lay,
        f"{lay.platform} (platform {lay.platform_id}) layout {lay.name!r} on {lay.chip.name}",
    )
    from rich.text import Text  # rich: deferred for start-up time

    console.print(Text(lay.description))
    console.print(
        Text(
            f"max app size {fmt_size(lay.max_app_size)} ({lay.max_app_size} bytes, module file "
            f"incl. CRC); dynalib table {fmt_addr(lay.dynalib_address)}; OTA scratch "
            f"{fmt_size(lay.ota_capacity) if lay.ota_capacity else 'external flash'}"
        )
    )
    _print_notes(console, lay.notes)


@dataclass(frozen=True)
class CheckOptions:
    """Parsed ``layout check`` options."""

    platform: str
    name: str | None
    user_size: int | None
    ota_size: int | None


def run_check(opts: CheckOptions) -> CheckResult:
    """Build the layout the options describe and validate it."""
    if opts.name is not None and (opts.user_size is not None or opts.ota_size is not None):
        raise UsageError("give either --layout or --user-size/--ota-size, not both")
    if opts.user_size is None and opts.ota_size is None:
        return check_layout(get_layout(opts.platform, opts.name or "stock"))
    user = opts.user_size
    if user is None:
        user = get_layout(opts.platform, "stock").user_part.size
    return check_candidate(opts.platform, user, opts.ota_size)


@layout.command("check")
@_platform_option
@click.option(
    "--layout",
    "name",
    type=click.Choice(LAYOUT_NAMES),
    default=None,
    help="Check a named layout (default: stock when no sizes are given).",
)
@click.option(
    "--user-size",
    type=SIZE,
    default=None,
    help="Candidate user-part size (e.g. 192K), from its fixed stock start address.",
)
@click.option(
    "--ota-size",
    type=SIZE,
    default=None,
    help="Candidate OTA-scratch size (default: the largest module that travels through it).",
)
@format_option
def check(
    platform: str, name: str | None, user_size: int | None, ota_size: int | None, fmt: str
) -> None:
    """Check a layout against every rule; exit 1 and explain each broken rule.

    With --user-size/--ota-size a candidate is built: the user part keeps its stock start and
    gets the requested size; the OTA scratch stays at its stock address unless the user part
    grows past its stock end, then it starts right after the user part; the factory image is
    dropped when it no longer fits; everything else is stock. Rules: whole-sector ownership, no
    overlaps, inside the chip, OTA scratch >= the largest module through it, bootloader/DCT/EEPROM
    untouched, user start and dynalib address unchanged.

    \b
    Example:
      flashroom layout check --platform electron --user-size 192K --ota-size 192K
      flashroom layout check --platform electron --layout extended
    """
    result = run_check(CheckOptions(platform, name, user_size, ota_size))
    if fmt == "json":
        emit_json(result.to_json())
    else:
        _print_check(result)
    if not result.valid:
        raise CheckFailed()


def _print_check(result: CheckResult) -> None:
    from rich.table import Table  # rich: deferred for start-up time
    from rich.text import Text  # rich: deferred for start-up time

    console = _console()
    lay = result.layout
    _print_region_table(console, lay, f"{lay.platform} layout {lay.name!r}")
    _print_notes(console, result.notes)
    if result.valid:
        console.print(Text(f"OK: {lay.platform} layout {lay.name!r} satisfies every rule."))
        return
    t = Table(title=f"{len(result.violations)} violation(s)", title_justify="left")
    t.add_column("Rule")
    t.add_column("Region")
    t.add_column("Address", justify="right")
    t.add_column("Expected")
    for v in result.violations:
        t.add_row(v.rule, v.region, fmt_addr(v.address), v.expected)
    console.print(t)
    for v in result.violations:
        console.print(Text(f"x {v.rule} ({v.region} at {fmt_addr(v.address)}): {v.message}"))
    console.print(Text(f"INVALID: {lay.platform} layout {lay.name!r} breaks the rules above."))


@layout.command("plan")
@_platform_option
@click.option(
    "--app-size",
    type=SIZE,
    required=True,
    help="Application size: the user-part module file size (.bin incl. its CRC-32), e.g. 200K.",
)
@format_option
def plan_cmd(platform: str, app_size: int, fmt: str) -> None:
    """Choose the smallest valid layout whose user part holds your app; exit 1 if none does.

    Stock is chosen whenever it fits; otherwise the next larger layout (Electron: extended). The
    report gives the maximum app size (module file incl. CRC), what is given up (e.g. factory
    reset) and the system-OTA capacity.

    \b
    Example:
      flashroom layout plan --platform electron --app-size 200K
    """
    result = plan(platform, app_size)
    if fmt == "json":
        emit_json(result.to_json())
    else:
        _print_plan(result)
    if not result.fits:
        raise CheckFailed()


def _print_plan(p: Plan) -> None:
    from rich.table import Table  # rich: deferred for start-up time
    from rich.text import Text  # rich: deferred for start-up time

    console = _console()
    t = Table(title=f"{p.platform}: layouts for a {fmt_size(p.app_size)} app", title_justify="left")
    t.add_column("Layout")
    t.add_column("Max app", justify="right")
    t.add_column("Valid")
    t.add_column("Fits")
    t.add_column("Why")
    for c in p.considered:
        t.add_row(
            c.layout,
            fmt_size(c.max_app_size),
            "yes" if c.valid else "no",
            "yes" if c.fits else "no",
            c.why,
        )
    console.print(t)
    if p.layout is None:
        console.print(Text(f"NO FIT: {p.reason}"))
        return
    lay = p.layout
    console.print(Text(f"chosen layout: {lay.name}"))
    console.print(
        Text(
            f"max app size: {fmt_size(p.max_app_size)} ({p.max_app_size} bytes, module file incl."
            f" CRC); user part {lay.user_part.range}, dynalib {fmt_addr(lay.dynalib_address)}"
        )
    )
    console.print(
        Text(
            "system OTA capacity: "
            + (f"{fmt_size(p.system_ota_capacity)}" if p.system_ota_capacity else "external flash")
        )
    )
    console.print(Text("gives up: " + ("; ".join(p.gives_up) if p.gives_up else "nothing")))
    if lay.name != "stock":
        console.print(
            Text(
                f"next: flashroom layout export --platform {p.platform} --layout {lay.name} "
                "--out build/"
            )
        )


@layout.command("export")
@_platform_option
@click.option(
    "--layout",
    "name",
    type=click.Choice(LAYOUT_NAMES),
    default="stock",
    show_default=True,
    help="Named layout to export.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output directory (created when missing).",
)
@format_option
def export(platform: str, name: str, out: Path, fmt: str) -> None:
    """Write what the build needs: user-part.ld, flash_layout.h, layout.json, flash-map.svg/.png.

    user-part.ld is a GNU ld fragment (APP_FLASH, USER_FIRMWARE_IMAGE_LOCATION/SIZE,
    user_module_table) to use instead of the stock APP_FLASH line; flash_layout.h has every
    region's start, end and size; the pictures show stock beside the chosen layout. Each file is
    written to a temporary name and renamed, so nothing is left half-written.

    \b
    Example:
      flashroom layout export --platform electron --layout extended --out build/
    """

    lay = get_layout(platform, name)
    stock = get_layout(platform, "stock")
    pair = [lay] if lay is stock else [stock, lay]
    with progress_bar("exporting", 5) as progress:
        written = write_exports(lay, out)
        progress(3, 5)
        written += write_flash_maps(pair, out)
        progress(5, 5)
    if fmt == "json":
        emit_json(
            {
                "platform": lay.platform,
                "layout": lay.name,
                "out": str(out),
                "files": [str(p) for p in written],
            }
        )
        return
    from rich.text import Text  # rich: deferred for start-up time

    console = _console()
    for p in written:
        console.print(Text(f"wrote {p} ({p.stat().st_size} bytes)"))
