"""The spec 6 state machines, end to end in simulated time, against a fake OTA receive path."""

from __future__ import annotations

from typing import Any

import pytest

from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus, missed_request_count
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.link import IDEAL, PRESETS
from flashroom.ota.messages import (
    CoapMessage,
    CoapType,
    UpdateBegin,
)
from flashroom.ota.server_end import ServerConfig, ServerFaults, SessionStatus
from flashroom.ota.simulate import simulate


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("link", ["ideal", "3g", "lossy"])
def test_update_applies_exact_image_in_both_modes(ota: Any, fast: bool, link: str) -> None:
    fake = ota.FakeOtaDevice()
    profile = IDEAL if link == "ideal" else PRESETS[link]
    out = simulate(ota.IMAGE, fake, server_config=ServerConfig(fast=fast), link=profile, seed=5)
    assert out.status == DeviceStatus.APPLIED, out.device.error
    assert out.session is not None and out.session.status == SessionStatus.COMPLETE
    assert fake.pending == ota.IMAGE
    assert out.device.fast is fast
    assert out.report.payload_bytes == len(ota.IMAGE)
    assert out.report.wire_bytes == out.report.coap_bytes + 57 * out.report.messages


def test_stop_and_wait_costs_four_messages_per_chunk(ota: Any) -> None:
    out = simulate(ota.IMAGE, ota.FakeOtaDevice(), server_config=ServerConfig(fast=False))
    chunks = out.device.chunk_count
    # Chunk, its empty ACK, ChunkReceived, its ACK; plus Hello/ACK, Begin/ACK, Ready/ACK, Done/ACK
    assert out.report.messages == 4 * chunks + 8


def test_fast_ota_sends_one_datagram_per_chunk_without_loss(ota: Any) -> None:
    out = simulate(ota.IMAGE, ota.FakeOtaDevice(), server_config=ServerConfig(fast=True))
    assert out.report.messages == out.device.chunk_count + 8
    assert out.report.retransmissions == 0


