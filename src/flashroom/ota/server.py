"""The OTA server as a sans-I/O multiplexer: one :class:`ServerSession` per device address.

A device starts a session with a Hello (``POST h``). A new Hello from an address whose session is
still running means the device restarted: the old session is closed as superseded and a fresh
one begins (the device "starts again"). Datagrams from unknown addresses that are not a Hello
get an RST when they are CON (RFC 7252 4.2).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from flashroom.errors import TransportError
from flashroom.ota.messages import CODE_POST, CoapMessage, CoapType, reset_for
from flashroom.ota.server_end import ServerConfig, ServerSession, SessionStatus
from flashroom.ota.stream import OtaOffer

Addr = Hashable
Out = list[tuple[Any, bytes]]


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
            "peer": _peer(self.addr),
            "status": self.status,
            "error": self.error,
            "device_id": self.device_id,
            "payload_bytes": self.payload_bytes,
            "chunks_sent": self.chunks_sent,
            "resends": self.resends,
            "encoding": self.encoding,
            "module_bytes": self.module_bytes,
        }


def _peer(addr: Any) -> str:
    """``("127.0.0.1", 5683)`` -> ``"127.0.0.1:5683"``."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)


class OtaServer:
    """Serves one firmware image to any number of devices (sans-I/O).

    Args:
        image: the module file to send.
        config: session parameters.
        seed: base seed for message IDs and tokens (each session gets seed + n).
        on_progress: called as ``on_progress(addr, done, total)`` when a session advances.
        offer: serve a delta or compressed file to devices that can apply one (``image`` is
            then the raw module; ota/stream.py).
    """

    def __init__(
        self,
        image: bytes,
        config: ServerConfig | None = None,
        *,
        seed: int = 0,
        on_progress: Callable[[Any, int, int], None] | None = None,
        offer: OtaOffer | None = None,
    ) -> None:
        if not image:
            raise TransportError("the firmware image is empty")
        self.image = image
        self.offer = offer
        self.config = config or ServerConfig()
        self.seed = seed
        self.on_progress = on_progress
        self.sessions: dict[Any, ServerSession] = {}
        self.all_sessions: list[ServerSession] = []
        self.records: list[SessionRecord] = []
        self._recorded: set[int] = set()
        self._count = 0

    def _new_session(self, addr: Any) -> ServerSession:
        self._count += 1
        cb = self.on_progress

        def progress(done: int, total: int) -> None:
            if cb is not None:
                cb(addr, done, total)

        sess = ServerSession(
            self.image, self.config, seed=self.seed + self._count, progress=progress,
            offer=self.offer,
        )
        self.all_sessions.append(sess)
        return sess

    def receive(self, addr: Any, data: bytes, now: float) -> Out:
        """One datagram from ``addr``."""
        sess = self.sessions.get(addr)
        try:
            msg = CoapMessage.decode(data)
        except TransportError:
            return []
        is_hello = msg.code == CODE_POST and msg.uri_path == "h" and msg.mtype != CoapType.ACK
        if is_hello and (sess is None or msg.message_id != sess.hello_mid):
            if sess is not None:
                if not sess.terminal:
                    sess.status = SessionStatus.FAILED
                    sess.error = "superseded: the device said Hello again (it restarted)"
                    sess.finished_at = now
                self._record(addr, sess)
            sess = self._new_session(addr)
            self.sessions[addr] = sess
        if sess is None:
            if msg.mtype == CoapType.CON:
                return [(addr, reset_for(msg.message_id).encode())]
            return []
        out = [(addr, d) for d in sess.receive(data, now)]
        self._record_if_done(addr, sess)
        return out

    def poll(self, now: float) -> Out:
        """Timers of every session due at ``now``."""
        out: Out = []
        for addr, sess in list(self.sessions.items()):
            dl = sess.deadline()
            if dl is not None and dl <= now:
                out += [(addr, d) for d in sess.poll(now)]
                self._record_if_done(addr, sess)
        return out

    def deadline(self) -> float | None:
        """The earliest session deadline."""
        vals = [d for s in self.sessions.values() if (d := s.deadline()) is not None]
        return min(vals) if vals else None

    def _record_if_done(self, addr: Any, sess: ServerSession) -> None:
        if sess.terminal:
            self._record(addr, sess)

    def _record(self, addr: Any, sess: ServerSession) -> None:
        if id(sess) in self._recorded:
            return
        self._recorded.add(id(sess))
        self.records.append(
            SessionRecord(
                addr=addr,
                status=str(sess.status),
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

    @property
    def retransmissions(self) -> int:
        """CoAP retransmissions plus chunk resends over every session."""
        return sum(s.ep.stats.retransmissions + s.resends for s in self.all_sessions)

    @property
    def completed(self) -> int:
        """Sessions that finished with the device's 2.04 to UpdateDone."""
        return sum(1 for r in self.records if r.status == SessionStatus.COMPLETE)

    @property
    def failed(self) -> int:
        """Sessions that ended otherwise."""
        return sum(1 for r in self.records if r.status != SessionStatus.COMPLETE)
