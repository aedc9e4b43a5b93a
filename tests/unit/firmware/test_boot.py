"""The real Electron bootloaders (1006 = v2.3.1, 1002 = v2.0.0-rc.1) running in Unicorn against
flashroom's NorFlash, on device states made by flashroom's own model (spec 4.4, 4.5, 11)."""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import pytest

from flashroom.emu.dct import MAGIC_PENDING, MAGIC_UNUSED, DcdStore
from flashroom.emu.device import Device
from flashroom.emu.flash import ALIGNED, program_units
from flashroom.emu.sysflags import FACTORY_RESET_REQUEST
from flashroom.firmware.boot import RealBootloader, install_bootloader, load_bootloader
from flashroom.firmware.flashport import FlashRecorder, FlashRun
from flashroom.firmware.machine import FirmwareOutcome, FirmwareRun
from flashroom.firmware.stm32f2 import FLASH_SR_PGPERR, FlashErrorBits

K = 1024
SYSTEM_RESET_HANDLER = 0x0802019C  # the fixture build's module at 0x08020000 (spec 11)
USER = 0x08080000

#: spec 11 table: the real v2.3.1 bootloader applying a 255 KB pending update, per run
#: (kind, start, end, word-granularity ops, (width, count) groups).
SPEC_11_RUNS = [
    FlashRun("erase", 0x08080000, 0x080A0000, 1, ()),
    FlashRun("program", 0x08080000, 0x080A0000, 32768, ((4, 32768),)),
    FlashRun("erase", 0x080A0000, 0x080C0000, 1, ()),
    FlashRun("program", 0x080A0000, 0x080BFC00, 32512, ((4, 32512),)),
    FlashRun("erase", 0x08008000, 0x0800C000, 1, ()),
    FlashRun("program", 0x08008008, 0x08008B40, 718, ((4, 718),)),
    FlashRun("program", 0x08008B40, 0x08008B42, 1, ((2, 1),)),
    FlashRun("program", 0x08008B42, 0x0800BFE0, 3368, ((2, 1), (4, 3367))),
    FlashRun("program", 0x0800BFE0, 0x0800BFFC, 7, ((4, 7),)),
    FlashRun("program", 0x0800BFFC, 0x0800C000, 1, ((4, 1),)),
    FlashRun("program", 0x08008000, 0x08008008, 2, ((4, 2),)),
    FlashRun("program", 0x08004000, 0x08004008, 2, ((4, 2),)),
]
SPEC_11_TOTAL = 69_382


def real_boot(
    fw: SimpleNamespace,
    bootloader: Any,
    *,
    size: int = 255 * K,
    granularity: str = "word",
    profile: str = "extended",
    **options: Any,
) -> tuple[Device, RealBootloader, FlashRecorder]:
    """A device holding the model's pending update, with ``bootloader`` in sector 0."""
    p = fw.pending_update(size, profile)
    dev = fw.make_device(p.contents, p.regs, profile=profile, granularity=granularity)
    install_bootloader(dev.flash, load_bootloader(bootloader))
    rec = FlashRecorder()
    rb = RealBootloader(dev.flash, dev.regs, recorder=rec, **options)
    return dev, rb, rec


def slot_magic(dev: Device, index: int = 1) -> int:
    return DcdStore(dev.flash).peek_slots()[index].magicNumber  # type: ignore[index]


def model_device(fw: SimpleNamespace, bootloader: Any, size: int = 255 * K) -> Device:
    p = fw.pending_update(size, "extended")
    dev = fw.make_device(p.contents, p.regs)
    install_bootloader(dev.flash, load_bootloader(bootloader))
    return dev


# ============================================================================ 1006: the apply
def test_real_1006_applies_a_255k_update_with_the_spec_11_operation_sequence(fw: Any) -> None:
    dev, rb, rec = real_boot(fw, fw.BOOTLOADER_1006)
    ops_before = dev.flash.op_count
    res = rb.boot()
    assert res.outcome is FirmwareOutcome.JUMP
    assert res.target == SYSTEM_RESET_HANDLER == rb.system_reset_handler()
    assert rec.runs() == SPEC_11_RUNS
    assert res.flash_ops == rec.op_count == SPEC_11_TOTAL
    assert dev.flash.op_count - ops_before == SPEC_11_TOTAL  # NorFlash counted the same
    p = fw.pending_update(255 * K)
    assert dev.flash.read(USER, len(p.app)) == p.app
    assert slot_magic(dev) == MAGIC_UNUSED
    assert DcdStore(dev.flash).select() == 1  # the DCT now lives in its other copy


