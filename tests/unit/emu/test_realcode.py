"""Devices that execute what is in sector 0, and whose OTA path is the real system code (issue 10
parts 2 and 4): ``Device.new(bootloader_firmware=..., system_firmware=...)``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flashroom.emu.device import Device
from flashroom.emu.realcode import RealCode, SystemPartRecord, sector0_identity
from flashroom.errors import EmulatorError, ParamError
from flashroom.firmware.image import FirmwareImageError
from flashroom.firmware.stm32f2 import RCC_CSR_POWER_ON, RCC_CSR_SFTRSTF
from flashroom.particle.build import synthetic_user_app

K = 1024
BL_1006 = "electron-bootloader@v2.3.1.bin"
BL_1002 = "electron-bootloader@v2.0.0-rc.1.bin"
#: spec 11: the real 1006 bootloader applies a 255 KB update in this many operations
SPEC_11_APPLY_OPS = 69_382


def _real(real_binaries: Path, bl: str = BL_1006, **kw: object) -> Device:
    return Device.new("electron", "extended", bootloader_firmware=real_binaries / bl, **kw)  # type: ignore[arg-type]


def test_sector_0_holds_the_real_bootloader_and_reports_say_so(real_binaries: Path) -> None:
    dev = _real(real_binaries)
    out = dev.boot()
    assert out.boot == "application"
    assert dev.firmware_runs and dev.firmware_runs[0].outcome == "jump"
    data = (real_binaries / BL_1006).read_bytes()
    assert dev.flash.read(0x08000000, len(data)) == data
    assert out.to_json()["bootloader_firmware"] == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "module_version": 1006,
    }
    assert out.to_json()["system_firmware"] is None


def test_a_model_device_reports_null() -> None:
    out = Device.new("electron", "extended").boot().to_json()
    assert out["bootloader_firmware"] is None and out["system_firmware"] is None


def test_the_image_records_the_real_code_and_a_loaded_device_runs_it(
    real_binaries: Path, tmp_path: Path
) -> None:
    dev = _real(real_binaries)
    img = tmp_path / "d.img"
    dev.save(img)
    back = Device.load(img)
    assert back.real.bootloader and back.real.bootloader_file is not None
    back.boot()
    assert back.firmware_runs and back.bootloader_log == ["jump"]


def test_a_255k_update_is_applied_by_the_real_code_in_the_spec_11_op_count(
    real_binaries: Path,
) -> None:
    dev = _real(real_binaries)
    app = synthetic_user_app(255 * K, seed=3)
    out = dev.ota(app)
    assert out.result == "applied" and out.running is not None
    apply = [r for r in dev.firmware_runs if r.flash_ops]
    assert [r.flash_ops for r in apply] == [SPEC_11_APPLY_OPS]


def test_the_variant_follows_the_real_bootloaders_version(real_binaries: Path) -> None:
    assert _real(real_binaries, BL_1002).bootloader_variant == "legacy"
    assert _real(real_binaries, BL_1006).bootloader_variant == "resumable"


def test_an_erased_sector_0_is_a_real_brick_with_the_pc(real_binaries: Path) -> None:
    dev = _real(real_binaries)
    dev.flash.erase_sector(0)
    out = dev.boot()
    assert out.boot == "bricked"
    assert "PC 0x" in dev.reason and "real bootloader" in dev.reason
    assert dev.bootloader_firmware() == sector0_identity(dev.flash).to_json()
    assert dev.bootloader_firmware()["module_version"] is None  # type: ignore[index]


def test_a_torn_bootloader_tail_changes_what_runs_next_boot(real_binaries: Path) -> None:
    # the sector-0 bytes are what executes: corrupt the reset handler's first instructions
    dev = _real(real_binaries)
    reset = dev.flash.read_u32(0x08000004) & ~1
    dev.flash.erase_sector(0)
    data = bytearray((real_binaries / BL_1006).read_bytes())
    off = reset - 0x08000000
    data[off : off + 4] = b"\xff\xff\xff\xff"  # erased words: an undefined instruction
    dev.flash.program(0x08000000, bytes(data))
    out = dev.boot()
    assert out.boot == "bricked" and "crash" in dev.reason


def test_a_held_button_is_refused_with_the_real_bootloader(real_binaries: Path) -> None:
    dev = _real(real_binaries)
    with pytest.raises(ParamError, match="SysTick"):
        dev.boot(button_s=3.0)


def test_reset_flags_follow_the_kind_of_reset_in_model_and_real(real_binaries: Path) -> None:
    app = synthetic_user_app(64 * K, seed=5)
    for dev in (_real(real_binaries), Device.new("electron", "extended")):
        dev.boot()  # a power-on: BOR | PIN | POR saved to DR9 (Save_Reset_Syndrome)
        assert dev.regs.load_flags().RCC_CSR_SysFlag == RCC_CSR_POWER_ON
        # the running system cleared them (erased DCT: RESET_INFO on), then NVIC_SystemReset
        dev.ota(app)
        assert dev.regs.load_flags().RCC_CSR_SysFlag == RCC_CSR_SFTRSTF


def test_bad_bootloader_files_name_the_file_and_field(real_binaries: Path, tmp_path: Path) -> None:
    part = real_binaries / "electron-system-part1@v2.3.1.bin"
    with pytest.raises(FirmwareImageError) as e:
        Device.new("electron", "extended", bootloader_firmware=part)
    assert str(part) in str(e.value) and e.value.field
    with pytest.raises(EmulatorError, match="no such file"):
        Device.new("electron", "extended", bootloader_firmware=tmp_path / "missing.bin")


def test_real_firmware_is_electron_only(real_binaries: Path) -> None:
    with pytest.raises(EmulatorError, match="electron only"):
        Device.new("photon", "stock", bootloader_firmware=real_binaries / BL_1006)


# ------------------------------------------------------------------ the real OTA path


def _real_system(real_binaries: Path) -> Device:
    return Device.new(
        "electron",
        "stock",
        bootloader_firmware=real_binaries / BL_1006,
        system_firmware=real_binaries,
    )


def test_a_200k_app_gets_the_real_minus_1300_on_stock(real_binaries: Path) -> None:
    dev = _real_system(real_binaries)
    out = dev.ota(synthetic_user_app(200 * K, seed=3))
    assert out.result == "rejected" and out.error is not None and out.error.code == -1300
    assert "SYSTEM_ERROR_OTA_MODULE_NOT_FOUND" in out.error.message
    assert out.sector_erases == {10: 1, 11: 1}  # spec 11.2: Prepare erased sectors 10 and 11
    assert out.boot == "application" and out.running is not None
    assert out.running.size == 32 * K  # the old app still runs
    sysf = out.to_json()["system_firmware"]
    assert [p["module_index"] for p in sysf["parts"]] == [1, 2, 3]


def test_a_small_app_is_applied_through_the_real_path(real_binaries: Path) -> None:
    dev = _real_system(real_binaries)
    app = synthetic_user_app(100 * K, seed=4)
    out = dev.ota(app)
    assert out.result == "applied"
    assert dev.flash.read(0x08080000, len(app)) == app


def test_the_device_end_callbacks_drive_the_real_functions(real_binaries: Path) -> None:
    from flashroom.deviceos.ota import FileTransferDescriptor

    dev = _real_system(real_binaries)
    app = synthetic_user_app(8 * K, seed=9)
    f = FileTransferDescriptor(len(app), 512, 0)
    assert dev.prepare_for_firmware_update(f, 0) == 0
    assert f.file_address == 0x080C0000  # the real Prepare computed it (spec 11.2)
    assert dev._real_ota is not None and dev._real_ota.last is not None


def test_the_profile_must_match_the_parts_version(real_binaries: Path) -> None:
    with pytest.raises(ParamError, match="2302"):
        Device.new("electron", "extended", system_firmware=real_binaries)


def test_a_replaced_ota_module_stops_the_real_path(real_binaries: Path) -> None:
    dev = _real_system(real_binaries)
    dev.flash.program(0x08040000 + 0x1000, b"\x00" * 4)  # idx 2 is no longer the one with symbols
    with pytest.raises(EmulatorError, match="no longer"):
        dev.ota(synthetic_user_app(8 * K, seed=9))


def test_real_code_record_round_trips() -> None:
    rc = RealCode(True, "/x/bl.bin", "/x", (SystemPartRecord(2, "p.bin", "ab"),))
    assert RealCode.from_json(rc.to_json()) == rc
    assert RealCode.from_json(None) == RealCode()


# ------------------------------------------------------------------ sector 0 replaced


def _idx3_embedding(dev: Device, bootloader: bytes) -> bytes:
    """The next idx 3 (version + 1, same dependencies) carrying ``bootloader`` (spec 4.7)."""
    from flashroom.particle.build import synthetic_module
    from flashroom.particle.module_info import ModuleFunction, read_module_info_at

    info = read_module_info_at(dev.flash.read(0x08060000, 0x200), 0)
    return synthetic_module(
        100 * K,
        platform_id=10,
        function=ModuleFunction.SYSTEM_PART,
        index=3,
        version=info.module_version + 1,
        start_address=0x08060000,
        dependency=info.dependency,
        dependency2=info.dependency2,
        seed=31,
        embed=bootloader,
    )


def test_a_bootloader_replaced_over_the_air_is_what_runs_next(real_binaries: Path) -> None:
    dev = _real(real_binaries, BL_1002)
    new_bl = (real_binaries / BL_1006).read_bytes()
    out = dev.ota(_idx3_embedding(dev, new_bl))
    assert out.result == "applied", out.error
    assert any("replaced bootloader 1002" in e for e in out.events)
    assert dev.flash.read(0x08000000, len(new_bl)) == new_bl
    assert out.to_json()["bootloader_firmware"]["module_version"] == 1006
    dev.boot()
    assert dev.firmware_runs[0].outcome == "jump"  # the real 1006 bytes ran


def test_a_cut_while_sector_0_is_rewritten_is_a_real_brick(real_binaries: Path) -> None:
    from flashroom.emu.flash import FlashEvent, FlashEventKind

    dev = _real(real_binaries, BL_1002)
    idx3 = _idx3_embedding(dev, (real_binaries / BL_1006).read_bytes())
    snap = dev.snapshot()
    ops: list[FlashEvent] = []

    class Watch:
        def flash_event(self, ev: FlashEvent) -> None:
            if ev.kind != FlashEventKind.READ and ev.addr < 0x08004000:
                ops.append(ev)

    start = dev.flash.op_count
    with dev.flash.subscribe(Watch()):
        dev.ota(idx3)
    erase = next(e for e in ops if e.kind == FlashEventKind.ERASE)
    dev.restore(snap)
    # cut a thousand words into the rewrite: the bootloader is half old-erased, half new
    cut = dev.ota(idx3, cut_at_op=erase.first_op - start + 1000)
    assert cut.result == "interrupted"
    out = dev.boot()
    assert out.boot == "bricked" and "real bootloader" in dev.reason
    # the report shows a sector 0 that is not the 1006 file (its SHA-256 differs)
    full = hashlib.sha256((real_binaries / BL_1006).read_bytes()).hexdigest()
    assert dev.bootloader_firmware()["sha256"] != full  # type: ignore[index]
