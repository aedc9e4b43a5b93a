"""The OTA server under hostile input (issue 12): bounded table, expiry, blind guesses, rate
limit, authentication. A few hundred Hellos here; 40,000 in ``bench/bench_ota.py``."""

from __future__ import annotations

from typing import Any

import pytest

from flashroom.errors import TransportError
from flashroom.ota.messages import (
    CODE_CHANGED,
    CoapMessage,
    CoapType,
    Hello,
    UpdateReady,
    empty_ack,
)
from flashroom.ota.server import OtaServer, ServerLimits, SessionEvent, max_chunk_size
from flashroom.ota.server_end import ServerConfig, SessionStatus
from flashroom.particle.build import synthetic_user_app

APP = synthetic_user_app(32 * 1024, platform="electron", version=9, seed=3)


def _hello(n: int, mid: int = 0x1000) -> bytes:
    return Hello(10, n.to_bytes(12, "big")).to_coap(mid).encode()


def _sent(out: list[tuple[Any, bytes]]) -> int:
    return sum(len(d) for _, d in out)


def test_hellos_from_many_peers_keep_a_bounded_table_that_empties_by_itself() -> None:
    srv = OtaServer(
        APP, seed=None, limits=ServerLimits(max_sessions=64, max_records=50, hello_burst=1000)
    )
    for port in range(300):
        srv.receive(("10.0.0.1", 40000 + port), _hello(port), 0.0)
        assert len(srv.sessions) <= 64
    assert srv.evicted == 300 - 64
    # nobody answers: the UpdateBegins are retransmitted, given up, kept a while, dropped
    now = 0.0
    while (dl := srv.deadline()) is not None:
        now = dl
        srv.poll(now)
    assert not srv.sessions
    assert now < 600  # the protocol's own timeouts (RFC 7252 MAX_TRANSMIT_WAIT + span)
    assert srv.ended == 300 and srv.failed == 300
    assert len(srv.records) == 50  # bounded; the counts cover every session


def test_a_session_whose_device_goes_silent_expires() -> None:
    cfg = ServerConfig(response_timeout_s=1e9)  # only the idle expiry can end it
    srv = OtaServer(APP, cfg, seed=None, limits=ServerLimits(idle_expiry_s=300))
    addr = ("10.0.0.2", 5000)
    out = srv.receive(addr, _hello(1), 0.0)
    begin = CoapMessage.decode(out[-1][1])
    srv.receive(addr, empty_ack(begin.message_id).encode(), 0.1)
    assert srv.sessions[addr].status == SessionStatus.BEGIN
    srv.poll(299.0)
    assert srv.sessions[addr].status == SessionStatus.BEGIN
    srv.poll(300.2)
    rec = srv.sessions[addr]
    assert rec.status == SessionStatus.FAILED and "expired" in (rec.error or "")


def test_blind_update_ready_guesses_do_not_start_the_stream() -> None:
    """One Hello and 256 blind 2.04s (every 1-byte token) used to stream the whole image."""
    srv = OtaServer(APP, seed=None)
    addr = ("10.0.0.3", 5683)
    sent = _sent(srv.receive(addr, _hello(2), 0.0))
    received = len(_hello(2))
    for token in range(256):
        ready = UpdateReady(1).to_coap(0x2000 + token, bytes((token,))).encode()
        received += len(ready)
        sent += _sent(srv.receive(addr, ready, 0.01))
    sess = srv.sessions[addr]
    assert sess.chunks_sent == 0
    assert sent < received  # no amplification
    assert sess.status == SessionStatus.FAILED and "answered no open exchange" in (sess.error or "")


def test_update_ready_before_the_begin_ack_is_held_until_the_ack() -> None:
    """The honest device whose ACK was lost: its UpdateReady waits, then the stream starts."""
    srv = OtaServer(APP, seed=None)
    addr = ("10.0.0.4", 5683)
    begin = CoapMessage.decode(srv.receive(addr, _hello(3), 0.0)[-1][1])
    ready = UpdateReady(1).to_coap(0x3000, begin.token).encode()
    assert srv.receive(addr, ready, 0.01) == []  # held: no ACK, no chunk
    out = srv.receive(addr, empty_ack(begin.message_id).encode(), 0.02)
    msgs = [CoapMessage.decode(d) for _, d in out]
    assert msgs[0].mtype == CoapType.ACK and msgs[0].message_id == 0x3000
    assert sum(1 for m in msgs if m.uri_path == "c") == srv.sessions[addr].chunk_count


