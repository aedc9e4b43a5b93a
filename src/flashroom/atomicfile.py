"""Write files atomically, and sets of files all or nothing.

Every output flashroom writes (modules, device images, exports, reports) goes through here:

* a file is written to an unnamed temporary file in the target's directory (``O_TMPFILE``;
  a ``.name.XXXX.tmp`` file where the file system has no ``O_TMPFILE``), fsynced, then put in
  place with one ``link`` or ``rename``: a failure or a kill at any moment leaves the old file
  or the new one, never a mix, and (with ``O_TMPFILE``) no temporary file behind;
* an existing file keeps its permission bits (a 0444 or 0600 file stays so) and, where the
  process may, its owner;
* what is not a regular file is never replaced: a symbolic link, a device, a FIFO or a
  directory at the output path is refused, naming it;
* flashroom creates only the folder it is told to write into (``--out DIR``), never a parent
  of it, and never the folder of a file output (``-o FILE``): a missing folder is an error;
* several files (``module split``, ``layout export``, ``demo``) are staged complete before any
  of them is put in place, and put back as they were if one of them cannot be.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from flashroom.errors import OutputError
from flashroom.readfile import file_kind, os_reason


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _lstat(path: Path, what: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a directory" if blocker else "a file is in the way"
        raise OutputError(f"cannot write {path}: {why}") from None
    except OSError as e:
        raise OutputError(f"cannot write {what} {path}: {os_reason(e)}") from None


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output directory ``path`` when missing (not its parents); return it.

    Raises:
        OutputError: its parent folder does not exist, something that is not a directory is
            in the way, or it cannot be created.
    """
    d = Path(path)
    st = _lstat(d, "output directory")
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            return d
        if stat.S_ISLNK(st.st_mode) and d.is_dir():
            return d  # a link to a directory: files go into the directory it names
        if stat.S_ISREG(st.st_mode):
            raise OutputError(
                f"output directory {d}: a file of that name exists; expected a directory"
            )
        raise OutputError(f"output directory {d} is {file_kind(st.st_mode)}; expected a directory")
    parent = d.parent if str(d.parent) else Path(".")
    pst = _lstat(parent, "output directory")
    if pst is None:
        raise OutputError(
            f"cannot create output directory {d}: its folder {parent} does not exist "
            "(flashroom creates only the folder it is told to write into)"
        )
    if not parent.is_dir():
        raise OutputError(
            f"cannot create output directory {d}: {parent} is a file, not a directory"
        )
    try:
        d.mkdir()
    except FileExistsError:
        if not d.is_dir():
            raise OutputError(
                f"output directory {d}: something that is not a directory is in the way"
            ) from None
    except OSError as e:
        raise OutputError(f"cannot create output directory {d}: {os_reason(e)}") from None
    return d


def check_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Make sure files can be written into directory ``path`` (created when missing, not its
    parents).

    Long-running commands call this before they start, so that a bad output path fails in a
    second with a precise message rather than after a minute of work.

    Raises:
        OutputError: the directory cannot be created or written to.
    """
    d = ensure_dir(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".flashroom-probe.", suffix=".tmp", dir=d)
    except OSError as e:
        raise OutputError(f"cannot write into output directory {d}: {os_reason(e)}") from None
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)
    return d


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Check, without creating anything, that ``path`` can become the output folder of a
    file set: an existing writable folder, or a missing one whose parent is a writable folder.

    Long-running commands call this before they start, so that a bad ``--out`` fails in a
    second rather than after a minute of work (and leaves no empty folder behind).

    Raises:
        OutputError: something that is not a folder is in the way, the parent is missing, or
            the folder (or the parent) cannot be written.
    """
    d = Path(path)
    st = _lstat(d, "output directory")
    probe_in = d
    if st is None:
        probe_in = d.parent if str(d.parent) else Path(".")
        pst = _lstat(probe_in, "output directory")
        if pst is None:
            ensure_dir(d)  # raises the precise "its folder ... does not exist"
        if not probe_in.is_dir():
            raise OutputError(
                f"cannot create output directory {d}: {probe_in} is a file, not a directory"
            )
    elif not d.is_dir():
        ensure_dir(d)  # raises the precise "not a directory" message
    try:
        fd, tmp = tempfile.mkstemp(prefix=".flashroom-probe.", suffix=".tmp", dir=probe_in)
    except OSError as e:
        if st is None:
            raise OutputError(
                f"cannot create output directory {d}: {os_reason(e)} (in {probe_in})"
            ) from None
        raise OutputError(f"cannot write into output directory {d}: {os_reason(e)}") from None
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)
    return d


