"""Helpers for the OTA tests: a small fake of the emulator's OTA receive path and images."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

OTA_REGION = 0x080C0000


@dataclass
class FakeOtaDevice:
    """The four emulator methods over a bytearray (tests only).

    ``ota_finish`` accepts the image when its last 4 bytes are the big-endian CRC-32 of the rest
    (spec 2.5) and it fits ``max_size``; it returns -1300 when too large, -1 on a bad CRC.
    """

    max_size: int = 0x20000
    region_size: int = 0x40000
    running: bytes = b"old-app"
    erased: int = 0
    region: bytearray = field(default_factory=bytearray)
    file_length: int = 0
    pending: bytes | None = None
    begins: int = 0

    def ota_begin(self, file_length: int, chunk_size: int = 512, file_address: int = 0) -> int:
        self.begins += 1
        self.file_length = file_length
        self.region = bytearray(b"\xff" * self.region_size)
        self.pending = None
        return 0

    def ota_write(self, offset: int, data: bytes) -> None:
        if offset + len(data) > self.region_size:
            from flashroom.errors import EmulatorError

            raise EmulatorError(f"write past the end of flash at offset {offset}")
        for i, b in enumerate(data):
            self.region[offset + i] &= b

    def image_at(self, length: int) -> bytes:
        return bytes(self.region[:length])

    def ota_finish(self) -> int:
        body = bytes(self.region[: self.file_length])
        if len(body) < 8:
            return -1
        if zlib.crc32(body[:-4]) != int.from_bytes(body[-4:], "big"):
            return -1
        if len(body) > self.max_size:
            return -1300
        self.pending = body
        return 1

    def reset(self) -> str:
        if self.pending is not None:
            self.running = self.pending
            self.pending = None
            return "applied"
        return "booted"


def make_image(size: int, seed: int = 0) -> bytes:
    """``size`` bytes ending with the big-endian CRC-32 of the rest."""
    import random

    body = random.Random(seed).randbytes(size - 4)
    return body + zlib.crc32(body).to_bytes(4, "big")


IMAGE = make_image(20_000, seed=3)


@pytest.fixture
def ota() -> SimpleNamespace:
    """The helpers: ``ota.FakeOtaDevice``, ``ota.make_image``, ``ota.IMAGE`` (20 000 bytes)."""
    return SimpleNamespace(FakeOtaDevice=FakeOtaDevice, make_image=make_image, IMAGE=IMAGE)
