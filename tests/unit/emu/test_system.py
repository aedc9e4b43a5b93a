"""Fidelity audit: system firmware boot order and the OTA receive path (spec 3.1-3.3, 4.1, 5.3)."""

from __future__ import annotations

import pytest

from flashroom.deviceos.gen2 import DCT_OTA_UPDATE_FLAG_OFFSET
from flashroom.emu.device import Device
from flashroom.emu.flash import NorFlash
from flashroom.emu.flashmal import check_valid_address_range, erase_memory
from flashroom.emu.sysflags import IWDG_ENABLE
from flashroom.particle.build import synthetic_module, synthetic_user_app
from flashroom.particle.module_info import ModuleDependency, ModuleFunction

K = 1024


def _break_the_system_chain(dev: Device) -> None:
    """DFU a system part idx 1 that needs idx 3 >= 9999 (spec 8.9: a broken chain)."""
    part = synthetic_module(
        100 * K,
        platform_id=10,
        function=ModuleFunction.SYSTEM_PART,
        index=1,
        version=2302,
        start_address=0x08020000,
        dependency=ModuleDependency(ModuleFunction.SYSTEM_PART, 3, 9999),
        seed=77,
    )
    dev.install(part, reset=False)


def _invalidate_the_user_part(dev: Device) -> None:
    """Corrupt the user part's CRC (spec 3.2 #3.3): the system boots into safe mode."""
    crc_at = dev.profile.user_loc + (dev.module_at(dev.profile.user_loc).size - 4)  # type: ignore[union-attr]
    dev.flash.program(crc_at, b"\x00\x00\x00\x00")


def test_safe_mode_system_still_runs_hal_core_setup_and_clears_the_iwdg_flag_spec_5_3() -> None:
    # spec 5.3: after Finish_Update the bootloader starts the IWDG (flag 0xD001); the system's
    # HAL_Core_Setup clears the flag and resets once more. Safe mode is the system running
    # without the user part, so HAL_Core_Setup runs there too (system_part2_loader.c only
    # sets SAFE_MODE and carries on).
    dev = Device.new("electron", "extended")
    _invalidate_the_user_part(dev)
    dev.regs.update_flags(IWDG_Enable_SysFlag=IWDG_ENABLE)
    out = dev.boot()
    assert out.boot == "safe_mode"
    assert dev.regs.load_flags().IWDG_Enable_SysFlag == 0xFFFF


def test_safe_mode_system_still_consumes_the_ota_update_flag_spec_4_7() -> None:
    # spec 4.7 "DFU + flag": the system (main.cpp startup, not the user part) clears 0xA5.
    dev = Device.new("electron", "extended")
    _invalidate_the_user_part(dev)
    dev.hw.dct.write_app(DCT_OTA_UPDATE_FLAG_OFFSET, b"\xa5")
    out = dev.boot()
    assert out.boot == "safe_mode"
    assert dev.hw.dct.read_app(DCT_OTA_UPDATE_FLAG_OFFSET, 1) == b"\xff"


@pytest.mark.parametrize(
    ("start", "length", "ok"),
    [
        (0x080E0000, 0x20000, True),
        (0x080E0000, 0x20001, True),  # start+len-1 == 0x08100000: the off-by-one passes
        (0x080E0000, 0x20002, False),
        (0x07FFFFFF, 4, False),
        (0x08000000, 0x100001, True),
    ],
)
def test_check_valid_address_range_is_off_by_one_spec_3_1(
    start: int, length: int, ok: bool
) -> None:
    assert check_valid_address_range(start, length) is ok


@pytest.mark.parametrize(
    ("addr", "length", "erased"),
    [
        (0x080C0000, 1, [10]),
        (0x080C0000, 0x20000, [10]),
        (0x080C0000, 0x20001, [10, 11]),
        (0x080C0000, 0x40000, [10, 11]),
        (0x080C1234, 0x20000, [10]),  # the containing sector, whole
        (0x08004000, 0x4001, [1]),  # 128K units even from a 16K sector
        (0x08004000, 0x20001, [1, 2]),
        (0x08010000, 0x20000, [4]),  # 64K sector: ceil(128K / 128K) = 1
        (0x080C0000, 0, []),
    ],
)
def test_flash_erase_memory_counts_128k_units_from_the_containing_sector_spec_4_1_8_6(
    addr: int, length: int, erased: list[int]
) -> None:
    f = NorFlash()
    assert erase_memory(f, addr, length)
    assert [i for i, n in enumerate(f.erase_counts) if n] == erased


