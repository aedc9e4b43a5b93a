"""Platform flash maps as data: Photon, P1, Electron (stock and extended), Argon/Boron.

Every address here is transcribed from the spec tables (spec 1.2, 1.3, 1.5, 7.1, 9); the source
column of each region names the Device OS file. Layouts are built once at import (they are small
frozen tuples) and looked up with :func:`get_layout`.
"""

from __future__ import annotations

from flashroom.errors import LayoutError
from flashroom.geometry import NRF52840, STM32F205XG
from flashroom.layout.model import Layout, PlatformInfo, Region

K = 1024

# module_function_t values (spec 2.3).
_BOOTLOADER = 2
_SYSTEM_PART = 4
_USER_PART = 5
_RADIO_STACK = 8
_NONE = 0

PLATFORMS: dict[str, PlatformInfo] = {
    "photon": PlatformInfo("photon", 6, "Photon", STM32F205XG, 2, ("stock",)),
    "p1": PlatformInfo("p1", 8, "P1", STM32F205XG, 2, ("stock",)),
    "electron": PlatformInfo(
        "electron", 10, "Electron / E Series", STM32F205XG, 2, ("stock", "extended")
    ),
    "argon": PlatformInfo(
        "argon", 12, "Argon (Gen3, comparison only)", NRF52840, 3, ("stock", "v3.1"),
        ota_internal=False, comparison_only=True,
    ),
    "boron": PlatformInfo(
        "boron", 13, "Boron (Gen3, comparison only)", NRF52840, 3, ("stock", "v3.1"),
        ota_internal=False, comparison_only=True,
    ),
}  # fmt: skip

#: Every layout name any platform knows (CLI choices).
LAYOUT_NAMES: tuple[str, ...] = ("stock", "extended", "v3.1")

#: Regions the layout engine may never move or resize on Gen2 (issue 2 section 4; spec 9:
#: "System modules, DCT and EEPROM are unchanged"). Gen3 protects its MBR/SoftDevice and bootloader.
PROTECTED_REGIONS: tuple[str, ...] = (
    "bootloader",
    "dct1",
    "dct2",
    "eeprom1",
    "eeprom2",
    "softdevice",
)

_STM_COMMON_SRC = "particle-iot/device-os@v2.3.1"


def _gen2_fixed() -> list[Region]:
    """Bootloader, DCT1/2 and the two EEPROM emulation pages: identical on 6, 8 and 10."""
    return [
        Region(
            "bootloader",
            0x08000000,
            0x08004000,
            _BOOTLOADER,
            0,
            "main",
            note="bootloader, sector 0 (write-protected; spec 1.2/1.3)",
            source=f"{_STM_COMMON_SRC}:build/arm/linker/linker_stm32f2xx_bootloader.ld:24",
        ),
        Region(
            "dct1",
            0x08004000,
            0x08008000,
            note="device configuration table, copy 1 (spec 8.1/8.2)",
            source=f"{_STM_COMMON_SRC}:build/arm/linker/linker_stm32f2xx_bootloader.ld:25",
        ),
        Region(
            "dct2",
            0x08008000,
            0x0800C000,
            note="device configuration table, copy 2 (spec 8.1/8.2)",
            source=f"{_STM_COMMON_SRC}:build/arm/linker/linker_stm32f2xx_bootloader.ld:26",
        ),
        Region(
            "eeprom1",
            0x0800C000,
            0x08010000,
            note="EEPROM emulation page 1 (spec 8.8)",
            source=f"{_STM_COMMON_SRC}:platform/MCU/STM32F2xx/SPARK_Firmware_Driver/inc/"
            "eeprom_emulation_impl.h:25-31",
        ),
        Region(
            "eeprom2",
            0x08010000,
            0x08020000,
            note="EEPROM emulation page 2 (spec 8.8)",
            source=f"{_STM_COMMON_SRC}:platform/MCU/STM32F2xx/SPARK_Firmware_Driver/inc/"
            "eeprom_emulation_impl.h:26,29",
        ),
    ]


