"""Device OS enumerations (spec 2.3, 6.2): module functions and stores, flags, platform ids.

``flashroom.particle.module_info`` re-exports the module enums next to the ``module_info_t``
record; this is their one definition.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class ModuleFunction(IntEnum):
    """``module_function_t`` (dynalib/inc/module_info.h:85-125; HEAD adds ASSET)."""

    NONE = 0
    RESOURCE = 1
    BOOTLOADER = 2
    MONO_FIRMWARE = 3
    SYSTEM_PART = 4
    USER_PART = 5
    SETTINGS = 6
    NCP_FIRMWARE = 7
    RADIO_STACK = 8
    ASSET = 9


#: Short names used on the command line (``--function user``, ``--depends system:2:2302``).
FUNCTION_NAMES: dict[str, ModuleFunction] = {
    "none": ModuleFunction.NONE,
    "resource": ModuleFunction.RESOURCE,
    "bootloader": ModuleFunction.BOOTLOADER,
    "mono": ModuleFunction.MONO_FIRMWARE,
    "system": ModuleFunction.SYSTEM_PART,
    "user": ModuleFunction.USER_PART,
    "settings": ModuleFunction.SETTINGS,
    "ncp": ModuleFunction.NCP_FIRMWARE,
    "radio": ModuleFunction.RADIO_STACK,
    "asset": ModuleFunction.ASSET,
}


class ModuleStore(IntEnum):
    """``module_store_t`` (dynalib/inc/module_info.h:127-146)."""

    MAIN = 0
    FACTORY = 1
    BACKUP = 2
    SCRATCHPAD = 3


class ModuleInfoFlags(IntFlag):
    """``module_info_flags_t``; Gen2 builds never set any (spec 2.3)."""

    NONE = 0
    DROP_MODULE_INFO = 0x01
    COMPRESSED = 0x02
    COMBINED = 0x04
    ENCRYPTED = 0x08
    PREFIX_EXTENSIONS = 0x10


class PlatformId(IntEnum):
    """Gen2 platform IDs (hal/shared/platforms.h:28-31)."""

    PHOTON = 6
    P1 = 8
    ELECTRON = 10


class FileTransferStore(IntEnum):
    """``FileTransfer::Store`` (communication/inc/file_transfer.h:27-33, spec 6.2)."""

    FIRMWARE = 0
    SYSTEM = 1
    APPLICATION = 128


class UpdateFlag(IntFlag):
    """``UpdateFlag`` of ``Spark_Finish_Firmware_Update`` (communication/inc/protocol_defs.h)."""

    NONE = 0
    SUCCESS = 0x01
    VALIDATE_ONLY = 0x02
    DONT_RESET = 0x04


__all__ = [
    "FUNCTION_NAMES",
    "FileTransferStore",
    "ModuleFunction",
    "ModuleInfoFlags",
    "ModuleStore",
    "PlatformId",
    "UpdateFlag",
]
