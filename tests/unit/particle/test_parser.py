"""Unit tests for the reference-compatible parser: offset search, suffix variants, extensions."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from flashroom.errors import ModuleFormatError
from flashroom.particle.build import build_module, synthetic_module
from flashroom.particle.module import parse_module
from flashroom.particle.module_info import ModuleDependency, ModuleInfo
from flashroom.particle.parser import find_prefix_offset, prefix_score, read_suffix
from flashroom.particle.suffix import ExtensionType, encode_extension

RawModule = Callable[..., bytes]


def test_gen2_system_part_prefix_found_at_0x184_with_perfect_score() -> None:
    m = synthetic_module(
        20000, platform_id=10, function=4, index=1, version=2302, start_address=0x08020000
    )
    assert find_prefix_offset(m) == (0x184, 7)
    assert prefix_score(m, 0) == 0  # SP as start, a handler address as end: end < start


def test_score_is_zero_when_empty_dependency_slot_has_nonzero_version() -> None:
    m = bytearray(build_module(b"\0" * 32, platform_id=10, function=5, index=1, version=1,
                               start_address=0x08080000))  # fmt: skip
    assert prefix_score(m, 0) == 7
    struct.pack_into("<BBH", m, 20, 0, 0, 5)  # dependency2: function NONE, version 5
    assert prefix_score(m, 0) == 0


def test_score_points_for_unknown_platform_flags_and_padding() -> None:
    m = build_module(b"\0" * 32, platform_id=103, function=5, index=1, version=1,
                     start_address=0x1000, flags=0x80)  # fmt: skip
    # 1 + function + dep1 + dep2 + exact length; unknown platform 103 and flag 0x80 cost a point
    assert prefix_score(m, 0) == 5
    assert prefix_score(m + b"\xff" * 8, 0) == 4  # padded: length no longer exact


def test_fallback_scan_takes_best_score_at_unusual_offset(raw_module: RawModule) -> None:
    m = raw_module(head=b"\xee" * 32, platform_id=129)  # unknown platform: never scores 7
    off, score = find_prefix_offset(m)
    assert (off, score) == (32, 6)
    assert parse_module(m).prefix_offset == 32


def test_all_zero_scores_choose_offset_zero() -> None:
    assert find_prefix_offset(b"\0" * 200) == (0, 0)


def test_36_byte_suffix_reports_product_fields_as_minus_one(raw_module: RawModule) -> None:
    s = read_suffix(raw_module(product=None))
    assert (s.suffix_size, s.product_id, s.product_version) == (36, -1, -1)


def test_product_id_and_version_read_from_40_byte_suffix() -> None:
    m = build_module(b"\0" * 8, platform_id=6, function=5, index=1, version=1,
                     start_address=0x080A0000, product_id=26, product_version=3)  # fmt: skip
    s = parse_module(m).suffix
    assert (s.suffix_size, s.product_id, s.product_version) == (40, 26, 3)


def test_suffix_extensions_walk_to_end(raw_module: RawModule) -> None:
    ext = encode_extension(ExtensionType.NAME, b"cat.jpg") + encode_extension(
        ExtensionType.SECURITY_MODE, b"\x01"
    )
    ext += encode_extension(ExtensionType.END, b"")
    m = parse_module(raw_module(suffix_ext=ext))
    exts = m.suffix.extensions
    assert [e.type for e in exts] == [0x11, 0x13, 0]
    assert exts[0].fields["name"] == "cat.jpg"
    assert exts[1].fields == {"security_mode": 1}
    assert exts[0].offset == len(m.data) - 4 - m.suffix.suffix_size  # file-absolute
    assert m.ok


def test_zero_length_suffix_extension_is_invalid_extension_length(raw_module: RawModule) -> None:
    bad = struct.pack("<HH", ExtensionType.NAME, 0) + b"\0" * 4
    with pytest.raises(ModuleFormatError, match="Invalid extension length") as e:
        parse_module(raw_module(suffix_ext=bad))
    assert e.value.field == "suffix_extension.length"
    assert e.value.offset is not None


def test_prefix_extensions_set_prefix_size_and_relative_offsets(raw_module: RawModule) -> None:
    ext = encode_extension(ExtensionType.ASSET_DEPENDENCY, b"\x00\x02\xab\xcdlogo.png")
    ext += encode_extension(ExtensionType.END, b"\0" * 3)  # padded END
    m = parse_module(raw_module(flags=0x10, prefix_ext=ext))
    assert m.prefix_size == 24 + len(ext)
    assert m.prefix_extensions is not None
    dep = m.prefix_extensions[0]
    assert dep.offset == 24
    assert dep.fields == {"hash_type": 0, "hash_length": 2, "hash": b"\xab\xcd", "name": "logo.png"}
    ref = m.to_reference_json()["prefixInfo"]
    assert list(ref)[-2:] == ["extensions", "prefixOffset"]


def test_prefix_extensions_without_end_fail(raw_module: RawModule) -> None:
    ext = encode_extension(ExtensionType.NAME, b"abc")
    m = raw_module(flags=0x10, prefix_ext=ext, body=b"\xff" * 64)
    with pytest.raises(ModuleFormatError, match="should end with END"):
        parse_module(m)


def test_all_ff_suffix_reads_65535_and_skips_extensions(raw_module: RawModule) -> None:
    m = bytearray(raw_module())
    m[-44:] = b"\xff" * 44
    mod = parse_module(bytes(m))
    assert mod.suffix.suffix_size == 65535
    assert mod.suffix.extensions == ()
    assert not mod.crc_ok and not mod.ok


@pytest.mark.parametrize(("size", "field"), [(0, "file"), (10, "module_info_t"),
                                              (30, "module_info_t")])  # fmt: skip
def test_short_files_fail_naming_field_and_offset(size: int, field: str) -> None:
    with pytest.raises(ModuleFormatError) as e:
        parse_module(b"\x01" * size, "f.bin")
    assert e.value.field == field
    assert "offset" in str(e.value)


def test_crc_mismatch_is_a_failed_check_not_an_error() -> None:
    m = bytearray(build_module(b"\0" * 40, platform_id=10, function=5, index=1, version=1,
                               start_address=0x08080000))  # fmt: skip
    m[30] ^= 0xFF
    mod = parse_module(bytes(m))
    assert not mod.crc_ok and not mod.sha256_ok and mod.size_ok
    assert {c.name for c in mod.checks() if not c.ok} == {"crc", "sha256"}


def test_to_json_uses_integers_and_lists_dependencies() -> None:
    m = build_module(b"\0" * 8, platform_id=10, function=5, index=1, version=6,
                     start_address=0x08080000,
                     dependency=ModuleDependency(4, 2, 2302))  # fmt: skip
    j = parse_module(m, "app.bin").to_json()
    assert j["file"] == "app.bin"
    assert j["prefix"]["module_start_address"] == 0x08080000
    assert j["prefix"]["module_function_name"] == "USER_PART"
    assert j["prefix"]["dependencies"] == [
        {"slot": 1, "module_function": 4, "module_function_name": "SYSTEM_PART",
         "module_index": 2, "module_version": 2302}
    ]  # fmt: skip
    assert j["crc"]["ok"] is True and j["sha256_ok"] is True
    assert j["compressed"] is None and j["combined"] is None
    assert len(j["suffix"]["sha256"]) == 64


def test_module_info_round_trips_through_bytes() -> None:
    info = ModuleInfo(1, 2, 3, 4, 5, 6, 7, 8, ModuleDependency(1, 2, 3), ModuleDependency(4, 5, 6))
    assert ModuleInfo.from_bytes(info.to_bytes()) == info
