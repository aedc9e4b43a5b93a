"""The machine on hand-assembled Thumb code: calls, outcomes, bit-band (no Device OS binaries)."""

from __future__ import annotations

from unicorn.arm_const import UC_ARM_REG_R0

from flashroom.emu.flash import NorFlash
from flashroom.firmware.machine import TRAP_ADDRESS, FirmwareOutcome, Machine
from flashroom.ranges import AddrRange

CODE = 0x20001000
ADD = bytes.fromhex("40187047")  # adds r0, r0, r1; bx lr
FIFTH = bytes.fromhex("00987047")  # ldr r0, [sp]; bx lr
LOAD = bytes.fromhex("00687047")  # ldr r0, [r0]; bx lr
STORE = bytes.fromhex("08607047")  # str r0, [r1]; bx lr
SPIN = bytes.fromhex("fee7")  # b .
UDF = bytes.fromhex("ffde")  # udf #255


def machine() -> Machine:
    return Machine(NorFlash())


def test_call_passes_arguments_and_returns_r0_signed() -> None:
    m = machine()
    m.write(CODE, ADD)
    r = m.call(CODE, (40, 2))
    assert (r.outcome, r.r0, r.pc) == (FirmwareOutcome.RETURN, 42, TRAP_ADDRESS)
    assert m.call(CODE, (1, 0xFFFFFFFD)).r0 == -2
    m.write(CODE, FIFTH)  # rewritten code runs: translations of the range are dropped
    assert m.call(CODE, (1, 2, 3, 4, 0x55)).r0 == 0x55


def test_an_unmapped_read_is_a_crash_with_pc_and_address() -> None:
    m = machine()
    m.write(CODE, LOAD)
    r = m.call(CODE, (0x30000000,))
    assert (r.outcome, r.pc, r.address) == (FirmwareOutcome.CRASH, CODE, 0x30000000)


def test_an_invalid_instruction_is_a_crash() -> None:
    m = machine()
    m.write(CODE, UDF)
    r = m.call(CODE, ())
    assert (r.outcome, r.pc) == (FirmwareOutcome.CRASH, CODE)


def test_a_spin_is_a_hang_with_pc() -> None:
    m = machine()
    m.write(CODE, SPIN)
    r = m.call(CODE, (), budget=1000)
    assert (r.outcome, r.pc) == (FirmwareOutcome.HANG, CODE)


def test_touching_usb_otg_is_dfu() -> None:
    m = machine()
    m.write(CODE, LOAD)
    r = m.call(CODE, (0x50000800,))
    assert (r.outcome, r.target) == (FirmwareOutcome.DFU, 0x50000800)


def test_leaving_the_confined_region_is_a_jump_with_the_target() -> None:
    m = machine()
    m.write(CODE, bytes.fromhex("0047"))  # bx r0
    m.write(CODE + 0x100, SPIN)
    region = AddrRange(CODE, CODE + 0x10)
    m.uc.reg_write(UC_ARM_REG_R0, (CODE + 0x100) | 1)
    r = m.run(CODE, confine=region, budget=1000)
    assert (r.outcome, r.target) == (FirmwareOutcome.JUMP, CODE + 0x100)
    m.uc.reg_write(UC_ARM_REG_R0, CODE + 0x100)  # no Thumb bit: the core faults (INVSTATE)
    assert m.run(CODE, confine=region, budget=1000).outcome is FirmwareOutcome.CRASH


def test_the_aircr_reset_request_is_a_reset() -> None:
    m = machine()
    m.write(CODE, STORE)
    r = m.call(CODE, (0x05FA0004, 0xE000ED0C))
    assert (r.outcome, r.target) == (FirmwareOutcome.RESET, 0x05FA0004)


def test_bit_band_aliases_reach_sram_and_registers() -> None:
    m = machine()
    m.write(CODE, STORE)
    m.call(CODE, (1, 0x22000000 + 0x100 * 32 + 3 * 4))  # bit 3 of 0x20000100
    assert m.read(0x20000100, 1) == b"\x08"
    m.call(CODE, (1, 0x42000000 + 0x7000 * 32 + 8 * 4))  # PWR_CR.DBP
    assert m.pwr.read_register(0) == 1 << 8
    m.write(CODE, LOAD)
    assert m.call(CODE, (0x22000000 + 0x100 * 32 + 3 * 4,)).r0 == 1


def test_a_store_to_flash_without_pg_sets_pgserr_and_writes_nothing() -> None:
    m = machine()
    m.write(CODE, STORE)
    assert m.call(CODE, (0, 0x08080000)).outcome is FirmwareOutcome.RETURN
    assert m.flash.read(0x08080000, 4) == b"\xff" * 4 == m.read(0x08080000, 4)
    assert m.flash_if.read_register(0x0C) & (1 << 7)
    assert m.call(CODE, (0, 0x00080000)).outcome is FirmwareOutcome.RETURN  # the alias too
    assert m.read(0x00080000, 4) == b"\xff" * 4
