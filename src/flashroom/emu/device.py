"""The emulated device: flash + DCT + backup registers + bootloader + system firmware.

A :class:`Device` is powered on (``boot``), updated the way the cloud does it (``ota``: the
system OTA receive path, the unconditional reset, the bootloader apply, the boot), written over
USB DFU (``install``), and saved to / loaded from a device image file so it lives across CLI
commands. Every flash mutation goes through :class:`~flashroom.emu.flash.NorFlash`, so any run can
be cut at any flash operation (``cut_at_op``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flashroom.deviceos import Profile, UpdateFlag, get_profile
from flashroom.deviceos.gen2 import (
    BOOTLOADER_VARIANTS,
    DCT_FEATURE_FLAGS_OFFSET,
    DEFAULT_CHUNK_SIZE,
    EXTENDED_SYSTEM_VERSION,
    FEATURE_FLAG_RESET_INFO,
    INTERNAL_FLASH_END,
    INTERNAL_FLASH_START,
    SYSTEM_VERSION_2_3_1,
)
from flashroom.deviceos.ota import FileTransferDescriptor
from flashroom.emu.bootloader import Bootloader
from flashroom.emu.dct import DcdStore
from flashroom.emu.device_image import ImageFileMixin
from flashroom.emu.device_ota import OtaEntryMixin
from flashroom.emu.device_real import RealCodeMixin, new_with_real_code, profile_of_system_parts
from flashroom.emu.flash import FaultKind, FlashSnapshot, Granularity, NorFlash
from flashroom.emu.flashmal import module_info_at, stored_sha256
from flashroom.emu.fresh import (
    DEFAULT_APP_SIZE,
    default_modules,
    factory_image,
)
from flashroom.emu.hardware import Hardware
from flashroom.emu.image import (
    ImageLock,
    decode_image,
    image_metadata,
)
from flashroom.emu.outcome import (
    BOOT_MODES,
    RESULTS,
    BootMode,
    ModuleSummary,
    Outcome,
    OutcomeError,
    RunResult,
)
from flashroom.emu.realcode import (
    RealCode,
)
from flashroom.emu.sysflags import FACTORY_RESET_REQUEST, BackupRegisters
from flashroom.emu.system import SystemFirmware
from flashroom.emu.verdict import capture, judge
from flashroom.errors import (
    EmulatorError,
    FirmwareCallError,
    FlashOpError,
    FlashroomError,
    OtaError,
    ParamError,
    PowerCut,
)
from flashroom.firmware.stm32f2 import RCC_CSR_POWER_ON, RCC_CSR_SFTRSTF
from flashroom.geometry import STM32F205XG
from flashroom.particle.module_info import ModuleFunction, ModuleInfoFlags, read_module_info_at
from flashroom.ranges import fmt_addr

#: Resets one power-on may go through before we call it a reset loop (spec 5.4 #2).
MAX_RESETS = 12


@dataclass(frozen=True)
class DeviceSnapshot:
    """Everything needed to put a device back: flash (1 MB + counters) and small state."""

    flash: FlashSnapshot
    regs: tuple[int, ...]
    state: str
    reason: str
    ota: FileTransferDescriptor | None  # the transfer in flight (RAM: lost on a power cut)
    reset_flags: int = RCC_CSR_POWER_ON  # RCC_CSR's reset flags (a power cut resets them)


@dataclass(frozen=True)
class _Counters:
    ops: int
    erases: tuple[int, ...]
    t: float
    tmax: float


class Device(OtaEntryMixin, RealCodeMixin, ImageFileMixin):
    """An emulated Photon, P1 or Electron running Device OS 2.3.1 (stock) or the extended variant.

    Build one with :meth:`new` or :meth:`load`.

    Attributes:
        profile: the firmware behaviour (bounds tables, factory handling...).
        bootloader_variant: ``resumable`` or ``legacy`` as created (the running semantics follow
            the installed bootloader's version, spec 4.5).
        flash: the :class:`NorFlash`.
        regs: the RTC backup registers (battery-backed; persisted in the image).
        state: the last boot mode (see :attr:`Outcome.boot`).
        real: what of this device runs the real Device OS binaries (see
            :mod:`flashroom.emu.realcode`); persisted in the image.
        use_real_code: run the real code where :attr:`real` says so (False: the model, for a
            side-by-side comparison from the same state).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        bootloader: str = "resumable",
        granularity: Granularity = "word",
        flash: NorFlash | None = None,
        regs: BackupRegisters | None = None,
        real: RealCode | None = None,
    ):
        if bootloader not in BOOTLOADER_VARIANTS:
            raise EmulatorError(
                f"unknown bootloader variant {bootloader!r}: expected one of "
                f"{', '.join(BOOTLOADER_VARIANTS)}"
            )
        self.profile = profile
        self.bootloader_variant = bootloader
        self.flash = flash if flash is not None else NorFlash(granularity=granularity)
        self.regs = regs if regs is not None else BackupRegisters()
        self.hw = Hardware(
            profile,
            self.flash,
            self.regs,
            DcdStore(self.flash, app_offset=profile.dct_app_offset),
        )
        self.state = BootMode.OFF
        self.reason = ""
        self._system = SystemFirmware(self.hw)
        self._transfer: FileTransferDescriptor | None = None
        self._image_lock: ImageLock | None = None
        self._armed = False
        #: the fault armed for the last run fired (False: the run never reached it)
        self.fault_fired = False
        self.real = real if real is not None else RealCode()
        self.use_real_code = True
        #: the real OTA path may run (False: the model's, with the real bootloader still real)
        self.use_real_ota = True
        self._rb: Any = None  # the firmware runner's RealBootloader, made on first boot
        self._parts: dict[str, Any] = {}  # folder -> SystemParts (symbols), read on first use
        self._real_ota: Any = None  # RealSystemOta of this power-on (RAM: lost at reset)
        #: the real bootloader's runs in the last boot (FirmwareRun; empty when the model ran)
        self.firmware_runs: list[Any] = []
        #: how each bootloader run of the last boot ended (jump/reset/dfu/bricked), either engine
        self.bootloader_log: list[str] = []
        #: ``flash.op_count`` at every reset since this list was last cleared (timelines)
        self.reset_at_ops: list[int] = []

    # ================================================================== construction
    @classmethod
    def new(
        cls,
        platform: str = "electron",
        profile: str = "stock",
        bootloader: str = "resumable",
        *,
        granularity: Granularity = "word",
        bootloader_firmware: str | Path | None = None,
        system_firmware: str | Path | None = None,
        also_system_firmware: tuple[str | Path, ...] = (),
    ) -> Device:
        """A fresh device: synthetic Device OS 2.3.1, a small stock app, on stock a factory image.

        On ``extended`` the system modules carry :data:`EXTENDED_SYSTEM_VERSION` (spec 9 change
        5) and there is no factory image. ``legacy`` installs a 1002 bootloader (spec 4.5).
        The device is booted once (so the system has registered its factory slot) and its
        counters are zeroed.

        Args:
            bootloader_firmware: a real Electron bootloader (``.bin``/``.elf``): written into
                sector 0, and every boot from then on executes sector 0 with the firmware
                runner. The variant follows its version (1002: ``legacy``); the synthetic
                system embeds a bootloader of the same version, so the system's rewrite (spec
                4.7) does not replace it.
            system_firmware: a folder with the three real system modules (recognised by
                module info; ``.elf`` beside ``.bin`` for the symbols): installed, and the OTA
                receive/finish path is their real code (spec 11.2). The profile follows their
                version (2302 stock, the patched build's extended version).
            also_system_firmware: more folders of real system modules: when a system OTA puts
                one of their idx 2 modules in flash (a migration), the OTA path runs it with
                their symbols.

        Raises:
            EmulatorError: unknown platform/profile/variant, extended on Photon/P1, or real
                firmware on a platform other than Electron.
            FirmwareImageError: a firmware file that is not what it must be (the field named).
        """
        if bootloader_firmware is None and system_firmware is None:
            prof = get_profile(platform, profile, gen2_only=True)
            if bootloader not in BOOTLOADER_VARIANTS:
                raise EmulatorError(
                    f"unknown bootloader variant {bootloader!r}: expected one of "
                    f"{', '.join(BOOTLOADER_VARIANTS)}"
                )
            contents, regs, state, reason, flags = _fresh_image(
                prof.platform, prof.name, bootloader
            )
            dev = cls(prof, bootloader=bootloader, granularity=granularity)
            dev.flash.load_contents(contents)
            dev.regs.regs = list(regs)
            dev.state = BootMode(state)
            dev.reason = reason
            dev.hw.reset_flags = flags
            return dev
        return new_with_real_code(
            cls,
            platform,
            profile,
            bootloader,
            granularity,
            bootloader_firmware,
            system_firmware,
            also_system_firmware,
        )

    @classmethod
    def _from_image(cls, p: Path, data: bytes) -> Device:
        raw, contents = decode_image(data, name=str(p))
        meta = image_metadata(raw, name=str(p), sectors=len(STM32F205XG.sectors))
        # ``where`` names the metadata field being used, so that an error says which one.
        where = "platform"
        try:
            prof = get_profile(meta.platform, meta.profile, gen2_only=True)
            where = "platform_id"
            if meta.platform_id is not None and meta.platform_id != prof.platform_id:
                raise EmulatorError(
                    f"platform_id {meta.platform_id} does not match platform "
                    f"{prof.platform!r} (platform_id {prof.platform_id})"
                )
            where = "real_code"
            real = RealCode.from_json(meta.real_code)
            where = "bootloader" if meta.bootloader not in BOOTLOADER_VARIANTS else "granularity"
            dev = cls(
                prof,
                bootloader=meta.bootloader,
                granularity=meta.granularity,  # type: ignore[arg-type] # NorFlash checks it
                regs=BackupRegisters(list(meta.backup_registers)),
                real=real,
            )
            where = "flash"
            dev.flash.load_contents(contents)
            where = "state"
            if meta.state not in BOOT_MODES:
                raise EmulatorError(
                    f"unknown device state {meta.state!r}: expected one of " + ", ".join(BOOT_MODES)
                )
        except (TypeError, ValueError, AttributeError, KeyError, FlashroomError) as e:
            raise EmulatorError(f"{p}: device image field {where}: {e}") from None
        dev.flash.op_count = meta.op_count
        dev.flash.erase_counts = list(meta.erase_counts)
        dev.flash.device_time_s = meta.device_time_s
        dev.flash.device_time_max_s = meta.device_time_max_s
        dev.state = BootMode(meta.state)
        dev.reason = meta.reason
        dev.hw.reset_flags = RCC_CSR_POWER_ON if meta.reset_flags is None else meta.reset_flags
        return dev

    # ================================================================== state
    def snapshot(self) -> DeviceSnapshot:
        """Capture flash (a 1 MB bytes copy + counters), registers and power state."""
        return DeviceSnapshot(
            self.flash.snapshot(),
            tuple(self.regs.regs),
            self.state,
            self.reason,
            self._transfer,
            self.hw.reset_flags,
        )

    def restore(self, snap: DeviceSnapshot) -> None:
        """Put the device back to ``snap``. An armed flash fault stays armed."""
        self.flash.restore(snap.flash)
        self.regs.regs = list(snap.regs)
        self.state = BootMode(snap.state)
        self.reason = snap.reason
        self._system = SystemFirmware(self.hw)
        self._real_ota = None
        self._transfer = snap.ota
        self.hw.reset_flags = snap.reset_flags

    @property
    def powered(self) -> bool:
        return self.state != BootMode.OFF

    def running_module(self) -> ModuleSummary | None:
        """The user module that runs now (None when off, in safe mode, DFU or bricked)."""
        if self.state not in ("application", "factory"):
            return None
        if self._compressed_at(self.profile.user_loc):
            return None  # a Gen2 device never inflates: it would jump into a Deflate stream
        return self.module_at(self.profile.user_loc)

    def _compressed_at(self, addr: int) -> bool:
        """The module at ``addr`` has the COMPRESSED flag (spec 7.4: only Gen3 bootloaders
        inflate; a Gen2 device copies it verbatim and its code is a Deflate stream)."""
        info = module_info_at(self.flash, addr)
        return info is not None and bool(info.flags & ModuleInfoFlags.COMPRESSED)

    def module_at(self, addr: int) -> ModuleSummary | None:
        """Summary of the module whose info the device reads at ``addr`` (None if off-chip)."""
        info = module_info_at(self.flash, addr)
        if info is None:
            return None
        length = info.module_length
        sha = stored_sha256(self.flash, addr, length) if length > 0 else None
        return ModuleSummary(
            info.module_function,
            info.module_index,
            info.module_version,
            length + 4,
            sha.hex() if sha is not None else "",
            info.module_start_address,
        )

    def user_part_bytes(self) -> bytes:
        """The user part as stored: ``module_length + 4`` bytes when its module_info is sane,
        else the whole user region."""
        b = self.profile.user_bounds
        info = module_info_at(self.flash, b.start_address)
        if (
            info is not None
            and info.module_start_address == b.start_address
            and b.start_address < info.module_end_address <= INTERNAL_FLASH_END - 4
        ):
            return self.flash.read(b.start_address, info.module_length + 4)
        return self.flash.read(b.start_address, b.maximum_size)

    def bootloader_version(self) -> int | None:
        """The installed bootloader's version (None when sector 0 is not intact)."""
        return Bootloader(self.hw).version()

    # ================================================================== runs
    def boot(
        self,
        *,
        button_s: float = 0.0,
        cut_at_op: int | None = None,
        torn: bool = False,
        seed: int = 0,
        fail_at_op: int | None = None,
    ) -> Outcome:
        """Power the device on (again): bootloader, then system firmware (spec 4.4, 3.2).

        Args:
            button_s: seconds the MODE button is held at reset (spec 5.2).
            cut_at_op: cut power at flash operation N of this boot (numbered from 0), e.g. in
                the middle of a bootloader copy that a previous cut left pending.
            torn: the cut operation happens partially (see :meth:`NorFlash.arm_fault`).
            seed: seed of the torn operation.
            fail_at_op: flash operation N of this boot fails with an FLASH_SR error (a
                brown-out) instead; the firmware's own error handling runs.
        """
        return self._boot(False, button_s, cut_at_op, torn, seed, fail_at_op)

    def reset(self) -> Outcome:
        """A system reset (``NVIC_SystemReset`` after ``ota_finish``): bootloader apply, then
        boot. Unlike :meth:`boot` the RCC reset flags are a software reset's."""
        return self._boot(True, 0.0, None, False, 0, None)

    def _boot(
        self,
        software: bool,
        button_s: float,
        cut_at_op: int | None,
        torn: bool,
        seed: int,
        fail_at_op: int | None,
    ) -> Outcome:
        start = self._counters()
        self.hw.events = []
        self._arm(cut_at_op, torn, seed, fail_at_op)
        try:
            self._power_on(button_s=button_s, software_reset=software)
        except PowerCut as e:
            return self._interrupted(start, e)
        finally:
            self._disarm()
        return self._outcome(RunResult.BOOTED, None, start)

    def status(self) -> Outcome:
        """The device as it stands, without running anything (result ``running``)."""
        self.hw.events = []
        return self._outcome(RunResult.RUNNING, None, self._counters())

    def factory_reset(self) -> Outcome:
        """``System.factoryReset()``: set ``Factory_Reset_SysFlag`` = 0xAAAA and reset (spec 5.2).

        Raises:
            EmulatorError: the device is not running firmware.
        """
        self._require_running("a software factory reset")
        self.regs.update_flags(Factory_Reset_SysFlag=FACTORY_RESET_REQUEST)
        return self.reset()

    def install(
        self,
        module: bytes,
        *,
        address: int | None = None,
        reset: bool = True,
        cut_at_op: int | None = None,
        torn: bool = False,
        seed: int = 0,
        fail_at_op: int | None = None,
    ) -> Outcome:
        """Write ``module`` over USB DFU (spec 3.4), then leave DFU (reset) unless ``reset=False``.

        The device does no module parsing; the host tool (particle-cli) picks the address from
        the module's ``module_start_address``, which is what ``address=None`` does. DFU erases
        every sector the write touches, programs 32-bit words and pads the tail with 0xFF.

        Raises:
            EmulatorError: the range is outside 0x08000000-0x08100000 (the DFU check), or the
                module is too short to carry an address.
        """
        if address is None:
            try:
                address = read_module_info_at(module, 0).module_start_address
            except Exception:
                raise EmulatorError(
                    f"cannot take the DFU address from a {len(module)}-byte file: no "
                    "module_info_t at offset 0; give the address explicitly"
                ) from None
        end = address + len(module)
        if not (INTERNAL_FLASH_START <= address < INTERNAL_FLASH_END) or end > INTERNAL_FLASH_END:
            end_txt = fmt_addr(end) if end <= 0xFFFFFFFF else "past 0xffffffff"
            raise EmulatorError(
                f"DFU write {fmt_addr(address)}-{end_txt} is outside internal flash "
                f"{fmt_addr(INTERNAL_FLASH_START)}-{fmt_addr(INTERNAL_FLASH_END)} "
                "(docs/device-os.md#dfu)"
            )
        start = self._counters()
        self.hw.events = [f"dfu: write {len(module)} bytes at {fmt_addr(address)}"]
        self._arm(cut_at_op, torn, seed, fail_at_op)
        try:
            first = self.flash.sector_index(address)
            last = self.flash.sector_index(end - 1)
            for i in range(first, last + 1):
                self.flash.erase_sector(i)
            padded = module + b"\xff" * (-len(module) % 4)
            self.flash.program(address, padded)
            if reset:
                self._power_on()
            else:
                self.state = BootMode.DFU
        except PowerCut as e:
            return self._interrupted(start, e)
        except FlashOpError as e:  # the DFU write reports the error; the host tool stops
            self.state = BootMode.DFU
            self.reason = f"DFU write failed: {e}"
            return self._outcome(RunResult.REJECTED, OutcomeError(None, self.reason), start)
        finally:
            self._disarm()
        return self._outcome(RunResult.APPLIED, None, start)

    def ota(
        self,
        module: bytes,
        *,
        cut_at_op: int | None = None,
        torn: bool = False,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        fail_at_op: int | None = None,
        store: int = 0,
        expect: bytes | None = None,
    ) -> Outcome:
        """A cloud OTA: UpdateBegin (length = ``len(module)``), chunks in order, UpdateDone,
        then the unconditional reset (spec 4.2 #4), the bootloader apply and the boot.

        ``result`` is ``applied`` when the new module is in place and (for a user part)
        running, ``rejected`` with the error when the system refused it (or it is not
        running afterwards), ``interrupted`` when the armed power cut fired (the device is
        then off; :meth:`boot` powers it on).

        Args:
            module: the module file.
            cut_at_op: cut power at flash operation N of this run (numbered from 0).
            torn: the cut operation happens partially (see :meth:`NorFlash.arm_fault`).
            seed: seed of the torn operation.
            chunk_size: OTA chunk size (512, the device default, spec 6.5).
            store: the UpdateBegin store (0 FIRMWARE; ``STORE_STREAMED_FIRMWARE`` for a delta or
                compressed file, which a profile with ``ota_stream`` decodes into the scratch).
            expect: the module that must end up running (``module`` itself when None; the
                decoded module for a streamed file).

        Raises:
            EmulatorError: the device is off, in DFU mode or bricked (no cloud connection).
        """
        self._require_running("an OTA update")
        before = capture(self)
        start = self._counters()
        self.hw.events = []
        self._arm(cut_at_op, torn, seed, fail_at_op)
        error: OutcomeError | None = None
        try:
            sysfw = self._ota_path()
            file = FileTransferDescriptor(len(module), chunk_size, 0, store=store)
            error, resets = self._send_update(sysfw, file, module, chunk_size)
            if resets:  # spec 4.2 #4: the reset is always scheduled (a software reset)
                self._power_on(software_reset=True)
        except PowerCut as e:
            return self._interrupted(start, e)
        finally:
            self._disarm()
        target = module if expect is None else expect
        if error is None:
            error = self._applied_check(target)
        result, error, scratch = judge(self, before, target, error)
        out = self._outcome(result, error, start)
        out.scratch = None if scratch is None else scratch.to_json()
        return out

    # ================================================================== internals
    def _send_update(
        self, path: Any, file: FileTransferDescriptor, module: bytes, chunk_size: int
    ) -> tuple[OutcomeError | None, bool]:
        """UpdateBegin, the chunks in order, UpdateDone through ``path``: the error (None: the
        system accepted the module) and whether the device resets after it.

        Raises:
            PowerCut: an armed fault fired.
        """
        try:
            # the dry run first: non-zero -> 5.03, nothing erased, no reset, the device keeps
            # running (chunked_transfer.cpp:70-79)
            refused = path.prepare_for_firmware_update(file, 1)
            if refused:
                return self._begin_refused(path, refused), False
            path.prepare_for_firmware_update(file, 0)
            for off in range(0, len(module), chunk_size):
                piece = module[off : off + chunk_size]
                at = (file.file_address + off) & 0xFFFFFFFF
                saved = path.save_firmware_chunk(
                    replace(file, chunk_address=at, chunk_size=len(piece)), piece
                )
                if saved < 0 and _streams(path, file):
                    break  # the streamed path refused the file: the transfer aborts
            rc = path.finish_firmware_update(file, UpdateFlag.SUCCESS)
            return (OutcomeError(rc, self._finish_reason(path, rc)) if rc <= 0 else None), True
        except OtaError as e:
            return OutcomeError(e.code, str(e)), True
        except FirmwareCallError as e:  # the real code crashed/hung: the panic resets
            self.hw.log(f"system: {e}: the fault handler resets the MCU")
            return OutcomeError(None, f"the real OTA code did not return: {e}"), True

    def _begin_refused(self, path: Any, rc: int) -> OutcomeError:
        """The outcome error of an UpdateBegin whose dry-run prepare returned ``rc``."""
        if rc > 0:
            why = "updates are disabled"
        elif path is self._system:
            why = self._system.last_finish_reason
        else:
            why = f"Spark_Prepare_For_Firmware_Update returned {rc}"
        return OutcomeError(
            rc if rc < 0 else None,
            f"UpdateBegin refused (5.03): {why}; nothing erased, no reset",
        )

    def _disarm(self) -> None:
        self.fault_fired = self._armed and not self.flash.armed
        self._armed = False
        self.flash.disarm()

    def _arm(self, cut_at_op: int | None, torn: bool, seed: int, fail_at_op: int | None) -> None:
        if cut_at_op is not None and fail_at_op is not None:
            raise ParamError(
                "cut_at_op and fail_at_op cannot be combined: one fault per run",
                "cut_at_op",
                "fail_at_op",
            )
        if cut_at_op is not None:
            self.flash.arm_fault(cut_at_op, torn, seed)
        elif fail_at_op is not None:
            self.flash.arm_fault(fail_at_op, kind=FaultKind.FAIL)
        self._armed = self.flash.armed

    def _require_running(self, what: str) -> None:
        if self.state in ("application", "safe_mode", "factory", "system_mismatch"):
            return  # a device with mismatched system parts still runs (undefined, spec 8.9)
        hint = {
            "off": "power was cut; boot it first",
            "dfu": "it is in DFU mode (no cloud connection); boot it or install over DFU",
            "bricked": "it does not run intact firmware; reinstall over DFU",
        }.get(self.state, self.state)
        raise EmulatorError(f"cannot start {what}: the device is {self.state}: {hint}")

    def _power_on(self, *, button_s: float = 0.0, software_reset: bool = False) -> None:
        hw = self.hw
        # RCC_CSR reset flags (RM0033 5.3.21): a power-on sets BOR|PIN|POR; a software reset
        # adds SFTRST to whatever the running firmware left.
        hw.reset_flags = (hw.reset_flags | RCC_CSR_SFTRSTF) if software_reset else RCC_CSR_POWER_ON
        self._system = SystemFirmware(hw)
        self._real_ota = None
        self.firmware_runs = []
        self.bootloader_log = []
        self.reset_at_ops.append(self.flash.op_count)
        factory = False
        for n in range(MAX_RESETS):
            bl = self._run_bootloader(button_s if n == 0 else 0.0)
            self.bootloader_log.append(bl.kind)
            factory = factory or bl.factory_restored
            if bl.kind == "reset":
                hw.log(f"bootloader: reset ({bl.reason})")
                hw.reset_flags |= RCC_CSR_SFTRSTF
                continue
            if bl.kind in ("dfu", "bricked"):
                self._set_state(BootMode(bl.kind), bl.reason)
                return
            self._follow_installed_system()
            self._system = SystemFirmware(self.hw)
            self._system_clears_reset_flags()
            sb = self._system.boot()
            if sb.kind == "reset":
                hw.reset_flags |= RCC_CSR_SFTRSTF
                continue
            if sb.kind == "application" and self._compressed_at(self.profile.user_loc):
                self._set_state(
                    BootMode.CRASHED,
                    f"the user part at {fmt_addr(self.profile.user_loc)} is compressed "
                    "(module_info flag 0x02): no Gen2 code inflates a module, so the system "
                    "calls into a Deflate stream and the MCU hard-faults at every start",
                )
            elif sb.kind == "application":
                self._set_state(BootMode.FACTORY if factory else BootMode.APPLICATION, "")
            else:
                self._set_state(BootMode(sb.kind), sb.reason)
            return
        self._set_state(
            BootMode.BRICKED, f"reset loop: {MAX_RESETS} resets without reaching firmware"
        )

    def _follow_installed_system(self) -> None:
        """The system that runs is the code in flash: when system module idx 2 is the stock
        2.3.1 build (2302) or the extended one (:data:`EXTENDED_SYSTEM_VERSION`, spec 9 change
        5), the device behaves as that profile from this boot on (a migration over the air
        switches it). Other versions keep the current profile."""
        p = self.profile
        bounds = p.find_module_bounds(ModuleFunction.SYSTEM_PART, 2)
        if bounds is None:
            return
        info = module_info_at(self.flash, bounds.start_address)
        if info is None or info.module_function != ModuleFunction.SYSTEM_PART:
            return
        name = {SYSTEM_VERSION_2_3_1: "stock", EXTENDED_SYSTEM_VERSION: "extended"}.get(
            info.module_version
        )
        if name is None or name == p.name:
            return
        try:
            new = get_profile(p.platform, name, gen2_only=True)
        except FlashroomError:
            return  # the platform has no such profile (Photon/P1: stock only)
        self.profile = new
        self.hw.profile = new
        self.hw.log(
            f"system: system part idx 2 is version {info.module_version}: the {name} system "
            "runs from this boot on (its OTA region and module bounds)"
        )

    def _system_clears_reset_flags(self) -> None:
        """``HAL_Core_Init`` (system/src/main.cpp:730, core_hal_stm32f2xx.c:428-433): with the
        RESET_INFO feature on (its DCT bit set; erased means on) the system clears the RCC
        reset flags."""
        data = self.hw.dct.peek_app(DCT_FEATURE_FLAGS_OFFSET, 4)
        flags = 0xFFFFFFFF if data is None else int.from_bytes(data, "little")
        if flags & FEATURE_FLAG_RESET_INFO:
            self.hw.reset_flags = 0

    def _set_state(self, state: BootMode, reason: str) -> None:
        self.state = state
        self.reason = reason
        self.hw.log(f"device: {state}" + (f" ({reason})" if reason else ""))

    def _applied_check(self, module: bytes) -> OutcomeError | None:
        try:
            info = read_module_info_at(module, 0)
        except Exception:  # pragma: no cover - the device accepted it, so it has an info block
            return OutcomeError(None, "the module has no readable module_info_t")
        dest = info.module_start_address
        n = len(module)
        in_place = (
            self.flash.base <= dest
            and dest + n <= self.flash.base + self.flash.size
            and self.flash.read(dest, n) == module
        )
        if in_place and self._compressed_at(dest):
            return OutcomeError(
                None,
                f"in place at {fmt_addr(dest)} but compressed (module_info flags 0x02): a Gen2 "
                "bootloader copies it verbatim and the system would execute a Deflate stream "
                "(docs/device-os.md#compression: only Gen3 bootloaders inflate); not running",
            )
        if info.module_function == ModuleFunction.USER_PART:
            if in_place and self.state == "application" and dest == self.profile.user_loc:
                return None
        elif in_place and self.state in ("application", "safe_mode", "factory"):
            return None
        why = self.reason or f"device is {self.state}"
        where = "in place" if in_place else f"not in place at {fmt_addr(dest)}"
        return OutcomeError(
            None, f"accepted by HAL_FLASH_End but after the reset it is {where}, {why}"
        )

    def _counters(self) -> _Counters:
        f = self.flash
        return _Counters(f.op_count, tuple(f.erase_counts), f.device_time_s, f.device_time_max_s)

    def _outcome(self, result: RunResult, error: OutcomeError | None, start: _Counters) -> Outcome:
        f = self.flash
        erases = {
            i: n - start.erases[i] for i, n in enumerate(f.erase_counts) if n - start.erases[i] > 0
        }
        boot = self.state
        return Outcome(
            result=result,
            error=error,
            boot=boot,
            running=self.running_module(),
            device_time_s=f.device_time_s - start.t,
            sector_erases=erases,
            flash_ops=f.op_count - start.ops,
            device_time_max_s=f.device_time_max_s - start.tmax,
            events=list(self.hw.events),
            bootloader_firmware=self.bootloader_firmware(),
            system_firmware=self.system_firmware(),
        )

    def _interrupted(self, start: _Counters, e: PowerCut) -> Outcome:
        self.state = BootMode.OFF
        self.reason = str(e)
        self.hw.log(f"power: {e}")
        return self._outcome(RunResult.INTERRUPTED, OutcomeError(None, str(e)), start)