def _photon_like(platform: str) -> Layout:
    """Photon (6) and P1 (8): spec 1.2 and the module_bounds_t table of spec 1.5."""
    info = PLATFORMS[platform]
    bounds = f"{_STM_COMMON_SRC}:hal/src/photon/ota_module_bounds.c"
    regions = [
        *_gen2_fixed(),
        Region(
            "system_part_1",
            0x08020000,
            0x08060000,
            _SYSTEM_PART,
            1,
            "main",
            note="system module index 1, 256K",
            source=f"{bounds}:7",
        ),
        Region(
            "system_part_2",
            0x08060000,
            0x080A0000,
            _SYSTEM_PART,
            2,
            "main",
            note="system module index 2, 256K",
            source=f"{bounds}:8",
        ),
        Region(
            "user_part",
            0x080A0000,
            0x080C0000,
            _USER_PART,
            1,
            "main",
            note="user application (module index 1), 128K",
            source=f"{bounds}:9",
        ),
        # spec 1.2 / 4.6: module_ota is 0x40000 long because system parts are up to 256K, so it
        # covers the factory sector 11. This is the documented stock behaviour: a 256K system OTA
        # erases the factory image. We represent it as a declared, explained sharing.
        Region(
            "ota_scratch",
            0x080C0000,
            0x08100000,
            _NONE,
            0,
            "scratchpad",
            shares_with=("factory",),
            note="OTA scratch, 256K; its upper half is the factory sector 11: a 256K system OTA "
            "erases the factory image (documented stock behaviour, spec 1.2, 4.6)",
            source=f"{bounds}:11",
        ),
        Region(
            "factory",
            0x080E0000,
            0x08100000,
            _USER_PART,
            1,
            "factory",
            shares_with=("ota_scratch",),
            note="factory-reset image (a user part linked for 0x080a0000), inside the OTA "
            "scratch (spec 1.2, 5.1"
            + ("; P1 never registers factory slot 0, spec 5.1)" if platform == "p1" else ")"),
            source=f"{bounds}:10",
        ),
    ]
    return Layout(
        platform=platform,
        platform_id=info.platform_id,
        name="stock",
        chip=info.chip,
        regions=tuple(sorted(regions, key=lambda r: (r.start, r.end))),
        description=f"{info.title} stock Device OS 2.3.1 map (spec 1.2, 1.5): 128K user part, "
        "256K OTA scratch that overlaps the factory sector.",
        notes=(
            "The OTA scratch (0x080c0000-0x08100000) and the factory image (0x080e0000-0x08100000)"
            " share sector 11 by design: a 256K system OTA destroys the factory image and there "
            "is no repair step (spec 4.6).",
        ),
    )


def _electron_fixed() -> list[Region]:
    bounds = f"{_STM_COMMON_SRC}:hal/src/electron/ota_module_bounds.c"
    # spec 1.4: the directory names do not match the module index; regions are named by INDEX.
    return [
        *_gen2_fixed(),
        Region(
            "system_part_1",
            0x08020000,
            0x08040000,
            _SYSTEM_PART,
            1,
            "main",
            note="system module index 1 (build dir system-part2; spec 1.4)",
            source=f"{bounds}:7",
        ),
        Region(
            "system_part_2",
            0x08040000,
            0x08060000,
            _SYSTEM_PART,
            2,
            "main",
            note="system module index 2 (build dir system-part3; spec 1.4)",
            source=f"{bounds}:8",
        ),
        Region(
            "system_part_3",
            0x08060000,
            0x08080000,
            _SYSTEM_PART,
            3,
            "main",
            note="system module index 3 (build dir system-part1; spec 1.4)",
            source=f"{bounds}:9",
        ),
    ]


