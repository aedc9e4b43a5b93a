"""Shared helpers for the real-firmware tests: the Device OS fixtures, model device states and a
flash observer."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from flashroom.deviceos import get_profile
from flashroom.emu.bootloader import Bootloader
from flashroom.emu.device import Device
from flashroom.emu.flash import FlashEvent, FlashEventKind, NorFlash
from flashroom.emu.outcome import BootMode
from flashroom.emu.sysflags import BackupRegisters
from flashroom.particle.build import synthetic_user_app

HERE = Path(__file__).resolve()
K = 1024

BOOTLOADER_1006 = "electron-bootloader@v2.3.1"
BOOTLOADER_1002 = "electron-bootloader@v2.0.0-rc.1"


@pytest.fixture(scope="session")
def device_os(real_binaries: Path) -> Path:
    """The real binaries (the root conftest's ``real_binaries``: it skips when they are absent)."""
    return real_binaries


# ------------------------------------------------------------------ a flash observer
class Calls:
    """Records the program and erase events of a NorFlash (``NorFlash.subscribe``)."""

    def __init__(self) -> None:
        self.events: list[FlashEvent] = []

    def flash_event(self, event: FlashEvent) -> None:
        if event.kind != FlashEventKind.READ:
            self.events.append(event)

    def programs(self) -> list[FlashEvent]:
        return [e for e in self.events if e.kind == FlashEventKind.PROGRAM]


def watch(flash: NorFlash) -> Calls:
    """Subscribe a :class:`Calls` recorder to ``flash``."""
    calls = Calls()
    flash.subscribe(calls)
    return calls


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
    """A running Device on a fresh NorFlash holding ``contents``."""
    flash = NorFlash(granularity=granularity)  # type: ignore[arg-type]
    flash.load_contents(contents)
    dev = Device(get_profile("electron", profile), flash=flash, regs=BackupRegisters(list(regs)))
    dev.state = BootMode.APPLICATION
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
        watch=watch,
        pending_update=pending_update,
        make_device=make_device,
        model_boot=model_boot,
    )
