"""Shared helpers for the real-firmware tests: the Device OS fixtures and a width-aware NorFlash.

:class:`WidthNorFlash` is the thin local stand-in for the NorFlash extension the lead is landing
on main (``program(..., width=)``, ``arm_fault(..., kind="fail")``): at word granularity a
program call counts ``len // width + len % width`` operations, a ``fail`` fault makes its
operation fail without writing and raises ``FlashOpError``. It only overrides NorFlash methods
in a subclass (nothing is replaced at run time) and goes when main's NorFlash has these.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import pytest

from flashroom.emu.bootloader import Bootloader
from flashroom.emu.device import Device
from flashroom.emu.flash import NorFlash
from flashroom.errors import PowerCut
from flashroom.firmware.flashport import FlashOpError
from flashroom.particle.build import synthetic_user_app

HERE = Path(__file__).resolve()
K = 1024

BOOTLOADER_1006 = "electron-bootloader@v2.3.1"
BOOTLOADER_1002 = "electron-bootloader@v2.0.0-rc.1"


def device_os_fixtures_dir() -> Path | None:
    """$FLASHROOM_DEVICE_OS_FIXTURES, else the first ``shared/fixtures/device-os`` above us."""
    env = os.environ.get("FLASHROOM_DEVICE_OS_FIXTURES")
    if env:
        return Path(env)
    for parent in HERE.parents:
        d = parent / "shared" / "fixtures" / "device-os"
        if d.is_dir():
            return d
    return None


@pytest.fixture(scope="session")
def device_os() -> Path:
    d = device_os_fixtures_dir()
    if d is None or not (d / f"{BOOTLOADER_1006}.bin").is_file():
        pytest.skip(
            "real Device OS binaries not found (shared/fixtures/device-os above the repo, or "
            "set FLASHROOM_DEVICE_OS_FIXTURES)"
        )
    return d


# ------------------------------------------------------------------ width-aware NorFlash
class Call(NamedTuple):
    kind: str
    addr: int
    size: int
    width: int


class WidthNorFlash(NorFlash):
    """NorFlash with the ``width`` program argument and ``fail`` faults (see module doc)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: list[Call] = []
        self._fail_at: int | None = None
        self._fail_since = 0

    def arm_fault(  # type: ignore[override]
        self, cut_at_op: int, torn: bool = False, seed: int = 0, kind: str = "cut"
    ) -> None:
        if kind == "fail":
            self._fail_at = cut_at_op
            self._fail_since = 0
            return
        super().arm_fault(cut_at_op, torn, seed)

    def disarm(self) -> None:
        self._fail_at = None
        super().disarm()

    def _maybe_fail(self, n_ops: int) -> int | None:
        """Ops of this call completing before the armed failure, or None (and count them)."""
        at = self._fail_at
        start = self._fail_since
        self._fail_since = start + n_ops
        if at is None or not start <= at < start + n_ops:
            return None
        self._fail_at = None
        return at - start

    def erase_sector(self, index: int) -> None:
        self.calls.append(Call("erase", self.chip.sectors[index].start, 0, 0))
        if self._maybe_fail(1) is not None:
            self.op_count += 1
            raise FlashOpError(self.op_count - 1)
        super().erase_sector(index)

    def program(  # type: ignore[override]
        self, addr: int, data: bytes | bytearray | memoryview, *, width: int = 4
    ) -> None:
        data = bytes(data)
        self.calls.append(Call("program", addr, len(data), width))
        size = len(data)
        n_units, tail = divmod(size, width)
        units = n_units + tail
        n_ops = units if self.granularity == "word" else 1
        k = self._maybe_fail(n_ops)
        if k is not None:
            done = min(size, k * width) if k <= n_units else n_units * width + (k - n_units)
            if self.granularity == "chunk":
                done = 0
            if done:
                self._program_units(addr, data[:done], width)
            self.op_count += 1
            raise FlashOpError(self.op_count - 1)
        self._program_units(addr, data, width)

    def _program_units(self, addr: int, data: bytes, width: int) -> None:
        if width == 4 or self.granularity == "chunk":
            super().program(addr, data)
            return
        size = len(data)
        off = self._offset(addr, size)
        if size == 0:
            return
        n_units, tail = divmod(size, width)
        units = n_units + tail
        cut = self._fault_in(units)
        if cut is not None:
            fault, k = cut
            done = k * width if k <= n_units else min(size, n_units * width + (k - n_units))
            self._and(off, data[:done])
            self._charge_units(k)
            if k:
                self._account("program", addr, done, k)
            if fault.torn:
                nxt = (k + 1) * width if k + 1 <= n_units else n_units * width + (k + 1 - n_units)
                self._torn_program(off + done, data[done : min(size, nxt)], fault.seed)
            raise PowerCut(fault.cut_at_op, fault.torn)
        self._and(off, data)
        self._charge_units(units)
        self._account("program", addr, size, units)


# ------------------------------------------------------------------ device states
@dataclass(frozen=True)
class Pending:
    """A device state made by flashroom's model: a pending OTA slot + the image in scratch."""

    contents: bytes
    regs: tuple[int, ...]
    app: bytes
    profile: str


@functools.lru_cache(maxsize=8)
def pending_update(size: int, profile: str = "extended", seed: int = 7) -> Pending:
    """The model's OTA receive path (``ota_begin/ota_write/ota_finish``) on a fresh device."""
    dev = Device.new(platform="electron", profile=profile)
    app = synthetic_user_app(size, platform="electron", seed=seed)
    if dev.ota_begin(len(app), 512, 0) != 0:
        raise RuntimeError("model ota_begin refused")
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    rc = dev.ota_finish()
    if rc != 1:
        raise RuntimeError(f"model ota_finish returned {rc}")
    return Pending(dev.flash.contents(), tuple(dev.regs.regs), app, profile)


def make_device(
    contents: bytes, regs: tuple[int, ...], *, profile: str = "extended", granularity: str = "word"
) -> Device:
    """A Device on a :class:`WidthNorFlash` holding ``contents``."""
    from flashroom.emu.profiles import get_profile
    from flashroom.emu.sysflags import BackupRegisters

    flash = WidthNorFlash(granularity=granularity)  # type: ignore[arg-type]
    flash.load_contents(contents)
    dev = Device(get_profile("electron", profile), flash=flash, regs=BackupRegisters(list(regs)))
    dev.state = "application"
    return dev


def model_boot(dev: Device) -> str:
    """flashroom's model bootloader on ``dev`` (what the real one is compared with)."""
    return Bootloader(dev.hw).run().kind


@pytest.fixture(scope="session")
def fw(device_os: Path) -> SimpleNamespace:
    """The helpers above for the test modules (importlib mode: tests cannot import conftest)."""
    return SimpleNamespace(
        dir=device_os,
        K=K,
        BOOTLOADER_1006=device_os / f"{BOOTLOADER_1006}.bin",
        BOOTLOADER_1002=device_os / f"{BOOTLOADER_1002}.bin",
        WidthNorFlash=WidthNorFlash,
        pending_update=pending_update,
        make_device=make_device,
        model_boot=model_boot,
    )


@pytest.fixture
def width_flash() -> type[WidthNorFlash]:
    """The width-aware NorFlash class (no Device OS binaries needed)."""
    return WidthNorFlash
