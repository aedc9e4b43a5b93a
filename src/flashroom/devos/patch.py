"""Apply, check and export flashroom's changes to a Device OS 2.3.1 tree (spec 9, 10, 11.2).

Pure planning first, writing last: :func:`plan_patch` reads every file a selected change
touches, decides each hunk's state (:class:`HunkState`), and refuses a tree with local changes
where a hunk goes, before anything is written. :func:`apply_patch` then writes each changed file
atomically. Applying twice writes nothing the second time. :func:`unified_diff` gives the same
change as a patch that ``git apply`` accepts on a pristine copy.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from flashroom.atomicfile import write_bytes_atomic
from flashroom.devos.changes import BY_NAME, CHANGE_NAMES, CHANGES, PARTS, Change, Edit
from flashroom.devos.tree import DeviceOsTree, check_writable
from flashroom.errors import PatchConflictError, SourceTreeError, UsageError


class HunkState(StrEnum):
    """Where one hunk stands in a tree (stable JSON strings)."""

    APPLIED = "applied"  # flashroom's text is there
    PENDING = "pending"  # the stock text is there, exactly once
    CONFLICT = "conflict"  # neither (or the stock text more than once): local changes


class ChangeState(StrEnum):
    """Where a whole change stands: every hunk applied, none, or something else."""

    APPLIED = "applied"
    MISSING = "missing"
    PARTIAL = "partial"  # some hunks applied, the others still stock
    CONFLICT = "conflict"  # at least one hunk matches neither text


@dataclass(frozen=True)
class HunkStatus:
    change: str
    number: int  # from 1, within the change
    path: str
    line: int  # where the stock text starts in pristine 2.3.1
    state: HunkState

    def to_json(self) -> dict[str, object]:
        return {
            "number": self.number,
            "path": self.path,
            "line": self.line,
            "state": str(self.state),
        }


@dataclass(frozen=True)
class ChangeStatus:
    change: Change
    hunks: tuple[HunkStatus, ...]

    @property
    def state(self) -> ChangeState:
        states = {h.state for h in self.hunks}
        if HunkState.CONFLICT in states:
            return ChangeState.CONFLICT
        if states == {HunkState.APPLIED}:
            return ChangeState.APPLIED
        if states == {HunkState.PENDING}:
            return ChangeState.MISSING
        return ChangeState.PARTIAL

    def to_json(self) -> dict[str, object]:
        c = self.change
        return {
            "name": c.name,
            "part": c.part,
            "spec": c.spec,
            "summary": c.summary,
            "state": str(self.state),
            "files": list(c.paths),
            "hunks": [h.to_json() for h in self.hunks],
        }


@dataclass(frozen=True)
class PatchPlan:
    """What applying the selected changes to ``tree`` would do.

    Attributes:
        tree: the checked tree.
        statuses: one per selected change, in registry order.
        new_texts: the files that would change, relative path -> new text.
        old_texts: the current text of every file a selected change touches.
    """

    tree: DeviceOsTree
    statuses: tuple[ChangeStatus, ...]
    new_texts: dict[str, str]
    old_texts: dict[str, str]

    @property
    def all_applied(self) -> bool:
        return all(s.state is ChangeState.APPLIED for s in self.statuses)

    @property
    def to_apply(self) -> tuple[str, ...]:
        """Names of the changes that still have hunks to apply."""
        return tuple(s.change.name for s in self.statuses if s.state is not ChangeState.APPLIED)


@dataclass(frozen=True)
class PatchResult:
    """What :func:`apply_patch` did: per change, ``applied`` now or ``already applied``."""

    tree: DeviceOsTree
    statuses: tuple[ChangeStatus, ...]  # the states *before* writing
    written: tuple[str, ...]  # files written, relative


def select_changes(
    parts: Sequence[str] = (),
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> tuple[Change, ...]:
    """The changes a request names, in registry order.

    Args:
        parts: ``layout`` and/or ``toolchain`` (empty: both).
        only: change names to keep (empty: all of the parts).
        skip: change names to drop.

    Raises:
        UsageError: an unknown part or change name.
    """
    for p in parts:
        if p not in PARTS:
            raise UsageError(f"unknown part {p!r}: expected one of {', '.join(PARTS)}")
    for n in (*only, *skip):
        if n not in BY_NAME:
            raise UsageError(f"unknown change {n!r}: expected one of {', '.join(CHANGE_NAMES)}")
    chosen = [c for c in CHANGES if not parts or c.part in parts]
    if only:
        chosen = [c for c in chosen if c.name in only]
    chosen = [c for c in chosen if c.name not in skip]
    if not chosen:
        raise UsageError("no change selected (check --part, --only and --skip)")
    return tuple(chosen)


def _read(tree: DeviceOsTree, rel: str) -> str:
    p = tree.path(rel)
    try:
        return p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SourceTreeError(
            f"{tree.root}: {rel} is missing (a Device OS {tree.version} tree has it; the tree "
            "is incomplete or pruned too far)"
        ) from None
    except UnicodeDecodeError as e:
        raise SourceTreeError(f"{p}: not UTF-8 text at byte {e.start}") from None
    except OSError as e:
        raise SourceTreeError(f"{p}: cannot read ({e.strerror or e})") from None


def _hunk_state(text: str, edit: Edit) -> HunkState:
    if edit.new in text:
        return HunkState.APPLIED
    if text.count(edit.old) == 1:
        return HunkState.PENDING
    return HunkState.CONFLICT


def _conflict(tree: DeviceOsTree, change: Change, number: int, edit: Edit, text: str) -> None:
    first = edit.old.splitlines()[0].strip() if edit.old.strip() else edit.old
    n = text.count(edit.old)
    why = (
        f"its stock text occurs {n} times"
        if n > 1
        else f"neither the stock text (starting '{first}') nor flashroom's is there"
    )
    raise PatchConflictError(
        f"{tree.path(edit.path)}: local changes where hunk {number} of change {change.name} "
        f"({change.spec}) goes, near line {edit.line}: {why}; nothing was written",
        path=edit.path,
        change=change.name,
        hunk=number,
    )


def status(tree: DeviceOsTree, changes: Iterable[Change] = CHANGES) -> tuple[ChangeStatus, ...]:
    """Each change's state in ``tree``, hunk by hunk. Reads only.

    Raises:
        SourceTreeError: a file a change touches is missing or unreadable.
    """
    cache: dict[str, str] = {}
    out = []
    for c in changes:
        hunks = []
        for i, e in enumerate(c.edits, 1):
            if e.path not in cache:
                cache[e.path] = _read(tree, e.path)
            hunks.append(HunkStatus(c.name, i, e.path, e.line, _hunk_state(cache[e.path], e)))
        out.append(ChangeStatus(c, tuple(hunks)))
    return tuple(out)


def _check_requirements(statuses: Sequence[ChangeStatus], selected: Sequence[Change]) -> None:
    chosen = {c.name for c in selected}
    applied = {s.change.name for s in statuses if s.state is ChangeState.APPLIED}
    for c in selected:
        for r in c.requires:
            if r not in chosen and r not in applied:
                raise UsageError(
                    f"change {c.name} needs change {r} ({BY_NAME[r].summary}); select it too "
                    "or apply it first"
                )


def plan_patch(tree: DeviceOsTree, changes: Sequence[Change] = CHANGES) -> PatchPlan:
    """Decide what applying ``changes`` would write; write nothing.

    Raises:
        PatchConflictError: a hunk's text is not found (local changes); names file and hunk.
        UsageError: a selected change needs another that is neither selected nor applied.
    """
    statuses = status(tree, CHANGES)
    by_name = {s.change.name: s for s in statuses}
    _check_requirements(statuses, changes)
    old_texts: dict[str, str] = {}
    new_texts: dict[str, str] = {}
    for c in changes:
        st = by_name[c.name]
        for (i, e), h in zip(enumerate(c.edits, 1), st.hunks, strict=True):
            text = new_texts.get(e.path)
            if text is None:
                if e.path not in old_texts:
                    old_texts[e.path] = _read(tree, e.path)
                text = old_texts[e.path]
            if h.state is HunkState.CONFLICT:
                _conflict(tree, c, i, e, text)
            if h.state is HunkState.PENDING:
                if text.count(e.old) != 1:  # an earlier hunk of this run disturbed it
                    _conflict(tree, c, i, e, text)
                new_texts[e.path] = text.replace(e.old, e.new, 1)
    changed = {p: t for p, t in new_texts.items() if t != old_texts[p]}
    return PatchPlan(tree, tuple(by_name[c.name] for c in changes), changed, old_texts)


def apply_patch(tree: DeviceOsTree, changes: Sequence[Change] = CHANGES) -> PatchResult:
    """Apply ``changes`` to ``tree``; idempotent (an applied change is left alone).

    Everything is checked before anything is written: the version (by :class:`DeviceOsTree`),
    every hunk (local changes are refused), and that every file to write and its folder are
    writable. Each file is then replaced atomically, keeping its permission bits.

    Raises:
        PatchConflictError: local changes where a hunk goes (nothing written).
        SourceTreeError: the tree is read-only (nothing written).
        UsageError: a change's requirement is not selected.
    """
    plan = plan_patch(tree, changes)
    check_writable(tree, plan.new_texts)
    written = []
    for rel, text in plan.new_texts.items():
        p = tree.path(rel)
        mode = p.stat().st_mode & 0o7777
        write_bytes_atomic(p, text.encode("utf-8"), mode=mode)
        os.chmod(p, mode)  # exactly as before (the atomic writer applies the umask)
        written.append(rel)
    return PatchResult(tree, plan.statuses, tuple(written))


def _pristine_text(text: str, edits: Iterable[Edit]) -> str:
    for e in edits:
        if e.new in text:
            text = text.replace(e.new, e.old, 1)
    return text


def _diff_lines(a: str, b: str, rel: str) -> list[str]:
    a_lines = a.splitlines(keepends=True)
    b_lines = b.splitlines(keepends=True)
    out = []
    for line in difflib.unified_diff(a_lines, b_lines, f"a/{rel}", f"b/{rel}", n=3):
        if line.startswith(("---", "+++")):
            line = line.rstrip("\n").rstrip() + "\n"
        if not line.endswith("\n"):  # the file's last line has no newline
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return out


def unified_diff(tree: DeviceOsTree, changes: Sequence[Change] = CHANGES) -> str:
    """The selected changes as a unified diff against the pristine 2.3.1 files (``a/``, ``b/``
    prefixes, as ``git diff`` writes), for ``git apply`` or ``patch -p1``. Writes nothing.

    Hunks already applied in ``tree`` are reverted in memory first, so the diff is the same
    whether ``tree`` is pristine or already (partly) patched.

    Raises:
        PatchConflictError: local changes where a hunk goes.
    """
    paths = list(dict.fromkeys(e.path for c in changes for e in c.edits))
    chunks: list[str] = []
    for rel in sorted(paths):
        current = _read(tree, rel)
        base = _pristine_text(current, (e for c in CHANGES for e in c.edits if e.path == rel))
        text = base
        for c in changes:
            for i, e in enumerate(c.edits, 1):
                if e.path != rel:
                    continue
                if text.count(e.old) != 1:
                    _conflict(tree, c, i, e, current)
                text = text.replace(e.old, e.new, 1)
        if text != base:
            chunks.append(f"diff --git a/{rel} b/{rel}\n")
            chunks.extend(_diff_lines(base, text, rel))
    return "".join(chunks)


def patch_digest(changes: Sequence[Change] = CHANGES) -> str:
    """A SHA-256 of the changes' text (paths, stock and new text): part of build cache keys."""
    h = hashlib.sha256()
    for c in changes:
        h.update(c.name.encode() + b"\0")
        for e in c.edits:
            h.update(e.path.encode() + b"\0" + e.old.encode() + b"\0" + e.new.encode() + b"\0")
    return h.hexdigest()


