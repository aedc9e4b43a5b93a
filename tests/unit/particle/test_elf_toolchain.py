"""``module pack`` on a real Cortex-M3 ELF from arm-none-eabi-as/ld (issue 3 section 3).

A tiny program (a vector table, code, read-only data and a ``.data`` initialiser that is loaded
from flash: a second PT_LOAD segment whose load address differs from its run address) is linked
so that its loadable image starts at 0x08080018, right after the 24-byte ``module_info_t`` that
pack puts at 0x08080000 (spec 2.2). ``flashroom module pack`` must take exactly the
bytes ``arm-none-eabi-objcopy -O binary`` gives (the oracle), and wrap them in a module whose
fields and checksums verify. Skips when binutils-arm-none-eabi is absent (``make test`` installs
it when it can).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flashroom.particle.build import elf_image
from flashroom.particle.module import parse_module
from flashroom.particle.module_info import ModuleFunction

AS = shutil.which("arm-none-eabi-as")
LD = shutil.which("arm-none-eabi-ld")
OBJCOPY = shutil.which("arm-none-eabi-objcopy")
pytestmark = pytest.mark.skipif(
    AS is None or LD is None or OBJCOPY is None,
    reason="arm-none-eabi-as/ld/objcopy not found (apt-get install binutils-arm-none-eabi)",
)

START = 0x08080000
PAYLOAD = START + 0x18  # after module_info_t (spec 2.2: at +0 for user parts)

ASM = """\
    .syntax unified
    .cpu cortex-m3
    .thumb

    .section .isr_vector, "a"
    .word 0x20020000
    .word reset + 1

    .text
    .thumb_func
    .global reset
reset:
    ldr r0, =counter
    ldr r1, [r0]
    adds r1, r1, #1
    str r1, [r0]
    b reset

    .section .rodata
greeting:
    .asciz "flashroom elf test"

    .data
counter:
    .word 0xA5A5A5A5
    .word 0x12345678
"""

# .data runs in RAM but is loaded from flash right after .rodata (AT > FLASH): the ELF then has
# two PT_LOAD segments and p_paddr != p_vaddr for the second, as in every real firmware.
LINKER_SCRIPT = f"""\
MEMORY
{{
    FLASH (rx) : ORIGIN = 0x{PAYLOAD:08x}, LENGTH = 256K - 0x18
    RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 128K
}}
SECTIONS
{{
    .text : {{ KEEP(*(.isr_vector)) *(.text*) *(.rodata*) . = ALIGN(4); }} > FLASH
    .data : {{ *(.data*) }} > RAM AT > FLASH
}}
"""


def _tool(*args: Any, cwd: Path) -> None:
    subprocess.run([str(a) for a in args], check=True, cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def app_elf(tmp_path: Path) -> Path:
    (tmp_path / "app.s").write_text(ASM)
    (tmp_path / "app.ld").write_text(LINKER_SCRIPT)
    _tool(AS, "-mcpu=cortex-m3", "-mthumb", "app.s", "-o", "app.o", cwd=tmp_path)
    _tool(LD, "-T", "app.ld", "app.o", "-o", "app.elf", cwd=tmp_path)
    return tmp_path / "app.elf"


def _objcopy_binary(elf: Path) -> bytes:
    out = elf.with_suffix(".objcopy.bin")
    _tool(OBJCOPY, "-O", "binary", elf, out, cwd=elf.parent)
    return out.read_bytes()


def test_pack_elf_payload_equals_objcopy_binary_after_module_info(app_elf: Path, cli: Any) -> None:
    oracle = _objcopy_binary(app_elf)
    assert b"flashroom elf test" in oracle
    assert b"\xa5\xa5\xa5\xa5\x78\x56\x34\x12" in oracle  # .data's load image came along
    out = app_elf.parent / "app.bin"
    r = cli(
        [
            "module", "pack", str(app_elf), "--platform", "electron", "--function", "user",
            "--index", "1", "--version", "6", "--start", "0x08080000", "-o", str(out),
            "--format", "json",
        ]
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["source"] == "elf"
    assert doc["elf_load_address"] == PAYLOAD
    assert doc["payload_size"] == len(oracle)

    module = out.read_bytes()
    m = parse_module(module, str(out))
    assert m.ok, [c for c in m.checks() if not c.ok]
    assert m.prefix_offset == 0  # user part: module_info_t at +0 (spec 2.2)
    info = m.info
    assert info.module_start_address == START
    assert info.module_function == ModuleFunction.USER_PART
    assert (info.platform_id, info.module_index, info.module_version) == (10, 1, 6)
    assert info.module_end_address - info.module_start_address + 4 == len(module)
    payload = module[m.prefix_size : len(module) - m.suffix.suffix_size - 4]
    assert payload == oracle


def test_library_elf_image_agrees_with_objcopy(app_elf: Path) -> None:
    addr, image = elf_image(app_elf.read_bytes(), name=str(app_elf))
    assert addr == PAYLOAD
    assert image == _objcopy_binary(app_elf)


def test_pack_refuses_elf_linked_for_another_region(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "app.s").write_text(ASM)
    (tmp_path / "app.ld").write_text(LINKER_SCRIPT.replace(f"0x{PAYLOAD:08x}", "0x08020000"))
    _tool(AS, "-mcpu=cortex-m3", "-mthumb", "app.s", "-o", "app.o", cwd=tmp_path)
    _tool(LD, "-T", "app.ld", "app.o", "-o", "app.elf", cwd=tmp_path)
    out = tmp_path / "app.bin"
    r = cli(
        [
            "module", "pack", str(tmp_path / "app.elf"), "--platform", "electron",
            "--function", "user", "--index", "1", "--version", "6", "-o", str(out),
        ]
    )  # fmt: skip
    assert r.exit_code == 2, r.stderr
    assert "0x08020000" in r.stderr and "user_part" in r.stderr
    assert not out.exists()


def test_pack_refuses_elf_linked_at_the_module_start_without_module_info(
    tmp_path: Path, cli: Any
) -> None:
    """Its code expects to run at 0x08080000, but the payload would land 24 bytes later."""
    (tmp_path / "app.s").write_text(ASM)
    (tmp_path / "app.ld").write_text(LINKER_SCRIPT.replace(f"0x{PAYLOAD:08x}", f"0x{START:08x}"))
    _tool(AS, "-mcpu=cortex-m3", "-mthumb", "app.s", "-o", "app.o", cwd=tmp_path)
    _tool(LD, "-T", "app.ld", "app.o", "-o", "app.elf", cwd=tmp_path)
    out = tmp_path / "app.bin"
    r = cli(
        [
            "module", "pack", str(tmp_path / "app.elf"), "--platform", "electron",
            "--function", "user", "--index", "1", "--version", "6", "-o", str(out),
        ]
    )  # fmt: skip
    assert r.exit_code == 2
    assert "0x08080000" in r.stderr and "linked at 0x08080018" in r.stderr
    assert not out.exists()


# A user part linked the way Device OS's user.ld and module_end.ld link it: module_info_t first
# (end address from the link), code, then the tail with the SHA-256/CRC placeholders that
# build/module.mk fills in after objcopy (spec 2.5 post-link).
DEVICE_OS_ASM = """\
    .syntax unified
    .cpu cortex-m3
    .thumb
    .section .module_info, "a"
    .word 0x08080000
    .word link_module_end
    .byte 0, 0
    .hword 6
    .hword 10
    .byte 5, 1
    .byte 4, 2
    .hword 2302
    .byte 0, 0
    .hword 0
    .text
    .thumb_func
