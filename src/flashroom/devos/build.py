"""Build Device OS 2.3.1 for Electron with its own makefiles, and collect verified modules.

The steps are Device OS's (spec 10), run from the tree's top folder:

* bootloader: ``make -C bootloader PLATFORM=electron`` ->
  ``build/target/bootloader/platform-10-m-lto/``;
* system (and Tinker): ``make -C modules/electron PLATFORM=electron`` ->
  ``build/target/<module>/platform-10-m/``;
* a user app alone, once the system libraries are built: ``make -C modules/electron/user-part
  PLATFORM=electron APPDIR=... TARGET_DIR=... TARGET_FILE=...`` (Device OS's top-level ``main/``
  folder, which spec 10 names for this, is not in the pruned 2.3.1 tree; its makefile runs this
  same user-part build).

``-jN`` is passed only when flashroom's ``parallel-make`` change is applied: a stock tree fails
a clean ``make -j2`` (spec 10). Every module is parsed with flashroom's own parser and refused
unless it verifies. :class:`SystemBuild` builds the system once and then user apps in seconds;
:func:`build` writes a whole output folder atomically (a temporary folder beside it, renamed at
the end).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flashroom.atomicfile import write_text_atomic
from flashroom.devos.changes import CHANGES
from flashroom.devos.manifest import (
    ELECTRON_BUILD_DIRS,
    MANIFEST_NAME,
    Manifest,
    ModuleEntry,
    order_entries,
    verified_module,
)
from flashroom.devos.patch import ChangeState, status
from flashroom.devos.toolchain import Toolchain, find_toolchain
from flashroom.devos.tree import DeviceOsTree, is_writable, tree_digest
from flashroom.errors import BuildError, ManifestError, OutputError, SourceTreeError, UsageError
from flashroom.progress import ProgressFn

#: ``progress(done, total)``: compiled objects so far, and the estimate of all of them.

#: Objects a clean build compiles (measured on v2.3.1: the "Building ... file:" lines of
#: make's output); the progress bar's total. Incremental builds compile fewer.
EXPECTED_OBJECTS = {"bootloader": 87, "system": 441}
#: The user-part module's own objects beside the app's sources (measured).
_USER_PART_OBJECTS = 7

#: flashroom's working folder inside the tree: lock, staged apps, logs, build stamp.
WORK_DIR = "build/flashroom"
_STAMP = "build/target/flashroom-stamp.json"

_BUILDING_RE = re.compile(r"^Building (?:c |cpp )?file: ")
_APP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OVERFLOW_RE = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
#: A compiler or linker diagnostic (not a command line: those hold -Wno-error=...).
_ERROR_RE = re.compile(
    r"(: (?:fatal )?error:|^error: |collect2: error|overflowed by|will not fit in region|"
    r"undefined reference to|multiple definition of|No rule to make target|cannot find -l|"
    r"ASSERT|Error: )"
)
_COMMAND_RE = re.compile(r"^(?:\S*/)?arm-none-eabi-\S+ ")
_EXCERPT_LINES = 12


@dataclass(frozen=True)
class StepTiming:
    """How long one make step took and how many objects it compiled."""

    step: str
    seconds: float
    objects: int

    def to_json(self) -> dict[str, object]:
        return {"step": self.step, "seconds": round(self.seconds, 3), "objects": self.objects}


@dataclass(frozen=True)
class _Step:
    name: str
    directory: str  # relative to the tree
    variables: tuple[tuple[str, str], ...]
    expected_objects: int


def _clean_env(toolchain: Toolchain) -> dict[str, str]:
    """The build's environment: PATH, HOME, a C locale, and nothing a parent make or the user's
    shell set (MAKEFLAGS from ``make test``, APPDIR, PLATFORM...) that Device OS would read."""
    env = {"PATH": toolchain.path, "LC_ALL": "C", "LANG": "C"}
    for k in ("HOME", "TMPDIR"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def _excerpt(lines: Sequence[str]) -> tuple[str, ...]:
    """The tools' own first error lines: compiler and linker lines first, make's last."""
    tool = [
        ln
        for ln in lines
        if _ERROR_RE.search(ln) and not ln.startswith("make") and not _COMMAND_RE.match(ln)
    ]
    if tool:
        return tuple(tool[:_EXCERPT_LINES])
    made = [ln for ln in lines if "***" in ln]
    if made:
        return tuple(made[:_EXCERPT_LINES])
    return tuple(lines[-_EXCERPT_LINES:])


class SystemBuild:
    """A Device OS tree whose bootloader and system are built; user apps then build in seconds.

    Make one with :meth:`prepare`; :meth:`build_app` builds a user app against the system;
    :meth:`collect` copies the bootloader and system modules out, verified.

    Attributes:
        tree: the tree.
        toolchain: the tools used.
        jobs: make's ``-j`` (1 when the parallel-make change is not applied).
        applied, missing: flashroom's changes applied and not applied in the tree.
        timings: one per make step run so far.
        cleaned: True when :meth:`prepare` had to remove stale build products first.
        notes: things the caller should tell the user (``-j1`` because...).
    """

    def __init__(
        self,
        tree: DeviceOsTree,
        toolchain: Toolchain,
        jobs: int,
        applied: tuple[str, ...],
        missing: tuple[str, ...],
        notes: tuple[str, ...] = (),
    ):
        self.tree = tree
        self.toolchain = toolchain
        self.jobs = jobs
        self.applied = applied
        self.missing = missing
        self.notes = list(notes)
        self.timings: list[StepTiming] = []
        self.cleaned = False
        self.progress: ProgressFn | None = None
        self._done = 0  # objects compiled so far, over every step (for one progress bar)
        self._total = 0  # their estimate

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def open(cls, tree_path: str | os.PathLike[str], *, jobs: int | None = None) -> SystemBuild:
        """Check the tree and the toolchain; build nothing.

        Raises:
            SourceTreeError: not a 2.3.1 tree, read-only, or partly patched.
            ToolchainError: a tool is missing (names the Debian packages).
            UsageError: ``jobs`` < 1.
        """
        if jobs is not None and jobs < 1:
            raise UsageError(f"--jobs {jobs}: expected at least 1")
        tree = DeviceOsTree.open(tree_path)
        build_dir = tree.path("build")
        if not is_writable(build_dir) or not is_writable(tree.root):
            raise SourceTreeError(
                f"{tree.root} is read-only: the build writes into {build_dir}/target (copy the "
                "tree first, e.g. flashroom.devos.tree.copy_tree)"
            )
        toolchain = find_toolchain()
        states = {s.change.name: s.state for s in status(tree, CHANGES)}
        partial = [n for n, st in states.items() if st is ChangeState.PARTIAL]
        if partial:
            raise SourceTreeError(
                f"{tree.root}: flashroom's change(s) {', '.join(partial)} are only partly "
                f"applied; run 'flashroom devos patch {tree.root}' first"
            )
        applied = tuple(n for n, st in states.items() if st is ChangeState.APPLIED)
        missing = tuple(n for n, st in states.items() if st is not ChangeState.APPLIED)
        if toolchain.gcc_major >= 11 and "gcc12-flags" not in applied:
            raise SourceTreeError(
                f"{tree.root}: Device OS 2.3.1 does not build with gcc {toolchain.gcc_version} "
                "without flashroom's gcc12-flags change (docs/real-electron.md#2-build); apply "
                "the toolchain part "
                f"first: flashroom devos patch {tree.root} --part toolchain"
            )
        notes = []
        n = jobs if jobs is not None else (os.cpu_count() or 1)
        if "parallel-make" not in applied and n > 1:
            notes.append(
                f"make runs with -j1, not -j{n}: the parallel-make change is not applied and a "
                "clean make -j fails on stock 2.3.1 (docs/real-electron.md#2-build)"
            )
            n = 1
        return cls(tree, toolchain, n, applied, missing, tuple(notes))

    @classmethod
    def prepare(
        cls,
        tree_path: str | os.PathLike[str],
        *,
        jobs: int | None = None,
        bootloader: bool = True,
        progress: ProgressFn | None = None,
        planned_apps: Sequence[str | os.PathLike[str]] = (),
    ) -> SystemBuild:
        """Build the bootloader (optional) and the system (with Tinker) in the tree.

        ``progress`` keeps being called by later :meth:`build_app` calls; ``planned_apps``
        (folders) only make its total include them from the start.

        Stale build products are removed first when the tree changed since flashroom last built
        it (Device OS's makefiles do not rebuild an object when only a makefile define changed).

        Raises:
            SourceTreeError, ToolchainError, UsageError: see :meth:`open`.
            BuildError: a step failed (the tool's first error lines in ``excerpt``).
        """
        sb = cls.open(tree_path, jobs=jobs)
        sb.progress = progress
        steps = []
        if bootloader:
            steps.append(_Step("bootloader", "bootloader", (), EXPECTED_OBJECTS["bootloader"]))
        steps.append(_Step("system", "modules/electron", (), EXPECTED_OBJECTS["system"]))
        sb._total = sum(s.expected_objects for s in steps) + sum(
            _app_estimate(Path(a)) for a in planned_apps
        )
        with sb._locked():
            sb._clean_if_stale()
            sb._run_steps(steps, progress)
            sb._write_stamp()
        return sb

    # --- steps -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One build at a time in a tree (parallel callers share build/target)."""
        work = self.tree.path(WORK_DIR)
        work.mkdir(parents=True, exist_ok=True)
        with open(work / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _digest(self) -> str:
        return tree_digest(self.tree.root, exclude_dirs=(WORK_DIR,))

    def _clean_if_stale(self) -> None:
        target = self.tree.path("build/target")
        if not target.exists():
            return
        stamp = self.tree.path(_STAMP)
        try:
            recorded = json.loads(stamp.read_text())["tree_digest"]
        except (OSError, ValueError, KeyError, TypeError):
            recorded = None
        if recorded != self._digest():
            shutil.rmtree(target)
            self.cleaned = True

    def _write_stamp(self) -> None:
        write_text_atomic(self.tree.path(_STAMP), json.dumps({"tree_digest": self._digest()}))

    def _log_path(self, step: str) -> Path:
        logs = self.tree.path(WORK_DIR) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / (re.sub(r"[^A-Za-z0-9_.-]", "_", step) + ".log")

    def _run_steps(self, steps: Sequence[_Step], progress: ProgressFn | None) -> None:
        report = progress if progress is not None else self.progress
        self._total = max(self._total, self._done + sum(s.expected_objects for s in steps))
        for s in steps:
            start = self._done

            def step_progress(done: int, _expected: int, start: int = start) -> None:
                if report is not None:
                    self._total = max(self._total, start + done + 1)
                    report(start + done, self._total)

            objects = self._run(s, step_progress)
            # an incremental build compiles fewer objects than estimated: count the estimate
            self._done = start + max(objects, s.expected_objects)
            if report is not None:
                self._total = max(self._total, self._done)
                report(self._done, self._total)

    def _run(self, step: _Step, progress: ProgressFn) -> int:
        argv = ["make", "-C", step.directory, "PLATFORM=electron", f"-j{self.jobs}"]
        argv += [f"{k}={v}" for k, v in step.variables]
        log_path = self._log_path(step.name)
        lines: list[str] = []
        objects = 0
        t0 = time.monotonic()
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            log.write("$ " + " ".join(argv) + f"   (in {self.tree.root})\n")
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.tree.root,
                    env=_clean_env(self.toolchain),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                )
            except OSError as e:
                raise BuildError(f"{step.name}: cannot run make ({e})", step=step.name) from None
            if proc.stdout is None:  # pragma: no cover - PIPE always gives a stream
                raise BuildError(f"{step.name}: no output stream from make", step=step.name)
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip("\n")
                lines.append(line)
                if _BUILDING_RE.match(line):
                    objects += 1
                    progress(objects, step.expected_objects)
            rc = proc.wait()
        seconds = time.monotonic() - t0
        if rc != 0:
            excerpt = _excerpt(lines)
            raise BuildError(
                _failure_summary(step.name, excerpt, rc, self.applied, log_path),
                step=step.name,
                excerpt=excerpt,
                log_path=str(log_path),
            )
        self.timings.append(StepTiming(step.name, seconds, objects))
        return objects

    # --- outputs -----------------------------------------------------------------------------

    def _copy_module(
        self, bin_path: Path, dest: Path, name: str, build_dir: str, app: str | None
    ) -> ModuleEntry:
        expect = ELECTRON_BUILD_DIRS[build_dir]
        try:
            data = bin_path.read_bytes()
        except OSError as e:
            raise BuildError(
                f"{build_dir}: the build left no {bin_path} ({e.strerror or e})", step=build_dir
            ) from None
        try:
            m = verified_module(data, str(bin_path), expect)
        except ManifestError as e:
            raise BuildError(f"{name}: {e}", step=name) from None
        (dest / f"{name}.bin").write_bytes(data)
        elf_src = bin_path.with_suffix(".elf")
        elf: str | None = None
        if elf_src.is_file():
            elf = f"{name}.elf"
            # symbols kept (the emulator and the tests read them), debug info dropped
            r = subprocess.run(
                [str(self.toolchain.objcopy), "--strip-debug", str(elf_src), str(dest / elf)],
                capture_output=True,
                text=True,
                env=_clean_env(self.toolchain),
            )
            if r.returncode != 0:
                raise BuildError(
                    f"{name}: objcopy --strip-debug failed: {r.stderr.strip()}", step=name
                )
        return ModuleEntry.from_module(
            m, name=name, file=f"{name}.bin", elf=elf, build_dir=build_dir, app=app
        )

    def collect(
        self, dest: str | os.PathLike[str], *, bootloader: bool = True, tinker: bool = False
    ) -> list[ModuleEntry]:
        """Copy the bootloader and the three system parts (and Tinker) into ``dest``, verified.

        Names follow Device OS's build folders (``system-part1.bin`` holds idx 3, spec 1.4);
        each entry records the module it really holds.

        Raises:
            BuildError: a module is missing or does not verify.
        """
        d = Path(dest)
        d.mkdir(parents=True, exist_ok=True)
        target = self.tree.path("build/target")
        out = []
        if bootloader:
            b = target / "bootloader/platform-10-m-lto/bootloader.bin"
            out.append(self._copy_module(b, d, "bootloader", "bootloader", None))
        for part in ("system-part1", "system-part2", "system-part3"):
            p = target / part / "platform-10-m" / f"{part}.bin"
            out.append(self._copy_module(p, d, part, part, None))
        if tinker:
            p = target / "user-part/platform-10-m/user-part.bin"
            out.append(self._copy_module(p, d, "user-part-tinker", "user-part", "tinker"))
        return out

    def build_app(
        self,
        appdir: str | os.PathLike[str],
        dest: str | os.PathLike[str],
        *,
        name: str | None = None,
        progress: ProgressFn | None = None,
    ) -> ModuleEntry:
        """Build the user app in ``appdir`` against this system; write ``user-part-NAME.bin``
        and ``.elf`` into ``dest``.

        The app's sources are copied into ``build/flashroom/apps/NAME-<hash>`` inside the tree
        first: Device OS keys an app's objects by its folder name only, so two apps of the same
        name (or two versions of one app) would otherwise share stale objects.

        Args:
            appdir: a folder of ``.cpp``/``.c``/``.h`` files (Device OS ``APPDIR``).
            name: the app's name (default: the folder's name).

        Raises:
            UsageError: ``appdir`` is not a folder with sources, or the name is not a plain name.
            BuildError: compile or link error (the tool's lines in ``excerpt``); an app too
                large for the user region says so with the linker's overflow message.
        """
        src = Path(appdir)
        if not src.is_dir():
            raise UsageError(f"{src}: not a directory (expected a user app folder, APPDIR)")
        app = name or src.resolve().name
        if not _APP_NAME_RE.match(app):
            raise UsageError(
                f"app name {app!r}: expected letters, digits, '_', '-' or '.' (it names files)"
            )
        files = sorted(p for p in src.rglob("*") if p.is_file() and "target" not in p.parts)
        if not any(p.suffix in (".c", ".cpp", ".ino", ".S") for p in files):
            raise UsageError(f"{src}: no .cpp, .c or .ino file (expected a user app folder)")
        h = hashlib.sha256()
        for p in files:
            h.update(p.relative_to(src).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        digest = h.hexdigest()[:12]
        d = Path(dest)
        d.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._clean_if_stale()
            staged = self.tree.path(WORK_DIR) / "apps" / f"{app}-{digest}"
            if not staged.is_dir():
                tmp = Path(tempfile.mkdtemp(prefix=f".{app}.", dir=staged.parent.parent))
                for p in files:
                    q = tmp / p.relative_to(src)
                    q.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, q)
                staged.parent.mkdir(parents=True, exist_ok=True)
                tmp.rename(staged)
            with tempfile.TemporaryDirectory(prefix=f".{app}-target.", dir=d) as target_dir:
                step = _Step(
                    f"app {app}",
                    "modules/electron/user-part",
                    (("APPDIR", str(staged)), ("TARGET_DIR", target_dir), ("TARGET_FILE", app)),
                    _app_estimate(src),
                )
                self._run_steps([step], progress)
                self._write_stamp()
                return self._copy_module(
                    Path(target_dir) / f"{app}.bin", d, f"user-part-{app}", "user-part", app
                )

    def manifest(self, entries: Sequence[ModuleEntry]) -> Manifest:
        """The manifest for modules collected from this build."""
        return Manifest(
            device_os_version=self.tree.version,
            changes_applied=self.applied,
            changes_missing=self.missing,
            toolchain=f"arm-none-eabi-gcc {self.toolchain.gcc_version}",
            modules=order_entries(entries),
        )


def _app_estimate(appdir: Path) -> int:
    """Objects an app build compiles: its sources plus the user-part module's own."""
    try:
        n = sum(1 for p in appdir.rglob("*") if p.suffix in (".c", ".cpp", ".ino", ".S"))
    except OSError:
        n = 1
    return n + _USER_PART_OBJECTS


def _failure_summary(
    step: str, excerpt: Sequence[str], rc: int, applied: Sequence[str], log: Path
) -> str:
    for line in excerpt:
        m = _OVERFLOW_RE.search(line)
        if m:
            limit = "256 KB" if "user-256k" in applied else "128 KB (stock layout)"
            return (
                f"{step}: does not fit: region `{m.group(1)}' overflowed by {m.group(2)} bytes; "
                f"the user part may be at most {limit}, 0x08080000-"
                f"{'0x080c0000' if 'user-256k' in applied else '0x080a0000'} (full log: {log})"
            )
    return f"{step}: make failed with status {rc} (full log: {log})"


# --- the whole build ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRequest:
    """One ``flashroom devos build`` request.

    Attributes:
        tree: a Device OS 2.3.1 tree (writable; the build writes ``build/target`` in it).
        out: the output folder (created; replaced only with ``force``).
        apps: user app folders; none: Tinker, the app the system build makes anyway.
        jobs: make's ``-j`` (default: the number of CPUs).
        force: replace an ``out`` that exists and is not empty.
        bootloader: build and collect the bootloader too.
    """

    tree: str | os.PathLike[str]
    out: str | os.PathLike[str]
    apps: tuple[str | os.PathLike[str], ...] = ()
    jobs: int | None = None
    force: bool = False
    bootloader: bool = True


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` wrote.

    Attributes:
        out: the output folder.
        manifest: its manifest (also in ``out/manifest.json``).
        timings: per make step.
        jobs: the ``-j`` used.
        cleaned: stale build products were removed first.
        notes: messages for the user.
    """

    out: Path
    manifest: Manifest
    timings: tuple[StepTiming, ...]
    jobs: int
    cleaned: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "manifest": self.manifest.to_json(),
            "timings": [t.to_json() for t in self.timings],
            "jobs": self.jobs,
            "cleaned": self.cleaned,
            "notes": list(self.notes),
        }


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: a file of that name exists; expected a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(
            f"--out {out}: exists and is not empty; use --force to replace it (it is replaced "
            "only once the new build is complete)"
        )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"--out {out}: the folder {parent} does not exist")
    if not is_writable(parent):
        raise OutputError(f"--out {out}: cannot write into {parent} (read-only)")


def build(req: BuildRequest, progress: ProgressFn | None = None) -> BuildResult:
    """Build bootloader, system and user apps; write the verified modules and ``manifest.json``
    into ``req.out``.

    Everything is checked before the first make (tree, toolchain, output folder, apps). The
    modules are assembled in a temporary folder beside ``out`` and renamed into place at the
    end, so a failed build leaves ``out`` absent or as it was.

    Raises:
        SourceTreeError: the tree is not a writable 2.3.1 tree, or partly patched.
        ToolchainError: a tool is missing.
        OutputError: ``out`` is not empty (without ``force``) or cannot be written.
        UsageError: an app folder is not one.
        BuildError: a compile or link error, or a module that does not verify.
    """
    out = Path(req.out)
    _check_out(out, req.force)
    for a in req.apps:
        if not Path(a).is_dir():
            raise UsageError(f"--app {a}: not a directory (expected a user app folder)")
    names = [Path(a).resolve().name for a in req.apps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"two apps named {', '.join(dupes)}: app folder names must differ")
    SystemBuild.open(req.tree, jobs=req.jobs)  # fail fast, before the long build
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent or Path(".")))
    try:
        sb = SystemBuild.prepare(
            req.tree,
            jobs=req.jobs,
            bootloader=req.bootloader,
            progress=progress,
            planned_apps=req.apps,
        )
        entries = sb.collect(tmp, bootloader=req.bootloader, tinker=not req.apps)
        for a in req.apps:
            entries.append(sb.build_app(a, tmp))
        manifest = sb.manifest(entries)
        (tmp / MANIFEST_NAME).write_text(manifest.dumps(), encoding="utf-8")
        tmp.chmod(0o777 & ~_umask())
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildResult(out, manifest, tuple(sb.timings), sb.jobs, sb.cleaned, tuple(sb.notes))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_dir(new: Path, out: Path) -> None:
    """Put folder ``new`` at ``out``, replacing an existing ``out`` only after ``new`` is ready."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent or Path(".")))
        old.rmdir()
        out.rename(old)
        try:
            new.rename(out)
        except OSError:
            old.rename(out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(out)


__all__ = [
    "EXPECTED_OBJECTS",
    "BuildRequest",
    "BuildResult",
    "StepTiming",
    "SystemBuild",
    "build",
]
