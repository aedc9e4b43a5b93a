"""Unit tests for flashroom.particle.build: layout, tail, checksums, synthetic content."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from flashroom.errors import UsageError
from flashroom.particle.build import (
    build_module,
    code_like_bytes,
    dependencies_from_specs,
    dependency_from_spec,
    device_os_install,
    synthetic_module,
    synthetic_user_app,
)
from flashroom.particle.module_info import (
    ModuleDependency,
    ModuleFunction,
    ModuleInfo,
    PlatformId,
    read_module_info_at,
)

S = ModuleFunction.SYSTEM_PART
B = ModuleFunction.BOOTLOADER


def _checks(module: bytes) -> None:
    """Assert the spec 2.5 invariants of a built module."""
    n = len(module)
    info = read_module_info_at(module)
    assert info.module_end_address - info.module_start_address == n - 4
    assert info.module_end_address % 2 == 0
    assert module[n - 38 : n - 6] == hashlib.sha256(module[: n - 38]).digest()
    assert module[n - 4 :] == zlib.crc32(module[: n - 4]).to_bytes(4, "big")
    assert struct.unpack_from("<H", module, n - 6)[0] == 40
    assert struct.unpack_from("<H", module, n - 40)[0] == 0


def test_user_part_has_module_info_at_offset_zero_and_valid_tail() -> None:
    payload = b"\x01\x02\x03"
    m = build_module(
        payload,
        platform_id=PlatformId.ELECTRON,
        function=ModuleFunction.USER_PART,
        index=1,
        version=6,
        start_address=0x08080000,
        dependency=ModuleDependency(S, 2, 2302),
    )
    info = ModuleInfo.from_bytes(m, 0)
    assert info.module_start_address == 0x08080000
    assert info.module_function == ModuleFunction.USER_PART
    assert info.dependency == ModuleDependency(S, 2, 2302)
    assert info.dependency2.is_none
    assert m[24:27] == payload
    # 24 + 3 = 27 -> one pad byte, then product 0xffff/0xffff, suffix 36, CRC 4
    assert len(m) == 28 + 4 + 36 + 4
    assert m[27] == 0
    assert struct.unpack_from("<HH", m, len(m) - 44) == (0xFFFF, 0xFFFF)
    _checks(m)


def test_product_id_and_version_come_after_ffff_padding_words() -> None:
    m = build_module(
        b"\x00" * 16,
        platform_id=PlatformId.PHOTON,
        function=ModuleFunction.USER_PART,
        index=1,
        version=3,
        start_address=0x080A0000,
        product_id=1234,
        product_version=7,
    )
    n = len(m)
    assert struct.unpack_from("<HHHH", m, n - 48) == (0xFFFF, 0xFFFF, 1234, 7)
    assert len(m) == 24 + 16 + 8 + 36 + 4
    _checks(m)


@pytest.mark.parametrize(
    ("platform_id", "function", "index", "vector"),
    [
        (PlatformId.ELECTRON, B, 0, True),
        (PlatformId.ELECTRON, S, 1, True),
        (PlatformId.ELECTRON, S, 2, True),
        (PlatformId.ELECTRON, S, 3, False),
        (PlatformId.ELECTRON, ModuleFunction.USER_PART, 1, False),
        (PlatformId.PHOTON, S, 1, True),
        (PlatformId.PHOTON, S, 2, True),
        (PlatformId.P1, ModuleFunction.USER_PART, 1, False),
    ],
)
def test_default_vector_table_places_module_info_where_device_looks(
    platform_id: int, function: int, index: int, vector: bool
) -> None:
    m = build_module(
        b"\xaa" * 100,
        platform_id=platform_id,
        function=function,
        index=index,
        version=1,
        start_address=0x08020000,
    )
    (sp,) = struct.unpack_from("<I", m, 0)
    if vector:
        assert sp & 0x2FF10000 == 0x20000000
        assert ModuleInfo.from_bytes(m, 0x184).module_function == function
    else:
        assert ModuleInfo.from_bytes(m, 0).module_function == function
    assert read_module_info_at(m).module_index == index
    _checks(m)


def test_build_refuses_stack_pointer_that_fails_the_mask() -> None:
    with pytest.raises(UsageError, match="APP_START_MASK"):
        build_module(
            b"",
            platform_id=10,
            function=S,
            index=1,
            version=1,
            start_address=0x08020000,
            vector_table=True,
            stack_pointer=0x20010000,
        )


def test_build_refuses_version_wider_than_u16() -> None:
    with pytest.raises(UsageError, match="module_version"):
        build_module(
            b"", platform_id=10, function=5, index=1, version=70000, start_address=0x08080000
        )


@pytest.mark.parametrize("size", [456, 458, 1000, 15664, 131072, 262144])
def test_synthetic_system_module_is_exactly_the_requested_size(size: int) -> None:
    m = synthetic_module(
        size, platform_id=10, function=S, index=1, version=2302, start_address=0x08020000
    )
    assert len(m) == size
    _checks(m)


def test_synthetic_module_refuses_too_small_and_odd_sizes() -> None:
    with pytest.raises(UsageError, match="too small"):
        synthetic_module(100, platform_id=10, function=S, index=1, version=1, start_address=0)
    with pytest.raises(UsageError, match="even"):
        synthetic_module(1001, platform_id=10, function=5, index=1, version=1, start_address=0)


def test_synthetic_module_is_deterministic_and_seed_dependent() -> None:
    kw = {"platform_id": 10, "function": 5, "index": 1, "version": 6, "start_address": 0x08080000}
    a = synthetic_module(4096, seed=1, **kw)
    assert a == synthetic_module(4096, seed=1, **kw)
    assert a != synthetic_module(4096, seed=2, **kw)


def test_code_like_content_compresses_like_firmware_not_like_zeros_or_noise() -> None:
    data = code_like_bytes(65536, 3)
    ratio = len(zlib.compress(data, 6)) / len(data)
    assert 0.5 < ratio < 0.85
    # Thumb-ish: many push/pop/bl-prefix halfwords
    halfwords = struct.unpack(f"<{len(data) // 2}H", data)
    assert sum(1 for h in halfwords if h >> 11 == 0x1E) > 100  # BL prefix 0xF000-0xF7FF


def test_electron_device_os_install_matches_spec_2_4() -> None:
    mods = device_os_install("electron")
    infos = [read_module_info_at(m) for m in mods]
    got = [
        (
            i.module_function,
            i.module_index,
            i.module_version,
            i.module_start_address,
            i.dependency,
            i.dependency2,
        )
        for i in infos
    ]
    none = ModuleDependency()
    assert got == [
        (B, 0, 1004, 0x08000000, none, none),
        (S, 1, 2302, 0x08020000, ModuleDependency(S, 3, 2302), none),
        (S, 2, 2302, 0x08040000, ModuleDependency(S, 1, 2302), ModuleDependency(B, 0, 1003)),
        (S, 3, 2302, 0x08060000, ModuleDependency(S, 2, 110), none),
    ]
    for m, i in zip(mods, infos, strict=True):
        assert i.platform_id == PlatformId.ELECTRON
        # each fits its 128 KB region (bootloader 16 KB), spec 1.3
        limit = 0x4000 if i.module_function == B else 0x20000
        assert len(m) <= limit
        _checks(m)
    # index 3 has no vector table (spec 2.2); 1 and 2 do
    assert struct.unpack_from("<I", mods[3], 0)[0] == 0x08060000
    assert struct.unpack_from("<I", mods[1], 0)[0] & 0x2FF10000 == 0x20000000


@pytest.mark.parametrize("platform", ["photon", "p1"])
def test_photon_device_os_install_matches_spec_2_4(platform: str) -> None:
    mods = device_os_install(platform)
    infos = [read_module_info_at(m) for m in mods]
    assert [(i.module_function, i.module_index, i.module_version) for i in infos] == [
        (B, 0, 1006),
        (S, 1, 2302),
        (S, 2, 2302),
    ]
    assert infos[1].dependency == ModuleDependency(S, 2, 207)
    assert infos[2].dependency == ModuleDependency(S, 1, 2302)
    assert infos[2].dependency2 == ModuleDependency(B, 0, 1003)
    assert all(len(m) <= 0x40000 for m in mods[1:])
    for m in mods:
        _checks(m)


def test_device_os_install_refuses_gen3_platform() -> None:
    with pytest.raises(UsageError, match="unknown Gen2 platform"):
        device_os_install("argon")


def test_synthetic_user_app_depends_on_system_part_2_at_2302() -> None:
    app = synthetic_user_app(200 * 1024, platform="electron")
    assert len(app) == 204800
    info = read_module_info_at(app)
    assert info.module_start_address == 0x08080000
    assert info.module_version == 6
    assert info.dependency == ModuleDependency(S, 2, 2302)
    # dynalib table at start + 0x18 points into the module (spec 2.2)
    entries = struct.unpack_from("<4I", app, 24)
    assert all(0x08080000 < e < 0x08080000 + len(app) for e in entries)
    _checks(app)
    photon = synthetic_user_app(4096, platform="photon", version=9)
    assert read_module_info_at(photon).module_start_address == 0x080A0000
    assert read_module_info_at(photon).module_version == 9


def test_dependency_spec_accepts_names_and_numbers() -> None:
    assert dependency_from_spec("system:2:2302") == ModuleDependency(S, 2, 2302)
    assert dependency_from_spec("4:1:0x10") == ModuleDependency(S, 1, 16)
    assert dependencies_from_specs(["bootloader:0:1003"]) == (ModuleDependency(B, 0, 1003), None)
    with pytest.raises(UsageError, match="FUNCTION:INDEX:VERSION"):
        dependency_from_spec("system:2")
    with pytest.raises(UsageError, match="one of"):
        dependency_from_spec("sys:2:1")
    with pytest.raises(UsageError, match="two dependency slots"):
        dependencies_from_specs(["system:1:1"] * 3)
