"""The streamed-update file (particle/stream.py): header record, encoders, host decode, filter."""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import pytest

from flashroom.deviceos.stream import StreamEncoding, StreamFilter, lzma_param, lzma_props
from flashroom.errors import ModuleFormatError, UsageError
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.evolve import small_change
from flashroom.particle.module_info import module_info_offset
from flashroom.particle.stream import (
    DEFAULT_BLOCK_SIZE,
    FIXED_SIZE,
    MAGIC,
    StreamHeader,
    block_size_problem,
    decode_stream,
    encode_compressed,
    encode_delta,
    fit_block_size,
    is_stream,
    lzma_compress,
    make_header,
    split_stream,
    thumb_filter,
)


@functools.lru_cache(maxsize=1)
def _pair() -> tuple[bytes, bytes]:
    old = synthetic_user_app(96 * 1024, version=5, seed=11)
    return old, small_change(old, seed=2)


def test_header_round_trips_through_bytes() -> None:
    old, new = _pair()
    h = StreamHeader.from_bytes(encode_delta(old, new))
    data = h.to_bytes()
    assert len(data) == h.size == FIXED_SIZE + 4 * len(h.block_crcs) + 4
    assert StreamHeader.from_bytes(data) == h
    assert StreamHeader.from_bytes(data).to_bytes() == data


