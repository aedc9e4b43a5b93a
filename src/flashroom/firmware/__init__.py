"""flashroom.firmware: the real Device OS ARM binaries running against flashroom's own flash.

Unicorn (Thumb, M-class, Cortex-M3) executes the real code instruction by instruction; every
program and erase it makes goes through the device's :class:`~flashroom.emu.flash.NorFlash`
(the granularity contract is in :mod:`flashroom.firmware.flashport`).

* :mod:`~flashroom.firmware.targets`: the few Particle addresses the runner needs;
  :mod:`~flashroom.firmware.stm32f2`: chip register facts as data.
* :mod:`~flashroom.firmware.image`: ``.bin``/``.elf`` loading and the bad-input verdicts.
* :mod:`~flashroom.firmware.machine`: :class:`Machine`;
  :mod:`~flashroom.firmware.outcome`: :class:`FirmwareOutcome`, :class:`FirmwareRun`.
* :mod:`~flashroom.firmware.boot`: :class:`RealBootloader` (boot from sector 0).
* :mod:`~flashroom.firmware.ota`: :class:`RealSystemOta` (the system OTA path at function
  level, spec 11.2).

Only the submodules that need it import Unicorn; ``import flashroom.firmware`` itself is light
and resolves the names below on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ELECTRON": "targets",
    "FirmwareTarget": "targets",
    "FirmwareImage": "image",
    "FirmwareImageError": "image",
    "FirmwareSymbolError": "image",
    "install_image": "image",
    "FlashCall": "flashport",
    "FlashPrimitive": "flashport",
    "FlashRecorder": "flashport",
    "FlashRun": "flashport",
    "BackupRegisterFile": "machine",
    "Machine": "machine",
    "MachineSnapshot": "machine",
    "FirmwareOutcome": "outcome",
    "FirmwareRun": "outcome",
    "RealBootloader": "boot",
    "install_bootloader": "boot",
    "load_bootloader": "boot",
    "run_bootloader": "boot",
    "RealSystemOta": "ota",
    "SystemParts": "ota",
    "FirmwareCallError": "ota",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flashroom.firmware' has no attribute {name!r}")
    return getattr(importlib.import_module(f"flashroom.firmware.{module}"), name)
