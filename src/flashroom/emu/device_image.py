"""Device images of :class:`flashroom.emu.device.Device`: load with the image lock, save
atomically, and the file's bytes (``emu/image.py`` has the format and the lock)."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Self

from flashroom.atomicfile import check_output_file, remove_stale_temps, write_bytes_atomic
from flashroom.deviceos import Profile
from flashroom.emu.flash import NorFlash
from flashroom.emu.hardware import Hardware
from flashroom.emu.image import ImageLock, encode_image, read_image_file
from flashroom.emu.outcome import BootMode
from flashroom.emu.realcode import RealCode
from flashroom.emu.sysflags import BackupRegisters
from flashroom.errors import EmulatorError


class ImageFileMixin:
    """Loading and saving a device image (see the module docstring)."""

    profile: Profile
    bootloader_variant: str
    flash: NorFlash
    regs: BackupRegisters
    hw: Hardware
    state: BootMode
    reason: str
    real: RealCode
    _image_lock: ImageLock | None

    @classmethod
    def _from_image(cls, p: Path, data: bytes) -> Self:  # pragma: no cover - Device defines it
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path, *, lock: bool = True) -> Self:
        """Load a device image written by :meth:`save`.

        Args:
            path: the image file.
            lock: hold an exclusive lock on the image until :meth:`release_image` (or until the
                device is garbage-collected), so that no other process changes it between this
                load and the next :meth:`save`; a held lock fails at once. ``False`` for a
                read-only look (``emu show``).

        Raises:
            EmulatorError: missing, not a regular file, in use by another process, not an
                image, corrupt, or a metadata field of the wrong type or out of range.
        """
        p = Path(path)
        image_lock: ImageLock | None = None
        if lock:
            image_lock = ImageLock.acquire(p)
            try:
                remove_stale_temps(p)  # left by a writer killed mid-save (we hold the lock)
                data = image_lock.read()
            except BaseException:
                image_lock.release()
                raise
        else:
            data = read_image_file(p)
        try:
            dev = cls._from_image(p, data)
        except BaseException:
            if image_lock is not None:
                image_lock.release()
            raise
        if image_lock is not None:
            dev._image_lock = image_lock
            weakref.finalize(dev, image_lock.release)
        return dev

    def release_image(self) -> None:
        """Release the lock :meth:`load` took on its image (safe to call twice)."""
        if self._image_lock is not None:
            self._image_lock.release()
            self._image_lock = None

    def image_bytes(self) -> bytes:
        """The device image file's content (what :meth:`save` writes)."""
        meta = {
            "platform": self.profile.platform,
            "platform_id": self.profile.platform_id,
            "profile": self.profile.name,
            "bootloader": self.bootloader_variant,
            "granularity": self.flash.granularity,
            "state": self.state,
            "reason": self.reason,
            "backup_registers": list(self.regs.regs),
            "real_code": self.real.to_json() if self.real.any else None,
            "reset_flags": self.hw.reset_flags,
            "counters": {
                "op_count": self.flash.op_count,
                "erase_counts": list(self.flash.erase_counts),
                "device_time_s": self.flash.device_time_s,
                "device_time_max_s": self.flash.device_time_max_s,
            },
        }
        return encode_image(meta, self.flash.contents())

    def save(self, path: str | Path) -> None:
        """Write the device image atomically (a complete new file takes the name in one step).

        The image is locked while it is written: with the lock :meth:`load` took on the same
        file, the lock moves to the new file without a gap; otherwise an existing image at
        ``path`` is locked for the write (and refused at once if another process holds it).
        The new file keeps the old one's permission bits.

        Raises:
            OutputError: the file cannot be written, or ``path`` is not a regular file (a link,
                a device...); the old image is then unchanged.
            EmulatorError: another process holds the image's lock.
        """
        target = Path(path)
        data = self.image_bytes()
        check_output_file(target)  # a link or a device is refused before it is locked
        held = self._image_lock
        temporary: ImageLock | None = None
        if held is None or not _same_file(held, target):
            held = temporary = ImageLock.acquire(target) if target.exists() else None
        try:
            if held is None:
                write_bytes_atomic(target, data)
                return
            try:
                write_bytes_atomic(target, data, before_replace=held.prepare)
            except BaseException:
                held.abort()
                raise
            held.commit()
        finally:
            if temporary is not None:
                temporary.release()


def _same_file(lock: ImageLock, path: Path) -> bool:
    """Whether ``path`` names the file ``lock`` holds (the image :meth:`Device.load` read)."""
    try:
        a, b = os.fstat(lock.fd), os.stat(path)
    except (OSError, EmulatorError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