def test_flash_begin_clears_pending_slots_before_erasing_spec_4_1() -> None:
    # spec 4.1 #2: OTA_FLASHED_Status = 0, then every pending slot 1-4 -> 0xFFFF (v2.x), then
    # the erase of ceil(len / 128K) sectors from 0x080C0000.
    dev = Device.new("electron", "extended")
    app = synthetic_user_app(200 * K, platform="electron", seed=3)
    assert dev.ota_begin(len(app)) == 0
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    assert dev.ota_finish() == 1
    assert dev.hw.dct.read_slots()[1].magicNumber == 0xABCD
    start = dev.flash.op_count
    before = len(dev.flash.log)
    assert dev.ota_begin(len(app)) == 0
    ops = list(dev.flash.log)[before:]
    assert dev.hw.dct.read_slots()[1].magicNumber == 0xFFFF
    assert dev.regs.load_flags().OTA_FLASHED_Status_SysFlag == 0
    scratch = [op for op in ops if op.kind == "erase" and op.addr >= 0x080C0000]
    dct = [op for op in ops if op.addr < 0x0800C000]
    assert [op.addr for op in scratch] == [0x080C0000, 0x080E0000]
    assert dct and max(op.first_op for op in dct) < scratch[0].first_op
    assert ops[0].first_op >= start


def test_ota_user_part_end_check_is_inclusive_of_the_exclusive_end_spec_3_3() -> None:
    # spec 3.3 / 3.5 edge: expected.start <= module_end <= expected.end (both inclusive).
    dev = Device.new("electron", "stock")
    over = synthetic_user_app(0x20006, platform="electron", seed=4)  # end 0x080A0002
    out = dev.ota(over)
    assert out.result == "rejected"
    assert out.error is not None and out.error.code == -1300


def _bootloader(version: int) -> bytes:
    return synthetic_module(
        15_664,
        platform_id=10,
        function=ModuleFunction.BOOTLOADER,
        index=0,
        version=version,
        start_address=0x08000000,
        seed=51,
    )


def test_electron_system_replaces_an_older_bootloader_with_its_embedded_one_spec_4_7() -> None:
    # spec 4.7 "Electron only: embedded image": HAL_Core_Setup compares the u16 at
    # 0x08000000 + 0x184 + 10 with the embedded image's version (1004 in v2.3.1, spec 2.4) and,
    # if the embedded one is newer, copies it into sector 0 and resets.
    dev = Device.new("electron", "extended")
    dev.install(_bootloader(1003), reset=False)
    assert dev.bootloader_version() == 1003
    out = dev.boot()
    assert out.boot == "application"
    assert dev.bootloader_version() == 1004
    assert out.sector_erases.get(0) == 1


def test_electron_system_keeps_a_newer_bootloader_spec_4_7() -> None:
    dev = Device.new("electron", "stock")
    dev.install(_bootloader(1006), reset=False)
    out = dev.boot()
    assert dev.bootloader_version() == 1006 and 0 not in out.sector_erases


def _before_the_sector0_rewrite() -> tuple[Device, int]:
    """An extended device whose next boot replaces an installed 1003 bootloader by the
    embedded image (spec 4.7), and that boot's op number of the sector-0 erase."""
    dev = Device.new("electron", "extended")
    dev.install(_bootloader(1003), reset=False)
    snap = dev.snapshot()
    start = dev.flash.op_count
    dev.boot()
    erase = next(
        op
        for op in dev.flash.log
        if op.kind == "erase" and op.addr == 0x08000000 and op.first_op >= start
    )
    dev.restore(snap)
    return dev, erase.first_op - start


def test_power_cut_during_the_embedded_bootloader_replacement_bricks_spec_4_7() -> None:
    # spec 4.7: the copy erases sector 0 in place: not power-loss safe.
    dev, erase_op = _before_the_sector0_rewrite()
    assert dev.boot(cut_at_op=erase_op + 1).result == "interrupted"
    assert dev.boot().boot == "bricked"


def test_photon_has_no_embedded_bootloader_replacement_spec_4_7() -> None:
    dev = Device.new("photon", "stock")
    old = dev.bootloader_version()
    assert old is not None
    dev.install(
        synthetic_module(
            15_348,
            platform_id=6,
            function=ModuleFunction.BOOTLOADER,
            index=0,
            version=old - 1,
            start_address=0x08000000,
            seed=52,
        ),
        reset=False,
    )
    dev.boot()
    assert dev.bootloader_version() == old - 1


def test_electron_boot_does_not_check_the_system_chain_and_reports_a_mismatch_spec_8_9() -> None:
    # system_part2_loader.c:50-56: on Electron bootloader_validated is set and
    # HAL_Core_Validate_Modules is skipped; only the user part is validated (lines 58-72). A
    # broken system chain is not safe mode: the mismatched parts run (undefined behaviour).
    dev = Device.new("electron", "extended")
    _break_the_system_chain(dev)
    out = dev.boot()
    assert out.boot == "system_mismatch"
    assert "system_part2_loader.c:50-56" in dev.reason and "9999" in dev.reason


