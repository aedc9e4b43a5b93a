# ruff: noqa: E501  (hunks quote Device OS lines verbatim; wrapping them would change the text)
"""flashroom's changes to Device OS 2.3.1, as data: every hunk's stock text and its replacement.

Two parts:

* ``layout``: the extended Electron layout of spec 9 and 10 (a 256 KB user part in sectors 8-9,
  a 256 KB OTA scratch in sectors 10-11, factory reset retired) and the OTA address guard of
  spec 11.2;
* ``toolchain``: what Device OS 2.3.1 needs to build with Debian's gcc-arm-none-eabi 12 and
  with ``make -j`` (spec 10). Build rules only: with the toolchain part alone the tree builds
  the stock binaries byte for byte (``../shared/fixtures/device-os``).

Each :class:`Edit` replaces one block of stock text (``old``, which occurs exactly once in the
pristine 2.3.1 file) with flashroom's text (``new``), and every ``new`` carries a comment naming
the spec section it implements. The text written is flashroom's own code. ``line`` is where
``old`` starts in the pristine file (checked by the tests), for messages.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The two parts, in the order they are listed and applied.
PARTS = ("layout", "toolchain")


@dataclass(frozen=True)
class Edit:
    """One hunk: in ``path``, the stock block ``old`` (at line ``line``) becomes ``new``."""

    path: str
    line: int
    old: str
    new: str


@dataclass(frozen=True)
class Change:
    """One named change: a few hunks that implement one spec item together.

    Attributes:
        name: kebab-case name used by ``--only``/``--skip``.
        part: ``layout`` or ``toolchain``.
        spec: the spec sections it implements.
        summary: one line for tables and ``--help``.
        edits: the hunks, in file order.
        requires: changes that must be applied with (or before) this one, because the tree would
            not build or the device would misbehave without them.
    """

    name: str
    part: str
    spec: str
    summary: str
    edits: tuple[Edit, ...]
    requires: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        """The files this change writes, without duplicates, in hunk order."""
        return tuple(dict.fromkeys(e.path for e in self.edits))


_MODULAR_MK = "modules/electron/modular.mk"
_USER_LD = "modules/electron/user-part/linker.ld"
_BOUNDS = "hal/src/electron/ota_module_bounds.c"
_FLASH_MAL_H = "platform/MCU/STM32F2xx/SPARK_Firmware_Driver/inc/flash_mal.h"
_OTA_HAL = "hal/src/stm32f2xx/ota_flash_hal_stm32f2xx.cpp"
_CORE_HAL = "hal/src/stm32f2xx/core_hal_stm32f2xx.c"
_CLOUD = "system/src/system_cloud_internal.cpp"
_UPDATE = "system/src/system_update.cpp"
_VERSION_MK = "modules/shared/system_module_version.mk"
_ARM_TOOLS = "build/arm-tools.mk"
_MODULE_MK = "build/module.mk"
_MODULES_MAKEFILE = "modules/makefile"

#: The distinct module version of the patched system modules (spec 9 change 5).
PATCHED_SYSTEM_VERSION = 2350
#: The stock v2.3.1 system module version (spec 2.4).
STOCK_SYSTEM_VERSION = 2302

USER_256K = Change(
    name="user-256k",
    part="layout",
    spec="spec 10 edits 1-2; spec 9 build tools 1-2; spec 3.5 #1-3",
    summary="user part 256K: image size 0x40000, APP_FLASH 256K",
    requires=("flash-addresses",),
    edits=(
        Edit(
            _MODULAR_MK,
            8,
            "USER_FIRMWARE_IMAGE_SIZE=0x20000\n",
            "# flashroom: spec 10 edit 1, spec 3.5 #2-3: a 256K user part, 0x08080000-0x080C0000\n"
            "# (sectors 8-9). user.ld:139 asserts it equals LENGTH(APP_FLASH); flash_mal.h no\n"
            "# longer derives the OTA and factory addresses from it (spec 9 change 3). The\n"
            "# bootloader includes this file too and keeps 0x20000, so it builds byte for byte as\n"
            "# stock 1006 (spec 9: no bootloader change is needed; its one use of the size, the\n"
            "# factory-restore default, fails on a 256K app either way, spec 5.4).\n"
            "ifeq ($(BOOTLOADER_MODULE),1)\n"
            "USER_FIRMWARE_IMAGE_SIZE=0x20000\n"
            "else\n"
            "USER_FIRMWARE_IMAGE_SIZE=0x40000\n"
            "endif\n",
        ),
        Edit(
            _USER_LD,
            5,
            "    APP_FLASH (rx) : ORIGIN = 0x08080000, LENGTH = 128K\n",
            "    /* flashroom: spec 10 edit 2, spec 3.5 #1: the user part is 256K, 0x08080000-0x080C0000 */\n"
            "    APP_FLASH (rx) : ORIGIN = 0x08080000, LENGTH = 256K\n",
        ),
    ),
)

FLASH_ADDRESSES = Change(
    name="flash-addresses",
    part="layout",
    spec="spec 10 edit 4; spec 9 change 3; spec 3.5 #5",
    summary="flash_mal.h: explicit OTA (0x080C0000) and FAC addresses",
    edits=(
        Edit(
            _FLASH_MAL_H,
            80,
            "    #if (PLATFORM_ID==10)\n"
            "        #define INTERNAL_FLASH_OTA_ADDRESS (USER_FIRMWARE_IMAGE_LOCATION+FIRMWARE_IMAGE_SIZE+FIRMWARE_IMAGE_SIZE)\n"
            "        #define INTERNAL_FLASH_FAC_ADDRESS (USER_FIRMWARE_IMAGE_LOCATION+FIRMWARE_IMAGE_SIZE)\n",
            "    #if (PLATFORM_ID==10)\n"
            "        /* flashroom: spec 10 edit 4, spec 9 change 3, spec 3.5 #5: explicit addresses. Derived\n"
            "           from a 256K image size they would put the OTA scratch at 0x08100000 (past the end\n"
            "           of flash) and the factory image on the OTA scratch. The OTA scratch is\n"
            "           0x080C0000-0x08100000 (sectors 10-11). The factory slot is retired (spec 9\n"
            "           change 2): FAC keeps its stock address, which now holds the upper half of a 256K\n"
            "           user part and never passes the copy's module checks (spec 5.4). */\n"
            "        #define INTERNAL_FLASH_OTA_ADDRESS (0x80C0000)\n"
            "        #define INTERNAL_FLASH_FAC_ADDRESS (0x80A0000)\n",
        ),
    ),
)

MODULE_BOUNDS = Change(
    name="module-bounds",
    part="layout",
    spec="spec 9 change 1; spec 10 edit 3; spec 3.5 #16, #20",
    summary="module_user and module_ota bounds: 256K each",
    edits=(
        Edit(
            _BOUNDS,
            10,
            "const module_bounds_t module_user = { 0x20000, 0x8080000, 0x80A0000, MODULE_FUNCTION_USER_PART, 1, MODULE_STORE_MAIN };\n",
            "/* flashroom: spec 9 change 1, spec 10 edit 3, spec 3.5 #20: the user part is 256K,\n"
            "   0x08080000-0x080C0000 (sectors 8-9) */\n"
            "const module_bounds_t module_user = { 0x40000, 0x8080000, 0x80C0000, MODULE_FUNCTION_USER_PART, 1, MODULE_STORE_MAIN };\n",
        ),
        Edit(
            _BOUNDS,
            12,
            "const module_bounds_t module_ota = { 0x20000, 0x80C0000, 0x80E0000, MODULE_FUNCTION_NONE, 0, MODULE_STORE_SCRATCHPAD };\n",
            "/* flashroom: spec 9 change 1, spec 10 edit 3, spec 3.5 #16: the OTA scratch is 256K,\n"
            "   0x080C0000-0x08100000 (sectors 10-11); HAL_OTA_FlashLength() is 262144 */\n"
            "const module_bounds_t module_ota = { 0x40000, 0x80C0000, 0x8100000, MODULE_FUNCTION_NONE, 0, MODULE_STORE_SCRATCHPAD };\n",
        ),
    ),
)

OTA_RANGE_CHECK = Change(
    name="ota-range-check",
    part="layout",
    spec="spec 10 edit 5",
    summary="OTA range check: an image may end at 0x08100000",
    edits=(
        Edit(
            _OTA_HAL,
            221,
            "    if (startAddress == INTERNAL_FLASH_OTA_ADDRESS && endAddress < 0x8100000)\n",
            "    /* flashroom: spec 10 edit 5: the end is exclusive, so a 256K image in the OTA scratch\n"
            "       ends exactly at 0x08100000; stock compared strictly */\n"
            "    if (startAddress == INTERNAL_FLASH_OTA_ADDRESS && endAddress <= 0x8100000)\n",
        ),
    ),
)

FACTORY_RETIRED = Change(
    name="factory-retired",
    part="layout",
    spec="spec 9 change 2; spec 5.4; spec 3.5 #13-14",
    summary="factory slot retired (cleared once, no fallback)",
    edits=(
        Edit(
            _BOUNDS,
            23,
            "const module_bounds_t* module_bounds[] = { &module_bootloader, &module_system_part1, &module_system_part2, &module_system_part3, &module_user, &module_factory };\n",
            "/* flashroom: spec 9 change 2, spec 3.5 #13: the factory slot is retired: module_factory\n"
            "   (0x080A0000, now the upper half of a 256K user part) is not listed, so describe and\n"
            "   find_module_bounds never read it. It stays defined for bootloader/src/stm32f2xx/module.c. */\n"
            "const module_bounds_t* module_bounds[] = { &module_bootloader, &module_system_part1, &module_system_part2, &module_system_part3, &module_user };\n",
        ),
        Edit(
            _CORE_HAL,
            389,
            "#ifdef HAS_SERIAL_FLASH\n"
            "    //Initialize Serial Flash\n"
            "    sFLASH_Init();\n"
            "#else\n"
            "    FLASH_AddToFactoryResetModuleSlot(",
            "#ifdef HAS_SERIAL_FLASH\n"
            "    //Initialize Serial Flash\n"
            "    sFLASH_Init();\n"
            "#elif PLATFORM_ID == 10 && defined(MODULAR_FIRMWARE) && MODULAR_FIRMWARE\n"
            "    /* flashroom: spec 9 change 2, spec 3.5 #14, spec 5.4: the factory slot is retired on\n"
            "       Electron: 0x080A0000 holds the upper half of a 256K user part, so DCT slot 0 is no\n"
            "       longer registered. A slot left by stock firmware is cleared once (magic 0xFFFF);\n"
            "       the DCT is written only while the slot is still in use. */\n"
            "    {\n"
            "        platform_flash_modules_t slot;\n"
            "        if (dct_read_app_data_copy(DCT_FLASH_MODULES_OFFSET + FAC_RESET_SLOT * sizeof(slot),\n"
            "                                   &slot, sizeof(slot)) == 0 && slot.magicNumber != 0xFFFF) {\n"
            "            FLASH_ClearFactoryResetModuleSlot();\n"
            "        }\n"
            "    }\n"
            "#else\n"
            "    FLASH_AddToFactoryResetModuleSlot(",
        ),
        Edit(
            _CORE_HAL,
            457,
            "        else if(FLASH_isUserModuleInfoValid(FLASH_INTERNAL, INTERNAL_FLASH_FAC_ADDRESS, USER_FIRMWARE_IMAGE_LOCATION))\n"
            "        {\n"
            "            //Reset and let bootloader perform the user module factory reset\n"
            "            //Doing this instead of calling FLASH_RestoreFromFactoryResetModuleSlot()\n"
            "            //saves precious system_part2 flash size i.e. fits in < 128KB\n"
            "            HAL_Core_Factory_Reset();\n"
            "\n"
            "            while(1);//Device should reset before reaching this line\n"
            "        }\n",
            '        /* flashroom: spec 9 change 2, spec 5.4 #2: no "user part invalid -> factory reset"\n'
            "           fallback on Electron: 0x080A0000 is no factory image any more; an invalid user\n"
            "           part leaves the device in safe mode. */\n"
            "#if PLATFORM_ID != 10\n"
            "        else if(FLASH_isUserModuleInfoValid(FLASH_INTERNAL, INTERNAL_FLASH_FAC_ADDRESS, USER_FIRMWARE_IMAGE_LOCATION))\n"
            "        {\n"
            "            //Reset and let bootloader perform the user module factory reset\n"
            "            //Doing this instead of calling FLASH_RestoreFromFactoryResetModuleSlot()\n"
            "            //saves precious system_part2 flash size i.e. fits in < 128KB\n"
            "            HAL_Core_Factory_Reset();\n"
            "\n"
            "            while(1);//Device should reset before reaching this line\n"
            "        }\n"
            "#endif\n",
        ),
    ),
)

MAX_BINARY = Change(
    name="max-binary",
    part="layout",
    spec="spec 9 change 4; spec 3.5 #15",
    summary="publish spark/hardware/max_binary (262144)",
    edits=(
        Edit(
            _CLOUD,
            1155,
            "#if PLATFORM_ID!=PLATFORM_ELECTRON_PRODUCTION || !defined(MODULAR_FIRMWARE)\n"
            "        ultoa(HAL_OTA_FlashLength(), buf, 10);\n"
            '        LOG(INFO,"Send spark/hardware/max_binary event");\n'
            '        publishEvent("spark/hardware/max_binary", buf);\n'
            "#endif\n",
            "        /* flashroom: spec 9 change 4, spec 3.5 #15: published on Electron too (stock left\n"
            "           modular Electron out): HAL_OTA_FlashLength() is module_ota.maximum_size, 262144.\n"
            "           Whether the Particle cloud accepts a 256K Electron binary is not known. */\n"
            "        ultoa(HAL_OTA_FlashLength(), buf, 10);\n"
            '        LOG(INFO,"Send spark/hardware/max_binary event");\n'
            '        publishEvent("spark/hardware/max_binary", buf);\n',
        ),
    ),
)

SYSTEM_VERSION = Change(
    name="system-version",
    part="layout",
    spec="spec 9 change 5; spec 2.4",
    summary=f"system version {PATCHED_SYSTEM_VERSION}; apps need idx 2 >= {PATCHED_SYSTEM_VERSION}",
    edits=(
        Edit(
            _VERSION_MK,
            3,
            f"COMMON_MODULE_VERSION ?= {STOCK_SYSTEM_VERSION}\n",
            "# flashroom: spec 9 change 5: a distinct version for the patched system modules (all\n"
            "# three, idx 1-3). A user part depends on SYSTEM_PART idx 2 >= SYSTEM_PART2_MODULE_VERSION\n"
            f"# (stm32f2xx/user_build.mk:50), so stock {STOCK_SYSTEM_VERSION} system firmware puts a 256K app into\n"
            "# safe mode instead of running it with 128K OTA limits.\n"
            f"COMMON_MODULE_VERSION ?= {PATCHED_SYSTEM_VERSION}\n",
        ),
    ),
)

OTA_GUARD = Change(
    name="ota-guard",
    part="layout",
    spec="spec 11.2; spec 6.2; spec 3.5 #17-18",
    summary="OTA refuses addresses outside 0x080C0000-0x08100000",
    edits=(
        Edit(
            _UPDATE,
            291,
            "int Spark_Prepare_For_Firmware_Update(FileTransfer::Descriptor& file, uint32_t flags, void* reserved)\n"
            "{\n"
            "    if (file.store==FileTransfer::Store::FIRMWARE)\n"
            "    {\n"
            "        // address is relative to the OTA region. Normally will be 0.\n"
            "        file.file_address = HAL_OTA_FlashAddress() + file.chunk_address;\n"
            "\n"
            "        // chunk_size 0 indicates defaults.\n"
            "        if (file.chunk_size==0) {\n"
            "            file.chunk_size = HAL_OTA_ChunkSize();\n"
            "            file.file_length = HAL_OTA_FlashLength();\n"
            "        }\n"
            "    }\n",
            "/* flashroom: spec 11.2, spec 3.5 #17-18: is [address, address + length) inside the OTA\n"
            "   scratch [HAL_OTA_FlashAddress(), + HAL_OTA_FlashLength())? u32 arithmetic: an address\n"
            "   below the scratch wraps to a huge offset and is refused. */\n"
            "static bool flashroom_in_ota_region(uint32_t address, uint32_t length)\n"
            "{\n"
            "    const uint32_t offset = address - HAL_OTA_FlashAddress();\n"
            "    const uint32_t size = HAL_OTA_FlashLength();\n"
            "    return offset < size && length <= size - offset;\n"
            "}\n"
            "\n"
            "int Spark_Prepare_For_Firmware_Update(FileTransfer::Descriptor& file, uint32_t flags, void* reserved)\n"
            "{\n"
            "    if (file.store==FileTransfer::Store::FIRMWARE)\n"
            "    {\n"
            "        // address is relative to the OTA region. Normally will be 0.\n"
            "        file.file_address = HAL_OTA_FlashAddress() + file.chunk_address;\n"
            "\n"
            "        // chunk_size 0 indicates defaults.\n"
            "        if (file.chunk_size==0) {\n"
            "            file.chunk_size = HAL_OTA_ChunkSize();\n"
            "            file.file_length = HAL_OTA_FlashLength();\n"
            "        }\n"
            "    }\n"
            "    /* flashroom: spec 11.2: refuse, before anything is erased, a file that does not lie in\n"
            "       the OTA scratch. Stock erases whatever 0x080C0000 + chunk_address lands on:\n"
            "       chunk_address 0xFFF40000 wraps to 0x08000000 and erases the bootloader. The check\n"
            "       call (flags 1) fails too, so the server gets an error for its UpdateBegin. */\n"
            "    if (!flashroom_in_ota_region(file.file_address, file.file_length)) {\n"
            "        return SYSTEM_ERROR_OTA_INVALID_ADDRESS;\n"
            "    }\n",
        ),
        Edit(
            _UPDATE,
            438,
            "    if (file.store==FileTransfer::Store::FIRMWARE)\n"
            "    {\n"
            "        result = HAL_FLASH_Update(chunk, file.chunk_address, file.chunk_size, NULL);\n",
            "    /* flashroom: spec 3.5 #18, spec 6.3: FLASH_Update has no bounds check and the chunk\n"
            "       address comes from the server's chunk index: never program outside the OTA scratch. */\n"
            "    if (file.store==FileTransfer::Store::FIRMWARE\n"
            "            && !flashroom_in_ota_region(file.chunk_address, file.chunk_size))\n"
            "    {\n"
            "        result = SYSTEM_ERROR_OTA_INVALID_ADDRESS;\n"
            "    }\n"
            "    else if (file.store==FileTransfer::Store::FIRMWARE)\n"
            "    {\n"
            "        result = HAL_FLASH_Update(chunk, file.chunk_address, file.chunk_size, NULL);\n",
        ),
    ),
)

GCC12_FLAGS = Change(
    name="gcc12-flags",
    part="toolchain",
    spec="spec 10 (compiler flags gcc 12 needs)",
    summary="gcc 12 flags (-fcommon, stddef.h, gthread stubs...)",
    edits=(
        Edit(
            _ARM_TOOLS,
            18,
            "CFLAGS +=  -g3 -gdwarf-2 -Os -mcpu=cortex-m3 -mthumb\n",
            "CFLAGS +=  -g3 -gdwarf-2 -Os -mcpu=cortex-m3 -mthumb\n"
            "# flashroom: spec 10: Debian's gcc-arm-none-eabi 12 (the tree targets gcc 10):\n"
            "# -fcommon: tentative definitions in several files (sys_health_cache...) link again;\n"
            "# -fno-tree-loop-distribute-patterns: the bootloader's own memset must not become a\n"
            "#   call to memset (infinite recursion); -Wno-error=array-parameter: mbedtls ssl_tls.c.\n"
            "CFLAGS += -fcommon -fno-tree-loop-distribute-patterns -Wno-error=array-parameter\n"
            "# flashroom: spec 10: protocol_defs.h uses size_t without stddef.h; gcc >= 11's\n"
            "# bits/std_mutex.h needs the gthread condition API that concurrent_hal.h switches on and\n"
            "# Device OS never uses (a real use would fail at link time).\n"
            "CPPFLAGS += -include stddef.h '-D__GTHREAD_COND_INIT_FUNCTION(c)=((void)(c))' "
            "'-D__gthread_cond_destroy(c)=0' '-D__gthread_cond_wait(c,m)=0' "
            "'-D__gthread_cond_signal(c)=0' '-D__gthread_cond_broadcast(c)=0'\n",
        ),
    ),
)

PARALLEL_MAKE = Change(
    name="parallel-make",
    part="toolchain",
    spec="spec 10 (make -j)",
    summary="make -jN: libraries before links, modules in turn",
    edits=(
        Edit(
            _MODULE_MK,
            94,
            "all: prebuild $(MAKE_DEPENDENCIES) $(TARGET) postbuild\n",
            "all: prebuild $(MAKE_DEPENDENCIES) $(TARGET) postbuild\n"
            "\n"
            "# flashroom: spec 10: with make -j the .elf link could start before the library\n"
            "# sub-makes had written the libraries it links\n"
            "$(LIB_DEPS): | $(MAKE_DEPENDENCIES)\n",
        ),
        Edit(
            _MODULES_MAKEFILE,
            90,
            ".PHONY: system stflash program-dfu clean make_deps $(makefiles) update-zero\n",
            "# flashroom: spec 10: sibling modules rebuild the same libraries into the same folders,\n"
            "# so they are made one at a time (each one still builds with -j)\n"
            ".NOTPARALLEL:\n"
            "\n"
            ".PHONY: system stflash program-dfu clean make_deps $(makefiles) update-zero\n",
        ),
    ),
)

#: Every change, in application order (the order of ``--check`` tables).
CHANGES: tuple[Change, ...] = (
    USER_256K,
    FLASH_ADDRESSES,
    MODULE_BOUNDS,
    OTA_RANGE_CHECK,
    FACTORY_RETIRED,
    MAX_BINARY,
    SYSTEM_VERSION,
    OTA_GUARD,
    GCC12_FLAGS,
    PARALLEL_MAKE,
)
CHANGE_NAMES: tuple[str, ...] = tuple(c.name for c in CHANGES)
BY_NAME: dict[str, Change] = {c.name: c for c in CHANGES}


def changes_of_part(part: str) -> tuple[Change, ...]:
    """The changes of ``layout`` or ``toolchain``."""
    return tuple(c for c in CHANGES if c.part == part)


def _check_registry() -> None:
    # Import-time consistency (never assert): names unique, requirements known, new texts
    # distinct from old ones and marked as flashroom's.
    if len(BY_NAME) != len(CHANGES):
        raise RuntimeError("duplicate change names")
    for c in CHANGES:
        if c.part not in PARTS:
            raise RuntimeError(f"change {c.name}: unknown part {c.part}")
        for r in c.requires:
            if r not in BY_NAME:
                raise RuntimeError(f"change {c.name} requires unknown change {r}")
        for e in c.edits:
            if e.old == e.new or "flashroom: spec" not in e.new or e.new in e.old:
                raise RuntimeError(f"change {c.name}: hunk in {e.path} is not a flashroom edit")


_check_registry()

__all__ = [
    "BY_NAME",
    "CHANGES",
    "CHANGE_NAMES",
    "PARTS",
    "PATCHED_SYSTEM_VERSION",
    "STOCK_SYSTEM_VERSION",
    "Change",
    "Edit",
    "changes_of_part",
]
