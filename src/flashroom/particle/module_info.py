"""``module_info_t`` and its enumerations, as in Device OS v2.3.1 (spec 2.1-2.3).

This is the one record every part of flashroom shares: the parser and builder in this package,
the layout engine (region checks) and the emulator (the device reads it from flash).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# The enumerations are Device OS facts (their one home is flashroom.deviceos); they are
# re-exported here next to the record that uses them.
from flashroom.deviceos.enums import (
    FUNCTION_NAMES,
    ModuleFunction,
    ModuleInfoFlags,
    ModuleStore,
    PlatformId,
)
from flashroom.errors import ModuleFormatError

__all__ = [
    "APP_START_MASK",
    "FUNCTION_NAMES",
    "VECTOR_TABLE_SIZE",
    "ModuleDependency",
    "ModuleFunction",
    "ModuleInfo",
    "ModuleInfoFlags",
    "ModuleStore",
    "PlatformId",
    "module_info_offset",
    "read_module_info_at",
]

#: ``APP_START_MASK`` (flash_mal.h:58-62): a first word matching it under this mask is a stack
#: pointer, so ``module_info_t`` sits after the 0x184-byte vector table (spec 2.2).
APP_START_MASK = 0x2FF10000
VECTOR_TABLE_SIZE = 0x184


@dataclass(frozen=True)
class ModuleDependency:
    """``module_dependency_t``: 4 bytes. Function NONE means "no dependency"."""

    module_function: int = ModuleFunction.NONE  # u8
    module_index: int = 0  # u8
    module_version: int = 0  # u16

    STRUCT = struct.Struct("<BBH")

    @property
    def is_none(self) -> bool:
        return self.module_function == ModuleFunction.NONE

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> ModuleDependency:
        f, i, v = cls.STRUCT.unpack_from(data, offset)
        return cls(f, i, v)

    def to_bytes(self) -> bytes:
        return self.STRUCT.pack(self.module_function, self.module_index, self.module_version)


@dataclass(frozen=True)
class ModuleInfo:
    """``module_info_t``: 24 bytes, packed, little-endian (dynalib/inc/module_info.h:53-79)."""

    module_start_address: int  # +0  u32: link address of the module's first byte
    module_end_address: int  # +4  u32: one past the last byte; the CRC-32 starts here
    reserved: int  # +8  u8: 0 on Gen2 ("mcu_target" on Gen3)
    flags: int  # +9  u8: ModuleInfoFlags
    module_version: int  # +10 u16
    platform_id: int  # +12 u16
    module_function: int  # +14 u8: ModuleFunction
    module_index: int  # +15 u8
    dependency: ModuleDependency  # +16 module_dependency_t
    dependency2: ModuleDependency  # +20 module_dependency_t

    STRUCT = struct.Struct("<IIBBHHBB4s4s")
    SIZE = 24

    @property
    def module_length(self) -> int:
        """``module_end_address - module_start_address``; the CRC is not included (spec 2.6)."""
        return self.module_end_address - self.module_start_address

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> ModuleInfo:
        """Decode 24 bytes at ``offset``.

        Raises:
            ModuleFormatError: fewer than 24 bytes are available.
        """
        if offset < 0 or len(data) - offset < cls.SIZE:
            raise ModuleFormatError(
                f"module_info_t needs {cls.SIZE} bytes, only {max(0, len(data) - offset)} remain",
                offset=offset,
                field="module_info_t",
            )
        s, e, r, fl, v, p, fn, ix, d1, d2 = cls.STRUCT.unpack_from(data, offset)
        return cls(
            s,
            e,
            r,
            fl,
            v,
            p,
            fn,
            ix,
            ModuleDependency.from_bytes(d1),
            ModuleDependency.from_bytes(d2),
        )

    def to_bytes(self) -> bytes:
        return self.STRUCT.pack(
            self.module_start_address,
            self.module_end_address,
            self.reserved,
            self.flags,
            self.module_version,
            self.platform_id,
            self.module_function,
            self.module_index,
            self.dependency.to_bytes(),
            self.dependency2.to_bytes(),
        )


if ModuleInfo.STRUCT.size != ModuleInfo.SIZE:  # checked at import, never with assert
    raise RuntimeError("module_info_t struct is not 24 bytes")
if ModuleDependency.STRUCT.size != 4:
    raise RuntimeError("module_dependency_t struct is not 4 bytes")


def module_info_offset(first_word: int) -> int:
    """Where ``FLASH_ModuleInfo`` looks for ``module_info_t`` given the module's first word.

    spec 2.2 (flash_mal.c:675-697): ``word & 0x2FF10000 == 0x20000000`` means a stack pointer,
    so the info block is at +0x184; otherwise at +0. The mask is reproduced exactly.
    """
    return VECTOR_TABLE_SIZE if (first_word & APP_START_MASK) == 0x20000000 else 0


def read_module_info_at(data: bytes, base: int = 0) -> ModuleInfo:
    """Read ``module_info_t`` the way the device does, for a module starting at ``data[base]``.

    Raises:
        ModuleFormatError: not enough bytes.
    """
    if len(data) - base < 4:
        raise ModuleFormatError("module too short for its first word", offset=base, field="sp")
    (word,) = struct.unpack_from("<I", data, base)
    return ModuleInfo.from_bytes(data, base + module_info_offset(word))
