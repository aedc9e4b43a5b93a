"""A Device OS source tree on disk: is it one, which version, can flashroom write to it.

flashroom patches and builds exactly one Device OS version, 2.3.1 (spec 9, 10): its hunks are
written against that release's text and its build rules against that release's makefiles. The
version is read where Device OS itself keeps it, ``build/version.mk`` (``VERSION_STRING``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flashroom.errors import SourceTreeError

#: The Device OS release flashroom's patch and build rules are written for.
SUPPORTED_VERSION = "2.3.1"
#: Where Device OS keeps its version (``VERSION_STRING = 2.3.1``).
VERSION_FILE = "build/version.mk"
#: Files whose presence marks a Device OS tree that can build Electron (spec 10).
_MARKERS = ("build/version.mk", "modules/electron/modular.mk", "bootloader/makefile")

_VERSION_RE = re.compile(r"^\s*VERSION_STRING\s*[:?]?=\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class DeviceOsTree:
    """A checked Device OS source tree.

    Attributes:
        root: the tree's top directory (absolute).
        version: ``VERSION_STRING`` of ``build/version.mk``.
    """

    root: Path
    version: str

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, require_version: bool = True) -> DeviceOsTree:
        """Check that ``path`` is a Device OS tree (of version 2.3.1 unless told otherwise).

        Raises:
            SourceTreeError: missing, not a directory, not a Device OS tree, or another
                version (the message names the version found and the file it is in).
        """
        root = Path(path)
        if not root.exists():
            raise SourceTreeError(f"{root}: no such directory (expected a Device OS source tree)")
        if not root.is_dir():
            raise SourceTreeError(f"{root}: not a directory (expected a Device OS source tree)")
        missing = [m for m in _MARKERS if not (root / m).is_file()]
        if missing:
            raise SourceTreeError(
                f"{root}: not a Device OS source tree ({', '.join(missing)} not found); expected "
                f"a Device OS {SUPPORTED_VERSION} checkout such as ../shared/device-os/v2.3.1"
            )
        version_file = root / VERSION_FILE
        try:
            text = version_file.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise SourceTreeError(f"{version_file}: cannot read ({e.strerror or e})") from None
        m = _VERSION_RE.search(text)
        if m is None:
            raise SourceTreeError(
                f"{version_file}: no VERSION_STRING line; expected 'VERSION_STRING = "
                f"{SUPPORTED_VERSION}'"
            )
        version = m.group(1)
        if require_version and version != SUPPORTED_VERSION:
            raise SourceTreeError(
                f"{root} is Device OS {version} (VERSION_STRING in {version_file}); flashroom's "
                f"patch and build rules are written for {SUPPORTED_VERSION} only"
            )
        return cls(root.resolve(), version)

    def path(self, rel: str) -> Path:
        """The absolute path of ``rel`` (a ``/``-separated path inside the tree)."""
        return self.root / rel


def is_writable(path: Path) -> bool:
    """True when flashroom may write ``path`` (a file or a directory).

    Besides ``os.access``, a file or directory without any write permission bit counts as
    read-only even for root, who could write it anyway: the shared, read-only Device OS tree
    (mode 0555/0444) must never be patched in place by a CI job that runs as root.
    """
    try:
        st = path.stat()
    except OSError:
        return False
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return False
    return os.access(path, os.W_OK)


def check_writable(tree: DeviceOsTree, rel_paths: Iterable[str]) -> None:
    """Refuse, before anything is written, when one of the files (or its folder) is read-only.

    flashroom replaces a file atomically (a temporary file beside it, then a rename), so the
    folder must be writable as well as the file.

    Raises:
        SourceTreeError: naming the tree and the first read-only path.
    """
    for rel in rel_paths:
        p = tree.path(rel)
        for q in (p, p.parent):
            if not is_writable(q):
                raise SourceTreeError(
                    f"{tree.root} is read-only: cannot write {q} (copy the tree first, e.g. "
                    f"'cp -r {tree.root} DIR && chmod -R u+w DIR', or use "
                    "flashroom.devos.tree.copy_tree)"
                )


def copy_tree(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> DeviceOsTree:
    """Copy a Device OS tree to ``dst`` (which must not exist) and make the copy writable.

    The shared tree is read-only (files 0444, folders 0555); a plain copy keeps those modes,
    which neither the patch nor the build can work in. ``build/target`` (build products) is not
    copied.

    Raises:
        SourceTreeError: ``src`` is not a Device OS tree, or ``dst`` exists.
    """
    source = DeviceOsTree.open(src, require_version=False)
    target = Path(dst)
    if target.exists():
        raise SourceTreeError(f"{target}: already exists; copy_tree needs a new directory")
    shutil.copytree(
        source.root,
        target,
        symlinks=True,
        ignore=lambda d, names: ["target"] if Path(d) == source.root / "build" else [],
    )
    for dirpath, dirnames, filenames in os.walk(target):
        for name in (*dirnames, *filenames):
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
    target.chmod(target.stat().st_mode | stat.S_IWUSR)
    return DeviceOsTree.open(target, require_version=False)


def tree_digest(root: str | os.PathLike[str], *, exclude_dirs: tuple[str, ...] = ()) -> str:
    """SHA-256 over every file's relative path and content (symlinks by their target).

    ``build/target`` (build products) and ``.git`` are always left out, and so are the folders
    in ``exclude_dirs`` (relative, ``/``-separated). Used as a cache key: two trees with the
    same digest build the same bytes (Device OS builds are reproducible, spec 10).
    """
    base = Path(root)
    skip = {"build/target", ".git", *exclude_dirs}
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = Path(dirpath).relative_to(base).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if rel_dir + d not in skip)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            rel = rel_dir + name
            h.update(rel.encode() + b"\0")
            if p.is_symlink():
                h.update(b"L" + os.readlink(p).encode() + b"\0")
            else:
                h.update(b"F" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def find_shared_dir(start: str | os.PathLike[str]) -> Path | None:
    """The ``shared/`` folder beside a flashroom checkout: ``$FLASHROOM_SHARED`` when set, else
    the first ``shared`` folder holding ``device-os/`` found in ``start``'s ancestors (a git
    worktree may sit one level deeper than the main checkout)."""
    env = os.environ.get("FLASHROOM_SHARED")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    for parent in Path(start).resolve().parents:
        cand = parent / "shared"
        if (cand / "device-os").is_dir():
            return cand
    return None


#: A file every copy of the real Electron binaries holds (shared/fixtures/device-os).
_BINARIES_MARKER = "electron-bootloader@v2.3.1.bin"


def find_device_os_binaries(start: str | os.PathLike[str]) -> Path | None:
    """The real Electron binaries built from the 2.3.1 source (``shared/fixtures/device-os``):
    ``$FLASHROOM_DEVICE_OS_FIXTURES`` when set, else the first such folder in ``start``'s
    ancestors; None when there is none (callers skip, and say so)."""
    env = os.environ.get("FLASHROOM_DEVICE_OS_FIXTURES")
    if env:
        p = Path(env)
        return p if (p / _BINARIES_MARKER).is_file() else None
    for parent in Path(start).resolve().parents:
        cand = parent / "shared" / "fixtures" / "device-os"
        if (cand / _BINARIES_MARKER).is_file():
            return cand
    return None


__all__ = [
    "SUPPORTED_VERSION",
    "VERSION_FILE",
    "DeviceOsTree",
    "check_writable",
    "copy_tree",
    "find_device_os_binaries",
    "find_shared_dir",
    "is_writable",
    "tree_digest",
]
