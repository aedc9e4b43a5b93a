"""What a user sees: --help that teaches, 80-column text, progress bars only on a terminal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest

from flashroom.cli.main import cli as root

REPO = Path(__file__).resolve().parents[2]
ADDR = re.compile(r"0x08[0-9a-f]*")  # internal-flash addresses (0x08000000-0x08100000)


def _commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(root)
    out: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            names = set(cmd.list_commands(ctx)) | set(cmd.commands)
            for name in sorted(names):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            out.append((" ".join(path), cmd))

    walk(root, [])
    return out


COMMANDS = _commands()


def test_every_noun_and_verb_is_reached() -> None:
    names = {n for n, _ in COMMANDS}
    assert {
        "layout show", "layout check", "layout plan", "layout export", "module inspect",
        "module verify", "module pack", "module compress", "module decompress", "module combine",
        "module split", "module deps", "emu new", "emu install", "emu ota", "emu boot",
        "emu show", "emu sweep", "emu badinput", "emu connect", "ota serve", "demo",
    } <= names  # fmt: skip


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_help_teaches_what_with_an_example_and_documents_every_option(name: str) -> None:
    cmd = dict(COMMANDS)[name]
    doc = cmd.help or ""
    first = doc.strip().splitlines()[0]
    assert len(first) > 20 and first.rstrip().endswith((".", ")")), first
    assert "Example" in doc and "flashroom " + name in doc, doc
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name != "help":
            assert p.help, f"{name} {p.opts} has no help text"
    if any(isinstance(p, click.Option) and p.name == "fmt" for p in cmd.params) is False:
        # every reporting command takes --format (export/pack report what they wrote too)
        pytest.fail(f"{name} has no --format text|json")


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_help_renders_within_80_columns(name: str, cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli([*name.split(), "--help"])
    assert r.exit_code == 0
    # click wraps prose at 80 columns; only example lines may run longer
    long = [ln for ln in r.stdout.splitlines() if len(ln) > 100 and "flashroom" not in ln]
    assert not long, long


def _narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every command's rich console 80 columns wide, as on an 80-column terminal."""
    from rich.console import Console

    import flashroom.cli.common as common
    import flashroom.cli.emu_render as emu_render
    import flashroom.cli.layout as layout
    import flashroom.cli.module as module

    def console() -> Any:
        return Console(width=80, highlight=False, soft_wrap=False)

    for mod, attr in ((layout, "_console"), (emu_render, "_console"), (module, "stdout_console")):
        monkeypatch.setattr(mod, attr, console)
    monkeypatch.setattr(common, "stdout_console", console)


@pytest.mark.parametrize(
    "args",
    [
        ["layout", "show", "--platform", "electron", "--layout", "extended"],
        ["layout", "show", "--platform", "photon"],
        ["layout", "check", "--platform", "electron", "--user-size", "192K", "--ota-size", "192K"],
        ["emu", "show", "--image", "{img}"],
    ],
    ids=["show-electron-extended", "show-photon", "check-192k", "emu-show"],
)
def test_text_at_80_columns_keeps_every_address_whole(
    args: list[str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = tmp_path / "dev.img"
    if "{img}" in args:
        assert cli(["emu", "new", "--image", str(img)]).exit_code == 0
    _narrow(monkeypatch)
    r = cli([a.format(img=img) for a in args])
    assert r.exit_code in (0, 1), r.stderr
    lines = r.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    # every address is printed whole as 0x%08x: never cut by an ellipsis or wrapped
    addrs = ADDR.findall(r.stdout)
    assert addrs and all(len(a) == 10 for a in addrs), sorted(set(addrs), key=len)[:5]
    assert not re.search(r"0x[0-9a-f]{0,7}…", r.stdout)
    assert "0x08020000" in r.stdout  # system_part_1 on every Gen2 platform


def test_inspect_at_80_columns_shows_the_whole_sha256(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flashroom.particle.build import synthetic_user_app
    from flashroom.particle.module import parse_module

    app = tmp_path / "app.bin"
    app.write_bytes(synthetic_user_app(8192))
    sha = parse_module(app.read_bytes()).suffix.sha256.hex()
    _narrow(monkeypatch)
    r = cli(["module", "inspect", str(app)])
    assert r.exit_code == 0
    assert all(len(ln) <= 80 for ln in r.stdout.splitlines())
    folded = "".join(re.sub(r"[│ ]", "", ln) for ln in r.stdout.splitlines() if "│" in ln)
    assert sha in folded


@pytest.mark.parametrize(
    ("args", "label"),
    [
        (["emu", "badinput", "--case", "bad_crc", "--case", "truncated_half"], "bad inputs"),
        (["emu", "sweep", "--scenario", "install", "--app-size", "16K", "--stride", "64"], "sweep"),
        (["demo", "--quick", "--out", "out"], "demo"),
    ],
    ids=["badinput", "sweep", "demo"],
)
def test_long_commands_show_a_progress_bar_on_a_tty_and_stay_quiet_otherwise(
    args: list[str],
    label: str,
    tmp_path: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    run_on_tty: Any,
) -> None:
    code, _out, tty = run_on_tty([*args, "--format", "json"], tmp_path)
    assert code == 0, tty[-2000:]
    assert label in tty and "━" in tty, tty[-500:]
    monkeypatch.chdir(tmp_path)
    r = cli([*args, "--format", "json"])  # not a terminal: no bar, stderr silent
    assert r.exit_code == 0
    assert r.stderr == ""
    r.json()