def test_header_records_target_and_base_digests() -> None:
    old, new = _pair()
    h, payload = split_stream(encode_delta(old, new))
    assert h.target_size == len(new) and h.target_sha256 == hashlib.sha256(new).digest()
    assert h.base_size == len(old) and h.base_sha256 == hashlib.sha256(old).digest()
    assert h.is_delta and h.encoding == StreamEncoding.DELTA_DEFLATE
    assert h.payload_size == len(payload)
    assert len(h.block_crcs) == -(-len(new) // h.block_size)


@pytest.mark.parametrize("compression", ["deflate", "heatshrink", "crle", "none"])
def test_delta_decodes_back_to_the_new_module(compression: str) -> None:
    old, new = _pair()
    assert decode_stream(encode_delta(old, new, compression=compression), old) == new


@pytest.mark.parametrize(
    "encoding", [StreamEncoding.DEFLATE, StreamEncoding.HEATSHRINK, StreamEncoding.LZMA]
)
@pytest.mark.parametrize("thumb", [True, False, None])
def test_compressed_decodes_back_to_the_module(
    encoding: StreamEncoding, thumb: bool | None
) -> None:
    _old, new = _pair()
    data = encode_compressed(new, encoding=encoding, thumb=thumb)
    h = StreamHeader.from_bytes(data)
    assert not h.is_delta and h.base_size == 0
    if thumb is not None:
        assert h.filter == (StreamFilter.ARM_THUMB if thumb else StreamFilter.NONE)
    assert decode_stream(data) == new


def test_auto_filter_keeps_the_smaller_file() -> None:
    _old, new = _pair()
    sizes = [len(encode_compressed(new, thumb=t)) for t in (True, False)]
    assert len(encode_compressed(new)) == min(sizes)


def test_small_change_delta_is_a_small_fraction_of_the_module() -> None:
    old, new = _pair()
    assert len(encode_delta(old, new)) < 0.03 * len(new)


def test_decode_refuses_another_base_and_a_missing_one() -> None:
    old, new = _pair()
    d = encode_delta(old, new)
    with pytest.raises(ModuleFormatError, match="the patch is for base"):
        decode_stream(d, new)
    with pytest.raises(ModuleFormatError, match="needs its base"):
        decode_stream(d)


def test_header_crc_magic_version_and_truncation_are_refused() -> None:
    old, new = _pair()
    d = bytearray(encode_delta(old, new))
    bad = bytearray(d)
    bad[20] ^= 1
    with pytest.raises(ModuleFormatError, match="header CRC-32"):
        StreamHeader.from_bytes(bytes(bad))
    with pytest.raises(ModuleFormatError, match="not a streamed-update file"):
        StreamHeader.from_bytes(b"XXXX" + bytes(d[4:]))
    with pytest.raises(ModuleFormatError, match="needs 88 bytes"):
        StreamHeader.from_bytes(bytes(d[:40]))
    with pytest.raises(ModuleFormatError, match="payload of"):
        split_stream(bytes(d[:-1]))
    h = StreamHeader.from_bytes(bytes(d))
    with pytest.raises(ModuleFormatError, match="stream version 2"):
        StreamHeader.from_bytes(dataclasses.replace(h, version=2).to_bytes())


def test_decode_refuses_a_payload_that_is_not_its_target() -> None:
    _old, new = _pair()
    d = encode_compressed(new, thumb=False)
    h, payload = split_stream(d)
    other = dataclasses.replace(h, target_sha256=bytes(32)).to_bytes() + payload
    with pytest.raises(ModuleFormatError, match="decodes to"):
        decode_stream(other)


def test_block_size_grows_until_the_table_fits_the_header_limit() -> None:
    assert fit_block_size(256 * 1024) == DEFAULT_BLOCK_SIZE
    big = fit_block_size(8 * 1024 * 1024)
    assert big > DEFAULT_BLOCK_SIZE and block_size_problem(big, 8 * 1024 * 1024) is None
    assert block_size_problem(1000, 4096) is not None  # not a power of two, below 4096


def test_magic_cannot_be_read_as_a_module_start() -> None:
    first_word = int.from_bytes(MAGIC, "little")
    assert module_info_offset(first_word) == 0  # not a stack pointer: info read at +0
    assert is_stream(MAGIC + bytes(100)) and not is_stream(_pair()[1])


def test_thumb_filter_makes_bl_offsets_absolute_and_back() -> None:
    # bl at offset 0 and offset 8 to the same target: equal bytes after the filter
    def bl(src_off: int, target: int) -> bytes:
        rel = (target - (src_off + 4)) >> 1
        hi, lo = 0xF000 | ((rel >> 11) & 0x7FF), 0xF800 | (rel & 0x7FF)
        return hi.to_bytes(2, "little") + lo.to_bytes(2, "little")

    code = bl(0, 0x1000) + b"\x00\x20\x00\x20" + bl(8, 0x1000)
    enc = thumb_filter(code, encode=True)
    assert enc[0:4] == enc[8:12] and code[0:4] != code[8:12]
    assert thumb_filter(enc, encode=False) == code


def test_encoders_refuse_bad_requests() -> None:
    old, new = _pair()
    with pytest.raises(UsageError, match="empty"):
        encode_compressed(b"")
    with pytest.raises(UsageError, match="delta compression"):
        encode_delta(old, new, compression="lzma")
    with pytest.raises(UsageError, match="not a compression encoding"):
        encode_compressed(new, encoding=StreamEncoding.DELTA)
    with pytest.raises(UsageError, match="window bits"):
        encode_compressed(new, window_bits=20, thumb=False)


def test_make_header_fills_derived_fields() -> None:
    _old, new = _pair()
    h = make_header(new, b"x", encoding=StreamEncoding.DEFLATE, param=13)
    assert h.base_sha256 == bytes(32) and h.payload_size == 1
    assert h.to_json()["encoding"] == "deflate" and h.to_json()["base_sha256"] is None


def test_lzma_file_names_its_parameters_in_the_header_and_beats_deflate_on_code() -> None:
    _old, new = _pair()
    data = encode_compressed(new, encoding=StreamEncoding.LZMA, lzma_params=(12, 0, 1, 1))
    h, payload = split_stream(data)
    assert h.encoding == StreamEncoding.LZMA and h.to_json()["encoding"] == "lzma"
    assert lzma_props(h.param) == (12, 0, 1, 1)
    assert payload[0] == 0  # a raw LZMA1 stream: the range coder's first byte, no .lzma header
    assert len(data) < len(encode_compressed(new))
    with pytest.raises(UsageError, match="LZMA dictionary"):
        encode_compressed(new, encoding=StreamEncoding.LZMA, lzma_params=(16, 0, 1, 1))


def test_host_lzma_decode_stops_a_bomb_one_byte_past_its_target() -> None:
    param = lzma_param(12, 0, 1, 1)
    target = bytes(64 * 1024)
    payload = lzma_compress(bytes(2 * 1024 * 1024), param)  # 2 MB of zeros, a few hundred bytes
    bomb = make_header(target, payload, encoding=StreamEncoding.LZMA, param=param)
    with pytest.raises(ModuleFormatError, match=f"decodes to {len(target) + 1} bytes"):
        decode_stream(bomb.to_bytes() + payload)


def test_host_lzma_decode_refuses_a_corrupt_stream() -> None:
    _old, new = _pair()
    d = bytearray(encode_compressed(new, encoding=StreamEncoding.LZMA, thumb=False))
    h = StreamHeader.from_bytes(bytes(d))
    d[h.size] ^= 0xFF  # the first byte of a raw LZMA1 stream must be 0
    with pytest.raises(ModuleFormatError, match="LZMA decode failed"):
        decode_stream(bytes(d))