def _streams(path: Any, file: FileTransferDescriptor) -> bool:
    """The model's streamed store (deviceos.stream) handles ``file`` (the real code has none)."""
    stream = getattr(path, "stream", None)
    return stream is not None and bool(stream.handles(file))


# ====================================================================== fresh devices
@functools.lru_cache(maxsize=16)
def _fresh_image(
    platform: str, profile: str, bootloader: str
) -> tuple[bytes, tuple[int, ...], str, str, int]:
    """Flash contents, registers and state of a fresh device (cached: built once per kind)."""
    prof = get_profile(platform, profile, gen2_only=True)
    dev = Device(prof, bootloader=bootloader)
    for m in default_modules(platform, profile, bootloader):
        dev.install(m, reset=False)
    if profile == "stock":
        dev.install(factory_image(platform), address=prof.fac_addr, reset=False)
    dev.boot()
    return dev.flash.contents(), tuple(dev.regs.regs), dev.state, dev.reason, dev.hw.reset_flags


__all__ = [
    "BOOT_MODES",
    "DEFAULT_APP_SIZE",
    "RESULTS",
    "BootMode",
    "Device",
    "DeviceSnapshot",
    "ModuleSummary",
    "Outcome",
    "OutcomeError",
    "RunResult",
    "default_modules",
    "factory_image",
    "profile_of_system_parts",
]