def test_real_1006_halfword_program_reaches_norflash_as_width_2(fw: Any) -> None:
    dev, rb, _ = real_boot(fw, fw.BOOTLOADER_1006)
    calls = fw.watch(dev.flash)
    rb.boot()
    magic = [c for c in calls.programs() if c.addr == 0x08008B40]
    assert [(c.size, c.width, c.ops) for c in magic] == [(2, 2, 1)]
    assert {c.width for c in calls.programs() if c.addr >= USER} == {4}


def test_real_1006_final_flash_equals_the_models_outside_sector_0(fw: Any) -> None:
    dev, rb, _ = real_boot(fw, fw.BOOTLOADER_1006)
    assert rb.boot().outcome is FirmwareOutcome.JUMP
    model = model_device(fw, fw.BOOTLOADER_1006)
    assert fw.model_boot(model) == "jump"
    assert dev.flash.read(0x08004000, 0xFC000) == model.flash.read(0x08004000, 0xFC000)


def _units(events: list[Any]) -> list[tuple[str, int, int]]:
    """Program events expanded into their operations: (kind, address, bytes) per operation."""
    out: list[tuple[str, int, int]] = []
    for e in events:
        if e.kind == "erase":
            out.append(("erase", e.addr, 0))
            continue
        addr = e.addr
        for unit in program_units(e.addr, e.size, e.width):
            out.append(("program", addr, unit))
            addr += unit
    return out


def test_the_model_makes_the_real_code_operation_sequence_op_for_op(fw: Any) -> None:
    # spec 11 listed the model's old discrepancies (the slot magic as two byte programs, a
    # 2-byte tail, one word of the old header): the model now writes the DCT as
    # DCD::_writeSector through InternalFlashStore::write does, so none remain.
    dev, rb, _ = real_boot(fw, fw.BOOTLOADER_1006)
    real = fw.watch(dev.flash)
    rb.boot()
    model = model_device(fw, fw.BOOTLOADER_1006)
    calls = fw.watch(model.flash)
    first = model.flash.op_count
    fw.model_boot(model)
    assert model.flash.op_count - first == SPEC_11_TOTAL
    assert _units(calls.events) == _units(real.events)
    assert len(_units(real.events)) == SPEC_11_TOTAL


def test_real_1006_at_chunk_granularity_makes_one_operation_per_session_run(fw: Any) -> None:
    dev, rb, rec = real_boot(fw, fw.BOOTLOADER_1006, granularity="chunk")
    calls = fw.watch(dev.flash)
    res = rb.boot()
    assert res.outcome is FirmwareOutcome.JUMP and res.flash_ops == 12
    assert [(r.kind, r.start, r.end) for r in rec.runs()] == [
        (r.kind, r.start, r.end) for r in SPEC_11_RUNS
    ]
    chunks = calls.programs()
    assert [(c.addr, c.size, c.width) for c in chunks[:2]] == [
        (0x08080000, 0x20000, 4),
        (0x080A0000, 0x1FC00, 4),
    ]
    # the DCT piece after the slot magic: a halfword then words, handed over as ALIGNED
    assert (0x08008B42, 0x349E, ALIGNED) in [(c.addr, c.size, c.width) for c in chunks]
    # and the model, at chunk granularity, makes the same 12 operations on the same ranges
    p = fw.pending_update(255 * K)
    model = fw.make_device(p.contents, p.regs, granularity="chunk")
    install_bootloader(model.flash, load_bootloader(fw.BOOTLOADER_1006))
    mcalls = fw.watch(model.flash)
    fw.model_boot(model)
    shape = [(str(c.kind), c.addr, c.size, c.ops) for c in calls.events]
    assert [(str(c.kind), c.addr, c.size, c.ops) for c in mcalls.events] == shape


