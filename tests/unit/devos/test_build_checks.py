"""What ``devos build`` refuses before it runs make, and how it reads make's output.

None of these tests compiles anything: they run on a small copy of the tree (the files the
patch and the version check read) and, for the toolchain, with an empty PATH.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flashroom.devos.build import BuildRequest, SystemBuild, _excerpt, _failure_summary, build
from flashroom.devos.patch import PatchRequest, run_patch
from flashroom.devos.toolchain import DEBIAN_PACKAGES, find_toolchain
from flashroom.errors import OutputError, SourceTreeError, ToolchainError, UsageError


def test_missing_toolchain_names_every_debian_package(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError) as e:
        find_toolchain({"PATH": str(tmp_path)})
    msg = str(e.value)
    assert "arm-none-eabi-gcc" in msg and "crc32" in msg and "xxd" in msg
    assert "gcc-arm-none-eabi libnewlib-arm-none-eabi libarchive-zip-perl xxd" in msg
    assert DEBIAN_PACKAGES == (
        "gcc-arm-none-eabi",
        "libnewlib-arm-none-eabi",
        "libarchive-zip-perl",
        "xxd",
    )


def test_missing_newlib_is_named(tmp_path: Path) -> None:
    # a fake arm-none-eabi-gcc that runs but has no nano.specs beside it
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "arm-none-eabi-g++", "arm-none-eabi-objcopy", "crc32", "xxd"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    gcc = bin_dir / "arm-none-eabi-gcc"
    gcc.write_text(
        '#!/bin/sh\ncase "$1" in -dumpversion) echo 12.2.1;; *) echo nano.specs;; esac\n'
    )
    gcc.chmod(0o755)
    with pytest.raises(ToolchainError, match=r"newlib \(nano.specs\).*libnewlib-arm-none-eabi"):
        find_toolchain({"PATH": str(bin_dir)})


def test_build_without_toolchain_fails_before_anything_is_written(
    mini_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_patch(PatchRequest(mini_tree))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "out"
    with pytest.raises(ToolchainError, match="libarchive-zip-perl"):
        build(BuildRequest(mini_tree, out))
    assert not out.exists()
    assert not (mini_tree / "build/target").exists()


def test_out_that_is_not_empty_is_refused_without_force(mini_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty; use --force"):
        build(BuildRequest(mini_tree, out))
    assert (out / "keep.txt").read_text() == "mine"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="a file of that name exists"):
        build(BuildRequest(mini_tree, f))
    with pytest.raises(OutputError, match="does not exist"):
        build(BuildRequest(mini_tree, tmp_path / "no" / "such" / "out"))


def test_bad_apps_are_refused_before_the_build(mini_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        build(BuildRequest(mini_tree, tmp_path / "o1", apps=(str(tmp_path / "nope"),)))
    a = tmp_path / "x" / "app"
    b = tmp_path / "y" / "app"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    with pytest.raises(UsageError, match="two apps named app"):
        build(BuildRequest(mini_tree, tmp_path / "o2", apps=(str(a), str(b))))
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_tree_checks_come_first(mini_tree: Path, tmp_path: Path) -> None:
    vf = mini_tree / "build/version.mk"
    vf.write_text(vf.read_text().replace("2.3.1", "2.3.0"))
    with pytest.raises(SourceTreeError, match=r"Device OS 2\.3\.0"):
        build(BuildRequest(mini_tree, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_read_only_tree_is_refused(device_os_source: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceTreeError, match="read-only"):
        build(BuildRequest(device_os_source, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_partly_applied_change_is_refused(mini_tree: Path) -> None:
    try:
        find_toolchain()
    except ToolchainError as e:
        pytest.skip(str(e))
    from flashroom.devos.changes import BY_NAME

    e = BY_NAME["parallel-make"].edits[0]
    p = mini_tree / e.path
    p.write_text(p.read_text().replace(e.old, e.new))
    with pytest.raises(SourceTreeError, match="parallel-make are only partly applied"):
        SystemBuild.open(mini_tree)


def test_stock_tree_without_the_toolchain_part_is_refused_for_gcc_12(mini_tree: Path) -> None:
    try:
        tc = find_toolchain()
    except ToolchainError as e:
        pytest.skip(str(e))
    if tc.gcc_major < 11:
        pytest.skip(f"gcc {tc.gcc_version} builds a stock tree")
    with pytest.raises(SourceTreeError, match="--part toolchain"):
        SystemBuild.open(mini_tree)


def test_without_parallel_make_the_build_runs_serially(mini_tree: Path) -> None:
    try:
        find_toolchain()
    except ToolchainError as e:
        pytest.skip(str(e))
    run_patch(PatchRequest(mini_tree, only=("gcc12-flags",)))
    sb = SystemBuild.open(mini_tree, jobs=4)
    assert sb.jobs == 1 and "-j1" in sb.notes[0] and "parallel-make" in sb.notes[0]
    run_patch(PatchRequest(mini_tree, only=("parallel-make",)))
    assert SystemBuild.open(mini_tree, jobs=4).jobs == 4
    with pytest.raises(UsageError, match="at least 1"):
        SystemBuild.open(mini_tree, jobs=0)


def test_excerpt_keeps_the_tools_lines_not_commands_or_make() -> None:
    lines = [
        "arm-none-eabi-gcc -DX -Wno-error=array-parameter -c a.c -o a.o",
        "a.cpp: In function 'void loop()':",
        "a.cpp:7:5: error: 'nope' was not declared in this scope",
        "make[2]: *** [../build/module.mk:270: a.o] Error 1",
    ]
    assert _excerpt(lines) == ("a.cpp:7:5: error: 'nope' was not declared in this scope",)
    assert _excerpt(["make: *** [x] Error 2", "y"]) == ("make: *** [x] Error 2",)
    assert _excerpt(["just", "noise"]) == ("just", "noise")


def test_overflow_summary_names_the_region_and_the_limit(tmp_path: Path) -> None:
    ex = ("region `APP_FLASH' overflowed by 77960 bytes",)
    stock = _failure_summary("app big", ex, 2, (), tmp_path / "log")
    assert "overflowed by 77960 bytes" in stock and "128 KB" in stock and "0x080a0000" in stock
    patched = _failure_summary("app big", ex, 2, ("user-256k",), tmp_path / "log")
    assert "256 KB" in patched and "0x080c0000" in patched
    assert "make failed with status 2" in _failure_summary("system", ("x",), 2, (), tmp_path)


def test_build_app_refuses_bad_app_folders_and_names(mini_tree: Path, tmp_path: Path) -> None:
    try:
        find_toolchain()
    except ToolchainError as e:
        pytest.skip(str(e))
    run_patch(PatchRequest(mini_tree))
    sb = SystemBuild.open(mini_tree)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("no sources")
    with pytest.raises(UsageError, match=r"no \.cpp, \.c or \.ino file"):
        sb.build_app(empty, tmp_path / "out")
    app = tmp_path / "ok"
    app.mkdir()
    (app / "app.cpp").write_text("void setup() {}\nvoid loop() {}\n")
    for bad in ("two words", "../up", "-dash", "a/b"):
        with pytest.raises(UsageError, match="expected letters, digits"):
            sb.build_app(app, tmp_path / "out", name=bad)
    with pytest.raises(UsageError, match="not a directory"):
        sb.build_app(tmp_path / "missing", tmp_path / "out")
    assert not (mini_tree / "build/target").exists()  # refused before make
