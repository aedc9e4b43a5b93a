"""System flags in RTC backup registers (spec 8.4) and the other backup registers (spec 8.5).

The registers are battery-backed: they survive a reset and a power cut of the main supply, so the
emulator keeps them across ``reset``/``boot`` and persists them in the image file. Losing VBAT as
well (registers back to 0) is out of scope.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

SYSTEM_FLAGS_MAGIC = 0x1ADEACC0  # spec 8.4: DR4
N_REGISTERS = 20  # RTC_BKP_DR0..DR19 on the STM32F2

# DR1 values (spec 8.5, syshealth_hal.h:35-49)
DR1_ENTER_DFU = 0xEDFA
DR1_ENTER_SAFE_MODE = 0x5AFE
DR1_CLEARED = 0xFFFF

FACTORY_RESET_REQUEST = 0xAAAA
IWDG_ENABLE = 0xD001
FACTORY_RESET_DONE = 0x5A


@dataclass
class SystemFlags:
    """``platform_system_flags_t`` as the registers DR5..DR9 hold it (spec 8.4)."""

    NVMEM_SPARK_Reset_SysFlag: int = 0xFFFF  # DR5 31..16
    Bootloader_Version_SysFlag: int = 0xFFFF  # DR5 15..0
    OTA_FLASHED_Status_SysFlag: int = 0xFFFF  # DR6 31..16
    FLASH_OTA_Update_SysFlag: int = 0xFFFF  # DR6 15..0
    IWDG_Enable_SysFlag: int = 0xFFFF  # DR7 31..16 (0xD001 = on)
    Factory_Reset_SysFlag: int = 0xFFFF  # DR7 15..0 (0xAAAA = request)
    FeaturesEnabled_SysFlag: int = 0xFF  # DR8 31..24
    StartupMode_SysFlag: int = 0xFF  # DR8 23..16 (bit 0 = safe mode)
    Factory_Reset_Done_SysFlag: int = 0xFF  # DR8 15..8 (0x5A)
    dfu_on_no_firmware: int = 0xFF  # DR8 7..0
    RCC_CSR_SysFlag: int = 0xFFFFFFFF  # DR9


class BackupRegisters:
    """RTC backup registers DR0..DR19 (u32). Fresh registers read 0 (RM0033 reset value)."""

    def __init__(self, values: list[int] | None = None):
        self.regs: list[int] = list(values) if values is not None else [0] * N_REGISTERS
        if len(self.regs) != N_REGISTERS:
            raise ValueError(f"expected {N_REGISTERS} backup registers, got {len(self.regs)}")

    def copy(self) -> BackupRegisters:
        return BackupRegisters(self.regs)

    # spec 8.4: Load_SystemFlags / Save_SystemFlags
    def load_flags(self) -> SystemFlags:
        """The flags struct; all 0xFF when the DR4 magic is absent (spec 8.4)."""
        r = self.regs
        if r[4] != SYSTEM_FLAGS_MAGIC:
            return SystemFlags()
        return SystemFlags(
            r[5] >> 16,
            r[5] & 0xFFFF,
            r[6] >> 16,
            r[6] & 0xFFFF,
            r[7] >> 16,
            r[7] & 0xFFFF,
            (r[8] >> 24) & 0xFF,
            (r[8] >> 16) & 0xFF,
            (r[8] >> 8) & 0xFF,
            r[8] & 0xFF,
            r[9],
        )

    def save_flags(self, f: SystemFlags) -> None:
        """Write DR5..DR9, then the DR4 magic last (spec 8.4)."""
        r = self.regs
        r[5] = (f.NVMEM_SPARK_Reset_SysFlag << 16) | f.Bootloader_Version_SysFlag
        r[6] = (f.OTA_FLASHED_Status_SysFlag << 16) | f.FLASH_OTA_Update_SysFlag
        r[7] = (f.IWDG_Enable_SysFlag << 16) | f.Factory_Reset_SysFlag
        r[8] = (
            (f.FeaturesEnabled_SysFlag << 24)
            | (f.StartupMode_SysFlag << 16)
            | (f.Factory_Reset_Done_SysFlag << 8)
            | f.dfu_on_no_firmware
        )
        r[9] = f.RCC_CSR_SysFlag
        r[4] = SYSTEM_FLAGS_MAGIC

    def update_flags(self, **changes: int) -> SystemFlags:
        """Load, change the named fields, save; returns the new flags."""
        f = self.load_flags()
        names = {fl.name for fl in fields(SystemFlags)}
        for k, v in changes.items():
            if k not in names:
                raise KeyError(k)
            setattr(f, k, v)
        self.save_flags(f)
        return f

    @property
    def dr1(self) -> int:
        return self.regs[1] & 0xFFFF

    @dr1.setter
    def dr1(self, value: int) -> None:
        self.regs[1] = value & 0xFFFF

    def to_json(self) -> dict[str, object]:
        f = self.load_flags()
        return {
            "registers": [f"0x{v:08x}" for v in self.regs],
            "system_flags": {fl.name: getattr(f, fl.name) for fl in fields(SystemFlags)},
        }


__all__ = [
    "DR1_CLEARED",
    "DR1_ENTER_DFU",
    "DR1_ENTER_SAFE_MODE",
    "FACTORY_RESET_DONE",
    "FACTORY_RESET_REQUEST",
    "IWDG_ENABLE",
    "SYSTEM_FLAGS_MAGIC",
    "BackupRegisters",
    "SystemFlags",
]
