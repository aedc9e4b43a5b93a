"""``flashroom demo``: the whole story in one run (``make demo`` runs ``flashroom demo --out out``).

A thin shell over :func:`flashroom.report.demo.run_demo`: each step is rendered with rich as soon
as it completes, and the report lands in ``--out`` (Markdown, JSON, PNG flash map, exports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flashroom.atomicfile import check_output_dir
from flashroom.cli.common import (
    CheckFailed,
    emit_json,
    format_option,
    progress_bar,
    stdout_console,
)
from flashroom.cli.options import out_dir_option
from flashroom.errors import Interrupted


def _render_step(con: Any, index: int, step: Any) -> None:
    from rich.panel import Panel  # rich: deferred for start-up time
    from rich.table import Table  # rich: deferred for start-up time

    mark = "[green]✓[/]" if step.ok else "[bold red]✗ not as expected[/]"
    con.print()
    con.print(Panel.fit(f"[bold]{index}. {step.title}[/]  {mark}", border_style="cyan"))
    for line in step.lines:
        con.print(f"  {line}", markup=False)
    for t in step.tables:
        table = Table(title=t.title, title_justify="left")
        for h in t.headers:
            table.add_column(h)
        for row in t.rows:
            table.add_row(*row)
        con.print(table)


@click.command(name="demo")
@out_dir_option(
    help="Where report.md, report.json, flash-map.png and export/ are written.",
    default=Path("out"),
)
@click.option("--quick", is_flag=True, help="A smaller, strided sweep (seconds instead of ~1 min).")
@format_option
def demo(out: Path, quick: bool, fmt: str) -> None:
    """Tell the whole story in one run, on the embedded default Electron.

    1) the stock and extended maps; 2) a 200 KB app refused on stock (-1300, and why); 3) the
    same app over the emulated 3G link to an extended device, and running; 4) a power-loss sweep
    with zero bricks; 5) why 192K app + 192K OTA cannot work; then a report in --out.

    \b
    Example:
      flashroom demo --out out
      flashroom demo --quick --format json
    """
    from flashroom.report.demo import report_json, run_demo  # numpy: deferred for start-up time

    out_dir = out
    check_output_dir(out_dir)  # a bad --out fails now, not after a minute of work
    con = stdout_console()
    counter = [0]

    def on_step(step: Any) -> None:
        counter[0] += 1
        if fmt == "text":
            _render_step(con, counter[0], step)

    if fmt == "text":
        con.print("[bold]flashroom demo[/]: a 256 KB Electron app, with OTA kept")
    try:
        with progress_bar("demo") as progress:
            report = run_demo(out_dir, quick=quick, on_step=on_step, progress=progress)
    except (Interrupted, KeyboardInterrupt) as e:  # Ctrl-C: one line naming the unfinished step
        what = f": {e}" if isinstance(e, Interrupted) else ""
        raise Interrupted(
            f"demo stopped in step {counter[0] + 1} ({counter[0]} steps done){what}"
        ) from None
    if fmt == "json":
        emit_json(report_json(report, str(out_dir)))
    else:
        con.print()
        con.print(f"[bold]Report[/] written to {out_dir}/ in {report.wall_s:.1f} s:")
        for f in report.files:
            con.print(f"  {out_dir / f}", markup=False)
    if not report.ok:
        raise CheckFailed()