class PatchMode(StrEnum):
    APPLY = "apply"
    CHECK = "check"
    EMIT = "emit"


@dataclass(frozen=True)
class PatchRequest:
    """One ``flashroom devos patch`` request.

    Attributes:
        tree: the Device OS tree.
        parts: ``layout``/``toolchain`` (empty: both).
        only: change names to keep (empty: every change of the parts).
        skip: change names to drop.
        mode: apply the changes, only report their state, or write them as a diff.
        patch_file: where :attr:`PatchMode.EMIT` writes the diff.
    """

    tree: str | os.PathLike[str]
    parts: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    mode: PatchMode = PatchMode.APPLY
    patch_file: str | os.PathLike[str] | None = None


@dataclass(frozen=True)
class PatchReport:
    """The outcome of :func:`run_patch`.

    Attributes:
        tree: the checked tree.
        mode: what was asked.
        statuses: each selected change's state before anything was written.
        written: files written into the tree (apply), relative.
        patch_file: the diff written (emit).
        diff_size: its size in bytes (emit).
    """

    tree: DeviceOsTree
    mode: PatchMode
    statuses: tuple[ChangeStatus, ...]
    written: tuple[str, ...] = ()
    patch_file: Path | None = None
    diff_size: int = 0

    @property
    def all_applied(self) -> bool:
        return all(s.state is ChangeState.APPLIED for s in self.statuses)

    def to_json(self) -> dict[str, object]:
        changes = []
        for s in self.statuses:
            obj = s.to_json()
            if self.mode is PatchMode.APPLY:
                obj["result"] = "already applied" if s.state is ChangeState.APPLIED else "applied"
            changes.append(obj)
        out: dict[str, object] = {
            "tree": str(self.tree.root),
            "version": self.tree.version,
            "mode": str(self.mode),
            "changes": changes,
        }
        if self.mode is PatchMode.APPLY:
            out["written"] = list(self.written)
        if self.mode is PatchMode.CHECK:
            out["all_applied"] = self.all_applied
            out["missing"] = [
                s.change.name for s in self.statuses if s.state is not ChangeState.APPLIED
            ]
        if self.mode is PatchMode.EMIT:
            out["patch_file"] = str(self.patch_file)
            out["size"] = self.diff_size
        return out


