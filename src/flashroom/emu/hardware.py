"""The hardware both firmwares run on: flash, DCT, backup registers, profile, and an event trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flashroom.deviceos import ModuleBounds, Profile
from flashroom.emu.dct import DcdStore
from flashroom.emu.flash import NorFlash
from flashroom.emu.flashmal import module_info_at, verify_crc32
from flashroom.emu.sysflags import BackupRegisters
from flashroom.firmware.stm32f2 import RCC_CSR_POWER_ON
from flashroom.particle.module_info import ModuleInfo

if TYPE_CHECKING:  # emu/stream.py imports this module
    from flashroom.emu.stream import StreamStats

#: Events kept per run (the trace shown by ``emu ota``/``emu boot`` in text mode).
EVENT_LIMIT = 200


@dataclass
class Hardware:
    """One device's hardware state plus the profile of the firmware installed on it."""

    profile: Profile
    flash: NorFlash
    regs: BackupRegisters
    dct: DcdStore
    events: list[str] = field(default_factory=list)
    #: RCC_CSR's reset flags as the next bootloader run reads them (RM0033 5.3.21): set by the
    #: kind of reset, cleared by the system's ``HAL_Core_Init`` (see :meth:`Device._power_on`).
    reset_flags: int = RCC_CSR_POWER_ON
    #: The profile's streamed OTA (deviceos.stream) is in the firmware: False models a device
    #: whose system has the extended layout without that (modelled) change: raw bytes only.
    ota_stream_enabled: bool = True
    #: The last streamed transfer's figures (kept across the reset that follows it).
    last_stream: StreamStats | None = None

    def log(self, message: str) -> None:
        """Record a firmware event (bounded)."""
        if len(self.events) < EVENT_LIMIT:
            self.events.append(message)

    def installed(self, bounds: ModuleBounds) -> ModuleInfo | None:
        """``locate_module(bounds)``: whatever module_info reads at ``bounds.start`` (no checks)."""
        return module_info_at(self.flash, bounds.start_address)

    def module_intact(self, bounds: ModuleBounds) -> bool:
        """Emulator check: the module in ``bounds`` is the right kind and its CRC holds.

        Used where the real MCU would *execute* the code (a corrupt system part or bootloader
        means undefined behaviour on hardware), not as a Device OS check.
        """
        info = self.installed(bounds)
        if info is None:
            return False
        return (
            info.module_function == bounds.module_function
            and info.module_index == bounds.module_index
            and info.module_start_address == bounds.start_address
            and bounds.start_address < info.module_end_address <= bounds.end_address
            and verify_crc32(self.flash, bounds.start_address, info.module_length)
        )
