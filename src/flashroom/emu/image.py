"""The persistent device image file: a small versioned header, JSON metadata, raw flash.

Layout (all integers little-endian)::

    +0   8   magic b"FLRMEMU\\0"
    +8   4   format version (1)
    +12  4   metadata length M
    +16  4   flash length F (1048576 for the STM32F205)
    +20  4   CRC-32 of metadata + flash
    +24  M   metadata, UTF-8 JSON: platform, profile, bootloader variant, backup registers,
             power state, counters
    +24+M F  the raw flash

Written atomically (temp file in the same directory, then ``os.replace``).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from flashroom.errors import EmulatorError

MAGIC = b"FLRMEMU\x00"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIII")


def encode_image(metadata: dict[str, Any], flash: bytes) -> bytes:
    """Serialise metadata and flash into the image format."""
    meta = json.dumps(metadata, sort_keys=True).encode()
    crc = zlib.crc32(flash, zlib.crc32(meta)) & 0xFFFFFFFF
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(meta), len(flash), crc) + meta + flash


def decode_image(data: bytes, *, name: str = "<image>") -> tuple[dict[str, Any], bytes]:
    """Parse an image; returns ``(metadata, flash)``.

    Raises:
        EmulatorError: not an image, unsupported version, truncated, corrupt, bad metadata.
    """
    if len(data) < _HEADER.size:
        raise EmulatorError(
            f"{name}: {len(data)} bytes is too short for a flashroom device image "
            f"(header is {_HEADER.size} bytes); create one with 'flashroom emu new'"
        )
    magic, version, mlen, flen, crc = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise EmulatorError(
            f"{name}: not a flashroom device image (magic {magic!r} at offset 0, expected "
            f"{MAGIC!r}); create one with 'flashroom emu new'"
        )
    if version != FORMAT_VERSION:
        raise EmulatorError(
            f"{name}: device image format version {version} is not supported (expected "
            f"{FORMAT_VERSION})"
        )
    need = _HEADER.size + mlen + flen
    if len(data) != need:
        raise EmulatorError(
            f"{name}: device image is {len(data)} bytes, header says {need} "
            f"({mlen} bytes of metadata + {flen} bytes of flash): truncated or padded"
        )
    meta_raw = data[_HEADER.size : _HEADER.size + mlen]
    flash = data[_HEADER.size + mlen :]
    computed = zlib.crc32(flash, zlib.crc32(meta_raw)) & 0xFFFFFFFF
    if computed != crc:
        raise EmulatorError(
            f"{name}: device image is corrupt: stored CRC-32 0x{crc:08x}, computed "
            f"0x{computed:08x} (offset 20)"
        )
    try:
        meta = json.loads(meta_raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EmulatorError(f"{name}: device image metadata is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise EmulatorError(f"{name}: device image metadata is not a JSON object")
    return meta, flash


__all__ = ["FORMAT_VERSION", "MAGIC", "decode_image", "encode_image"]