def test_fast_ota_falls_back_when_device_refuses_fast_mode(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    out = simulate(ota.IMAGE, fake, device_config=DeviceConfig(allow_fast=False))
    assert out.status == DeviceStatus.APPLIED
    assert out.session is not None and out.session.fast is False


@pytest.mark.parametrize(
    ("received", "asked"), [(0, 2), (1, 3), (5, 7), (10, 12), (30, 36), (34, 40), (200, 40)]
)
def test_missed_request_count_follows_spec_6_4(ota: Any, received: int, asked: int) -> None:
    assert missed_request_count(received) == asked


def test_chunk_missed_lists_at_most_40_lowest_indices(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    dev = DeviceEnd(fake, DeviceConfig())
    dev.start(0.0)
    begin = UpdateBegin(1, 100, 100 * 100).to_coap(1, b"\x01")
    dev.receive(begin.encode(), 0.1)
    done = CoapMessage(CoapType.CON, 0x03, 2, b"\x02", ((11, b"u"),))
    out = [CoapMessage.decode(d) for d in dev.receive(done.encode(), 0.2)]
    assert out[0].code == 0x80  # 4.00: chunks missing (spec 6.4 #3)
    missed = out[1]
    assert missed.code == 0x01 and missed.uri_path == "c"
    indices = [int.from_bytes(missed.payload[i : i + 2], "big") for i in range(0, 4, 2)]
    assert len(missed.payload) == 2 * 2  # nothing received in this flight: max(0*0.2, 2)
    assert indices == [0, 1]


def test_update_begin_dry_run_failure_is_acked_5_03_and_nothing_erased(ota: Any) -> None:
    fake = ota.FakeOtaDevice(updates_enabled=False)
    out = simulate(ota.IMAGE, fake, device_config=DeviceConfig())
    assert out.status == DeviceStatus.REFUSED
    assert fake.begins == 0
    assert out.session is not None and out.session.status == SessionStatus.FAILED
    assert "5.03" in (out.session.error or "")


def test_too_many_chunks_are_refused(ota: Any) -> None:
    dev = DeviceEnd(ota.FakeOtaDevice(), DeviceConfig())
    dev.start(0.0)
    begin = UpdateBegin(0, 1, 70_000).to_coap(1, b"\x01")  # 70000 chunks >= 65535
    dev.receive(begin.encode(), 0.1)
    assert dev.status == DeviceStatus.REFUSED


@pytest.mark.parametrize(("platform", "timeout"), [("electron", 300.0), ("photon", 30.0)])
def test_server_gone_mid_transfer_times_out_after_platform_timeout(
    ota: Any, platform: str, timeout: float
) -> None:
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=True, faults=ServerFaults(vanish_after_chunks=10))
    out = simulate(
        ota.IMAGE, fake, server_config=cfg, device_config=DeviceConfig(platform=platform)
    )
    assert out.status == DeviceStatus.TIMEOUT
    assert out.device.finished_at is not None
    assert out.device.finished_at == pytest.approx(out.device._last_activity + timeout)
    assert fake.pending is None  # never finished, never applied
    assert fake.running == b"old-app"


def test_server_gone_in_stop_and_wait_aborts_when_chunk_received_is_never_acked(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=False, faults=ServerFaults(vanish_after_chunks=5))
    out = simulate(ota.IMAGE, fake, server_config=cfg, link=PRESETS["3g"])
    assert out.status in (DeviceStatus.ABORTED, DeviceStatus.TIMEOUT)
    assert fake.pending is None and fake.running == b"old-app"


@pytest.mark.parametrize("fast", [True, False])
def test_chunk_crc_mismatch_is_recovered(ota: Any, fast: bool) -> None:
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=fast, faults=ServerFaults(bad_crc_once=frozenset({3, 7})))
    out = simulate(ota.IMAGE, fake, server_config=cfg, link=PRESETS["3g"])
    assert out.status == DeviceStatus.APPLIED
    assert out.device.crc_errors == 2
    assert fake.pending == ota.IMAGE
    if not fast:
        assert out.session is not None and out.session.bad_replies == 2


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lost_duplicated_and_reordered_datagrams_are_recovered(
    ota: Any, fast: bool, seed: int
) -> None:
    link = PRESETS["3g"].with_(loss=0.1, duplicate=0.1, reorder=0.1)
    fake = ota.FakeOtaDevice()
    out = simulate(ota.IMAGE, fake, server_config=ServerConfig(fast=fast), link=link, seed=seed)
    assert out.status == DeviceStatus.APPLIED, out.device.error
    assert fake.pending == ota.IMAGE
    assert out.report.lost > 0 and out.report.duplicated > 0 and out.report.reordered > 0
    assert out.report.retransmissions > 0


@pytest.mark.parametrize("fast", [True, False])
def test_device_reset_mid_transfer_starts_again(ota: Any, fast: bool) -> None:
    fake = ota.FakeOtaDevice()
    resets: list[str] = []
    out = simulate(
        ota.IMAGE,
        fake,
        server_config=ServerConfig(fast=fast),
        device_config=DeviceConfig(reset_after_chunks=12),
        link=PRESETS["3g"],
        on_reset=lambda: resets.append(fake.reset()),
    )
    assert resets == ["booted"]  # nothing pending at the reset: the old app runs on
    assert out.restarts == 1
    assert out.status == DeviceStatus.APPLIED
    assert fake.begins == 2 and fake.pending == ota.IMAGE
    assert next(r.status for r in out.server.records) == "failed"  # superseded session


def test_wrong_file_length_longer_than_image_never_applies(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=True, faults=ServerFaults(file_length_delta=4096))
    out = simulate(ota.IMAGE, fake, server_config=cfg, link=PRESETS["3g"])
    assert out.session is not None and out.session.status == SessionStatus.FAILED
    assert "file length mismatch" in (out.session.error or "")
    assert out.status == DeviceStatus.TIMEOUT
    assert fake.pending is None and fake.running == b"old-app"


