"""What a run of the emulated device returns: its :class:`Outcome` (the ``emu`` JSON contract),
with the boot modes and results as enums."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class BootMode(StrEnum):
    """How the device ends a run (the ``boot`` of :class:`Outcome`)."""

    APPLICATION = "application"  # the user app runs
    SAFE_MODE = "safe_mode"
    DFU = "dfu"
    FACTORY = "factory"  # the factory image was restored and runs
    BRICKED = "bricked"  # it would execute a corrupt bootloader/system part, or loops on resets
    SYSTEM_MISMATCH = "system_mismatch"  # mismatched system parts run unchecked (spec 8.9)
    CRASHED = "crashed"  # the system starts the app and the MCU faults in it (not runnable code)
    OFF = "off"  # power was cut; boot() powers it again


class RunResult(StrEnum):
    """What a run did (the ``result`` of :class:`Outcome`)."""

    APPLIED = "applied"  # the new module is in place and runs (see flashroom.emu.verdict)
    INSTALLED_NOT_RUNNING = "installed_not_running"  # in place, but the device does not run it
    REJECTED = "rejected"  # nothing outside the OTA region changed; it may hold the image
    DAMAGED = "damaged"  # not applied, and something outside the OTA region changed
    INTERRUPTED = "interrupted"
    BOOTED = "booted"
    RUNNING = "running"  # nothing ran: the device as it stands (no reset happened)


BOOT_MODES: tuple[BootMode, ...] = tuple(BootMode)
RESULTS: tuple[RunResult, ...] = tuple(RunResult)


@dataclass(frozen=True)
class ModuleSummary:
    """A module as the device holds it in flash.

    ``sha256`` is the **stored** SHA-256 from the module suffix (what describe reports, spec 2.5
    #7); the device never computes it.
    """

    module_function: int
    module_index: int
    module_version: int
    size: int  # module file size: module_length + 4 (CRC), spec 2.6
    sha256: str
    start_address: int

    def to_json(self) -> dict[str, Any]:
        return {
            "module_function": self.module_function,
            "module_index": self.module_index,
            "module_version": self.module_version,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class OutcomeError:
    """Why a run did not apply: the Device OS ``system_error_t`` (None when there is none)."""

    code: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass
class Outcome:
    """The structured end of a run (the ``emu`` JSON contract, see :meth:`to_json`).

    Attributes:
        result: ``applied``, ``installed_not_running``, ``rejected``, ``damaged``,
            ``interrupted`` (an update, see :mod:`flashroom.emu.verdict`), ``booted`` or
            ``running`` (nothing was updated).
        error: why it was rejected / interrupted, or None.
        boot: how the device ended: ``application``, ``safe_mode``, ``dfu``, ``factory`` (the
            factory image was restored and runs), and two values beyond the original list:
            ``bricked`` (it would execute a corrupt bootloader/system part, or loops on resets)
            and ``off`` (power was cut; ``boot()`` powers it again).
        running: the user module that runs, or None.
        device_time_s: modelled flash time of this run (datasheet typical, spec 8.7).
        sector_erases: erases per sector index in this run (only sectors erased).
        flash_ops: flash operations of this run (granularity-dependent).
        device_time_max_s: the same time with datasheet maxima (not in the JSON contract).
        events: firmware trace of this run (not in the JSON contract).
        bootloader_firmware: the real bootloader in sector 0 that every boot executes
            (``{"sha256", "module_version"}``), or None when the Python model boots.
        system_firmware: the real system modules whose OTA path runs (``{"dir", "parts"}``),
            or None when the model's OTA path runs.
        scratch: for a ``rejected`` update, what the OTA region holds now (``start``, ``end``,
            ``changed``, ``holds_refused_image``); None otherwise.
    """

    result: RunResult
    error: OutcomeError | None
    boot: BootMode
    running: ModuleSummary | None
    device_time_s: float
    sector_erases: dict[int, int]
    flash_ops: int
    device_time_max_s: float = 0.0
    events: list[str] = field(default_factory=list)
    bootloader_firmware: dict[str, Any] | None = None
    system_firmware: dict[str, Any] | None = None
    scratch: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Exactly the contract keys."""
        return {
            "result": self.result,
            "error": None if self.error is None else self.error.to_json(),
            "boot": self.boot,
            "running": None if self.running is None else self.running.to_json(),
            "device_time_s": round(self.device_time_s, 6),
            "sector_erases": {str(k): v for k, v in sorted(self.sector_erases.items())},
            "flash_ops": self.flash_ops,
            "bootloader_firmware": self.bootloader_firmware,
            "system_firmware": self.system_firmware,
            "scratch": self.scratch,
        }


__all__ = [
    "BOOT_MODES",
    "RESULTS",
    "BootMode",
    "ModuleSummary",
    "Outcome",
    "OutcomeError",
    "RunResult",
]
