"""The server's early UpdateDone and round-trip-based retransmission timeout (paced fast OTA).

Simulated link time only (deterministic for a seed); nothing here measures wall time.
"""

from __future__ import annotations

from typing import Any

from flashroom.ota.device_end import DeviceStatus
from flashroom.ota.endpoint import CoapEndpoint
from flashroom.ota.link import PRESETS
from flashroom.ota.messages import (
    CODE_BAD_REQUEST,
    CODE_CHANGED,
    CODE_POST,
    CODE_PUT,
    CoapMessage,
    CoapType,
    Hello,
    UpdateDone,
    UpdateReady,
    empty_ack,
)
from flashroom.ota.server_end import ServerConfig, ServerFaults, ServerSession, SessionStatus
from flashroom.ota.simulate import simulate

LINK = PRESETS["3g"]  # 200 ms RTT, no loss: only the faults below lose chunks


def _run(ota: Any, image: bytes, **cfg: Any) -> Any:
    fake = ota.FakeOtaDevice()
    out = simulate(image, fake, server_config=ServerConfig(**cfg), link=LINK, seed=4)
    assert out.status == DeviceStatus.APPLIED, out.device.error
    assert out.session is not None and out.session.status == SessionStatus.COMPLETE
    assert fake.pending == image
    return out


def test_early_update_done_lists_in_flight_chunks_but_server_does_not_resend_them(
    ota: Any,
) -> None:
    image = ota.make_image(64 * 1024, seed=11)
    out = _run(ota, image)
    assert out.session.early_dones == 1
    assert out.device.missed_requests == 1  # the early UpdateDone found the tail in flight
    assert out.session.resends == 0  # ...and none of those in-flight chunks went out twice
    assert out.device.duplicate_chunks == 0


def test_early_update_done_saves_a_round_trip_when_a_chunk_needs_resending(ota: Any) -> None:
    image = ota.make_image(64 * 1024, seed=12)
    faults = ServerFaults(bad_crc_once=frozenset({5}))
    late = _run(ota, image, faults=faults, done_lead_rtts=0.0)
    early = _run(ota, image, faults=faults)
    assert late.session.resends == early.session.resends == 1
    assert late.session.early_dones == 0 and early.session.early_dones == 1
    # Late: the ChunkMissed comes a round trip after the last chunk, then the resend; early:
    # the resend follows the tail at once.
    saved = late.report.link_time_s - early.report.link_time_s
    assert 0.8 * LINK.rtt_s <= saved <= 1.5 * LINK.rtt_s


def test_early_update_done_is_not_sent_without_pacing(ota: Any) -> None:
    out = simulate(ota.IMAGE, ota.FakeOtaDevice(), link=LINK, pace=False, seed=4)
    assert out.status == DeviceStatus.APPLIED
    assert out.session is not None and out.session.early_dones == 0


def test_server_measures_the_round_trip_and_shortens_its_retransmission_timeout(
    ota: Any,
) -> None:
    out = _run(ota, ota.make_image(16 * 1024, seed=13))
    rtt = out.session.rtt_s
    assert rtt is not None and LINK.rtt_s <= rtt <= LINK.rtt_s + 0.05
    # 2 round trips, floored at 0.5 s, capped at the RFC 7252 ACK_TIMEOUT of 2 s.
    assert out.session._ack_timeout() == max(2 * rtt, 0.5)
    off = _run(ota, ota.make_image(16 * 1024, seed=13), rto_rtts=0.0)
    assert off.session._ack_timeout() is None


def test_per_con_ack_timeout_override_keeps_random_factor_and_karn_bookkeeping() -> None:
    ep = CoapEndpoint(seed=1)
    msg = UpdateDone().to_coap(ep.next_mid(), ep.next_token())
    ep.send(msg, 0.0, ack_timeout_s=0.5)
    dl = ep.deadline()
    assert dl is not None and 0.5 <= dl <= 0.75
    assert not ep.was_retransmitted(msg.message_id)
    out, _ = ep.poll(dl)
    assert len(out) == 1 and ep.was_retransmitted(msg.message_id)


def _drive_to_first_early_done(ota: Any) -> tuple[ServerSession, float, CoapMessage]:
    """A hand-driven paced session on a 200 ms link until its early UpdateDone goes out."""
    image = ota.make_image(64 * 1024, seed=14)
    cfg = ServerConfig(pace_bps=LINK.bandwidth_bps, per_datagram_overhead=57)
    sess = ServerSession(image, cfg, seed=1)
    out = [
        CoapMessage.decode(d) for d in sess.receive(Hello(10, bytes(12)).to_coap(7).encode(), 0.0)
    ]
    begin = out[-1]
    assert begin.code == CODE_POST and begin.uri_path == "u"
    sess.receive(empty_ack(begin.message_id).encode(), 0.2)  # round-trip sample: 0.2 s
    ready = UpdateReady(1).to_coap(8, begin.token)
    now = 0.2
    sess.receive(ready.encode(), now)
    for _ in range(10_000):
        dl = sess.deadline()
        assert dl is not None
        now = dl
        for d in sess.poll(now):
            msg = CoapMessage.decode(d)
            if msg.code == CODE_PUT:
                return sess, now, msg
    raise AssertionError("no early UpdateDone")


def test_early_update_done_whose_chunk_missed_is_lost_does_not_stall_the_final_one(
    ota: Any,
) -> None:
    sess, t_early, done = _drive_to_first_early_done(ota)
    assert sess.early_dones == 1 and sess.status == SessionStatus.SENDING
    # The device answers 4.00; its ChunkMissed is lost (the device would retransmit it 2-3 s
    # later). The server keeps sending the queued chunks...
    ack = CoapMessage(CoapType.ACK, CODE_BAD_REQUEST, done.message_id, done.token)
    sess.receive(ack.encode(), t_early + 0.2)
    last_chunk = t_early
    final_at = None
    for _ in range(10_000):
        dl = sess.deadline()
        assert dl is not None and dl < t_early + 1.0, "stalled waiting for the lost ChunkMissed"
        outs = [CoapMessage.decode(d) for d in sess.poll(dl)]
        if any(m.code == CODE_PUT for m in outs):
            final_at = dl
            break
        if outs:
            last_chunk = dl
    assert final_at is not None, "no final UpdateDone"
    # ...and, once the queue has drained, gives the early UpdateDone two round trips to be
    # answered, then sends the final one (instead of waiting out a 2-3 s CoAP retransmission).
    rtt = sess.rtt_s
    assert rtt is not None
    assert abs(final_at - max(last_chunk, t_early + 2 * rtt)) < 0.02
    assert sess.status == SessionStatus.DONE_SENT and sess.early_dones == 1


def test_early_update_done_answered_2_04_completes_and_leaves_no_stale_timer(ota: Any) -> None:
    # E.g. only needless resends were still queued: the device has everything and finishes.
    sess, t_early, done = _drive_to_first_early_done(ota)
    ack = CoapMessage(CoapType.ACK, CODE_CHANGED, done.message_id, done.token)
    sess.receive(ack.encode(), t_early + 0.2)
    assert sess.status == SessionStatus.COMPLETE
    assert sess.deadline() is None  # a driver loop would otherwise spin on a past deadline
    assert sess.poll(t_early + 10.0) == []
