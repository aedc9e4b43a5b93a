"""How a run of real firmware ends: :class:`FirmwareOutcome` and :class:`FirmwareRun`.

Values, not exceptions: a firmware that crashes or hangs is an outcome with its PC and address.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flashroom.errors import PowerCut
from flashroom.ranges import fmt_addr


class FirmwareOutcome(StrEnum):
    """How a run of real firmware ended (stable JSON strings)."""

    #: the PC left the region the run was confined to (the bootloader's jump to the system)
    JUMP = "jump"
    #: the code requested a system reset (AIRCR VECTKEY + SYSRESETREQ, ``NVIC_SystemReset``)
    RESET = "reset"
    #: the code touched the USB OTG FS peripheral: it entered DFU mode
    DFU = "dfu"
    #: unmapped access, write to read-only memory, invalid instruction, exception/fault
    CRASH = "crash"
    #: the instruction budget ran out
    HANG = "hang"
    #: a power cut (the armed NorFlash fault) switched the device off
    OFF = "off"
    #: a function called with :meth:`Machine.call` returned
    RETURN = "return"


@dataclass(frozen=True)
class FirmwareRun:
    """The end of one run.

    Attributes:
        outcome: see :class:`FirmwareOutcome`.
        pc: the PC when the run ended (the faulting instruction for a crash).
        target: JUMP: where the PC went; RESET: the AIRCR value written.
        address: CRASH: the faulting data/fetch address (None for an invalid instruction).
        reason: a sentence for reports.
        r0: RETURN: the function's return value as a signed 32-bit int.
        flash_ops: flash operations this run made (granularity-dependent).
        callbacks: Python callbacks Unicorn made this run (the cost driver).
        power_cut: OFF: the exception NorFlash raised.
    """

    outcome: FirmwareOutcome
    pc: int
    target: int | None = None
    address: int | None = None
    reason: str = ""
    r0: int | None = None
    flash_ops: int = 0
    callbacks: int = 0
    power_cut: PowerCut | None = None

    def to_json(self) -> dict[str, Any]:
        """Stable snake_case keys; addresses as ``0x%08x`` strings."""
        return {
            "outcome": str(self.outcome),
            "pc": fmt_addr(self.pc),
            "target": None if self.target is None else fmt_addr(self.target),
            "address": None if self.address is None else fmt_addr(self.address),
            "reason": self.reason,
            "r0": self.r0,
            "flash_ops": self.flash_ops,
            "callbacks": self.callbacks,
        }


__all__ = ["FirmwareOutcome", "FirmwareRun"]
