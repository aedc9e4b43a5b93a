"""``ota diff``, ``ota serve --base`` + ``emu connect`` (delta over UDP), ``emu ota`` of a patch,
``emu sweep --scenario delta-ota`` and ``emu badinput`` stream cases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flashroom.emu.device import Device
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.evolve import small_change
from flashroom.particle.stream import StreamHeader, decode_stream


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    old = synthetic_user_app(96 * 1024, version=5, seed=41)
    a, b = tmp_path / "v5.bin", tmp_path / "v6.bin"
    a.write_bytes(old)
    b.write_bytes(small_change(old, seed=1))
    return a, b


@pytest.fixture
def device(tmp_path: Path, pair: tuple[Path, Path]) -> Path:
    path = tmp_path / "dev.img"
    dev = Device.new("electron", "extended")
    dev.install(pair[0].read_bytes())
    dev.save(path)
    return path


def test_ota_diff_writes_a_patch_that_rebuilds_new_and_reports_ratios(
    cli: Any, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    out = tmp_path / "p.patch"
    r = cli(["ota", "diff", str(pair[0]), str(pair[1]), "-o", str(out), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    j = r.json()
    assert j["patch"]["path"] == str(out) and j["patch"]["size"] == out.stat().st_size
    assert j["patch"]["ratio"] < 0.03 and j["patch"]["encoding"] == "delta_deflate"
    assert j["compressed"]["deflate"]["ratio"] < 1 and j["raw"]["size"] == j["new"]["size"]
    assert set(j["detools"]) == {"lzma", "heatshrink"}
    assert decode_stream(out.read_bytes(), pair[0].read_bytes()) == pair[1].read_bytes()
    text = cli(["ota", "diff", str(pair[0]), str(pair[1]), "-o", str(out), "--compression", "crle"])
    assert text.exit_code == 0 and "of the" in text.stdout and "detools' own patch" in text.stdout
    assert StreamHeader.from_bytes(out.read_bytes()).param == 2  # crle


def test_ota_diff_refuses_a_file_that_is_not_a_module(
    cli: Any, tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 10)
    r = cli(["ota", "diff", str(junk), str(pair[1]), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "OLD" in r.stderr and "not a valid module" in r.stderr
    junk.write_bytes(b"\x00" * 1000)
    r = cli(["ota", "diff", str(pair[0]), str(junk), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "NEW" in r.stderr and "not a Particle module" in r.stderr
    assert not (tmp_path / "x").exists()


def _serve(firmware: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "flashroom", "ota", "serve", "--bind", "127.0.0.1:0",
            "--firmware", str(firmware), "--ack-timeout", "0.2", "--format", "json",
            "--max-sessions", "1", "--insecure", *extra]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    m = re.search(r"coap://[\d.]+:\d+", proc.stderr.readline())
    if m is None:
        proc.kill()
        raise AssertionError("server did not start")
    return proc, m.group(0)


@pytest.mark.parametrize(
    ("serve_extra", "connect_extra", "encoding"),
    [
        (("--base",), (), "delta_deflate"),
        ((), (), "lzma"),
        (("--base",), ("--no-stream",), "raw"),
        (("--base", "--no-stream"), (), "raw"),
    ],
)
def test_serve_picks_per_device_and_connect_applies_what_it_gets(
    cli: Any,
    pair: tuple[Path, Path],
    device: Path,
    serve_extra: tuple[str, ...],
    connect_extra: tuple[str, ...],
    encoding: str,
) -> None:
    extra = [x for a in serve_extra for x in ((a, str(pair[0])) if a == "--base" else (a,))]
    proc, url = _serve(pair[1], *extra)
    try:
        r = cli(["emu", "connect", url, "--image", str(device), "--ack-timeout", "0.2",
                 "--link", "3g", "--format", "json", *connect_extra])  # fmt: skip
        assert r.exit_code == 0, r.stderr
        served = json.loads(proc.communicate(timeout=60)[0])
    finally:
        if proc.poll() is None:
            proc.kill()
    j = r.json()
    new = pair[1].read_bytes()
    assert j["result"] == "applied" and j["encoding"] == encoding
    assert j["written_bytes"] == len(new)
    if encoding == "raw":
        assert j["received_bytes"] == len(new)
    else:
        assert j["received_bytes"] < len(new)
    assert served["session_records"][0]["encoding"] == encoding
    assert served["session_records"][0]["module_bytes"] == len(new)
    if "--base" in serve_extra and "--no-stream" not in serve_extra:
        assert served["offer"]["bases"][0]["delta_bytes"] > 0
    assert Device.load(device).user_part_bytes() == new


def test_serve_refuses_a_base_that_is_not_a_module(cli: Any, tmp_path: Path, pair: Any) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xff" * 64)
    r = cli(["ota", "serve", "--firmware", str(pair[1]), "--base", str(junk), "--bind",
             "127.0.0.1:0"])  # fmt: skip
    assert r.exit_code == 2 and "--base" in r.stderr


def test_emu_ota_applies_a_patch_file_and_a_cut_in_the_rebuild_keeps_the_old_app(
    cli: Any, tmp_path: Path, pair: tuple[Path, Path], device: Path
) -> None:
    patch = tmp_path / "p.patch"
    assert cli(["ota", "diff", str(pair[0]), str(pair[1]), "-o", str(patch)]).exit_code == 0
    before = device.read_bytes()
    cut = cli(["emu", "ota", "--image", str(device), str(patch), "--cut-at-op", "30"])
    assert cut.exit_code == 1
    assert cli(["emu", "boot", "--image", str(device)]).exit_code == 0
    assert Device.load(device).user_part_bytes() == pair[0].read_bytes()
    device.write_bytes(before)
    r = cli(["emu", "ota", "--image", str(device), str(patch), "--format", "json"])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.json()["running"]["module_version"] == 6


def test_emu_sweep_delta_ota_runs_from_the_cli(cli: Any) -> None:
    r = cli(["emu", "sweep", "--scenario", "delta-ota", "--granularity", "chunk",
             "--app-size", "64K", "--stride", "25", "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    j = r.json()
    assert j["ok"] and j["counts"]["brick"] == 0 and j["config"]["scenario"] == "delta-ota"


def test_emu_badinput_runs_a_stream_case(cli: Any) -> None:
    r = cli(["emu", "badinput", "--case", "stream_zip_bomb", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    (case,) = r.json()["cases"]
    assert case["layer"] == "stream" and case["code"] == -190 and case["app_unchanged"]
