"""The reference build the tests and benchmarks share: built once, cached, locked.

One entry of the cache holds:

* ``patched-tree/``: a copy of the Device OS tree with all of flashroom's changes, its
  bootloader and system built (so :meth:`ReferenceBuild.system_build` builds more user apps
  against it in seconds);
* ``patched/``: a ``flashroom devos build`` output of that tree (bootloader, three system parts,
  the given apps, ``manifest.json``);
* ``stock/``: the given "stock" apps linked against an unpatched copy that has only the
  ``toolchain`` part (the user part alone: the system is not needed to link a user app); the
  stock tree itself is deleted afterwards (disk);
* ``reference.json``: step times, the stock link outcomes; written last, so an entry without
  it is an interrupted build and is redone.

The entry is named by :func:`cache_key`: a SHA-256 of the source tree, flashroom's patch, the
apps' sources, the devos code that builds, and the compiler version. A ``fcntl`` lock on
``<key>.lock`` makes concurrent callers (``pytest -n 2`` workers) build once: the first builds,
the others wait and then read it. Other entries are removed when a new one is built.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flashroom.devos.build import BuildRequest, SystemBuild, build
from flashroom.devos.manifest import Manifest, ModuleEntry
from flashroom.devos.patch import PatchRequest, patch_digest, run_patch
from flashroom.devos.toolchain import find_toolchain
from flashroom.devos.tree import copy_tree, tree_digest
from flashroom.errors import BuildError

#: Bumped when what an entry holds changes.
REFERENCE_FORMAT = 1
_DONE = "reference.json"


@dataclass(frozen=True)
class StockLink:
    """The outcome of linking one app against the stock (toolchain-only) tree.

    Attributes:
        app: the app's name.
        ok: it linked.
        entry: its module (when it linked).
        message: flashroom's one-line summary (when it failed).
        excerpt: the linker's own lines (when it failed).
    """

    app: str
    ok: bool
    entry: ModuleEntry | None
    message: str
    excerpt: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "ok": self.ok,
            "entry": None if self.entry is None else self.entry.to_json(),
            "message": self.message,
            "excerpt": list(self.excerpt),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StockLink:
        entry = obj.get("entry")
        return cls(
            app=str(obj["app"]),
            ok=bool(obj["ok"]),
            entry=None if entry is None else ModuleEntry.from_json(entry, "reference.json"),
            message=str(obj["message"]),
            excerpt=tuple(str(x) for x in obj["excerpt"]),
        )


@dataclass(frozen=True)
class ReferenceBuild:
    """A cache entry, ready.

    Attributes:
        root: the entry's folder.
        key: its cache key.
        out: the patched build output (``manifest.json`` and the modules).
        manifest: its manifest.
        patched_tree: the built, patched Device OS tree.
        stock_out: where the stock links wrote their modules.
        stock_links: app name -> outcome.
        timings: step -> seconds (``bootloader``, ``system``, ``app NAME``, ``stock app NAME``,
            ``patch``, ``stock patch``) as measured when the entry was built.
        built_here: True when this call built the entry (False: read from the cache).
    """

    root: Path
    key: str
    out: Path
    manifest: Manifest
    patched_tree: Path
    stock_out: Path
    stock_links: dict[str, StockLink]
    timings: dict[str, float]
    built_here: bool

    def module_path(self, name: str) -> Path:
        """The ``.bin`` of module ``name`` (``system-part3``, ``user-part-tiny``...)."""
        return self.out / self.manifest.module(name).file

    def system_build(self, jobs: int | None = 2) -> SystemBuild:
        """The patched tree as a :class:`SystemBuild`: ``build_app`` then takes seconds.

        The tree is locked per build, so parallel callers are serialised, not corrupted.
        """
        return SystemBuild.open(self.patched_tree, jobs=jobs)


def _files_digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for p in files:
            rel = p.relative_to(base).as_posix() if base.is_dir() else p.name
            h.update(f"{base.name}/{rel}".encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


#: The modules whose code decides the build's bytes (the cache key covers them; the planner,
#: packaging and the CLI do not change what is built).
BUILD_CODE = (
    "build.py",
    "changes.py",
    "manifest.py",
    "patch.py",
    "reference.py",
    "toolchain.py",
    "tree.py",
)


def cache_key(
    source_tree: Path, apps: Sequence[Path], stock_apps: Sequence[Path], gcc_version: str
) -> str:
    """The cache entry's name: a SHA-256 over everything that decides its bytes."""
    here = Path(__file__).parent
    code = [here / name for name in BUILD_CODE]
    h = hashlib.sha256()
    for part in (
        f"format {REFERENCE_FORMAT}",
        tree_digest(source_tree),
        patch_digest(),
        _files_digest(code),
        _files_digest(list(apps)),
        _files_digest(list(stock_apps)),
        gcc_version,
    ):
        h.update(part.encode() + b"\n")
    return h.hexdigest()[:24]