def check_output_file(path: str | os.PathLike[str]) -> os.stat_result | None:
    """Check that ``path`` can be written as an output file, before any work is done.

    Returns:
        The ``lstat`` of the existing regular file, or None when there is none yet.

    Raises:
        OutputError: the path names a directory, a symbolic link, a device, a FIFO or a socket
            (never replaced), its folder does not exist or is not a folder, or the name is too
            long for the file system.
    """
    target = Path(path)
    if not target.name:
        raise OutputError(f"cannot write {target}: expected a file name, not a directory")
    st = _lstat(target, "file")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(
            f"refusing to replace {target}: it is {file_kind(st.st_mode)}, not a regular file; "
            "give the name of a regular file or a new one"
        )
    directory = target.parent if str(target.parent) else Path(".")
    dst = _lstat(directory, "folder")
    if dst is None:
        raise OutputError(
            f"cannot write {target}: folder {directory} does not exist (flashroom does not "
            "create the folder of an output file; create it first)"
        )
    if not directory.is_dir():
        raise OutputError(f"cannot write {target}: {directory} is a file, not a directory")
    return st


def _new_mode(existing: os.stat_result | None, mode: int | None) -> int:
    if mode is not None:
        return mode & ~_umask() & 0o7777
    if existing is not None:
        return stat.S_IMODE(existing.st_mode)
    return 0o666 & ~_umask()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _open_unnamed(directory: Path) -> int | None:
    """An ``O_TMPFILE`` descriptor in ``directory``, or None where it is not supported."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


def _link_unnamed(fd: int, path: Path) -> bool:
    """Give the ``O_TMPFILE`` file ``fd`` the name ``path`` (which must not exist).

    ``linkat(fd, "", ..., AT_EMPTY_PATH)`` where the process may (CAP_DAC_READ_SEARCH), else
    the ``/proc/self/fd`` link. Returns False when neither works here (the caller then writes
    a named temporary file instead).

    Raises:
        FileExistsError: ``path`` exists.
    """
    try:
        import ctypes  # ctypes: only for linkat(2), which os.link cannot call with a flag

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", _AT_FDCWD, os.fsencode(path), _AT_EMPTY_PATH) == 0:
            return True
        if ctypes.get_errno() == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    except (OSError, AttributeError, ImportError) as e:
        if isinstance(e, FileExistsError):
            raise
    try:
        os.link(f"/proc/self/fd/{fd}", path, follow_symlinks=True)
    except FileExistsError:
        raise
    except OSError:
        return False
    return True


def unnamed_files_supported(directory: str | os.PathLike[str]) -> bool:
    """Whether files written into ``directory`` are unnamed until complete (``O_TMPFILE`` and a
    way to name it here): then a writer killed mid-write leaves no temporary file at all;
    otherwise it may leave one ``.name.XXXX.tmp``, which :func:`remove_stale_temps` removes."""
    d = Path(directory)
    fd = _open_unnamed(d)
    if fd is None:
        return False
    try:
        probe = _temp_name(d, ".probe")
        try:
            ok = _link_unnamed(fd, probe)
        except FileExistsError:  # pragma: no cover - a fresh random name
            return False
        if ok:
            probe.unlink(missing_ok=True)
        return ok
    finally:
        os.close(fd)


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed writer of ``path`` left beside it.

    Only safe while no other process writes ``path`` (the device image's lock holder calls it).
    Returns the files removed.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    gone = []
    with contextlib.suppress(OSError):
        for p in directory.glob(f".{_glob_escape(target.name[:64])}.*.tmp"):
            with contextlib.suppress(OSError):
                if p.is_file() and not p.is_symlink():
                    p.unlink()
                    gone.append(p)
    return gone


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _temp_name(directory: Path, name: str) -> Path:
    return directory / f".{name[:64]}.{secrets.token_hex(4)}.tmp"


def _write_named_temp(directory: Path, name: str, data: bytes | bytearray | memoryview) -> Path:
    """A fresh ``.name.XXXX.tmp`` file in ``directory`` holding ``data`` (fsynced, 0600)."""
    for _ in range(100):
        tmp = _temp_name(directory, name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            _write_all(fd, data)
            if data:
                os.fsync(fd)
        finally:
            os.close(fd)
        return tmp
    raise OutputError(
        f"cannot write {directory / name}: no free temporary name"
    )  # pragma: no cover


def write_bytes_atomic(
    path: str | os.PathLike[str],
    data: bytes | bytearray | memoryview,
    *,
    mode: int | None = None,
    before_replace: Callable[[int], None] | None = None,
) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    Args:
        path: the output file. Its folder must exist; an existing file there must be a regular
            file (it is replaced, keeping its permission bits).
        data: the bytes.
        mode: permission bits for the file (less the umask); default: the existing file's,
            else 0666 less the umask.
        before_replace: called with the new file's descriptor after it is complete and
            fsynced and before it takes the name (the device image takes its lock here).

    Raises:
        OutputError: the file cannot be written (also an ``OSError``); an existing file at
            ``path`` is left as it was and no temporary file is left behind.
    """
    target = Path(path)
    existing = check_output_file(target)
    directory = target.parent if str(target.parent) else Path(".")
    perm = _new_mode(existing, mode)
    tmp: Path | None = None
    fd: int | None = None
    try:
        try:
            fd = _open_unnamed(directory)
            if fd is None:
                tmp = _write_named_temp(directory, target.name, b"")
                fd = os.open(tmp, os.O_WRONLY | os.O_CLOEXEC)
            os.fchmod(fd, perm)
            if existing is not None and os.geteuid() == 0:
                with contextlib.suppress(OSError):
                    os.fchown(fd, existing.st_uid, existing.st_gid)
            _write_all(fd, data)
            os.fsync(fd)
            if before_replace is not None:
                before_replace(fd)
            if tmp is None:
                # Name the unnamed file: straight at the target when there is none (one atomic
                # link), else at a temporary name renamed over the target at once.
                named = False
                if existing is None:
                    try:
                        named = _link_unnamed(fd, target)
                    except FileExistsError:
                        existing = check_output_file(target)
                    if named:
                        _fsync_dir(directory)
                        return target
                for _ in range(100):
                    candidate = _temp_name(directory, target.name)
                    try:
                        if _link_unnamed(fd, candidate):
                            tmp = candidate
                        break
                    except FileExistsError:
                        continue
                if tmp is None:  # no way to name an unnamed file here: write a named one
                    tmp = _write_named_temp(directory, target.name, data)
                    os.chmod(tmp, perm)
                    if before_replace is not None:
                        fd2 = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
                        try:
                            before_replace(fd2)
                        finally:
                            os.close(fd2)
            os.replace(tmp, target)
            tmp = None
            _fsync_dir(directory)
        finally:
            if fd is not None:
                os.close(fd)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"cannot write {target}: {os_reason(e)}") from e
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def _check_names(files: Mapping[str, bytes]) -> list[PurePosixPath]:
    names = []
    for name in files:
        p = PurePosixPath(name)
        if p.is_absolute() or not p.parts or ".." in p.parts or "." in p.parts:
            raise OutputError(f"output file name {name!r} must be a plain relative path")
        names.append(p)
    return names


