"""Photon (platform 6): stock Device OS 2.3.1 (spec 1.2, 1.5; hal/src/photon/ota_module_bounds.c).

The P1 (:mod:`~flashroom.deviceos.p1`) uses the same module layout (spec 1.2) and builds its
profile from the tables here.
"""

from __future__ import annotations

from flashroom.deviceos import gen2
from flashroom.deviceos.enums import ModuleFunction, ModuleStore, PlatformId
from flashroom.deviceos.model import (
    Dependency,
    InstallPart,
    MapArea,
    ModuleBounds,
    Platform,
    Profile,
)
from flashroom.geometry import STM32F205XG

_BL, _SP, _UP = ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART
_M, _F = ModuleStore.MAIN, ModuleStore.FACTORY
_BOUNDS_SRC = f"{gen2.SRC}:hal/src/photon/ota_module_bounds.c"

# spec 1.5: photon/ota_module_bounds.c:4-11
MODULE_SYSTEM_PART1 = ModuleBounds(
    "module_system_part1", 0x40000, 0x08020000, 0x08060000, _SP, 1, _M
)
MODULE_SYSTEM_PART2 = ModuleBounds(
    "module_system_part2", 0x40000, 0x08060000, 0x080A0000, _SP, 2, _M
)
MODULE_USER = ModuleBounds("module_user", 0x20000, 0x080A0000, 0x080C0000, _UP, 1, _M)
MODULE_FACTORY = ModuleBounds("module_factory", 0x20000, 0x080E0000, 0x08100000, _UP, 1, _F)
MODULE_OTA = gen2.ota_bounds(0x40000, 0x08100000)

USER_LOC = 0x080A0000  # USER_FIRMWARE_IMAGE_LOCATION (modules/photon/modular.mk:8-9)
FAC_ADDR = 0x080E0000  # spec 1.2: INTERNAL_FLASH_FAC_ADDRESS = user + 256K on Photon/P1

#: Why a Photon or P1 has no extended profile (spec 4.6, 5.4 #5).
EXTENDED_REFUSAL = (
    "a {title} cannot have a 256K user part and keep system OTA: the user slot "
    "(0x080a0000-0x080c0000) is followed directly by the 256K OTA scratch that system parts of up "
    "to 256K need (0x080c0000-0x08100000), and sector 11 is both the factory area and the OTA "
    "scratch (spec 4.6; spec 5.4 #5)"
)

# The install of a fresh device (spec 2.4): the Photon/P1 embedded 400 bootloader images are
# never used (spec 4.7), so the installed bootloader is a source-built 1006 one, which satisfies
# part2's BOOTLOADER >= 1003 dependency as on a real 2.3.1 device. Sizes are spec-silent.
INSTALL = (
    InstallPart(_BL, 0, gen2.SOURCE_BOOTLOADER_VERSION, 0x08000000, 15_664),
    InstallPart(_SP, 1, 2302, 0x08020000, 241_664, Dependency(_SP, 2, 207)),
    InstallPart(
        _SP,
        2,
        2302,
        0x08060000,
        233_472,
        Dependency(_SP, 1, gen2.SYSTEM_VERSION_2_3_1),
        Dependency(_BL, 0, gen2.RESUMABLE_FROM_VERSION),
    ),
)


def stock_profile(platform: str, platform_id: int, title: str, *, registers_factory_slot: bool,
                  factory_note_extra: str = "") -> Profile:  # fmt: skip
    """The stock 2.3.1 profile of a Photon-layout platform (Photon, P1)."""
    return Profile(
        platform=platform,
        platform_id=platform_id,
        name="stock",
        bounds=(
            gen2.MODULE_BOOTLOADER,
            MODULE_SYSTEM_PART1,
            MODULE_SYSTEM_PART2,
            MODULE_USER,
            MODULE_FACTORY,
        ),
        module_ota=MODULE_OTA,
        module_factory=MODULE_FACTORY,
        areas=(
            *gen2.fixed_areas(),
            MapArea(
                "system_part_1",
                MODULE_SYSTEM_PART1,
                note="system module index 1, 256K",
                source=f"{_BOUNDS_SRC}:7",
            ),
            MapArea(
                "system_part_2",
                MODULE_SYSTEM_PART2,
                note="system module index 2, 256K",
                source=f"{_BOUNDS_SRC}:8",
            ),
            MapArea(
                "user_part",
                MODULE_USER,
                note="user application (module index 1), 128K",
                source=f"{_BOUNDS_SRC}:9",
            ),
            # spec 1.2 / 4.6: module_ota is 0x40000 long because system parts are up to 256K,
            # so it covers the factory sector 11. This is the documented stock behaviour: a 256K
            # system OTA erases the factory image. We represent it as a declared, explained
            # sharing.
            MapArea(
                "ota_scratch",
                MODULE_OTA,
                shares_with=("factory",),
                note="OTA scratch, 256K; its upper half is the factory sector 11: a 256K system "
                "OTA erases the factory image (documented stock behaviour, spec 1.2, 4.6)",
                source=f"{_BOUNDS_SRC}:11",
            ),
            MapArea(
                "factory",
                MODULE_FACTORY,
                shares_with=("ota_scratch",),
                note="factory-reset image (a user part linked for 0x080a0000), inside the OTA "
                "scratch (spec 1.2, 5.1" + factory_note_extra + ")",
                source=f"{_BOUNDS_SRC}:10",
            ),
        ),
        description=f"{title} stock Device OS 2.3.1 map (spec 1.2, 1.5): 128K user part, "
        "256K OTA scratch that overlaps the factory sector.",
        notes=(
            "The OTA scratch (0x080c0000-0x08100000) and the factory image (0x080e0000-0x08100000)"
            " share sector 11 by design: a 256K system OTA destroys the factory image and there "
            "is no repair step (spec 4.6).",
        ),
        user_loc=USER_LOC,
        fac_addr=FAC_ADDR,
        registers_factory_slot=registers_factory_slot,
        clears_factory_slot=False,
        factory_fallback=True,
        validates_bootloader=True,  # spec 3.2 #2
        # spec 4.3 / 8.2: the app DCT follows the 7548-byte WICED system part
        dct_app_offset=gen2.WICED_DCT_APP_OFFSET,
        system_version=gen2.SYSTEM_VERSION_2_3_1,
        user_dependency=Dependency(_SP, 2, gen2.SYSTEM_VERSION_2_3_1),
        publishes_max_binary=True,  # spec 4.6: max_binary = 262144
    )


PLATFORM = Platform(
    name="photon",
    platform_id=PlatformId.PHOTON,
    title="Photon",
    chip=STM32F205XG,
    generation=2,
    profiles=(stock_profile("photon", PlatformId.PHOTON, "Photon", registers_factory_slot=True),),
    refusals={"extended": EXTENDED_REFUSAL.format(title="Photon")},
    inactivity_timeout_s=30.0,  # TIMING_FLASH_UPDATE_TIMEOUT off cellular (spec 6.5)
    dfu_product_id=0xD006,
    install=INSTALL,
)
