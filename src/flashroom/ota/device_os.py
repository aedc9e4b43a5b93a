"""Device OS facts both OTA ends need: addresses, sizes, timeouts, the OTA target contract.

Values per spec 4.1 (OTA region, erase range check), 6.2 (chunk count limit), 6.4 (ChunkMissed
count) and 6.5 (chunk size, inactivity timeout).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from flashroom.ota.messages import MAX_MISSED_PER_MESSAGE

OTA_REGION_START = 0x080C0000  # HAL_OTA_FlashAddress() on all Gen2 platforms (spec 4.1 #1)
FLASH_END = 0x08100000  # FLASH_EraseMemory range check (spec 4.1 #2.3)
DEFAULT_CHUNK_SIZE = 512  # OTA_CHUNK_SIZE (spec 6.5)
MAX_CHUNKS = 65535  # ceil(file_length / chunk_size) must stay below this (spec 6.2 #1)

# HAL_OTA_FlashLength() (spec 4.1 #1) and TIMING_FLASH_UPDATE_TIMEOUT (spec 6.5), per platform.
OTA_FLASH_LENGTH: dict[str, int] = {"photon": 0x40000, "p1": 0x40000, "electron": 0x20000}
INACTIVITY_TIMEOUT_S: dict[str, float] = {"photon": 30.0, "p1": 30.0, "electron": 300.0}
PLATFORM_IDS: dict[str, int] = {"photon": 6, "p1": 8, "electron": 10}

ProgressFn = Callable[[int, int], None]


class OtaTarget(Protocol):
    """The device's system OTA receive path (emulator contract; spec 4.1, 4.2)."""

    def ota_begin(self, file_length: int, chunk_size: int = 512, file_address: int = 0) -> int:
        """HAL_FLASH_Begin: erase; 0 or a negative system error."""
        ...

    def ota_write(self, offset: int, data: bytes) -> None:
        """HAL_FLASH_Update at ``offset`` past the file start; no bounds check (spec 4.1 #3)."""
        ...

    def ota_finish(self) -> int:
        """HAL_FLASH_End: 1 applied pending restart, or a negative system error (spec 4.2)."""
        ...


def noop_progress(done: int, total: int) -> None:
    """A progress callback that does nothing."""
    return None


def missed_request_count(received_in_flight: int) -> int:
    """How many missing indices one ChunkMissed lists (spec 6.4 #5, integer arithmetic)."""
    n = received_in_flight
    return min(n + max(n // 5, 2), MAX_MISSED_PER_MESSAGE)