# ============================================================================ 1002
def test_real_1002_clears_the_slot_before_copying(fw: Any) -> None:
    dev, rb, rec = real_boot(fw, fw.BOOTLOADER_1002)
    res = rb.boot()
    assert res.outcome is FirmwareOutcome.JUMP and res.target == SYSTEM_RESET_HANDLER
    runs = rec.runs()
    erases = [r.start for r in runs if r.kind == "erase"]
    assert erases == [0x08008000, 0x08080000, 0x080A0000]  # DCT first, then the copy
    magic = next(i for i, r in enumerate(runs) if r.start == 0x08008B40)
    copy = next(i for i, r in enumerate(runs) if r.kind == "erase" and r.start == USER)
    assert magic < copy
    assert slot_magic(dev) == MAGIC_UNUSED
    assert dev.flash.read(USER, 255 * K) == fw.pending_update(255 * K).app


def test_real_1002_final_flash_equals_the_models_legacy_bootloader(fw: Any) -> None:
    dev, rb, _ = real_boot(fw, fw.BOOTLOADER_1002)
    assert rb.boot().outcome is FirmwareOutcome.JUMP
    model = model_device(fw, fw.BOOTLOADER_1002)  # version 1002 in sector 0: legacy (spec 4.5)
    assert fw.model_boot(model) == "jump"
    assert dev.flash.read(0x08004000, 0xFC000) == model.flash.read(0x08004000, 0xFC000)


# ============================================================================ power cuts
def test_cut_mid_copy_leaves_1006_off_and_the_next_boot_resumes_and_completes(fw: Any) -> None:
    dev, rb, rec = real_boot(fw, fw.BOOTLOADER_1006)
    dev.flash.arm_fault(40_000)  # a word of the sector 9 copy
    res = rb.boot()
    assert res.outcome is FirmwareOutcome.OFF and res.power_cut is not None
    assert res.flash_ops == 40_000
    assert slot_magic(dev) == MAGIC_PENDING  # spec 4.5: still pending after a power loss
    rec.clear()
    again = rb.boot()
    assert again.outcome is FirmwareOutcome.JUMP and again.target == SYSTEM_RESET_HANDLER
    assert rec.runs() == SPEC_11_RUNS  # repeated from the start
    clean, rb2, _ = real_boot(fw, fw.BOOTLOADER_1006)
    rb2.boot()
    assert dev.flash.read(0x08004000, 0xFC000) == clean.flash.read(0x08004000, 0xFC000)


def test_cut_mid_copy_with_1002_does_not_retry(fw: Any) -> None:
    dev, rb, rec = real_boot(fw, fw.BOOTLOADER_1002)
    dev.flash.arm_fault(40_000)
    assert rb.boot().outcome is FirmwareOutcome.OFF
    assert slot_magic(dev) == MAGIC_UNUSED  # cleared before the copy (spec 4.5 v1.5.2)
    rec.clear()
    again = rb.boot()
    assert again.outcome is FirmwareOutcome.JUMP
    assert not any(r.kind == "erase" and r.start >= USER for r in rec.runs())
    assert dev.flash.read(USER, 255 * K) != fw.pending_update(255 * K).app


def test_chunk_cut_loses_the_whole_run_and_a_torn_cut_tears_it(fw: Any) -> None:
    dev, rb, _ = real_boot(fw, fw.BOOTLOADER_1006, granularity="chunk")
    dev.flash.arm_fault(3)  # op 3: the sector 9 run
    assert rb.boot().outcome is FirmwareOutcome.OFF
    assert dev.flash.is_blank(0x080A0000, 0x20000)  # none of the run reached flash
    app = fw.pending_update(255 * K).app
    assert dev.flash.read(USER, 0x20000) == app[:0x20000]
    torn, rb2, _ = real_boot(fw, fw.BOOTLOADER_1006, granularity="chunk")
    torn.flash.arm_fault(3, torn=True, seed=5)
    assert rb2.boot().outcome is FirmwareOutcome.OFF
    half = torn.flash.read(0x080A0000, 0x1FC00)
    assert half != app[0x20000:] and not torn.flash.is_blank(0x080A0000, 0x1FC00)
    assert rb2.boot().outcome is FirmwareOutcome.JUMP  # and the retry repairs it
    assert torn.flash.read(USER, len(app)) == app


