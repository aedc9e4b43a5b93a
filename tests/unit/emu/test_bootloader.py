"""Fidelity audit: the bootloader's run order and FLASH_UpdateModules variants (spec 4.4, 4.5)."""

from __future__ import annotations

import dataclasses

from flashroom.deviceos.gen2 import MAGIC_PENDING
from flashroom.emu.device import Device
from flashroom.emu.flash import FlashOp
from flashroom.particle.build import synthetic_user_app

K = 1024


def _receive(dev: Device, app: bytes) -> None:
    assert dev.ota_begin(len(app)) == 0
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    assert dev.ota_finish() == 1


def _two_pending(bootloader: str) -> tuple[Device, bytes]:
    """Slot 1 and slot 2 both pending the same user-part copy (slot 2 written by hand)."""
    dev = Device.new("electron", "extended", bootloader)
    app = synthetic_user_app(40 * K, platform="electron", seed=7)
    _receive(dev, app)
    slots = dev.hw.dct.read_slots()
    dev.hw.dct.write_slot(2, slots[1])
    assert [s.magicNumber for s in dev.hw.dct.read_slots()[1:3]] == [MAGIC_PENDING] * 2
    return dev, app


def _first_user_erase(ops: list[FlashOp], first_op: int) -> int:
    """Run-relative index of the op right after the first erase of sector 8 (0x08080000)."""
    for op in ops:
        if op.kind == "erase" and op.addr == 0x08080000:
            return op.first_op - first_op + 1
    raise AssertionError("no erase of sector 8")


def test_legacy_clears_every_pending_slot_before_the_first_copy_spec_4_5_v152() -> None:
    # spec 4.5 "v1.5.2 difference": FLASH_UpdateModules marked the slots unused (flash_mal.c
    # v1.5.2:635-639, a first loop over slots 1-4) and copied afterwards (:651, a second loop).
    # A power cut in the first copy (sector 8 just erased) therefore loses *every* pending
    # slot, not just that one.
    dev, _ = _two_pending("legacy")
    snap = dev.snapshot()
    start = dev.flash.op_count
    dev.boot()
    cut = _first_user_erase(list(dev.flash.log), start)
    dev.restore(snap)
    out = dev.boot(cut_at_op=cut)
    assert out.result == "interrupted"
    assert [s.magicNumber for s in dev.hw.dct.read_slots()[1:5]] == [0xFFFF] * 4
    again = dev.boot()
    assert again.boot == "safe_mode"  # nothing retried: sector 8 was left erased


def test_resumable_keeps_every_pending_slot_until_its_copy_is_done_spec_4_5() -> None:
    dev, app = _two_pending("resumable")
    snap = dev.snapshot()
    start = dev.flash.op_count
    dev.boot()
    cut = _first_user_erase(list(dev.flash.log), start)
    dev.restore(snap)
    assert dev.boot(cut_at_op=cut).result == "interrupted"
    again = dev.boot()
    assert again.boot == "application"
    assert dev.user_part_bytes() == app


def test_ota_flag_0x0005_drops_to_dfu_after_the_dr1_handling_spec_4_4() -> None:
    # spec 4.4: steps 1-5 (flags, DR1 requests, button) run first; the OTA flag is the first
    # *priority* (6.1) and, doing nothing on these platforms, drops into DFU. DR1 == 0xFFFF is
    # therefore still turned into 1 (spec 8.5) before the device ends in DFU.
    dev = Device.new("electron", "stock")
    dev.regs.update_flags(FLASH_OTA_Update_SysFlag=0x0005)
    dev.regs.dr1 = 0xFFFF
    out = dev.boot()
    assert out.boot == "dfu"
    assert dev.regs.dr1 == 1


def test_ota_flag_0x0005_is_cancelled_by_the_safe_mode_button_spec_4_4_5_2() -> None:
    # bootloader main.c: reaching 1 s of MODE clears OTA_FLASH_AVAILABLE (and factory mode)
    # before the priority chain, so the device boots the system in safe mode instead of DFU.
    dev = Device.new("electron", "stock")
    dev.regs.update_flags(FLASH_OTA_Update_SysFlag=0x0005)
    out = dev.boot(button_s=1.5)
    assert out.boot == "safe_mode"


