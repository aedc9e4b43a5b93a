"""CoAP endpoint reliability, link model and accounting constants."""

from __future__ import annotations

import pytest

from flashroom.errors import UsageError
from flashroom.ota.accounting import (
    DTLS_RECORD_OVERHEAD,
    PER_DATAGRAM_OVERHEAD,
    Meter,
    TransferReport,
)
from flashroom.ota.endpoint import CoapEndpoint, CoapTuning
from flashroom.ota.link import PRESETS, LinkClock, LinkModel, LinkProfile, get_link
from flashroom.ota.messages import CoapMessage, CoapType, empty_ack


def _con(mid: int) -> CoapMessage:
    return CoapMessage(CoapType.CON, 0x02, mid, b"\x01", ((11, b"c"),), b"x")


def test_con_is_retransmitted_with_doubling_timeouts_then_given_up() -> None:
    ep = CoapEndpoint(tuning=CoapTuning(ack_timeout_s=1.0, ack_random_factor=1.0))
    ep.send(_con(5), 0.0)
    times = []
    now = 0.0
    while True:
        dl = ep.deadline()
        if dl is None:
            break
        now = dl
        _out, failed = ep.poll(now)
        if failed:
            break
        times.append(now)
    assert times == [1.0, 3.0, 7.0, 15.0]  # RFC 7252 4.2: doubling, MAX_RETRANSMIT 4
    assert now == 31.0 and ep.stats.retransmissions == 4


def test_ack_stops_retransmission_and_reports_the_acked_con() -> None:
    ep = CoapEndpoint()
    ep.send(_con(9), 0.0)
    d = ep.receive(empty_ack(9).encode())
    assert d.acked is not None and d.acked.message_id == 9
    assert ep.deadline() is None


def test_duplicate_con_is_not_delivered_twice_and_gets_the_same_ack() -> None:
    ep = CoapEndpoint()
    data = _con(77).encode()
    first = ep.receive(data)
    assert first.message is not None
    ack = ep.reply(first.message, empty_ack(77))
    again = ep.receive(data)
    assert again.message is None and again.out == [ack]
    assert ep.stats.duplicates_received == 1


def test_malformed_datagram_is_counted_and_dropped() -> None:
    ep = CoapEndpoint()
    assert ep.receive(b"\x00").message is None
    assert ep.stats.malformed_received == 1


def test_dtls_overhead_is_ccm8_record_and_total_per_datagram_is_57() -> None:
    assert DTLS_RECORD_OVERHEAD == 13 + 8 + 8
    assert PER_DATAGRAM_OVERHEAD == 20 + 8 + 29


def test_meter_wire_bytes_add_overhead_per_datagram() -> None:
    m = Meter()
    m.count(100, up=False)
    m.count(10, up=True)
    assert m.wire_bytes == 110 + 2 * 57
    rep = TransferReport.from_meter(m, payload_bytes=50, link_time_s=2.0, bandwidth_bps=400)
    assert rep.goodput_bps == 200 and rep.goodput_ratio == 0.5


def test_presets_have_sources_and_distinct_figures() -> None:
    assert set(PRESETS) == {"2g", "3g", "lte-m", "lossy"}
    for p in PRESETS.values():
        assert p.source and p.bandwidth_bps > 0 and p.rtt_s > 0
    assert PRESETS["2g"].bandwidth_bps < PRESETS["lte-m"].bandwidth_bps
    assert PRESETS["lossy"].loss > 0


def test_unknown_preset_and_bad_probability_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="lte-m"):
        get_link("5g")
    with pytest.raises(UsageError, match="loss"):
        LinkProfile("x", 0.1, 1000, loss=1.5)


def test_link_fifo_serialises_at_bandwidth_and_adds_half_rtt() -> None:
    link = LinkModel(LinkProfile("t", 0.2, 8000))
    a = link.send(0.0, 43, up=False)  # 100 wire bytes -> 0.1 s
    b = link.send(0.0, 43, up=False)
    assert a.arrivals == [pytest.approx(0.2)]
    assert b.arrivals == [pytest.approx(0.3)]


def test_link_loss_rate_is_seeded_and_close_to_profile() -> None:
    prof = LinkProfile("t", 0.0, 0, loss=0.1, duplicate=0.05, reorder=0.05)
    fates1 = [LinkModel(prof, seed=4).send(0, 10, up=True).lost for _ in range(1)]
    m = LinkModel(prof, seed=4)
    fates = [m.send(0.0, 10, up=True) for _ in range(5000)]
    lost = sum(f.lost for f in fates) / 5000
    assert 0.08 < lost < 0.12
    assert 0.03 < sum(f.duplicated for f in fates) / 5000 < 0.07
    m2 = LinkModel(prof, seed=4)
    assert [m2.send(0.0, 10, up=True).lost for _ in range(5000)] == [f.lost for f in fates]
    assert fates1[0] == fates[0].lost


def test_link_clock_charges_rtt_per_turn_and_serialisation_per_datagram() -> None:
    clock = LinkClock(LinkProfile("t", 1.0, 8000))
    clock.on_send(43)  # 0.1 s up
    clock.on_receive(43)  # reply: RTT after the send, then 0.1 s
    assert clock.now == pytest.approx(1.2)
    clock.on_receive(43)  # queued behind it
    assert clock.now == pytest.approx(1.3)
    clock.on_loss_of_con()
    assert clock.now == pytest.approx(3.3)
