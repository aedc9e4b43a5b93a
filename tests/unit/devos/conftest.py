"""Helpers for the devos tests: small and full writable copies of the Device OS tree."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from flashroom.devos.changes import CHANGES
from flashroom.devos.tree import copy_tree

#: What DeviceOsTree.open looks for, plus every file a change touches.
MINI_FILES = sorted(
    {"build/version.mk", "modules/electron/modular.mk", "bootloader/makefile"}
    | {e.path for c in CHANGES for e in c.edits}
)


@pytest.fixture
def mini_tree(device_os_source: Path, tmp_path: Path) -> Path:
    """A writable tree with only the files the patch reads and writes (fast to copy)."""
    root = tmp_path / "dos"
    for rel in MINI_FILES:
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(device_os_source / rel, dst)
    return root


@pytest.fixture
def full_tree(device_os_source: Path, tmp_path: Path) -> Path:
    """A writable copy of the whole 2.3.1 tree (23 MB)."""
    return copy_tree(device_os_source, tmp_path / "dos-full").root


def _snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (p.read_bytes(), st.st_mode, st.st_mtime_ns)
    return out


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, tuple[bytes, int, int]]]:
    """``snapshot(root)``: every file's bytes, mode and mtime, to prove nothing was written."""
    return _snapshot


@pytest.fixture
def stock_out(device_os_stock_fixtures: Path, tmp_path: Path) -> Path:
    """A build output folder made from the stock v2.3.1 binaries of the shared fixtures, with
    the manifest ``devos build`` writes (no toolchain needed)."""
    from flashroom.devos.manifest import (
        ELECTRON_BUILD_DIRS,
        Manifest,
        ModuleEntry,
        order_entries,
        verified_module,
    )

    out = tmp_path / "stock-out"
    out.mkdir()
    entries = []
    for name, build_dir, app in (
        ("bootloader", "bootloader", None),
        ("system-part1", "system-part1", None),
        ("system-part2", "system-part2", None),
        ("system-part3", "system-part3", None),
        ("user-part-tinker", "user-part", "tinker"),
    ):
        stem = "user-part" if app else name
        data = (device_os_stock_fixtures / f"electron-{stem}@v2.3.1.bin").read_bytes()
        (out / f"{name}.bin").write_bytes(data)
        shutil.copyfile(
            device_os_stock_fixtures / f"electron-{stem}@v2.3.1.elf", out / f"{name}.elf"
        )
        m = verified_module(data, name, ELECTRON_BUILD_DIRS[build_dir])
        entries.append(
            ModuleEntry.from_module(
                m, name=name, file=f"{name}.bin", elf=f"{name}.elf", build_dir=build_dir, app=app
            )
        )
    manifest = Manifest(
        "2.3.1", (), tuple(c.name for c in CHANGES), "stock", order_entries(entries)
    )
    (out / "manifest.json").write_text(manifest.dumps())
    return out