def reference_build(
    source_tree: str | os.PathLike[str],
    cache_root: str | os.PathLike[str],
    *,
    apps: Sequence[str | os.PathLike[str]],
    stock_apps: Sequence[str | os.PathLike[str]] = (),
    jobs: int = 2,
) -> ReferenceBuild:
    """The cached reference build for these inputs, building it first when needed.

    Args:
        source_tree: a pristine Device OS 2.3.1 tree (read only; copied).
        cache_root: the cache folder (e.g. the repository's gitignored ``build/devos-cache``).
        apps: user apps built against the patched tree.
        stock_apps: user apps linked against the stock tree (a link failure is recorded, not
            raised).
        jobs: make's ``-j``.

    Raises:
        ToolchainError: the toolchain is missing (callers such as tests skip on it).
        BuildError: the patched build failed.
    """
    src = Path(source_tree)
    root = Path(cache_root)
    app_dirs = [Path(a) for a in apps]
    stock_dirs = [Path(a) for a in stock_apps]
    toolchain = find_toolchain()
    key = cache_key(src, app_dirs, stock_dirs, toolchain.gcc_version)
    root.mkdir(parents=True, exist_ok=True)
    entry = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (entry / _DONE).is_file():
                return _load(entry, key, built_here=False)
            _remove_other_entries(root, key)
            if entry.exists():
                shutil.rmtree(entry)  # an interrupted build
            _build_entry(src, entry, app_dirs, stock_dirs, jobs)
            return _load(entry, key, built_here=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_other_entries(root: Path, key: str) -> None:
    for p in root.iterdir():
        if p.name.startswith(key):
            continue
        if p.is_dir() and len(p.name) == len(key):
            shutil.rmtree(p, ignore_errors=True)
        elif p.suffix == ".lock" and len(p.stem) == len(key):
            p.unlink(missing_ok=True)


def _build_entry(
    src: Path, entry: Path, apps: Sequence[Path], stock_apps: Sequence[Path], jobs: int
) -> None:
    entry.mkdir(parents=True)
    timings: dict[str, float] = {}
    # Built in place (never renamed afterwards): make's dependency files hold absolute paths.
    t0 = time.monotonic()
    tree = copy_tree(src, entry / "patched-tree")
    run_patch(PatchRequest(tree.root))
    timings["patch"] = time.monotonic() - t0
    result = build(BuildRequest(tree.root, entry / "patched", apps=tuple(apps), jobs=jobs))
    for t in result.timings:
        timings[t.step] = t.seconds
    stock: dict[str, StockLink] = {}
    if stock_apps:
        t0 = time.monotonic()
        stock_tree = copy_tree(src, entry / "stock-tree")
        run_patch(PatchRequest(stock_tree.root, parts=("toolchain",)))
        timings["stock patch"] = time.monotonic() - t0
        sb = SystemBuild.open(stock_tree.root, jobs=jobs)
        for app in stock_apps:
            name = app.resolve().name
            t0 = time.monotonic()
            try:
                e = sb.build_app(app, entry / "stock")
                stock[name] = StockLink(name, True, e, "", ())
            except BuildError as err:
                message = str(err)
                if err.log_path:  # keep the log: the stock tree is deleted below
                    kept = entry / "stock" / "logs" / Path(err.log_path).name
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(err.log_path, kept)
                    message = message.replace(err.log_path, str(kept))
                stock[name] = StockLink(name, False, None, message, err.excerpt)
            timings[f"stock app {name}"] = time.monotonic() - t0
        shutil.rmtree(stock_tree.root)
    record = {
        "format": REFERENCE_FORMAT,
        "jobs": result.jobs,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "stock_links": {k: v.to_json() for k, v in stock.items()},
    }
    (entry / _DONE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _load(entry: Path, key: str, *, built_here: bool) -> ReferenceBuild:
    record = json.loads((entry / _DONE).read_text(encoding="utf-8"))
    out = entry / "patched"
    return ReferenceBuild(
        root=entry,
        key=key,
        out=out,
        manifest=Manifest.from_dir(out),
        patched_tree=entry / "patched-tree",
        stock_out=entry / "stock",
        stock_links={k: StockLink.from_json(v) for k, v in record["stock_links"].items()},
        timings={k: float(v) for k, v in record["timings"].items()},
        built_here=built_here,
    )


__all__ = ["REFERENCE_FORMAT", "ReferenceBuild", "StockLink", "cache_key", "reference_build"]
