"""The real v2.3.1 OTA receive/finish path at function level against the model (spec 11.2)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from flashroom.deviceos.ota import FileTransferDescriptor, SystemUpdateCallbacks
from flashroom.emu.dct import MAGIC_PENDING, DcdStore
from flashroom.emu.device import Device
from flashroom.errors import PowerCut
from flashroom.firmware.boot import RealBootloader, load_bootloader
from flashroom.firmware.flashport import FlashRecorder
from flashroom.firmware.image import FirmwareImageError, FirmwareSymbolError
from flashroom.firmware.machine import FirmwareOutcome
from flashroom.firmware.ota import RealSystemOta, SystemParts
from flashroom.particle.build import synthetic_user_app

K = 1024
OTA = 0x080C0000
#: The regions spec 11.2 compares: the DCT (sectors 1-2), the user part, the scratch (10-11).
REGIONS = ((0x08004000, 0x8000), (0x08080000, 0x20000), (OTA, 0x40000))


def real_target(fw: Any, **options: Any) -> tuple[Device, RealSystemOta, FlashRecorder]:
    fresh = Device.new(platform="electron", profile="stock")
    dev = fw.make_device(fresh.flash.contents(), tuple(fresh.regs.regs), profile="stock")
    rec = FlashRecorder()
    ota = RealSystemOta(
        dev.flash,
        dev.regs,
        SystemParts.from_folder(fw.dir),
        bootloader=load_bootloader(fw.BOOTLOADER_1006),
        recorder=rec,
        **options,
    )
    rec.clear()
    return dev, ota, rec


def model_update(app: bytes) -> tuple[Device, int]:
    dev = Device.new(platform="electron", profile="stock")
    assert dev.ota_begin(len(app), 512, 0) == 0
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    return dev, dev.ota_finish()


def real_update(
    ota: RealSystemOta, app: bytes
) -> tuple[int, FileTransferDescriptor, list[int], int]:
    rc, desc = ota.prepare(len(app), 512, 0, 0, 0)
    saves = [ota.save_chunk(OTA + off, app[off : off + 512]) for off in range(0, len(app), 512)]
    return rc, desc, saves, ota.finish(1)


def same_regions(a: Device, b: Device) -> list[str]:
    return [
        f"0x{start:08x}+0x{size:x}"
        for start, size in REGIONS
        if a.flash.read(start, size) != b.flash.read(start, size)
    ]


def test_stock_200k_user_part_real_path_returns_minus_1300_and_matches_the_model(fw: Any) -> None:
    dev, ota, rec = real_target(fw)
    app = synthetic_user_app(200 * K, platform="electron", seed=3)
    rc, desc, saves, finish = real_update(ota, app)
    assert rc == 0
    assert desc.file_address == OTA and desc.file_length == len(app) and desc.chunk_size == 512
    erases = [e.addr for e in rec.events if e.kind == "erase"]
    assert erases == [0x080C0000, 0x080E0000]  # sectors 10 and 11
    programs = [e for e in rec.events if e.kind == "program"]
    assert saves == [0] * 400
    assert len(programs) == 51_200 and {e.width for e in programs} == {4}
    assert finish == -1300
    model, model_rc = model_update(app)
    assert model_rc == -1300
    assert same_regions(dev, model) == []
    assert dev.flash.read(OTA, len(app)) == app


def test_100k_app_is_accepted_and_the_dct_slot_matches_the_model(fw: Any) -> None:
    dev, ota, _ = real_target(fw)
    app = synthetic_user_app(100 * K, platform="electron", seed=4)
    rc, _, saves, finish = real_update(ota, app)
    assert (rc, set(saves), finish) == (0, {0}, 1)
    slots = DcdStore(dev.flash).peek_slots()
    assert slots is not None and slots[1].magicNumber == MAGIC_PENDING
    assert (slots[1].sourceAddress, slots[1].destinationAddress) == (OTA, 0x08080000)
    assert slots[1].length == len(app) and slots[1].flags == 0x0E
    model, model_rc = model_update(app)
    assert model_rc == 1
    assert same_regions(dev, model) == []


def test_hostile_chunk_address_erases_the_bootloader_on_the_stock_code(fw: Any) -> None:
    # sector 0 write-protected as on a shipped device: FLASH_EraseMemory lifts it (spec 11.2)
    dev, ota, rec = real_target(fw, write_protected=frozenset({0}))
    rc, desc = ota.prepare(0x4000, 512, 0xFFF40000, 0, 0)
    assert rc == 0
    assert desc.file_address == 0x08000000  # 0x080C0000 + 0xFFF40000, u32 wrap
    assert [(e.kind, e.addr) for e in rec.events] == [("erase", 0x08000000)]
    assert dev.flash.is_blank(0x08000000, 0x4000)
    assert RealBootloader(dev.flash, dev.regs).boot().outcome is FirmwareOutcome.CRASH


def test_updates_disabled_prepare_returns_1_and_erases_nothing(fw: Any) -> None:
    _, ota, rec = real_target(fw)
    flag = ota.parts.function("system_set_flag", 2)
    assert ota.machine.call(flag, (1, 0, 0)).outcome is FirmwareOutcome.RETURN
    rc, _ = ota.prepare(100 * K)
    assert rc == 1 and rec.events == []


def test_power_cut_during_a_chunk_raises_power_cut_like_the_model(fw: Any) -> None:
    dev, ota, _ = real_target(fw)
    app = synthetic_user_app(100 * K, platform="electron", seed=4)
    ota.prepare(len(app))
    dev.flash.arm_fault(5)
    with pytest.raises(PowerCut):
        ota.save_chunk(OTA, app[:512])
    assert dev.flash.read(OTA, 20) == app[:20]  # words 0-4 made it
    assert dev.flash.read(OTA + 20, 4) == b"\xff" * 4


def test_the_protocol_callbacks_fill_in_the_descriptor_as_the_real_code_does(fw: Any) -> None:
    _, ota, rec = real_target(fw)
    callbacks: SystemUpdateCallbacks = ota
    file = FileTransferDescriptor(file_length=0, chunk_size=0, chunk_address=0)
    assert callbacks.prepare_for_firmware_update(file, 1) == 0  # the dry run of UpdateBegin
    # chunk_size 0 selects HAL_OTA_ChunkSize() and HAL_OTA_FlashLength() (spec 4.1 #1)
    assert (file.chunk_size, file.file_length, file.file_address) == (512, 0x20000, OTA)
    assert rec.events == []  # a dry run erases nothing
    assert callbacks.finish_firmware_update(file, 0) < 0  # not SUCCESS: failed
    assert callbacks.last_ota_error.startswith("Spark_Finish_Firmware_Update returned")


# ============================================================================ the parts folder
def _copy(src: Path, dst: Path, names: list[str]) -> None:
    for n in names:
        shutil.copy(src / n, dst / n)


def test_system_parts_are_found_by_module_info_and_other_files_ignored(
    fw: Any, tmp_path: Path
) -> None:
    _copy(fw.dir, tmp_path, [p.name for p in fw.dir.iterdir() if p.suffix in (".bin", ".elf")])
    (tmp_path / "notes.bin").write_bytes(b"not a module")
    parts = SystemParts.from_folder(tmp_path)
    assert [p.info.module_index for p in parts.parts] == [1, 2, 3]
    assert Path(parts.part(1).name).name == "electron-system-part2@v2.3.1.bin"  # spec 1.4
    assert parts.function("module_system_part1_pre_init", 1) == 0x0802037C | 1
    assert parts.function("Spark_Finish_Firmware_Update", 2) == 0x08049D20 | 1


def test_missing_symbols_name_the_function_and_the_file(fw: Any, tmp_path: Path) -> None:
    _copy(fw.dir, tmp_path, [p.name for p in fw.dir.iterdir() if p.suffix == ".bin"])
    parts = SystemParts.from_folder(tmp_path)
    dev = Device.new(platform="electron", profile="stock")
    with pytest.raises(FirmwareSymbolError) as e:
        RealSystemOta(dev.flash, dev.regs, parts)
    assert e.value.symbol == "module_system_part1_pre_init"
    assert "electron-system-part2@v2.3.1.bin" in str(e.value)


def test_a_missing_system_part_is_a_precise_error(fw: Any, tmp_path: Path) -> None:
    _copy(
        fw.dir, tmp_path, ["electron-system-part2@v2.3.1.bin", "electron-system-part3@v2.3.1.bin"]
    )
    with pytest.raises(FirmwareImageError, match="index 3"):
        SystemParts.from_folder(tmp_path)
