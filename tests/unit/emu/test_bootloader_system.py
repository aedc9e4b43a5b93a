"""Bootloader copy checks and slots (spec 3.1, 4.5), system OTA path details (spec 4.1-4.2),
profile bounds (spec 1.5, 9)."""

from __future__ import annotations

import pytest

from flashroom.deviceos.gen2 import FLAGS_CRC_DEST_FUNCTION
from flashroom.emu.device import Device
from flashroom.emu.flashmal import (
    check_copy_memory,
    check_valid_address_range,
    copy_memory,
    erase_memory,
)
from flashroom.particle.build import synthetic_module, synthetic_user_app
from flashroom.particle.module_info import ModuleDependency, ModuleFunction

K = 1024
OTA = 0x080C0000
USER = 0x08080000


def _scratch_device(module: bytes) -> Device:
    dev = Device.new("electron", "extended")
    dev.install(module, address=OTA, reset=False)
    return dev


def test_address_range_check_is_off_by_one_as_in_device_os() -> None:
    assert check_valid_address_range(0x080C0000, 0x40000)
    assert check_valid_address_range(0x080C0000, 0x40001)  # <= 0x08100000 (spec 3.1)
    assert not check_valid_address_range(0x080C0000, 0x40002)
    assert not check_valid_address_range(0x07FFFFFF, 4)


def test_check_copy_memory_accepts_a_good_user_part() -> None:
    app = synthetic_user_app(100 * K, seed=1)
    dev = _scratch_device(app)
    assert check_copy_memory(dev.flash, OTA, USER, len(app), 5, FLAGS_CRC_DEST_FUNCTION, 10) is None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"dst": 0x08060000}, "not the destination"),
        ({"func": 4}, "module_function 5, expected 4"),
        ({"length_delta": -8}, "module_length + 4"),
        ({"platform": 6}, "platform_id 10"),
        ({"corrupt": True}, "CRC-32"),
    ],
)
def test_check_copy_memory_refuses(kwargs: dict[str, int], needle: str) -> None:
    app = synthetic_user_app(100 * K, seed=2)
    if kwargs.get("corrupt"):
        app = app[:1000] + b"\x00" + app[1001:]
    dev = _scratch_device(app)
    reason = check_copy_memory(
        dev.flash,
        OTA,
        kwargs.get("dst", USER),
        len(app) + kwargs.get("length_delta", 0),
        kwargs.get("func", 5),
        FLAGS_CRC_DEST_FUNCTION,
        kwargs.get("platform", 10),
    )
    assert reason is not None and needle in reason


def test_copy_memory_refused_leaves_destination_untouched() -> None:
    app = synthetic_user_app(100 * K, seed=3)
    dev = _scratch_device(app[:-4] + b"\0\0\0\0")
    before = dev.flash.read(USER, 128 * K)
    res = copy_memory(dev.flash, OTA, USER, len(app), 5, FLAGS_CRC_DEST_FUNCTION, 10)
    assert not res.ok
    assert dev.flash.read(USER, 128 * K) == before


def test_copy_memory_erases_whole_destination_sectors_and_does_not_read_back() -> None:
    app = synthetic_user_app(130 * K, seed=4)
    dev = _scratch_device(app)
    dev.flash.program(0x080BFF00, b"\x00" * 16)  # junk at the end of sector 9
    erases = list(dev.flash.erase_counts)
    res = copy_memory(dev.flash, OTA, USER, len(app), 5, FLAGS_CRC_DEST_FUNCTION, 10)
    assert res.ok
    assert dev.flash.erase_counts[8] == erases[8] + 1
    assert dev.flash.erase_counts[9] == erases[9] + 1
    assert dev.flash.read(USER, len(app)) == app
    assert dev.flash.is_blank(0x080BFF00, 16)  # whole sector erased


def test_erase_memory_counts_128k_units_from_the_containing_sector() -> None:
    dev = Device.new()
    f = dev.flash
    before = list(f.erase_counts)
    assert erase_memory(f, 0x080C0000, 128 * K + 1)
    assert [a - b for a, b in zip(f.erase_counts, before, strict=True)][10:] == [1, 1]
    before = list(f.erase_counts)
    assert erase_memory(f, 0x0800C000, 100)  # 16K sector 3, one 128K unit -> only sector 3
    assert [i for i, (a, b) in enumerate(zip(f.erase_counts, before, strict=True)) if a != b] == [3]
    assert not erase_memory(f, 0x080E0000, 256 * K)  # range check fails: nothing erased


