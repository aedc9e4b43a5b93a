"""Shared CLI pieces: parameter types, ``--format``, JSON output, warnings, progress bars, exit
codes.

Exit codes (style.md): 0 ok, 1 a check ran and found a problem, 2 bad usage or bad input,
70 internal bug. Commands raise :class:`CheckFailed` to exit 1 after printing their report.

Warnings (:func:`warn`): something worked but will not do what the user probably wants (a
compressed module for a platform that cannot decompress it). Each is printed at once on stderr
as one ``warning: ...`` line, and the JSON document of the command carries them all in its
``warnings`` list; the exit code is unchanged.

JSON (``--format json``, :func:`emit_json`): one document on stdout. Numbers are JSON numbers:
addresses, sizes, CRCs and counts are integers, with a ``*_hex`` twin (``"0x08080000"``) for
the addresses and CRCs people read; hashes and raw bytes are hex strings. A command about
several files prints a list with one object per file (even for one file); every other command
prints one object. Every object a command prints has a ``warnings`` list. An error prints
``{"error": {...}, "warnings": [...]}`` when no document was printed yet. The schemas are in
``docs/json/``.
"""

from __future__ import annotations

import difflib
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
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

F = TypeVar("F", bound=Callable[..., Any])


class CheckFailed(Exception):
    """Raised by a command after printing its report, to exit with status 1."""


class _Output:
    """What one run of the CLI has printed so far (reset by ``main`` for every run)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.json_emitted = False


_OUTPUT = _Output()


def reset_output() -> None:
    """Forget the warnings and output of a previous run (``main`` calls it first)."""
    global _OUTPUT
    _OUTPUT = _Output()


def warn(message: str) -> None:
    """Report a warning: one ``warning: ...`` line on stderr now, and the ``warnings`` list of
    the command's JSON document."""
    _OUTPUT.warnings.append(message)
    click.echo(f"warning: {message}", err=True)


def warnings_so_far() -> list[str]:
    """The warnings of this run, in order."""
    return list(_OUTPUT.warnings)


def json_emitted() -> bool:
    """Whether this run printed a JSON document already."""
    return _OUTPUT.json_emitted


def hex_addr(value: int | None) -> str | None:
    """An address or a CRC as people read it: ``0x08080000`` (None stays None)."""
    return None if value is None else f"0x{value:08x}"


def _suggest(group: click.Group, ctx: click.Context, name: str) -> str:
    close = difflib.get_close_matches(name, group.list_commands(ctx), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class SuggestingGroup(click.Group):
    """A group that answers an unknown command with the closest one (``layot`` -> ``layout``)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            ctx.fail(f"No such command {name!r}.{_suggest(self, ctx, name)}")
        return super().resolve_command(ctx, args)


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


class FlashroomGroup(SuggestingGroup):
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


#: The longest file name component (NAME_MAX) and path (PATH_MAX) Linux file systems take.
NAME_MAX = 255
PATH_MAX = 4096


def check_path_length(value: str) -> str | None:
    """Why ``value`` cannot be a path on this system (too long, NUL byte), or None."""
    if "\x00" in value:
        return "contains a NUL byte"
    raw = os.fsencode(value)
    if len(raw) >= PATH_MAX:
        return f"is {len(raw)} bytes long; paths are at most {PATH_MAX - 1} bytes"
    for part in raw.split(b"/"):
        if len(part) > NAME_MAX:
            shown = os.fsdecode(part[:24]) + "..."
            return (
                f"has a name of {len(part)} bytes ({shown}); file names are at most "
                f"{NAME_MAX} bytes"
            )
    return None


class PathType(click.Path):
    """A file or folder path: :class:`click.Path` that also refuses names too long for the
    file system (precisely, instead of an OS error later)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            why = check_path_length(value)
            if why is not None:
                shown = value if len(value) <= 48 else value[:45] + "..."
                self.fail(f"{shown!r} {why}", param, ctx)
        return super().convert(value, param, ctx)


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
    """Print ``obj`` as indented JSON on stdout (the run's one document).

    An object gets the run's ``warnings`` list (added to any it has); a list (one object per
    file) is printed as it is, its objects carrying their own.
    """
    if isinstance(obj, dict):
        own = [w for w in obj.get("warnings", []) if w not in _OUTPUT.warnings]
        obj = {**obj, "warnings": own + list(_OUTPUT.warnings)}
    _OUTPUT.json_emitted = True
    click.echo(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False))


def emit_json_error(message: str, exit_code: int, kind: str) -> None:
    """The JSON document of a run that failed before printing one."""
    emit_json({"error": {"kind": kind, "message": message, "exit_code": exit_code}})


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
