"""Electron / E Series (platform 10): stock Device OS 2.3.1 and the extended 256K layout.

Stock tables: spec 1.3, 1.5 (hal/src/electron/ota_module_bounds.c:4-12,22-28). Extended: spec 9
changes 1, 2, 4 and 5 (widened user and OTA bounds, factory slot retired, ``max_binary``
published, a distinct system version the 256K user part depends on).
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
from flashroom.deviceos.stream import ELECTRON_EXTENDED_STREAM
from flashroom.geometry import STM32F205XG

_BL, _SP, _UP = ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART
_M, _F = ModuleStore.MAIN, ModuleStore.FACTORY
_BOUNDS_SRC = f"{gen2.SRC}:hal/src/electron/ota_module_bounds.c"

# spec 1.5: electron/ota_module_bounds.c:4-12
MODULE_SYSTEM_PART1 = ModuleBounds(
    "module_system_part1", 0x20000, 0x08020000, 0x08040000, _SP, 1, _M
)
MODULE_SYSTEM_PART2 = ModuleBounds(
    "module_system_part2", 0x20000, 0x08040000, 0x08060000, _SP, 2, _M
)
MODULE_SYSTEM_PART3 = ModuleBounds(
    "module_system_part3", 0x20000, 0x08060000, 0x08080000, _SP, 3, _M
)
MODULE_USER = ModuleBounds("module_user", 0x20000, 0x08080000, 0x080A0000, _UP, 1, _M)
MODULE_FACTORY = ModuleBounds("module_factory", 0x20000, 0x080A0000, 0x080C0000, _UP, 1, _F)
MODULE_OTA = gen2.ota_bounds(0x20000, 0x080E0000)
# spec 9 change 1: ota_module_bounds.c:10,12 widened
EXTENDED_MODULE_USER = ModuleBounds("module_user", 0x40000, 0x08080000, 0x080C0000, _UP, 1, _M)
EXTENDED_MODULE_OTA = gen2.ota_bounds(0x40000, 0x08100000)

USER_LOC = 0x08080000  # USER_FIRMWARE_IMAGE_LOCATION (modules/electron/modular.mk:8-9)
FAC_ADDR = 0x080A0000  # spec 1.3: INTERNAL_FLASH_FAC_ADDRESS = user + 128K on Electron
#: The bootloader image embedded in Electron v2.3.1 system firmware (spec 2.4, 4.7).
EMBEDDED_BOOTLOADER_VERSION = 1004


def _system_areas() -> tuple[MapArea, ...]:
    # spec 1.4: the directory names do not match the module index; regions are named by INDEX.
    return (
        *gen2.fixed_areas(),
        MapArea(
            "system_part_1",
            MODULE_SYSTEM_PART1,
            note="system module index 1 (build dir system-part2; "
            "docs/device-os.md#electron-naming)",
            source=f"{_BOUNDS_SRC}:7",
        ),
        MapArea(
            "system_part_2",
            MODULE_SYSTEM_PART2,
            note="system module index 2 (build dir system-part3; "
            "docs/device-os.md#electron-naming)",
            source=f"{_BOUNDS_SRC}:8",
        ),
        MapArea(
            "system_part_3",
            MODULE_SYSTEM_PART3,
            note="system module index 3 (build dir system-part1; "
            "docs/device-os.md#electron-naming)",
            source=f"{_BOUNDS_SRC}:9",
        ),
    )


_SYSTEM_BOUNDS = (
    gen2.MODULE_BOOTLOADER,
    MODULE_SYSTEM_PART1,
    MODULE_SYSTEM_PART2,
    MODULE_SYSTEM_PART3,
)

STOCK = Profile(
    platform="electron",
    platform_id=PlatformId.ELECTRON,
    name="stock",
    bounds=(*_SYSTEM_BOUNDS, MODULE_USER, MODULE_FACTORY),
    module_ota=MODULE_OTA,
    module_factory=MODULE_FACTORY,
    areas=(
        *_system_areas(),
        MapArea(
            "user_part",
            MODULE_USER,
            note="user application (module index 1), 128K",
            source=f"{_BOUNDS_SRC}:10",
        ),
        MapArea(
            "factory",
            MODULE_FACTORY,
            note="factory-reset image (a user part linked for 0x08080000; "
            "docs/device-os.md#factory-reset)",
            source=f"{_BOUNDS_SRC}:11",
        ),
        MapArea(
            "ota_scratch",
            MODULE_OTA,
            note="OTA scratch, 128K (module_ota; docs/device-os.md#maps, #ota-receive)",
            source=f"{_BOUNDS_SRC}:12",
        ),
        MapArea(
            "free",
            start=0x080E0000,
            end=0x08100000,
            note="sector 11: no module_bounds_t or flash_mal constant refers to it "
            "(docs/device-os.md#maps)",
            source="derived, docs/device-os.md#maps",
        ),
    ),
    description="Electron / E Series stock Device OS 2.3.1 map (docs/device-os.md#maps): 128K user "
    "part, 128K factory image, 128K OTA scratch, sector 11 unused.",
    user_loc=USER_LOC,
    fac_addr=FAC_ADDR,
    registers_factory_slot=True,
    clears_factory_slot=False,
    factory_fallback=True,
    validates_bootloader=False,  # spec 3.2 #2: skipped on Electron
    dct_app_offset=gen2.ELECTRON_DCT_APP_OFFSET,
    system_version=gen2.SYSTEM_VERSION_2_3_1,
    user_dependency=Dependency(_SP, 2, gen2.SYSTEM_VERSION_2_3_1),
    publishes_max_binary=False,  # spec 3.5 #15: suppressed on Electron in a modular build
)

EXTENDED = Profile(
    platform="electron",
    platform_id=PlatformId.ELECTRON,
    name="extended",
    bounds=(*_SYSTEM_BOUNDS, EXTENDED_MODULE_USER),  # spec 9 change 2: no module_factory
    module_ota=EXTENDED_MODULE_OTA,
    module_factory=None,
    areas=(
        *_system_areas(),
        MapArea(
            "user_part",
            EXTENDED_MODULE_USER,
            note="user application (module index 1), 256K; start and dynalib table 0x08080018 "
            "unchanged (docs/device-os.md#extended)",
            source=f"{_BOUNDS_SRC}:10, widened to end 0x080C0000 (docs/device-os.md#extended)",
        ),
        MapArea(
            "ota_scratch",
            EXTENDED_MODULE_OTA,
            note="OTA scratch, 256K: sectors 10-11 (docs/device-os.md#extended)",
            source=f"{_BOUNDS_SRC}:12, widened to end 0x08100000 (docs/device-os.md#extended)",
        ),
    ),
    description="Electron / E Series extended map (docs/device-os.md#extended): 256K user part at "
    "the stock start address, 256K OTA scratch in sectors 10-11, factory image retired.",
    notes=(
        "Needs the system changes of docs/device-os.md#extended (widened module_bounds, factory "
        "slot retired) and "
        "bootloader >= 1003; stock system firmware rejects a >128K OTA with -1300 "
        "(docs/device-os.md#extended).",
    ),
    user_loc=USER_LOC,
    # spec 9 "Bootloader: no change is strictly required": its compiled-in default
    # (0x080A0000 -> 0x08080000) remains and fails harmlessly (spec 5.4 #1).
    fac_addr=FAC_ADDR,
    registers_factory_slot=False,
    clears_factory_slot=True,
    factory_fallback=False,
    validates_bootloader=False,
    dct_app_offset=gen2.ELECTRON_DCT_APP_OFFSET,
    system_version=gen2.EXTENDED_SYSTEM_VERSION,
    # spec 9 change 5: stock firmware (2302) puts such an app in safe mode instead of running it
    user_dependency=Dependency(_SP, 2, gen2.EXTENDED_SYSTEM_VERSION),
    publishes_max_binary=True,  # spec 9 change 4
    # modelled, not in the real firmware yet: decode delta/compressed OTA into the scratch
    ota_stream=ELECTRON_EXTENDED_STREAM,
    # devos patch's flashroom_in_ota_region (system_update.cpp, the real patched build has it)
    ota_address_guard=True,
)

# The install of a fresh device (spec 2.4). Sizes are spec-silent: the real binaries are in the
# fixtures (system parts 115,632 / 129,212 / 98,016 bytes), the synthetic ones are chosen to be
# realistic and to fit their regions with room; the bootloader is 15,664 bytes like the real
# embedded image (end 0x08003d2c, spec 2.4).
INSTALL = (
    InstallPart(_BL, 0, EMBEDDED_BOOTLOADER_VERSION, 0x08000000, 15_664),
    InstallPart(_SP, 1, 2302, 0x08020000, 118_784, Dependency(_SP, 3, gen2.SYSTEM_VERSION_2_3_1)),
    InstallPart(
        _SP,
        2,
        2302,
        0x08040000,
        126_976,
        Dependency(_SP, 1, gen2.SYSTEM_VERSION_2_3_1),
        Dependency(_BL, 0, gen2.RESUMABLE_FROM_VERSION),
    ),
    # idx 3 (dir system-part1) embeds the bootloader image HAL_Core_Setup applies (spec 4.7)
    InstallPart(_SP, 3, 2302, 0x08060000, 102_400, Dependency(_SP, 2, 110), embeds_bootloader=True),
)

# ------------------------------------------------------------------ for the real-firmware runner
#: The SETUP/MODE button: BUTTON1_GPIO_PORT / BUTTON1_GPIO_PIN
#: (platform/MCU/STM32F2xx/SPARK_Firmware_Driver/inc/platform_config.h:87-88); pressed reads low.
BUTTON1_GPIO_PORT = "C"
BUTTON1_GPIO_PIN = 7
#: The top of the user part's static RAM + heap, below system idx 3's static RAM (spec 1.7:
#: 0x2001BC00-0x2001CC00): unused while only system functions run (no application), so the
#: function-level runner keeps its arguments there.
USER_RAM_SCRATCH = (0x2001A000, 0x2001BC00)

PLATFORM = Platform(
    name="electron",
    platform_id=PlatformId.ELECTRON,
    title="Electron / E Series",
    chip=STM32F205XG,
    generation=2,
    profiles=(STOCK, EXTENDED),
    inactivity_timeout_s=300.0,  # TIMING_FLASH_UPDATE_TIMEOUT on cellular (spec 6.5)
    dfu_product_id=0xD00A,
    install=INSTALL,
    embedded_bootloader_version=EMBEDDED_BOOTLOADER_VERSION,
)
