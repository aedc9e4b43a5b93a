"""The OTA server as a sans-I/O multiplexer: one :class:`ServerSession` per device address.

A device starts a session with a Hello (``POST h``). A new Hello from an address whose session is
still running means the device restarted: the old session is closed as superseded and a fresh
one begins (the device "starts again"). Datagrams from unknown addresses that are not a Hello
get an RST when they are CON (RFC 7252 4.2).

Facing a network (issue 12), the server keeps bounded state and gives nothing away blind:

* **Bounded table.** At most :attr:`ServerLimits.max_sessions` sessions. A session ends by the
  protocol's own timers (the server's response timeout, CoAP's MAX_RETRANSMIT, and the device's
  own inactivity timeout: a device silent that long has reset, spec 6.5); an ended session is
  kept one CoAP MAX_TRANSMIT_SPAN (RFC 7252 4.8.2) to answer duplicates, then dropped. When the
  table is full a new Hello evicts the oldest ended session, else the oldest one that never got
  an UpdateReady, else it is dropped. Records of ended sessions are kept for the report up to
  :attr:`ServerLimits.max_records`; the counts cover every session.
* **Rate limit per peer.** New sessions per peer host are limited by a token bucket.
* **Unguessable exchanges.** Message IDs and tokens come from the OS random source
  (``seed=None``), a separate response is taken only after the ACK of the request it answers
  (:mod:`flashroom.ota.server_end`), and a session that receives more than
  :attr:`ServerLimits.max_strays` datagrams answering nothing open is closed.
* **Authentication.** With ``authenticate=True`` a Hello is taken only from a datagram the
  transport authenticated (DTLS with a pre-shared key per device,
  :mod:`flashroom.ota.transport`), and only when its device ID is the identity that
  authenticated.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from flashroom.deviceos.gen2 import PROTOCOL_BUFFER
from flashroom.errors import TransportError
from flashroom.ota.endpoint import MAX_RETRANSMIT
from flashroom.ota.messages import (
    CODE_POST,
    Chunk,
    CoapMessage,
    CoapType,
    Hello,
    reset_for,
)
from flashroom.ota.server_end import ServerConfig, ServerSession, SessionStatus
from flashroom.ota.stream import OtaOffer

Addr = Hashable
Out = list[tuple[Any, bytes]]

#: The device's inactivity timeout on the slowest Gen2 platform (Electron, spec 6.5): a session
#: whose device has said nothing for this long is over, whatever state the server thinks it is in.
IDLE_EXPIRY_S = 300.0


def max_chunk_size(platform_id: int | None, file_length: int) -> int:
    """The largest chunk a v2.3.1 device of ``platform_id`` can receive for a file of
    ``file_length`` bytes: the fast-OTA chunk message (CoAP header, 1-byte token, Uri-Path,
    CRC and index options, payload marker) plus the chunk bitmap kept at the end of the same
    buffer must fit the protocol channel's buffer (``deviceos.gen2.PROTOCOL_BUFFER``). ``None``
    (platform unknown): the smallest Gen2 buffer.
    """
    header = len(Chunk(b"", 0, 0).to_coap(0, b"\0", CoapType.NON).encode()) + 1  # + marker
    if platform_id in PROTOCOL_BUFFER:
        bufs = [PROTOCOL_BUFFER[platform_id]]
    else:
        bufs = list(PROTOCOL_BUFFER.values())
    usable = min(size - prefix - suffix for size, prefix, suffix in bufs)
    size = usable - header
    while size > 1 and header + size + math.ceil(math.ceil(file_length / size) / 8) > usable:
        size -= 1
    return size


def check_chunk_size(chunk_size: int, platform_id: int | None, file_length: int) -> None:
    """Raise when a device of ``platform_id`` cannot receive ``chunk_size``-byte chunks.

    Raises:
        TransportError: below 1, or above :func:`max_chunk_size`.
    """
    limit = max_chunk_size(platform_id, file_length)
    if not 1 <= chunk_size <= limit:
        which = (
            f"platform {platform_id}'s" if platform_id in PROTOCOL_BUFFER else "the smallest Gen2"
        )
        raise TransportError(
            f"chunk size {chunk_size}: expected 1..{limit} for a {file_length}-byte file; "
            f"Device OS 2.3.1 reads each message into {which} protocol buffer "
            "(PROTOCOL_BUFFER_SIZE) and keeps the chunk bitmap at its end "
            "(docs/device-os.md#protocol)"
        )


@dataclass(frozen=True)
class ServerLimits:
    """What one server keeps and lets a peer do (module docstring).

    Attributes:
        max_sessions: sessions held at once.
        max_records: ended sessions kept in :attr:`OtaServer.records` (the counts go on).
        hello_rate: new sessions per second per peer host (token bucket refill).
        hello_burst: new sessions a peer host may open at once (bucket size).
        max_strays: datagrams answering no open exchange before a session is closed.
        idle_expiry_s: close a session whose device has sent nothing for this long.
        ended_keep_s: keep an ended session this long (None: the tuning's MAX_TRANSMIT_SPAN).
    """

    max_sessions: int = 1024
    max_records: int = 1000
    hello_rate: float = 20.0
    hello_burst: int = 256
    max_strays: int = 32
    idle_expiry_s: float = IDLE_EXPIRY_S
    ended_keep_s: float | None = None


@dataclass
class SessionRecord:
    """A finished session, for the server's report."""

    addr: Any
    status: str
    error: str | None
    device_id: str
    payload_bytes: int
    chunks_sent: int
    resends: int
    started_at: float | None
    finished_at: float | None
    encoding: str = "raw"  # what the offer chose for this device (ota/stream.py)
    module_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """Stable keys."""
        return {
            "peer": peer_str(self.addr),
            "status": self.status,
            "error": self.error,
            "device_id": self.device_id,
            "payload_bytes": self.payload_bytes,
            "chunks_sent": self.chunks_sent,
            "resends": self.resends,
            "encoding": self.encoding,
            "module_bytes": self.module_bytes,
        }


@dataclass(frozen=True)
class SessionEvent:
    """One thing that happened to a session (for ``ota serve``'s log lines).

    ``kind``: ``connected`` (a Hello started it), ``begun`` (UpdateReady: the data phase starts),
    ``progress`` (another 10 % of the chunks confirmed or sent), ``done`` or ``failed``.
    """

    kind: str
    peer: str
    device_id: str
    at: float
    percent: int = 0
    chunks_done: int = 0
    chunks: int = 0
    chunk_size: int = 0
    fast: bool = False
    bytes_sent: int = 0
    payload_bytes: int = 0
    resends: int = 0
    elapsed_s: float = 0.0
    error: str | None = None


def peer_str(addr: Any) -> str:
    """``("127.0.0.1", 5683)`` -> ``"127.0.0.1:5683"``; ``("::1", 5683)`` -> ``"[::1]:5683"``."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)


class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst``."""

    __slots__ = ("level", "stamp")

    def __init__(self, burst: float, now: float) -> None:
        self.level = burst
        self.stamp = now

    def take(self, now: float, rate: float, burst: float) -> bool:
        self.level = min(burst, self.level + (now - self.stamp) * rate)
        self.stamp = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


@dataclass
class _Live:
    """Bookkeeping beside one session."""

    sess: ServerSession
    last_heard: float
    due: float | None = None  # the time of this session's live heap entry
    percent: int = 0  # the last progress event, in steps of 10 %
    connected: bool = False  # events sent
    begun: bool = False
    recorded: bool = False


class OtaServer:
    """Serves one firmware image to any number of devices (sans-I/O).

    Args:
        image: the module file to send.
        config: session parameters.
        seed: base seed for message IDs and tokens (each session gets seed + n); ``None``
            draws them from the OS random source, unguessable (what a server facing a network
            uses; module docstring).
        on_progress: called as ``on_progress(addr, done, total)`` when a session advances.
        limits: table size, rate limit, stray limit, expiry.
        authenticate: take a Hello only from an authenticated datagram whose identity is the
            Hello's device ID (see :meth:`receive`).
        on_event: called with each :class:`SessionEvent`.
        platform_id: the firmware's platform, for the chunk-size limit (None: the smallest).
        offer: serve a delta or compressed file to devices that can apply one (``image`` is
            then the raw module; ota/stream.py).

    Raises:
        TransportError: an empty image, or a chunk size the device cannot receive.
    """

    def __init__(
        self,
        image: bytes,
        config: ServerConfig | None = None,
        *,
        seed: int | None = 0,
        on_progress: Callable[[Any, int, int], None] | None = None,
        limits: ServerLimits | None = None,
        authenticate: bool = False,
        on_event: Callable[[SessionEvent], None] | None = None,
        platform_id: int | None = None,
        offer: OtaOffer | None = None,
    ) -> None:
        if not image:
            raise TransportError("the firmware image is empty: an empty update is never sent")
        self.image = image
        self.offer = offer
        self.config = config or ServerConfig()
        check_chunk_size(self.config.chunk_size, platform_id, len(image))
        self.seed = seed
        self.on_progress = on_progress
        self.on_event = on_event
        self.limits = limits or ServerLimits()
        self.authenticate = authenticate
        self.sessions: dict[Any, ServerSession] = {}
        self._live: dict[Any, _Live] = {}
        self.records: deque[SessionRecord] = deque(maxlen=self.limits.max_records)
        self.status_counts: dict[str, int] = {}
        self._count = 0
        self._retrans_done = 0  # retransmissions of sessions already dropped
        self._heap: list[tuple[float, int, Any, int]] = []
        self._seq = itertools.count()
        self._buckets: OrderedDict[Any, _Bucket] = OrderedDict()
        self._ended: OrderedDict[Any, None] = OrderedDict()  # ended sessions still held
        t = self.config.tuning
        span = t.ack_timeout_s * (2**t.max_retransmit - 1) * t.ack_random_factor
        self._ended_keep = (
            self.limits.ended_keep_s if self.limits.ended_keep_s is not None else span
        )
        self.refused_rate = 0  # Hellos dropped by the per-peer rate limit
        self.refused_full = 0  # Hellos dropped with the table full of live sessions
        self.refused_auth = 0  # Hellos without (matching) authentication
        self.evicted = 0  # sessions dropped to make room
        self.closed_strays = 0  # sessions closed for answering nothing open too often

    # ----------------------------------------------------------------- sessions
    def _new_session(self, addr: Any, now: float) -> ServerSession:
        self._count += 1
        cb = self.on_progress

        def progress(done: int, total: int) -> None:
            if cb is not None:
                cb(addr, done, total)
            self._progress_event(addr, done, total)

        seed = None if self.seed is None else self.seed + self._count
        sess = ServerSession(
            self.image, self.config, seed=seed, progress=progress, offer=self.offer
        )
        self.sessions[addr] = sess
        self._live[addr] = _Live(sess, now)
        return sess

    def _make_room(self, now: float) -> bool:
        """Free a table slot: the oldest ended session, else the oldest without UpdateReady
        (the table is in insertion order, so that one is near its front)."""
        if len(self.sessions) < self.limits.max_sessions:
            return True
        victim = next(iter(self._ended), None)
        if victim is None:
            victim = next(
                (
                    a
                    for a, s in self.sessions.items()
                    if s.status in (SessionStatus.WAITING, SessionStatus.BEGIN)
                ),
                None,
            )
        if victim is None:
            return False
        self.sessions[victim].close(now, "evicted: the session table is full")
        self._after(victim, now)
        self._drop(victim)
        self.evicted += 1
        return True

    def _rate_ok(self, addr: Any, now: float) -> bool:
        host = addr[0] if isinstance(addr, tuple) and addr else addr
        lim = self.limits
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(lim.hello_burst, now)
            while len(self._buckets) > 4 * lim.max_sessions:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(host)
        return bucket.take(now, lim.hello_rate, lim.hello_burst)

    def _drop(self, addr: Any) -> None:
        sess = self.sessions.pop(addr, None)
        live = self._live.pop(addr, None)
        self._ended.pop(addr, None)
        if sess is not None and live is not None:
            self._record(addr, live)
            self._retrans_done += sess.ep.stats.retransmissions + sess.resends

    # ----------------------------------------------------------------- datagrams
    def receive(self, addr: Any, data: bytes, now: float, *, identity: bytes | None = None) -> Out:
        """One datagram from ``addr``.

        Args:
            addr: the peer's address.
            data: the CoAP datagram (decrypted, when the transport authenticates).
            now: the time.
            identity: the identity the transport authenticated ``addr`` as (a DTLS PSK
                identity), None when it did not. With ``authenticate``, a Hello opens a
                session only when ``identity`` is its device ID in hex.
        """
        sess = self.sessions.get(addr)
        try:
            msg = CoapMessage.decode(data)
        except TransportError:
            return []
        is_hello = msg.code == CODE_POST and msg.uri_path == "h" and msg.mtype != CoapType.ACK
        if is_hello and (sess is None or msg.message_id != sess.hello_mid):
            refusal = self._admit(addr, msg, now, identity)
            if refusal is not None:
                if sess is None and msg.mtype == CoapType.CON and refusal == "auth":
                    return [(addr, reset_for(msg.message_id).encode())]
                return []
            if sess is not None:
                sess.close(now, "superseded: the device said Hello again (it restarted)")
                self._after(addr, now)
                self._drop(addr)
            elif not self._make_room(now):
                self.refused_full += 1
                return []
            sess = self._new_session(addr, now)
        if sess is None:
            if msg.mtype == CoapType.CON:
                return [(addr, reset_for(msg.message_id).encode())]
            return []
        live = self._live[addr]
        live.last_heard = now
        out = [(addr, d) for d in sess.receive(data, now)]
        self._after(addr, now)
        return out

    def _admit(self, addr: Any, msg: CoapMessage, now: float, identity: bytes | None) -> str | None:
        """Why a Hello may not open a session (None: it may)."""
        if self.authenticate:
            try:
                hello = Hello.from_coap(msg)
            except TransportError:
                self.refused_auth += 1
                return "auth"
            if identity is None or identity.decode("latin-1") != hello.device_id.hex():
                self.refused_auth += 1
                return "auth"
        if not self._rate_ok(addr, now):
            self.refused_rate += 1
            return "rate"
        return None

    def poll(self, now: float) -> Out:
        """Timers of every session due at ``now``."""
        out: Out = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, addr, ident = heapq.heappop(heap)
            live = self._live.get(addr)
            if live is None or id(live.sess) != ident or live.due != at:
                continue  # a stale entry: the session moved on or is gone
            live.due = None
            sess = live.sess
            if sess.terminal:
                if now >= (sess.finished_at or 0.0) + self._ended_keep:
                    self._drop(addr)
                    continue
            elif now >= live.last_heard + self.limits.idle_expiry_s:
                sess.close(
                    now,
                    f"expired: nothing from the device for {self.limits.idle_expiry_s:g} s "
                    "(it has reset: TIMING_FLASH_UPDATE_TIMEOUT, docs/device-os.md#protocol)",
                )
            else:
                dl = sess.deadline()
                if dl is not None and dl <= now:
                    out += [(addr, d) for d in sess.poll(now)]
            self._after(addr, now)
        return out

    def deadline(self) -> float | None:
        """The earliest time :meth:`poll` has something to do."""
        heap = self._heap
        while heap:
            at, _, addr, ident = heap[0]
            live = self._live.get(addr)
            if live is not None and id(live.sess) == ident and live.due == at:
                return at
            heapq.heappop(heap)  # stale
        return None

    def _due(self, live: _Live) -> float:
        sess = live.sess
        if sess.terminal:
            return (sess.finished_at or 0.0) + self._ended_keep
        expiry = live.last_heard + self.limits.idle_expiry_s
        dl = sess.deadline()
        return expiry if dl is None else min(dl, expiry)

    def _after(self, addr: Any, now: float) -> None:
        """After a session ran: strays, events, records, its next deadline."""
        live = self._live.get(addr)
        if live is None:
            return
        sess = live.sess
        strays = sess.strays + sess.ep.stats.unmatched_acks
        if not sess.terminal and strays > self.limits.max_strays:
            self.closed_strays += 1
            sess.close(
                now,
                f"closed: {strays} datagrams answered no open exchange "
                "(blind guessing, or a confused peer)",
            )
        if not live.connected and sess.hello is not None:
            live.connected = True
            self._event("connected", addr, sess, now)
        self._begun(addr, live, now)
        if sess.terminal and not live.recorded:
            self._ended[addr] = None
            kind = "done" if sess.status == SessionStatus.COMPLETE else "failed"
            self._event(kind, addr, sess, now)
            self._record(addr, live)
        due = self._due(live)
        if due != live.due:
            live.due = due
            heapq.heappush(self._heap, (due, next(self._seq), addr, id(sess)))
            if len(self._heap) > 4 * len(self._live) + 1024:
                self._compact()

    def _compact(self) -> None:
        """Rebuild the heap from the live entries only (stale ones pile up under churn)."""
        self._heap = [
            (lv.due, next(self._seq), a, id(lv.sess))
            for a, lv in self._live.items()
            if lv.due is not None
        ]
        heapq.heapify(self._heap)

    # ----------------------------------------------------------------- events and records
    def _event(self, kind: str, addr: Any, sess: ServerSession, now: float, **kw: Any) -> None:
        if self.on_event is None:
            return
        start = sess.started_at if sess.started_at is not None else now
        self.on_event(
            SessionEvent(
                kind=kind,
                peer=peer_str(addr),
                device_id=sess.hello.device_id.hex() if sess.hello else "",
                at=now,
                chunks=sess.chunk_count,
                chunk_size=sess.config.chunk_size,
                fast=sess.fast,
                bytes_sent=sess.chunk_bytes_sent,
                payload_bytes=len(self.image) if sess.status == SessionStatus.COMPLETE else 0,
                resends=sess.resends,
                elapsed_s=(sess.finished_at or now) - start,
                error=sess.error,
                **kw,
            )
        )

    def _begun(self, addr: Any, live: _Live, now: float) -> None:
        """The ``begun`` event, once, when the session has had its UpdateReady."""
        if not live.begun and live.sess.ready_at is not None:
            live.begun = True
            self._event("begun", addr, live.sess, now)

    def _progress_event(self, addr: Any, done: int, total: int) -> None:
        live = self._live.get(addr)
        if live is None or total <= 0 or self.on_event is None:
            return
        pct = (done * 100 // total) // 10 * 10
        if 0 < pct < 100 and pct > live.percent:
            live.percent = pct
            sess = live.sess
            self._begun(addr, live, sess.ready_at or 0.0)  # fast OTA: chunks go at once
            self._event("progress", addr, sess, sess.ready_at or 0.0, percent=pct, chunks_done=done)

    def _record(self, addr: Any, live: _Live) -> None:
        if live.recorded:
            return
        live.recorded = True
        sess = live.sess
        status = str(sess.status)
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        self.records.append(
            SessionRecord(
                addr=addr,
                status=status,
                error=sess.error,
                device_id=sess.hello.device_id.hex() if sess.hello else "",
                payload_bytes=len(sess.image) if sess.status == SessionStatus.COMPLETE else 0,
                chunks_sent=sess.chunks_sent,
                resends=sess.resends,
                started_at=sess.started_at,
                finished_at=sess.finished_at,
                encoding=sess.choice.encoding if sess.choice else "raw",
                module_bytes=len(sess.choice.module) if sess.choice else len(self.image),
            )
        )

    # ----------------------------------------------------------------- figures
    @property
    def ended(self) -> int:
        """Sessions that ended (complete or failed), all of them, recorded or not."""
        return sum(self.status_counts.values())

    @property
    def retransmissions(self) -> int:
        """CoAP retransmissions plus chunk resends over every session."""
        live = sum(s.ep.stats.retransmissions + s.resends for s in self.sessions.values())
        return self._retrans_done + live

    @property
    def completed(self) -> int:
        """Sessions that finished with the device's 2.04 to UpdateDone."""
        return self.status_counts.get(str(SessionStatus.COMPLETE), 0)

    @property
    def failed(self) -> int:
        """Sessions that ended otherwise."""
        return self.ended - self.completed


__all__ = [
    "IDLE_EXPIRY_S",
    "MAX_RETRANSMIT",
    "OtaServer",
    "ServerLimits",
    "SessionEvent",
    "SessionRecord",
    "check_chunk_size",
    "max_chunk_size",
    "peer_str",
]
