"""Facts Device OS 2.3.1 shares on the three Gen2 (STM32F205) platforms.

Addresses, sizes, versions, DCT offsets, flags and error codes; each cites its source (spec
section and Device OS file). Per-platform facts (bounds tables, install sets, timeouts) are in
:mod:`~flashroom.deviceos.photon`, :mod:`~flashroom.deviceos.p1` and
:mod:`~flashroom.deviceos.electron`.
"""

from __future__ import annotations

from flashroom.deviceos.enums import ModuleFunction, ModuleStore, PlatformId
from flashroom.deviceos.model import MapArea, ModuleBounds

SRC = "particle-iot/device-os@v2.3.1"
#: How user-facing messages cite the Device OS source: ``device-os@v2.3.1:path:line`` (the
#: tag of github.com/particle-iot/device-os; docs/device-os.md explains the facts).
CITE = "device-os@v2.3.1"

# ----------------------------------------------------------------------------- flash and boot
#: Internal flash (spec 1.1, platform_config.h:186-189); ``FLASH_CheckValidAddressRange``
#: accepts ``start >= START`` and ``start + len - 1 <= END`` (spec 3.1, off by one).
INTERNAL_FLASH_START = 0x08000000
INTERNAL_FLASH_END = 0x08100000
#: ``INTERNAL_FLASH_PAGE_SIZE``: ``FLASH_EraseMemory`` counts sectors in 128 KB units (spec 8.6).
INTERNAL_FLASH_PAGE_SIZE = 0x20000
#: ``CORE_FW_ADDRESS``: where the bootloader jumps (spec 1.1, 8.9).
CORE_FW_ADDRESS = 0x08020000
#: The bootloader module's start (sector 0, spec 1.2/1.3).
BOOTLOADER_ADDRESS = 0x08000000
#: Where the installed bootloader's ``module_version`` sits: module_info_t at +0x184 and the
#: version at +10 in it (spec 4.7 #1: ``HAL_Core_Setup`` compares this u16).
BOOTLOADER_VERSION_ADDRESS = BOOTLOADER_ADDRESS + 0x184 + 10
#: ``flash_device_t`` (spec 4.3, flash_device_hal.h:10-11).
FLASH_INTERNAL = 0
FLASH_SERIAL = 1
#: SRAM: 128 KB at 0x20000000 on all three (spec 1.7); backup SRAM page (spec 1.7).
SRAM_START = 0x20000000
SRAM_END = 0x20020000
BACKUP_SRAM_START = 0x40024000
BACKUP_SRAM_SIZE = 0x1000
#: USB vendor id of Particle's DFU and CDC interfaces (spec 2.3, build/platform-id.mk:147-228).
USB_VENDOR_ID = 0x2B04

# ----------------------------------------------------------------------------- versions
#: ``module_version`` of the v2.3.1 system modules (spec 2.4).
SYSTEM_VERSION_2_3_1 = 2302
#: Default ``USER_PART_MODULE_VERSION`` (spec 2.4).
USER_PART_VERSION = 6
#: A source-built v2.3.1 bootloader (spec 2.4, 10).
SOURCE_BOOTLOADER_VERSION = 1006
#: Bootloaders >= 1003 clear a slot after its copy (resumable); <= 1002 before (spec 4.5).
RESUMABLE_FROM_VERSION = 1003
#: The last version that clears the slot before copying (v2.0.0-rc.1, spec 4.5, 10).
LEGACY_BOOTLOADER_VERSION = 1002
#: The bootloader variants a fresh emulated device can carry, by copy semantics (spec 4.5).
BOOTLOADER_VARIANTS: tuple[str, ...] = ("resumable", "legacy")
#: spec 9 change 5: the extended system modules' ``module_version``. Spec-silent value: 2.3.1's
#: 2302 plus 48 ("2.3.1-ext"), larger than every stock 2.3.x value so ">= 2302" deps still hold.
EXTENDED_SYSTEM_VERSION = 2350

