"""Bounded reads of input files: the one way flashroom reads a file it is given.

A path is looked at before it is opened: a FIFO, a device (``/dev/zero``, a link to it), a
socket or a directory is refused without being opened (opening a FIFO with no writer blocks
forever, reading a device never ends), and a file larger than its format allows is refused
before a byte is read. The file is then opened non-blocking and read up to that bound, so a file
swapped or grown between the look and the read cannot make the reader hang or exhaust memory.
"""

from __future__ import annotations

import os
import stat

from flashroom.errors import UsageError


class InputFileError(UsageError):
    """An input file cannot be read: missing, unreadable, not a regular file, or too large.

    ``field`` is ``"file"`` and ``offset`` None, as for a ``ModuleFormatError`` about a file.
    """

    field = "file"
    offset: int | None = None


def os_reason(e: OSError) -> str:
    """An OS error in words (``No such file or directory``), never empty."""
    return e.strerror or str(e) or type(e).__name__


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, in words (``a directory``, ``a FIFO``...)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"  # pragma: no cover - every POSIX type is listed above


def _refuse(name: str, st: os.stat_result, what: str, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(
            f"{name} is {file_kind(st.st_mode)}, not a regular file; expected {what}"
        )
    if st.st_size > limit:
        raise InputFileError(
            f"{name} is {st.st_size} bytes; {what} is at most {limit} bytes, so this is not one"
        )


def read_fd(fd: int, *, limit: int, name: str, what: str = "a file") -> bytes:
    """Read a whole regular file from the open descriptor ``fd`` (from offset 0), at most
    ``limit`` bytes.

    Raises:
        InputFileError: not a regular file, larger than ``limit``, or a read error.
    """
    try:
        st = os.fstat(fd)
        _refuse(name, st, what, limit)
        chunks: list[bytes] = []
        total = 0
        pos = 0
        while total <= limit:
            block = os.pread(fd, min(1 << 20, limit + 1 - total), pos)
            if not block:
                break
            chunks.append(block)
            total += len(block)
            pos += len(block)
    except OSError as e:
        why = os_reason(e)
        raise InputFileError(f"{name}: cannot read file ({why}); expected {what}") from None
    if total > limit:
        raise InputFileError(
            f"{name} grew past {limit} bytes while it was read; {what} is at most {limit} bytes"
        )
    return b"".join(chunks)


def read_input(path: str | os.PathLike[str], *, limit: int, what: str = "a file") -> bytes:
    """Read the regular file ``path`` (symbolic links followed), at most ``limit`` bytes.

    Args:
        path: the file.
        limit: the largest size its format allows; a larger file is refused unread.
        what: what the file should be, for messages (``"a Particle module"``).

    Raises:
        InputFileError: missing or unreadable (the OS reason is given), not a regular file
            (FIFO, device, socket, directory: refused without opening it), or larger than
            ``limit``.
    """
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except OSError as e:
        why = os_reason(e)
        raise InputFileError(f"{name}: cannot read file ({why}); expected {what}") from None
    _refuse(name, st, what, limit)
    try:
        # O_NONBLOCK: a FIFO put in its place after the stat cannot block the open.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        why = os_reason(e)
        raise InputFileError(f"{name}: cannot read file ({why}); expected {what}") from None
    try:
        return read_fd(fd, limit=limit, name=name, what=what)
    finally:
        os.close(fd)


__all__ = ["InputFileError", "file_kind", "os_reason", "read_fd", "read_input"]