# ============================================================================ fail faults
def test_failed_word_program_takes_the_sr_error_path_and_1006_clears_the_slot(fw: Any) -> None:
    dev, rb, rec = real_boot(fw, fw.BOOTLOADER_1006)
    dev.flash.arm_fault(100, kind="fail")  # word 99 of the sector 8 copy
    res = rb.boot()
    assert res.outcome is FirmwareOutcome.JUMP
    runs = rec.runs()
    assert [(e.kind, e.addr) for e in rec.failed()] == [("program", USER + 99 * 4)]
    # CopyFlashBlock stopped at the error: no more words, sector 9 never erased ...
    assert runs[1] == FlashRun("program", USER, USER + 99 * 4, 99, ((4, 99),))
    assert not any(r.kind == "erase" and r.start == 0x080A0000 for r in runs)
    # ... and the slot is cleared anyway (spec 4.5 failure table)
    assert runs[2] == SPEC_11_RUNS[4]
    assert slot_magic(dev) == MAGIC_UNUSED
    assert dev.flash.read(USER + 99 * 4, 4) == b"\xff" * 4


def test_failed_program_shows_as_the_configured_sr_bit(fw: Any) -> None:
    dev, rb, _ = real_boot(fw, fw.BOOTLOADER_1006, fail_bits=FlashErrorBits(program=0))
    dev.flash.arm_fault(100, kind="fail")
    rb.boot()  # no error bit: the code cannot see the failure and copies on
    assert dev.flash.read(USER + 99 * 4, 4) == b"\xff" * 4
    assert dev.flash.read(USER + 100 * 4, 4) == fw.pending_update(255 * K).app[400:404]
    assert FlashErrorBits().program == FLASH_SR_PGPERR


# ============================================================================ other outcomes
def _fresh(fw: Any, profile: str = "extended") -> Device:
    d = Device.new(platform="electron", profile=profile)
    return fw.make_device(d.flash.contents(), tuple(d.regs.regs), profile=profile)


def test_no_valid_system_module_is_dfu(fw: Any) -> None:
    dev = _fresh(fw)
    install_bootloader(dev.flash, load_bootloader(fw.BOOTLOADER_1006))
    dev.flash.erase_sector(5)  # no module at 0x08020000
    res = RealBootloader(dev.flash, dev.regs).boot()
    assert res.outcome is FirmwareOutcome.DFU
    assert res.target is not None and 0x50000000 <= res.target < 0x50040000


def test_factory_reset_request_restores_the_factory_image_and_resets(fw: Any) -> None:
    dev = _fresh(fw, "stock")
    install_bootloader(dev.flash, load_bootloader(fw.BOOTLOADER_1006))
    dev.regs.update_flags(Factory_Reset_SysFlag=FACTORY_RESET_REQUEST)
    fac = dev.flash.read(0x080A0000, 0x20000)
    res = RealBootloader(dev.flash, dev.regs).boot()
    assert res.outcome is FirmwareOutcome.RESET and res.target is not None
    assert res.target & 0xFFFF0004 == 0x05FA0004  # VECTKEY | PRIGROUP kept | SYSRESETREQ
    assert dev.flash.read(USER, 0x20000) == fac
    assert dev.regs.load_flags().Factory_Reset_SysFlag == 0xFFFF


def _raw_sector0(dev: Device, image: bytes) -> None:
    dev.flash.erase_sector(0)
    dev.flash.program(0x08000000, image + b"\xff" * (-len(image) % 4))


def test_corrupt_code_is_a_crash_with_pc(fw: Any) -> None:
    dev = _fresh(fw)
    image = bytearray(load_bootloader(fw.BOOTLOADER_1006).data)
    image[0x19C:0x19E] = b"\xff\xde"  # UDF #255 at the reset handler
    _raw_sector0(dev, bytes(image))
    res = RealBootloader(dev.flash, dev.regs).boot()
    assert res.outcome is FirmwareOutcome.CRASH and res.pc == 0x0800019C