# ----------------------------------------------------------------------------- OTA
#: Where Device OS 2.3.1 turns compressed OTA off for Gen2 (spec 1.3, 7.4): no code under
#: hal/src/stm32f2xx or platform/MCU/STM32F2xx reads MODULE_INFO_FLAG_COMPRESSED or
#: MODULE_INFO_FLAG_COMBINED (only dynalib/inc/module_info.h:46-47 defines them).
COMPRESSED_OTA_OFF_SOURCE = f"{CITE}:hal/inc/hal_platform.h:270-272"
FLAGS_DEFINED_SOURCE = f"{CITE}:dynalib/inc/module_info.h:46-47"
#: ``OTA_CHUNK_SIZE`` = ``HAL_OTA_ChunkSize()`` (spec 6.5, ota_flash_hal_stm32f2xx.cpp:51).
DEFAULT_CHUNK_SIZE = 512
#: ``MAX_CHUNKS``: ``ceil(file_length / chunk_size)`` must stay below it (spec 6.2 #1).
MAX_CHUNKS = 65535
#: ``MISSED_CHUNKS_TO_SEND`` (spec 6.4 #5; 20 on Argon/A SoM).
MISSED_CHUNKS_TO_SEND = 40
#: ``MINIMUM_CHUNK_INCREASE`` (spec 6.4 #5).
MINIMUM_CHUNK_INCREASE = 2
#: The protocol channel's static buffer, per platform id: ``(size, prefix, suffix)``. Every
#: message the device receives is read into it, and the fast-OTA chunk bitmap lives at its end
#: (spec 6.2 #4; chunked_transfer.cpp:97-101), so a chunk message must leave the bitmap room.
#: ``PROTOCOL_BUFFER_SIZE`` = ``MBEDTLS_SSL_MAX_CONTENT_LEN`` (communication/inc/protocol_defs.h:
#: 97-98): 900 on Electron (crypto/inc/mbedtls_config_default.h:2560; ``DTLSMessageChannel`` is a
#: ``BufferMessageChannel<PROTOCOL_BUFFER_SIZE>`` without prefix or suffix,
#: communication/src/dtls_message_channel.h:54), 800 on Photon/P1 (mbedtls_config_photon.h:2620,
#: selected for PLATFORM_ID 6 and 8 in mbedtls_config_default.h:24-25; ``LightSSLMessageChannel``
#: keeps 2 bytes of length prefix and 16 of padding, communication/src/lightssl_message_channel.h:
#: 43-44).
PROTOCOL_BUFFER: dict[int, tuple[int, int, int]] = {
    PlatformId.PHOTON: (800, 2, 16),
    PlatformId.P1: (800, 2, 16),
    PlatformId.ELECTRON: (900, 0, 0),
}

# ----------------------------------------------------------------------------- validation
# spec 3.1: module validity bits (ota_flash_hal.h:59-68)
MODULE_VALIDATION_INTEGRITY = 0x02
MODULE_VALIDATION_DEPENDENCIES = 0x04
MODULE_VALIDATION_RANGE = 0x08
MODULE_VALIDATION_PLATFORM = 0x10
MODULE_VALIDATION_PRODUCT = 0x20
MODULE_VALIDATION_DEPENDENCIES_FULL = 0x40

# spec 3.1: system_error_t values (services/inc/system_error.h:26, 57-64)
SYSTEM_ERROR_UNKNOWN = -100
SYSTEM_ERROR_OTA_MODULE_NOT_FOUND = -1300
SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE = -1310
SYSTEM_ERROR_OTA_VALIDATION_FAILED = -1320
SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED = -1330
SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED = -1340
SYSTEM_ERROR_OTA_INVALID_ADDRESS = -1350
SYSTEM_ERROR_OTA_INVALID_PLATFORM = -1360
#: The names of the values above (system_error.h), for messages.
SYSTEM_ERROR_NAMES: dict[int, str] = {
    SYSTEM_ERROR_UNKNOWN: "SYSTEM_ERROR_UNKNOWN",
    SYSTEM_ERROR_OTA_MODULE_NOT_FOUND: "SYSTEM_ERROR_OTA_MODULE_NOT_FOUND",
    SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE: "SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE",
    SYSTEM_ERROR_OTA_VALIDATION_FAILED: "SYSTEM_ERROR_OTA_VALIDATION_FAILED",
    SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED: "SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED",
    SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED: "SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED",
    SYSTEM_ERROR_OTA_INVALID_ADDRESS: "SYSTEM_ERROR_OTA_INVALID_ADDRESS",
    SYSTEM_ERROR_OTA_INVALID_PLATFORM: "SYSTEM_ERROR_OTA_INVALID_PLATFORM",
}

#: Hello flag: the device applies compressed modules (communication/src/protocol.cpp:36-44,
#: 404-413); only Gen3 sets it (with a bootloader >= 1000), never a Gen2 device.
HELLO_FLAG_COMPRESSED_OTA = 0x40

# hal_update_complete_t (spec 4.2)
HAL_UPDATE_ERROR = 0
HAL_UPDATE_APPLIED_PENDING_RESTART = 1
HAL_UPDATE_APPLIED = 2

# ----------------------------------------------------------------------------- DCT (spec 8.1)
#: Electron's DCD copies in sectors 1 and 2 (dct_hal.cpp:15-18); the emulator's Photon/P1
#: stand-in uses the same sectors (spec 8.2).
DCT_SECTOR_ADDRS = (0x08004000, 0x08008000)
DCT_SECTOR_SIZE = 0x4000
DCD_WATERMARK = 0x1E1C279A
SEAL_INIT = 0xFFFFFFFF
SEAL_CLEARED = 0x00000000
SEAL_VALID = 0xEDA15E00
SEAL_INVALID_V2 = 0x69A00C00
DCD_DATA_OFFSET = 8
DCD_FOOTER_OFFSET = 0x3FE0
DCD_FLAGS_OFFSET = 0x3FF0
DCD_CRC_OFFSET = 0x3FFC
#: spec 8.1: application data length = 16384 - 8 - 32.
DCD_LENGTH = DCT_SECTOR_SIZE - DCD_DATA_OFFSET - 32
#: Electron's app DCT sits right after the DCD header (spec 8.1); Photon/P1's after the
#: 7548-byte WICED system part (spec 4.3, 8.2).
ELECTRON_DCT_APP_OFFSET = DCD_DATA_OFFSET
WICED_DCT_APP_OFFSET = 7548

