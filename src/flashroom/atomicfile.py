"""Write files atomically: a temporary file beside the target, fsync, then ``os.replace``.

Every output flashroom writes (modules, device images, exports, reports) goes through here, so a
failure or a crash never leaves a half-written file behind, and an existing file is replaced only
by a complete one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    The parent directory is created if needed. The file gets ``mode`` less the process umask
    (``mkstemp`` alone would leave it 0600).
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str, *, mode: int = 0o666) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode=mode)
