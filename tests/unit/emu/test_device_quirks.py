"""Device OS warts the emulator reproduces on purpose (each cites its spec section)."""

from __future__ import annotations

import pytest

from flashroom.deviceos.gen2 import DCT_OTA_UPDATE_FLAG_OFFSET, EXTENDED_SYSTEM_VERSION
from flashroom.emu.bootloader import Bootloader
from flashroom.emu.device import Device
from flashroom.errors import EmulatorError
from flashroom.particle.build import device_os_install, synthetic_module, synthetic_user_app
from flashroom.particle.module_info import ModuleFunction

K = 1024


def _bootloader(version: int, seed: int = 40) -> bytes:
    return synthetic_module(
        15_664,
        platform_id=10,
        function=ModuleFunction.BOOTLOADER,
        index=0,
        version=version,
        start_address=0x08000000,
        seed=seed,
    )


def test_user_part_ending_exactly_at_0x080a0000_passes_ota_and_erases_the_factory_sector() -> None:
    """spec 3.5 edge case: the range test uses <= on an exclusive end; a 0x20004-byte module
    passes, its CRC sits in sector 9 and the copy (0x20004 bytes) erases the factory image."""
    dev = Device.new("electron", "stock")
    assert Bootloader(dev.hw).factory_reset_available()
    edge = synthetic_user_app(0x20004, seed=41)
    out = dev.ota(edge)
    assert out.result == "applied", out.error
    assert out.sector_erases.get(9) == 1
    assert not Bootloader(dev.hw).factory_reset_available()


def test_bootloader_ota_is_flashed_immediately_and_returns_2() -> None:
    """spec 4.7: HAL_FLASH_End flashes a bootloader at once (HAL_UPDATE_APPLIED = 2)."""
    dev = Device.new("electron", "stock", "legacy")
    new = _bootloader(1006)
    dev.ota_begin(len(new))
    dev.ota_write(0, new)
    assert dev.ota_finish() == 2
    assert dev.bootloader_version() == 1006
    assert Bootloader(dev.hw).variant() == "resumable"
    assert dev.reset().boot == "application"


def test_power_cut_during_a_bootloader_ota_bricks_the_device() -> None:
    """spec 4.7: 'not power-loss safe: sector 0 is erased in place'."""
    dev = Device.new("electron", "stock")
    new = _bootloader(1006)
    snap = dev.snapshot()
    clean = dev.ota(new)
    assert clean.result == "applied"
    recv = len(new) // 4 + 1 + 2  # chunk words + scratch erase; the copy follows
    dev.restore(snap)
    out = dev.ota(new, cut_at_op=recv + 100)
    assert out.result == "interrupted"
    assert dev.boot().boot == "bricked"


def test_dfu_plus_ota_update_flag_applies_a_bootloader_at_system_boot() -> None:
    """spec 4.7 'DFU + flag': module at 0x080C0000, 0xA5 at DCT offset 1753; the system clears
    the flag, applies the module and resets."""
    dev = Device.new("electron", "stock")
    dev.install(_bootloader(1007, seed=42), address=0x080C0000, reset=False)
    dev.hw.dct.write_app(DCT_OTA_UPDATE_FLAG_OFFSET, b"\xa5")
    out = dev.boot()
    assert out.boot == "application"
    assert dev.bootloader_version() == 1007
    assert dev.hw.dct.read_app(DCT_OTA_UPDATE_FLAG_OFFSET, 1) == b"\xff"


def test_stock_device_upgraded_to_extended_firmware_clears_factory_slot_once() -> None:
    """spec 9 change 2: slot 0 (0x0FAC) is cleared once and never re-registered; the system
    that runs is the idx 2 in flash, so writing the extended idx 2 makes the device extended."""
    stock = Device.new("electron", "stock")
    assert stock.hw.dct.read_slots()[0].magicNumber == 0x0FAC
    ext_idx2 = device_os_install("electron", system_version=EXTENDED_SYSTEM_VERSION)[2]
    out = stock.install(ext_idx2)
    assert stock.profile.name == "extended" and out.boot == "application"
    assert stock.hw.dct.read_slots()[0].magicNumber == 0xFFFF
    erases = sum(stock.flash.erase_counts)
    stock.boot()
    assert sum(stock.flash.erase_counts) == erases  # no further DCT write


def test_the_profile_follows_the_idx2_in_flash_both_ways() -> None:
    dev = Device.new("electron", "extended")
    stock_idx2 = device_os_install("electron")[2]
    out = dev.install(stock_idx2)
    assert dev.profile.name == "stock"
    assert any("the stock system runs" in e for e in out.events)
    other = Device.new("electron", "extended")
    bumped = device_os_install("electron", system_version=EXTENDED_SYSTEM_VERSION + 1)[2]
    other.install(bumped)
    assert other.profile.name == "extended"  # an unknown version keeps the profile


def test_dfu_install_outside_internal_flash_is_refused() -> None:
    dev = Device.new()
    with pytest.raises(EmulatorError, match="outside internal flash"):
        dev.install(b"\x00" * 8, address=0x080FFFFC)
    with pytest.raises(EmulatorError, match="0x07fff000"):
        dev.install(b"\x00" * 8, address=0x07FFF000)


def test_invalid_system_module_at_0x08020000_tries_factory_then_dfu() -> None:
    """spec 4.4 #6.3.5: no valid system module -> factory restore attempt, then DFU."""
    dev = Device.new("electron", "extended")
    dev.install(b"\xff" * 16, address=0x08020000, reset=False)
    assert dev.boot().boot == "dfu"


def test_stock_invalid_system_with_valid_factory_image_resets_in_a_loop() -> None:
    """Derived from spec 4.4 #6.3.5 and 5.3 #4: the factory restore succeeds and Finish_Update
    resets, the system is still invalid, so the bootloader restores again: a reset loop that
    erases sector 8 every time. Reported as ``bricked``."""
    dev = Device.new("electron", "stock")
    dev.install(b"\xff" * 16, address=0x08020000, reset=False)
    out = dev.boot()
    assert out.boot == "bricked" and "reset loop" in dev.reason
    assert out.sector_erases[8] >= 2


def test_sizeless_update_begin_on_electron_erases_only_sector_10() -> None:
    """spec 4.1 #1 and 3.5 #16: chunk_size 0 means 512 and file_length = HAL_OTA_FlashLength()
    = 0x20000 on Electron: only sector 10 is erased; a 256K image's upper half lands unerased."""
    dev = Device.new("electron", "stock")
    dev.flash.program(0x080E0000, b"\x00" * 16)  # something in sector 11
    before = list(dev.flash.erase_counts)
    assert dev.ota_begin(0, chunk_size=0) == 0
    diff = [a - b for a, b in zip(dev.flash.erase_counts, before, strict=True)]
    assert diff[10] == 1 and diff[11] == 0
    assert dev.flash.read(0x080E0000, 16) == b"\x00" * 16


def test_sizeless_update_begin_on_extended_covers_256k() -> None:
    """spec 9 change 1: the widened module_ota makes the size-less erase cover 256K."""
    dev = Device.new("electron", "extended")
    before = list(dev.flash.erase_counts)
    dev.ota_begin(0, chunk_size=0)
    diff = [a - b for a, b in zip(dev.flash.erase_counts, before, strict=True)]
    assert diff[10] == 1 and diff[11] == 1