def _electron_stock() -> Layout:
    bounds = f"{_STM_COMMON_SRC}:hal/src/electron/ota_module_bounds.c"
    info = PLATFORMS["electron"]
    regions = [
        *_electron_fixed(),
        Region(
            "user_part",
            0x08080000,
            0x080A0000,
            _USER_PART,
            1,
            "main",
            note="user application (module index 1), 128K",
            source=f"{bounds}:10",
        ),
        Region(
            "factory",
            0x080A0000,
            0x080C0000,
            _USER_PART,
            1,
            "factory",
            note="factory-reset image (a user part linked for 0x08080000; spec 5.1)",
            source=f"{bounds}:11",
        ),
        Region(
            "ota_scratch",
            0x080C0000,
            0x080E0000,
            _NONE,
            0,
            "scratchpad",
            note="OTA scratch, 128K (module_ota; spec 1.5, 4.1)",
            source=f"{bounds}:12",
        ),
        Region(
            "free",
            0x080E0000,
            0x08100000,
            note="sector 11: no module_bounds_t or flash_mal constant refers to it (spec 1.3)",
            source="derived, spec 1.3",
        ),
    ]
    return Layout(
        platform="electron",
        platform_id=info.platform_id,
        name="stock",
        chip=info.chip,
        regions=tuple(regions),
        description="Electron / E Series stock Device OS 2.3.1 map (spec 1.3, 1.5): 128K user "
        "part, 128K factory image, 128K OTA scratch, sector 11 unused.",
    )


def _electron_extended() -> Layout:
    info = PLATFORMS["electron"]
    regions = [
        *_electron_fixed(),
        Region(
            "user_part",
            0x08080000,
            0x080C0000,
            _USER_PART,
            1,
            "main",
            note="user application (module index 1), 256K; start and dynalib table 0x08080018 "
            "unchanged (spec 9)",
            source="spec 9 (ota_module_bounds.c:10 widened to end 0x080C0000)",
        ),
        Region(
            "ota_scratch",
            0x080C0000,
            0x08100000,
            _NONE,
            0,
            "scratchpad",
            note="OTA scratch, 256K: sectors 10-11 (spec 9)",
            source="spec 9 (ota_module_bounds.c:12 widened to end 0x08100000)",
        ),
    ]
    return Layout(
        platform="electron",
        platform_id=info.platform_id,
        name="extended",
        chip=info.chip,
        regions=tuple(regions),
        description="Electron / E Series extended map (spec 9): 256K user part at the stock "
        "start address, 256K OTA scratch in sectors 10-11, factory image retired.",
        notes=(
            "Needs the spec 9 system changes (widened module_bounds, factory slot retired) and "
            "bootloader >= 1003; stock system firmware rejects a >128K OTA with -1300 "
            "(spec 3.5 #20).",
        ),
    )


