from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from flashroom.atomicfile import write_bytes_atomic, write_file_set, write_text_atomic
from flashroom.errors import OutputError


def test_written_file_gets_ordinary_permissions_not_mkstemp_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "report.md", "hello\n")
    finally:
        os.umask(old)
    assert path.read_text() == "hello\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "dev.img"
    target.write_bytes(b"old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["dev.img"]


# ------------------------------------------------------------------ issue 12 item 8
@pytest.mark.parametrize("mode", [0o444, 0o600, 0o640, 0o755])
def test_a_replaced_file_keeps_its_permission_bits(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "dev.img"
    target.write_bytes(b"old")
    target.chmod(mode)
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_an_explicit_mode_wins_and_a_new_file_gets_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        fresh = write_bytes_atomic(tmp_path / "a", b"x")
        script = write_bytes_atomic(tmp_path / "s.sh", b"#!/bin/sh\n", mode=0o755)
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    assert stat.S_IMODE(script.stat().st_mode) == 0o750


def test_what_is_not_a_regular_file_is_never_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.bin"
    real.write_bytes(b"keep")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    for target, kind in ((link, "symbolic link"), (fifo, "FIFO"), (tmp_path / "dir", "directory"),
                         (Path("/dev/null"), "character device")):  # fmt: skip
        with pytest.raises(OutputError, match=kind) as e:
            write_bytes_atomic(target, b"new")
        assert str(target) in str(e.value)
    assert link.is_symlink() and real.read_bytes() == b"keep"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_the_folder_of_an_output_file_is_never_created(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_bytes_atomic(tmp_path / "no" / "such" / "x.bin", b"x")
    assert list(tmp_path.iterdir()) == []


def test_a_new_file_set_appears_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "export"
    files = {"a.ld": b"1", "b.h": b"2", "pics/c.png": b"3"}
    paths = write_file_set(out, files)
    assert [p.read_bytes() for p in paths] == [b"1", b"2", b"3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no staging left
    real = os.fsync
    calls = [0]

    def fail_third(fd: int) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fail_third)
    with pytest.raises(OutputError, match="No space left"):
        write_file_set(tmp_path / "new", files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_file_set_into_an_existing_folder_is_put_back_when_a_move_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "parts"
    write_file_set(out, {"part1.bin": b"old1", "part2.bin": b"old2"})
    (out / "keep.txt").write_text("mine")
    real = os.replace
    calls = [0]

    def fail_second(src: Any, dst: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OutputError, match="nothing was changed"):
        write_file_set(out, {"part1.bin": b"new1", "part2.bin": b"new2", "part3.bin": b"n3"})
    monkeypatch.setattr(os, "replace", real)
    assert (out / "part1.bin").read_bytes() == b"old1"  # put back
    assert (out / "part2.bin").read_bytes() == b"old2"
    assert not (out / "part3.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "part1.bin", "part2.bin"]


def test_a_file_set_with_a_target_in_the_way_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "b.h").mkdir()  # a folder where a file goes
    with pytest.raises(OutputError, match="directory"):
        write_file_set(out, {"a.ld": b"1", "b.h": b"2"})
    assert sorted(p.name for p in out.iterdir()) == ["b.h"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
