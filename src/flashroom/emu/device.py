"""The emulated device: flash + DCT + backup registers + bootloader + system firmware.

A :class:`Device` is powered on (``boot``), updated the way the cloud does it (``ota``: the
system OTA receive path, the unconditional reset, the bootloader apply, the boot), written over
USB DFU (``install``), and saved to / loaded from a device image file so it lives across CLI
commands. Every flash mutation goes through :class:`~flashroom.emu.flash.NorFlash`, so any run can
be cut at any flash operation (``cut_at_op``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from flashroom.atomicfile import write_bytes_atomic
from flashroom.deviceos import Profile, UpdateFlag, get_platform, get_profile
from flashroom.deviceos.gen2 import (
    BOOTLOADER_VARIANTS,
    DEFAULT_CHUNK_SIZE,
    INTERNAL_FLASH_END,
    INTERNAL_FLASH_START,
    LEGACY_BOOTLOADER_VERSION,
)
from flashroom.deviceos.ota import FileTransferDescriptor
from flashroom.deviceos.stream import StreamReport
from flashroom.emu.bootloader import Bootloader
from flashroom.emu.dct import DcdStore
from flashroom.emu.flash import FlashSnapshot, Granularity, NorFlash
from flashroom.emu.flashmal import module_info_at, stored_sha256
from flashroom.emu.hardware import Hardware
from flashroom.emu.image import decode_image, encode_image
from flashroom.emu.outcome import (
    BOOT_MODES,
    RESULTS,
    BootMode,
    ModuleSummary,
    Outcome,
    OutcomeError,
    RunResult,
)
from flashroom.emu.stream import StreamStats, stream_report
from flashroom.emu.sysflags import FACTORY_RESET_REQUEST, BackupRegisters
from flashroom.emu.system import SystemFirmware
from flashroom.errors import EmulatorError, FlashroomError, OtaError, PowerCut
from flashroom.particle.build import device_os_install, synthetic_module, synthetic_user_app
from flashroom.particle.module_info import ModuleFunction, ModuleInfoFlags, read_module_info_at
from flashroom.ranges import fmt_addr

#: The small stock app of a fresh device (spec-silent size).
DEFAULT_APP_SIZE = 32 * 1024
#: The factory image of a fresh stock device (spec-silent size and version).
FACTORY_APP_SIZE = 24 * 1024
FACTORY_APP_VERSION = 1
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


@dataclass(frozen=True)
class _Counters:
    ops: int
    erases: tuple[int, ...]
    t: float
    tmax: float


class Device:
    """An emulated Photon, P1 or Electron running Device OS 2.3.1 (stock) or the extended variant.

    Build one with :meth:`new` or :meth:`load`.

    Attributes:
        profile: the firmware behaviour (bounds tables, factory handling...).
        bootloader_variant: ``resumable`` or ``legacy`` as created (the running semantics follow
            the installed bootloader's version, spec 4.5).
        flash: the :class:`NorFlash`.
        regs: the RTC backup registers (battery-backed; persisted in the image).
        state: the last boot mode (see :attr:`Outcome.boot`).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        bootloader: str = "resumable",
        granularity: Granularity = "word",
        flash: NorFlash | None = None,
        regs: BackupRegisters | None = None,
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
            embedded_bootloader=embedded_bootloader(profile.platform, bootloader),
        )
        self.state = BootMode.OFF
        self.reason = ""
        self._system = SystemFirmware(self.hw)
        self._transfer: FileTransferDescriptor | None = None

    # ================================================================== construction
    @classmethod
    def new(
        cls,
        platform: str = "electron",
        profile: str = "stock",
        bootloader: str = "resumable",
        *,
        granularity: Granularity = "word",
    ) -> Device:
        """A fresh device: synthetic Device OS 2.3.1, a small stock app, on stock a factory image.

        On ``extended`` the system modules carry :data:`EXTENDED_SYSTEM_VERSION` (spec 9 change
        5) and there is no factory image. ``legacy`` installs a 1002 bootloader (spec 4.5).
        The device is booted once (so the system has registered its factory slot) and its
        counters are zeroed.

        Raises:
            EmulatorError: unknown platform/profile/variant, or extended on Photon/P1.
        """
        prof = get_profile(platform, profile, gen2_only=True)
        if bootloader not in BOOTLOADER_VARIANTS:
            raise EmulatorError(
                f"unknown bootloader variant {bootloader!r}: expected one of "
                f"{', '.join(BOOTLOADER_VARIANTS)}"
            )
        contents, regs, state, reason = _fresh_image(prof.platform, prof.name, bootloader)
        dev = cls(prof, bootloader=bootloader, granularity=granularity)
        dev.flash.load_contents(contents)
        dev.regs.regs = list(regs)
        dev.state = BootMode(state)
        dev.reason = reason
        return dev

    @classmethod
    def load(cls, path: str | Path) -> Device:
        """Load a device image written by :meth:`save`.

        Raises:
            EmulatorError: missing, not an image, corrupt, or inconsistent metadata.
        """
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise EmulatorError(f"cannot read device image {p}: {e.strerror}") from None
        meta, contents = decode_image(data, name=str(p))
        # ``where`` names the metadata field being read, so that an error says which one.
        where = "platform"
        try:
            prof = get_profile(str(meta["platform"]), str(meta["profile"]), gen2_only=True)
            where = "platform_id"
            if "platform_id" in meta and int(meta["platform_id"]) != prof.platform_id:
                raise EmulatorError(
                    f"platform_id {meta['platform_id']} does not match platform "
                    f"{prof.platform!r} (platform_id {prof.platform_id})"
                )
            where = "backup_registers"
            regs = BackupRegisters([int(v) for v in meta["backup_registers"]])
            where = "bootloader" if meta["bootloader"] not in BOOTLOADER_VARIANTS else "granularity"
            dev = cls(
                prof,
                bootloader=str(meta["bootloader"]),
                granularity=meta.get("granularity", "word"),
                regs=regs,
            )
            where = "flash"
            dev.flash.load_contents(contents)
            where = "counters"
            counters = meta["counters"]
            dev.flash.op_count = int(counters["op_count"])
            dev.flash.erase_counts = [int(v) for v in counters["erase_counts"]]
            dev.flash.device_time_s = float(counters["device_time_s"])
            dev.flash.device_time_max_s = float(counters["device_time_max_s"])
            where = "state"
            if str(meta["state"]) not in BOOT_MODES:
                raise EmulatorError(
                    f"unknown device state {meta['state']!r}: expected one of "
                    + ", ".join(BOOT_MODES)
                )
            dev.state = BootMode(str(meta["state"]))
            dev.reason = str(meta.get("reason", ""))
        except KeyError as e:
            raise EmulatorError(
                f"{p}: device image metadata is incomplete: missing field {e}"
            ) from None
        except (TypeError, ValueError, AttributeError, FlashroomError) as e:
            raise EmulatorError(f"{p}: device image field {where}: {e}") from None
        if len(dev.flash.erase_counts) != len(dev.flash.chip.sectors):
            raise EmulatorError(f"{p}: erase_counts has the wrong number of sectors")
        return dev

    def save(self, path: str | Path) -> None:
        """Write the device image atomically (temp file + rename)."""
        meta = {
            "platform": self.profile.platform,
            "platform_id": self.profile.platform_id,
            "profile": self.profile.name,
            "bootloader": self.bootloader_variant,
            "granularity": self.flash.granularity,
            "state": self.state,
            "reason": self.reason,
            "backup_registers": list(self.regs.regs),
            "counters": {
                "op_count": self.flash.op_count,
                "erase_counts": list(self.flash.erase_counts),
                "device_time_s": self.flash.device_time_s,
                "device_time_max_s": self.flash.device_time_max_s,
            },
        }
        write_bytes_atomic(Path(path), encode_image(meta, self.flash.contents()))

    # ================================================================== state
    def snapshot(self) -> DeviceSnapshot:
        """Capture flash (a 1 MB bytes copy + counters), registers and power state."""
        return DeviceSnapshot(
            self.flash.snapshot(),
            tuple(self.regs.regs),
            self.state,
            self.reason,
            self._transfer,
        )

    def restore(self, snap: DeviceSnapshot) -> None:
        """Put the device back to ``snap``. An armed flash fault stays armed."""
        self.flash.restore(snap.flash)
        self.regs.regs = list(snap.regs)
        self.state = BootMode(snap.state)
        self.reason = snap.reason
        self._system = SystemFirmware(self.hw)
        self._transfer = snap.ota

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
    ) -> Outcome:
        """Power the device on (again): bootloader, then system firmware (spec 4.4, 3.2).

        Args:
            button_s: seconds the MODE button is held at reset (spec 5.2).
            cut_at_op: cut power at flash operation N of this boot (numbered from 0), e.g. in
                the middle of a bootloader copy that a previous cut left pending.
            torn: the cut operation happens partially (see :meth:`NorFlash.arm_fault`).
            seed: seed of the torn operation.
        """
        start = self._counters()
        self.hw.events = []
        if cut_at_op is not None:
            self.flash.arm_fault(cut_at_op, torn, seed)
        try:
            self._power_on(button_s=button_s)
        except PowerCut as e:
            return self._interrupted(start, e)
        finally:
            self.flash.disarm()
        return self._outcome(RunResult.BOOTED, None, start)

    def reset(self) -> Outcome:
        """A system reset (after ``ota_finish``): bootloader apply, then boot."""
        return self.boot()

    def factory_reset(self) -> Outcome:
        """``System.factoryReset()``: set ``Factory_Reset_SysFlag`` = 0xAAAA and reset (spec 5.2).

        Raises:
            EmulatorError: the device is not running firmware.
        """
        self._require_running("a software factory reset")
        self.regs.update_flags(Factory_Reset_SysFlag=FACTORY_RESET_REQUEST)
        return self.boot()

    def install(
        self,
        module: bytes,
        *,
        address: int | None = None,
        reset: bool = True,
        cut_at_op: int | None = None,
        torn: bool = False,
        seed: int = 0,
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
                f"{fmt_addr(INTERNAL_FLASH_START)}-{fmt_addr(INTERNAL_FLASH_END)} (spec 3.4)"
            )
        start = self._counters()
        self.hw.events = [f"dfu: write {len(module)} bytes at {fmt_addr(address)}"]
        if cut_at_op is not None:
            self.flash.arm_fault(cut_at_op, torn, seed)
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
        finally:
            self.flash.disarm()
        return self._outcome(RunResult.APPLIED, None, start)

    def ota(
        self,
        module: bytes,
        *,
        cut_at_op: int | None = None,
        torn: bool = False,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
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
        start = self._counters()
        self.hw.events = []
        if cut_at_op is not None:
            self.flash.arm_fault(cut_at_op, torn, seed)
        error: OutcomeError | None = None
        try:
            sysfw = self._system
            file = FileTransferDescriptor(len(module), chunk_size, 0, store=store)
            sysfw.prepare_for_firmware_update(file, 0)
            try:
                for off in range(0, len(module), chunk_size):
                    piece = module[off : off + chunk_size]
                    at = (file.file_address + off) & 0xFFFFFFFF
                    saved = sysfw.save_firmware_chunk(
                        replace(file, chunk_address=at, chunk_size=len(piece)), piece
                    )
                    if saved < 0 and sysfw.stream.handles(file):
                        break  # the streamed path refused the file: the transfer aborts
                rc = sysfw.finish_firmware_update(file, UpdateFlag.SUCCESS)
                if rc <= 0:
                    error = OutcomeError(rc, self._system.last_finish_reason)
            except OtaError as e:
                error = OutcomeError(e.code, str(e))
            self._power_on()  # spec 4.2 #4: the reset is always scheduled
        except PowerCut as e:
            return self._interrupted(start, e)
        finally:
            self.flash.disarm()
        if error is None:
            error = self._applied_check(module if expect is None else expect)
        return self._outcome(
            RunResult.APPLIED if error is None else RunResult.REJECTED, error, start
        )

    # ---------------------------------------------------------------- the system OTA path
    # deviceos.ota.SystemUpdateCallbacks: what the protocol's device end calls (spec 6.2-6.4).

    def prepare_for_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Prepare_For_Firmware_Update`` (spec 4.1, 6.2): fills in ``file``'s defaults
        and absolute address; erases unless ``flags`` bit 0 (the dry run) is set.

        Raises:
            EmulatorError: the device is not running firmware.
            PowerCut: an armed fault fired (the device is then off).
        """
        self._require_running("an OTA update")
        return self._guard(lambda: self._system.prepare_for_firmware_update(file, flags))

    def save_firmware_chunk(self, file: FileTransferDescriptor, chunk: bytes) -> int:
        """``Spark_Save_Firmware_Chunk``: ``chunk`` at ``file.chunk_address`` (spec 4.1 #3).

        Raises:
            EmulatorError: the device is not running firmware.
            OtaError: the write ran past the end of flash (the MCU bus-faults).
            PowerCut: an armed fault fired (the device is then off).
        """
        self._require_running("an OTA chunk")
        return self._guard(lambda: self._system.save_firmware_chunk(file, chunk))

    def finish_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Finish_Firmware_Update`` (spec 4.2, 6.4): 1 pending restart, 2 bootloader
        applied, or the negative ``system_error_t`` (-1300 ...). After a successful-transfer
        finish call :meth:`reset`: Device OS always schedules it (spec 4.2 #4).

        Raises:
            EmulatorError: the device is not running firmware.
            PowerCut: an armed fault fired (the device is then off).
        """
        self._require_running("an OTA finish")
        return self._guard(lambda: self._system.finish_firmware_update(file, flags))

    @property
    def last_ota_error(self) -> str:
        """Why the last finish failed (empty when it did not)."""
        return self._system.last_ota_error

    @property
    def updates_enabled(self) -> bool:
        """``System.updatesEnabled()``: when False, UpdateBegin's dry run fails (spec 6.2 #2)."""
        return self._system.updates_enabled

    @updates_enabled.setter
    def updates_enabled(self, value: bool) -> None:
        self._system.updates_enabled = value

    # ---------------------------------------------------------------- streamed OTA (modelled)
    def stream_report(self) -> StreamReport | None:
        """What the device's Hello says about streamed OTA (``deviceos.stream``): None when the
        profile (or this device, :attr:`ota_stream_enabled`) applies raw bytes only."""
        return stream_report(self.hw) if self.powered else None

    @property
    def ota_stream_enabled(self) -> bool:
        """False models the extended layout without the streamed-OTA change: raw bytes only."""
        return self.hw.ota_stream_enabled

    @ota_stream_enabled.setter
    def ota_stream_enabled(self, value: bool) -> None:
        self.hw.ota_stream_enabled = value

    @property
    def last_stream_stats(self) -> StreamStats | None:
        """The last streamed transfer's figures (received, written, RAM), or None."""
        return self.hw.last_stream

    def _guard(self, call: Callable[[], int]) -> int:
        try:
            return call()
        except PowerCut:
            self.state = BootMode.OFF
            raise

    # The same path by offsets, for scripts and tests: one transfer at a time.
    def ota_begin(
        self, file_length: int, chunk_size: int = DEFAULT_CHUNK_SIZE, file_address: int = 0
    ) -> int:
        """UpdateBegin with these fields (FIRMWARE store): :meth:`prepare_for_firmware_update`
        without the dry run. Returns 0, as Device OS does once updates are enabled."""
        file = FileTransferDescriptor(file_length, chunk_size, file_address)
        rc = self.prepare_for_firmware_update(file, 0)
        self._transfer = file
        return rc

    def ota_write(self, offset: int, data: bytes) -> None:
        """A chunk at ``offset`` past the file start of the last :meth:`ota_begin` (the OTA
        region's start without one); no bounds check (spec 4.1 #3)."""
        base = self._transfer or FileTransferDescriptor(file_address=self.profile.ota_flash_address)
        chunk = replace(
            base, chunk_address=(base.file_address + offset) & 0xFFFFFFFF, chunk_size=len(data)
        )
        self.save_firmware_chunk(chunk, data)

    def ota_finish(self) -> int:
        """UpdateDone: :meth:`finish_firmware_update` with SUCCESS (``HAL_FLASH_End``)."""
        file = self._transfer or FileTransferDescriptor()
        self._transfer = None
        return self.finish_firmware_update(file, UpdateFlag.SUCCESS)

    # ================================================================== internals
    def _require_running(self, what: str) -> None:
        if self.state in ("application", "safe_mode", "factory"):
            return
        hint = {
            "off": "power was cut; boot it first",
            "dfu": "it is in DFU mode (no cloud connection); boot it or install over DFU",
            "bricked": "it does not run intact firmware; reinstall over DFU",
        }.get(self.state, self.state)
        raise EmulatorError(f"cannot start {what}: the device is {self.state}: {hint}")

    def _power_on(self, *, button_s: float = 0.0) -> None:
        hw = self.hw
        self._system = SystemFirmware(hw)
        factory = False
        for n in range(MAX_RESETS):
            bl = Bootloader(hw).run(button_s=button_s if n == 0 else 0.0)
            factory = factory or bl.factory_restored
            if bl.kind == "reset":
                hw.log(f"bootloader: reset ({bl.reason})")
                continue
            if bl.kind in ("dfu", "bricked"):
                self._set_state(BootMode(bl.kind), bl.reason)
                return
            self._system = SystemFirmware(hw)
            sb = self._system.boot()
            if sb.kind == "reset":
                continue
            if sb.kind == "application":
                self._set_state(BootMode.FACTORY if factory else BootMode.APPLICATION, "")
            else:
                self._set_state(BootMode(sb.kind), sb.reason)
            return
        self._set_state(
            BootMode.BRICKED, f"reset loop: {MAX_RESETS} resets without reaching firmware"
        )

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
                "(spec 7.4: only Gen3 bootloaders inflate); not running",
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
        )

    def _interrupted(self, start: _Counters, e: PowerCut) -> Outcome:
        self.state = BootMode.OFF
        self.reason = str(e)
        self.hw.log(f"power: {e}")
        return self._outcome(RunResult.INTERRUPTED, OutcomeError(None, str(e)), start)


# ====================================================================== fresh devices
@functools.lru_cache(maxsize=16)
def _fresh_image(
    platform: str, profile: str, bootloader: str
) -> tuple[bytes, tuple[int, ...], str, str]:
    """Flash contents, registers and state of a fresh device (cached: built once per kind)."""
    prof = get_profile(platform, profile, gen2_only=True)
    dev = Device(prof, bootloader=bootloader)
    for m in default_modules(platform, profile, bootloader):
        dev.install(m, reset=False)
    if profile == "stock":
        dev.install(factory_image(platform), address=prof.fac_addr, reset=False)
    dev.boot()
    return dev.flash.contents(), tuple(dev.regs.regs), dev.state, dev.reason


def default_modules(platform: str, profile: str, bootloader: str) -> list[bytes]:
    """Bootloader, system parts and the small stock app a fresh device carries.

    Raises:
        EmulatorError: unknown platform/profile.
    """
    prof = get_profile(platform, profile, gen2_only=True)
    out: list[bytes] = []
    for m in device_os_install(prof.platform):
        info = read_module_info_at(m, 0)
        if info.module_function == ModuleFunction.SYSTEM_PART and profile == "extended":
            # spec 9 change 5: the modified system modules get a distinct version
            m = synthetic_module(
                len(m),
                platform_id=info.platform_id,
                function=info.module_function,
                index=info.module_index,
                version=prof.system_version,
                start_address=info.module_start_address,
                dependency=None if info.dependency.is_none else info.dependency,
                dependency2=None if info.dependency2.is_none else info.dependency2,
                seed=info.module_function * 16 + info.module_index,
            )
        elif info.module_function == ModuleFunction.BOOTLOADER and bootloader == "legacy":
            m = synthetic_module(
                len(m),
                platform_id=info.platform_id,
                function=ModuleFunction.BOOTLOADER,
                index=0,
                version=LEGACY_BOOTLOADER_VERSION,
                start_address=info.module_start_address,
                seed=32,
            )
        out.append(m)
    out.append(synthetic_user_app(DEFAULT_APP_SIZE, platform=prof.platform, seed=1))
    return out


@functools.lru_cache(maxsize=8)
def embedded_bootloader(platform: str, bootloader: str) -> bytes | None:
    """The bootloader image the system firmware embeds (spec 4.7), None off Electron.

    Electron v2.3.1 embeds bootloader 1004 (spec 2.4), which is what a fresh ``resumable``
    device carries. Spec-silent modelling choice: a ``legacy`` device stands for a system build
    whose embedded image is that same <= 1002 bootloader; a real v2.3.1 system would replace a
    1002 bootloader with 1004 at its first boot (spec 4.7), so the legacy hazard (spec 4.5)
    is only real before the system reaches 2.x.
    """
    if get_platform(platform).embedded_bootloader_version is None:  # HAL_REPLACE_BOOTLOADER
        return None
    for m in default_modules(platform, "stock", bootloader):
        if read_module_info_at(m, 0).module_function == ModuleFunction.BOOTLOADER:
            return m
    return None  # pragma: no cover - every install has a bootloader


def factory_image(platform: str) -> bytes:
    """The factory image of a fresh stock device: a user part linked for the user slot (5.1)."""
    return synthetic_user_app(
        FACTORY_APP_SIZE, platform=platform, version=FACTORY_APP_VERSION, seed=99
    )


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
    "embedded_bootloader",
    "factory_image",
]
