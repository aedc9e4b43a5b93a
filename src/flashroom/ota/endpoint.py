"""A sans-I/O CoAP message layer (RFC 7252 4): CON retransmission, ACK matching, deduplication.

One :class:`CoapEndpoint` per peer. It never touches a socket or a clock: callers pass ``now``
(seconds, any monotonic origin; simulated time in-process, the event loop's clock on UDP) and send
the bytes it returns. Both OTA ends (server session and device end) sit on top of it.

RFC 7252 4.8 defaults: ACK_TIMEOUT 2 s, ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT 4. The first
timeout is drawn from ``[ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]`` with a seeded RNG and
doubles on each retransmission.

Message IDs and tokens (RFC 7252 5.3.1: "a token ... generated such that it is not guessable";
4.4 for message IDs). With ``seed=None`` both come from the operating system's random source
and every token is drawn afresh, so a party that does not see the traffic cannot guess them:
that is what a server facing the network uses. A seed gives reproducible runs (simulation,
tests). Particle's tokens are one byte (spec 6.1), so the token alone can be guessed in 256
tries; the server also requires the message-ID-matched ACK of its request before it takes a
separate response (:mod:`flashroom.ota.server_end`).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field

from flashroom.errors import TransportError
from flashroom.ota.messages import CoapMessage, CoapType

ACK_TIMEOUT_S = 2.0  # RFC 7252 4.8
ACK_RANDOM_FACTOR = 1.5  # RFC 7252 4.8
MAX_RETRANSMIT = 4  # RFC 7252 4.8
_SYSTEM_RANDOM = random.SystemRandom()
_DEDUP_CACHE = 1024  # remembered message IDs per peer (RFC 7252 4.5 EXCHANGE_LIFETIME window)


@dataclass
class CoapTuning:
    """Retransmission parameters (RFC 7252 4.8); loopback tests use a short ``ack_timeout_s``."""

    ack_timeout_s: float = ACK_TIMEOUT_S
    ack_random_factor: float = ACK_RANDOM_FACTOR
    max_retransmit: int = MAX_RETRANSMIT


@dataclass
class _Pending:
    msg: CoapMessage
    data: bytes
    deadline: float
    timeout: float
    attempts: int = 0
    max_retransmit: int = MAX_RETRANSMIT


@dataclass
class EndpointStats:
    """What one endpoint sent and received."""

    datagrams_sent: int = 0
    bytes_sent: int = 0
    datagrams_received: int = 0
    bytes_received: int = 0
    retransmissions: int = 0
    duplicates_received: int = 0
    malformed_received: int = 0
    unmatched_acks: int = 0  # ACK/RST whose message ID matches no CON in flight


@dataclass
class Delivery:
    """What :meth:`CoapEndpoint.receive` hands up.

    Attributes:
        message: the decoded message (None when the datagram was a duplicate or malformed).
        acked: for an ACK/RST, the CON it answers (None otherwise).
        out: datagrams to send right away (a repeated ACK for a duplicate CON).
    """

    message: CoapMessage | None
    acked: CoapMessage | None = None
    out: list[bytes] = field(default_factory=list)


class CoapEndpoint:
    """CoAP message layer for one peer: message IDs, tokens, CON retransmission, dedup."""

    def __init__(self, *, seed: int | None = 0, tuning: CoapTuning | None = None) -> None:
        # seed None: unguessable IDs and tokens (module docstring); one shared SystemRandom, so
        # an endpoint carries no generator state of its own (a server holds thousands)
        self.rng: random.Random = _SYSTEM_RANDOM if seed is None else random.Random(seed)
        self.unpredictable = seed is None
        self.tuning = tuning or CoapTuning()
        self._mid = self.rng.randrange(0x10000)
        self._token = self.rng.randrange(0x100)
        self._pending: dict[int, _Pending] = {}
        self._seen: OrderedDict[int, bytes | None] = OrderedDict()
        self._retransmitted: set[int] = set()
        self.stats = EndpointStats()

    # ----------------------------------------------------------------- ids
    def next_mid(self) -> int:
        """A fresh message ID."""
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    def next_token(self) -> bytes:
        """A fresh 1-byte token (spec 6.1): the next one, or with ``seed=None`` a random one
        other than the last."""
        if self.unpredictable:
            self._token = (self._token + 1 + self.rng.randrange(0xFF)) & 0xFF
        else:
            self._token = (self._token + 1) & 0xFF
        return bytes((self._token,))

    # ----------------------------------------------------------------- sending
    def send(
        self,
        msg: CoapMessage,
        now: float,
        *,
        ack_timeout_s: float | None = None,
        max_retransmit: int | None = None,
    ) -> bytes:
        """Encode ``msg``; a CON is remembered for retransmission until its ACK/RST arrives.

        ``ack_timeout_s`` overrides the tuning's ACK_TIMEOUT for this CON (RFC 7252 4.8.1
        allows environment-specific, dynamically adjusted values); the random factor and the
        doubling still apply. ``max_retransmit`` overrides MAX_RETRANSMIT for this CON.
        """
        data = msg.encode()
        if msg.mtype == CoapType.CON:
            t = self.tuning
            base = t.ack_timeout_s if ack_timeout_s is None else ack_timeout_s
            timeout = base * self.rng.uniform(1.0, t.ack_random_factor)
            limit = t.max_retransmit if max_retransmit is None else max_retransmit
            self._pending[msg.message_id] = _Pending(msg, data, now + timeout, timeout, 0, limit)
        self._count_sent(data)
        return data

    def reply(self, request: CoapMessage, ack: CoapMessage) -> bytes:
        """Send the ACK (empty or piggybacked) for ``request`` and cache it for duplicates."""
        data = ack.encode()
        self._seen[request.message_id] = data
        self._count_sent(data)
        return data

    def _count_sent(self, data: bytes) -> None:
        self.stats.datagrams_sent += 1
        self.stats.bytes_sent += len(data)

    # ----------------------------------------------------------------- receiving
    def receive(self, data: bytes) -> Delivery:
        """Process one datagram.

        Duplicated CON/NON messages (same message ID) are not delivered again; a duplicate CON
        gets the cached ACK again (RFC 7252 4.5). Malformed datagrams are counted and dropped.
        """
        self.stats.datagrams_received += 1
        self.stats.bytes_received += len(data)
        try:
            msg = CoapMessage.decode(data)
        except TransportError:
            self.stats.malformed_received += 1
            return Delivery(None)
        if msg.mtype in (CoapType.ACK, CoapType.RST):
            pend = self._pending.pop(msg.message_id, None)
            if pend is None:
                # A late or duplicated ACK: nothing waits for it any more.
                self.stats.unmatched_acks += 1
                return Delivery(None)
            return Delivery(msg, acked=pend.msg)
        if msg.message_id in self._seen:
            self.stats.duplicates_received += 1
            cached = self._seen[msg.message_id]
            if msg.mtype == CoapType.CON and cached is not None:
                self.stats.datagrams_sent += 1
                self.stats.bytes_sent += len(cached)
                return Delivery(None, out=[cached])
            return Delivery(None)
        self._seen[msg.message_id] = None
        while len(self._seen) > _DEDUP_CACHE:
            self._seen.popitem(last=False)
        return Delivery(msg)

    # ----------------------------------------------------------------- timers
    def deadline(self) -> float | None:
        """The earliest retransmission deadline, or None."""
        return min((p.deadline for p in self._pending.values()), default=None)

    def poll(self, now: float) -> tuple[list[bytes], list[CoapMessage]]:
        """Retransmit due CONs. Returns ``(datagrams, given_up)``; ``given_up`` are CONs whose
        MAX_RETRANSMIT retransmissions went unanswered."""
        out: list[bytes] = []
        failed: list[CoapMessage] = []
        for mid, p in list(self._pending.items()):
            if p.deadline > now:
                continue
            if p.attempts >= p.max_retransmit:
                del self._pending[mid]
                failed.append(p.msg)
                continue
            p.attempts += 1
            self._retransmitted.add(mid)
            p.timeout *= 2
            p.deadline = now + p.timeout
            self.stats.retransmissions += 1
            self._count_sent(p.data)
            out.append(p.data)
        return out, failed

    def was_retransmitted(self, message_id: int) -> bool:
        """Whether the CON ``message_id`` was ever retransmitted (an ACK to it then gives no
        round-trip sample: it could answer either copy, Karn's rule)."""
        return message_id in self._retransmitted

    def cancel(self, message_id: int) -> None:
        """Stop retransmitting ``message_id``."""
        self._pending.pop(message_id, None)

    def cancel_all(self) -> None:
        """Stop every retransmission (the session is over)."""
        self._pending.clear()

    def attempts(self, message_id: int) -> int:
        """Transmissions so far of the CON ``message_id`` still in flight (0 if none)."""
        p = self._pending.get(message_id)
        return 0 if p is None else p.attempts + 1

    @property
    def pending(self) -> int:
        """Number of CONs awaiting an ACK."""
        return len(self._pending)