def test_flash_begin_clears_pending_slots() -> None:
    dev = Device.new()
    app = synthetic_user_app(60 * K, seed=5)
    dev.ota_begin(len(app))
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    assert dev.ota_finish() == 1
    assert dev.hw.dct.read_slots()[1].magicNumber == 0xABCD
    assert dev.ota_begin(len(app)) == 0  # a new transfer clears it (spec 4.1 #2.2)
    assert all(s.magicNumber != 0xABCD for s in dev.hw.dct.read_slots()[1:])


def test_ota_finish_writes_slot_with_crc_dest_function_flags() -> None:
    dev = Device.new()
    app = synthetic_user_app(60 * K, seed=6)
    dev.ota_begin(len(app))
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    assert dev.ota_finish() == 1
    s = dev.hw.dct.read_slots()[1]
    assert (s.sourceAddress, s.destinationAddress, s.length) == (OTA, USER, len(app))
    assert s.flags == 0x0E and s.module_function == 5


def test_system_part_downgrade_fails_the_full_reverse_dependency_check() -> None:
    """spec 3.1 #4: idx 2 depends on idx 1 >= 2302; an idx 1 of version 2300 is refused -1340."""
    dev = Device.new()
    old = synthetic_module(
        100 * K,
        platform_id=10,
        function=ModuleFunction.SYSTEM_PART,
        index=1,
        version=2300,
        start_address=0x08020000,
        dependency=ModuleDependency(ModuleFunction.SYSTEM_PART, 3, 2302),
        seed=7,
    )
    out = dev.ota(old)
    assert out.result == "rejected"
    assert out.error is not None and out.error.code == -1340
    assert "depends on system part 1 >= 2302" in out.error.message


def test_user_part_dependencies_are_ignored_at_ota_time_but_enforced_at_boot() -> None:
    """spec 3.3 (userDepsOptional) vs 3.2 #3.4: accepted by HAL_FLASH_End, safe mode at boot."""
    dev = Device.new()
    needy = synthetic_module(
        40 * K,
        platform_id=10,
        function=ModuleFunction.USER_PART,
        index=1,
        version=6,
        start_address=USER,
        dependency=ModuleDependency(ModuleFunction.SYSTEM_PART, 2, 4000),
        seed=8,
    )
    out = dev.ota(needy)
    # issue 12 #3: the new app is in the user part, the device boots safe mode: not "rejected"
    assert out.result == "installed_not_running" and out.boot == "safe_mode"
    assert out.error is not None and out.error.code is None
    assert "version >= 4000" in out.error.message and "installed at 0x08080000" in out.error.message


def test_factory_slot_is_registered_on_stock_but_not_on_p1_and_cleared_on_extended() -> None:
    assert Device.new("electron", "stock").hw.dct.read_slots()[0].magicNumber == 0x0FAC
    assert Device.new("photon", "stock").hw.dct.read_slots()[0].magicNumber == 0x0FAC
    assert Device.new("p1", "stock").hw.dct.read_slots()[0].magicNumber == 0xFFFF
    assert Device.new("electron", "extended").hw.dct.read_slots()[0].magicNumber == 0xFFFF


def test_photon_interrupted_system_copy_is_not_retried_without_dct_access() -> None:
    """spec 4.5 'Resumability on Photon/P1': the bootloader's DCT needs parts 1 and 2 intact."""
    dev = Device.new("photon", "stock")
    part2 = synthetic_module(
        200 * K,
        platform_id=6,
        function=ModuleFunction.SYSTEM_PART,
        index=2,
        version=2302,
        start_address=0x08060000,
        dependency=ModuleDependency(ModuleFunction.SYSTEM_PART, 1, 2302),
        dependency2=ModuleDependency(ModuleFunction.BOOTLOADER, 0, 1003),
        seed=9,
    )
    snap = dev.snapshot()
    clean = dev.ota(part2)
    assert clean.result == "applied"
    total = clean.flash_ops
    dev.restore(snap)
    out = dev.ota(part2, cut_at_op=total - 30_000)  # inside the copy into sectors 7-8
    assert out.result == "interrupted"
    after = dev.boot()
    assert after.boot == "bricked"  # the jump lands in a half-copied system
    assert any(s.magicNumber == 0xABCD for s in dev.hw.dct.read_slots()[1:])