def _gen3(platform: str, name: str) -> Layout:
    """Argon/Boron internal flash before and after 3.1.0 (spec 7.1). External flash not shown."""
    info = PLATFORMS[platform]
    bounds = "particle-iot/device-os@v3.1.0:hal/src/nRF52840/ota_module_bounds.c"
    softdevice = Region(
        "softdevice",
        0x00000,
        0x30000,
        _RADIO_STACK,
        0,
        "main",
        note="MBR + SoftDevice (radio stack, function 8)",
        source=f"{bounds}:9-91",
    )
    bootloader = Region(
        "bootloader",
        0xF4000,
        0x100000,
        _BOOTLOADER,
        0,
        "main",
        note="bootloader, 48K",
        source=f"{bounds}:9-91",
    )
    if name == "stock":
        regions = [
            softdevice,
            Region(
                "system_part_1",
                0x30000,
                0xD4000,
                _SYSTEM_PART,
                1,
                "main",
                note="system part 1 (<= v3.0)",
                source=f"{bounds}:9-91",
            ),
            Region(
                "user_part",
                0xD4000,
                0xF4000,
                _USER_PART,
                1,
                "main",
                note="user application, 128K, module index 1 (<= v3.0)",
                source=f"{bounds}:9-91",
            ),
            bootloader,
        ]
        desc = f"{info.title}: Device OS <= 3.0 internal flash (spec 7.1): 128K user part."
    else:
        regions = [
            softdevice,
            Region(
                "system_part_1",
                0x30000,
                0xB4000,
                _SYSTEM_PART,
                1,
                "main",
                note="system part 1 (>= v3.1; maximum_size left at 0xA4000)",
                source=f"{bounds}:9-91",
            ),
            # spec 7.2: the 256K (index 2) user part and the 128K compat (index 1) slot overlap
            # by design; each module is range-checked against its own slot.
            Region(
                "user_part",
                0xB4000,
                0xF4000,
                _USER_PART,
                2,
                "main",
                shares_with=("user_part_compat",),
                note="user application, 256K, module index 2; its upper half is the compat slot "
                "(spec 7.2)",
                source=f"{bounds}:53-77,166-167",
            ),
            Region(
                "user_part_compat",
                0xD4000,
                0xF4000,
                _USER_PART,
                1,
                "main",
                shares_with=("user_part",),
                note="compat 128K user slot (module index 1), tried first at boot (spec 7.2)",
                source=f"{bounds}:53-77,166-167",
            ),
            bootloader,
        ]
        desc = f"{info.title}: Device OS >= 3.1 internal flash (spec 7.1): 256K user part."
    return Layout(
        platform=platform,
        platform_id=info.platform_id,
        name=name,
        chip=info.chip,
        regions=tuple(regions),
        description=desc,
        notes=(
            "Comparison only. Gen3 receives OTA into external flash (factory/OTA at 128K-256K / "
            "1500K, spec 7.1), so no internal OTA scratch is shown.",
        ),
    )


def _build_all() -> dict[tuple[str, str], Layout]:
    out: dict[tuple[str, str], Layout] = {
        ("photon", "stock"): _photon_like("photon"),
        ("p1", "stock"): _photon_like("p1"),
        ("electron", "stock"): _electron_stock(),
        ("electron", "extended"): _electron_extended(),
    }
    for p in ("argon", "boron"):
        for n in ("stock", "v3.1"):
            out[(p, n)] = _gen3(p, n)
    return out


_LAYOUTS = _build_all()

#: Why a platform has no such layout (shown by ``get_layout``).
_REFUSALS: dict[tuple[str, str], str] = {
    ("photon", "extended"): "a Photon cannot have a 256K user part and keep system OTA: the user "
    "slot (0x080a0000-0x080c0000) is followed directly by the 256K OTA scratch that system parts "
    "of up to 256K need (0x080c0000-0x08100000), and sector 11 is both the factory area and the "
    "OTA scratch (spec 4.6, 5.4 #5)",
}
_REFUSALS[("p1", "extended")] = _REFUSALS[("photon", "extended")].replace("a Photon", "a P1")


def get_platform(platform: str) -> PlatformInfo:
    """Look a platform up by key (``photon``, ``p1``, ``electron``, ``argon``, ``boron``).

    Raises:
        LayoutError: unknown platform.
    """
    try:
        return PLATFORMS[platform.lower()]
    except KeyError:
        raise LayoutError(
            f"unknown platform {platform!r}: expected one of {', '.join(PLATFORMS)}"
        ) from None


def get_layout(platform: str, name: str = "stock") -> Layout:
    """A named layout of a platform.

    Args:
        platform: platform key.
        name: ``stock`` or ``extended`` (Electron only) for Gen2; ``stock`` (<= 3.0) or ``v3.1``
            for Argon/Boron.

    Raises:
        LayoutError: unknown platform, or the platform has no such layout (with the reason).
    """
    info = get_platform(platform)
    key = (info.name, name)
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    why = _REFUSALS.get(key)
    if why:
        raise LayoutError(f"{info.name} has no {name!r} layout: {why}")
    raise LayoutError(
        f"{info.name} has no {name!r} layout: expected one of {', '.join(info.layouts)}"
    )


def all_layouts() -> list[Layout]:
    """Every known layout, in registry order (tests parametrise over it)."""
    return list(_LAYOUTS.values())
