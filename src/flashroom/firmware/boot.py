"""Booting the real bootloader from sector 0 of the device's flash (spec 4.4, 4.5, 11).

The bootloader that runs is whatever sector 0 holds, as on the device: :func:`install_bootloader`
puts a real image there (erase sector 0 + program, like DFU) after :func:`load_bootloader`
refused bad input. :class:`RealBootloader` then powers the MCU on and runs it until an outcome:
``jump`` (to the system's reset handler), ``reset``, ``dfu``, ``crash``, ``hang`` or ``off``.
"""

from __future__ import annotations

from pathlib import Path

from flashroom.firmware import stm32f2 as st
from flashroom.firmware.flashport import FlashPrimitive, FlashRecorder
from flashroom.firmware.image import (
    VECTOR_TABLE_INFO_OFFSET,
    FirmwareImage,
    check_bootloader,
    install_image,
)
from flashroom.firmware.machine import (
    DEFAULT_BUDGET,
    Backup,
    FirmwareOutcome,
    FirmwareRun,
    Machine,
    MachineSnapshot,
)
from flashroom.firmware.targets import ELECTRON, FirmwareTarget
from flashroom.ranges import fmt_addr


def load_bootloader(
    source: str | Path | bytes,
    *,
    name: str = "<bootloader>",
    target: FirmwareTarget = ELECTRON,
) -> FirmwareImage:
    """Read and check a bootloader (``.bin`` or ``.elf``); module_info at +0x184 (spec 1.6).

    Raises:
        FirmwareImageError: the bad-input verdicts of :func:`check_bootloader` and
            :meth:`FirmwareImage.from_bytes` (platform, vector table, size, machine, module info).
    """
    if isinstance(source, bytes):
        image = FirmwareImage.from_bytes(
            source, name=name, target=target, info_offset=VECTOR_TABLE_INFO_OFFSET
        )
    else:
        image = FirmwareImage.from_path(source, target=target, info_offset=VECTOR_TABLE_INFO_OFFSET)
    check_bootloader(image, target)
    return image


def install_bootloader(flash: FlashPrimitive, image: FirmwareImage) -> None:
    """Write a checked bootloader into sector 0 (erase + program, see :func:`install_image`)."""
    install_image(flash, image)


class RealBootloader:
    """The MCU of one device, booting the real bootloader in its sector 0.

    One instance can boot many times (each :meth:`boot` is a power-on); :meth:`snapshot` and
    :meth:`restore` bring CPU, RAM, registers and flash back (fault sweeps).

    Args:
        flash: the device's NorFlash.
        backup: the device's backup registers (read at power-on, written through).
        target: Particle facts.
        button_pressed: the SETUP/MODE button is held during the boot.
        reset_flags: RCC_CSR reset flags (default power-on; e.g. IWDGRST for the retry ladder).
        write_protected: sectors write-protected in the option bytes.
        fail_bits: SR bits a NorFlash ``fail`` fault shows as.
        recorder: records every NorFlash call the code makes.
    """

    def __init__(
        self,
        flash: FlashPrimitive,
        backup: Backup = None,
        *,
        target: FirmwareTarget = ELECTRON,
        button_pressed: bool = False,
        reset_flags: int = st.RCC_CSR_POWER_ON,
        write_protected: frozenset[int] = frozenset(),
        fail_bits: st.FlashErrorBits = st.DEFAULT_FAIL_BITS,
        recorder: FlashRecorder | None = None,
    ) -> None:
        self.target = target
        self.machine = Machine(
            flash,
            backup,
            target=target,
            reset_flags=reset_flags,
            button_pressed=button_pressed,
            write_protected=write_protected,
            fail_bits=fail_bits,
            recorder=recorder,
        )

    def boot(self, *, budget: int = DEFAULT_BUDGET, reset_flags: int | None = None) -> FirmwareRun:
        """Power on and run the bootloader until it jumps, resets, enters DFU, crashes, hangs
        or loses power. Never raises for anything the firmware does.

        Args:
            budget: instructions before the run is a ``hang``.
            reset_flags: RCC_CSR reset flags of this reset (None: those given at construction).

        Returns:
            The :class:`FirmwareRun`; ``target`` of a ``jump`` is where the PC went (the reset
            handler of the module at 0x08020000 when all is well).
        """
        m = self.machine
        if reset_flags is not None:
            m.rcc.reset_flags = reset_flags
        m.power_on()
        region = self.target.bootloader
        sp = m.read_u32(region.start)
        reset = m.read_u32(region.start + 4)
        if not reset & 1:
            return FirmwareRun(
                FirmwareOutcome.CRASH,
                reset,
                address=region.start + 4,
                reason=f"reset vector {fmt_addr(reset)} is not a Thumb address: the core "
                "faults (INVSTATE) before the first instruction",
            )
        return m.run(reset, sp=sp, budget=budget, confine=region)

    def system_reset_handler(self) -> int:
        """The reset handler the bootloader jumps to: the word at system_jump + 4, Thumb bit
        cleared (read from flash as it is now)."""
        return self.machine.flash.read_u32(self.target.system_jump + 4) & ~1

    def snapshot(self) -> MachineSnapshot:
        """See :meth:`Machine.snapshot`."""
        return self.machine.snapshot()

    def restore(self, snap: MachineSnapshot) -> None:
        """See :meth:`Machine.restore`."""
        self.machine.restore(snap)


def run_bootloader(
    flash: FlashPrimitive,
    backup: Backup = None,
    *,
    budget: int = DEFAULT_BUDGET,
    target: FirmwareTarget = ELECTRON,
    button_pressed: bool = False,
    reset_flags: int = st.RCC_CSR_POWER_ON,
    recorder: FlashRecorder | None = None,
) -> FirmwareRun:
    """One power-on of the real bootloader in ``flash``'s sector 0 (see :class:`RealBootloader`;
    the arguments are its own)."""
    rb = RealBootloader(
        flash,
        backup,
        target=target,
        button_pressed=button_pressed,
        reset_flags=reset_flags,
        recorder=recorder,
    )
    return rb.boot(budget=budget)


__all__ = ["RealBootloader", "install_bootloader", "load_bootloader", "run_bootloader"]
