"""Issue 12 (inputs): never falsely reassuring, inputs that cannot hang or crash the tools.

Each test names the behaviour it pins; each failed before the change it comes with.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from flashroom.deviceos import get_profile
from flashroom.emu.device import Device
from flashroom.emu.image import decode_image, encode_image
from flashroom.particle.build import synthetic_module, synthetic_user_app
from flashroom.particle.module import parse_module

K = 1024
PACK = ["--platform", "electron", "--function", "user", "--index", "1", "--version", "7"]
#: A command answers bad input in well under this (a hang guard, not a timing target).
QUICK_S = 5.0


def _timed(cli: Any, args: list[str]) -> Any:
    t0 = time.perf_counter()
    r = cli(args)
    took = time.perf_counter() - t0
    assert took < QUICK_S, f"{args}: {took:.1f} s"
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    return r


# ------------------------------------------------------------------ 1: compressed/combined on Gen2
def test_compress_of_an_electron_user_part_warns_that_gen2_cannot_apply_it(
    cli: Any, tmp_path: Path
) -> None:
    app = tmp_path / "app.bin"
    app.write_bytes(synthetic_user_app(8 * K))
    out = tmp_path / "app.c.bin"
    r = cli(["module", "compress", str(app), "-o", str(out), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(lines) == 1 and "electron (platform 10) cannot apply a compressed module" in lines[0]
    assert "0x08080000" in lines[0] and "hal_platform.h:270-272" in lines[0]
    (w,) = r.json()["warnings"]
    assert lines[0] == f"warning: {w}"
    assert parse_module(out.read_bytes()).is_compressed  # still written: exit 0
    r = cli(["module", "inspect", str(out), "--format", "json"])
    assert r.exit_code == 0 and r.json()[0]["warnings"] == [w]


def test_combine_of_gen2_modules_warns_that_only_the_first_is_applied(
    cli: Any, tmp_path: Path
) -> None:
    files = []
    for i in range(2):
        p = tmp_path / f"m{i}.bin"
        p.write_bytes(synthetic_user_app(4 * K, seed=i))
        files.append(str(p))
    r = cli(["module", "combine", *files, "-o", str(tmp_path / "c.bin"), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert r.stderr.startswith("warning: electron (platform 10) cannot apply 2 combined modules")
    assert "first module" in r.json()["warnings"][0]


def test_compress_for_a_platform_that_decompresses_gives_no_warning(
    cli: Any, tmp_path: Path
) -> None:
    argon = synthetic_module(
        4 * K, platform_id=12, function=5, index=1, version=6, start_address=0xD4000
    )
    src = tmp_path / "argon.bin"
    src.write_bytes(argon)
    r = cli(["module", "compress", str(src), "-o", str(tmp_path / "a.c.bin"), "--format", "json"])
    assert r.exit_code == 0 and "warning" not in r.stderr and r.json()["warnings"] == []


# ------------------------------------------------------------------ 2: the README's own example
def test_pack_extended_defaults_to_the_extended_system_dependency(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "app.bin"
    r = cli(["module", "pack", "--synthetic", "200K", *PACK, "--layout", "extended",
             "-o", str(out), "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "warning" not in r.stderr and r.json()["warnings"] == []
    want = get_profile("electron", "extended").user_dependency
    assert want is not None
    dep = parse_module(out.read_bytes()).info.dependency
    assert (dep.module_function, dep.module_index, dep.module_version) == tuple(want)


def test_pack_extended_with_a_stock_met_dependency_warns(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "app.bin"
    r = cli(["module", "pack", "--synthetic", "200K", *PACK, "--depends", "system:2:2302",
             "--layout", "extended", "-o", str(out), "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.stderr.startswith("warning: ") and "stock" in r.stderr and "131072" in r.stderr
    assert len(r.json()["warnings"]) == 1
    # the warning is true: a stock device runs that app after a USB install
    img = tmp_path / "stock.img"
    Device.new("electron", "stock").save(img)
    r = cli(["emu", "install", "--image", str(img), str(out), "--format", "json"])
    assert r.exit_code == 0 and r.json()["boot"] == "application"
    assert r.json()["running"]["size"] == 200 * K


def test_pack_extended_small_app_with_stock_dependency_is_fine(cli: Any, tmp_path: Path) -> None:
    r = cli(["module", "pack", "--synthetic", "100K", *PACK, "--depends", "system:2:2302",
             "--layout", "extended", "-o", str(tmp_path / "a.bin")])  # fmt: skip
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_emu_show_flags_a_user_module_past_the_profiles_user_part(cli: Any, tmp_path: Path) -> None:
    app = tmp_path / "app.bin"
    app.write_bytes(synthetic_user_app(200 * K, version=7))
    img = tmp_path / "stock.img"
    Device.new("electron", "stock").save(img)
    assert cli(["emu", "install", "--image", str(img), str(app)]).exit_code == 0
    r = cli(["emu", "show", "--image", str(img), "--format", "json"])
    assert r.exit_code == 0
    doc = r.json()
    user = next(x for x in doc["regions"] if x["name"] == "user_part")
    assert user["module"]["overrun"] == 200 * K - 128 * K
    assert len(doc["warnings"]) == 1 and "runs 73728 bytes past" in doc["warnings"][0]
    assert r.stderr.startswith("warning: ")
    text = cli(["emu", "show", "--image", str(img)])
    assert "RUNS 73728 bytes" in " ".join(text.stdout.split())


# ------------------------------------------------------------------ 3: foreign finished modules
def test_pack_refuses_a_finished_module_of_another_platform(cli: Any, tmp_path: Path) -> None:
    photon = synthetic_user_app(8 * K, platform="photon")
    src = tmp_path / "photon-app.bin"
    src.write_bytes(photon)
    out = tmp_path / "o.bin"
    r = cli(["module", "pack", str(src), *PACK, "-o", str(out)])
    assert r.exit_code == 2, r.stderr
    assert "photon (platform 6)" in r.stderr and "electron (platform 10)" in r.stderr
    assert "drop its dependency" in r.stderr and not out.exists()


def test_deps_refuses_modules_of_different_platforms(cli: Any, tmp_path: Path) -> None:
    app = tmp_path / "app.bin"
    app.write_bytes(synthetic_user_app(4 * K))
    sp = tmp_path / "photon-sp2.bin"
    sp.write_bytes(synthetic_module(8 * K, platform_id=6, function=4, index=2, version=2302,
                                    start_address=0x08060000))  # fmt: skip
    r = cli(["module", "deps", str(app), "--against", str(sp)])
    assert r.exit_code == 2
    assert "platform 6" in r.stderr and "platform 10" in r.stderr


# ------------------------------------------------------------------ 4, 6: inputs that cannot hang
def test_inspect_of_dev_zero_a_fifo_and_a_directory_is_refused_at_once(
    cli: Any, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "zero.bin"
    link.symlink_to("/dev/zero")
    for path, kind in (("/dev/zero", "character device"), (fifo, "FIFO"), (link, "character"),
                       (tmp_path, "directory")):  # fmt: skip
        r = _timed(cli, ["module", "inspect", str(path)])
        assert r.exit_code == 2 and kind in r.stderr, (path, r.stderr)


def test_random_megabytes_are_too_large_to_be_a_module(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "random.bin"
    f.write_bytes(os.urandom(10 * 1024 * 1024))
    r = _timed(cli, ["module", "inspect", str(f)])
    assert r.exit_code == 2 and "not one" in r.stderr and "platform_id" not in r.stdout


def test_a_text_file_is_not_a_particle_module(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "passwd"
    f.write_text(
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    )
    r = _timed(cli, ["module", "inspect", str(f), "--format", "json"])
    assert r.exit_code == 2 and "not a Particle module" in r.stderr
    assert "Prefix extensions" not in r.stderr
    assert r.json()[0]["error"]["field"] == "module_info_t"


@pytest.mark.parametrize("verb", ["show", "boot"])
def test_an_image_that_is_a_link_to_dev_zero_or_a_fifo_is_refused(
    cli: Any, tmp_path: Path, verb: str
) -> None:
    link = tmp_path / "zero.img"
    link.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.img"
    os.mkfifo(fifo)
    for img in (link, fifo):
        r = _timed(cli, ["emu", verb, "--image", str(img)])
        assert r.exit_code == 2, (img, r.stderr)
        assert "not a regular file" in r.stderr or "character device" in r.stderr, r.stderr


def test_a_fifo_as_module_or_firmware_is_refused(cli: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "app.bin"
    os.mkfifo(fifo)
    img = tmp_path / "dev.img"
    Device.new("electron", "stock").save(img)
    app = tmp_path / "real.bin"
    app.write_bytes(synthetic_user_app(4 * K))
    for args in (["emu", "ota", "--image", str(img), str(fifo)],
                 ["emu", "install", "--image", str(img), str(fifo)],
                 ["module", "pack", str(fifo), *PACK, "-o", str(tmp_path / "o.bin")],
                 ["ota", "serve", "--firmware", str(fifo), "--max-sessions", "1", "--insecure"],
                 ["ota", "serve", "--firmware", str(app), "--max-sessions", "1",
                  "--psk-file", str(fifo)],
                 ["emu", "connect", "coap://127.0.0.1:9", "--image", str(img), "--psk-file",
                  str(fifo)]):  # fmt: skip
        r = _timed(cli, args)
        assert r.exit_code == 2 and "FIFO" in r.stderr, (args, r.stderr)
    # the real-bootloader option refuses what is not a regular file (in its own words)
    r = _timed(cli, ["emu", "new", "--image", str(tmp_path / "n.img"), "--bootloader-firmware",
                     str(fifo)])  # fmt: skip
    assert r.exit_code == 2 and str(fifo) in r.stderr


def test_synthetic_size_that_cannot_fit_is_refused_before_any_work(
    cli: Any, tmp_path: Path
) -> None:
    r = _timed(cli, ["module", "pack", "--synthetic", "256M", *PACK, "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "past region user_part" in r.stderr


def test_inspect_of_a_megabyte_chain_of_tiny_combined_pieces_is_quick(
    cli: Any, tmp_path: Path
) -> None:
    from flashroom.particle.build import finish_checksums

    piece = bytearray(synthetic_user_app(68))
    piece[9] |= 0x04
    finish_checksums(piece)
    f = tmp_path / "chain.bin"
    f.write_bytes(bytes(piece) * (1024 * 1024 // len(piece)))
    r = _timed(cli, ["module", "inspect", str(f), "--format", "json"])
    assert r.exit_code == 1  # the chain check fails, fast
    assert any("more than 16" in c["detail"] for c in r.json()[0]["checks"])


# ------------------------------------------------------------------ 7: precise exit 2, not 70
LONG = "x" * 300


@pytest.mark.parametrize(
    "args",
    [
        ["module", "pack", "--synthetic", "8K", *PACK, "-o", "{d}/" + LONG],
        ["module", "inspect", "{d}/" + LONG + ".bin"],
        ["module", "split", "{d}/app.bin", "--out", "{d}/" + LONG],
        ["emu", "new", "--image", "{d}/" + LONG],
        ["emu", "show", "--image", "{d}/" + LONG],
        ["layout", "export", "--platform", "electron", "--out", "{d}/" + LONG],
        ["demo", "--quick", "--out", "{d}/" + LONG],
        ["emu", "connect", "coap://" + "h" * 70 + ".example:5683", "--image", "{d}/dev.img"],
        ["ota", "serve", "--bind", "h" * 70 + ".example:0", "--firmware", "{d}/app.bin"],
        ["module", "pack", "--synthetic", "8K", *PACK, "--start", "0xfffffffc", "-o", "{d}/s"],
    ],
    ids=[
        "pack-o",
        "inspect",
        "split-out",
        "emu-new",
        "emu-show",
        "export-out",
        "demo-out",
        "connect-host",
        "serve-bind",
        "pack-start",
    ],
)
def test_bad_paths_hosts_and_addresses_are_a_precise_exit_2(
    cli: Any, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "app.bin").write_bytes(synthetic_user_app(4 * K))
    Device.new("electron", "stock").save(tmp_path / "dev.img")
    r = _timed(cli, [a.format(d=tmp_path) for a in args])
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _image_with(tmp_path: Path, name: str, edit: Any) -> Path:
    base = tmp_path / "base.img"
    Device.new("electron", "stock").save(base)
    meta, flash = decode_image(base.read_bytes())
    meta = edit(meta)
    p = tmp_path / name
    if isinstance(meta, bytes):  # raw metadata bytes, CRC made valid
        crc = zlib.crc32(flash, zlib.crc32(meta)) & 0xFFFFFFFF
        p.write_bytes(struct.pack("<8sIIII", b"FLRMEMU\0", 1, len(meta), len(flash), crc)
                      + meta + flash)  # fmt: skip
    else:
        p.write_bytes(encode_image(meta, flash))
    return p


def _set(key: str, value: Any, sub: str | None = None) -> Any:
    def edit(meta: dict[str, Any]) -> dict[str, Any]:
        m = json.loads(json.dumps(meta))
        (m[sub] if sub else m)[key] = value
        return m

    return edit


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda m: b"[" * 60_000, "metadata"),
        (lambda m: b"[" * 100_000, "metadata"),
        (_set("backup_registers", [2**80] + [0] * 19), "backup_registers[0]"),
        (_set("backup_registers", [-1] + [0] * 19), "backup_registers[0]"),
        (_set("backup_registers", [True] + [0] * 19), "backup_registers[0]"),
        (_set("erase_counts", [-1] + [0] * 11, "counters"), "counters.erase_counts[0]"),
        (_set("op_count", -5, "counters"), "counters.op_count"),
        (
            lambda m: (
                json.dumps(m).replace('"device_time_s": 0.0', '"device_time_s": NaN').encode()
            ),
            "NaN",
        ),
        (
            lambda m: (
                json.dumps(m)
                .replace('"device_time_max_s": 0.0', '"device_time_max_s": 1e999')
                .encode()
            ),
            "device_time_max_s",
        ),
        (_set("device_time_s", "soon", "counters"), "counters.device_time_s"),
        (_set("state", ["application"]), "state"),
    ],
    ids=[
        "nested-60k",
        "nested-100k",
        "reg-2**80",
        "reg-minus-1",
        "reg-bool",
        "erase-negative",
        "ops-negative",
        "time-nan",
        "time-inf",
        "time-string",
        "state-list",
    ],
)
def test_hostile_image_metadata_is_a_precise_exit_2(
    cli: Any, tmp_path: Path, edit: Any, expect: str
) -> None:
    img = _image_with(tmp_path, "bad.img", edit)
    for verb in ("show", "boot"):
        r = _timed(cli, ["emu", verb, "--image", str(img)])
        assert r.exit_code == 2, (verb, r.stderr)
        assert expect in r.stderr, (verb, r.stderr)


def test_an_unknown_command_gets_the_closest_one_suggested(cli: Any) -> None:
    r = cli(["layot"])
    assert r.exit_code == 2 and "Did you mean 'layout'?" in r.stderr
    r = cli(["module", "inspet", "x"])
    assert r.exit_code == 2 and "Did you mean 'inspect'?" in r.stderr


# ------------------------------------------------------------------ 8: outputs
@pytest.mark.parametrize("mode", [0o444, 0o600])
def test_an_image_keeps_its_permissions_when_a_command_saves_it(
    cli: Any, tmp_path: Path, mode: int
) -> None:
    img = tmp_path / "dev.img"
    Device.new("electron", "stock").save(img)
    img.chmod(mode)
    assert cli(["emu", "boot", "--image", str(img)]).exit_code == 0
    assert img.stat().st_mode & 0o777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.img"]


def test_an_output_onto_a_link_or_a_device_is_refused_naming_it(cli: Any, tmp_path: Path) -> None:
    app = tmp_path / "app.bin"
    app.write_bytes(synthetic_user_app(4 * K))
    other = tmp_path / "other.bin"
    other.write_bytes(b"precious")
    link = tmp_path / "link.bin"
    link.symlink_to(other)
    for target in (link, Path("/dev/null")):
        r = cli(["module", "compress", str(app), "-o", str(target)])
        assert r.exit_code == 2 and f"refusing to replace {target}" in r.stderr, r.stderr
    assert link.is_symlink() and other.read_bytes() == b"precious"
    img_link = tmp_path / "dev-link.img"
    Device.new("electron", "stock").save(tmp_path / "dev.img")
    img_link.symlink_to(tmp_path / "dev.img")
    r = cli(["emu", "boot", "--image", str(img_link)])
    assert r.exit_code == 2 and "symbolic link" in r.stderr
    assert cli(["emu", "show", "--image", str(img_link)]).exit_code == 0  # reading is fine


def test_multi_file_outputs_are_all_or_nothing(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "build"
    out.mkdir()
    (out / "flash-map.png").mkdir()  # in the way of the last file
    r = cli(["layout", "export", "--platform", "electron", "--layout", "extended",
             "--out", str(out)])  # fmt: skip
    assert r.exit_code == 2 and "flash-map.png" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["flash-map.png"]  # nothing else written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]
