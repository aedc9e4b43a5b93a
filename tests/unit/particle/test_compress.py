"""Unit tests for compressed and combined modules (module-format.md 6.1-6.2)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import pytest

from flashroom.errors import ModuleFormatError, UsageError
from flashroom.particle.build import device_os_install, synthetic_user_app
from flashroom.particle.compress import (
    combine_modules,
    compress_module,
    decompress_module,
    split_modules,
)
from flashroom.particle.module import parse_module

RawModule = Callable[..., bytes]


def test_compress_puts_prefix_at_zero_and_reads_back_in_reference_format() -> None:
    part = device_os_install("electron")[1]  # vector table: prefix at 0x184
    out = compress_module(part)
    m = parse_module(out)
    assert m.prefix_offset == 0
    assert m.info.flags == 0x02
    assert m.info.module_start_address == 0x08020000
    assert m.info.module_end_address == 0x08020000 + len(out) - 4
    assert m.compressed is not None
    assert (m.compressed.header_size, m.compressed.method, m.compressed.window_bits) == (8, 0, 0)
    assert m.compressed.original_size == len(part)
    assert m.ok
    assert len(out) < len(part)
    # the stream is raw deflate of the whole original file
    stream = out[24 + 8 : len(out) - 40 - 4]
    assert zlib.decompressobj(-15).decompress(stream) == part
    assert decompress_module(out) == part


def test_compress_with_window_bits_records_them_in_the_header() -> None:
    app = synthetic_user_app(8192)
    out = compress_module(app, window_bits=12)
    assert parse_module(out).compressed.window_bits == 12  # type: ignore[union-attr]
    assert decompress_module(out) == app


def test_drop_module_info_compresses_only_the_body(raw_module: RawModule) -> None:
    src = raw_module(flags=0x01, function=9, body=bytes(range(256)) * 4)
    out = compress_module(src)
    hdr = parse_module(out).compressed
    assert hdr is not None and hdr.original_size == 1024
    assert decompress_module(out) == src


def test_compress_refuses_already_compressed_and_padded_modules() -> None:
    app = synthetic_user_app(4096)
    with pytest.raises(ModuleFormatError, match="already compressed"):
        compress_module(compress_module(app))
    with pytest.raises(ModuleFormatError, match="Invalid size of the module data") as e:
        compress_module(app + b"\xff" * 16)
    assert e.value.field == "module_end_address"
    with pytest.raises(UsageError):
        compress_module(app, window_bits=8)


def test_decompress_rejects_bad_method_and_wrong_size() -> None:
    out = bytearray(compress_module(synthetic_user_app(4096)))
    bad = bytearray(out)
    bad[24 + 2] = 1
    with pytest.raises(ModuleFormatError, match="compression method") as e:
        decompress_module(bytes(bad))
    assert e.value.offset == 26
    bad = bytearray(out)
    struct.pack_into("<I", bad, 24 + 4, 4095)
    with pytest.raises(ModuleFormatError, match="Unexpected size of the decompressed data"):
        decompress_module(bytes(bad))
    with pytest.raises(ModuleFormatError, match="not compressed"):
        decompress_module(synthetic_user_app(4096))


def test_corrupt_stream_is_a_failed_check_in_inspect_and_an_error_in_decompress() -> None:
    out = bytearray(compress_module(synthetic_user_app(4096)))
    out[40:60] = b"\xff" * 20
    with pytest.raises(ModuleFormatError) as e:
        decompress_module(bytes(out))
    assert e.value.field in ("deflate_stream", "compressed_module_header.original_size")
    m = parse_module(bytes(out))
    assert not m.ok
    assert any(c.name == "compressed" and not c.ok for c in m.checks())


def test_combine_then_split_gives_back_the_originals() -> None:
    mods = [*device_os_install("electron")[1:], synthetic_user_app(6000)]
    combined = combine_modules(mods)
    assert len(combined) == sum(len(m) for m in mods)
    m = parse_module(combined)
    assert m.combined is not None and len(m.combined) == 4
    assert [p.module.info.flags & 0x04 for p in m.combined] == [4, 4, 4, 0]
    assert all(p.module.crc_ok and p.module.sha256_ok for p in m.combined)
    assert not m.crc_ok  # the whole-file CRC of a combined file never matches (6.2)
    assert m.ok
    assert split_modules(combined) == mods


def test_combined_compressed_modules_round_trip() -> None:
    a, b = synthetic_user_app(4096, seed=1), synthetic_user_app(5000, seed=2)
    ca, cb = compress_module(a), compress_module(b)
    parts = split_modules(combine_modules([ca, cb]))
    assert [decompress_module(p) for p in parts] == [a, b]


def test_split_rejects_leftover_bytes_and_unterminated_chain() -> None:
    a, b = synthetic_user_app(4096, seed=1), synthetic_user_app(4096, seed=2)
    combined = combine_modules([a, b])
    with pytest.raises(ModuleFormatError, match="Invalid module data"):
        split_modules(combined[: len(a)])  # first part still has COMBINED
    with pytest.raises(ModuleFormatError, match="Invalid module data: 100 bytes left"):
        split_modules(combined + b"\0" * 100)
    m = parse_module(combined[: len(a)])
    assert any(c.name == "combined" and not c.ok for c in m.checks())


def test_combine_refuses_combined_input_and_empty_list() -> None:
    a, b = synthetic_user_app(4096, seed=1), synthetic_user_app(4096, seed=2)
    combined = combine_modules([a, b])
    with pytest.raises(ModuleFormatError, match="#1 is already combined"):
        combine_modules([combined[: len(a)], b])
    with pytest.raises(ModuleFormatError, match="module #1: Invalid size of the module data"):
        combine_modules([combined, a])
    with pytest.raises(UsageError):
        combine_modules([])
    assert combine_modules([a]) == a