def test_reset_vector_into_unmapped_memory_is_a_crash_with_the_address(fw: Any) -> None:
    dev = _fresh(fw)
    image = bytearray(load_bootloader(fw.BOOTLOADER_1006).data)
    image[4:8] = struct.pack("<I", 0x30000001)
    _raw_sector0(dev, bytes(image))
    res = RealBootloader(dev.flash, dev.regs).boot()
    assert res.outcome is FirmwareOutcome.CRASH and res.address == 0x30000000


def test_erased_sector_0_is_a_crash_not_a_traceback(fw: Any) -> None:
    dev = _fresh(fw)
    dev.flash.erase_sector(0)
    res = RealBootloader(dev.flash, dev.regs).boot()
    assert res.outcome is FirmwareOutcome.CRASH


def test_instruction_budget_spent_is_a_hang_with_pc(fw: Any) -> None:
    _, rb, _ = real_boot(fw, fw.BOOTLOADER_1006)
    res = rb.boot(budget=10_000)
    assert res.outcome is FirmwareOutcome.HANG
    assert 0x08000000 <= res.pc < 0x08004000


# ============================================================================ state
def test_backup_registers_are_the_devices(fw: Any) -> None:
    dev, rb, _ = real_boot(fw, fw.BOOTLOADER_1006)
    rb.boot()
    flags = dev.regs.load_flags()
    assert flags.Bootloader_Version_SysFlag == 1006  # Load/Save_SystemFlags through DR5
    assert flags.RCC_CSR_SysFlag == 0x0E000000  # the power-on reset flags it saved


def test_pwr_dbp_is_set_through_the_peripheral_bit_band_alias(fw: Any) -> None:
    _, rb, _ = real_boot(fw, fw.BOOTLOADER_1006)
    rb.boot()
    assert rb.machine.pwr.read_register(0) & (1 << 8)  # PWR_CR.DBP via 0x420e0020


def test_a_held_button_hangs_because_systick_is_not_delivered(fw: Any) -> None:
    # documented limit: main.c times the MODE button with TimingBUTTON, which SysTick_Handler
    # decrements; the machine delivers no interrupt, so the button loop never ends
    dev = _fresh(fw)
    install_bootloader(dev.flash, load_bootloader(fw.BOOTLOADER_1006))
    res = RealBootloader(dev.flash, dev.regs, button_pressed=True).boot(budget=2_000_000)
    assert res.outcome is FirmwareOutcome.HANG
    assert RealBootloader(dev.flash, dev.regs).boot().outcome is FirmwareOutcome.JUMP


def test_snapshot_and_restore_give_the_same_boot_again(fw: Any) -> None:
    dev, rb, rec = real_boot(fw, fw.BOOTLOADER_1006, granularity="chunk")
    snap = rb.snapshot()
    first = rb.boot()
    after = dev.flash.contents()
    rb.restore(snap)
    assert slot_magic(dev) == MAGIC_PENDING
    rec.clear()
    second = rb.boot()
    assert (second.outcome, second.target, second.flash_ops) == (
        first.outcome,
        first.target,
        first.flash_ops,
    )
    assert dev.flash.contents() == after


def test_result_json_keys_are_stable() -> None:
    r = FirmwareRun(FirmwareOutcome.JUMP, 0x0802019C, target=0x0802019C, flash_ops=3)
    assert r.to_json() == {
        "outcome": "jump",
        "pc": "0x0802019c",
        "target": "0x0802019c",
        "address": None,
        "reason": "",
        "r0": None,
        "flash_ops": 3,
        "callbacks": 0,
    }


@pytest.mark.parametrize("granularity", ["word", "chunk"])
def test_write_protection_is_lifted_by_the_code_before_it_erases(fw: Any, granularity: str) -> None:
    # sector 8 protected in the option bytes; FLASH_EraseMemory lifts it first (spec 8.6)
    _, rb, rec = real_boot(
        fw, fw.BOOTLOADER_1006, granularity=granularity, write_protected=frozenset({8})
    )
    assert rb.boot().outcome is FirmwareOutcome.JUMP
    assert rec.runs()[0] == SPEC_11_RUNS[0]
    assert rb.machine.flash_if.nwrp & (1 << 8)
