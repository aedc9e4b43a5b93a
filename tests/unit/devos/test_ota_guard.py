"""The OTA address guard (change ota-guard, spec 11.2) run from the real built system modules.

The functions the protocol layer calls, ``Spark_Prepare_For_Firmware_Update`` and
``Spark_Save_Firmware_Chunk`` of module idx 2, run in an ARMv7-M instruction emulator (Unicorn)
with the set-up of spec 11.2: bootloader and the three system parts at their addresses (flash
also aliased at 0), SRAM, backup SRAM and the peripherals as plain memory,
``module_system_part1_pre_init`` then ``system_set_flag(1, 1, NULL)`` (OTA updates enabled).
A write to the FLASH interface registers (0x40023C00..) is the start of an erase or a program.

Stock v2.3.1 takes ``chunk_address`` 0xFFF40000 (0x080C0000 + it wraps to 0x08000000, the
bootloader) and goes on to the flash registers; the patched system refuses it with
SYSTEM_ERROR_OTA_INVALID_ADDRESS (-1350) and touches no flash register, and still takes the
normal update at the start of the OTA scratch.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from flashroom.particle.module import parse_module

unicorn = pytest.importorskip("unicorn", reason="unicorn not installed (pip install unicorn)")
from unicorn import arm_const  # noqa: E402

OTA_INVALID_ADDRESS = -1350  # services/inc/system_error.h:62
PARTS = ("bootloader", "system-part1", "system-part2", "system-part3")
_RET = 0x30000000  # a mapped page the called function returns into
_DESC = 0x20010000
_CHUNK = 0x20011000
_FLASH_IF = range(0x40023C00, 0x40023C30)  # ACR, KEYR, OPTKEYR, SR, CR, OPTCR


def _symbol(elf: Path, name: str) -> int:
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert symtab is not None, elf
        (sym,) = symtab.get_symbol_by_name(name)  # type: ignore[attr-defined]
        return int(sym["st_value"]) & ~1


@dataclass
class System:
    """The four modules of one build, ready to be called into."""

    bins: dict[str, bytes]
    elfs: dict[str, Path]
    flash_writes: list[int] = field(default_factory=list)

    def _machine(self) -> Any:
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
        flash = bytearray(b"\xff" * 0x100000)
        for data in self.bins.values():
            start = parse_module(data).info.module_start_address
            flash[start - 0x08000000 : start - 0x08000000 + len(data)] = data
        for base in (0x00000000, 0x08000000):  # flash, and its alias at 0
            uc.mem_map(base, 0x100000)
            uc.mem_write(base, bytes(flash))
        uc.mem_map(0x20000000, 0x20000)  # SRAM
        uc.mem_map(0x40000000, 0x100000)  # peripherals and backup SRAM, as plain memory
        uc.mem_map(0xE0000000, 0x100000)  # system control space
        uc.mem_map(_RET, 0x1000)
        self.flash_writes = []

        def on_write(_uc: Any, _access: int, addr: int, *_: Any) -> None:
            if addr in _FLASH_IF:
                self.flash_writes.append(addr)

        uc.hook_add(unicorn.UC_HOOK_MEM_WRITE, on_write)
        return uc

    def _call(self, uc: Any, addr: int, *args: int) -> int:
        regs = (arm_const.UC_ARM_REG_R0, arm_const.UC_ARM_REG_R1, arm_const.UC_ARM_REG_R2)
        for reg, value in zip(regs[: len(args)], args, strict=True):
            uc.reg_write(reg, value)
        uc.reg_write(arm_const.UC_ARM_REG_SP, 0x2001F000)
        uc.reg_write(arm_const.UC_ARM_REG_LR, _RET | 1)
        uc.emu_start(addr | 1, _RET, count=5_000_000)
        r = int(uc.reg_read(arm_const.UC_ARM_REG_R0))
        return r - (1 << 32) if r & 0x80000000 else r

    def _ready(self) -> Any:
        uc = self._machine()
        self._call(uc, _symbol(self.elfs["system-part2"], "module_system_part1_pre_init"))
        self._call(uc, _symbol(self.elfs["system-part3"], "system_set_flag"), 1, 1, 0)
        self.flash_writes.clear()
        return uc

    def prepare(
        self, chunk_address: int, flags: int, chunk_size: int = 0, file_length: int = 0
    ) -> tuple[int, int]:
        """``Spark_Prepare_For_Firmware_Update`` of a FIRMWARE descriptor (chunk_size 0: the
        defaults, 512 and HAL_OTA_FlashLength()); returns (result, file_address)."""
        uc = self._ready()
        desc = struct.pack("<HHIHBBII", 20, 0, chunk_address, chunk_size, 0, 0, file_length, 0)
        uc.mem_write(_DESC, desc)
        fn = _symbol(self.elfs["system-part3"], "Spark_Prepare_For_Firmware_Update")
        r = self._call(uc, fn, _DESC, flags, 0)
        return r, struct.unpack_from("<I", bytes(uc.mem_read(_DESC + 16, 4)))[0]

    def save(self, chunk_address: int, size: int = 512) -> int:
        """``Spark_Save_Firmware_Chunk`` of one chunk at the absolute ``chunk_address``."""
        uc = self._ready()
        uc.mem_write(_DESC, struct.pack("<HHIHBBII", 20, 0, chunk_address, size, 0, 0, 0, 0))
        uc.mem_write(_CHUNK, b"\0" * size)
        fn = _symbol(self.elfs["system-part3"], "Spark_Save_Firmware_Chunk")
        return self._call(uc, fn, _DESC, _CHUNK, 0)


@pytest.fixture(scope="module")
def patched(devos_build: Any) -> System:
    out = devos_build.out
    return System(
        {n: (out / f"{n}.bin").read_bytes() for n in PARTS}, {n: out / f"{n}.elf" for n in PARTS}
    )


@pytest.fixture(scope="module")
def stock(device_os_stock_fixtures: Path) -> System:
    d = device_os_stock_fixtures
    return System(
        {n: (d / f"electron-{n}@v2.3.1.bin").read_bytes() for n in PARTS},
        {n: d / f"electron-{n}@v2.3.1.elf" for n in PARTS},
    )


def test_stock_takes_the_hostile_update_begin_and_goes_for_the_flash(stock: System) -> None:
    assert stock.prepare(0xFFF40000, flags=1) == (0, 0x08000000)  # the check call accepts it
    assert stock.prepare(0xFFF40000, flags=0)[0] == 0
    assert stock.flash_writes  # unlock, write protection off, erase of 0x08000000...


def test_patched_refuses_the_hostile_update_begin_before_any_flash_access(
    patched: System,
) -> None:
    assert patched.prepare(0xFFF40000, flags=1) == (OTA_INVALID_ADDRESS, 0x08000000)
    assert patched.prepare(0xFFF40000, flags=0)[0] == OTA_INVALID_ADDRESS
    assert patched.flash_writes == []


def test_patched_refuses_a_file_past_the_ota_scratch(patched: System) -> None:
    # chunk_address 0x40000: file_address 0x08100000, the first byte past the scratch; refused
    # for the default length and for a long-form UpdateBegin that claims no length at all
    assert patched.prepare(0x40000, flags=1) == (OTA_INVALID_ADDRESS, 0x08100000)
    assert patched.prepare(0x40000, 1, chunk_size=512) == (OTA_INVALID_ADDRESS, 0x08100000)
    # a file that starts inside but runs past the end
    assert patched.prepare(0x3FF00, 1, chunk_size=512, file_length=512)[0] == OTA_INVALID_ADDRESS
    assert patched.prepare(0x3FE00, 1, chunk_size=512, file_length=512) == (0, 0x080FFE00)


def test_patched_still_takes_an_update_at_the_start_of_the_scratch(patched: System) -> None:
    assert patched.prepare(0, flags=1) == (0, 0x080C0000)
    assert patched.prepare(0, flags=0) == (0, 0x080C0000)
    assert patched.flash_writes  # the erase of the scratch begins


def test_patched_saves_chunks_only_inside_the_ota_scratch(patched: System, stock: System) -> None:
    assert patched.save(0x080C0000) == 0 and patched.flash_writes
    assert patched.save(0x080FFE00) == 0  # the last 512 bytes
    for outside in (0x08000000, 0x080BFE00, 0x080FFF00):  # bootloader, user part, past the end
        assert patched.save(outside) == OTA_INVALID_ADDRESS, hex(outside)
        assert patched.flash_writes == []
    assert patched.save(0x08100000, size=0) == OTA_INVALID_ADDRESS  # starts past the end
    assert stock.save(0x08000000) == 0 and stock.flash_writes  # stock programs the bootloader
