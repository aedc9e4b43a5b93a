"""Running a migration plan (:mod:`flashroom.devos.migrate`) on an emulated stock Electron.

With real system modules, the user-part step runs the real OTA path; the system-part steps run
the model's, because the real ``Spark_Finish_Firmware_Update`` of a system part cannot finish at
function level: ``validate_module_dependencies`` asks ``HAL_System_Info`` for the modem's
version (``cellular_device_info`` -> ``MDMParser::init``), which takes a FreeRTOS recursive
mutex, and with no scheduler running ``uxListRemove`` faults (measured: a bit-band write to an
unmapped address at PC 0x080515c6 of the v2.3.1 idx 2). Each step's report says which path ran.

The planner says what each step should do; this executor sends each step to a fresh stock
2.3.1 device (the model, or with ``system_firmware`` the real stock OTA path and, once the
patched idx 2 runs, the patched one from ``also``), over the emulated cellular link when one is
named, and reports what the device actually did: the result, the error, how it booted, what
runs, which system runs after, and the bytes the link carried.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flashroom.devos.migrate import MigrationPlan
from flashroom.emu.device import Device
from flashroom.ota.link import get_link
from flashroom.scenarios.deliver import update_in_process


@dataclass(frozen=True)
class StepRun:
    """What the emulated device did with one step."""

    step: int
    label: str
    result: str
    error_code: int | None
    error: str | None
    boot: str
    running_version: int | None
    system_after: str
    wire_bytes: int | None
    link_time_s: float | None
    agrees: bool
    ota_path: str = "model"

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "label": self.label,
            "result": self.result,
            "error_code": self.error_code,
            "error": self.error,
            "boot": self.boot,
            "running_version": self.running_version,
            "system_after": self.system_after,
            "wire_bytes": self.wire_bytes,
            "link_time_s": self.link_time_s,
            "agrees_with_plan": self.agrees,
            "ota_path": self.ota_path,
        }


def emulate_plan(
    plan: MigrationPlan,
    *,
    link: str | None = "3g",
    bootloader_firmware: str | Path | None = None,
    system_firmware: str | Path | None = None,
    also_system_firmware: tuple[str | Path, ...] = (),
    seed: int = 0,
) -> list[StepRun]:
    """Send ``plan``'s steps (and, when it was refused, the refused step) to a fresh stock
    device, in order, stopping at the first one that is not applied.

    Args:
        plan: from :func:`~flashroom.devos.migrate.plan_migration`.
        link: an emulated link preset (``3g``...) the updates go over with the CoAP protocol,
            or None for the direct OTA path (no link figures).
        bootloader_firmware: a real bootloader for the device.
        system_firmware: real stock system modules (the device's OTA path is then real).
        also_system_firmware: the patched build's folder (its idx 2 runs after step 3).
        seed: link and protocol seed.
    """
    variant = "resumable" if plan.fleet_bootloader >= 1003 else "legacy"
    dev = Device.new(
        "electron",
        "stock",
        variant if bootloader_firmware is None else "resumable",
        bootloader_firmware=bootloader_firmware,
        system_firmware=system_firmware,
        also_system_firmware=also_system_firmware,
    )
    todo = [(s.number, s.module, True) for s in plan.steps]
    if plan.refusal is not None:
        refused = next((m for m in plan.modules if m.label() == plan.refusal.module), None)
        if refused is not None:
            todo.append((plan.refusal.step, refused, False))
    runs: list[StepRun] = []
    for number, m, expect_applied in todo:
        # the real finish of a system part stops in cellular_device_info (module docstring)
        dev.use_real_ota = m.is_app
        path = "real" if dev.real.system_dir is not None and m.is_app else "model"
        if link is None:
            out = dev.ota(m.data).to_json()
            result = str(out["result"])
            err = out.get("error") or {}
            wire = None
            link_s = None
        else:
            res = update_in_process(dev, m.data, link=get_link(link), seed=seed + number)
            out = res.outcome or {}
            result = res.result
            err = {"code": res.error_code, "message": res.error}
            wire = res.report.wire_bytes if res.report is not None else None
            link_s = round(res.report.link_time_s, 3) if res.report is not None else None
        running = out.get("running") or {}
        code = err.get("code")
        agrees = (result == "applied") == expect_applied
        if not expect_applied and plan.refusal is not None and plan.refusal.expected_error:
            agrees = agrees and code == plan.refusal.expected_error
        runs.append(
            StepRun(
                number,
                m.label(),
                result,
                code,
                err.get("message"),
                str(out.get("boot")),
                running.get("module_version"),
                dev.profile.name,
                wire,
                link_s,
                agrees,
                path,
            )
        )
        if result != "applied":
            break
    dev.use_real_ota = True
    return runs


__all__ = ["StepRun", "emulate_plan"]
