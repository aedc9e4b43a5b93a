"""System flags in backup registers (spec 8.4, 8.5) and their use by the bootloader."""

from __future__ import annotations

from flashroom.emu.device import Device
from flashroom.emu.sysflags import SYSTEM_FLAGS_MAGIC, BackupRegisters


def test_flags_read_as_all_ff_without_the_dr4_magic() -> None:
    regs = BackupRegisters()
    f = regs.load_flags()
    assert f.Factory_Reset_SysFlag == 0xFFFF and f.StartupMode_SysFlag == 0xFF


def test_save_writes_fields_into_their_registers_and_the_magic() -> None:
    regs = BackupRegisters()
    regs.update_flags(
        Factory_Reset_SysFlag=0xAAAA, IWDG_Enable_SysFlag=0xD001, StartupMode_SysFlag=1
    )
    assert regs.regs[4] == SYSTEM_FLAGS_MAGIC
    assert regs.regs[7] == 0xD001AAAA
    assert (regs.regs[8] >> 16) & 0xFF == 1
    assert regs.load_flags().Factory_Reset_SysFlag == 0xAAAA


def test_bootloader_records_its_version_and_flags_survive_reset() -> None:
    dev = Device.new("electron", "stock")
    assert dev.regs.load_flags().Bootloader_Version_SysFlag == 1004
    dev.regs.dr1 = 0x5AFE  # safe-mode request (spec 8.5)
    out = dev.boot()
    assert out.boot == "safe_mode"
    assert dev.regs.dr1 == 0xFFFF  # consumed
    assert dev.boot().boot == "application"


def test_dr1_dfu_request_enters_dfu_once() -> None:
    dev = Device.new()
    dev.regs.dr1 = 0xEDFA
    assert dev.boot().boot == "dfu"
    assert dev.boot().boot == "application"


def test_button_one_second_is_safe_mode_three_is_dfu() -> None:
    dev = Device.new()
    assert dev.boot(button_s=1.5).boot == "safe_mode"
    assert dev.boot(button_s=4).boot == "dfu"
    assert dev.boot(button_s=7).boot == "factory"  # stock: factory image available


def test_chunk_granularity_counts_each_write_call_as_one_op() -> None:
    from flashroom.particle.build import synthetic_user_app

    dev = Device.new(granularity="chunk")
    app = synthetic_user_app(10 * 1024, seed=2)
    out = dev.ota(app)
    assert out.result == "applied"
    assert out.flash_ops < 200  # 20 chunks + erases + DCT calls + copy, not 2560 words
    dev2 = Device.new(granularity="chunk")
    cut = dev2.ota(app, cut_at_op=5)
    assert cut.result == "interrupted"
    assert dev2.boot().boot == "application"