def _idx3_embedding(bootloader: bytes, version: int, system_version: int) -> bytes:
    """An Electron system module index 3 whose code carries ``bootloader`` (spec 4.7)."""
    return synthetic_module(
        102_400,
        platform_id=10,
        function=ModuleFunction.SYSTEM_PART,
        index=3,
        version=system_version,
        start_address=0x08060000,
        dependency=ModuleDependency(ModuleFunction.SYSTEM_PART, 2, 110),
        seed=53,
        embed=bootloader,
    )


def test_a_system_ota_with_a_newer_embedded_bootloader_rewrites_sector_0_at_next_boot() -> None:
    # spec 4.7 correction: the embedded image is the one compiled into the installed index-3
    # module (bootloader_hal.c), not a per-device constant; and a successful rewrite does not
    # reset (bootloader.cpp:45: updated = FLASH_CopyMemory(...) == 0 means OK).
    dev = Device.new("electron", "extended")
    assert dev.bootloader_version() == 1004
    newer = _bootloader(1006)
    idx3 = _idx3_embedding(newer, 1006, dev.profile.system_version + 1)
    out = dev.ota(idx3)
    assert out.result == "applied" and out.boot == "application"
    assert dev.bootloader_version() == 1006  # rewritten at the boot after the apply
    assert dev.flash.read(0x08000000, len(newer)) == newer
    jumps = [e for e in out.events if "0x08020000 valid: jump" in e]
    resets = [e for e in out.events if e.startswith("bootloader: reset")]
    assert not any("update failed" in e for e in out.events)
    assert len(jumps) == 1 + len(resets)  # no extra reset after the successful rewrite


def test_a_failed_embedded_bootloader_rewrite_resets_and_is_retried_spec_4_7() -> None:
    # core_hal_stm32f2xx.c:414-416: HAL_Core_Setup resets when the copy failed; the next boot
    # tries again. A program error after the erase leaves sector 0 half written: a brick.
    dev, erase_op = _before_the_sector0_rewrite()
    dev.flash.arm_fault(erase_op + 3, kind="fail")  # the third word program
    out = dev.boot()
    assert any("embedded bootloader update failed" in e for e in out.events)
    assert out.boot == "bricked"  # the reset lands in a half-programmed sector 0


def test_a_store_other_than_firmware_erases_at_the_raw_address_and_writes_nothing_spec_6_2() -> (
    None
):
    # system_update.cpp:291-301: the OTA-region address and the defaults are applied only for
    # the FIRMWARE store; Spark_Save_Firmware_Chunk writes only for FIRMWARE (-1 otherwise)
    from flashroom.deviceos import FileTransferStore, UpdateFlag
    from flashroom.deviceos.ota import FileTransferDescriptor

    dev = Device.new("electron", "extended")
    file = FileTransferDescriptor(
        0x20000, 512, chunk_address=0x080E0000, file_address=0x080E0000,
        store=FileTransferStore.SYSTEM,
    )  # fmt: skip
    before10 = dev.flash.erase_counts[10]
    dev.flash.program(0x080E0100, b"\x00" * 4)  # something to see erased
    assert dev.prepare_for_firmware_update(file, 0) == 0
    assert file.file_address == 0x080E0000  # the server's raw address, not 0x080C0000 + it
    assert dev.flash.is_blank(0x080E0000, 0x20000) and dev.flash.erase_counts[10] == before10
    chunk = FileTransferDescriptor(0x20000, 4, 0x080E0000, 0x080E0000, FileTransferStore.SYSTEM)
    assert dev.save_firmware_chunk(chunk, b"\x00\x00\x00\x00") == -1
    assert dev.flash.is_blank(0x080E0000, 4)
    assert dev.finish_firmware_update(file, UpdateFlag.SUCCESS) == -100  # no HAL_FLASH_End


def test_all_four_slots_busy_is_system_error_unknown_spec_4_2() -> None:
    # ota_flash_hal_stm32f2xx.cpp:354-368: result stays SYSTEM_ERROR_UNKNOWN (-100) when
    # FLASH_AddToNextAvailableModulesSlot finds no free slot
    from flashroom.emu.dct import FlashModuleSlot

    dev = Device.new("electron", "extended")
    app = synthetic_user_app(64 * K, platform="electron", seed=8)
    assert dev.ota_begin(len(app)) == 0
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    busy = FlashModuleSlot(0xABCD, 0, 0, 0x080C0000, 0x08080000, len(app), 0x0E, 5)
    for i in range(1, 5):
        dev.hw.dct.write_slot(i, busy)
    assert dev.ota_finish() == -100
    assert "all 4 slots busy" in dev.last_ota_error