# app-DCT offsets (spec 8.3, 4.3; dct.h:77-238)
DCT_FLASH_MODULES_OFFSET = 2852  # 0xB24: flash_modules[5]
DCT_OTA_UPDATE_FLAG_OFFSET = 1753
#: ``feature_flags`` (dct.h:85, :193); erased (0xFFFFFFFF) means every feature on.
DCT_FEATURE_FLAGS_OFFSET = 1754
#: ``FEATURE_FLAG_RESET_INFO`` (dct.h:70): the system clears the RCC reset flags at start-up
#: (``HAL_Core_Init``, core_hal_stm32f2xx.c:428-433) and saves reset reasons in DR2/DR3.
FEATURE_FLAG_RESET_INFO = 0x01
FLASH_MODULES_COUNT = 5
FLASH_MODULE_SLOT_SIZE = 20
OTA_UPDATE_FLAG_SET = 0xA5

# platform_flash_modules_t magics and flags (spec 4.3)
MAGIC_PENDING = 0xABCD
MAGIC_FACTORY = 0x0FAC
MAGIC_UNUSED = 0xFFFF
MODULE_VERIFY_CRC = 0x02
MODULE_VERIFY_DESTINATION_IS_START_ADDRESS = 0x04
MODULE_VERIFY_FUNCTION = 0x08  # shares its bit with MODULE_VERIFY_LENGTH (spec 3.1)
MODULE_DROP_MODULE_INFO = 0x10
MODULE_COMPRESSED = 0x20
FLAGS_CRC_DEST_FUNCTION = 0x0E
#: spec 5.1: the factory slot registers the whole region, not the module length.
FACTORY_SLOT_LENGTH = 0x20000

# ----------------------------------------------------------------------------- the map
_BL, _NONE = ModuleFunction.BOOTLOADER, ModuleFunction.NONE
_M, _T = ModuleStore.MAIN, ModuleStore.SCRATCHPAD

#: ``module_bootloader``: identical on Photon, P1 and Electron (spec 1.5).
MODULE_BOOTLOADER = ModuleBounds("module_bootloader", 0x4000, 0x08000000, 0x08004000, _BL, 0, _M)


def fixed_areas() -> tuple[MapArea, ...]:
    """Bootloader, DCT1/2 and the two EEPROM emulation pages: identical on 6, 8 and 10."""
    eeprom = f"{SRC}:platform/MCU/STM32F2xx/SPARK_Firmware_Driver/inc/eeprom_emulation_impl.h"
    return (
        MapArea(
            "bootloader",
            MODULE_BOOTLOADER,
            note="bootloader, sector 0 (write-protected; docs/device-os.md#maps)",
            source=f"{SRC}:build/arm/linker/linker_stm32f2xx_bootloader.ld:24",
        ),
        MapArea(
            "dct1",
            start=DCT_SECTOR_ADDRS[0],
            end=DCT_SECTOR_ADDRS[0] + DCT_SECTOR_SIZE,
            note="device configuration table, copy 1 (docs/device-os.md#dct)",
            source=f"{SRC}:build/arm/linker/linker_stm32f2xx_bootloader.ld:25",
        ),
        MapArea(
            "dct2",
            start=DCT_SECTOR_ADDRS[1],
            end=DCT_SECTOR_ADDRS[1] + DCT_SECTOR_SIZE,
            note="device configuration table, copy 2 (docs/device-os.md#dct)",
            source=f"{SRC}:build/arm/linker/linker_stm32f2xx_bootloader.ld:26",
        ),
        MapArea(
            "eeprom1",
            start=0x0800C000,
            end=0x08010000,
            note="EEPROM emulation page 1 (docs/device-os.md#maps)",
            source=f"{eeprom}:25-31",
        ),
        MapArea(
            "eeprom2",
            start=0x08010000,
            end=0x08020000,
            note="EEPROM emulation page 2 (docs/device-os.md#maps)",
            source=f"{eeprom}:26,29",
        ),
    )


def ota_bounds(maximum_size: int, end: int) -> ModuleBounds:
    """``module_ota`` starting at 0x080C0000 (``HAL_OTA_FlashAddress()`` on all three, 4.1 #1)."""
    return ModuleBounds("module_ota", maximum_size, 0x080C0000, end, _NONE, 0, _T)
