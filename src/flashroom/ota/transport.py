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
import ipaddress
import random
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flashroom.errors import TransportError
from flashroom.ota.accounting import Meter, TransferReport
from flashroom.ota.device_end import DeviceEnd, DeviceStatus
from flashroom.ota.dtls import DTLS_HANDSHAKE, DtlsEnd, dtls_available
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


_DNS_LABEL_MAX = 63  # RFC 1035 2.3.4: labels are 63 octets or less
_DNS_NAME_MAX = 253  # RFC 1035 2.3.4: 255 octets on the wire, 253 characters written out


def _check_host(host: str, what: str) -> str:
    """``host`` as given, or a precise error: a DNS name whose labels or length exceed RFC 1035
    (the resolver would otherwise fail inside the event loop with an encoding error)."""
    if not host:
        raise TransportError(f"{what}: no host")
    if ":" in host:  # an IPv6 literal: the socket layer checks it
        return host
    if len(host) > _DNS_NAME_MAX:
        raise TransportError(
            f"{what}: host name of {len(host)} characters; DNS names are at most "
            f"{_DNS_NAME_MAX} (RFC 1035 2.3.4)"
        )
    for label in host.rstrip(".").split("."):
        if not label:
            raise TransportError(f"{what}: empty label in host name {host!r}")
        if len(label) > _DNS_LABEL_MAX:
            raise TransportError(
                f"{what}: host name label {label[:20]!r}... is {len(label)} characters; DNS "
                f"labels are at most {_DNS_LABEL_MAX} (RFC 1035 2.3.4)"
            )
    return host


def format_hostport(host: str, port: int) -> str:
    """``("::1", 5683)`` -> ``"[::1]:5683"`` (RFC 3986 3.2.2: an IPv6 literal is bracketed)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def coap_url(host: str, port: int) -> str:
    """The ``coap://`` URL that :func:`parse_coap_url` reads back."""
    return f"coap://{format_hostport(host, port)}"


def parse_coap_url(url: str) -> tuple[str, int]:
    """``coap://HOST:PORT`` (port defaults to 5683, RFC 7252 6.1) -> ``(host, port)``;
    an IPv6 host is written ``coap://[::1]:PORT``.

    Raises:
        TransportError: not a coap:// URL with a host, a port outside 1..65535 (port 0 names
            no server), or a host name DNS cannot carry.
    """
    parts = urlsplit(url)
    if parts.scheme != "coap" or not parts.hostname:
        raise TransportError(f"server URL {url!r}: expected coap://HOST:PORT")
    try:
        port = parts.port
    except ValueError as e:
        raise TransportError(f"server URL {url!r}: bad port ({e})") from e
    if port == 0:
        raise TransportError(
            f"server URL {url!r}: port 0 names no server; expected 1..65535 "
            "(leave it out for CoAP's 5683)"
        )
    host = _check_host(parts.hostname, f"server URL {url!r}")
    return host, 5683 if port is None else port


def parse_bind(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> ``(host, port)``; port 0 picks a free one.

    Raises:
        TransportError: no ``:PORT``, a bad port, or a host name DNS cannot carry.
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
    return _check_host(host.strip("[]"), f"bind address {bind!r}"), p


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
        # ICMP port unreachable and the like: the peer is gone (or never was). Wake the
        # reader with an empty datagram, which no CoAP message is, so it looks at once.
        self.error = exc
        self.queue.put_nowait((b"", None))


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
        sessions: the server's records of ended sessions (bounded; see ``ended``).
        ended, completed_count: every session that ended, and those complete.
        wall_s: real seconds served.
        datagrams_in, datagrams_out, bytes_in, bytes_out: socket counters.
        malformed: datagrams aiocoap rejected.
        secure: DTLS with pre-shared keys (False: ``--insecure``).
        dtls_rejected: datagrams that did not authenticate (secure mode).
        refused: Hellos refused, by reason (rate, full, auth), and sessions closed for strays.
    """

    address: tuple[str, int]
    sessions: list[SessionRecord] = field(default_factory=list)
    ended: int = 0
    completed_count: int = 0
    wall_s: float = 0.0
    datagrams_in: int = 0
    datagrams_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    malformed: int = 0
    secure: bool = False
    dtls_rejected: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        """Sessions that ended with the device's 2.04 to UpdateDone."""
        return self.completed_count

    @property
    def payload_bytes(self) -> int:
        """Image bytes delivered by completed sessions (of the records kept)."""
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
            "address": coap_url(*self.address),
            "secure": self.secure,
            "sessions": self.ended,
            "completed": self.completed,
            "failed": self.ended - self.completed,
            "payload_bytes": self.payload_bytes,
            "datagrams_in": self.datagrams_in,
            "datagrams_out": self.datagrams_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "malformed": self.malformed,
            "dtls_rejected": self.dtls_rejected,
            "refused": dict(self.refused),
            "wall_s": round(self.wall_s, 3),
            "active_s": round(self.active_s, 3),
            "throughput_bps": round(self.throughput_bps, 1),
            "session_records": [s.to_json() for s in self.sessions],
        }


