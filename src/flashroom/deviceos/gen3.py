"""Argon and Boron (Gen3, nRF52840): internal flash before and after 3.1.0 (spec 7.1, 7.2).

Comparison only: shown beside the Gen2 maps, never planned for or emulated. Gen3 receives OTA
into external flash, so these maps have no internal OTA scratch. The C variable names of these
bounds entries are not in the spec (spec-silent: named after their regions).
"""

from __future__ import annotations

from flashroom.deviceos.enums import ModuleFunction, ModuleStore
from flashroom.deviceos.model import MapArea, ModuleBounds, Platform, Profile
from flashroom.geometry import NRF52840

_BL, _SP, _UP = ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART
_RS, _M = ModuleFunction.RADIO_STACK, ModuleStore.MAIN
_SRC = "particle-iot/device-os@v3.1.0:hal/src/nRF52840/ota_module_bounds.c"

SOFTDEVICE = ModuleBounds("module_radio_stack", 0x30000, 0x00000, 0x30000, _RS, 0, _M)
BOOTLOADER = ModuleBounds("module_bootloader", 0xC000, 0xF4000, 0x100000, _BL, 0, _M)
SYSTEM_PART1_V30 = ModuleBounds("module_system_part1", 0xA4000, 0x30000, 0xD4000, _SP, 1, _M)
USER_V30 = ModuleBounds("module_user", 0x20000, 0xD4000, 0xF4000, _UP, 1, _M)
# spec 7.1: >= 3.1 system part 1 shrinks to 0xB4000; its maximum_size is left at 0xA4000
SYSTEM_PART1_V31 = ModuleBounds("module_system_part1", 0xA4000, 0x30000, 0xB4000, _SP, 1, _M)
# spec 7.2: the 256K (index 2) user part and the 128K compat (index 1) slot overlap by design;
# each module is range-checked against its own slot.
USER_V31 = ModuleBounds("module_user", 0x40000, 0xB4000, 0xF4000, _UP, 2, _M)
USER_COMPAT_V31 = ModuleBounds("module_user_compat", 0x20000, 0xD4000, 0xF4000, _UP, 1, _M)

_NOTES = (
    "Comparison only. Gen3 receives OTA into external flash (factory/OTA at 128K-256K / "
    "1500K, spec 7.1), so no internal OTA scratch is shown.",
)


def _profiles(platform: str, platform_id: int, title: str) -> tuple[Profile, Profile]:
    softdevice = MapArea(
        "softdevice",
        SOFTDEVICE,
        note="MBR + SoftDevice (radio stack, function 8)",
        source=f"{_SRC}:9-91",
    )
    bootloader = MapArea("bootloader", BOOTLOADER, note="bootloader, 48K", source=f"{_SRC}:9-91")
    stock = Profile(
        platform=platform,
        platform_id=platform_id,
        name="stock",
        bounds=(SOFTDEVICE, SYSTEM_PART1_V30, USER_V30, BOOTLOADER),
        module_ota=None,
        module_factory=None,
        areas=(
            softdevice,
            MapArea(
                "system_part_1",
                SYSTEM_PART1_V30,
                note="system part 1 (<= v3.0)",
                source=f"{_SRC}:9-91",
            ),
            MapArea(
                "user_part",
                USER_V30,
                note="user application, 128K, module index 1 (<= v3.0)",
                source=f"{_SRC}:9-91",
            ),
            bootloader,
        ),
        description=f"{title}: Device OS <= 3.0 internal flash (spec 7.1): 128K user part.",
        notes=_NOTES,
    )
    v31 = Profile(
        platform=platform,
        platform_id=platform_id,
        name="v3.1",
        bounds=(SOFTDEVICE, SYSTEM_PART1_V31, USER_V31, USER_COMPAT_V31, BOOTLOADER),
        module_ota=None,
        module_factory=None,
        areas=(
            softdevice,
            MapArea(
                "system_part_1",
                SYSTEM_PART1_V31,
                note="system part 1 (>= v3.1; maximum_size left at 0xA4000)",
                source=f"{_SRC}:9-91",
            ),
            MapArea(
                "user_part",
                USER_V31,
                shares_with=("user_part_compat",),
                note="user application, 256K, module index 2; its upper half is the compat slot "
                "(spec 7.2)",
                source=f"{_SRC}:53-77,166-167",
            ),
            MapArea(
                "user_part_compat",
                USER_COMPAT_V31,
                shares_with=("user_part",),
                note="compat 128K user slot (module index 1), tried first at boot (spec 7.2)",
                source=f"{_SRC}:53-77,166-167",
            ),
            bootloader,
        ),
        description=f"{title}: Device OS >= 3.1 internal flash (spec 7.1): 256K user part.",
        notes=_NOTES,
    )
    return stock, v31


def _platform(name: str, platform_id: int, title: str) -> Platform:
    return Platform(
        name=name,
        platform_id=platform_id,
        title=title,
        chip=NRF52840,
        generation=3,
        profiles=_profiles(name, platform_id, title),
        ota_internal=False,
        comparison_only=True,
    )


ARGON = _platform("argon", 12, "Argon (Gen3, comparison only)")
BORON = _platform("boron", 13, "Boron (Gen3, comparison only)")
