"""Issue 12 rough edges: reports that say what made them, scripts that run anywhere, one name
per option, pictures whose legend says only what they show."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import click

from flashroom.cli.main import all_commands
from flashroom.layout import get_layout
from flashroom.report.flashmap import legend


def _commands() -> list[tuple[str, click.Command]]:
    return all_commands()


def _options(cmd: click.Command) -> list[click.Option]:
    return [p for p in cmd.params if isinstance(p, click.Option)]


def test_one_name_per_option_across_every_command() -> None:
    names = {
        o for _, cmd in _commands() for p in _options(cmd) for o in (*p.opts, *p.secondary_opts)
    }
    for drifted in ("--fast", "--no-fast", "--output-dir", "--outdir", "--out-dir"):
        assert drifted not in names, drifted
    for name, cmd in _commands():
        for p in _options(cmd):
            if "-o" in p.opts:
                assert p.opts == ["-o", "--output"], (name, p.opts)  # one file
            if "--out" in p.opts:  # a folder
                assert isinstance(p.type, click.Path), name
                assert "folder" in (p.help or "") or "irectory" in (p.help or ""), name
    split = dict(_commands())["module split"]
    assert any("--out" in p.opts for p in _options(split))
    fast = [(n, p) for n, c in _commands() for p in _options(c) if "--fast-ota" in p.opts]
    assert {n for n, _ in fast} >= {"ota serve", "emu connect"}
    assert all(p.secondary_opts == ["--no-fast-ota"] and p.default is True for _, p in fast)


def test_an_output_into_a_missing_folder_is_refused_not_created(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "app.bin"
    r = cli(["module", "pack", "--synthetic", "8K", "--platform", "electron", "--function",
             "user", "--index", "1", "--version", "6", "-o", str(out)])  # fmt: skip
    assert r.exit_code == 2 and "folder" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "missing").exists()
    # a folder output creates the folder it names, never its parents
    r = cli(["layout", "export", "--platform", "electron", "--out", str(tmp_path / "a" / "b")])
    assert r.exit_code == 2 and not (tmp_path / "a").exists()
    r = cli(["layout", "export", "--platform", "electron", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0 and (tmp_path / "a" / "user-part.ld").is_file()


def test_legend_says_only_what_the_picture_shows() -> None:
    stock = get_layout("electron", "stock")
    ext = get_layout("electron", "extended")
    alone = legend([stock])
    assert "differs from the leftmost" not in alone
    assert "share bytes by design" not in alone  # Electron has no shared region
    assert "Dotted: unused sector" in alone  # sector 11 is free, drawn dotted
    pair = legend([stock, ext])
    assert "Red outline: differs from the leftmost layout" in pair
    photon = legend([get_layout("photon", "stock")])
    assert "Hatched: regions that share bytes by design" in photon
    assert "Dotted" not in photon and "differs" not in photon


def test_demo_report_has_provenance_export_pictures_and_no_python_booleans(
    cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    r = cli(["demo", "--quick", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    for name in ("flash-map.svg", "flash-map.png", "user-part.ld", "flash_layout.h",
                 "layout.json"):  # fmt: skip
        assert (out / "export" / name).is_file(), name  # exactly what layout export writes
    export = tmp_path / "export"
    assert cli(["layout", "export", "--platform", "electron", "--layout", "extended",
                "--out", str(export)]).exit_code == 0  # fmt: skip
    assert sorted(p.name for p in (out / "export").iterdir()) == sorted(
        p.name for p in export.iterdir()
    )
    rep = json.loads((out / "report.json").read_text())
    from flashroom import __version__

    assert rep["flashroom_version"] == __version__ and rep["generated_at"].endswith("+00:00")
    assert len(rep["inputs"]["app"]["sha256"]) == 64
    assert any(c.startswith("flashroom demo --out") for c in rep["reproduce"])
    assert r.json()["reproduce"] == rep["reproduce"]
    md = (out / "report.md").read_text()
    assert f"flashroom {__version__}" in md and rep["inputs"]["app"]["sha256"] in md
    assert "## Reproduce" in md and "flashroom module pack --synthetic" in md
    assert "True" not in md and "False" not in md


def test_the_demo_app_is_reproduced_byte_for_byte_by_its_pack_command(
    cli: Any, tmp_path: Path
) -> None:
    from flashroom.report.demo import reproduce_commands
    from flashroom.scenarios.story import DemoReport

    pack = next(c for c in reproduce_commands(DemoReport([], [], True)) if "module pack" in c)
    args = pack.split()[1:]
    args[args.index("-o") + 1] = str(tmp_path / "app.bin")
    assert cli(args).exit_code == 0
    import hashlib

    from flashroom.scenarios.story import demo_app

    want = demo_app()
    assert (
        hashlib.sha256((tmp_path / "app.bin").read_bytes()).digest()
        == hashlib.sha256(want).digest()
    )


def test_reproduce_sh_is_executable_and_runs_from_its_folder_without_flashroom_on_path(
    cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "fail"
    r = cli(["emu", "sweep", "--bootloader", "legacy", "--granularity", "chunk", "--app-size",
             "64K", "--save-failing", str(out)])  # fmt: skip
    assert r.exit_code == 1, r.stderr
    script = out / "reproduce.sh"
    assert stat.S_IMODE(script.stat().st_mode) & 0o111 == 0o111
    text = script.read_text()
    assert "\nflashroom " not in text and "$FLASHROOM emu ota" in text
    env = {k: v for k, v in os.environ.items() if k not in ("FLASHROOM", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"  # no flashroom on PATH
    for cwd, cmd in ((out, ["./reproduce.sh"]), (tmp_path, [str(script)])):
        (out / "device.img").unlink(missing_ok=True)
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert "not found" not in res.stderr, res.stderr
        assert res.returncode == 0, (res.returncode, res.stderr)  # the final boot ran
        assert (out / "device.img").is_file()
        assert "interrupted" in res.stdout and "safe_mode" in res.stdout  # the failure, replayed