loop:
    b loop
    .section .rodata
    .asciz "linked by Device OS rules"
    .section .modinfo_tail, "a"
    .hword 0xffff, 0xffff
    .hword 0
    .byte 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
    .byte 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
    .hword 0x28
    .section .crc, "a"
    .word 0x12345678
"""

DEVICE_OS_LD = f"""\
MEMORY {{ APP_FLASH (rx) : ORIGIN = 0x{START:08x}, LENGTH = 256K }}
SECTIONS
{{
    .module_info : {{ KEEP(*(.module_info)) }} > APP_FLASH
    .text : {{ *(.text*) *(.rodata*) . = ALIGN(2); }} > APP_FLASH
    .modinfo_tail : {{ KEEP(*(.modinfo_tail)) }} > APP_FLASH
    link_module_end = .;
    .crc : {{ KEEP(*(.crc)) }} > APP_FLASH
}}
"""


def test_pack_finishes_an_elf_linked_with_its_own_module_info(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "app.s").write_text(DEVICE_OS_ASM)
    (tmp_path / "app.ld").write_text(DEVICE_OS_LD)
    _tool(AS, "-mcpu=cortex-m3", "-mthumb", "app.s", "-o", "app.o", cwd=tmp_path)
    _tool(LD, "-T", "app.ld", "app.o", "-o", "app.elf", cwd=tmp_path)
    flat = _objcopy_binary(tmp_path / "app.elf")
    out = tmp_path / "app.bin"
    r = cli(
        [
            "module", "pack", str(tmp_path / "app.elf"), "--platform", "electron",
            "--function", "user", "--index", "1", "--version", "6", "-o", str(out),
            "--format", "json",
        ]
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.json()["source"] == "elf+module_info"
    module = out.read_bytes()
    assert len(module) == len(flat)
    assert module[:-38] == flat[:-38]  # only the SHA-256 and CRC-32 were written
    m = parse_module(module, str(out))
    assert m.crc_ok and m.sha256_ok and m.size_ok
    assert m.info.module_end_address == START + len(module) - 4
    assert (m.info.dependency.module_function, m.info.dependency.module_version) == (4, 2302)
