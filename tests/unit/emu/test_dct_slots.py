"""Fidelity audit: the DCT flash-modules slots as Device OS writes them (spec 4.2, 4.3, 5.1)."""

from __future__ import annotations

import dataclasses

from flashroom.deviceos.gen2 import MAGIC_FACTORY, MAGIC_PENDING
from flashroom.emu.dct import FlashModuleSlot
from flashroom.emu.device import Device
from flashroom.particle.build import synthetic_user_app


def test_factory_slot_registration_keeps_the_reserved_field_spec_5_1() -> None:
    # spec 5.1: HAL_Core_Config -> FLASH_AddToFactoryResetModuleSlot sets source, destination,
    # length, function, flags and magic; flash_mal.c copies the current slot first, so the
    # reserved u16 keeps what the DCT held (0xFFFF in a blank DCT), it is not zeroed.
    dev = Device.new("electron", "stock")
    slot0 = dev.hw.dct.read_slots()[0]
    assert slot0.magicNumber == MAGIC_FACTORY
    assert (slot0.sourceAddress, slot0.destinationAddress) == (0x080A0000, 0x08080000)
    assert (slot0.length, slot0.flags, slot0.module_function) == (0x20000, 0x0E, 5)
    assert slot0.reserved == 0xFFFF


def test_factory_slot_that_differs_only_in_reserved_is_not_rewritten_spec_5_1() -> None:
    # spec 5.1: "The DCT is only written if slot 0 differs" (memcmp after filling in the
    # fields it sets; reserved is carried over, so it never makes a difference).
    dev = Device.new("electron", "stock")
    slot0 = dev.hw.dct.read_slots()[0]
    dev.hw.dct.write_slot(0, dataclasses.replace(slot0, reserved=0x1234))
    out = dev.boot()
    assert out.boot == "application"
    assert not any(int(k) in (1, 2) for k in out.to_json()["sector_erases"])
    assert dev.hw.dct.read_slots()[0].reserved == 0x1234


def test_pending_slot_keeps_the_reserved_field_spec_4_2() -> None:
    # spec 4.2: FLASH_AddToNextAvailableModulesSlot reads all 5 slots and fills in source,
    # destination, length, magic, function and flags of the chosen one; reserved is kept.
    dev = Device.new("electron", "stock")
    app = synthetic_user_app(40 * 1024, platform="electron", seed=5)
    dev.hw.dct.write_slot(1, FlashModuleSlot(0xFFFF, 0, 0, 0, 0, 0, 0, 0, reserved=0xBEEF))
    assert dev.ota_begin(len(app)) == 0
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    assert dev.ota_finish() == 1
    s1 = dev.hw.dct.read_slots()[1]
    assert s1.magicNumber == MAGIC_PENDING
    assert (s1.sourceAddress, s1.destinationAddress, s1.length) == (
        0x080C0000,
        0x08080000,
        len(app),
    )
    assert s1.reserved == 0xBEEF
