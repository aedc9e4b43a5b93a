"""Helpers for the particle unit tests: hand-made modules and ELF files."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from flashroom.particle.build import finish_checksums
from flashroom.particle.module_info import ModuleDependency, ModuleInfo


def make_raw_module(
    *,
    body: bytes = b"\x11" * 64,
    flags: int = 0,
    prefix_ext: bytes = b"",
    suffix_ext: bytes = b"",
    product: bytes | None = b"\xff\xff\xff\xff",
    function: int = 5,
    platform_id: int = 12,
    start: int = 0x000D4000,
    head: bytes = b"",
) -> bytes:
    """A module assembled by hand: [head][prefix][prefix_ext][body][suffix_ext][product][suffix].

    ``product=None`` gives a 36-byte suffix (no product fields).
    """
    tail = suffix_ext + (product or b"")
    suffix_size = 36 + len(tail)
    total = len(head) + 24 + len(prefix_ext) + len(body) + len(tail) + 36 + 4
    info = ModuleInfo(
        start,
        start + total - 4,
        0,
        flags,
        3,
        platform_id,
        function,
        1,
        ModuleDependency(4, 1, 100),
        ModuleDependency(),
    )
    out = bytearray(head + info.to_bytes() + prefix_ext + body + tail)
    out += struct.pack("<H32sH", 0, b"\0" * 32, suffix_size) + b"\0\0\0\0"
    finish_checksums(out)
    return bytes(out)


def make_elf(segments: list[tuple[int, bytes]], *, p_type: int = 1) -> bytes:
    """A minimal little-endian ELF32 (ARM) with one program header per (paddr, data)."""
    ehsize, phentsize = 52, 32
    phoff = ehsize
    data_off = phoff + phentsize * len(segments)
    phdrs = b""
    blobs = b""
    for paddr, data in segments:
        off = data_off + len(blobs)
        phdrs += struct.pack("<IIIIIIII", p_type, off, paddr, paddr, len(data), len(data), 5, 4)
        blobs += data
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(
        "<HHIIIIIHHHHHH",
        2,
        40,
        1,
        segments[0][0] if segments else 0,
        phoff,
        0,
        0x05000000,
        ehsize,
        phentsize,
        len(segments),
        40,
        0,
        0,
    )
    return header + phdrs + blobs


@pytest.fixture
def raw_module() -> Callable[..., bytes]:
    return make_raw_module


@pytest.fixture
def elf() -> Callable[..., bytes]:
    return make_elf
