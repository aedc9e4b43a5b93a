"""Write files atomically: a temporary file beside the target, fsync, then ``os.replace``.

Every output flashroom writes (modules, device images, exports, reports) goes through here, so a
failure or a crash never leaves a half-written file behind, and an existing file is replaced only
by a complete one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flashroom.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _why(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create directory ``path`` (and its parents) when missing; return it.

    Raises:
        OutputError: it cannot be created, or something that is not a directory is in the way.
    """
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise OutputError(f"output directory {d}: a file of that name exists; expected a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in reversed(d.parents) if p.exists() and not p.is_dir()), None)
        what = f"{blocker} is a file, not a directory" if blocker else "a file is in the way"
        raise OutputError(f"cannot create output directory {d}: {what}") from None
    except OSError as e:
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(d) else ""
        raise OutputError(f"cannot create output directory {d}: {_why(e)}{where}") from None
    return d


def check_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Make sure files can be written into directory ``path`` (created when missing).

    Long-running commands call this before they start, so that a bad output path fails in a
    second with a precise message rather than after a minute of work.

    Raises:
        OutputError: the directory cannot be created or written to.
    """
    d = ensure_dir(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".flashroom-probe.", suffix=".tmp", dir=d)
    except OSError as e:
        raise OutputError(f"cannot write into output directory {d}: {_why(e)}") from None
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)
    return d


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    The parent directory is created if needed. The file gets ``mode`` less the process umask
    (``mkstemp`` alone would leave it 0600).

    Raises:
        OutputError: the file cannot be written (also an ``OSError``); an existing file at
            ``path`` is left as it was and no temporary file is left behind.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a directory; expected a file name")
    directory = target.parent if str(target.parent) else Path(".")
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"cannot write {target}: {directory} is a file, not a directory")
    ensure_dir(directory)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {_why(e)} (in directory {directory})") from None
    try:
        os.fchmod(fd, mode & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {_why(e)}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str, *, mode: int = 0o666) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode=mode)
