"""Which parts of an emulated device run the real Device OS binaries (issue 10).

A :class:`~flashroom.emu.device.Device` normally runs flashroom's Python model of the bootloader
and of the system OTA path. Made with ``--bootloader-firmware FILE`` its every boot executes the
bytes in sector 0 with :mod:`flashroom.firmware` (so a bootloader replaced over the air, or torn
while being rewritten, is what runs next); made with ``--system-firmware DIR`` its OTA receive
and finish path is the real ``Spark_*_Firmware_Update`` code of system module idx 2, called at
function level. What stays model either way: the system's boot checks (module validation,
safe mode, the embedded-bootloader rewrite), the cloud protocol's own state and the application.

:class:`RealCode` is what the device image records; :class:`FirmwareIdentity` is what every
report shows as ``bootloader_firmware``. Unicorn is imported only when real code runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flashroom.deviceos.gen2 import BOOTLOADER_ADDRESS
from flashroom.emu.flashmal import module_info_at
from flashroom.errors import EmulatorError
from flashroom.ranges import fmt_addr

if TYPE_CHECKING:  # the firmware runner imports Unicorn: only where real code runs
    from flashroom.emu.flash import NorFlash
    from flashroom.firmware.image import FirmwareImage
    from flashroom.firmware.ota import SystemParts

#: The system module whose OTA functions the real path calls (spec 11.2).
OTA_PATH_MODULE_INDEX = 2


@dataclass(frozen=True)
class FirmwareIdentity:
    """A real bootloader as it sits in sector 0 now (what the next boot executes).

    Attributes:
        sha256: of the module as stored (``module_length + 4`` bytes when its module_info is
            sane, else of the whole sector 0).
        module_version: its ``module_version`` (None when sector 0 holds no readable
            module_info: a torn rewrite).
    """

    sha256: str
    module_version: int | None

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "module_version": self.module_version}


def sector0_identity(flash: NorFlash) -> FirmwareIdentity:
    """The identity of whatever sector 0 holds (read without emitting flash events)."""
    sector = flash.chip.sectors[0]
    data = flash.contents()[sector.start - flash.base : sector.end - flash.base]
    info = module_info_at(flash, BOOTLOADER_ADDRESS)
    if (
        info is not None
        and info.module_start_address == BOOTLOADER_ADDRESS
        and BOOTLOADER_ADDRESS < info.module_end_address <= sector.end - 4
    ):
        body = data[: info.module_length + 4]
        return FirmwareIdentity(hashlib.sha256(body).hexdigest(), info.module_version)
    return FirmwareIdentity(hashlib.sha256(data).hexdigest(), None)


@dataclass(frozen=True)
class SystemPartRecord:
    """One real system module as installed: its index, file and SHA-256."""

    module_index: int
    file: str
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"module_index": self.module_index, "file": self.file, "sha256": self.sha256}


@dataclass(frozen=True)
class RealCode:
    """What of a device runs real code, as the device image records it.

    Attributes:
        bootloader: every boot executes sector 0 with the firmware runner.
        bootloader_file: the file installed at ``emu new`` (for reports; sector 0 may change).
        system_dir: the folder whose system modules (and symbols) the real OTA path uses; None:
            the model's OTA path runs.
        system_parts: the three modules installed from it.
        also: more folders of real system modules whose symbols the OTA path may use, when a
            system OTA (a migration) replaces idx 2 with one of theirs.
    """

    bootloader: bool = False
    bootloader_file: str | None = None
    system_dir: str | None = None
    system_parts: tuple[SystemPartRecord, ...] = ()
    also: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return self.bootloader or self.system_dir is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "bootloader": self.bootloader,
            "bootloader_file": self.bootloader_file,
            "system_dir": self.system_dir,
            "system_parts": [p.to_json() for p in self.system_parts],
            "also": list(self.also),
        }

    @classmethod
    def from_json(cls, data: Any) -> RealCode:
        """Read :meth:`to_json`'s output (``KeyError``/``TypeError`` on a malformed record)."""
        if data is None:
            return cls()
        parts = tuple(
            SystemPartRecord(int(p["module_index"]), str(p["file"]), str(p["sha256"]))
            for p in data["system_parts"]
        )
        return cls(
            bool(data["bootloader"]),
            None if data["bootloader_file"] is None else str(data["bootloader_file"]),
            None if data["system_dir"] is None else str(data["system_dir"]),
            parts,
            tuple(str(x) for x in data.get("also", ())),
        )


def load_bootloader_file(path: str | Path) -> FirmwareImage:
    """Read and check a real Electron bootloader (``.bin`` or ``.elf``).

    Raises:
        FirmwareImageError: not an ARM bootloader image for this platform (wrong platform id,
            no vector table, larger than sector 0, an ELF for another machine), naming the file
            and the field.
        EmulatorError: the file cannot be read.
    """
    from flashroom.firmware.boot import load_bootloader

    p = Path(path)
    if not p.is_file():
        raise EmulatorError(f"bootloader firmware {p}: no such file")
    return load_bootloader(p)


def load_system_dir(folder: str | Path) -> SystemParts:
    """The real system modules in ``folder`` (by module info) with the symbols the OTA path
    needs.

    Raises:
        FirmwareImageError: an index missing or given twice, or a function of the OTA path
            missing from the symbols (put the ``.elf`` beside the ``.bin``).
        EmulatorError: not a folder.
    """
    from flashroom.firmware.ota import ENTRY_POINTS, SystemParts

    d = Path(folder)
    if not d.is_dir():
        raise EmulatorError(
            f"system firmware {d}: not a folder (give the folder that holds the "
            "three system-part .bin/.elf files)"
        )
    parts = SystemParts.from_folder(d)
    for name, index in ENTRY_POINTS:
        parts.function(name, index)  # FirmwareSymbolError names the module and the symbol
    return parts


def system_records(parts: SystemParts) -> tuple[SystemPartRecord, ...]:
    return tuple(
        SystemPartRecord(p.info.module_index, Path(p.name).name, hashlib.sha256(p.data).hexdigest())
        for p in parts.parts
    )


def parts_in_flash(flash: NorFlash, parts: SystemParts) -> bool:
    """Whether system module idx 2 in flash is ``parts``' (whose symbols we hold)."""
    part = parts.part(OTA_PATH_MODULE_INDEX)
    return flash.contents()[part.address - flash.base : part.end - flash.base] == part.data


def check_parts_in_flash(flash: NorFlash, parts: SystemParts, source: str) -> None:
    """The OTA path's module in flash must be the one whose symbols we hold.

    Raises:
        EmulatorError: system module idx 2 in flash differs from ``source``'s (replaced by a
            system OTA, for example): its functions are not where the symbols say.
    """
    if not parts_in_flash(flash, parts):
        part = parts.part(OTA_PATH_MODULE_INDEX)
        raise EmulatorError(
            f"system module idx {OTA_PATH_MODULE_INDEX} at {fmt_addr(part.address)} is no longer "
            f"the one in {source} (a system update replaced it?): the real OTA path needs the "
            "symbols of the code in flash; make the device again with the new parts, or name "
            "their folder too (also)"
        )


__all__ = [
    "OTA_PATH_MODULE_INDEX",
    "FirmwareIdentity",
    "RealCode",
    "SystemPartRecord",
    "check_parts_in_flash",
    "load_bootloader_file",
    "load_system_dir",
    "parts_in_flash",
    "sector0_identity",
    "system_records",
]