def run_patch(req: PatchRequest) -> PatchReport:
    """Check the tree, then apply, check or emit the selected changes.

    Raises:
        SourceTreeError: not a directory, not Device OS, not 2.3.1, read-only (apply).
        PatchConflictError: local changes where a hunk goes (apply, emit; nothing written).
        UsageError: unknown part or change name, or a requirement left out.
        OutputError: the patch file cannot be written.
    """
    selected = select_changes(req.parts, req.only, req.skip)
    tree = DeviceOsTree.open(req.tree)
    if req.mode is PatchMode.CHECK:
        by_name = {s.change.name: s for s in status(tree, CHANGES)}
        return PatchReport(tree, req.mode, tuple(by_name[c.name] for c in selected))
    if req.mode is PatchMode.EMIT:
        if req.patch_file is None:
            raise UsageError("emitting a patch needs a file name")
        diff = unified_diff(tree, selected)
        by_name = {s.change.name: s for s in status(tree, CHANGES)}
        target = write_bytes_atomic(Path(req.patch_file), diff.encode("utf-8"))
        return PatchReport(
            tree,
            req.mode,
            tuple(by_name[c.name] for c in selected),
            patch_file=target,
            diff_size=len(diff.encode("utf-8")),
        )
    result = apply_patch(tree, selected)
    return PatchReport(tree, req.mode, result.statuses, written=result.written)


__all__ = [
    "ChangeState",
    "ChangeStatus",
    "HunkState",
    "HunkStatus",
    "PatchMode",
    "PatchPlan",
    "PatchReport",
    "PatchRequest",
    "PatchResult",
    "apply_patch",
    "patch_digest",
    "plan_patch",
    "run_patch",
    "select_changes",
    "status",
    "unified_diff",
]
