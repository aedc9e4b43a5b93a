"""``--format json``: one convention for every command, and a schema for each in docs/json/.

The convention (flashroom.cli.common): addresses, sizes, CRCs and counts are integers; the
addresses and CRCs people read have a ``*_hex`` twin; a command about several files prints a
list (one object per file, even for one); every object a command prints has a ``warnings`` list;
an error prints ``{"error": ..., "warnings": ...}`` when no document was printed yet.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest

from flashroom.cli.main import cli as root
from flashroom.emu.device import Device
from flashroom.particle.build import device_os_install, synthetic_user_app
from flashroom.particle.compress import combine_modules, compress_module

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "json"
#: Commands whose owners add their schema with their work (docs/json/README.md).
PENDING = {"devos patch", "devos build", "devos package", "devos migrate-plan", "ota diff"}
_HEX_VALUE = re.compile(r"^0x[0-9a-fA-F]{4,8}$")


def _commands() -> list[str]:
    out = []
    ctx = click.Context(root)
    for noun in root.list_commands(ctx):  # type: ignore[attr-defined]
        group = root.get_command(ctx, noun)  # type: ignore[attr-defined]
        if isinstance(group, click.Group):
            out += [f"{noun} {v}" for v in sorted(group.commands)]
        elif group is not None:
            out.append(noun)
    return out


def _reporting(name: str) -> bool:
    ctx = click.Context(root)
    parts = name.split()
    cmd = root.get_command(ctx, parts[0])  # type: ignore[attr-defined]
    if len(parts) > 1 and isinstance(cmd, click.Group):
        cmd = cmd.commands[parts[1]]
    return any(isinstance(p, click.Option) and "--format" in p.opts for p in cmd.params)


def schema_for(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name.replace(' ', '-')}.json").read_text())


def validate(doc: Any, name: str) -> None:
    """``doc`` against docs/json/<name>.json and against the convention."""
    jsonschema.Draft202012Validator(schema_for(name)).validate(doc)
    check_convention(doc, name)


def check_convention(doc: Any, where: str) -> None:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key.endswith("_hex") and value is not None:
                base = key.removesuffix("_hex")
                hexes = value if isinstance(value, list) else [value]
                ints = doc.get(base) if isinstance(value, list) else [doc.get(base)]
                for i, h in enumerate(hexes):
                    assert isinstance(h, str) and h.startswith("0x"), (where, key, h)
                    if base in doc:  # the twin: the same number as an integer
                        assert isinstance(ints[i], int) and int(h, 16) == ints[i], (where, key)
            elif isinstance(value, str):
                assert not _HEX_VALUE.match(value), f"{where}: {key}={value!r} is a hex string"
            check_convention(value, f"{where}.{key}")
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            check_convention(item, f"{where}[{i}]")


def test_every_reporting_command_has_a_schema() -> None:
    missing = [c for c in _commands() if _reporting(c) and c not in PENDING]
    missing = [c for c in missing if not (SCHEMAS / f"{c.replace(' ', '-')}.json").is_file()]
    assert missing == [], f"add docs/json/<noun>-<verb>.json for {missing}"
    for c in PENDING:  # an owner who adds the schema takes the command off the list
        assert not (SCHEMAS / f"{c.replace(' ', '-')}.json").is_file(), c
    for p in SCHEMAS.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(p.read_text()))


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("json")
    app = synthetic_user_app(16 * 1024)
    (d / "app.bin").write_bytes(app)
    (d / "c.bin").write_bytes(compress_module(app))
    (d / "comb.bin").write_bytes(combine_modules([app, app]))
    for i, m in enumerate(device_os_install()):
        (d / f"os{i}.bin").write_bytes(m)
    Device.new("electron", "stock").save(d / "dev.img")
    return d


RUNS: dict[str, list[str]] = {
    "layout show": ["layout", "show", "--platform", "electron", "--layout", "extended"],
    "layout check": ["layout", "check", "--platform", "electron", "--user-size", "192K",
                     "--ota-size", "192K"],
    "layout plan": ["layout", "plan", "--platform", "photon", "--app-size", "200K"],
    "layout export": ["layout", "export", "--platform", "electron", "--out", "{d}/exp"],
    "module inspect": ["module", "inspect", "{d}/app.bin", "{d}/os0.bin", "{d}/comb.bin",
                       "{d}/c.bin"],
    "module verify": ["module", "verify", "{d}/app.bin"],
    "module pack": ["module", "pack", "--synthetic", "200K", "--platform", "electron",
                    "--function", "user", "--index", "1", "--version", "7", "--depends",
                    "system:2:2302", "--layout", "extended", "-o", "{d}/big.bin"],
    "module compress": ["module", "compress", "{d}/app.bin", "-o", "{d}/c2.bin"],
    "module decompress": ["module", "decompress", "{d}/c.bin", "-o", "{d}/d.bin"],
    "module combine": ["module", "combine", "{d}/app.bin", "{d}/app.bin", "-o", "{d}/comb2.bin"],
    "module split": ["module", "split", "{d}/comb.bin", "--out", "{d}/parts"],
    "module deps": ["module", "deps", "{d}/app.bin", "--against", "{d}/os1.bin", "{d}/os2.bin"],
    "emu new": ["emu", "new", "--platform", "electron", "--image", "{d}/new.img"],
    "emu install": ["emu", "install", "--image", "{d}/dev.img", "{d}/app.bin"],
    "emu ota": ["emu", "ota", "--image", "{d}/dev.img", "{d}/app.bin"],
    "emu boot": ["emu", "boot", "--image", "{d}/dev.img"],
    "emu show": ["emu", "show", "--image", "{d}/dev.img"],
    "emu sweep": ["emu", "sweep", "--granularity", "chunk", "--stride", "4000", "--app-size",
                  "64K", "--workers", "1"],
    "emu badinput": ["emu", "badinput", "--case", "bad_crc"],
    "demo": ["demo", "--quick", "--out", "{d}/demo"],
}  # fmt: skip
#: ``emu connect`` and ``ota serve`` need a server process: tests/cli/test_ota_cli.py.
ELSEWHERE = {"emu connect", "ota serve"}


def test_every_command_with_a_schema_is_run_here_or_in_the_ota_tests() -> None:
    have = {p.stem.replace("-", " ", 1) for p in SCHEMAS.glob("*.json")} - {"error"}
    assert have == set(RUNS) | ELSEWHERE


@pytest.mark.parametrize("name", list(RUNS))
def test_json_output_follows_its_schema_and_the_convention(cli: Any, ws: Path, name: str) -> None:
    r = cli([*(a.format(d=ws) for a in RUNS[name]), "--format", "json"])
    assert r.exit_code in (0, 1), (name, r.exit_code, r.stderr)
    validate(r.json(), name)


def test_one_file_gives_a_list_of_one(cli: Any, ws: Path) -> None:
    r = cli(["module", "inspect", str(ws / "app.bin"), "--format", "json"])
    doc = r.json()
    assert isinstance(doc, list) and len(doc) == 1 and doc[0]["file"] == str(ws / "app.bin")


def test_product_id_is_null_without_product_fields_and_65535_when_unset(
    cli: Any, ws: Path, fixtures: Path
) -> None:
    photon = cli(["module", "inspect", str(fixtures / "040_user-part.bin"), "--format", "json"])
    (p,) = photon.json()
    assert p["suffix"]["suffix_size"] == 36  # the reference tool reports product id -1 here
    assert p["suffix"]["product_id"] is None and p["suffix"]["product_version"] is None
    built = cli(["module", "inspect", str(ws / "app.bin"), "--format", "json"]).json()[0]
    assert built["suffix"]["product_id"] == 0xFFFF
    validate(photon.json(), "module inspect")


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["layout", "show", "--platform", "nope"], "usage"),
        (["module", "inspect", "--bogus"], "usage"),
        (["emu", "show", "--image", "/nonexistent/dev.img"], "input"),
        (["module", "pack", "--synthetic", "999K", "--platform", "electron", "--function",
          "user", "--index", "1", "--version", "1", "-o", "/tmp/never.bin"], "input"),
    ],
)  # fmt: skip
def test_errors_print_a_json_error_document(cli: Any, args: list[str], kind: str) -> None:
    r = cli([*args, "--format", "json"])
    assert r.exit_code == 2
    doc = r.json()
    validate(doc, "error")
    assert doc["error"]["kind"] == kind and doc["error"]["exit_code"] == 2
    assert doc["error"]["message"] in r.stderr


def test_an_error_after_the_document_prints_no_second_one(cli: Any, ws: Path) -> None:
    r = cli(["module", "inspect", str(ws / "app.bin"), str(ws / "nope.bin"), "--format", "json"])
    assert r.exit_code == 2
    doc = r.json()  # one document: the list, the missing file an item of it
    assert isinstance(doc, list) and doc[1]["error"]["field"] == "file"
    validate(doc, "module inspect")


def test_warnings_appear_once_on_stderr_and_in_the_json(cli: Any, ws: Path) -> None:
    r = cli(["module", "compress", str(ws / "app.bin"), "-o", str(ws / "w.bin"),
             "--format", "json"])  # fmt: skip
    lines = [ln.removeprefix("warning: ") for ln in r.stderr.splitlines()]
    assert r.json()["warnings"] == lines and len(lines) == 1


@pytest.mark.parametrize("verb", ["new", "install", "ota", "boot"])
def test_the_outcome_schemas_know_every_result_and_boot_mode(verb: str) -> None:
    from flashroom.emu.outcome import BOOT_MODES, RESULTS

    props = schema_for(f"emu {verb}")["properties"]
    assert set(props["result"]["enum"]) == {str(r) for r in RESULTS}
    assert set(props["boot"]["enum"]) == {str(b) for b in BOOT_MODES}