def write_file_set(
    out_dir: str | os.PathLike[str],
    files: Mapping[str, bytes],
    *,
    modes: Mapping[str, int] | None = None,
) -> list[Path]:
    """Write several files into ``out_dir`` as one set: all of them, or none.

    Every file is first written complete into a staging folder beside ``out_dir``. A missing
    ``out_dir`` (its parent must exist) is then the staging folder renamed into place, in one
    step. Into an existing ``out_dir`` the files are moved one by one; if one cannot be, the
    ones already moved are put back as they were. Existing files keep their permission bits.

    Args:
        out_dir: the folder (created when missing, not its parents).
        files: relative name (``export/user-part.ld``) -> content.
        modes: permission bits for some files (less the umask), e.g. 0o755 for a script.

    Returns:
        The paths written, in the order of ``files``.

    Raises:
        OutputError: a target is not a regular file, a folder is missing or not a folder, or
            the disk refuses a write; nothing is changed then.
    """
    out = Path(out_dir)
    names = _check_names(files)
    modes = modes or {}
    st = _lstat(out, "output directory")
    exists = st is not None
    if exists and not out.is_dir():
        ensure_dir(out)  # raises the precise "not a directory" message
    if not exists:
        parent = out.parent if str(out.parent) else Path(".")
        if _lstat(parent, "output directory") is None:
            ensure_dir(out)  # raises "its folder ... does not exist"
    targets = [out / Path(*n.parts) for n in names]
    olds: list[os.stat_result | None] = []
    for t in targets:
        olds.append(check_output_file(t) if exists and t.parent.is_dir() else None)
        if exists:
            for anc in list(t.relative_to(out).parents)[:-1]:
                ast = _lstat(out / anc, "output directory")
                if ast is not None and not stat.S_ISDIR(ast.st_mode):
                    raise OutputError(
                        f"cannot write {t}: {out / anc} is {file_kind(ast.st_mode)}, not a "
                        "directory"
                    )
    parent = out.parent if str(out.parent) else Path(".")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name[:64]}.", suffix=".tmp", dir=parent))
    except OSError as e:
        why = os_reason(e)
        raise OutputError(f"cannot write into {out}: {why} (in directory {parent})") from None
    moved: list[tuple[Path, Path | None]] = []  # (target, backup of the old file or None)
    made: list[Path] = []
    try:
        try:
            os.chmod(staging, 0o777 & ~_umask())
            for (name, data), n, old in zip(files.items(), names, olds, strict=True):
                dest = staging / Path(*n.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    os.fchmod(fd, _new_mode(old, modes.get(name)))
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if not exists:
                os.rename(staging, out)
                _fsync_dir(parent)
                return targets
            backups = staging / ".flashroom-old"
            backups.mkdir()
            for i, (n, t) in enumerate(zip(names, targets, strict=True)):
                for anc in reversed(list(t.relative_to(out).parents)[:-1]):
                    d = out / anc
                    if not d.exists():
                        d.mkdir()
                        made.append(d)
                backup: Path | None = None
                if olds[i] is not None:
                    backup = backups / str(i)
                    os.link(t, backup)
                os.replace(staging / Path(*n.parts), t)
                moved.append((t, backup))
            for d in {t.parent for t in targets}:
                _fsync_dir(d)
        except OSError as e:
            for t, backup in reversed(moved):
                with contextlib.suppress(OSError):
                    if backup is not None:
                        os.replace(backup, t)
                    else:
                        t.unlink()
            for d in reversed(made):
                with contextlib.suppress(OSError):
                    d.rmdir()
            if isinstance(e, OutputError):
                raise
            where = f" ({e.filename})" if e.filename else ""
            raise OutputError(
                f"cannot write into {out}: {os_reason(e)}{where}; nothing was changed"
            ) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return targets


__all__ = [
    "check_output_dir",
    "check_output_file",
    "check_writable_dir",
    "ensure_dir",
    "remove_stale_temps",
    "unnamed_files_supported",
    "write_bytes_atomic",
    "write_file_set",
    "write_text_atomic",
]
