"""The contract between Device OS's protocol layer and its system firmware for an OTA.

``ChunkedTransfer`` (communication/src/chunked_transfer.cpp) calls three system functions
through its callbacks, each taking a ``FileTransfer::Descriptor`` by reference (spec 6.2-6.4,
11.2; system/src/system_update.cpp:291-447):

* ``Spark_Prepare_For_Firmware_Update(file, flags, reserved)``: flags 1 is the dry run of
  UpdateBegin; it fills in the defaults (chunk_size 0 -> ``HAL_OTA_ChunkSize()`` and
  ``HAL_OTA_FlashLength()``) and ``file_address = HAL_OTA_FlashAddress() + chunk_address`` for
  the FIRMWARE store, then (not a dry run) erases with ``HAL_FLASH_Begin``. 0 = ok, 1 = updates
  disabled.
* ``Spark_Save_Firmware_Chunk(file, chunk, reserved)``: ``file.chunk_address`` is the chunk's
  absolute address and ``file.chunk_size`` its length; writes only for the FIRMWARE store.
* ``Spark_Finish_Firmware_Update(file, flags, reserved)``: ``UpdateFlag`` SUCCESS|VALIDATE_ONLY
  validates only; SUCCESS runs ``HAL_FLASH_End`` (FIRMWARE store) and schedules the reset.

:class:`SystemUpdateCallbacks` is that contract in Python: the protocol's device end
(:mod:`flashroom.ota`) calls it, and both the emulator's system model and the real system code
run by :mod:`flashroom.firmware` implement it. Python mutates the descriptor in place, as the
C++ reference does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from flashroom.deviceos.enums import FileTransferStore


@dataclass
class FileTransferDescriptor:
    """``FileTransfer::Descriptor`` (communication/inc/file_transfer.h:35-83, packed, 20 bytes).

    Attributes:
        chunk_address: the server's offset at UpdateBegin; the chunk's absolute address when a
            chunk is saved.
        chunk_size: the chunk size (0 at UpdateBegin selects the defaults); the chunk's length
            when a chunk is saved.
        store: ``FileTransfer::Store``.
        file_length: bytes of the file (0 with chunk_size 0 selects ``HAL_OTA_FlashLength()``).
        file_address: the absolute start address once prepared (32-bit, as the MCU computes).
    """

    file_length: int = 0
    chunk_size: int = 0
    chunk_address: int = 0
    file_address: int = 0
    store: int = FileTransferStore.FIRMWARE

    #: u16 size (=20), u16 reserved2, u32 chunk_address, u16 chunk_size, u8 store, u8 reserved,
    #: u32 file_length, u32 file_address (spec 11.2).
    STRUCT = struct.Struct("<HHIHBBII")
    SIZE = 20

    def to_bytes(self) -> bytes:
        """The packed C struct, as the system code reads it."""
        return self.STRUCT.pack(
            self.SIZE,
            0,
            self.chunk_address & 0xFFFFFFFF,
            self.chunk_size & 0xFFFF,
            self.store & 0xFF,
            0,
            self.file_length & 0xFFFFFFFF,
            self.file_address & 0xFFFFFFFF,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FileTransferDescriptor:
        """Decode the packed struct (the ``size`` and reserved fields are not kept)."""
        _size, _r2, chunk_address, chunk_size, store, _r, file_length, file_address = (
            cls.STRUCT.unpack_from(data, 0)
        )
        return cls(file_length, chunk_size, chunk_address, file_address, store)

    def chunk_count(self) -> int:
        """``Descriptor::chunk_count(chunk_size)``: ceil(file_length / chunk_size)."""
        return -(-self.file_length // self.chunk_size) if self.chunk_size else 0


if FileTransferDescriptor.STRUCT.size != FileTransferDescriptor.SIZE:
    raise RuntimeError("FileTransfer::Descriptor struct is not 20 bytes")


class SystemUpdateCallbacks(Protocol):
    """The system's OTA entry points (see the module docstring). Return values are Device OS's."""

    def prepare_for_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Prepare_For_Firmware_Update``: 0 ok, 1 updates disabled."""
        ...

    def save_firmware_chunk(self, file: FileTransferDescriptor, chunk: bytes) -> int:
        """``Spark_Save_Firmware_Chunk``: ``HAL_FLASH_Update``'s result, -1 for other stores."""
        ...

    def finish_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Finish_Firmware_Update``: ``HAL_FLASH_End``'s result (1 pending restart,
        2 bootloader applied, < 0 a system error), or ``HAL_FLASH_OTA_Validate``'s."""
        ...

    @property
    def last_ota_error(self) -> str:
        """Why the last finish failed, in words (empty when it did not)."""
        ...


#: ``SYSTEM_FLAG_OTA_UPDATE_ENABLED`` (system/inc/system_update.h:79-92): without it Prepare
#: answers 1 (updates disabled) and erases nothing (spec 11.2).
SYSTEM_FLAG_OTA_UPDATE_ENABLED = 1

#: The functions the real OTA path runs at function level, and the system module index (spec
#: 1.4) that holds each (spec 11.2; system/inc/system_dynalib.h:63-65 for the three ``Spark_``
#: entries): one pre-init for static RAM, the system flags as ``HAL_Core_Config`` loads them
#: (hal/src/stm32f2xx/core_hal_stm32f2xx.c:371-373), the updates-enabled flag, then the three
#: calls the protocol layer makes.
OTA_ENTRY_POINTS: tuple[tuple[str, int], ...] = (
    ("module_system_part1_pre_init", 1),
    ("Load_SystemFlags", 2),
    ("system_set_flag", 2),
    ("Spark_Prepare_For_Firmware_Update", 2),
    ("Spark_Save_Firmware_Chunk", 2),
    ("Spark_Finish_Firmware_Update", 2),
)

__all__ = [
    "OTA_ENTRY_POINTS",
    "SYSTEM_FLAG_OTA_UPDATE_ENABLED",
    "FileTransferDescriptor",
    "SystemUpdateCallbacks",
]
