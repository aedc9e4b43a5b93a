"""Loading real firmware and the runner's bad-input verdicts (each names the file and field)."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest

from flashroom.errors import FlashroomError
from flashroom.firmware.boot import load_bootloader
from flashroom.firmware.image import FirmwareImage, FirmwareImageError
from flashroom.firmware.peripherals import crc32_words, crc32_words_fast

INFO = 0x184


def bootloader_bytes(fw: Any) -> bytearray:
    return bytearray(Path(fw.BOOTLOADER_1006).read_bytes())


def refused(data: bytes, field: str, name: str = "bad.bin") -> FirmwareImageError:
    with pytest.raises(FirmwareImageError) as e:
        load_bootloader(data, name=name)
    assert e.value.field == field, str(e.value)
    assert name in str(e.value)
    assert isinstance(e.value, FlashroomError)
    return e.value


def test_the_fixture_bootloader_loads_from_bin_and_elf_alike(fw: Any) -> None:
    b = load_bootloader(fw.BOOTLOADER_1006)
    e = load_bootloader(Path(fw.BOOTLOADER_1006).with_suffix(".elf"))
    assert (b.address, len(b.data), b.info) == (e.address, len(e.data), e.info)
    # the ELF carries placeholders where the build writes the SHA-256 and CRC into the .bin
    diff = [i for i, (x, y) in enumerate(zip(b.data, e.data, strict=True)) if x != y]
    assert diff and min(diff) >= len(b.data) - 40  # only the suffix's SHA-256 and the CRC
    assert b.info.module_version == 1006 and b.info.platform_id == 10
    assert e.function("Reset_Handler") == 0x0800019D and b.symbols == {}


def test_wrong_platform_id_is_refused(fw: Any) -> None:
    data = bootloader_bytes(fw)
    struct.pack_into("<H", data, INFO + 12, 6)  # Photon
    err = refused(bytes(data), "platform_id")
    assert "expected 10" in str(err)


def test_no_vector_table_is_refused(fw: Any) -> None:
    data = bootloader_bytes(fw)
    struct.pack_into("<I", data, 0, 0x08001000)  # initial SP not in SRAM
    refused(bytes(data), "initial_sp")
    data = bootloader_bytes(fw)
    struct.pack_into("<I", data, 4, 0x0800019C)  # reset vector without the Thumb bit
    refused(bytes(data), "reset_vector")
    data = bootloader_bytes(fw)
    struct.pack_into("<I", data, 4, 0x08040001)  # outside the image
    refused(bytes(data), "reset_vector")


def test_a_bootloader_over_16k_is_refused(fw: Any) -> None:
    data = bytes(bootloader_bytes(fw)) + b"\xff" * 2048
    err = refused(data, "size")
    assert "16384" in str(err)


def test_not_a_bootloader_module_is_refused(fw: Any) -> None:
    data = bootloader_bytes(fw)
    data[INFO + 14] = 5  # USER_PART
    refused(bytes(data), "module_function")


def test_an_elf_for_another_machine_is_refused(fw: Any) -> None:
    data = bytearray(Path(fw.BOOTLOADER_1006).with_suffix(".elf").read_bytes())
    struct.pack_into("<H", data, 0x12, 62)  # EM_X86_64
    err = refused(bytes(data), "e_machine", "x86.elf")
    assert err.offset == 0x12


def test_a_bin_whose_module_info_does_not_parse_is_refused(fw: Any) -> None:
    data = bootloader_bytes(fw)
    struct.pack_into("<I", data, INFO, 0x12345678)  # module_start_address
    refused(bytes(data), "module_start_address")
    refused(b"\x00" * 10, "module_info_t")
    with pytest.raises(FirmwareImageError) as e:
        FirmwareImage.from_bytes(b"\x00" * 400, name="zeros.bin")
    assert e.value.field == "module_start_address"


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FirmwareImageError) as e:
        load_bootloader(tmp_path / "missing.bin")
    assert e.value.field == "file" and "missing.bin" in str(e.value)


def _crc_bitwise(words: list[int]) -> int:
    crc = 0xFFFFFFFF
    for w in words:
        crc ^= w
        for _ in range(32):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else crc << 1
    return crc


def test_crc_unit_matches_the_bitwise_stm32_algorithm() -> None:
    rng = random.Random(1)
    words = [rng.getrandbits(32) for _ in range(257)]
    assert crc32_words(words) == _crc_bitwise(words)
    assert crc32_words_fast(words) == crc32_words(words)
    assert crc32_words_fast(words[9:], crc32_words(words[:9])) == crc32_words(words)
    assert crc32_words([]) == 0xFFFFFFFF
    # CRC-32/MPEG-2 check value: the unit over b"12345678" fed as two big-endian words
    assert crc32_words([0x31323334, 0x35363738]) == _crc_bitwise([0x31323334, 0x35363738])
