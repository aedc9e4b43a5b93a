"""Real CoAP over UDP: the only module in flashroom that opens sockets (asyncio datagram endpoints).

The protocol ends are sans-I/O (:mod:`flashroom.ota`); this module only moves their
datagrams. Every received datagram is first parsed by aiocoap (``aiocoap.Message.decode``), the
reference CoAP stack, and dropped as malformed if aiocoap rejects it, so what crosses the wire is
checked against an independent RFC 7252 implementation. We do not use aiocoap's request/response
layer: Particle's exchange needs control it does not give (fast-OTA chunks that are never
answered, separate responses carrying an earlier request's 1-byte token, per-datagram link
emulation), so CON retransmission and deduplication live in :mod:`flashroom.ota.endpoint`.

Link emulation on UDP (device side, both directions): each datagram is lost, duplicated or held
back behind the next one with the link's seeded probabilities, and moves at loopback speed;
the time it *would* take is kept by :class:`~flashroom.ota.link.LinkClock`. CoAP retransmission
timeouts are real, so tests use a short ``ack_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flashroom.errors import TransportError
from flashroom.ota.accounting import Meter, TransferReport
from flashroom.ota.device_end import DeviceEnd
from flashroom.ota.link import IDEAL, LinkClock, LinkProfile
from flashroom.ota.messages import CoapMessage, CoapType
from flashroom.ota.server import OtaServer, SessionRecord

_REORDER_HOLD_S = 0.02  # a held-back datagram is released after the next one, or after this


def aiocoap_check(data: bytes) -> bool:
    """True when aiocoap parses ``data`` as a CoAP message."""
    import aiocoap  # aiocoap: deferred for start-up time

    try:
        aiocoap.Message.decode(data)
    except Exception:
        return False
    return True


def aiocoap_reencode(data: bytes) -> bytes:
    """Parse ``data`` with aiocoap and encode it again with aiocoap (interop tests).

    Raises:
        TransportError: aiocoap rejects the datagram.
    """
    import aiocoap  # aiocoap: deferred for start-up time

    try:
        inc = aiocoap.Message.decode(data)
        out = aiocoap.Message(code=inc.code, payload=inc.payload)  # an outgoing copy
        out.mtype = inc.mtype
        out.mid = inc.mid
        out.token = inc.token
        for opt in inc.opt.option_list():
            out.opt.add_option(opt)
        return bytes(out.encode())
    except Exception as e:
        raise TransportError(f"aiocoap rejects the datagram: {e}") from e


def parse_coap_url(url: str) -> tuple[str, int]:
    """``coap://HOST:PORT`` (port defaults to 5683) -> ``(host, port)``.

    Raises:
        TransportError: not a coap:// URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme != "coap" or not parts.hostname:
        raise TransportError(f"server URL {url!r}: expected coap://HOST:PORT")
    try:
        port = parts.port or 5683
    except ValueError as e:
        raise TransportError(f"server URL {url!r}: bad port ({e})") from e
    return parts.hostname, port


