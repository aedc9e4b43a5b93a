"""The few Particle facts the real-firmware runner needs, gathered in one place.

Everything else the runner knows is the chip (:mod:`flashroom.firmware.stm32f2`) or comes from
the binaries themselves. The values come from :mod:`flashroom.deviceos` (their one home).
Nothing else in :mod:`flashroom.firmware` names a Particle address.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashroom.deviceos import electron, gen2
from flashroom.deviceos.enums import PlatformId
from flashroom.ranges import AddrRange


@dataclass(frozen=True)
class FirmwareTarget:
    """Where a Gen2 device keeps things, as the real firmware expects them.

    Attributes:
        name: registry key.
        platform_id: ``PLATFORM_ID`` the binaries are built for (module_info ``platform_id``).
        flash: internal flash (spec 1.1).
        flash_alias: the address flash is also visible at (boot from main flash: 0).
        sram: main SRAM (spec 1.7).
        backup_sram: the 4 KB backup SRAM page (spec 1.7, ``backup_ram_memory.ld``).
        bootloader: the bootloader region, sector 0 (spec 1.3); leaving it is the jump.
        system_jump: ``CORE_FW_ADDRESS``, where the bootloader jumps (spec 1.1, 4.4 #6.3.4).
        system: the system modules' region (spec 1.3).
        system_parts: module index -> start address of the system modules (spec 1.3, 1.4).
        ota_scratch: ``module_ota`` start (spec 4.1 #1).
        button_port: GPIO port of the SETUP/MODE button (``BUTTON1_GPIO_PORT``).
        button_pin: its pin (``BUTTON1_GPIO_PIN``); released reads high.
        call_scratch: SRAM no code uses while only system functions are called (no
            application runs): where the function-level runner puts its arguments. On Electron
            the top of the user-part RAM, below system idx3 static RAM (spec 1.7).
    """

    name: str
    platform_id: int
    flash: AddrRange
    flash_alias: int
    sram: AddrRange
    backup_sram: AddrRange
    bootloader: AddrRange
    system_jump: int
    system: AddrRange
    system_parts: tuple[tuple[int, int], ...]
    ota_scratch: int
    button_port: str
    button_pin: int
    call_scratch: AddrRange

    @property
    def code_regions(self) -> tuple[AddrRange, ...]:
        """Flash the runner executes code from (bootloader, system modules): a change there
        drops the emulator's translated code."""
        return (self.bootloader, self.system)

    def system_part_address(self, index: int) -> int | None:
        """Start address of system module ``index`` (None when the platform has none)."""
        for ix, addr in self.system_parts:
            if ix == index:
                return addr
        return None


_SYSTEM = (electron.MODULE_SYSTEM_PART1, electron.MODULE_SYSTEM_PART2, electron.MODULE_SYSTEM_PART3)

#: Electron / E Series, platform 10 (spec 1.3, 1.7).
ELECTRON = FirmwareTarget(
    name="electron",
    platform_id=PlatformId.ELECTRON,
    flash=AddrRange(gen2.INTERNAL_FLASH_START, gen2.INTERNAL_FLASH_END),
    flash_alias=0,  # BOOT0 low: main flash is also visible at 0 (RM0033 2.4)
    sram=AddrRange(gen2.SRAM_START, gen2.SRAM_END),
    backup_sram=AddrRange.sized(gen2.BACKUP_SRAM_START, gen2.BACKUP_SRAM_SIZE),
    bootloader=gen2.MODULE_BOOTLOADER.range,
    system_jump=gen2.CORE_FW_ADDRESS,
    system=AddrRange(_SYSTEM[0].start_address, _SYSTEM[-1].end_address),
    system_parts=tuple((b.module_index, b.start_address) for b in _SYSTEM),
    ota_scratch=electron.MODULE_OTA.start_address,
    button_port=electron.BUTTON1_GPIO_PORT,
    button_pin=electron.BUTTON1_GPIO_PIN,
    call_scratch=AddrRange(*electron.USER_RAM_SCRATCH),
)

TARGETS: dict[str, FirmwareTarget] = {ELECTRON.name: ELECTRON}

__all__ = ["ELECTRON", "TARGETS", "FirmwareTarget"]
