"""Helpers for the OTA tests: a small fake of the emulator's OTA receive path and images."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from flashroom.deviceos.ota import FileTransferDescriptor

OTA_REGION = 0x080C0000


@dataclass
class FakeOtaDevice:
    """The system's three OTA entry points over a bytearray (tests only).

    Prepare fills in the defaults as ``Spark_Prepare_For_Firmware_Update`` does (chunk_size 0:
    512 and ``default_length``). The finish accepts the image when its last 4 bytes are the
    big-endian CRC-32 of the rest (spec 2.5) and it fits ``max_size``; it returns -1300 when too
    large, -1 on a bad CRC.
    """

    max_size: int = 0x20000
    region_size: int = 0x40000
    default_length: int = 0x20000
    updates_enabled: bool = True
    running: bytes = b"old-app"
    erased: int = 0
    region: bytearray = field(default_factory=bytearray)
    file_length: int = 0
    pending: bytes | None = None
    begins: int = 0
    last_ota_error: str = ""

    def prepare_for_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        if file.store == 0:
            file.file_address = (OTA_REGION + file.chunk_address) & 0xFFFFFFFF
            if file.chunk_size == 0:
                file.chunk_size = 512
                file.file_length = self.default_length
        if not self.updates_enabled:
            return 1
        if flags & 1:
            return 0
        self.begins += 1
        self.file_length = file.file_length
        self.region = bytearray(b"\xff" * self.region_size)
        self.pending = None
        return 0

    def save_firmware_chunk(self, file: FileTransferDescriptor, chunk: bytes) -> int:
        offset = file.chunk_address - OTA_REGION
        data = chunk[: file.chunk_size]
        if offset + len(data) > self.region_size:
            from flashroom.errors import EmulatorError

            raise EmulatorError(f"write past the end of flash at offset {offset}")
        for i, b in enumerate(data):
            self.region[offset + i] &= b
        return 0

    def image_at(self, length: int) -> bytes:
        return bytes(self.region[:length])

    def finish_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        if flags & 2:  # VALIDATE_ONLY: nothing applied
            return 0
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
