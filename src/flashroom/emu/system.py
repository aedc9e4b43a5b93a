"""Device OS system firmware: boot-time validation and the OTA receive path (spec 3, 4.1-4.2, 5.1).

Everything the device decides is read from flash here, with the device's own rules (spec 2.2
module_info location, spec 3.1 primitives), never with the reference-tool parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashroom.deviceos import FileTransferStore, ModuleBounds, UpdateFlag, get_platform
from flashroom.deviceos.gen2 import (
    BOOTLOADER_ADDRESS,
    BOOTLOADER_VERSION_ADDRESS,
    DCT_OTA_UPDATE_FLAG_OFFSET,
    DEFAULT_CHUNK_SIZE,
    FLAGS_CRC_DEST_FUNCTION,
    FLASH_INTERNAL,
    HAL_UPDATE_APPLIED,
    HAL_UPDATE_APPLIED_PENDING_RESTART,
    MAGIC_PENDING,
    MAGIC_UNUSED,
    MODULE_VALIDATION_DEPENDENCIES,
    MODULE_VALIDATION_DEPENDENCIES_FULL,
    MODULE_VALIDATION_INTEGRITY,
    MODULE_VALIDATION_PLATFORM,
    MODULE_VALIDATION_RANGE,
    OTA_UPDATE_FLAG_SET,
    SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED,
    SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED,
    SYSTEM_ERROR_OTA_INVALID_ADDRESS,
    SYSTEM_ERROR_OTA_INVALID_PLATFORM,
    SYSTEM_ERROR_OTA_MODULE_NOT_FOUND,
    SYSTEM_ERROR_OTA_VALIDATION_FAILED,
    SYSTEM_ERROR_UNKNOWN,
)
from flashroom.deviceos.ota import FileTransferDescriptor
from flashroom.emu.dct import FlashModuleSlot, factory_slot
from flashroom.emu.flashmal import (
    FLASH_ACCESS_RESULT_BADARG,
    copy_memory,
    embedded_bootloader,
    erase_memory,
    flash_update,
    is_user_module_info_valid,
    module_info_at,
    verify_crc32,
)
from flashroom.emu.hardware import Hardware
from flashroom.emu.stream import StreamedOta
from flashroom.emu.sysflags import FACTORY_RESET_REQUEST, IWDG_ENABLE
from flashroom.errors import OtaError
from flashroom.particle.module_info import ModuleDependency, ModuleFunction, ModuleInfo
from flashroom.ranges import fmt_addr

#: flash_bootloader's endless retry loop, bounded in the model.
_BOOTLOADER_ATTEMPTS = 20


@dataclass(frozen=True)
class FetchResult:
    """``fetch_module`` (spec 3.1): whether it returned true, the info and the bits."""

    found: bool
    info: ModuleInfo | None
    checked: int
    result: int
    reason: str


@dataclass(frozen=True)
class SystemBoot:
    """How the system firmware's start ended.

    Attributes:
        kind: ``"application"``, ``"safe_mode"``, ``"reset"`` (it resets the MCU),
            ``"system_mismatch"`` (the system parts' dependencies do not hold: they run
            anyway, undefined behaviour) or ``"bricked"`` (a system part it would execute is
            corrupt).
        reason: why (for the trace / error messages).
    """

    kind: str
    reason: str = ""


class SystemFirmware:
    """Device OS v2.3.1 (or the extended variant) running on ``hw``."""

    def __init__(self, hw: Hardware):
        self.hw = hw
        #: ``System.updatesEnabled()`` (the dry run fails with 1 when false, spec 6.2 #2).
        self.updates_enabled = True
        self.last_finish_reason: str = ""
        #: The streamed (delta/compressed) OTA of profiles that model it (emu/stream.py).
        self.stream = StreamedOta(hw, self._flash_begin, self._end, self._validate_ota)

    # ================================================================== dependencies
    def _dep_ok(self, dep: ModuleDependency) -> tuple[bool, str]:
        """``validate_module_dependencies_impl``: version of whatever sits in the bounds."""
        if dep.is_none:
            return True, ""
        b = self.hw.profile.find_module_bounds(dep.module_function, dep.module_index)
        info = self.hw.installed(b) if b is not None else None
        if info is None:
            return False, (
                f"dependency function {dep.module_function} index {dep.module_index}: "
                "no such module bounds"
            )
        if info.module_version >= dep.module_version:
            return True, ""
        return False, (
            f"needs function {dep.module_function} index {dep.module_index} version >= "
            f"{dep.module_version}, installed {info.module_version}"
        )

    def validate_dependencies(
        self, info: ModuleInfo, *, user_optional: bool, full: bool
    ) -> tuple[bool, str]:
        """``validate_module_dependencies`` (spec 3.1), warts included.

        A NONE first dependency makes the result valid without looking at ``dependency2``.
        """
        if info.dependency.is_none or (
            user_optional and info.module_function == ModuleFunction.USER_PART
        ):
            ok, why = True, ""
        else:
            ok, why = self._dep_ok(info.dependency)
            if ok and not (
                user_optional and info.dependency2.module_function == ModuleFunction.BOOTLOADER
            ):
                ok, why = self._dep_ok(info.dependency2)
        if ok and full and info.module_function == ModuleFunction.SYSTEM_PART:
            ok, why = self._full_reverse_check(info)
        return ok, why

    def _full_reverse_check(self, new: ModuleInfo) -> tuple[bool, str]:
        """spec 3.1 #4: no other installed system part depends on a higher version of ``new``."""
        for b in self.hw.profile.system_bounds:
            if b.module_index == new.module_index:
                continue
            other = self.hw.installed(b)
            if other is None or other.module_function != ModuleFunction.SYSTEM_PART:
                continue
            for d in (other.dependency, other.dependency2):
                if (
                    d.module_function == new.module_function
                    and d.module_index == new.module_index
                    and d.module_version > new.module_version
                ):
                    return False, (
                        f"installed system part {other.module_index} (version "
                        f"{other.module_version}) depends on system part {new.module_index} "
                        f">= {d.module_version}, the update is version {new.module_version}"
                    )
        return True, ""

    # ================================================================== fetch_module
    def fetch_module(
        self, bounds: ModuleBounds, *, user_deps_optional: bool, flags: int
    ) -> FetchResult:
        """``fetch_module`` (spec 3.1) for the module stored at ``bounds.start``."""
        hw = self.hw
        info = module_info_at(hw.flash, bounds.start_address)
        checked = (
            MODULE_VALIDATION_RANGE
            | MODULE_VALIDATION_DEPENDENCIES
            | MODULE_VALIDATION_PLATFORM
            | flags
        )
        if info is None:
            return FetchResult(False, None, checked, 0, "no module_info_t readable")
        expected = hw.profile.find_module_bounds(info.module_function, info.module_index)
        if expected is None:
            return FetchResult(
                False,
                info,
                checked,
                0,
                f"fetch_module: no module_bounds_t for module_function {info.module_function} "
                f"module_index {info.module_index} (docs/device-os.md#ota-checks)",
            )
        end = info.module_end_address
        if not expected.start_address <= end <= expected.end_address:
            return FetchResult(
                False,
                info,
                checked,
                0,
                f"fetch_module: module_end_address {fmt_addr(end)} is outside {expected.name} "
                f"bounds [{fmt_addr(expected.start_address)}, {fmt_addr(expected.end_address)}]"
                " (docs/device-os.md#ota-checks)",
            )
        result = MODULE_VALIDATION_RANGE
        reasons: list[str] = []
        if info.platform_id == hw.profile.platform_id:
            result |= MODULE_VALIDATION_PLATFORM
        else:
            reasons.append(
                f"platform_id {info.platform_id}, this device is {hw.profile.platform_id}"
            )
        full = bool(flags & MODULE_VALIDATION_DEPENDENCIES_FULL)
        dep_ok, dep_why = self.validate_dependencies(
            info, user_optional=user_deps_optional, full=full
        )
        if dep_ok:
            result |= MODULE_VALIDATION_DEPENDENCIES
            if full:
                result |= MODULE_VALIDATION_DEPENDENCIES_FULL
        else:
            reasons.append(f"dependencies: {dep_why}")
        # CRC at the *current* location (bounds.start + length), spec 3.1 fetch_module #5/#7.
        length = (end - info.module_start_address) & 0xFFFFFFFF
        if verify_crc32(hw.flash, bounds.start_address, length):
            result |= MODULE_VALIDATION_INTEGRITY
        else:
            reasons.append(
                f"CRC-32 over {length} bytes at {fmt_addr(bounds.start_address)} does not match"
            )
        return FetchResult(True, info, checked, result, "; ".join(reasons))

    # ================================================================== boot
    def boot(self) -> SystemBoot:
        """From the bootloader's jump to the application (or safe mode), spec 3.2, 5.1, 8.9."""
        hw = self.hw
        p = hw.profile
        # Emulator stand-in for executing code: a corrupt system part is undefined behaviour.
        for b in p.system_bounds:
            if not hw.module_intact(b):
                return SystemBoot(
                    "bricked",
                    f"{b.name} at {fmt_addr(b.start_address)} is not an intact module: the "
                    "bootloader only checks module_info at 0x08020000 (docs/device-os.md#boot) "
                    "and jumps into "
                    "corrupt code",
                )
        # --- system_part2_pre_init: HAL_Core_Config (spec 3.2 #1, 5.1)
        self._core_config()
        # A failed check below only puts the system in safe mode: system_part2_pre_init sets
        # SAFE_MODE and carries on, so HAL_Core_Setup and the startup steps still run.
        safe: str | None = None
        # --- Photon/P1: HAL_Core_Validate_Modules(1) (spec 3.2 #2); when it fails the user
        #     part is not even validated (so no factory fallback either).
        if p.validates_bootloader:
            ok, why = self._validate_modules()
            if not ok:
                hw.log(f"system: HAL_Core_Validate_Modules failed: {why}: safe mode")
                safe = f"HAL_Core_Validate_Modules: {why}"
        # --- the system parts' own dependency chain (spec 8.9 correction): Device OS does not
        #     check it at boot on Electron (system_part2_loader.c:50-56 sets bootloader_validated
        #     and skips HAL_Core_Validate_Modules), and on Photon/P1 only through part 2's
        #     dependencies above. Mismatched parts simply run: undefined behaviour, which the
        #     emulator reports as its own outcome instead of a clean safe mode.
        mismatch = self._system_chain() if safe is None else None
        # --- HAL_Core_Validate_User_Module (spec 3.2 #3)
        if safe is None:
            user = self._validate_user()
            if user == "reset":
                return SystemBoot("reset", "automatic factory reset (docs/device-os.md#boot-check)")
            if user != "ok":
                safe = user
        # --- HAL_Core_Setup: the IWDG flag left by Finish_Update -> reset once more (spec 5.3)
        flags = hw.regs.load_flags()
        if flags.IWDG_Enable_SysFlag == IWDG_ENABLE:
            hw.regs.update_flags(IWDG_Enable_SysFlag=0xFFFF)
            hw.log("system: HAL_Core_Setup cleared IWDG_Enable_SysFlag: reset (double reset)")
            return SystemBoot("reset", "IWDG flag cleared")
        # --- HAL_Core_Setup: bootloader_update_if_needed (spec 4.7, Electron only)
        if self._replace_bootloader():
            return SystemBoot("reset", "embedded bootloader update failed")
        # --- ota_update_flag (spec 4.3 / 4.7 "DFU + flag")
        flag = hw.dct.read_app(DCT_OTA_UPDATE_FLAG_OFFSET, 1)[0]
        if flag == OTA_UPDATE_FLAG_SET:
            hw.dct.write_app(DCT_OTA_UPDATE_FLAG_OFFSET, b"\xff")
            rc = self._end()
            hw.log(f"system: ota_update_flag 0xA5: applied the OTA region ({rc}): reset")
            return SystemBoot("reset", "ota_update_flag")
        if mismatch is not None:
            return SystemBoot("system_mismatch", mismatch)
        if safe is None:
            return SystemBoot("application")
        return SystemBoot("safe_mode", safe)

    def _flash_bootloader(self, src: int, length: int) -> int:
        """``flash_bootloader`` (ota_flash_hal_stm32f2xx.cpp:265-300, spec 4.7): the bootloader
        module is copied into sector 0 at once (not power-loss safe), retried after an ERROR
        until the copy and a re-fetch succeed; a BADARG (the checks refused it) stops.
        2 (``HAL_UPDATE_APPLIED``) or ``SYSTEM_ERROR_UNKNOWN``."""
        hw = self.hw
        p = hw.profile
        for attempt in range(1, _BOOTLOADER_ATTEMPTS + 1):
            res = copy_memory(
                hw.flash,
                src,
                BOOTLOADER_ADDRESS,
                length,
                ModuleFunction.BOOTLOADER,
                FLAGS_CRC_DEST_FUNCTION,
                p.platform_id,
            )
            if res.ok:
                boot = p.find_module_bounds(ModuleFunction.BOOTLOADER, 0)
                r = (
                    None
                    if boot is None
                    else self.fetch_module(
                        boot,
                        user_deps_optional=True,
                        flags=MODULE_VALIDATION_INTEGRITY | MODULE_VALIDATION_DEPENDENCIES_FULL,
                    )
                )
                if r is not None and r.found and r.checked == r.result:
                    hw.log(
                        "system: bootloader flashed immediately "
                        f"(docs/device-os.md#bootloader-updates), attempt {attempt}"
                    )
                    self.last_finish_reason = ""
                    return HAL_UPDATE_APPLIED
            elif res.code == FLASH_ACCESS_RESULT_BADARG:
                self.last_finish_reason = f"bootloader_update refused: {res.reason}"
                hw.log(f"system: {self.last_finish_reason}")
                return SYSTEM_ERROR_UNKNOWN
            hw.log(f"system: bootloader_update attempt {attempt} failed: {res.reason}; retrying")
        # Device OS retries forever (a random 200-1000 ms backoff each time); the model stops
        # after _BOOTLOADER_ATTEMPTS, which a one-shot fault never reaches.
        self.last_finish_reason = f"bootloader_update failed {_BOOTLOADER_ATTEMPTS} times"
        return SYSTEM_ERROR_UNKNOWN

    def _replace_bootloader(self) -> bool:
        """``bootloader_update_if_needed`` (spec 4.7, Electron only): True when ``HAL_Core_Setup``
        must reset, which is when the rewrite **failed** (bootloader.cpp:9-48: ``updated`` is
        ``FLASH_CopyMemory``'s result, 0 = OK; core_hal_stm32f2xx.c:414-416).

        The image is the one compiled into the installed index-3 module (bootloader_hal.c), so a
        system OTA that brings a newer one triggers the rewrite at the next boot. When its
        ``module_version`` (the u16 at +0x184+10) is above the installed bootloader's, it is
        copied to 0x08000000 with ``FLASH_CopyMemory`` (DEST_IS_START | CRC | FUNCTION): sector
        0 erased in place, then 32-bit words, not power-loss safe. A failing copy is retried at
        every boot.
        """
        hw = self.hw
        p = hw.profile
        if get_platform(p.platform).embedded_bootloader_version is None:
            return False  # HAL_REPLACE_BOOTLOADER is defined for platform 10 only
        holder = p.find_module_bounds(ModuleFunction.SYSTEM_PART, 3)
        found = (
            None
            if holder is None
            else embedded_bootloader(hw.flash, holder.start_address, p.platform_id)
        )
        if found is None:
            return False
        addr, length = found
        installed = int.from_bytes(hw.flash.read(BOOTLOADER_VERSION_ADDRESS, 2), "little")
        available = int.from_bytes(hw.flash.read(addr + 0x184 + 10, 2), "little")
        if available <= installed:
            return False
        res = copy_memory(
            hw.flash,
            addr,
            BOOTLOADER_ADDRESS,
            length,
            ModuleFunction.BOOTLOADER,
            FLAGS_CRC_DEST_FUNCTION,
            p.platform_id,
        )
        if res.ok:
            hw.log(
                f"system: HAL_Core_Setup replaced bootloader {installed} with the embedded "
                f"{available} from {fmt_addr(addr)} (docs/device-os.md#bootloader-updates); "
                "booting on"
            )
            return False
        hw.log(
            f"system: embedded bootloader update failed ({res.reason}): reset "
            "(docs/device-os.md#bootloader-updates)"
        )
        return True

    def _system_chain(self) -> str | None:
        """Why the installed system parts' SYSTEM_PART dependencies do not hold, or None (an
        emulator observation: Device OS runs such a set without checking, spec 8.9)."""
        hw = self.hw
        for b in hw.profile.system_bounds:
            info = hw.installed(b)
            if info is None:  # pragma: no cover - intact (checked by boot)
                continue
            for dep in (info.dependency, info.dependency2):
                if dep.module_function != ModuleFunction.SYSTEM_PART:
                    continue
                ok, why = self._dep_ok(dep)
                if not ok:
                    msg = (
                        f"system part {info.module_index} {why}: Device OS does not check this "
                        "at boot (system_part2_loader.c:50-56) and runs mismatched system parts, "
                        "undefined behaviour (docs/device-os.md#boot)"
                    )
                    hw.log(f"system: dependency chain broken: {msg}")
                    return msg
        return None

    def _core_config(self) -> None:
        hw = self.hw
        p = hw.profile
        if p.registers_factory_slot:
            slot0 = hw.dct.read_slots()[0]
            # FLASH_AddToFactoryResetModuleSlot copies the current slot and fills in the fields
            # of spec 5.1; ``reserved`` is carried over, so it never makes a difference.
            want = factory_slot(p.fac_addr, p.user_loc, reserved=slot0.reserved)
            if slot0 != want:  # spec 5.1: only written if it differs
                hw.dct.write_slot(0, want)
                hw.log(
                    f"system: HAL_Core_Config registered factory slot 0 -> {fmt_addr(p.fac_addr)}"
                )
        elif p.clears_factory_slot:
            slot0 = hw.dct.read_slots()[0]
            if slot0.magicNumber != MAGIC_UNUSED:  # spec 9 change 2: cleared once
                hw.dct.clear_slot_magic(0)
                hw.log(
                    "system: factory slot 0 cleared (extended profile, docs/device-os.md#extended)"
                )

    def _validate_modules(self) -> tuple[bool, str]:
        """``HAL_Core_Validate_Modules(1)``: bootloader and system part 2 (spec 3.2 #2)."""
        for fn, ix in ((ModuleFunction.BOOTLOADER, 0), (ModuleFunction.SYSTEM_PART, 2)):
            b = self.hw.profile.find_module_bounds(fn, ix)
            if b is None:
                continue
            r = self.fetch_module(b, user_deps_optional=False, flags=MODULE_VALIDATION_INTEGRITY)
            if not r.found or (r.checked & ~r.result):
                return False, f"{b.name}: {r.reason or 'validation failed'}"
        return True, ""

    def _validate_user(self) -> str:
        """``HAL_Core_Validate_User_Module``: "ok", "reset", or the reason it is not valid."""
        hw = self.hw
        p = hw.profile
        flags = hw.regs.load_flags()
        mode = flags.StartupMode_SysFlag
        if not (mode == 0xFF or (mode & 1) == 0):
            return "safe mode requested (StartupMode bit 0, docs/device-os.md#boot-check)"
        loc = p.user_loc
        if not is_user_module_info_valid(hw.flash, loc, loc, p.platform_id):
            if p.factory_fallback and is_user_module_info_valid(
                hw.flash, p.fac_addr, loc, p.platform_id
            ):
                hw.regs.update_flags(Factory_Reset_SysFlag=FACTORY_RESET_REQUEST)
                hw.log(
                    f"system: user part at {fmt_addr(loc)} invalid, factory header at "
                    f"{fmt_addr(p.fac_addr)} looks valid: HAL_Core_Factory_Reset "
                    "(docs/device-os.md#boot-check)"
                )
                return "reset"
            return (
                f"user part at {fmt_addr(loc)}: FLASH_isUserModuleInfoValid failed "
                "(start, end or platform, docs/device-os.md#boot-check)"
            )
        info = module_info_at(hw.flash, loc)
        if info is None:  # pragma: no cover - valid above
            return "user part unreadable"
        if not verify_crc32(hw.flash, loc, info.module_length):
            return (
                f"user part at {fmt_addr(loc)}: CRC-32 does not match "
                "(docs/device-os.md#boot-check)"
            )
        ok, why = self.validate_dependencies(info, user_optional=False, full=False)
        if not ok:
            return f"user part dependencies: {why} (docs/device-os.md#boot-check)"
        return "ok"

    # ================================================================== OTA receive path
    # The three entry points the protocol layer calls (deviceos.ota.SystemUpdateCallbacks,
    # system/src/system_update.cpp:291-447, spec 4.1-4.2, 6.2-6.4).

    def prepare_for_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Prepare_For_Firmware_Update`` (spec 4.1 #1, 6.2).

        For the FIRMWARE store: ``file_address = HAL_OTA_FlashAddress() + chunk_address`` in
        32-bit arithmetic, as the MCU computes it (spec 11.2: 0xFFF40000 wraps to 0x08000000),
        and chunk_size 0 selects ``HAL_OTA_ChunkSize()`` and ``HAL_OTA_FlashLength()`` of this
        profile. Other stores keep the server's raw ``file_address`` (spec 6.2). Then 1 when
        updates are disabled; with ``flags`` bit 0 (the dry run) 0 at once; else
        ``HAL_FLASH_Begin(file_address, file_length)``, whose result is ignored
        (system_update.cpp:324), and 0.
        """
        if self.stream.handles(file):  # modelled extension: decode into the scratch
            return self.stream.prepare(file, flags, self.updates_enabled)
        hw = self.hw
        p = hw.profile
        if file.store == FileTransferStore.FIRMWARE:
            file.file_address = (p.ota_flash_address + file.chunk_address) & 0xFFFFFFFF
            if file.chunk_size == 0:
                file.chunk_size = DEFAULT_CHUNK_SIZE
                file.file_length = p.ota_flash_length
        if p.ota_address_guard and not self._in_ota_region(file.file_address, file.file_length):
            self.last_finish_reason = (
                f"file {fmt_addr(file.file_address)} length {file.file_length} is not inside the "
                f"OTA scratch [{fmt_addr(p.ota_flash_address)}, "
                f"{fmt_addr(p.ota_flash_address + p.ota_flash_length)}): refused before any erase "
                "(flashroom_in_ota_region, docs/device-os.md#extended)"
            )
            hw.log(f"system: {self.last_finish_reason}")
            return SYSTEM_ERROR_OTA_INVALID_ADDRESS
        if not self.updates_enabled:
            return 1
        if flags & 1:
            return 0
        self._flash_begin(file.file_address, file.file_length)
        return 0

    def _in_ota_region(self, address: int, length: int) -> bool:
        """``flashroom_in_ota_region`` of the patched system (devos/changes.py): is
        [address, address + length) inside the OTA scratch, in u32 arithmetic (an address below
        the scratch wraps to a huge offset and is refused)?"""
        p = self.hw.profile
        offset = (address - p.ota_flash_address) & 0xFFFFFFFF
        size = p.ota_flash_length
        return offset < size and (length & 0xFFFFFFFF) <= size - offset

    def _flash_begin(self, addr: int, file_length: int) -> None:
        """``HAL_FLASH_Begin`` -> ``FLASH_Begin`` (spec 4.1 #2)."""
        hw = self.hw
        hw.regs.update_flags(OTA_FLASHED_Status_SysFlag=0)
        slots = hw.dct.read_slots()
        for i in range(1, 5):
            if slots[i].magicNumber == MAGIC_PENDING:
                hw.dct.clear_slot_magic(i)  # spec 4.1 #2.2 (v2.x)
                hw.log(f"system: FLASH_Begin cleared pending slot {i}")
        erased = erase_memory(hw.flash, addr, file_length)
        hw.log(
            f"system: FLASH_Begin {fmt_addr(addr)} length {file_length}: "
            + ("erased" if erased else "range check failed, nothing erased")
        )

    def save_firmware_chunk(self, file: FileTransferDescriptor, chunk: bytes) -> int:
        """``Spark_Save_Firmware_Chunk``: ``HAL_FLASH_Update(chunk, chunk_address, chunk_size)``
        for the FIRMWARE store (no bounds check, spec 4.1 #3); -1 and nothing written for the
        other stores (spec 6.2).

        Raises:
            OtaError: the write runs past the end of internal flash; the real MCU bus-faults
                there (emulator model: the device panics and resets, no slot is written).
        """
        if self.stream.handles(file):  # modelled extension: decode into the scratch
            rc = self.stream.save(file, chunk)
            if rc < 0:
                self.last_finish_reason = self.stream.reason
            return rc
        if file.store != FileTransferStore.FIRMWARE:
            return -1
        hw = self.hw
        addr = file.chunk_address
        data = chunk[: file.chunk_size]
        if hw.profile.ota_address_guard and not self._in_ota_region(addr, file.chunk_size):
            return SYSTEM_ERROR_OTA_INVALID_ADDRESS  # nothing written (flashroom_in_ota_region)
        end_of_flash = hw.flash.base + hw.flash.size
        if addr < hw.flash.base:
            raise OtaError(
                f"FLASH_Update at {fmt_addr(addr)} is below internal flash "
                f"{fmt_addr(hw.flash.base)}: no bounds check (docs/device-os.md#ota-receive), the "
                "MCU bus-faults "
                "and resets; no slot is written"
            )
        if addr + len(data) > end_of_flash:
            inside = max(0, end_of_flash - addr)
            if inside:
                flash_update(hw.flash, addr, data[:inside])
            raise OtaError(
                f"FLASH_Update wrote {fmt_addr(max(addr, end_of_flash))}-"
                f"{fmt_addr(addr + len(data))}, past the end of internal flash at "
                f"{fmt_addr(end_of_flash)}: no bounds check (docs/device-os.md#ota-receive), the "
                "MCU bus-faults "
                "and resets; no slot is written"
            )
        flash_update(hw.flash, addr, data)
        return 0

    def finish_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Finish_Firmware_Update`` (spec 4.2, 6.4).

        SUCCESS | VALIDATE_ONLY: ``HAL_FLASH_OTA_Validate`` (nothing written). SUCCESS with the
        FIRMWARE store: ``HAL_FLASH_End``: 1 pending restart, 2 bootloader applied, or a negative
        ``system_error_t``; the reset that follows is always scheduled (spec 4.2 #4), which the
        caller (the device) carries out. Otherwise ``SYSTEM_ERROR_UNKNOWN``.
        """
        if self.stream.handles(file):  # modelled extension: the stream, then HAL_FLASH_End
            rc, why = self.stream.finish(file, flags)
            if why:
                self.last_finish_reason = why
            return rc
        validate = UpdateFlag.SUCCESS | UpdateFlag.VALIDATE_ONLY
        if flags & validate == validate:
            return self._validate_ota()
        if flags & UpdateFlag.SUCCESS and file.store == FileTransferStore.FIRMWARE:
            return self._end()
        self.last_finish_reason = "not a successful FIRMWARE-store transfer: nothing applied"
        return SYSTEM_ERROR_UNKNOWN

    @property
    def last_ota_error(self) -> str:
        """Why the last finish failed (empty when it did not)."""
        return self.last_finish_reason

    def _validate_ota(self) -> int:
        """``HAL_FLASH_OTA_Validate``: ``fetchAndValidateModule`` without applying (spec 6.4 #2)."""
        code, _r = self._fetch_ota()
        return code

    def _fetch_ota(self) -> tuple[int, FetchResult]:
        """``fetchAndValidateModule`` on the OTA region: (0 or the system error, the fetch)."""
        r = self.fetch_module(
            self.hw.profile.ota_bounds,
            user_deps_optional=True,
            flags=MODULE_VALIDATION_INTEGRITY | MODULE_VALIDATION_DEPENDENCIES_FULL,
        )
        if not r.found or r.info is None:
            return SYSTEM_ERROR_OTA_MODULE_NOT_FOUND, r
        missing = r.checked & ~r.result
        if not missing:
            return 0, r
        if missing & MODULE_VALIDATION_INTEGRITY:
            return SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED, r
        if missing & (MODULE_VALIDATION_DEPENDENCIES | MODULE_VALIDATION_DEPENDENCIES_FULL):
            return SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED, r
        if missing & MODULE_VALIDATION_RANGE:
            return SYSTEM_ERROR_OTA_INVALID_ADDRESS, r
        if missing & MODULE_VALIDATION_PLATFORM:
            return SYSTEM_ERROR_OTA_INVALID_PLATFORM, r
        return SYSTEM_ERROR_OTA_VALIDATION_FAILED, r

    def _end(self) -> int:
        """``HAL_FLASH_End`` (spec 4.2): 1 = pending restart, 2 = bootloader applied, or < 0."""
        hw = self.hw
        p = hw.profile
        code, r = self._fetch_ota()
        if code == SYSTEM_ERROR_OTA_MODULE_NOT_FOUND or r.info is None:
            self.last_finish_reason = r.reason
            hw.log(f"system: HAL_FLASH_End: -1300: {r.reason}")
            return SYSTEM_ERROR_OTA_MODULE_NOT_FOUND
        if code:
            self.last_finish_reason = f"validity 0x{r.result:02x} of 0x{r.checked:02x}: {r.reason}"
            hw.log(f"system: HAL_FLASH_End: {code}: {self.last_finish_reason}")
            return code
        info = r.info
        length = info.module_length + 4
        src = p.ota_flash_address
        if info.module_function == ModuleFunction.BOOTLOADER:
            return self._flash_bootloader(src, length)
        slots = hw.dct.read_slots()
        for i in range(1, 5):
            if slots[i].magicNumber != MAGIC_PENDING:
                hw.dct.write_slot(
                    i,
                    FlashModuleSlot(
                        MAGIC_PENDING,
                        FLASH_INTERNAL,
                        FLASH_INTERNAL,
                        src,
                        info.module_start_address,
                        length,
                        FLAGS_CRC_DEST_FUNCTION,
                        info.module_function,
                        slots[i].reserved,  # not set by flash_mal.c: kept from the DCT
                    ),
                )
                hw.log(
                    f"system: HAL_FLASH_End: slot {i} pending: {fmt_addr(src)} -> "
                    f"{fmt_addr(info.module_start_address)} ({length} bytes)"
                )
                self.last_finish_reason = ""
                return HAL_UPDATE_APPLIED_PENDING_RESTART
        # FLASH_AddToNextAvailableModulesSlot returned false (all 4 busy): HAL_FLASH_End keeps
        # its SYSTEM_ERROR_UNKNOWN (ota_flash_hal_stm32f2xx.cpp:354-368).
        self.last_finish_reason = "FLASH_AddToNextAvailableModulesSlot: all 4 slots busy"
        return SYSTEM_ERROR_UNKNOWN
