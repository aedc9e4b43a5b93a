"""The real Device OS 2.3.1 build, patched (fixture ``devos_build``, built once per run).

What is true, and tested here: with flashroom's changes applied, all three system parts differ
from stock, because change 5 gives them version 2350 (spec 9). Idx 1 (system-part2) and idx 3
(system-part1) differ *only* in their module_info versions and dependency versions, and so in
the SHA-256 and CRC-32 that cover them: put the stock versions back and they are byte for byte
the stock fixtures. Only idx 2 (system-part3, which holds the HAL, spec 9) changes code. The
bootloader is byte for byte stock 1006.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from flashroom.devos.changes import PATCHED_SYSTEM_VERSION, STOCK_SYSTEM_VERSION
from flashroom.devos.manifest import Manifest
from flashroom.errors import BuildError
from flashroom.particle.module import parse_module
from flashroom.particle.module_info import ModuleFunction

STOCK = {
    "bootloader": "electron-bootloader@v2.3.1.bin",
    "system-part1": "electron-system-part1@v2.3.1.bin",
    "system-part2": "electron-system-part2@v2.3.1.bin",
    "system-part3": "electron-system-part3@v2.3.1.bin",
}
APPS = Path(__file__).resolve().parents[2] / "data" / "apps"


def _with_module_info_of(stock: bytes, patched: bytes) -> bytes:
    """``stock`` with ``patched``'s module_info_t, then SHA-256 and CRC-32 recomputed."""
    m = parse_module(stock)
    off = m.prefix_offset
    out = bytearray(stock)
    out[off : off + 24] = patched[off : off + 24]
    out[-38:-6] = hashlib.sha256(bytes(out[:-38])).digest()
    out[-4:] = zlib.crc32(bytes(out[:-4])).to_bytes(4, "big")
    return bytes(out)


