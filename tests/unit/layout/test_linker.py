"""The exported ld fragment under a real arm-none-eabi-ld (issue 2 section 6).

A tiny Cortex-M3 object with a 200 KB ``.rodata`` must link at 0x08080000 under the extended
fragment and must fail to link under the stock 128K fragment. Skips when binutils-arm-none-eabi
is not installed (``make test`` installs it when it can).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from flashroom.layout import get_layout
from flashroom.layout.export import write_exports

AS = shutil.which("arm-none-eabi-as")
LD = shutil.which("arm-none-eabi-ld")
pytestmark = pytest.mark.skipif(
    AS is None or LD is None,
    reason="arm-none-eabi-as/ld not found (apt-get install binutils-arm-none-eabi)",
)

BLOB = 200 * 1024

ASM = f"""\
    .syntax unified
    .cpu cortex-m3
    .thumb
    .section .rodata
    .global big_blob
big_blob:
    .space {BLOB}
"""

# Minimal wrapper: pull in the fragment and put everything into APP_FLASH.
WRAPPER = """\
INCLUDE user-part.ld
SECTIONS
{
    .text : { *(.text*) *(.rodata*) } > APP_FLASH
}
"""


def _object(tmp: Path) -> Path:
    src, obj = tmp / "blob.s", tmp / "blob.o"
    src.write_text(ASM)
    assert AS is not None
    subprocess.run([AS, "-mcpu=cortex-m3", "-mthumb", str(src), "-o", str(obj)], check=True)
    return obj


def _link(tmp: Path, layout_name: str) -> subprocess.CompletedProcess[str]:
    frag_dir = tmp / layout_name
    write_exports(get_layout("electron", layout_name), frag_dir)
    (tmp / "wrapper.ld").write_text(WRAPPER)
    assert LD is not None
    return subprocess.run(
        [
            LD,
            "-L",
            str(frag_dir),
            "-T",
            str(tmp / "wrapper.ld"),
            str(_object(tmp)),
            "-o",
            str(tmp / f"{layout_name}.elf"),
        ],
        capture_output=True,
        text=True,
    )


def test_200k_rodata_links_at_user_start_under_extended_fragment(tmp_path: Path) -> None:
    res = _link(tmp_path, "extended")
    assert res.returncode == 0, res.stderr
    with (tmp_path / "extended.elf").open("rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        assert text is not None
        assert text["sh_addr"] == 0x08080000
        assert text["sh_size"] == BLOB
        symtab = elf.get_section_by_name(".symtab")
        syms = {s.name: s["st_value"] for s in symtab.iter_symbols()}  # type: ignore[union-attr]
    assert syms["big_blob"] == 0x08080000
    assert syms["USER_FIRMWARE_IMAGE_LOCATION"] == 0x08080000
    assert syms["USER_FIRMWARE_IMAGE_SIZE"] == 0x40000
    assert 0x08080000 + BLOB <= 0x080C0000


def test_same_link_fails_under_stock_128k_fragment(tmp_path: Path) -> None:
    res = _link(tmp_path, "stock")
    assert res.returncode != 0
    assert "APP_FLASH" in res.stderr  # "will not fit in region `APP_FLASH'"
