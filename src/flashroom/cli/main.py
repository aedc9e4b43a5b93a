"""The ``flashroom`` command: ``flashroom <noun> <verb>``.

Nouns are loaded lazily so that ``flashroom module inspect`` does not import matplotlib or
aiocoap. Each noun lives in its own module (``flashroom.cli.<noun>``) with all its verbs.
"""

from __future__ import annotations

import errno
import importlib
import sys
import traceback
from typing import Any

import click

from flashroom import __version__
from flashroom.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    CheckFailed,
    SuggestingGroup,
    emit_json_error,
    json_emitted,
    reset_output,
)
from flashroom.errors import FlashroomError, Interrupted

# noun -> (module, attribute, one-line help)
_NOUNS: dict[str, tuple[str, str, str]] = {
    "layout": ("flashroom.cli.layout", "layout", "Plan, check, show and export flash layouts."),
    "module": (
        "flashroom.cli.module",
        "module",
        "Inspect, verify, build, compress, combine modules.",
    ),
    "emu": ("flashroom.cli.emu", "emu", "Emulate a device: flash, DCT, bootloader, OTA path."),
    "ota": ("flashroom.cli.ota", "ota", "Serve updates over CoAP as the Particle cloud does."),
    "demo": ("flashroom.cli.demo", "demo", "Tell the whole story in one run."),
    "devos": ("flashroom.cli.devos", "devos", "Patch, build and package Device OS 2.3.1."),
}


class LazyGroup(SuggestingGroup):
    """A group whose sub-commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_NOUNS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _NOUNS.get(cmd_name)
        if spec is None:
            return None
        cmd: click.Command = getattr(importlib.import_module(spec[0]), spec[1])
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flashroom")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """flashroom: more application flash for Particle Gen2 devices, with OTA kept.

    \b
    Typical session:
      flashroom layout plan --platform electron --app-size 200K
      flashroom layout export --platform electron --layout extended --out build/
      flashroom module inspect firmware.bin
      flashroom emu new --platform electron --profile extended --image dev.img
      flashroom emu ota --image dev.img firmware.bin
      flashroom demo
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def all_commands(*, groups: bool = False) -> list[tuple[str, click.Command]]:
    """Every command as ``("noun verb", command)`` (or ``("noun", command)``), in help order,
    with each noun's group before its commands when ``groups``: for tools that walk the CLI
    (the option, help and citation checks)."""
    out: list[tuple[str, click.Command]] = []
    ctx = click.Context(cli)
    group = cli
    assert isinstance(group, click.Group)
    for noun in group.list_commands(ctx):
        cmd = group.get_command(ctx, noun)
        if isinstance(cmd, click.Group):
            out += [(noun, cmd)] if groups else []
            out += [(f"{noun} {v}", cmd.commands[v]) for v in sorted(cmd.commands)]
        elif cmd is not None:
            out.append((noun, cmd))
    return out


def _wants_json(args: list[str]) -> bool:
    """``--format json`` anywhere on the command line (errors then print a JSON document too)."""
    return any(
        a == "--format=json" or (a == "--format" and i + 1 < len(args) and args[i + 1] == "json")
        for i, a in enumerate(args)
    )


def _fail(message: str, code: int, kind: str, as_json: bool) -> None:
    click.echo(message, err=True)
    if as_json and not json_emitted():
        emit_json_error(message.removeprefix("error: "), code, kind)
    sys.exit(code)


#: OS errors that mean the path the user gave cannot exist (bad input, not a bug).
_PATH_ERRNOS = (errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map outcomes to exit codes."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    as_json = _wants_json(args)
    reset_output()
    try:
        cli.main(args=args, prog_name="flashroom", standalone_mode=False)
    except CheckFailed:
        sys.exit(EXIT_CHECK_FAILED)
    except (Interrupted, KeyboardInterrupt) as e:
        # one line: what was left unfinished (nothing half-written: outputs are atomic)
        what = str(e) if isinstance(e, Interrupted) else "interrupted"
        _fail(f"interrupted: {what}; nothing was saved", EXIT_INTERRUPTED, "interrupted", as_json)
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            _fail(
                "interrupted: stopped by Ctrl-C; nothing was saved",
                EXIT_INTERRUPTED,
                "interrupted",
                as_json,
            )
        _fail("aborted", EXIT_BAD_INPUT, "aborted", as_json)
    except click.ClickException as e:
        # One line, like every other error: what is wrong, then where to read more.
        hint = ""
        if isinstance(e, click.UsageError) and e.ctx is not None:
            hint = f" (see '{e.ctx.command_path} --help')"
        _fail(f"error: {e.format_message()}{hint}", EXIT_BAD_INPUT, "usage", as_json)
    except FlashroomError as e:
        _fail(f"error: {e}", EXIT_BAD_INPUT, "input", as_json)
    except OSError as e:
        if e.errno not in _PATH_ERRNOS:
            _internal(e, debug, as_json)
        where = f": {e.filename}" if e.filename else ""
        _fail(f"error: {e.strerror or e}{where}", EXIT_BAD_INPUT, "input", as_json)
    except Exception as e:  # internal bug
        _internal(e, debug, as_json)
    sys.exit(0)


def _internal(e: BaseException, debug: bool, as_json: bool) -> None:
    if debug:
        traceback.print_exc()
    _fail(
        f"internal error: {type(e).__name__}: {e}\n"
        "This is a bug in flashroom; please report it (rerun with --debug for a traceback).",
        EXIT_INTERNAL,
        "internal",
        as_json,
    )


def run(args: list[str]) -> Any:  # pragma: no cover - convenience for REPL use
    """Run the CLI in-process with ``args`` (raises SystemExit)."""
    main(args)
