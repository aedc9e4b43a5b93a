"""The Gen2 bootloader: boot selection, ``FLASH_UpdateModules``, factory restore (spec 4.4, 4.5, 5).

The copy semantics follow the **installed** bootloader's ``module_version`` (spec 4.5): <= 1002
(``legacy``) clears every pending slot *before* the first copy, so an interrupted copy is not
retried; >= 1003 (``resumable``) clears each slot *after* its copy, regardless of success, so an
interrupted copy is repeated from the start at the next boot.

Not modelled (spec-silent or out of scope): the IWDG retry ladder on watchdog resets (no code runs
long enough here to be bitten), LEDs, option-byte write protection (always removable, spec 8.6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flashroom.deviceos.gen2 import (
    CORE_FW_ADDRESS,
    MAGIC_FACTORY,
    MAGIC_PENDING,
    RESUMABLE_FROM_VERSION,
)
from flashroom.emu.dct import FlashModuleSlot, factory_slot
from flashroom.emu.flashmal import (
    check_copy_memory,
    copy_memory,
    is_user_module_info_valid,
)
from flashroom.emu.hardware import Hardware
from flashroom.emu.sysflags import (
    DR1_CLEARED,
    DR1_ENTER_DFU,
    DR1_ENTER_SAFE_MODE,
    FACTORY_RESET_DONE,
    FACTORY_RESET_REQUEST,
    IWDG_ENABLE,
)
from flashroom.firmware.stm32f2 import RCC_CSR_POWER_ON
from flashroom.particle.module_info import ModuleFunction
from flashroom.ranges import fmt_addr


@dataclass(frozen=True)
class BootloaderResult:
    """How one bootloader run ended.

    Attributes:
        kind: ``"jump"`` (to the system at 0x08020000), ``"reset"`` (it resets the MCU),
            ``"dfu"`` or ``"bricked"`` (sector 0 does not hold an intact bootloader).
        factory_restored: a factory image was copied in this run.
        reason: why it ended this way (for the trace and error messages).
    """

    kind: str
    factory_restored: bool = False
    reason: str = ""


class Bootloader:
    """The bootloader running on ``hw``."""

    def __init__(self, hw: Hardware):
        self.hw = hw

    # ------------------------------------------------------------------ identity
    def version(self) -> int | None:
        """The installed bootloader's ``module_version`` (None when sector 0 is not intact)."""
        b = self.hw.profile.find_module_bounds(ModuleFunction.BOOTLOADER, 0)
        if b is None or not self.hw.module_intact(b):
            return None
        info = self.hw.installed(b)
        return None if info is None else info.module_version

    def variant(self) -> str:
        """``resumable`` (>= 1003) or ``legacy`` by the installed version (spec 4.5)."""
        v = self.version()
        return "resumable" if v is not None and v >= RESUMABLE_FROM_VERSION else "legacy"

    # ------------------------------------------------------------------ DCT access
    def dct_available(self) -> bool:
        """Can the bootloader reach the DCT? Always on Electron (own DCD code).

        Photon/P1 (spec 8.2, 4.5 "Resumability on Photon/P1"): the bootloader borrows the DCT
        functions from system part 2, after bounds- and CRC-verifying part 2 (version >= 200) and
        part 1 (version >= what part 2 depends on). Spec-silent: we re-check on every access
        (the real code loads once and reloads after a system-part copy, spec 4.5 #2.3).
        """
        p = self.hw.profile
        if p.platform == "electron":
            return True
        b1 = p.find_module_bounds(ModuleFunction.SYSTEM_PART, 1)
        b2 = p.find_module_bounds(ModuleFunction.SYSTEM_PART, 2)
        if b1 is None or b2 is None:
            return False
        if not (self.hw.module_intact(b1) and self.hw.module_intact(b2)):
            return False
        i1, i2 = self.hw.installed(b1), self.hw.installed(b2)
        if i1 is None or i2 is None or i2.module_version < 200:
            return False
        need = i2.dependency.module_version if not i2.dependency.is_none else 0
        return i1.module_version >= need

    def _read_slots(self) -> list[FlashModuleSlot] | None:
        if not self.dct_available():
            self.hw.log("bootloader: DCT functions unavailable (system parts 1/2 not intact)")
            return None
        return self.hw.dct.read_slots()

    # ------------------------------------------------------------------ the run
    def run(
        self, *, button_s: float = 0.0, reset_flags: int = RCC_CSR_POWER_ON
    ) -> BootloaderResult:
        """One bootloader run from reset (spec 4.4).

        Args:
            button_s: seconds the MODE button is held.
            reset_flags: the RCC_CSR value this reset left (``Save_Reset_Syndrome`` copies it
                to ``RCC_CSR_SysFlag``, DR9: hw_system_flags.c:5-12, main.c:159).
        """
        hw = self.hw
        version = self.version()
        if version is None:
            return BootloaderResult(
                "bricked",
                reason="sector 0 does not hold an intact bootloader: the MCU starts executing "
                "whatever is at 0x08000000 (docs/device-os.md#bootloader-updates: a bootloader "
                "update is not power-loss safe)",
            )
        regs = hw.regs
        # 1. Load_SystemFlags; rewrite the bootloader version; clear StartupMode. The feature
        #    byte is forced to 0xFF in a local copy only (main.c:173-177): every button
        #    feature is on, the register keeps its value.
        flags = regs.load_flags()
        if flags.RCC_CSR_SysFlag != reset_flags:  # Save_Reset_Syndrome
            flags.RCC_CSR_SysFlag = reset_flags
        if flags.Bootloader_Version_SysFlag != version:
            flags.Bootloader_Version_SysFlag = version
        if flags.StartupMode_SysFlag != 0:
            flags.StartupMode_SysFlag = 0
        regs.save_flags(flags)
        # 2. FLASH_OTA_Update_SysFlag 0x0005 marks "OTA available" (the DR10 test is compiled
        #    out, spec 4.4 #2); only the external-flash code writes it. It is acted on in the
        #    priority chain (#6.1), after the DR1 and button handling.
        ota_available = flags.FLASH_OTA_Update_SysFlag == 0x0005
        # 3. factory reset request
        factory_mode = flags.Factory_Reset_SysFlag == FACTORY_RESET_REQUEST
        dfu_mode = False
        safe_mode = False
        # 4. DR1 requests (spec 8.5)
        dr1 = regs.dr1
        if dr1 == DR1_CLEARED:
            regs.dr1 = 1
        elif dr1 == DR1_ENTER_DFU:
            regs.dr1 = DR1_CLEARED
            dfu_mode = True
        elif dr1 == DR1_ENTER_SAFE_MODE:
            regs.dr1 = DR1_CLEARED
            safe_mode = True
        # 5. MODE button (spec 5.2). Spec-silent details follow bootloader main.c's loop, one
        #    branch per pass as the held time grows: reaching 1 s sets safe mode and cancels a
        #    pending OTA/factory mode; 3 s adds DFU; > 6.5 s sets factory mode again (only if
        #    available) with NVMEM_SPARK_Reset = 0; > 10 s "reset settings" saves
        #    NVMEM_SPARK_Reset = 1 and cancels DFU and safe mode.
        if button_s >= 1.0:
            ota_available = False
            factory_mode = False
            safe_mode = True
            nvmem: int | None = None
            if button_s >= 3.0:
                dfu_mode = True
            if button_s > 6.5 and self.factory_reset_available():
                factory_mode = True
                nvmem = 0x0000
                hw.log(f"bootloader: button held {button_s:g} s: factory reset (green)")
            if button_s > 10.0:
                nvmem = 0x0001
                dfu_mode = False
                safe_mode = False
                hw.log(f"bootloader: button held {button_s:g} s: reset settings (white)")
            elif dfu_mode:
                hw.log(f"bootloader: button held {button_s:g} s: DFU mode (yellow)")
            else:
                hw.log(f"bootloader: button held {button_s:g} s: safe mode (magenta)")
            if nvmem is not None:
                regs.update_flags(NVMEM_SPARK_Reset_SysFlag=nvmem)
        if safe_mode:
            regs.update_flags(StartupMode_SysFlag=1)
        # 6. priority: OTA flag (does nothing on these platforms: falls through to DFU),
        #    factory reset, normal path, DFU
        if ota_available:
            return BootloaderResult("dfu", reason="FLASH_OTA_Update_SysFlag == 0x0005")
        if factory_mode:
            return self._factory_mode()
        if dfu_mode:
            return BootloaderResult("dfu", reason="DFU mode requested")
        self.update_modules()
        if is_user_module_info_valid(
            hw.flash, CORE_FW_ADDRESS, CORE_FW_ADDRESS, hw.profile.platform_id
        ):
            f = regs.load_flags()
            if f.IWDG_Enable_SysFlag == IWDG_ENABLE:
                hw.log("bootloader: IWDG started (5 s) because IWDG_Enable_SysFlag == 0xD001")
            hw.log(f"bootloader: module_info at {fmt_addr(CORE_FW_ADDRESS)} valid: jump")
            return BootloaderResult("jump")
        hw.log(f"bootloader: no valid system module at {fmt_addr(CORE_FW_ADDRESS)} (red)")
        restored = self.factory_restore()
        if restored:
            self._finish_factory()
            return BootloaderResult("reset", factory_restored=True, reason="factory restore")
        return BootloaderResult(
            "dfu",
            reason=f"no valid system module at {fmt_addr(CORE_FW_ADDRESS)} and no factory "
            "image to restore (docs/device-os.md#boot)",
        )

    def _factory_mode(self) -> BootloaderResult:
        hw = self.hw
        if self.factory_restore():
            self._finish_factory()
            return BootloaderResult("reset", factory_restored=True, reason="factory restore")
        # spec 5.3 #5: only the 0xAAAA flag is cleared (factory_restore did it); reset if the
        # system is valid, else DFU.
        if is_user_module_info_valid(
            hw.flash, CORE_FW_ADDRESS, CORE_FW_ADDRESS, hw.profile.platform_id
        ):
            return BootloaderResult("reset", reason="factory restore failed; system valid")
        return BootloaderResult("dfu", reason="factory restore failed and no valid system")

    def _finish_factory(self) -> None:
        # spec 5.3 #4
        regs = self.hw.regs
        regs.update_flags(
            Factory_Reset_SysFlag=0xFFFF,
            OTA_FLASHED_Status_SysFlag=0,
            dfu_on_no_firmware=0,
            Factory_Reset_Done_SysFlag=FACTORY_RESET_DONE,
            IWDG_Enable_SysFlag=IWDG_ENABLE,
            FLASH_OTA_Update_SysFlag=0x5000,
        )
        regs.regs[10] = 0x5000

    # ------------------------------------------------------------------ FLASH_UpdateModules
    def update_modules(self) -> None:
        """``FLASH_UpdateModules`` (spec 4.5): apply every pending slot 1-4."""
        hw = self.hw
        slots = self._read_slots()
        if slots is None:
            hw.log("bootloader: FLASH_UpdateModules: DCT read failed, nothing copied")
            return
        legacy = self.variant() == "legacy"
        pending = [i for i in range(1, 5) if slots[i].magicNumber == MAGIC_PENDING]
        if legacy:
            # spec 4.5 v1.5.2 difference: a first loop marks every pending slot unused
            # (flash_mal.c v1.5.2:635-639), the copies run afterwards in a second loop (:651).
            for i in pending:
                hw.dct.clear_slot_magic(i)
        for i in pending:
            s = slots[i]
            hw.log(
                f"bootloader: slot {i}: copy {fmt_addr(s.sourceAddress)} -> "
                f"{fmt_addr(s.destinationAddress)} ({s.length} bytes)"
            )
            res = _slot_copy(copy_memory, hw, s)
            if not res.ok:
                hw.log(f"bootloader: slot {i}: FLASH_CheckCopyMemory refused: {res.reason}")
            if not legacy:
                if self.dct_available():
                    # spec 4.5 #2.4: cleared regardless of whether the copy succeeded
                    hw.dct.clear_slot_magic(i)
                else:
                    hw.log(f"bootloader: slot {i}: DCT unavailable, slot not cleared")

    # ------------------------------------------------------------------ factory reset
    def _factory_slot(self) -> FlashModuleSlot:
        """Slot 0 if it holds 0x0FAC, else the compiled-in default (spec 5.3 #1-2)."""
        p = self.hw.profile
        slots = self._read_slots()
        if slots is not None and slots[0].magicNumber == MAGIC_FACTORY:
            return slots[0]
        return factory_slot(p.fac_addr, p.user_loc)

    def factory_reset_available(self) -> bool:
        """``FLASH_IsFactoryResetAvailable`` (spec 5.4 #1): the restore's checks would pass."""
        return _slot_copy(check_copy_memory, self.hw, self._factory_slot()) is None

    def factory_restore(self) -> bool:
        """``FACTORY_Flash_Reset`` (spec 5.3): the checked sector-wise copy of the factory slot;
        on failure only ``Factory_Reset_SysFlag`` is cleared (the caller runs Finish_Update on
        success)."""
        hw = self.hw
        s = self._factory_slot()
        res = _slot_copy(copy_memory, hw, s)
        if res.ok:
            hw.log(
                f"bootloader: factory image {fmt_addr(s.sourceAddress)} restored to "
                f"{fmt_addr(s.destinationAddress)}"
            )
        else:
            hw.log(f"bootloader: factory restore refused (BADARG): {res.reason}")
            # spec 5.3 #5: on failure FACTORY_Flash_Reset clears only the 0xAAAA request
            hw.regs.update_flags(Factory_Reset_SysFlag=0xFFFF)
        return res.ok


_R = TypeVar("_R")


def _slot_copy(fn: Callable[..., _R], hw: Hardware, s: FlashModuleSlot) -> _R:
    """Call ``FLASH_CopyMemory`` or ``FLASH_CheckCopyMemory`` with a slot's parameters (spec 4.3,
    4.5): source, destination, length, function, flags and both device ids."""
    return fn(
        hw.flash,
        s.sourceAddress,
        s.destinationAddress,
        s.length,
        s.module_function,
        s.flags,
        hw.profile.platform_id,
        src_device=s.sourceDeviceID,
        dst_device=s.destinationDeviceID,
    )
