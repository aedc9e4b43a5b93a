"""The real-code half of :class:`flashroom.emu.device.Device` (see :mod:`flashroom.emu.realcode`):
booting sector 0 with the firmware runner, routing the OTA entry points to the real system
code, and making a fresh device that carries real binaries.

Unicorn is imported only when real code runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flashroom.deviceos import Profile, get_profile
from flashroom.deviceos.gen2 import (
    EXTENDED_SYSTEM_VERSION,
    RESUMABLE_FROM_VERSION,
    SYSTEM_ERROR_NAMES,
    SYSTEM_VERSION_2_3_1,
)
from flashroom.deviceos.ota import SystemUpdateCallbacks
from flashroom.emu.bootloader import Bootloader, BootloaderResult
from flashroom.emu.flash import Granularity, NorFlash
from flashroom.emu.fresh import default_modules, factory_image
from flashroom.emu.hardware import Hardware
from flashroom.emu.realcode import (
    RealCode,
    check_parts_in_flash,
    load_bootloader_file,
    load_system_dir,
    parts_in_flash,
    sector0_identity,
    system_records,
)
from flashroom.emu.sysflags import FACTORY_RESET_DONE, FACTORY_RESET_REQUEST, BackupRegisters
from flashroom.emu.system import SystemFirmware
from flashroom.errors import EmulatorError, ParamError
from flashroom.ranges import fmt_addr

if TYPE_CHECKING:
    from flashroom.emu.device import Device


class RealCodeMixin:
    """What :class:`~flashroom.emu.device.Device` does when :attr:`real` says real code runs."""

    profile: Profile
    flash: NorFlash
    regs: BackupRegisters
    hw: Hardware
    real: RealCode
    use_real_code: bool
    use_real_ota: bool
    firmware_runs: list[Any]
    _system: SystemFirmware
    _rb: Any
    _parts: dict[str, Any]
    _real_ota: Any

    def _run_bootloader(self, button_s: float) -> BootloaderResult:
        """One bootloader run: the model, or the real code in sector 0 (see :attr:`real`)."""
        hw = self.hw
        if not (self.real.bootloader and self.use_real_code):
            return Bootloader(hw).run(button_s=button_s, reset_flags=hw.reset_flags)
        if button_s > 0:
            raise ParamError(
                "a held MODE button cannot be emulated with the real bootloader: its button "
                "loop counts SysTick interrupts, which the firmware runner does not deliver "
                "(it would hang); boot a model device for the button paths",
                "button_s",
            )
        from flashroom.firmware.outcome import FirmwareOutcome  # light; the runner is not

        rb = self._real_bootloader()
        requested = self.regs.load_flags().Factory_Reset_SysFlag == FACTORY_RESET_REQUEST
        run = rb.boot(reset_flags=hw.reset_flags)
        self.firmware_runs.append(run)
        where = f"PC {fmt_addr(run.pc)}" + (
            f", address {fmt_addr(run.address)}" if run.address is not None else ""
        )
        if run.outcome is FirmwareOutcome.OFF and run.power_cut is not None:
            raise run.power_cut
        if run.outcome is FirmwareOutcome.JUMP:
            handler = rb.system_reset_handler()
            target = run.target if run.target is not None else run.pc
            if target & ~1 != handler:
                hw.log(
                    f"bootloader (real): left sector 0 for {fmt_addr(target)}, not the system "
                    f"reset handler {fmt_addr(handler)}"
                )
            hw.log(f"bootloader (real): jump to {fmt_addr(target)} ({run.flash_ops} flash ops)")
            return BootloaderResult("jump")
        if run.outcome is FirmwareOutcome.RESET:
            done = self.regs.load_flags().Factory_Reset_Done_SysFlag == FACTORY_RESET_DONE
            factory = requested and done
            why = "factory restore" if factory else f"NVIC_SystemReset at {where}"
            return BootloaderResult("reset", factory_restored=factory, reason=f"real: {why}")
        if run.outcome is FirmwareOutcome.DFU:
            return BootloaderResult(
                "dfu", reason=f"the real bootloader entered DFU mode (USB OTG access at {where})"
            )
        return BootloaderResult(
            "bricked",
            reason=f"the real bootloader {run.outcome} at {where}: {run.reason}".rstrip(": "),
        )

    def _real_bootloader(self) -> Any:
        if self._rb is None:
            from flashroom.firmware.boot import RealBootloader  # imports Unicorn

            self._rb = RealBootloader(self.flash, self.regs)
        return self._rb

    def _ota_path(self) -> SystemUpdateCallbacks:
        """The system OTA path of this power-on: the model's, or the real code's (the parts,
        among :attr:`RealCode.system_dir` and :attr:`RealCode.also`, whose idx 2 is in flash)."""
        if self.real.system_dir is None or not (self.use_real_code and self.use_real_ota):
            return self._system
        if self._real_ota is None:
            from flashroom.firmware.ota import RealSystemOta  # imports Unicorn

            parts = self._parts_in_flash()
            self._real_ota = RealSystemOta(self.flash, self.regs, parts)
        return self._real_ota  # type: ignore[no-any-return]

    def _parts_in_flash(self) -> Any:
        assert self.real.system_dir is not None
        folders = (self.real.system_dir, *self.real.also)
        for folder in folders:
            if folder not in self._parts:
                self._parts[folder] = load_system_dir(folder)
            if parts_in_flash(self.flash, self._parts[folder]):
                return self._parts[folder]
        check_parts_in_flash(self.flash, self._parts[folders[0]], " or ".join(folders))
        raise AssertionError("unreachable")  # pragma: no cover

    def _finish_reason(self, path: SystemUpdateCallbacks, rc: int) -> str:
        if path is self._system:
            return self._system.last_finish_reason
        name = SYSTEM_ERROR_NAMES.get(rc)
        return f"Spark_Finish_Firmware_Update returned {rc}" + (f" ({name})" if name else "")

    def bootloader_firmware(self) -> dict[str, Any] | None:
        """The real bootloader every boot executes, as reports show it (None: the model)."""
        if not self.real.bootloader:
            return None
        return sector0_identity(self.flash).to_json()

    def system_firmware(self) -> dict[str, Any] | None:
        """The real system modules whose OTA path runs, as reports show them (None: model)."""
        if self.real.system_dir is None:
            return None
        return {
            "dir": self.real.system_dir,
            "parts": [p.to_json() for p in self.real.system_parts],
        }


def new_with_real_code(
    cls: type[Device],
    platform: str,
    profile: str,
    bootloader: str,
    granularity: Granularity,
    bootloader_firmware: str | Path | None,
    system_firmware: str | Path | None,
    also_system_firmware: tuple[str | Path, ...] = (),
) -> Device:
    """:meth:`Device.new` with real firmware (see its arguments)."""
    prof = get_profile(platform, profile, gen2_only=True)
    if prof.platform != "electron":
        raise EmulatorError(
            f"real Device OS firmware runs on electron only (the firmware runner's target), not "
            f"{prof.platform}"
        )
    bl_image = load_bootloader_file(bootloader_firmware) if bootloader_firmware else None
    parts = load_system_dir(system_firmware) if system_firmware else None
    if also_system_firmware and parts is None:
        raise ParamError(
            "also_system_firmware names folders whose symbols the real OTA path may use after "
            "a system update: give system_firmware (the parts installed now) too",
            "also_system_firmware",
            "system_firmware",
        )
    for folder in also_system_firmware:
        load_system_dir(folder)  # the symbols the path needs, checked now
    if parts is not None:
        implied = profile_of_system_parts(parts)
        if implied != prof.name:
            version = parts.part(2).info.module_version
            raise ParamError(
                f"the system modules in {system_firmware} are version {version}, which is the "
                f"{implied} profile, not {prof.name}",
                "profile",
                "system_firmware",
            )
    variant = bootloader
    if bl_image is not None:
        version = bl_image.info.module_version
        variant = "resumable" if version >= RESUMABLE_FROM_VERSION else "legacy"
    real = RealCode(
        bootloader=bl_image is not None,
        bootloader_file=None if bl_image is None else str(Path(bl_image.name).resolve()),
        system_dir=None if system_firmware is None else str(Path(system_firmware).resolve()),
        system_parts=() if parts is None else system_records(parts),
        also=tuple(str(Path(d).resolve()) for d in also_system_firmware),
    )
    build = cls(prof, bootloader=variant)
    modules = default_modules(prof.platform, prof.name, variant)
    if parts is not None:  # the three real system modules replace the synthetic ones
        modules = [modules[0], *(p.data for p in parts.parts), modules[-1]]
    for m in modules:
        build.install(m, reset=False)
    if prof.name == "stock":
        build.install(factory_image(prof.platform), address=prof.fac_addr, reset=False)
    if bl_image is not None:
        build.install(bl_image.data, address=bl_image.address, reset=False)
    build.real = real
    build.boot()
    dev = cls(prof, bootloader=variant, granularity=granularity, real=real)
    dev.flash.load_contents(build.flash.contents())
    dev.regs.regs = list(build.regs.regs)
    dev.state = build.state
    dev.reason = build.reason
    dev.hw.reset_flags = build.hw.reset_flags
    return dev


def profile_of_system_parts(parts: Any) -> str:
    """``stock`` or ``extended``: the profile real system modules of this version implement
    (2302: stock 2.3.1; :data:`EXTENDED_SYSTEM_VERSION`: flashroom's patched build).

    Raises:
        ParamError: another version (no profile models it).
    """
    version = parts.part(2).info.module_version
    if version == SYSTEM_VERSION_2_3_1:
        return "stock"
    if version == EXTENDED_SYSTEM_VERSION:
        return "extended"
    raise ParamError(
        f"system module idx 2 in {parts.source} is version {version}: flashroom models 2.3.1 "
        f"stock ({SYSTEM_VERSION_2_3_1}) and extended ({EXTENDED_SYSTEM_VERSION}) only",
        "system_firmware",
    )


__all__ = ["RealCodeMixin", "new_with_real_code", "profile_of_system_parts"]
