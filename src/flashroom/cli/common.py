"""Shared CLI pieces: parameter types, ``--format``, JSON output, progress bars, exit codes.

Exit codes (style.md): 0 ok, 1 a check ran and found a problem, 2 bad usage or bad input,
70 internal bug. Commands raise :class:`CheckFailed` to exit 1 after printing their report.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from flashroom.errors import FlashroomError, ParamError, UsageError
from flashroom.progress import ProgressFn
from flashroom.ranges import parse_addr, parse_size

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70

F = TypeVar("F", bound=Callable[..., Any])


class CheckFailed(Exception):
    """Raised by a command after printing its report, to exit with status 1."""


def cli_message(error: ParamError, command: click.Command) -> str:
    """``error``'s message with each API field it names shown as ``command``'s option."""
    flags = {
        p.name: max(p.opts, key=len)
        for p in command.params
        if isinstance(p, click.Option) and p.name
    }
    msg = str(error)
    for name in error.params:
        flag = flags.get(name, "--" + name.replace("_", "-"))
        msg = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, msg)
    return msg


class FlashroomCommand(click.Command):
    """A command whose library errors about request fields name its own options."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ParamError as e:
            raise UsageError(cli_message(e, self)) from None


class FlashroomGroup(click.Group):
    """A noun: its verbs are :class:`FlashroomCommand` s."""

    command_class = FlashroomCommand


class SizeType(click.ParamType[int]):
    """A size such as ``128K``, ``0x20000`` or ``131072``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except FlashroomError as e:
            self.fail(str(e), param, ctx)


class AddressType(click.ParamType[int]):
    """An address such as ``0x08080000``."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_addr(str(value))
        except FlashroomError as e:
            self.fail(str(e), param, ctx)


SIZE = SizeType()
ADDRESS = AddressType()


def format_option(f: F) -> F:
    """``--format text|json`` (every reporting command takes it)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format. JSON keys are stable and snake_case.",
    )(f)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def stdout_console() -> Any:
    """A rich Console for stdout.

    On a terminal it takes the terminal's width; in a pipe it takes ``$COLUMNS`` when set, else
    120, so output is reproducible and scripts can ask for a width.
    """
    from rich.console import Console  # rich: deferred for start-up time

    width: int | None = None
    if not sys.stdout.isatty():
        try:
            width = max(40, int(os.environ.get("COLUMNS", "120")))
        except ValueError:
            width = 120
    return Console(width=width, highlight=False, soft_wrap=False)


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[ProgressFn]:
    """A rich progress bar on stderr, yielding a ``progress(done, total)`` callback.

    The bar is shown only when stderr is a terminal; otherwise the callback does nothing, so
    scripts and tests get clean output.
    """
    if not sys.stderr.isatty():
        yield lambda done, tot: None
        return
    from rich.console import Console  # rich: deferred for start-up time
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )  # rich: deferred for start-up time

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as prog:
        task = prog.add_task(description, total=total)

        def update(done: int, tot: int) -> None:
            prog.update(task, completed=done, total=tot)

        yield update
