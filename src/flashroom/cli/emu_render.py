"""Text rendering for ``flashroom emu``: outcomes, the flash map, sweeps, bad inputs, connect.

Rich tables on stdout; addresses and names stay whole at 80 columns. The commands themselves are
in :mod:`flashroom.cli.emu`; ``demo`` reuses :func:`render_sweep`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flashroom.cli.common import emit_json
from flashroom.cli.common import stdout_console as _console
from flashroom.ranges import fmt_size

_FUNCTIONS = {0: "NONE", 2: "BOOTLOADER", 4: "SYSTEM_PART", 5: "USER_PART"}

_STYLE = {
    "new_app": "green",
    "old_app": "green",
    "safe_mode": "yellow",
    "dfu": "yellow",
    "brick": "bold red",
    "invariant_violation": "bold red",
}


def running_text(running: dict[str, Any] | None) -> str:
    if running is None:
        return "-"
    fn = _FUNCTIONS.get(running["module_function"], str(running["module_function"]))
    return (
        f"{fn} #{running['module_index']} v{running['module_version']}, "
        f"{fmt_size(running['size'])} ({running['size']} bytes), sha256 {running['sha256'][:16]}…"
    )


def render_outcome(
    out: Any,
    fmt: str,
    title: str,
    comparison: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> None:
    doc = out.to_json()
    if comparison is not None:
        doc["comparison"] = comparison
    if steps is not None:
        doc["steps"] = steps
    if fmt == "json":
        emit_json(doc)
        return
    from rich.table import Table  # rich: deferred for start-up time

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    t.add_row("result", doc["result"])
    if doc["error"] is not None:
        code = doc["error"]["code"]
        t.add_row("error", f"{'' if code is None else str(code) + ': '}{doc['error']['message']}")
    t.add_row("boot", doc["boot"])
    t.add_row("running", running_text(doc["running"]))
    t.add_row(
        "device time",
        f"{doc['device_time_s']:.3f} s typical, {out.device_time_max_s:.3f} s max "
        "(docs/device-os.md#timing)",
    )
    erases = ", ".join(f"{k}×{v}" for k, v in doc["sector_erases"].items()) or "none"
    t.add_row("sector erases", erases)
    t.add_row("flash ops", str(doc["flash_ops"]))
    blf = doc.get("bootloader_firmware")
    t.add_row(
        "bootloader",
        "model (Python)"
        if blf is None
        else f"real code in sector 0: module_version {blf['module_version']}, "
        f"sha256 {blf['sha256'][:16]}...",
    )
    sysf = doc.get("system_firmware")
    t.add_row(
        "OTA path",
        "model (Python)" if sysf is None else f"real code of system idx 2 from {sysf['dir']}",
    )
    con = _console()
    if steps is not None:
        for i, st in enumerate(steps, 1):
            err = st["error"]
            con.print(
                f"update {i}: {st['result']}"
                + ("" if err is None else f" ({err['code']}: {err['message']})")
                + f", boot {st['boot']}, {st['flash_ops']} flash ops",
                markup=False,
            )
    con.print(t)
    if out.events:
        con.print("[bold]trace[/bold]")
        for e in out.events:
            con.print(f"  {e}", markup=False)
    if comparison is not None:
        d = comparison["difference"]
        if d is None:
            con.print(
                "[green]model and real code identical[/] (flash, backup registers, boot "
                f"outcome, {comparison['real']['operations']} operations)"
            )
        else:
            con.print(f"[bold red]model and real code differ[/]: {d['what']}")
            con.print(f"  model: {d['model']}", markup=False)
            con.print(f"  real:  {d['real']}", markup=False)


def render_show(doc: dict[str, Any]) -> None:
    """``emu show`` as text: the state, the flash map, the DCT copies and the slots."""
    from rich.table import Table  # rich: deferred for start-up time

    con = _console()
    con.print(
        f"[bold]{doc['platform']}[/bold] ({doc['profile']}), bootloader "
        f"{doc['bootloader']} v{doc['bootloader_version']}, state [bold]{doc['state']}[/bold]"
        + (f" ({doc['reason']})" if doc["reason"] else "")
    )
    con.print(f"running: {running_text(doc['running'])}", markup=False)
    blf = doc.get("bootloader_firmware")
    if blf is not None:
        con.print(
            f"boots run the real bootloader in sector 0 (module_version "
            f"{blf['module_version']}, sha256 {blf['sha256']})",
            markup=False,
        )
    sysf = doc.get("system_firmware")
    if sysf is not None:
        con.print(f"OTA runs the real code of the system modules in {sysf['dir']}", markup=False)
    t = Table(title="flash map", title_justify="left")
    # Addresses and names stay whole; on a narrow console (80 columns) the detail follows the
    # table as lines instead of being squeezed into a column.
    wide = con.width >= 110
    cols = ["Region", "Start", "End (excl.)", "Sectors", "Erases", "Holds"]
    for col in [*cols, "Detail"] if wide else cols:
        t.add_column(col, no_wrap=col != "Detail", overflow="fold")
    for r in doc["regions"]:
        sec = r["sectors"]
        t.add_row(
            r["name"],
            r["start_hex"],
            r["end_hex"],
            "-" if not sec else (str(sec[0]) if len(sec) == 1 else f"{sec[0]}-{sec[-1]}"),
            str(r["erases"]),
            r["content"],
            *([r["detail"]] if wide else []),
        )
    con.print(t)
    if not wide:
        for r in doc["regions"]:
            if r["detail"]:
                con.print(f"  {r['name']}: {r['detail']}", markup=False)
    dct = doc["dct"]
    d = Table(title="DCT copies (docs/device-os.md#dct)", title_justify="left")
    for col in ("Copy", "Address", "Seal", "Counter", "CRC", "Current"):
        d.add_column(col)
    for i, c in enumerate(dct["copies"]):
        d.add_row(
            str(i),
            c["address_hex"],
            c["seal"],
            str(c["counter"]),
            "ok" if c["crc_ok"] else "bad",
            "yes" if dct["current"] == i else "",
        )
    con.print(d)
    if dct["slots"] is not None:
        s = Table(
            title="flash_modules slots (app DCT 0xB24, docs/device-os.md#dct)", title_justify="left"
        )
        for col in ("Slot", "State", "Source", "Destination", "Length", "Flags", "Function"):
            s.add_column(col)
        for i, sl in enumerate(dct["slots"]):
            s.add_row(
                str(i),
                sl["state"],
                sl["source_address_hex"],
                sl["destination_address_hex"],
                str(sl["length"]),
                sl["flags_hex"],
                str(sl["module_function"]),
            )
        con.print(s)


def render_sweep(result: Any, saved_dir: Path | None = None, console: Any = None) -> None:
    """Print a sweep result as rich tables (used by ``emu sweep`` and ``demo``)."""
    from rich.table import Table  # rich: deferred for start-up time

    con = console or _console()
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
    method = c.get("method_used", c["method"])
    note = (
        f" (asked {c['method']}: equivalence proofs need every flash read, and the real "
        "code's reads are not observed)"
        if method != c["method"]
        else ""
    )
    con.print(
        f"method {method}{note}: {j['booted']} recovery boots run, {j['proven_equivalent']} "
        "points proven equivalent to a booted one"
    )
    if c.get("bootloader_firmware"):
        con.print(f"bootloader: the real code of {c['bootloader_firmware']}, run by the "
                  "firmware runner at every boot")  # fmt: skip
    if c.get("system_firmware"):
        con.print(f"OTA path: the real code of the system modules in {c['system_firmware']}")
    if c.get("sample"):
        con.print(f"[yellow]sampled[/]: {c['sample']} seeded cut points of {j['total_ops']}, "
                  "not every point")  # fmt: skip
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
    cmp = j.get("comparison")
    if cmp is not None:
        if cmp["differing"] == 0:
            con.print(
                f"[green]Model and real code identical at all {cmp['points']} cut points[/] "
                "(flash, backup registers, boot outcome, operation sequence)."
            )
        else:
            fd = cmp["first_difference"]
            con.print(
                f"[bold red]Model and real code differ at {cmp['differing']} of "
                f"{cmp['points']} cut points[/]; first at op {fd['cut_at_op']}"
                f"{' (torn)' if fd['torn'] else ''}: {fd['what']}"
            )
            con.print(f"  model: {fd['model']}", markup=False)
            con.print(f"  real:  {fd['real']}", markup=False)
            con.print("Reproduce (after --save-failing DIR):")
            for cmd in cmp["reproduce"]:
                con.print(f"  {cmd}", markup=False)
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


def render_badinput(result: Any, console: Any = None) -> None:
    """Print a bad-input campaign as a rich table."""
    from rich.table import Table  # rich: deferred for start-up time

    con = console or _console()
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
        style = {"refused": "green", "skipped": "dim", "hazard": "yellow"}.get(verdict, "bold red")
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
        f"{s['hazard']} documented hazards (the device takes them; flashroom's server never "
        f"sends them), {s['skipped']} skipped"
    )
    for note in j.get("notes", []):
        con.print(f"[dim]note: {note}[/]")


def render_connect(data: dict[str, Any]) -> None:
    from rich.table import Table  # rich: deferred for start-up time

    console = _console()
    t = Table(title=f"emu connect: {data['result']}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("result", data["result"]),
        ("error", data["error"] or ""),
        ("encoding", str(data.get("encoding", "raw"))),
        ("payload bytes (received)", str(data["payload_bytes"])),
        ("written to the OTA scratch", str(data.get("written_bytes"))),
        ("wire bytes (CoAP+UDP+IPv4+DTLS)", str(data["wire_bytes"])),
        ("messages", str(data["messages"])),
        ("retransmissions", str(data["retransmissions"])),
        ("link", data["link"]["name"]),
        ("link time (simulated)", f"{data['link_time_s']} s"),
        ("goodput / bandwidth", f"{data['goodput_ratio']:.3f}"),
        ("fast OTA", "yes" if data["fast_ota"] else "no"),
        ("boot", str(data["boot"])),
    ]
    running = data.get("running")
    if running:
        rows.append(("running", f"user v{running['module_version']} ({fmt_size(running['size'])})"))
    check = data.get("host_check")
    if check is not None:
        rows.append(("host checks", check["message"]))
    rows.append(("transport", "DTLS 1.2 PSK" if data.get("dtls") else "plain CoAP (insecure)"))
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)


__all__ = [
    "render_badinput",
    "render_connect",
    "render_outcome",
    "render_show",
    "render_sweep",
    "running_text",
]
