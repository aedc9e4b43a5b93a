"""The few Particle facts the real-firmware runner needs, in one place.

Everything else the runner knows is the chip (:mod:`flashroom.firmware.stm32f2`) or comes from
the binaries themselves. When the ``flashroom.deviceos`` facts package lands, :data:`ELECTRON`
should be built from it; nothing else in :mod:`flashroom.firmware` names a Particle address.
"""

from __future__ import annotations

from dataclasses import dataclass

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


#: Electron / E Series, platform 10 (spec 1.3, 1.7; platform_config.h:87-88 for the button).
ELECTRON = FirmwareTarget(
    name="electron",
    platform_id=10,
    flash=AddrRange(0x08000000, 0x08100000),
    flash_alias=0x00000000,
    sram=AddrRange(0x20000000, 0x20020000),
    backup_sram=AddrRange(0x40024000, 0x40025000),
    bootloader=AddrRange(0x08000000, 0x08004000),
    system_jump=0x08020000,
    system=AddrRange(0x08020000, 0x08080000),
    system_parts=((1, 0x08020000), (2, 0x08040000), (3, 0x08060000)),
    ota_scratch=0x080C0000,
    button_port="C",
    button_pin=7,
    call_scratch=AddrRange(0x2001A000, 0x2001BC00),
)

TARGETS: dict[str, FirmwareTarget] = {ELECTRON.name: ELECTRON}

__all__ = ["ELECTRON", "TARGETS", "FirmwareTarget"]
