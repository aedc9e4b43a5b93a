"""CLI tests for ``flashroom module``: exit codes, JSON contract, files written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashroom.particle.build import device_os_install, synthetic_user_app
from flashroom.particle.compress import combine_modules
from flashroom.particle.module import parse_module

Cli = Any


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_inspect_valid_module_json_contract_exit_0(cli: Cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "app.bin", synthetic_user_app(4096))
    r = cli(["module", "inspect", f, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    (j,) = r.json()  # a list with one object per file, even for one file
    assert j["file"] == f and j["warnings"] == []
    p = j["prefix"]
    for key in ("module_start_address", "module_end_address", "module_flags", "module_version",
                "platform_id", "module_function", "module_function_name", "module_index",
                "dependencies", "prefix_offset", "prefix_size"):  # fmt: skip
        assert key in p
    assert p["module_start_address"] == 0x08080000 and isinstance(p["module_version"], int)
    assert p["dependencies"][0]["module_version"] == 2302
    for key in ("product_id", "product_version", "sha256", "suffix_size", "extensions"):
        assert key in j["suffix"]
    assert j["crc"]["ok"] is True and j["crc"]["stored"] == j["crc"]["computed"]
    assert j["crc"]["stored_hex"] == f"0x{j['crc']['stored']:08x}"
    assert p["module_start_address_hex"] == "0x08080000"
    assert j["suffix"]["product_id"] == 0xFFFF  # set but unset: 0xffff
    assert j["sha256_ok"] is True and j["compressed"] is None and j["combined"] is None


def test_inspect_several_files_gives_a_list(cli: Cli, tmp_path: Path) -> None:
    files = [_write(tmp_path, f"m{i}.bin", m) for i, m in enumerate(device_os_install())]
    r = cli(["module", "inspect", *files, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    j = r.json()
    assert isinstance(j, list) and [x["prefix"]["module_index"] for x in j] == [0, 1, 2, 3]


def test_inspect_crc_failure_exits_1(cli: Cli, tmp_path: Path) -> None:
    data = bytearray(synthetic_user_app(4096))
    data[100] ^= 0x40
    f = _write(tmp_path, "bad.bin", bytes(data))
    r = cli(["module", "inspect", f, "--format", "json"])
    assert r.exit_code == 1
    assert r.json()[0]["crc"]["ok"] is False
    r = cli(["module", "verify", f])
    assert r.exit_code == 1 and "FAIL crc" in r.stdout


def test_inspect_unparseable_exits_2_naming_field_and_offset(cli: Cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "short.bin", b"\x01" * 30)
    r = cli(["module", "inspect", f])
    assert r.exit_code == 2
    assert "not a Particle module" in r.stderr and "module_info_t" in r.stderr
    assert "offset" in r.stderr
    r = cli(["module", "inspect", str(tmp_path / "missing.bin")])
    assert r.exit_code == 2


def test_inspect_text_shows_table(cli: Cli, tmp_path: Path) -> None:
    f = _write(tmp_path, "app.bin", synthetic_user_app(4096))
    r = cli(["module", "inspect", f])
    assert r.exit_code == 0
    assert "USER_PART" in r.stdout and "0x08080000" in r.stdout


def test_inspect_fixtures_exit_codes_match_their_checks(cli: Cli, fixtures: Path) -> None:
    good = fixtures / "040_user-part.bin"
    assert cli(["module", "inspect", str(good)]).exit_code == 0
    assert cli(["module", "inspect", str(fixtures / "RC4_bootloader_pad_BM-09.bin")]).exit_code == 1
    r = cli(["module", "inspect", str(fixtures / "RC2_bootloader.bin")])
    assert r.exit_code == 2 and "Invalid extension length" in r.stderr


def test_pack_user_part_raw_input(cli: Cli, tmp_path: Path) -> None:
    raw = _write(tmp_path, "raw.bin", b"\x00\xbf" * 500)
    out = tmp_path / "out.bin"
    r = cli(["module", "pack", raw, "--platform", "electron", "--function", "user", "--index",
             "1", "--version", "6", "--start", "0x08080000", "--depends", "system:2:2302",
             "--product-id", "1234", "--product-version", "5", "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    m = parse_module(out.read_bytes())
    assert m.ok and m.suffix.product_id == 1234 and m.info.dependency.module_version == 2302


def test_pack_refuses_200k_user_part_on_stock_layout_naming_region(
    cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "big.bin"
    args = ["module", "pack", "--synthetic", "200K", "--platform", "electron", "--function",
            "user", "--index", "1", "--version", "6", "-o", str(out)]  # fmt: skip
    r = cli(args)
    assert r.exit_code == 2
    assert "user_part" in r.stderr and "0x080a0000" in r.stderr
    assert not out.exists()
    r = cli([*args, "--layout", "extended", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert r.json()["region"] == "user_part" and out.stat().st_size == 200 * 1024


def test_pack_synthetic_system_part(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "sp1.bin"
    r = cli(["module", "pack", "--synthetic", "120K", "--platform", "electron", "--function",
             "system", "--index", "1", "--version", "2302", "--depends", "system:3:2302",
             "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    m = parse_module(out.read_bytes())
    assert m.prefix_offset == 0x184 and len(m.data) == 120 * 1024 and m.ok


def test_pack_rejects_bad_dependency_text(cli: Cli, tmp_path: Path) -> None:
    r = cli(["module", "pack", "--synthetic", "8K", "--platform", "electron", "--function",
             "user", "--index", "1", "--version", "6", "--depends", "system:2",
             "-o", str(tmp_path / "x.bin")])  # fmt: skip
    assert r.exit_code == 2 and "FUNCTION:INDEX:VERSION" in r.stderr


def test_compress_decompress_round_trip(cli: Cli, tmp_path: Path) -> None:
    src = synthetic_user_app(8192)
    f = _write(tmp_path, "app.bin", src)
    c, d = tmp_path / "c.bin", tmp_path / "d.bin"
    assert cli(["module", "compress", f, "-o", str(c)]).exit_code == 0
    r = cli(["module", "inspect", str(c), "--format", "json"])
    assert r.exit_code == 0
    assert r.json()[0]["compressed"]["original_size"] == 8192
    assert cli(["module", "decompress", str(c), "-o", str(d)]).exit_code == 0
    assert d.read_bytes() == src
    r = cli(["module", "decompress", f, "-o", str(tmp_path / "e.bin")])
    assert r.exit_code == 2 and "not compressed" in r.stderr


def test_combine_and_split(cli: Cli, tmp_path: Path) -> None:
    mods = [synthetic_user_app(4096, seed=i) for i in range(3)]
    files = [_write(tmp_path, f"m{i}.bin", m) for i, m in enumerate(mods)]
    out = tmp_path / "comb.bin"
    assert cli(["module", "combine", *files, "-o", str(out)]).exit_code == 0
    assert out.read_bytes() == combine_modules(mods)
    r = cli(["module", "inspect", str(out), "--format", "json"])
    assert r.exit_code == 0 and len(r.json()[0]["combined"]) == 3
    r = cli(["module", "split", str(out), "--out", str(tmp_path / "parts"), "--format", "json"])
    assert r.exit_code == 0
    assert [Path(p["file"]).read_bytes() for p in r.json()["parts"]] == mods


@pytest.mark.parametrize("comb_first", [True, False])
def test_combine_of_a_combined_file_says_already_combined(
    cli: Cli, tmp_path: Path, comb_first: bool
) -> None:
    # Issue 12 item 16: a file flashroom combined itself was refused as "corrupt" (its
    # whole-file CRC-32 never matches); it must be refused as already combined, exit 2.
    a = _write(tmp_path, "a.bin", synthetic_user_app(4096, seed=1))
    b = _write(tmp_path, "b.bin", synthetic_user_app(4096, seed=2))
    app = _write(tmp_path, "app.bin", synthetic_user_app(3000, seed=3))
    comb = tmp_path / "comb.bin"
    assert cli(["module", "combine", a, b, "-o", str(comb)]).exit_code == 0
    out = tmp_path / "o.bin"
    inputs = [str(comb), app] if comb_first else [app, str(comb)]
    r = cli(["module", "combine", *inputs, "-o", str(out)])
    assert r.exit_code == 2, r.stderr
    assert "comb.bin" in r.stderr and "already combined" in r.stderr
    assert "corrupt" not in r.stderr and "CRC-32" not in r.stderr
    assert "field flags" in r.stderr and "split it first" in r.stderr
    assert not out.exists()
    r = cli(["module", "combine", *inputs, "-o", str(out), "--format", "json"])
    assert r.exit_code == 2 and r.json()["error"]["exit_code"] == 2
    assert "already combined" in r.json()["error"]["message"]
    r = cli(["module", "compress", str(comb), "-o", str(out)])
    assert r.exit_code == 2 and "refusing to compress a file that is already combined" in r.stderr


@pytest.mark.parametrize(("version", "code"), [(2302, 0), (2100, 1)])
def test_deps_against_installed_modules(cli: Cli, tmp_path: Path, version: int, code: int) -> None:
    from flashroom.particle.build import synthetic_module

    app = _write(tmp_path, "app.bin", synthetic_user_app(4096))
    system = [_write(tmp_path, f"s{i}.bin", m) for i, m in enumerate(device_os_install()[1:])]
    sp2 = synthetic_module(20000, platform_id=10, function=4, index=2, version=version,
                           start_address=0x08040000)  # fmt: skip
    system[1] = _write(tmp_path, "sp2.bin", sp2)
    r = cli(["module", "deps", app, "--against", *system, "--format", "json"])
    assert r.exit_code == code, r.stderr
    j = r.json()
    assert j["ok"] is (code == 0)
    assert j["dependencies"][0]["module_index"] == 2
    if code:
        assert j["dependencies"][0]["installed_version"] == 2100
        r = cli(["module", "deps", app, "--against", *system])
        assert "NOT MET" in r.stdout and "SYSTEM_PART idx 2 >= 2302" in r.stdout


def test_module_help_teaches(cli: Cli) -> None:
    r = cli(["module", "--help"])
    assert r.exit_code == 0
    for verb in ("inspect", "verify", "pack", "compress", "decompress", "combine", "split", "deps"):
        assert verb in r.stdout
    assert "Example" in cli(["module", "pack", "--help"]).stdout