def parse_bind(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``; port 0 picks a free one.

    Raises:
        TransportError: no ``:PORT`` or a bad port.
    """
    host, sep, port = bind.rpartition(":")
    if not sep or not host:
        raise TransportError(f"bind address {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:5683")
    try:
        p = int(port)
    except ValueError:
        raise TransportError(f"bind address {bind!r}: port {port!r} is not a number") from None
    if not 0 <= p <= 65535:
        raise TransportError(f"bind address {bind!r}: port {p} outside 0..65535")
    return host.strip("[]"), p


_RCVBUF_BYTES = 4 * 1024 * 1024


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.error: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Fast OTA sends chunks back to back; with the kernel's default receive buffer
            # (~200 KB, ~100 datagrams on loopback) a busy peer drops most of a 256 KB burst
            # and recovers it with ChunkMissed rounds. Ask for room for a whole image; the
            # kernel clamps the request to net.core.rmem_max.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF_BYTES)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer is gone; CoAP timers will notice.
        self.error = exc


async def _next(
    queue: asyncio.Queue[tuple[bytes, Any]], timeout: float | None
) -> tuple[bytes, Any] | None:
    try:
        if timeout is None:
            return await queue.get()
        return await asyncio.wait_for(queue.get(), max(timeout, 0.0))
    except TimeoutError:
        return None


# =========================================================================== server
@dataclass
class ServeReport:
    """What ``ota serve`` did.

    Attributes:
        address: the bound ``(host, port)``.
        sessions: one record per device session.
        wall_s: real seconds served.
        datagrams_in, datagrams_out, bytes_in, bytes_out: socket counters.
        malformed: datagrams aiocoap rejected.
    """

    address: tuple[str, int]
    sessions: list[SessionRecord] = field(default_factory=list)
    wall_s: float = 0.0
    datagrams_in: int = 0
    datagrams_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    malformed: int = 0

    @property
    def completed(self) -> int:
        """Sessions that ended with the device's 2.04 to UpdateDone."""
        return sum(1 for s in self.sessions if s.status == "complete")

    @property
    def payload_bytes(self) -> int:
        """Image bytes delivered by completed sessions."""
        return sum(s.payload_bytes for s in self.sessions)

    @property
    def active_s(self) -> float:
        """Real seconds from the first session's start to the last session's end."""
        starts = [s.started_at for s in self.sessions if s.started_at is not None]
        ends = [s.finished_at for s in self.sessions if s.finished_at is not None]
        if not starts or not ends:
            return 0.0
        return max(ends) - min(starts)

    @property
    def throughput_bps(self) -> float:
        """Delivered image bits per real second while sessions were active (all together)."""
        span = self.active_s or self.wall_s
        return self.payload_bytes * 8 / span if span > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """Stable keys."""
        return {
            "address": f"coap://{self.address[0]}:{self.address[1]}",
            "sessions": len(self.sessions),
            "completed": self.completed,
            "failed": len(self.sessions) - self.completed,
            "payload_bytes": self.payload_bytes,
            "datagrams_in": self.datagrams_in,
            "datagrams_out": self.datagrams_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "malformed": self.malformed,
            "wall_s": round(self.wall_s, 3),
            "active_s": round(self.active_s, 3),
            "throughput_bps": round(self.throughput_bps, 1),
            "session_records": [s.to_json() for s in self.sessions],
        }


async def serve_udp(
    server: OtaServer,
    host: str,
    port: int,
    *,
    max_sessions: int | None = None,
    stop: asyncio.Event | None = None,
    on_bound: Callable[[tuple[str, int]], None] | None = None,
    grace_s: float = 0.5,
) -> ServeReport:
    """Serve ``server`` on UDP ``host:port`` until ``max_sessions`` sessions ended or ``stop``.

    Args:
        server: the sans-I/O server.
        host: address to bind.
        port: UDP port (0: any free port; ``on_bound`` learns which).
        max_sessions: stop after this many sessions have ended (None: run until ``stop``).
        stop: an event that ends serving.
        on_bound: called once with the bound address.
        grace_s: after the last session, keep answering duplicates this long.

    Raises:
        TransportError: the address cannot be bound.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(_Datagrams, local_addr=(host, port))
    except OSError as e:
        raise TransportError(f"cannot bind udp {host}:{port}: {e}") from e
    bound = transport.get_extra_info("sockname")
    report = ServeReport(address=(bound[0], bound[1]))
    if on_bound is not None:
        on_bound(report.address)
    t0 = time.monotonic()
    finish_at: float | None = None

    def send(out: list[tuple[Any, bytes]]) -> None:
        for addr, data in out:
            report.datagrams_out += 1
            report.bytes_out += len(data)
            transport.sendto(data, addr)

    try:
        while True:
            if stop is not None and stop.is_set():
                break
            now = loop.time()
            if (
                finish_at is None
                and max_sessions is not None
                and len(server.records) >= max_sessions
                and all(s.terminal for s in server.sessions.values())
            ):
                finish_at = now + grace_s
            if finish_at is not None and now >= finish_at:
                break
            waits = [d - now for d in (server.deadline(), finish_at) if d is not None]
            timeout = min(waits) if waits else 0.25
            if stop is not None:
                timeout = min(timeout, 0.25)
            item = await _next(proto.queue, timeout)
            now = loop.time()
            if item is not None:
                data, addr = item
                report.datagrams_in += 1
                report.bytes_in += len(data)
                if not aiocoap_check(data):
                    report.malformed += 1
                else:
                    send(server.receive(addr, data, now))
            dl = server.deadline()
            if dl is not None and dl <= now:
                send(server.poll(now))
    finally:
        transport.close()
    report.wall_s = time.monotonic() - t0
    report.sessions = list(server.records)
    return report


# =========================================================================== device
@dataclass
class ConnectReport:
    """The device end's view of one UDP transfer."""

    report: TransferReport
    malformed: int = 0
    wall_s: float = 0.0


class _Shaper:
    """Seeded per-datagram loss/duplication/reordering for one direction."""

    def __init__(self, profile: LinkProfile, rng: random.Random, meter: Meter) -> None:
        self.p = profile
        self.rng = rng
        self.meter = meter
        self.held: list[bytes] = []

    def decide(self, data: bytes) -> list[bytes]:
        """The copies to deliver now (held-back datagrams follow the next one)."""
        p, rng = self.p, self.rng
        if p.loss and rng.random() < p.loss:
            self.meter.lost += 1
            return []
        copies = [data]
        if p.duplicate and rng.random() < p.duplicate:
            self.meter.duplicated += 1
            copies.append(data)
        if p.reorder and rng.random() < p.reorder:
            self.meter.reordered += 1
            self.held.extend(copies)
            return []
        released, self.held = self.held, []
        return copies + released

    def flush(self) -> list[bytes]:
        released, self.held = self.held, []
        return released


async def connect_udp(
    device: DeviceEnd,
    host: str,
    port: int,
    *,
    link: LinkProfile = IDEAL,
    seed: int = 0,
    time_limit_s: float = 600.0,
    sim_ack_timeout_s: float = 2.0,
) -> ConnectReport:
    """Run ``device`` against the server at ``host:port`` until it is done.

    Args:
        device: a fresh device end.
        host: server address.
        port: server UDP port.
        link: loss/duplication/reordering applied at the device, and the figures for the
            simulated link time.
        seed: link RNG seed.
        time_limit_s: real-time bound; the device end is polled until then.
        sim_ack_timeout_s: the ACK timeout charged to simulated time per loss/retransmission.

    Raises:
        TransportError: the socket cannot be opened or the server address does not resolve.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(_Datagrams, remote_addr=(host, port))
    except OSError as e:
        raise TransportError(f"cannot open udp socket to {host}:{port}: {e}") from e
    rng = random.Random(seed)
    meter = Meter()
    clock = LinkClock(link, ack_timeout_s=sim_ack_timeout_s)
    up = _Shaper(link, rng, meter)
    down = _Shaper(link, rng, meter)
    malformed = 0
    t0 = loop.time()
    held_since: float | None = None

    def send(out: list[bytes]) -> None:
        nonlocal held_since
        for data in out:
            meter.count(len(data), up=True)
            clock.on_send(len(data))
            for copy in up.decide(data):
                transport.sendto(copy)
            if up.held and held_since is None:
                held_since = loop.time()

    def deliver(data: bytes, now: float) -> None:
        nonlocal malformed
        if not aiocoap_check(data):
            malformed += 1
            return
        clock.on_receive(len(data))
        send(device.receive(data, now))

    try:
        send(device.start(loop.time()))
        while True:
            now = loop.time()
            if device.done_lingering(now) or now - t0 > time_limit_s:
                break
            waits = [d - now for d in (device.deadline(),) if d is not None]
            if held_since is not None or down.held:
                waits.append(_REORDER_HOLD_S)
            timeout = min(waits) if waits else 0.25
            item = await _next(proto.queue, timeout)
            now = loop.time()
            if item is not None:
                data, _ = item
                meter.count(len(data), up=False)
                lost_before = meter.lost
                copies = down.decide(data)
                if meter.lost > lost_before and _is_con(data):
                    clock.on_loss_of_con()
                for c in copies:
                    deliver(c, now)
            else:
                # Nothing came in: release held-back datagrams (reordering, not loss).
                for c in down.flush():
                    deliver(c, now)
                if held_since is not None:
                    for c in up.flush():
                        transport.sendto(c)
                    held_since = None
            dl = device.deadline()
            if dl is not None and dl <= now:
                before = device.ep.stats.retransmissions
                out = device.poll(now)
                for _ in range(device.ep.stats.retransmissions - before):
                    clock.on_retransmit(1)
                send(out)
        for c in up.flush():
            transport.sendto(c)
        device.abandon(loop.time(), f"time limit of {time_limit_s:g} s reached")
    finally:
        transport.close()
    meter.retransmissions = device.ep.stats.retransmissions + device.resends_seen
    end = clock.now
    report = TransferReport.from_meter(
        meter,
        payload_bytes=device.bytes_written,
        link_time_s=end,
        bandwidth_bps=link.bandwidth_bps,
    )
    return ConnectReport(report, malformed, loop.time() - t0)


def _is_con(data: bytes) -> bool:
    try:
        return CoapMessage.decode(data).mtype == CoapType.CON
    except TransportError:
        return False