_DTLS_HANDSHAKE_TIMEOUT_S = 30.0  # an unauthenticated DTLS peer is dropped after this
_DTLS_POLL_S = 0.25  # how often tinydtls's handshake retransmission timers are looked at


async def serve_udp(
    server: OtaServer,
    host: str,
    port: int,
    *,
    max_sessions: int | None = None,
    stop: asyncio.Event | None = None,
    on_bound: Callable[[tuple[str, int]], None] | None = None,
    grace_s: float = 0.5,
    psk: dict[bytes, bytes] | None = None,
) -> ServeReport:
    """Serve ``server`` on UDP ``host:port`` until ``max_sessions`` sessions ended or ``stop``.

    Args:
        server: the sans-I/O server (``authenticate`` should be set when ``psk`` is given).
        host: address to bind.
        port: UDP port (0: any free port; ``on_bound`` learns which).
        max_sessions: stop after this many sessions have ended (None: run until ``stop``).
        stop: an event that ends serving.
        on_bound: called once with the bound address.
        grace_s: after the last session, keep answering duplicates this long.
        psk: ``{identity: key}``: serve over DTLS 1.2 with these pre-shared keys only; each
            datagram reaches ``server`` decrypted, with the identity its peer authenticated as.
            None: plain CoAP (``--insecure``).

    Raises:
        TransportError: the address cannot be bound, or ``psk`` is given without DTLSSocket.
    """
    if psk is not None and (why := dtls_available()) is not None:
        raise TransportError(why)
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(_Datagrams, local_addr=(host, port))
    except (OSError, UnicodeError) as e:
        raise TransportError(f"cannot bind udp {format_hostport(host, port)}: {e}") from e
    bound = transport.get_extra_info("sockname")
    report = ServeReport(address=(bound[0], bound[1]), secure=psk is not None)
    if on_bound is not None:
        on_bound(report.address)
    t0 = time.monotonic()
    finish_at: float | None = None
    peers: OrderedDict[Any, tuple[DtlsEnd, float]] = OrderedDict()
    max_peers = 2 * server.limits.max_sessions

    def wire(addr: Any) -> Callable[[bytes], None]:
        def put(data: bytes) -> None:
            report.datagrams_out += 1
            report.bytes_out += len(data)
            transport.sendto(data, addr)

        return put

    def send(out: list[tuple[Any, bytes]]) -> None:
        for addr, data in out:
            if psk is None:
                wire(addr)(data)
                continue
            entry = peers.get(addr)
            if entry is not None and entry[0].connected:
                entry[0].write(data)

    def from_peer(addr: Any, data: bytes, now: float) -> list[tuple[bytes, bytes | None]]:
        """The CoAP datagrams in ``data`` with the identity they authenticated as."""
        if psk is None:
            return [(data, None)]
        entry = peers.get(addr)
        if entry is None:
            if not (data and data[0] == DTLS_HANDSHAKE):
                report.dtls_rejected += 1
                return []
            while len(peers) >= max_peers:  # drop the oldest association
                peers.popitem(last=False)
            entry = peers[addr] = (DtlsEnd(wire(addr), psk), now)
        else:
            peers.move_to_end(addr)
        end = entry[0]
        plain = end.feed(data)
        if end.fatal is not None:
            peers.pop(addr, None)
        if not plain and end.connected is False:
            return []
        return [(p, end.identity) for p in plain]

    try:
        while True:
            if stop is not None and stop.is_set():
                break
            now = loop.time()
            if (
                finish_at is None
                and max_sessions is not None
                and server.ended >= max_sessions
                and all(s.terminal for s in server.sessions.values())
            ):
                finish_at = now + grace_s
            if finish_at is not None and now >= finish_at:
                break
            waits = [d - now for d in (server.deadline(), finish_at) if d is not None]
            timeout = min(waits) if waits else 0.25
            if stop is not None or peers:
                timeout = min(timeout, _DTLS_POLL_S)
            item = await _next(proto.queue, timeout)
            now = loop.time()
            if item is not None and item[0]:
                data, addr = item
                report.datagrams_in += 1
                report.bytes_in += len(data)
                for plain, identity in from_peer(addr, data, now):
                    if not aiocoap_check(plain):
                        report.malformed += 1
                    else:
                        send(server.receive(addr, plain, now, identity=identity))
            if peers:
                for addr, (end, born) in list(peers.items()):
                    if not end.connected and now - born > _DTLS_HANDSHAKE_TIMEOUT_S:
                        del peers[addr]
                    else:
                        end.retransmit()
            dl = server.deadline()
            if dl is not None and dl <= now:
                send(server.poll(now))
    finally:
        # no close_notify from the server: tinydtls may already have forgotten a peer that
        # closed, and its binding prints (to stdout) when asked to close one it does not know
        transport.close()
    report.wall_s = time.monotonic() - t0
    report.sessions = list(server.records)
    report.ended = server.ended
    report.completed_count = server.completed
    report.refused = {
        "rate_limited": server.refused_rate,
        "table_full": server.refused_full,
        "unauthenticated": server.refused_auth,
        "closed_for_strays": server.closed_strays,
        "evicted": server.evicted,
    }
    return report