def test_output_holds_every_module_with_its_elf_and_a_manifest(devos_build: Any) -> None:
    m: Manifest = devos_build.manifest
    assert [e.name for e in m.modules] == [
        "bootloader",
        "system-part1",
        "system-part2",
        "system-part3",
        "user-part-big200k",
        "user-part-big200k-v2",
        "user-part-tiny",
        "user-part-tiny-v2",
    ]
    assert m.device_os_version == "2.3.1" and "ota-guard" in m.changes_applied
    assert m.changes_missing == ()
    for e in m.modules:
        data = (devos_build.out / e.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e.sha256 and len(data) == e.size
        mod = parse_module(data)
        assert mod.ok and mod.info.platform_id == 10
        assert (mod.info.module_function, mod.info.module_index) == (
            e.module_function,
            e.module_index,
        )
        assert (mod.info.module_start_address, mod.info.module_end_address) == (
            e.start_address,
            e.end_address,
        )
        assert e.elf is not None
        with open(devos_build.out / e.elf, "rb") as f:
            elf = ELFFile(f)
            assert elf.get_section_by_name(".symtab") is not None  # symbols kept
            assert elf.get_section_by_name(".debug_info") is None  # debug info dropped


def test_system_parts_are_version_2350_with_spec_1_4_indexes(devos_build: Any) -> None:
    m = devos_build.manifest
    got = {e.name: (e.module_index, e.module_version) for e in m.system_parts}
    v = PATCHED_SYSTEM_VERSION
    assert got == {"system-part1": (3, v), "system-part2": (1, v), "system-part3": (2, v)}
    s2 = m.module("system-part2")  # idx 1 depends on idx 3 of the same version
    assert [(d.module_index, d.module_version) for d in s2.dependencies] == [(3, v)]


def test_idx1_and_idx3_differ_from_stock_only_in_their_versions(
    devos_build: Any, device_os_stock_fixtures: Path
) -> None:
    for name in ("system-part1", "system-part2"):
        patched = devos_build.module_path(name).read_bytes()
        stock = (device_os_stock_fixtures / STOCK[name]).read_bytes()
        assert patched != stock  # version 2350 (change 5)
        assert _with_module_info_of(stock, patched) == patched, name


def test_idx2_is_the_one_system_part_whose_code_changes(
    devos_build: Any, device_os_stock_fixtures: Path
) -> None:
    patched = devos_build.module_path("system-part3").read_bytes()
    stock = (device_os_stock_fixtures / STOCK["system-part3"]).read_bytes()
    assert len(patched) != len(stock) or _with_module_info_of(stock, patched) != patched
    # the widened bounds are in it (module_bounds_t: maximum_size, start, end)
    assert struct.pack("<III", 0x40000, 0x08080000, 0x080C0000) in patched  # module_user
    assert struct.pack("<III", 0x40000, 0x080C0000, 0x08100000) in patched  # module_ota
    assert struct.pack("<III", 0x20000, 0x080C0000, 0x080E0000) in stock
    assert struct.pack("<III", 0x20000, 0x080C0000, 0x080E0000) not in patched


def test_patched_idx2_stays_within_its_128k_region(devos_build: Any) -> None:
    e = devos_build.manifest.module("system-part3")
    assert e.start_address == 0x08040000
    assert e.end_address + 4 <= 0x08060000  # the CRC too
    assert e.size <= 128 * 1024


def test_bootloader_is_byte_for_byte_stock(
    devos_build: Any, device_os_stock_fixtures: Path
) -> None:
    patched = devos_build.module_path("bootloader").read_bytes()
    assert patched == (device_os_stock_fixtures / STOCK["bootloader"]).read_bytes()
    assert devos_build.manifest.module("bootloader").module_version == 1006


def test_the_200k_app_links_at_0x08080000_and_ends_below_0x080c0000(devos_build: Any) -> None:
    e = devos_build.manifest.module("user-part-big200k")
    assert e.start_address == 0x08080000
    assert e.end_address > 0x080A0000 and e.end_address + 4 <= 0x080C0000
    assert e.size > 200 * 1024
    assert [(d.module_function, d.module_index, d.module_version) for d in e.dependencies] == [
        (ModuleFunction.SYSTEM_PART, 2, PATCHED_SYSTEM_VERSION)
    ]


def test_the_200k_app_does_not_link_against_the_stock_tree(devos_build: Any) -> None:
    big = devos_build.stock_links["big200k"]
    assert not big.ok and big.entry is None
    assert any("region `APP_FLASH' overflowed by" in line for line in big.excerpt)
    assert "does not fit" in big.message and "128 KB" in big.message


def test_tiny_app_on_stock_depends_on_2302_and_on_patched_on_2350(devos_build: Any) -> None:
    stock = devos_build.stock_links["tiny"]
    assert stock.ok and stock.entry is not None
    assert [d.module_version for d in stock.entry.dependencies] == [STOCK_SYSTEM_VERSION]
    patched = devos_build.manifest.module("user-part-tiny")
    assert [d.module_version for d in patched.dependencies] == [PATCHED_SYSTEM_VERSION]


def test_tiny_v2_is_a_small_code_change_of_tiny(devos_build: Any) -> None:
    a = devos_build.module_path("user-part-tiny").read_bytes()
    b = devos_build.module_path("user-part-tiny-v2").read_bytes()
    assert a != b and abs(len(a) - len(b)) < 256


def test_more_apps_build_against_the_system_in_seconds_and_reproducibly(
    devos_build: Any, tmp_path: Path
) -> None:
    sb = devos_build.system_build()
    seen: list[tuple[int, int]] = []
    e = sb.build_app(APPS / "tiny", tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert (tmp_path / e.file).read_bytes() == devos_build.module_path(
        "user-part-tiny"
    ).read_bytes()
    assert seen and all(0 <= d <= t for d, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_compile_error_shows_the_compilers_own_lines(devos_build: Any, tmp_path: Path) -> None:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "broken.cpp").write_text(
        '#include "application.h"\nvoid setup() {}\nvoid loop() { no_such_function(); }\n'
    )
    with pytest.raises(BuildError) as e:
        devos_build.system_build().build_app(app, tmp_path / "out")
    err = e.value
    assert any(
        "broken.cpp" in ln and "error:" in ln and "no_such_function" in ln for ln in err.excerpt
    ), err.excerpt
    assert err.step == "app broken" and err.log_path and Path(err.log_path).is_file()
    assert not list((tmp_path / "out").glob("*.bin"))


def test_an_app_too_large_for_256k_gets_the_linkers_message_and_a_summary(
    devos_build: Any, tmp_path: Path
) -> None:
    app = tmp_path / "huge"
    app.mkdir()
    (app / "huge.cpp").write_text(
        '#include "application.h"\n'
        "extern const uint8_t blob[300 * 1024];\n"
        "const uint8_t blob[300 * 1024] = {1};\n"
        "void setup() {}\n"
        "void loop() { Serial.println(blob[millis() % sizeof(blob)]); }\n"
    )
    with pytest.raises(BuildError) as e:
        devos_build.system_build().build_app(app, tmp_path / "out")
    assert any("region `APP_FLASH' overflowed by" in ln for ln in e.value.excerpt)
    assert "does not fit" in str(e.value) and "256 KB" in str(e.value)
