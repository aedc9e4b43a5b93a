"""Options shared across commands: one declaration, one default, flags in library errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from flashroom.cli.main import all_commands
from flashroom.deviceos import GEN2_PLATFORMS, default_profile


def _commands() -> list[tuple[str, click.Command]]:
    return all_commands()


def _option(cmd: click.Command, flag: str) -> click.Option | None:
    return next((p for p in cmd.params if isinstance(p, click.Option) and flag in p.opts), None)


@pytest.mark.parametrize("flag", ["--profile", "--bootloader", "--image", "--granularity"])
def test_a_shared_option_has_one_help_and_one_choice_set_everywhere(flag: str) -> None:
    seen = {name: opt for name, cmd in _commands() if (opt := _option(cmd, flag)) is not None}
    assert len(seen) >= 2, seen
    choices = {tuple(getattr(o.type, "choices", ())) for o in seen.values()}
    assert len(choices) == 1, choices
    if flag != "--granularity":  # emu ota's --granularity overrides the image's (no default)
        assert len({o.default for o in seen.values()}) == 1, {n: o.default for n, o in seen.items()}
        assert len({o.help for o in seen.values()}) == 1


def test_every_profile_default_is_the_platforms_largest_layout() -> None:
    for name, cmd in _commands():
        opt = _option(cmd, "--profile")
        if opt is not None:
            assert opt.default is None, name  # resolved from --platform at run time
    assert {p: default_profile(p) for p in GEN2_PLATFORMS} == {
        "photon": "stock",
        "p1": "stock",
        "electron": "extended",
    }


def test_emu_new_without_a_profile_takes_the_platforms_default(cli: Any, tmp_path: Path) -> None:
    for platform, want in (("photon", "stock"), ("electron", "extended")):
        img = tmp_path / f"{platform}.img"
        r = cli(["emu", "new", "--platform", platform, "--image", str(img), "--format", "json"])
        assert r.exit_code == 0, r.stderr
        shown = cli(["emu", "show", "--image", str(img), "--format", "json"]).json()
        assert shown["profile"] == want


def test_platform_is_accepted_in_any_case(cli: Any, tmp_path: Path) -> None:
    r = cli(["emu", "new", "--platform", "Electron", "--image", str(tmp_path / "d.img")])
    assert r.exit_code == 0, r.stderr
    r = cli(["layout", "show", "--platform", "PHOTON", "--format", "json"])
    assert r.exit_code == 0 and r.json()["platform"] == "photon"


def test_library_errors_about_request_fields_name_the_commands_flags(cli: Any) -> None:
    from flashroom.errors import ParamError
    from flashroom.scenarios.sweep_config import SweepConfig

    with pytest.raises(ParamError, match=r"^first_op 5 must be below last_op 3") as e:
        SweepConfig(first_op=5, last_op=3).validate()
    assert "--" not in str(e.value)  # the library names its fields, not CLI flags
    r = cli(["emu", "sweep", "--first-op", "5", "--last-op", "3"])
    assert r.exit_code == 2
    assert "--first-op 5 must be below --last-op 3" in r.stderr, r.stderr


def test_help_does_not_import_the_heavy_dependencies() -> None:
    code = (
        "import sys\n"
        "from flashroom.cli.main import main\n"
        "for args in (['--help'], ['emu', '--help'], ['emu', 'sweep', '--help'],\n"
        "             ['module', '--help'], ['ota', 'serve', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('numpy', 'matplotlib', 'aiocoap', 'unicorn', 'elftools')\n"
        "         if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout[-500:]
