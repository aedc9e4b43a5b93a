"""The OTA protocol driving the real emulator's system OTA path (in-process, simulated time)."""

from __future__ import annotations

import pytest

from flashroom.emu.device import Device
from flashroom.ota.device_end import DeviceConfig
from flashroom.ota.link import PRESETS
from flashroom.ota.server_end import BeginForm, ServerConfig, ServerFaults
from flashroom.particle.build import synthetic_user_app
from flashroom.scenarios.deliver import update_in_process


@pytest.fixture(scope="module")
def stock_snapshot() -> tuple[Device, object]:
    dev = Device.new("electron", "stock")
    return dev, dev.snapshot()


def _stock(stock_snapshot: tuple[Device, object]) -> Device:
    base, snap = stock_snapshot
    dev = Device(base.profile)
    dev.restore(snap)  # type: ignore[arg-type]
    return dev


APP_100K = synthetic_user_app(100 * 1024, platform="electron", version=7, seed=5)
APP_200K = synthetic_user_app(200 * 1024, platform="electron", version=8, seed=5)


def _running_sha(dev: Device) -> str:
    m = dev.running_module()
    assert m is not None
    return m.sha256


@pytest.mark.parametrize("fast", [True, False])
def test_stock_electron_applies_100k_app_over_3g(
    stock_snapshot: tuple[Device, object], fast: bool
) -> None:
    dev = _stock(stock_snapshot)
    res = update_in_process(dev, APP_100K, link=PRESETS["3g"].with_(loss=0.01), fast=fast)
    assert res.ok, res.error
    assert res.outcome is not None and res.outcome["running"]["module_version"] == 7
    assert dev.user_part_bytes()[: len(APP_100K)] == APP_100K
    data = res.to_json()
    for key in ("payload_bytes", "wire_bytes", "messages", "retransmissions", "link_time_s"):
        assert key in data
    assert data["boot"] == "application"


def test_ota_rejects_200k_user_part_on_stock_profile(
    stock_snapshot: tuple[Device, object],
) -> None:
    dev = _stock(stock_snapshot)
    before = _running_sha(dev)
    res = update_in_process(dev, APP_200K, link=PRESETS["3g"])
    assert res.result == "rejected"
    assert res.error_code == -1300
    assert res.outcome is not None and res.outcome["boot"] == "application"
    assert _running_sha(dev) == before


def test_extended_electron_applies_200k_app_with_fast_ota_on_lte_m() -> None:
    dev = Device.new("electron", "extended")
    res = update_in_process(dev, APP_200K, link=PRESETS["lte-m"])
    assert res.ok, res.error
    assert res.outcome is not None and res.outcome["running"]["size"] == 200 * 1024


@pytest.mark.parametrize(
    ("faults", "fast", "expect"),
    [
        (ServerFaults(bad_crc_once=frozenset({1, 50})), True, "applied"),
        (ServerFaults(bad_crc_once=frozenset({1, 50})), False, "applied"),
        (ServerFaults(done_after_chunks=30), False, "rejected"),
        (ServerFaults(done_after_chunks=30), True, "applied"),
        (ServerFaults(vanish_after_chunks=40), True, "timeout"),
        (ServerFaults(file_length_delta=2048), True, "timeout"),
        (ServerFaults(extra_chunk_index=3000), True, "aborted"),
    ],
)
def test_failures_never_apply_a_corrupt_image_and_leave_the_app_intact(
    stock_snapshot: tuple[Device, object], faults: ServerFaults, fast: bool, expect: str
) -> None:
    dev = _stock(stock_snapshot)
    before = _running_sha(dev)
    cfg = ServerConfig(fast=fast, faults=faults)
    res = update_in_process(dev, APP_100K, server_config=cfg, link=PRESETS["3g"])
    assert res.result == expect, res.error
    assert res.outcome is not None and res.outcome["boot"] == "application"
    if expect == "applied":
        assert res.outcome["running"]["module_version"] == 7
        assert dev.user_part_bytes()[: len(APP_100K)] == APP_100K
    else:
        assert res.error
        assert _running_sha(dev) == before


def test_device_reset_mid_transfer_restarts_and_completes(
    stock_snapshot: tuple[Device, object],
) -> None:
    dev = _stock(stock_snapshot)
    res = update_in_process(
        dev,
        APP_100K,
        link=PRESETS["3g"],
        device_config=DeviceConfig(reset_after_chunks=77, seed=2),
    )
    assert res.restarts == 1
    assert res.ok, res.error
    assert res.outcome is not None and res.outcome["running"]["module_version"] == 7


def test_photon_timeout_is_30_seconds(stock_snapshot: tuple[Device, object]) -> None:
    dev = Device.new("photon", "stock")
    app = synthetic_user_app(20 * 1024, platform="photon", version=7, seed=5)
    cfg = ServerConfig(faults=ServerFaults(vanish_after_chunks=3))
    res = update_in_process(dev, app, server_config=cfg, link=PRESETS["3g"])
    assert res.result == "timeout"
    assert res.error is not None and "30 s" in res.error


# ------------------------------------------------------------------ the size-less UpdateBegin
# A size-less UpdateBegin on an extended Electron (issue 9 #6; spec 6.2, 4.1 #1, 9 change 1).
#
# The device fills in a size-less UpdateBegin's defaults from its own ``module_ota``
# (``Spark_Prepare_For_Firmware_Update``: ``HAL_OTA_FlashLength()``), 0x40000 on the extended
# profile. Before deviceos had one home for it, the protocol's device end took 0x20000 from a
# per-platform table, so FLASH_Begin erased only sector 10 and a 200 KB app landed partly on the
# unerased sector 11, still holding an earlier image: its CRC failed and the update was lost.


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


def test_an_aborted_transfer_does_not_reset_the_device_spec_6_4_7() -> None:
    # protocol.cpp:487-493 aborts with finish(0): Spark_Finish_Firmware_Update without SUCCESS
    # only notifies (system_update.cpp:406-425); no reset is scheduled
    dev = Device.new("electron", "stock")
    app = synthetic_user_app(64 * K, platform="electron", seed=9)
    # a chunk index past the end of flash: on stock its write bus-faults (a protocol error)
    cfg = ServerConfig(fast=True, faults=ServerFaults(extra_chunk_index=3000))
    res = update_in_process(dev, app, server_config=cfg)
    assert res.result == "aborted"
    assert res.outcome is not None and res.outcome["result"] == "running"
    assert res.outcome["flash_ops"] == 0 and dev.state == "application"
    # the extended system writes no chunk outside the scratch (flashroom_in_ota_region):
    # the stray chunk is dropped and the update completes
    ext = Device.new("electron", "extended")
    res = update_in_process(ext, app, server_config=cfg)
    assert res.result == "applied" and ext.user_part_bytes() == app


def test_connect_gives_the_same_rejected_class_and_scratch_note_as_emu_ota() -> None:
    app = synthetic_user_app(200 * 1024, seed=4)
    via_ota = Device.new("electron", "stock").ota(app)
    dev = Device.new("electron", "stock")
    res = update_in_process(dev, app)
    assert (res.result, res.error_code) == (str(via_ota.result), -1300) == ("rejected", -1300)
    assert res.outcome is not None and res.outcome["scratch"] == via_ota.scratch
    assert via_ota.scratch is not None and via_ota.scratch["holds_refused_image"]