# =========================================================================== device
@dataclass
class ConnectReport:
    """The device end's view of one UDP transfer."""

    report: TransferReport
    malformed: int = 0
    wall_s: float = 0.0
    secure: bool = False
    handshake_datagrams: int = 0  # DTLS handshake, both directions as the device saw them
    handshake_bytes: int = 0


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


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _dtls_handshake(
    end: DtlsEnd,
    proto: _Datagrams,
    url: str,
    *,
    attempts: int,
    ack_timeout_s: float,
) -> None:
    """Complete the DTLS handshake of the device's ``end``.

    The server must answer within ``attempts`` CoAP-style timeouts (``ack_timeout_s``,
    doubling); tinydtls retransmits its flights on its own timers meanwhile.

    Raises:
        TransportError: nobody answers, or the handshake fails (wrong key or an identity the
            server does not know: the server then stays silent, RFC 6347 4.1.2.7).
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    window = sum(ack_timeout_s * 2**i for i in range(max(1, attempts))) * 1.5
    answered = False
    while not end.connected:
        now = loop.time()
        if end.fatal is not None:
            raise TransportError(f"DTLS handshake with {url} failed: alert {end.fatal}")
        if now - t0 > (window if not answered else max(window, _DTLS_HANDSHAKE_TIMEOUT_S / 3)):
            if not answered:
                raise TransportError(
                    f"no answer from {url} after {end.client_hellos} attempts "
                    f"(DTLS ClientHello, {now - t0:.1f} s)"
                )
            raise TransportError(
                f"DTLS handshake with {url} failed after {now - t0:.1f} s: the server does not "
                "accept this device's key (wrong key, or an identity it does not know)"
            )
        if isinstance(proto.error, ConnectionRefusedError) and not answered:
            raise TransportError(
                f"no answer from {url} after {end.client_hellos} attempts: port unreachable "
                "(ICMP), nothing listens there"
            )
        item = await _next(proto.queue, _DTLS_POLL_S / 2)
        if item is not None and item[0]:
            answered = True
            end.feed(item[0])
        end.retransmit()


async def connect_udp(
    device: DeviceEnd,
    host: str,
    port: int,
    *,
    link: LinkProfile = IDEAL,
    seed: int = 0,
    time_limit_s: float = 600.0,
    sim_ack_timeout_s: float = 2.0,
    psk: tuple[bytes, bytes] | None = None,
) -> ConnectReport:
    """Run ``device`` against the server at ``host:port`` until it is done.

    Real time: on loopback, when the link emulation did not drop the device's last reply,
    nothing can still come that the device must answer, so the device's linger after the
    finish (kept to re-answer a retransmitted UpdateDone) ends at once; elsewhere it runs out.

    Args:
        device: a fresh device end.
        host: server address.
        port: server UDP port.
        link: loss/duplication/reordering applied at the device, and the figures for the
            simulated link time.
        seed: link RNG seed.
        time_limit_s: real-time bound; the device end is polled until then.
        sim_ack_timeout_s: the ACK timeout charged to simulated time per loss/retransmission.
        psk: ``(identity, key)``: talk DTLS 1.2 with this pre-shared key (the identity is the
            device ID in hex). The link emulation acts on the CoAP datagrams inside the DTLS
            records (one each); the handshake is not charged to the update (Particle devices
            keep their DTLS session across updates) but counted in the report.

    Raises:
        TransportError: the socket cannot be opened, the server address does not resolve, or
            nobody answers: "no answer from URL after N attempts" (the Hello, or the DTLS
            ClientHello), or the DTLS handshake fails.
    """
    url = coap_url(host, port)
    if psk is not None and (why := dtls_available()) is not None:
        raise TransportError(why)
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(_Datagrams, remote_addr=(host, port))
    except (OSError, UnicodeError) as e:
        raise TransportError(f"cannot open udp socket to {format_hostport(host, port)}: {e}") from e
    rng = random.Random(seed)
    meter = Meter()
    clock = LinkClock(link, ack_timeout_s=sim_ack_timeout_s)
    up = _Shaper(link, rng, meter)
    down = _Shaper(link, rng, meter)
    malformed = 0
    reliable = _is_loopback(host)
    lost_at_end = False  # a reply the device sent once terminal was dropped by the emulation
    held_since: float | None = None
    dtls: DtlsEnd | None = None
    t0 = loop.time()

    try:
        if psk is not None:
            dtls = DtlsEnd(transport.sendto, {psk[0]: psk[1]}, client_identity=psk[0])
            await _dtls_handshake(
                dtls,
                proto,
                url,
                attempts=device.config.hello_attempts,
                ack_timeout_s=device.config.tuning.ack_timeout_s,
            )
        wire: Callable[[bytes], None] = transport.sendto if dtls is None else dtls.write

        def send(out: list[bytes]) -> None:
            nonlocal held_since, lost_at_end
            for data in out:
                meter.count(len(data), up=True)
                clock.on_send(len(data))
                copies = up.decide(data)
                if not copies and not up.held and device.terminal:
                    lost_at_end = True
                for copy in copies:
                    wire(copy)
                if up.held and held_since is None:
                    held_since = loop.time()

        def deliver(data: bytes, now: float) -> None:
            nonlocal malformed
            if not aiocoap_check(data):
                malformed += 1
                return
            clock.on_receive(len(data))
            send(device.receive(data, now))

        def incoming(raw: bytes) -> list[bytes]:
            return [raw] if dtls is None else dtls.feed(raw)

        send(device.start(loop.time()))
        while True:
            now = loop.time()
            if device.finished and reliable and not lost_at_end and not down.held:
                device.stop_lingering(now)
            if device.done_lingering(now) or now - t0 > time_limit_s:
                break
            if isinstance(proto.error, ConnectionRefusedError):
                device.unreachable(now, "port unreachable (ICMP): nothing listens there")
                proto.error = None
                continue
            waits = [d - now for d in (device.deadline(),) if d is not None]
            if held_since is not None or down.held:
                waits.append(_REORDER_HOLD_S)
            timeout = min(waits) if waits else 0.25
            item = await _next(proto.queue, timeout)
            now = loop.time()
            if item is not None and not item[0]:
                continue  # the wake-up of an ICMP error: looked at above
            if item is not None:
                for data in incoming(item[0]):
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
                        wire(c)
                    held_since = None
            dl = device.deadline()
            if dl is not None and dl <= now:
                before = device.ep.stats.retransmissions
                out = device.poll(now)
                for _ in range(device.ep.stats.retransmissions - before):
                    clock.on_retransmit(1)
                send(out)
        for c in up.flush():
            wire(c)
        device.abandon(loop.time(), f"time limit of {time_limit_s:g} s reached")
        if dtls is not None:
            dtls.close()
    finally:
        transport.close()
    if device.status == DeviceStatus.UNREACHABLE:
        n = device.ep.stats.datagrams_sent  # the Hello and its retransmissions, nothing else
        raise TransportError(
            f"no answer from {url} after {n} attempt{'s' if n != 1 else ''}: "
            f"{device.error or 'the Hello was never acknowledged'}"
        )
    meter.retransmissions = device.ep.stats.retransmissions + device.resends_seen
    end = clock.now
    report = TransferReport.from_meter(
        meter,
        payload_bytes=device.bytes_written,
        link_time_s=end,
        bandwidth_bps=link.bandwidth_bps,
    )
    return ConnectReport(
        report,
        malformed,
        loop.time() - t0,
        secure=dtls is not None,
        handshake_datagrams=0 if dtls is None else dtls.handshake_datagrams,
        handshake_bytes=0 if dtls is None else dtls.handshake_bytes,
    )


def _is_con(data: bytes) -> bool:
    try:
        return CoapMessage.decode(data).mtype == CoapType.CON
    except TransportError:
        return False
