"""Audit: hand-made modules for the module-format.md rules no fixture exercises.

Every module here is assembled byte by byte with ``struct``, ``hashlib`` and ``zlib`` (not with
flashroom's builder), so each test checks flashroom's parser and encoders against the
reference tool's rules as module-format.md states them (sections 3-6).
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from flashroom.errors import ModuleFormatError
from flashroom.particle.compress import (
    combine_modules,
    compress_module,
    decompress_module,
    split_modules,
)
from flashroom.particle.module import parse_module
from flashroom.particle.parser import find_prefix_offset, prefix_score

PREFIX = struct.Struct("<IIBBHHBBBBHBBH")
START = 0x08080000


def prefix_bytes(
    start: int,
    end: int,
    *,
    flags: int = 0,
    version: int = 6,
    platform: int = 10,
    function: int = 5,
    index: int = 1,
    dep: tuple[int, int, int] = (4, 2, 2302),
    dep2: tuple[int, int, int] = (0, 0, 0),
    reserved: int = 0,
) -> bytes:
    return PREFIX.pack(start, end, reserved, flags, version, platform, function, index, *dep, *dep2)


def ext(etype: int, body: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack("<HH", etype, 4 + len(body) if length is None else length) + body


def seal(buf: bytearray) -> bytes:
    """SHA-256 over [0, N-38) at N-38, then CRC-32 over [0, N-4) big-endian (module-format 4)."""
    n = len(buf)
    buf[n - 38 : n - 6] = hashlib.sha256(bytes(buf[: n - 38])).digest()
    buf[n - 4 :] = zlib.crc32(bytes(buf[: n - 4])).to_bytes(4, "big")
    return bytes(buf)


def module(
    *,
    head: bytes = b"",
    prefix_ext: bytes = b"",
    body: bytes = bytes(range(64)),
    suffix_ext: bytes = b"",
    product: bytes | None = b"\xff\xff\xff\xff",
    suffix_size: int | None = None,
    start: int = START,
    end: int | None = None,
    **prefix_kw: object,
) -> bytes:
    """[head][prefix][prefix_ext][body][suffix_ext][product][reserved sha size][crc]."""
    tail = suffix_ext + (product or b"")
    size = 36 + len(tail) if suffix_size is None else suffix_size
    total = len(head) + 24 + len(prefix_ext) + len(body) + len(tail) + 36 + 4
    e = start + total - 4 if end is None else end
    buf = bytearray(head)
    buf += prefix_bytes(start, e, **prefix_kw)  # type: ignore[arg-type]
    buf += prefix_ext + body + tail
    buf += struct.pack("<H", 0) + bytes(32) + struct.pack("<H", size) + bytes(4)
    return seal(buf)


def place(data: bytearray, offset: int, **kw: object) -> None:
    """Write a prefix at ``offset`` whose addresses make ``len(data)`` exactly its size."""
    n = len(data)
    data[offset : offset + 24] = prefix_bytes(START, START + n - 4, **kw)  # type: ignore[arg-type]


# --- 3. offset search and plausibility score -------------------------------------------------


def test_score_is_seven_for_a_perfect_prefix_and_loses_one_point_per_failed_check() -> None:
    n = 400
    base = bytearray(n)
    place(base, 0)
    assert prefix_score(base, 0) == 7
    one_off: list[dict[str, object]] = [
        {"platform": 103},  # Bluz is not in ModuleInfo.Platform
        {"platform": 38},  # sulu: device-constants 4.2.1 only
        {"function": 10},  # unknown module function
        {"dep": (11, 0, 0)},  # unknown dep-1 function
        {"dep2": (12, 0, 0)},  # unknown dep-2 function
        {"flags": 0x20},  # unknown flag bit
    ]
    for kw in one_off:
        d = bytearray(n)
        place(d, 0, **kw)
        assert prefix_score(d, 0) == 6, kw
    # the size point: the file is longer than end - start + 4
    d = bytearray(n + 8)
    d[0:24] = prefix_bytes(START, START + n - 4)
    assert prefix_score(d, 0) == 6
    # every point lost at once: 1
    d = bytearray(n + 8)
    d[0:24] = prefix_bytes(
        START, START + n - 4, platform=103, function=10, dep=(11, 0, 0), dep2=(12, 0, 0), flags=0x40
    )
    assert prefix_score(d, 0) == 1


@pytest.mark.parametrize(
    ("why", "kw", "end_delta"),
    [
        ("end equal to start", {}, None),
        ("file shorter than end - start + 4", {}, 1),
        ("function NONE", {"function": 0}, 0),
        ("dep-1 NONE with an index", {"dep": (0, 1, 0)}, 0),
        ("dep-1 NONE with a version", {"dep": (0, 0, 5)}, 0),
        ("dep-2 NONE with an index", {"dep2": (0, 2, 0)}, 0),
        ("dep-2 NONE with a version", {"dep2": (0, 0, 1)}, 0),
    ],
)
def test_score_is_zero_for_an_implausible_prefix(
    why: str, kw: dict[str, object], end_delta: int | None
) -> None:
    n = 300
    d = bytearray(n)
    end = START if end_delta is None else START + n - 4 + end_delta
    d[0:24] = prefix_bytes(START, end, **kw)  # type: ignore[arg-type]
    assert prefix_score(d, 0) == 0, why


def test_score_is_zero_when_fewer_than_24_bytes_remain() -> None:
    d = bytearray(100)
    place(d, 0)
    assert prefix_score(d, 77) == 0  # 23 bytes left
    assert prefix_score(d, 0) == 7


def test_dependency_slot_with_known_function_and_any_index_scores_normally() -> None:
    d = bytearray(200)
    place(d, 0, dep=(2, 0, 0), dep2=(4, 3, 65535))
    assert prefix_score(d, 0) == 7


def test_preferred_order_first_perfect_wins_even_if_a_lower_offset_is_also_perfect() -> None:
    n = 1200
    d = bytearray(n)
    place(d, 0x184)
    place(d, 0x200)
    place(d, 0xC0)
    assert find_prefix_offset(d) == (0x200, 7)


def test_ties_go_to_the_earliest_offset_in_the_preferred_order() -> None:
    n = 1200
    d = bytearray(n)
    place(d, 0xC0, platform=103)  # 6
    place(d, 0x184, platform=103)  # 6, earlier in the order though numerically larger
    assert find_prefix_offset(d) == (0x184, 6)
    # a scanned offset with the same best score does not displace a preferred one
    d = bytearray(n)
    place(d, 0x10C, platform=103)  # 6
    place(d, 8, platform=103)  # 6
    assert find_prefix_offset(d) == (0x10C, 6)


def test_strictly_greater_score_from_the_scan_beats_a_preferred_offset() -> None:
    n = 1200
    d = bytearray(n)
    place(d, 0x10C, platform=103, flags=0x20)  # 5
    place(d, 8, platform=103)  # 6
    place(d, 40, platform=103)  # 6 again: not strictly greater, offset 8 stays
    assert find_prefix_offset(d) == (8, 6)


def test_scan_returns_the_first_perfect_offset() -> None:
    n = 1200
    d = bytearray(n)
    place(d, 0x100, platform=103)  # 6, seen first
    place(d, 0x300)  # 7
    place(d, 0x340)  # 7, later
    assert find_prefix_offset(d) == (0x300, 7)


def test_all_scores_zero_gives_offset_zero() -> None:
    assert find_prefix_offset(bytes(500)) == (0, 0)
    assert find_prefix_offset(b"\xff" * 500) == (0, 0)  # start == end


def test_scan_range_ends_at_file_length_minus_64_inclusive() -> None:
    n = 200  # limit min(8192, 200 - 36 - 24 - 4) = 136
    d = bytearray(n)
    place(d, 136)
    assert find_prefix_offset(d) == (136, 7)
    d = bytearray(n)
    place(d, 140)  # past the limit: never scored
    assert find_prefix_offset(d) == (0, 0)


def test_scan_range_ends_at_8192_inclusive() -> None:
    n = 8192 + 64 + 40
    d = bytearray(n)
    place(d, 8192)
    assert find_prefix_offset(d) == (8192, 7)
    d = bytearray(n)
    place(d, 8196)
    assert find_prefix_offset(d) == (0, 0)


def test_scan_only_visits_multiples_of_four() -> None:
    d = bytearray(600)
    place(d, 0x102)
    assert find_prefix_offset(d) == (0, 0)


def test_parse_uses_the_fallback_offset_and_reports_it() -> None:
    head = bytes(32)  # P2 bootloader style: prefix at 0x20, found by the scan
    m = parse_module(module(head=head, platform=32, function=2, index=0, dep=(0, 0, 0)))
    assert m.prefix_offset == 32
    assert m.to_reference_json()["prefixInfo"]["prefixOffset"] == 32


# --- 5.2 prefix extensions -------------------------------------------------------------------


def test_prefix_extensions_padded_end_sets_prefix_size_and_relative_offsets() -> None:
    head = bytes(0x200)
    name = ext(0x11, b"cat")  # 7 bytes
    end = ext(0, b"\x00" * 5)  # padded END, 9 bytes
    m = parse_module(module(head=head, prefix_ext=name + end, flags=0x10, platform=12))
    assert m.prefix_offset == 0x200
    assert m.prefix_size == 24 + 7 + 9
    assert m.prefix_extensions is not None
    assert [(e.type, e.offset, e.length) for e in m.prefix_extensions] == [
        (0x11, 24, 7),
        (0, 31, 9),
    ]
    assert m.prefix_extensions[0].fields["name"] == "cat"
    ref = m.to_reference_json()["prefixInfo"]
    assert list(ref)[-3:] == ["prefixSize", "extensions", "prefixOffset"]


def test_prefix_extensions_without_end_fail_to_parse() -> None:
    with pytest.raises(ModuleFormatError, match="Prefix extensions should end with END"):
        parse_module(module(prefix_ext=ext(0x11, b"abc"), flags=0x10))


def test_prefix_extensions_zero_length_is_invalid_extension_length() -> None:
    with pytest.raises(ModuleFormatError, match="Invalid extension length"):
        parse_module(module(prefix_ext=ext(0x11, b"abcd", length=0) + ext(0), flags=0x10))


def test_prefix_extension_walk_stops_at_type_ffff_and_then_lacks_end() -> None:
    with pytest.raises(ModuleFormatError, match="should end with END"):
        parse_module(module(prefix_ext=ext(0xFFFF, b"", length=8) + ext(0), flags=0x10))


def test_prefix_extension_running_past_the_file_ends_the_walk_without_end() -> None:
    with pytest.raises(ModuleFormatError, match="should end with END"):
        parse_module(module(prefix_ext=ext(0x11, b"", length=0xF000) + ext(0), flags=0x10))


def test_prefix_extension_walk_bound_is_slice_length_minus_40() -> None:
    pre = ext(0x1234, b"\x00" * 4)  # unknown type, 8 bytes, kept raw
    # [prefix 24][pre 8][reserved 2][sha 32][size 2][crc 4]: N - 40 == 32 is `reserved`.
    buf = bytearray(module(prefix_ext=pre, body=b"", product=None, flags=0x10))
    n = len(buf)
    assert n - 40 == 24 + len(pre)
    buf[n - 40 : n - 36] = ext(0)  # an END at exactly len - 40 (checksums left stale)
    with pytest.raises(ModuleFormatError, match="should end with END"):
        parse_module(bytes(buf))
    # One word earlier (len - 44) an END is read.
    ok = parse_module(module(prefix_ext=pre + ext(0), body=b"", product=None, flags=0x10))
    assert ok.prefix_size == 24 + len(pre) + 4


def test_prefix_extensions_only_read_when_flag_0x10_is_set() -> None:
    m = parse_module(module(prefix_ext=ext(0x11, b"abc") + ext(0), flags=0))
    assert m.prefix_extensions is None
    assert m.prefix_size == 24
    assert "extensions" not in m.to_reference_json()["prefixInfo"]


def test_broken_prefix_extensions_do_not_affect_the_score() -> None:
    # Test-mode parse in the score: flag 0x10 with no END still scores 7 at offset 0 ...
    data = module(prefix_ext=ext(0x11, b"abc"), flags=0x10)
    assert find_prefix_offset(data) == (0, 7)
    # ... and then the real parse fails.
    with pytest.raises(ModuleFormatError):
        parse_module(data)


# --- 4. suffix variants and the suffix extension walk -----------------------------------------


@pytest.mark.parametrize("size", [0, 1, 35, 36, 39])
def test_suffix_size_below_40_reports_product_minus_one(size: int) -> None:
    m = parse_module(module(product=b"\x34\x12\x78\x56", suffix_size=size))
    assert (m.suffix.product_id, m.suffix.product_version) == (-1, -1)
    assert m.suffix.suffix_size == size
    assert m.suffix.extensions == ()


def test_suffix_variant_b_40_reads_raw_product_fields() -> None:
    m = parse_module(module(product=struct.pack("<HH", 26, 3)))
    assert (m.suffix.product_id, m.suffix.product_version, m.suffix.suffix_size) == (26, 3, 40)
    assert "extensions" not in m.to_reference_json()["suffixInfo"]


def test_suffix_variant_c_extensions_then_end_then_raw_product() -> None:
    sec = ext(0x13, b"\x01")  # SECURITY_MODE 5 bytes
    m = parse_module(module(suffix_ext=sec + ext(0), product=struct.pack("<HH", 7, 9)))
    assert m.suffix.suffix_size == 49
    assert (m.suffix.product_id, m.suffix.product_version) == (7, 9)
    assert [e.type for e in m.suffix.extensions] == [0x13, 0]
    assert m.suffix.extensions[0].fields == {"security_mode": 1}
    n = len(m.data)
    assert m.suffix.extensions[0].offset == n - 4 - 49  # file-absolute


def test_suffix_variant_d_product_data_extension_agrees_with_fixed_read() -> None:
    dyn = ext(0x2, struct.pack("<III", 0x08600000, 0x1000, 0x2000))
    pd = ext(0x1, struct.pack("<HHH", 0xFFFF, 1234, 5))
    m = parse_module(module(suffix_ext=dyn + pd, product=None))
    assert m.suffix.suffix_size == 36 + 16 + 10
    assert (m.suffix.product_id, m.suffix.product_version) == (1234, 5)
    assert m.suffix.extensions[1].fields == {"product_id": 1234, "product_version": 5}
    ref = m.to_reference_json()["suffixInfo"]["extensions"][0]
    assert ref["moduleStartAddress"] == "8600000"
    assert ref["dynalibLoadAddress"] == "1000"


def test_suffix_walk_stops_on_type_ffff_without_error() -> None:
    m = parse_module(module(suffix_ext=ext(0xFFFF, b"\x00" * 4) + ext(0)))
    assert m.suffix.extensions == ()


def test_suffix_walk_stops_on_an_extension_running_past_the_file_end() -> None:
    m = parse_module(module(suffix_ext=ext(0x11, b"ab") + ext(0x11, b"cd", length=0x7000)))
    assert [e.fields["name"] for e in m.suffix.extensions] == ["ab"]


def test_suffix_walk_zero_length_extension_throws() -> None:
    with pytest.raises(ModuleFormatError, match="Invalid extension length"):
        parse_module(module(suffix_ext=ext(0x11, b"ab", length=0) + ext(0)))


def test_suffix_walk_continues_without_end_until_n_minus_40() -> None:
    # No END at all: the walk runs through the raw product bytes? No: it stops at N-40, and the
    # product bytes (0xFFFF) are type INVALID anyway. Use product bytes that form an extension.
    m = parse_module(module(suffix_ext=ext(0x11, b"ab") + ext(0x1234, b""), product=ext(0x11, b"")))
    # NAME(6) + unknown(4) + the product word pair read as NAME of length 4 (at N-44 < N-40)
    assert [e.type for e in m.suffix.extensions] == [0x11, 0x1234, 0x11]
    assert m.suffix.product_id == 0x11


def test_suffix_walk_start_at_offset_zero_is_not_read() -> None:
    # suffixSize = N - 4 puts the walk start at 0; "while pos > 0" never reads it.
    start = 0x00080011  # low half reads as type NAME, high half as length 8
    data = module(start=start)
    n = len(data)
    m = parse_module(module(start=start, suffix_size=n - 4))
    assert m.suffix.suffix_size == n - 4
    assert m.suffix.extensions == ()


def test_short_extensions_read_fields_at_fixed_positions() -> None:
    # PRODUCT_DATA declared 4 bytes long still reads product id/version at +6/+8
    short_pd = ext(0x1, b"", length=4)
    name = ext(0x11, b"abcd")
    m = parse_module(module(suffix_ext=short_pd + name + ext(0)))
    pd = m.suffix.extensions[0]
    assert pd.length == 4
    assert pd.fields == {"product_id": 8, "product_version": 0x6261}
    assert m.suffix.extensions[1].fields["name"] == "abcd"
    # HASH of length 4: hash type/length read from the next bytes, hash empty
    m2 = parse_module(module(suffix_ext=ext(0x10, b"", length=4) + ext(0x11, b"z") + ext(0)))
    h = m2.suffix.extensions[0]
    assert h.fields == {"hash_type": 0x11, "hash_length": 0, "hash": b""}
    # ASSET_DEPENDENCY whose hash length runs past the extension: hash reads on, name empty
    ad = ext(0x12, b"\x00\x08" + b"\xaa\xbb")  # says 8 hash bytes, holds 2
    m3 = parse_module(module(suffix_ext=ad + ext(0x11, b"nm") + ext(0)))
    f = m3.suffix.extensions[0].fields
    assert f["hash"] == b"\xaa\xbb" + ext(0x11, b"nm")[:6]
    assert f["name"] == ""


def test_dependency_extension_fields() -> None:
    dep = ext(0x3, struct.pack("<BBHI", 7, 0, 34, 0xDEADBEEF))
    m = parse_module(module(suffix_ext=dep + ext(0)))
    assert m.suffix.extensions[0].fields == {
        "module_function": 7,
        "module_index": 0,
        "module_version": 34,
        "target_id": 0xDEADBEEF,
    }
    ref = m.to_reference_json()["suffixInfo"]["extensions"][0]
    assert ref["targetId"] == 0xDEADBEEF and ref["moduleVersion"] == 34


def test_all_ff_suffix_reads_65535_and_skips_extensions() -> None:
    buf = bytearray(module())
    n = len(buf)
    buf[n - 44 :] = b"\xff" * 44
    m = parse_module(bytes(buf))
    s = m.suffix
    assert (s.product_id, s.product_version, s.reserved, s.suffix_size) == (
        65535,
        65535,
        65535,
        65535,
    )
    assert s.sha256 == b"\xff" * 32
    assert s.extensions == ()
    assert not m.crc_ok
    assert m.to_reference_json()["suffixInfo"]["crcBlock"] == "ffffffff"


def test_file_shorter_than_the_fixed_suffix_reads_is_an_error() -> None:
    d = bytearray(43)
    d[0:24] = prefix_bytes(START, START + 39)
    with pytest.raises(ModuleFormatError):
        parse_module(bytes(d))


# --- CRC-32 and SHA-256 ---------------------------------------------------------------------


def test_crc_is_over_the_whole_file_but_the_last_4_bytes_stored_big_endian() -> None:
    data = module(head=bytes(0x184), platform=10, function=4, index=1, dep=(0, 0, 0))
    m = parse_module(data)
    assert m.prefix_offset == 0x184
    assert m.crc_ok
    assert m.crc_computed == zlib.crc32(data[:-4])
    ref = m.to_reference_json()["crc"]
    assert ref["storedCrc"] == data[-4:].hex()
    le = data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "little")
    assert not parse_module(le).crc_ok
    # a change in the vector table is covered too
    flipped = b"\x01" + data[1:]
    assert not parse_module(flipped).crc_ok


def test_sha256_covers_everything_before_the_hash_including_product_and_extensions() -> None:
    data = module(suffix_ext=ext(0x11, b"n") + ext(0), product=struct.pack("<HH", 1, 2))
    m = parse_module(data)
    assert m.sha256_ok
    assert m.sha256_computed == hashlib.sha256(data[:-38]).digest()
    n = len(data)
    buf = bytearray(data)
    buf[n - 40] ^= 1  # the reserved u16, just before the hash
    assert not parse_module(bytes(buf)).sha256_ok


# --- 6.1 compression -----------------------------------------------------------------------


def _inflate(comp: bytes, psize: int) -> bytes:
    hs = struct.unpack_from("<H", comp, psize)[0]
    d = zlib.decompressobj(-15)
    return d.decompress(comp[psize + hs :])


def test_compress_without_drop_module_info_deflates_the_whole_file() -> None:
    src = module(head=bytes(0x184), function=4, index=2, dep=(4, 1, 2302), body=bytes(500))
    comp = compress_module(src)
    m = parse_module(comp)
    assert m.prefix_offset == 0  # the vector table is inside the stream
    assert m.info.flags == 0x02
    assert m.info.module_start_address == START
    hs, method, wb, size = struct.unpack_from("<HBBI", comp, 24)
    assert (hs, method, wb, size) == (8, 0, 0, len(src))
    assert _inflate(comp, 24) == src
    stream_len = len(comp) - 24 - 8 - 40 - 4
    assert m.info.module_end_address == START + 24 + 8 + stream_len + 40
    assert len(comp) == m.info.module_end_address - START + 4
    assert comp[-44:-38] == src[-44:-38]  # product + reserved copied unchanged
    assert m.crc_ok and m.sha256_ok
    assert decompress_module(comp) == src


def test_compress_with_drop_module_info_deflates_only_the_body() -> None:
    pe = ext(0x11, b"asset") + ext(0)
    sx = ext(0x10, b"\x00\x02\xab\xcd") + ext(0x1, struct.pack("<HHH", 0xFFFF, 0xFFFF, 0xFFFF))
    body = b"payload-" * 40
    src = module(
        prefix_ext=pe, body=body, suffix_ext=sx, product=None, flags=0x11, function=9, dep=(0, 0, 0)
    )
    psize = 24 + len(pe)
    ssize = 36 + len(sx)
    comp = compress_module(src)
    _hs, _method, _wb, size = struct.unpack_from("<HBBI", comp, psize)
    assert size == len(body)
    assert _inflate(comp, psize) == body
    m = parse_module(comp)
    assert m.info.flags == 0x13
    assert m.prefix_size == psize
    assert comp[-4 - ssize : -4 - 38] == src[-4 - ssize : -4 - 38]
    back = decompress_module(comp)
    assert back == src  # prefix + body + original suffix, end/flags/checksums recomputed


def test_compress_refuses_drop_module_info_with_a_vector_table() -> None:
    src = module(head=bytes(0x184), flags=0x01, function=4, dep=(0, 0, 0))
    with pytest.raises(ModuleFormatError, match="DROP_MODULE_INFO"):
        compress_module(src)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"flags": 0x02}, "already compressed"),
        ({"flags": 0x04}, "combined"),
        ({"suffix_size": 35, "product": None}, "suffix size"),
    ],
)
def test_compress_refusals(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ModuleFormatError, match=match):
        compress_module(module(**kw))  # type: ignore[arg-type]


def test_compress_refuses_a_size_mismatch() -> None:
    data = module()
    with pytest.raises(ModuleFormatError, match="Invalid size of the module data"):
        compress_module(data + b"\x00\x00\x00\x00")
    with pytest.raises(ModuleFormatError, match="Invalid size of the module data"):
        compress_module(module(end=START + 10))


def _compressed(
    *, hs: int = 8, method: int = 0, wb: int = 0, size_delta: int = 0, extra: bytes = b""
) -> bytes:
    body = bytes(range(256)) * 2
    src = module(body=body)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = c.compress(src) + c.flush()
    hdr = struct.pack("<HBBI", hs, method, wb, len(src) + size_delta) + extra
    tail = src[-44:]
    total = 24 + len(hdr) + len(stream) + len(tail)
    buf = bytearray(prefix_bytes(START, START + total - 4, flags=0x02))
    buf += hdr + stream + tail
    return seal(buf)


def test_decompress_accepts_window_bits_0_and_8_to_15_and_a_larger_header() -> None:
    for wb in (0, 8, 9, 15):
        assert len(decompress_module(_compressed(wb=wb))) > 0
    out = decompress_module(_compressed(hs=12, extra=b"\x01\x02\x03\x04"))
    assert parse_module(out).crc_ok


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"hs": 7}, "size"),
        ({"hs": 0}, "size"),
        ({"hs": 0x1000}, "size"),  # larger than the data that follows: does not fit
        ({"method": 1}, "method"),
        ({"wb": 7}, "window_bits"),
        ({"wb": 16}, "window_bits"),
        ({"size_delta": 1}, "original_size"),
        ({"size_delta": -1}, "original_size"),
    ],
)
def test_decompress_checks(kw: dict[str, int], field: str) -> None:
    with pytest.raises(ModuleFormatError) as ei:
        decompress_module(_compressed(**kw))  # type: ignore[arg-type]
    assert field in (ei.value.field or "")


def test_decompress_refuses_a_size_mismatch_and_an_uncompressed_module() -> None:
    with pytest.raises(ModuleFormatError, match="Invalid size"):
        decompress_module(_compressed() + b"\x00\x00\x00\x00")
    with pytest.raises(ModuleFormatError, match="not compressed"):
        decompress_module(module())


# --- 6.2 combine / split -------------------------------------------------------------------


def _three() -> list[bytes]:
    return [
        module(head=bytes(0x184), function=4, index=1, dep=(4, 3, 2302), body=b"a" * 40),
        module(head=bytes(0x184), function=4, index=2, dep=(4, 1, 2302), body=b"b" * 48),
        module(function=5, index=1, body=b"c" * 32),
    ]


def test_combine_sets_combined_on_all_but_the_last_and_recomputes_checksums() -> None:
    mods = _three()
    out = combine_modules(mods)
    assert len(out) == sum(map(len, mods))
    a, b = len(mods[0]), len(mods[1])
    p1, p2, p3 = out[:a], out[a : a + b], out[a + b :]
    assert p1[0x184 + 9] == 0x04 and p2[0x184 + 9] == 0x04
    assert p3 == mods[2]
    for p in (p1, p2):
        assert zlib.crc32(p[:-4]).to_bytes(4, "big") == p[-4:]
        assert hashlib.sha256(p[:-38]).digest() == p[-38:-6]
    # the reference parser sees the first prefix, the last suffix, a failing whole-file CRC
    m = parse_module(out)
    assert m.prefix_offset == 0x184 and m.info.module_index == 1
    assert m.suffix.sha256 == mods[2][-38:-6]
    assert not m.crc_ok
    assert split_modules(out) == mods


def test_combine_refuses_size_mismatch_and_already_combined() -> None:
    with pytest.raises(ModuleFormatError, match="Invalid size"):
        combine_modules([module(), module() + b"\x00"])
    with pytest.raises(ModuleFormatError, match="already combined"):
        combine_modules([module(flags=0x04), module()])


def test_combine_of_one_module_returns_it_unchanged() -> None:
    m = module()
    assert combine_modules([m]) == m


def test_split_errors() -> None:
    mods = _three()
    out = combine_modules(mods)
    with pytest.raises(ModuleFormatError, match="Invalid module data"):
        split_modules(out + bytes(100))  # bytes left over after the last module
    first = out[: len(mods[0])]  # still has COMBINED, nothing follows
    with pytest.raises(ModuleFormatError, match="Invalid module data"):
        split_modules(first)
    with pytest.raises(ModuleFormatError, match="Invalid size of the module data"):
        split_modules(first + bytes(59))  # fewer than 24 + 36 bytes for the next module
    with pytest.raises(ModuleFormatError, match="Invalid size of the module data"):
        split_modules(out[:-1])  # the last module needs one more byte
    with pytest.raises(ModuleFormatError, match="Invalid size of the module data"):
        split_modules(b"")
    bad = bytearray(100)
    bad[0:24] = prefix_bytes(START + 8, START)  # end below start: scores 0, offset 0 used
    with pytest.raises(ModuleFormatError, match="end address"):
        split_modules(bytes(bad))


def test_split_of_a_single_uncombined_module_returns_it() -> None:
    m = module(head=bytes(0x184), function=4, index=2, dep=(0, 0, 0))
    assert split_modules(m) == [m]


def test_compressed_modules_combine_split_and_decompress_back() -> None:
    mods = _three()
    comps = [compress_module(m) for m in mods]
    out = combine_modules(comps)
    parts = split_modules(out)
    assert parts == comps
    assert [decompress_module(p) for p in parts] == mods
    m = parse_module(out)
    assert m.combined is not None and len(m.combined) == 3
    assert all(p.module.compressed is not None for p in m.combined)


def test_all_ff_buffer_fails_on_prefix_extensions_without_end() -> None:
    # Every score is 0 (end == start), so offset 0; flags 0xFF include PREFIX_EXTENSIONS and the
    # first extension has type 0xFFFF, so the list has no END (module-format.md 5.2).
    with pytest.raises(ModuleFormatError, match="Prefix extensions should end with END"):
        parse_module(b"\xff" * 300)
