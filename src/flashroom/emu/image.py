"""The persistent device image file: a small versioned header, JSON metadata, raw flash.

Layout (all integers little-endian)::

    +0   8   magic b"FLRMEMU\\0"
    +8   4   format version (1)
    +12  4   metadata length M (at most MAX_METADATA_SIZE)
    +16  4   flash length F (the chip size: 1048576 for the STM32F205)
    +20  4   CRC-32 of metadata + flash
    +24  M   metadata, UTF-8 JSON: platform, profile, bootloader variant, backup registers,
             power state, counters
    +24+M F  the raw flash

Reading is bounded by the format (header + metadata bound + the largest chip); the metadata is
checked field by field (types, ranges, finite numbers) so that a hand-edited or hostile image is
refused precisely. Writing is atomic (``flashroom.atomicfile``), and a command that changes an
image holds an exclusive lock on it (:class:`ImageLock`) from load to save, so two commands on
one image cannot both apply an update and lose one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flashroom.emu.sysflags import N_REGISTERS
from flashroom.errors import EmulatorError
from flashroom.geometry import CHIPS
from flashroom.readfile import InputFileError, file_kind, read_fd, read_input

MAGIC = b"FLRMEMU\x00"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIII")
HEADER_SIZE = _HEADER.size
#: The metadata flashroom writes is under 1 KB; anything past this bound is not an image of ours.
MAX_METADATA_SIZE = 64 * 1024
#: The largest flash a device image can hold: the largest chip flashroom models.
MAX_FLASH_SIZE = max(c.size for c in CHIPS.values())
#: The largest device image file.
MAX_IMAGE_SIZE = HEADER_SIZE + MAX_METADATA_SIZE + MAX_FLASH_SIZE
_U32_MAX = 0xFFFFFFFF
#: Counters past this are not a device's (2**53: exact in a JSON double everywhere).
_COUNTER_MAX = 1 << 53


def encode_image(metadata: dict[str, Any], flash: bytes) -> bytes:
    """Serialise metadata and flash into the image format."""
    meta = json.dumps(metadata, sort_keys=True, allow_nan=False).encode()
    crc = zlib.crc32(flash, zlib.crc32(meta)) & 0xFFFFFFFF
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(meta), len(flash), crc) + meta + flash


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number (JSON has no NaN or Infinity)")


def decode_image(data: bytes, *, name: str = "<image>") -> tuple[dict[str, Any], bytes]:
    """Parse an image; returns ``(metadata, flash)``. The metadata is only known to be a JSON
    object; :func:`image_metadata` checks its fields.

    Raises:
        EmulatorError: not an image, unsupported version, truncated, corrupt, bad metadata.
    """
    if len(data) < _HEADER.size:
        raise EmulatorError(
            f"{name}: {len(data)} bytes is too short for a flashroom device image "
            f"(header is {_HEADER.size} bytes); create one with 'flashroom emu new'"
        )
    magic, version, mlen, flen, crc = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise EmulatorError(
            f"{name}: not a flashroom device image (magic {magic!r} at offset 0, expected "
            f"{MAGIC!r}); create one with 'flashroom emu new'"
        )
    if version != FORMAT_VERSION:
        raise EmulatorError(
            f"{name}: device image format version {version} is not supported (expected "
            f"{FORMAT_VERSION})"
        )
    if mlen > MAX_METADATA_SIZE:
        raise EmulatorError(
            f"{name}: device image header says {mlen} bytes of metadata (offset 12); "
            f"expected at most {MAX_METADATA_SIZE}"
        )
    if flen > MAX_FLASH_SIZE:
        raise EmulatorError(
            f"{name}: device image header says {flen} bytes of flash (offset 16); the largest "
            f"modelled chip has {MAX_FLASH_SIZE}"
        )
    need = _HEADER.size + mlen + flen
    if len(data) != need:
        raise EmulatorError(
            f"{name}: device image is {len(data)} bytes, header says {need} "
            f"({mlen} bytes of metadata + {flen} bytes of flash): truncated or padded"
        )
    meta_raw = data[_HEADER.size : _HEADER.size + mlen]
    flash = data[_HEADER.size + mlen :]
    computed = zlib.crc32(flash, zlib.crc32(meta_raw)) & 0xFFFFFFFF
    if computed != crc:
        raise EmulatorError(
            f"{name}: device image is corrupt: stored CRC-32 0x{crc:08x}, computed "
            f"0x{computed:08x} (offset 20)"
        )
    try:
        meta = json.loads(meta_raw.decode(), parse_constant=_no_constant)
    except RecursionError:
        raise EmulatorError(
            f"{name}: device image metadata is not valid: JSON nested too deeply"
        ) from None
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise EmulatorError(f"{name}: device image metadata is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise EmulatorError(f"{name}: device image metadata is not a JSON object")
    return meta, flash


@dataclass(frozen=True)
class ImageMetadata:
    """The checked metadata of a device image."""

    platform: str
    profile: str
    platform_id: int | None
    bootloader: str
    granularity: str
    state: str
    reason: str
    backup_registers: tuple[int, ...]
    op_count: int
    erase_counts: tuple[int, ...]
    device_time_s: float
    device_time_max_s: float
    #: the real-code set-up (checked by ``RealCode.from_json``), None for a model device
    real_code: Any = None
    #: RCC_CSR reset flags of the last reset (None: an image written before they were kept)
    reset_flags: int | None = None


class _Field:
    """Reads one metadata field, naming it in every error."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, field: str, why: str) -> EmulatorError:
        return EmulatorError(f"{self.name}: device image field {field}: {why}")

    def get(self, obj: dict[str, Any], key: str, where: str = "") -> Any:
        if key not in obj:
            raise EmulatorError(
                f"{self.name}: device image metadata is incomplete: missing field '{where}{key}'"
            )
        return obj[key]

    def text(self, value: Any, field: str, limit: int = 4096) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"{_show(value)} is not a string")
        if len(value) > limit:
            raise self.fail(field, f"a string of {len(value)} characters (at most {limit})")
        return value

    def integer(self, value: Any, field: str, lo: int, hi: int, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"{_show(value)} is not an integer; expected {what}")
        if not lo <= value <= hi:
            raise self.fail(field, f"{_show(value)} is out of range; expected {what}")
        return value

    def seconds(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(field, f"{_show(value)} is not a number of seconds")
        f = float(value)
        if not math.isfinite(f) or f < 0 or f > _COUNTER_MAX:
            raise self.fail(field, f"{_show(value)} is not a finite, non-negative time in seconds")
        return f


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def image_metadata(meta: dict[str, Any], *, name: str, sectors: int) -> ImageMetadata:
    """Check every field of decoded metadata (types and ranges) and return them typed.

    Args:
        meta: the JSON object of :func:`decode_image`.
        name: the image's name, for messages.
        sectors: the number of flash sectors (the length ``erase_counts`` must have).

    Raises:
        EmulatorError: a field is missing, of the wrong type or out of range; the message names
            the field, the value and what was expected.
    """
    f = _Field(name)
    platform = f.text(f.get(meta, "platform"), "platform", 64)
    profile = f.text(f.get(meta, "profile"), "profile", 64)
    pid = meta.get("platform_id")
    regs = f.get(meta, "backup_registers")
    if not isinstance(regs, list) or len(regs) != N_REGISTERS:
        raise f.fail("backup_registers", f"expected a list of {N_REGISTERS} register values")
    counters = f.get(meta, "counters")
    if not isinstance(counters, dict):
        raise f.fail("counters", f"{_show(counters)} is not an object")
    erases = f.get(counters, "erase_counts", "counters.")
    if not isinstance(erases, list) or len(erases) != sectors:
        raise f.fail("counters.erase_counts", f"expected a list of {sectors} per-sector counts")
    return ImageMetadata(
        platform=platform,
        profile=profile,
        platform_id=None
        if pid is None
        else f.integer(pid, "platform_id", 0, 0xFFFF, "a u16 platform id"),
        bootloader=f.text(f.get(meta, "bootloader"), "bootloader", 64),
        granularity=f.text(meta.get("granularity", "word"), "granularity", 64),
        state=f.text(f.get(meta, "state"), "state", 64),
        reason=f.text(meta.get("reason", ""), "reason"),
        backup_registers=tuple(
            f.integer(v, f"backup_registers[{i}]", 0, _U32_MAX, "a 32-bit value 0..4294967295")
            for i, v in enumerate(regs)
        ),
        op_count=f.integer(
            f.get(counters, "op_count", "counters."),
            "counters.op_count",
            0,
            _COUNTER_MAX,
            f"a count 0..{_COUNTER_MAX}",
        ),
        erase_counts=tuple(
            f.integer(v, f"counters.erase_counts[{i}]", 0, _COUNTER_MAX, "a count >= 0")
            for i, v in enumerate(erases)
        ),
        device_time_s=f.seconds(
            f.get(counters, "device_time_s", "counters."), "counters.device_time_s"
        ),
        device_time_max_s=f.seconds(
            f.get(counters, "device_time_max_s", "counters."), "counters.device_time_max_s"
        ),
        real_code=meta.get("real_code"),
        reset_flags=None
        if meta.get("reset_flags") is None
        else f.integer(meta["reset_flags"], "reset_flags", 0, _U32_MAX, "a 32-bit RCC_CSR value"),
    )


class ImageLock:
    """An exclusive lock (``flock``) on a device image, held from load to the last save.

    The lock is on the file itself; a save replaces the file by a new one, so :meth:`prepare`
    locks the new file before it takes the name and :meth:`commit` lets the old one go: the
    image is locked without a gap. A process that opened the old file and finds the name now
    points at another one retries on the new file, where the lock holds.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self._pending: int | None = None

    @classmethod
    def acquire(cls, path: str | os.PathLike[str]) -> ImageLock:
        """Open ``path`` and lock it, or fail at once if another process holds it.

        Raises:
            EmulatorError: the image is in use, missing, unreadable or not a regular file.
        """
        p = Path(path)
        for _ in range(20):
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:
                raise EmulatorError(f"cannot read device image {p}: {e.strerror or e}") from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise EmulatorError(
                        f"{p} is {file_kind(st.st_mode)}, not a regular file; expected a "
                        "device image (create one with 'flashroom emu new')"
                    )
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise EmulatorError(
                            f"device image {p} is in use by another flashroom command (it holds "
                            "the image's lock); wait for it to finish, or use another image"
                        ) from None
                    raise
                now = os.stat(p)
            except OSError as e:
                os.close(fd)
                raise EmulatorError(f"cannot lock device image {p}: {e.strerror or e}") from None
            except BaseException:
                os.close(fd)
                raise
            if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                return cls(p, fd)
            os.close(fd)  # replaced while we waited: lock the file that has the name now
        raise EmulatorError(f"device image {p} keeps being replaced; is another command running?")

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise EmulatorError(f"device image {self.path}: the lock was released")
        return self._fd

    def read(self, *, limit: int = MAX_IMAGE_SIZE) -> bytes:
        """The whole image, read through the locked descriptor (bounded by the format).

        Raises:
            EmulatorError: not a regular file, larger than any image, or unreadable.
        """
        try:
            return read_fd(self.fd, limit=limit, name=str(self.path), what="a device image")
        except InputFileError as e:
            raise EmulatorError(str(e)) from None

    def prepare(self, new_fd: int) -> None:
        """Lock the new file (``new_fd``) before it replaces the image."""
        dup = os.dup(new_fd)
        try:
            fcntl.flock(dup, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(dup)
            raise
        self.abort()
        self._pending = dup

    def commit(self) -> None:
        """The new file has the name: keep its lock, release the old file's."""
        if self._pending is None:
            return
        old, self._fd, self._pending = self._fd, self._pending, None
        if old is not None:
            os.close(old)

    def abort(self) -> None:
        """The replacement failed: drop the new file's lock, keep the old one."""
        if self._pending is not None:
            with contextlib.suppress(OSError):
                os.close(self._pending)
            self._pending = None

    def release(self) -> None:
        """Unlock (close the descriptor). Safe to call twice."""
        self.abort()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def read_image_file(path: str | os.PathLike[str]) -> bytes:
    """Read a device image without locking it (``emu show``: a save replaces the file in one
    step, so a reader sees the image before or after it, never a mix).

    Raises:
        EmulatorError: missing, unreadable, not a regular file, or larger than any image.
    """
    try:
        return read_input(path, limit=MAX_IMAGE_SIZE, what="a device image")
    except InputFileError as e:
        raise EmulatorError(str(e)) from None


__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_IMAGE_SIZE",
    "MAX_METADATA_SIZE",
    "ImageLock",
    "ImageMetadata",
    "decode_image",
    "encode_image",
    "image_metadata",
    "read_image_file",
]
