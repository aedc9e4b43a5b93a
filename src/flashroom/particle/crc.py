"""CRC-32 as Device OS and the reference tool use it (spec 2.5).

Standard reflected CRC-32 (zlib), stored **big-endian** in the last 4 bytes of a module.
"""

from __future__ import annotations

import zlib


def crc32(data: bytes | bytearray | memoryview) -> int:
    """IEEE CRC-32, identical to ``Compute_CRC32`` on the STM32 (spec 2.5 #6)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def crc32_be_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The CRC-32 of ``data`` as the 4 big-endian bytes a module stores."""
    return crc32(data).to_bytes(4, "big")