def test_unpredictable_servers_draw_fresh_message_ids_and_tokens() -> None:
    firsts = set()
    for _ in range(4):
        srv = OtaServer(APP, seed=None)
        begin = CoapMessage.decode(srv.receive(("10.0.0.5", 1), _hello(4), 0.0)[-1][1])
        firsts.add((begin.message_id, begin.token))
    assert len(firsts) > 1  # equal four times by chance: p = 2**-72


def test_new_sessions_per_peer_host_are_rate_limited() -> None:
    srv = OtaServer(APP, seed=None, limits=ServerLimits(hello_rate=1.0, hello_burst=16))
    for port in range(200):
        srv.receive(("10.0.0.6", port), _hello(port), 0.0)
    assert len(srv.sessions) == 16 and srv.refused_rate == 184
    srv.receive(("10.0.0.7", 1), _hello(999), 0.0)  # another host has its own bucket
    assert len(srv.sessions) == 17


def test_authenticated_server_takes_a_hello_only_from_its_device_identity() -> None:
    srv = OtaServer(APP, seed=None, authenticate=True)
    addr = ("10.0.0.8", 1)
    dev = (5).to_bytes(12, "big")
    out = srv.receive(addr, _hello(5), 0.0)  # not authenticated
    assert [CoapMessage.decode(d).mtype for _, d in out] == [CoapType.RST]
    srv.receive(addr, _hello(5), 0.0, identity=b"someone-else")
    assert not srv.sessions and srv.refused_auth == 2
    srv.receive(addr, _hello(5), 0.0, identity=dev.hex().encode())
    assert addr in srv.sessions


def test_session_events_say_connected_begun_progress_and_done() -> None:
    events: list[SessionEvent] = []
    srv = OtaServer(APP, ServerConfig(fast=False), seed=None, on_event=events.append)
    addr = ("10.0.0.9", 7)
    out = srv.receive(addr, _hello(6), 0.0)
    now = 0.0
    mid = 0x5000
    while out:
        replies: list[bytes] = []
        for _, d in out:
            m = CoapMessage.decode(d)
            if m.mtype != CoapType.CON:
                continue
            now += 0.001
            mid += 1
            if m.uri_path == "u" and not m.payload:  # UpdateDone: 2.04 piggybacked
                replies.append(
                    CoapMessage(CoapType.ACK, CODE_CHANGED, m.message_id, m.token).encode()
                )
            else:
                replies.append(empty_ack(m.message_id).encode())
                replies.append(CoapMessage(CoapType.NON, CODE_CHANGED, mid, m.token).encode())
        out = [o for r in replies for o in srv.receive(addr, r, now)]
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["connected", "begun"] and kinds[-1] == "done"
    assert [e.percent for e in events if e.kind == "progress"] == list(range(10, 100, 10))
    assert events[-1].payload_bytes == len(APP) and events[-1].bytes_sent == len(APP)


def test_empty_firmware_and_oversized_chunks_are_refused() -> None:
    with pytest.raises(TransportError, match="empty"):
        OtaServer(b"")
    limit = max_chunk_size(10, len(APP))
    assert 800 < limit < 900  # Electron: PROTOCOL_BUFFER_SIZE 900 less header and bitmap
    OtaServer(APP, ServerConfig(chunk_size=limit), platform_id=10)
    with pytest.raises(TransportError, match="PROTOCOL_BUFFER_SIZE"):
        OtaServer(APP, ServerConfig(chunk_size=limit + 1), platform_id=10)
    assert max_chunk_size(6, len(APP)) < limit  # Photon's 800-byte LightSSL buffer


def test_a_compressed_module_is_refused_unless_the_hello_says_it_inflates() -> None:
    # issue 12 #1: Gen2 never sets Hello flag 0x40 and has no inflater (protocol.cpp:36-44)
    from flashroom.emu.device import Device
    from flashroom.ota.messages import Hello
    from flashroom.ota.server_end import compressed_refusal
    from flashroom.particle.build import synthetic_user_app
    from flashroom.particle.compress import compress_module
    from flashroom.scenarios.deliver import update_in_process

    packed = compress_module(synthetic_user_app(48 * 1024, seed=8))
    gen2 = Hello(10, b"\x01" * 12)
    gen3 = Hello(12, b"\x01" * 12, flags=0x40)
    why = compressed_refusal(packed, 0, gen2)
    assert why is not None and "0x40" in why
    assert compressed_refusal(packed, 0, gen3) is None
    assert compressed_refusal(synthetic_user_app(48 * 1024, seed=8), 0, gen2) is None
    dev = Device.new("electron", "extended")
    before = dev.user_part_bytes()
    res = update_in_process(dev, packed)
    assert res.result != "applied" and dev.user_part_bytes() == before