def test_wrong_file_length_shorter_in_stop_and_wait_is_rejected_by_validation(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=False, faults=ServerFaults(file_length_delta=-1000))
    out = simulate(ota.IMAGE, fake, server_config=cfg)
    assert out.status == DeviceStatus.REJECTED  # the image's CRC does not match
    assert fake.pending is None


def test_image_too_large_for_profile_is_rejected_with_1300(ota: Any) -> None:
    fake = ota.FakeOtaDevice(max_size=16_384)
    out = simulate(ota.IMAGE, fake)
    assert out.status == DeviceStatus.REJECTED
    assert out.device.error_code == -1300
    assert fake.pending is None and fake.running == b"old-app"


def test_chunk_index_past_end_of_flash_aborts_and_keeps_app(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=True, faults=ServerFaults(extra_chunk_index=60_000))
    out = simulate(ota.IMAGE, fake, server_config=cfg)
    assert out.status == DeviceStatus.ABORTED
    assert "write at offset" in (out.device.error or "")
    assert fake.pending is None and fake.running == b"old-app"


def test_chunk_index_past_bitmap_but_inside_region_is_written_and_validation_decides(
    ota: Any,
) -> None:
    fake = ota.FakeOtaDevice()
    extra = -(-len(ota.IMAGE) // 512) + 3
    cfg = ServerConfig(fast=True, faults=ServerFaults(extra_chunk_index=extra))
    out = simulate(ota.IMAGE, fake, server_config=cfg)
    assert out.device.out_of_bitmap_chunks == 1
    assert out.status == DeviceStatus.APPLIED  # the filler lies past the module: harmless
    assert fake.pending == ota.IMAGE


def test_update_done_before_all_chunks_in_fast_mode_asks_for_the_rest(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=True, faults=ServerFaults(done_after_chunks=10))
    out = simulate(ota.IMAGE, fake, server_config=cfg, link=PRESETS["3g"])
    assert out.status == DeviceStatus.APPLIED
    assert out.device.missed_requests >= 1
    assert fake.pending == ota.IMAGE


def test_update_done_before_all_chunks_in_stop_and_wait_is_rejected_not_applied(ota: Any) -> None:
    # spec 6.2 #4: the normal-mode bitmap starts all-0xFF, so the device finishes at once and
    # HAL_FLASH_End's CRC check is what stops the partial image.
    fake = ota.FakeOtaDevice()
    cfg = ServerConfig(fast=False, faults=ServerFaults(done_after_chunks=10))
    out = simulate(ota.IMAGE, fake, server_config=cfg)
    assert out.status == DeviceStatus.REJECTED
    assert fake.pending is None and fake.running == b"old-app"


def test_unreachable_server_ends_with_clear_status(ota: Any) -> None:
    fake = ota.FakeOtaDevice()
    link = IDEAL.with_(loss=0.999)
    out = simulate(ota.IMAGE, fake, link=link)
    assert out.status == DeviceStatus.UNREACHABLE
    assert fake.begins == 0


def test_simulation_is_deterministic_for_a_seed(ota: Any) -> None:
    a = simulate(ota.IMAGE, ota.FakeOtaDevice(), link=PRESETS["lossy"], seed=9).report
    b = simulate(ota.IMAGE, ota.FakeOtaDevice(), link=PRESETS["lossy"], seed=9).report
    assert a == b


def test_link_time_of_fast_ota_is_bounded_below_by_serialisation(ota: Any) -> None:
    out = simulate(ota.IMAGE, ota.FakeOtaDevice(), link=PRESETS["3g"])
    down_bits = (out.report.wire_bytes - 0) * 8
    assert out.report.link_time_s >= len(ota.IMAGE) * 8 / PRESETS["3g"].bandwidth_bps
    assert out.report.link_time_s < 2 * down_bits / PRESETS["3g"].bandwidth_bps + 2


def test_short_ack_timeout_tuning_is_used(ota: Any) -> None:
    cfg = DeviceConfig(tuning=CoapTuning(ack_timeout_s=0.01))
    dev = DeviceEnd(ota.FakeOtaDevice(), cfg)
    dev.start(0.0)
    dl = dev.ep.deadline()
    assert dl is not None and 0.01 <= dl <= 0.015
