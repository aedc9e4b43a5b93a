"""A size-less UpdateBegin on an extended Electron (issue 9 #6; spec 6.2, 4.1 #1, 9 change 1).

The device fills in a size-less UpdateBegin's defaults from its own ``module_ota``
(``Spark_Prepare_For_Firmware_Update``: ``HAL_OTA_FlashLength()``), 0x40000 on the extended
profile. Before deviceos had one home for it, the protocol's device end took 0x20000 from a
per-platform table, so FLASH_Begin erased only sector 10 and a 200 KB app landed partly on the
unerased sector 11, still holding an earlier image: its CRC failed and the update was lost.
"""

from __future__ import annotations

from flashroom.emu.device import Device
from flashroom.ota.server_end import BeginForm, ServerConfig
from flashroom.particle.build import synthetic_user_app
from flashroom.scenarios.deliver import update_in_process

K = 1024


def _extended_device_that_ran_a_255k_app() -> Device:
    dev = Device.new("electron", "extended")
    big = synthetic_user_app(255 * K, platform="electron", version=8, seed=255)
    out = dev.ota(big)  # a 255 KB app through the scratch: sector 11 now holds its tail
    assert out.result == "applied" and out.running is not None and out.running.size == 255 * K
    assert not dev.flash.is_blank(0x080E0000, 0x20000)
    return dev


def test_sizeless_update_begin_on_extended_erases_sectors_10_and_11_and_applies() -> None:
    dev = _extended_device_that_ran_a_255k_app()
    app = synthetic_user_app(200 * K, platform="electron", version=9, seed=200)
    erases_before = list(dev.flash.erase_counts)
    res = update_in_process(
        dev, app, server_config=ServerConfig(fast=False, begin_form=BeginForm.SHORT)
    )
    erased = [i for i, n in enumerate(dev.flash.erase_counts) if n > erases_before[i]]
    assert 10 in erased and 11 in erased  # FLASH_Begin over HAL_OTA_FlashLength() = 256K
    assert res.result == "applied", res.error
    assert res.outcome is not None and res.outcome["boot"] == "application"
    assert res.outcome["running"]["module_version"] == 9
    assert dev.user_part_bytes() == app


def test_sizeless_update_begin_on_stock_erases_only_sector_10() -> None:
    dev = Device.new("electron", "stock")
    app = synthetic_user_app(100 * K, platform="electron", version=9, seed=100)
    erases_before = list(dev.flash.erase_counts)
    res = update_in_process(dev, app, server_config=ServerConfig(begin_form=BeginForm.SHORT))
    assert dev.flash.erase_counts[10] == erases_before[10] + 1
    assert dev.flash.erase_counts[11] == erases_before[11]  # 0x20000 on stock: sector 10 only
    assert res.result == "applied", res.error


def test_short_begin_form_sends_no_payload_and_turns_fast_ota_off() -> None:
    from flashroom.ota.messages import CoapMessage
    from flashroom.ota.server_end import ServerSession

    cfg = ServerConfig(fast=True, chunk_size=1024, begin_form=BeginForm.SHORT)
    s = ServerSession(b"\x00" * 4096, cfg)
    assert s.config.chunk_size == 512 and not s.config.fast
    begin = CoapMessage.decode(s._start(0.0)[0])
    assert begin.uri_path == "u" and begin.payload == b""
