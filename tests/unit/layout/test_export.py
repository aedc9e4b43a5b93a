"""Exporters: ld fragment, C header, JSON, atomic writes, flash-map pictures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flashroom.atomicfile import write_bytes_atomic
from flashroom.errors import UsageError
from flashroom.layout import get_layout
from flashroom.layout.export import (
    render_header,
    render_json,
    render_ld,
    write_exports,
)
from flashroom.report.flashmap import render_flash_map, write_flash_maps

K = 1024


def _ld_value(text: str, pattern: str) -> int:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in fragment"
    return int(m.group(1), 0)


@pytest.mark.parametrize(
    ("platform", "name", "origin", "length"),
    [
        ("electron", "extended", 0x08080000, 256 * K),
        ("electron", "stock", 0x08080000, 128 * K),
        ("photon", "stock", 0x080A0000, 128 * K),
    ],
)
def test_ld_fragment_declares_app_flash_and_device_os_symbols(
    platform: str, name: str, origin: int, length: int
) -> None:
    text = render_ld(get_layout(platform, name))
    assert _ld_value(text, r"APP_FLASH \(rx\) : ORIGIN = (0x[0-9a-f]+)") == origin
    assert _ld_value(text, r"LENGTH = (0x[0-9a-f]+)") == length
    assert _ld_value(text, r"USER_FIRMWARE_IMAGE_LOCATION = (0x[0-9a-f]+);") == origin
    assert _ld_value(text, r"USER_FIRMWARE_IMAGE_SIZE = (0x[0-9a-f]+);") == length
    assert _ld_value(text, r"PROVIDE\(user_module_table = (0x[0-9a-f]+)\)") == origin + 0x18


def _header_macros(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (\S+)", text, flags=re.M))


def test_header_has_start_end_size_of_every_region_and_a_guard() -> None:
    lay = get_layout("electron", "extended")
    text = render_header(lay)
    macros = _header_macros(text)
    assert text.startswith("/*") and "#ifndef FLASHROOM_FLASH_LAYOUT_H" in text
    assert text.rstrip().endswith("#endif /* FLASHROOM_FLASH_LAYOUT_H */")
    for r in lay.regions:
        base = "FLASHROOM_" + r.name.upper()
        assert int(macros[f"{base}_START"].rstrip("u"), 16) == r.start
        assert int(macros[f"{base}_END"].rstrip("u"), 16) == r.end
        assert int(macros[f"{base}_SIZE"].rstrip("u"), 16) == r.size
    assert int(macros["FLASHROOM_USER_MODULE_TABLE"].rstrip("u"), 16) == 0x08080018
    assert macros["FLASHROOM_PLATFORM_ID"] == "10"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
def test_header_compiles_and_values_are_right_in_c(tmp_path: Path) -> None:
    (tmp_path / "flash_layout.h").write_text(render_header(get_layout("photon")))
    src = tmp_path / "t.c"
    src.write_text(
        '#include "flash_layout.h"\n#include "flash_layout.h"\n'
        '_Static_assert(FLASHROOM_USER_PART_START == 0x080a0000u, "start");\n'
        '_Static_assert(FLASHROOM_OTA_SCRATCH_SIZE == 0x40000u, "ota");\n'
        '_Static_assert(FLASHROOM_FACTORY_END == FLASHROOM_FLASH_END, "fac");\n'
        "int main(void) { return 0; }\n"
    )
    subprocess.run(["cc", "-std=c11", "-fsyntax-only", str(src)], check=True, cwd=tmp_path)


def test_json_export_is_the_show_contract() -> None:
    lay = get_layout("electron", "extended")
    assert json.loads(render_json(lay)) == lay.to_json()


def test_write_exports_creates_directory_and_three_files(tmp_path: Path) -> None:
    out = tmp_path / "a"
    paths = write_exports(get_layout("electron", "extended"), out)
    assert sorted(p.name for p in paths) == ["flash_layout.h", "layout.json", "user-part.ld"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)


def test_atomic_write_keeps_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "user-part.ld"
    target.write_text("old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new contents")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["user-part.ld"]  # no temp file left


def test_flash_maps_are_real_svg_and_png(tmp_path: Path) -> None:
    paths = write_flash_maps([get_layout("electron"), get_layout("electron", "extended")], tmp_path)
    svg, png = (tmp_path / "flash-map.svg"), (tmp_path / "flash-map.png")
    assert paths == [svg, png]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text
    for label in ("user_part", "ota_scratch", "factory", "0x080c0000", "sector 11"):
        assert label in text


def test_render_flash_map_rejects_unknown_suffix_and_mixed_chips(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.svg or \.png"):
        render_flash_map([get_layout("electron")], tmp_path / "map.jpg")
    with pytest.raises(UsageError, match="same chip"):
        render_flash_map([get_layout("electron"), get_layout("argon")], tmp_path / "m.png")


def test_gen3_flash_map_renders(tmp_path: Path) -> None:
    p = render_flash_map([get_layout("argon"), get_layout("argon", "v3.1")], tmp_path / "argon.svg")
    assert "user_part_compat" in p.read_text()