def test_safe_mode_button_cancels_a_pending_software_factory_reset_spec_5_2() -> None:
    # main.c: the 1 s branch sets FACTORY_RESET_MODE = 0; only > 6.5 s sets it again.
    dev = Device.new("electron", "stock")
    dev.regs.update_flags(Factory_Reset_SysFlag=0xAAAA)
    out = dev.boot(button_s=1.5)
    assert out.boot == "safe_mode"


def test_button_past_10_s_without_factory_image_boots_normally_spec_5_2() -> None:
    # main.c: RESET_SETTINGS (> 10 s) saves NVMEM_SPARK_Reset = 1 and clears USB_DFU_MODE and
    # SAFE_MODE; with no factory image available nothing else is pending: normal boot.
    dev = Device.new("electron", "extended")
    out = dev.boot(button_s=11.0)
    assert out.boot == "application"
    assert dev.regs.load_flags().NVMEM_SPARK_Reset_SysFlag == 0x0001


def test_button_between_3_and_6_5_s_enters_dfu_spec_5_2() -> None:
    dev = Device.new("electron", "stock")
    assert dev.boot(button_s=4.0).boot == "dfu"
    assert dev.boot().boot == "application"


def test_button_past_6_5_s_with_factory_image_restores_it_spec_5_2() -> None:
    dev = Device.new("electron", "stock")
    out = dev.boot(button_s=7.0)
    assert out.boot == "factory"
    assert dev.regs.load_flags().NVMEM_SPARK_Reset_SysFlag == 0x0000


def test_slot_with_a_serial_flash_source_is_refused_and_cleared_spec_3_1() -> None:
    # spec 3.1: FLASH_CheckValidAddressRange is false for the serial device on Gen2, so
    # FLASH_CheckCopyMemory returns BADARG: the destination is not touched and (>= 1003) the
    # slot is cleared anyway (spec 4.5 failure table).
    dev = Device.new("electron", "extended")
    app = synthetic_user_app(40 * K, platform="electron", seed=8)
    _receive(dev, app)
    slot = dev.hw.dct.read_slots()[1]
    dev.hw.dct.write_slot(1, dataclasses.replace(slot, sourceDeviceID=1))
    old = dev.user_part_bytes()
    out = dev.boot()
    assert 8 not in out.sector_erases
    assert out.boot == "application" and dev.user_part_bytes() == old
    assert dev.hw.dct.read_slots()[1].magicNumber == 0xFFFF


def test_slot_with_a_serial_flash_destination_is_refused_spec_3_1() -> None:
    dev = Device.new("electron", "extended")
    app = synthetic_user_app(40 * K, platform="electron", seed=9)
    _receive(dev, app)
    slot = dev.hw.dct.read_slots()[1]
    dev.hw.dct.write_slot(1, dataclasses.replace(slot, destinationDeviceID=1))
    out = dev.boot()
    assert 8 not in out.sector_erases and out.boot == "application"


def test_failed_restore_from_the_red_path_clears_the_factory_request_spec_5_3_5() -> None:
    # spec 5.3 #5: FACTORY_Flash_Reset clears only the 0xAAAA flag on failure, whoever calls it;
    # here the red "no valid system" path (spec 4.4 #6.3.5) after the 1 s button cancelled the
    # factory mode. Extended: no factory image, so the restore fails and the device drops to DFU.
    dev = Device.new("electron", "extended")
    dev.install(b"\x00" * 16, address=0x08020000, reset=False)
    dev.regs.update_flags(Factory_Reset_SysFlag=0xAAAA)
    out = dev.boot(button_s=1.5)
    assert out.boot == "dfu"
    assert dev.regs.load_flags().Factory_Reset_SysFlag == 0xFFFF


def test_feature_byte_is_forced_to_0xff_locally_not_in_the_register_spec_4_4_1() -> None:
    # spec 4.4 #1 (bootloader main.c:173-177): ``features`` is a local copy forced to 0xFF, so
    # every button feature works; the FeaturesEnabled byte in DR8 is left as it was.
    dev = Device.new("electron", "stock")
    dev.regs.update_flags(FeaturesEnabled_SysFlag=0x5A)
    assert dev.boot(button_s=4.0).boot == "dfu"  # DFU feature on despite 0x5A
    assert dev.regs.load_flags().FeaturesEnabled_SysFlag == 0x5A
