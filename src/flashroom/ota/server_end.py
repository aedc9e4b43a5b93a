"""The server end of Particle's OTA transfer (spec 6.1-6.4) as a sans-I/O state machine.

See :mod:`flashroom.ota` for who drives the exchange and the confirmability choices.

Early UpdateDone (paced fast OTA; the server is ours, the device is unchanged). The only way to
learn which chunks a v2.3.1 device lacks is an UpdateDone: it answers 4.00 and one ChunkMissed
listing the lowest missing indices (spec 6.4 #3, #5). Sent after the last chunk, that costs a
full round trip of idle link before the resends, then another for the final UpdateDone. When
the server paces at the link rate it knows how long its queue will take to drain, so it sends
one UpdateDone ``done_lead_rtts`` measured round trips *before* the queue drains: the answer
comes back while the tail is still on the link, and the resends follow the tail back to back.
The device handles that UpdateDone exactly as any other (spec 6.4): chunks still in flight are
"missing" and may be listed too, so the server resends only the listed chunks it had sent
*before* that UpdateDone (the link is FIFO; a reordered chunk may be resent needlessly, which the
device ignores as a duplicate, spec 6.3 #4). Chunks keep arriving after a 4.00 and are written
as usual (the device is still updating). If the queue has drained and that UpdateDone is still
unanswered two round trips after it went out (its ChunkMissed lost, say), the server does not
wait for the device's CoAP retransmission but sends the final UpdateDone; a ChunkMissed carries
no token, so a late answer to the early one is taken as the answer to the open one (at worst a
few chunks are resent needlessly and one more UpdateDone follows).

Streamed files (a delta or compressed file, ota/stream.py). The device decodes them in order and
keeps out-of-order chunks only in what its RAM budget leaves; a chunk beyond that is not taken
and must be sent again (deviceos.stream ``SAVE_CHUNK_DEFERRED``). So in fast OTA the server sends
only within the device's receive window (:func:`flashroom.ota.stream.receive_window`, from its
Hello) above the lowest chunk the last ChunkMissed said was missing, polls with an UpdateDone
when half the window is out, and resends missed chunks first. On a lossless link nothing is
deferred and the window never closes on a 3g link (the extended Electron's 39 chunks of 512
bytes per 0.2 s round trip exceed 384 kbit/s).

The round trip is measured Karn-style from CONs answered without a retransmission (UpdateBegin,
UpdateDone and stop-and-wait Chunk -> ACK), smoothed as TCP's SRTT (1/8 gain).

Retransmission timeout. Once a round trip has been measured, the server's CONs (UpdateDone,
stop-and-wait Chunks) start from ``rto_rtts`` round trips (at least ``min_rto_s``, at most the
tuning's ACK_TIMEOUT) instead of RFC 7252's 2 s default, which is ten round trips on the 3g
preset; RFC 7252 4.8.1 allows environment-specific, dynamically adjusted values. The random
factor, the doubling and MAX_RETRANSMIT are unchanged. The device's own timers (UpdateReady,
ChunkMissed) are Device OS's and stay at the tuning's values.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from enum import StrEnum

from flashroom.deviceos.gen2 import DEFAULT_CHUNK_SIZE, HELLO_FLAG_COMPRESSED_OTA
from flashroom.deviceos.stream import STORE_STREAMED_FIRMWARE
from flashroom.errors import TransportError
from flashroom.ota.endpoint import CoapEndpoint, CoapTuning
from flashroom.ota.messages import (
    CODE_BAD_REQUEST,
    CODE_CHANGED,
    CODE_EMPTY,
    CODE_SERVICE_UNAVAILABLE,
    FLAG_FAST_OTA,
    STORE_FIRMWARE,
    Chunk,
    ChunkMissed,
    ChunkReceived,
    CoapMessage,
    CoapType,
    Hello,
    UpdateBegin,
    UpdateDone,
    UpdateReady,
    code_str,
    empty_ack,
    parse_request,
    reset_for,
)
from flashroom.ota.stream import Choice, OtaOffer, receive_window
from flashroom.particle.crc import crc32
from flashroom.particle.module_info import ModuleInfoFlags, read_module_info_at
from flashroom.progress import ProgressFn, noop_progress


class BeginForm(StrEnum):
    """Which UpdateBegin the server sends (spec 6.2)."""

    LONG = "long"  # the 12-byte payload: flags, chunk_size, file_length, store, file_address
    SHORT = "short"  # no payload: the device takes its defaults (512-byte chunks, the whole
    # OTA region as file_length, FIRMWARE, offset 0), and fast OTA cannot be requested


class SessionStatus(StrEnum):
    """Server-side session state; ``complete`` and ``failed`` are terminal."""

    WAITING = "waiting"  # no Hello yet
    BEGIN = "begin"  # UpdateBegin sent
    SENDING = "sending"
    DONE_SENT = "done_sent"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass
class ServerFaults:
    """Deliberate server misbehaviour, for robustness tests (spec 6 failure paths).

    Attributes:
        bad_crc_once: chunk indices whose first transmission carries a wrong CRC-32.
        done_after_chunks: send UpdateDone after this many chunks of the first flight.
        file_length_delta: added to the true file length in UpdateBegin.
        extra_chunk_index: also send one chunk of 0xA5 filler with this index (fast mode).
        vanish_after_chunks: go silent for good after sending this many chunks (server gone).
    """

    bad_crc_once: frozenset[int] = frozenset()
    done_after_chunks: int | None = None
    file_length_delta: int = 0
    extra_chunk_index: int | None = None
    vanish_after_chunks: int | None = None


@dataclass
class ServerConfig:
    """Server parameters.

    Attributes:
        fast: request fast OTA (UpdateBegin flag bit 0).
        chunk_size: bytes per chunk (512 is the device default, spec 6.5).
        store: destination store in UpdateBegin.
        begin_form: ``long`` (sizes in UpdateBegin) or ``short`` (none: the device's defaults,
            spec 6.2; the chunk size must then be the device default and fast OTA is off).
        response_timeout_s: how long to wait for UpdateReady/ChunkReceived/ChunkMissed.
        max_bad_chunks: give up after this many ChunkReceived BAD in a row.
        max_stalled_rounds: give up after this many ChunkMissed rounds in a row that ask for
            the same lowest index (the device is not receiving anything).
        pace_bps: fast OTA: send chunks at this wire rate (None: back to back).
        per_datagram_overhead: bytes below CoAP per datagram, used for pacing.
        done_lead_rtts: paced fast OTA: send an UpdateDone this many measured round trips
            before the chunk queue drains, so the ChunkMissed answer overlaps the tail of the
            data (see the module docstring); 0 sends UpdateDone only after the last chunk.
        rto_rtts: first retransmission timeout of the server's CONs, in measured round trips,
            once one is known (0: always the tuning's ACK_TIMEOUT; module docstring).
        min_rto_s: lower bound of that timeout.
        tuning: CoAP retransmission parameters.
        faults: deliberate misbehaviour for tests.
    """

    fast: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    store: int = STORE_FIRMWARE
    begin_form: BeginForm = BeginForm.LONG
    response_timeout_s: float = 60.0
    max_bad_chunks: int = 10
    max_stalled_rounds: int = 20
    pace_bps: float | None = None
    per_datagram_overhead: int = 0
    done_lead_rtts: float = 1.5
    rto_rtts: float = 2.0
    min_rto_s: float = 0.5
    tuning: CoapTuning = field(default_factory=CoapTuning)
    faults: ServerFaults = field(default_factory=ServerFaults)


def compressed_refusal(image: bytes, store: int, hello: Hello | None) -> str | None:
    """Why a raw module must not go to this device: it is compressed (module_info flag 0x02)
    and the device's Hello does not say it inflates (flag 0x40, never set on Gen2: no Gen2
    code inflates a module, so the device would copy the Deflate bytes into place and run
    them). None when it may be sent."""
    if store == STORE_STREAMED_FIRMWARE or len(image) < 0x200:
        return None
    try:
        info = read_module_info_at(image, 0)
    except Exception:
        return None
    if info.module_end_address - info.module_start_address + 4 != len(image):
        return None  # not a well-formed module (spec 2.5: the file ends 4 bytes past its end)
    if not info.flags & ModuleInfoFlags.COMPRESSED:
        return None
    if hello is not None and hello.flags & HELLO_FLAG_COMPRESSED_OTA:
        return None
    return (
        "refused to send a compressed module (module_info flags 0x02): the device's Hello does "
        f"not set the compressed-OTA flag 0x{HELLO_FLAG_COMPRESSED_OTA:02x}, so it cannot "
        "inflate it (a Gen2 device would copy the Deflate bytes into place and run them)"
    )


class ServerSession:
    """The server side of spec 6 for one device: waits for a Hello, then drives the update.

    With an ``offer`` (:class:`flashroom.ota.stream.OtaOffer`) the file is chosen when the Hello
    arrives: a delta, compressed or raw (:attr:`choice`); ``image`` is then the raw module.
    """

    def __init__(
        self,
        image: bytes,
        config: ServerConfig | None = None,
        *,
        seed: int | None = 0,
        progress: ProgressFn | None = None,
        offer: OtaOffer | None = None,
    ) -> None:
        if not image:
            # A zero-length UpdateBegin makes a v2.3.1 device apply whatever stale image its
            # OTA scratch holds (bad-input case zero_length_update): never send one.
            raise TransportError("the firmware image is empty: an empty update is never sent")
        self.image = image
        self.offer = offer
        self.choice: Choice | None = None
        self.config = config or ServerConfig()
        if not 1 <= self.config.chunk_size <= 0xFFFF:
            raise TransportError(f"chunk size {self.config.chunk_size}: expected 1..65535")
        if self.config.begin_form == BeginForm.SHORT and (
            self.config.chunk_size != DEFAULT_CHUNK_SIZE or self.config.fast
        ):
            # spec 6.2: a payload-less UpdateBegin selects chunk_size 512 and no flags
            self.config = replace(self.config, chunk_size=DEFAULT_CHUNK_SIZE, fast=False)
        self.ep = CoapEndpoint(seed=seed, tuning=self.config.tuning)
        self.progress = progress or noop_progress
        self.chunk_count = math.ceil(len(image) / self.config.chunk_size)
        self.store = self.config.store
        self.window: int | None = None  # streamed files: chunks the device takes past _floor
        self._floor = 0  # the lowest chunk the device may still lack (from ChunkMissed)
        self._frontier = 0  # one past the highest index sent
        self.status = SessionStatus.WAITING
        self.error: str | None = None
        self.hello: Hello | None = None
        self.hello_mid: int | None = None
        self.fast = False
        self.chunks_sent = 0
        self.chunk_bytes_sent = 0
        self.resends = 0
        self.missed_requests = 0
        self.bad_replies = 0
        self.started_at: float | None = None
        self.ready_at: float | None = None  # UpdateReady received: the data phase starts
        self.finished_at: float | None = None
        self._begin: CoapMessage | None = None
        self._cursor = 0  # stop-and-wait: next index to confirm
        self._saw: CoapMessage | None = None  # stop-and-wait chunk awaiting ChunkReceived
        self._sent_once: set[int] = set()
        self._queue: deque[int] = deque()
        self._next_send_at = 0.0
        self._done_mid: int | None = None
        self._saw_sent_at = 0.0
        self._done_sent_at = 0.0  # first transmission of the UpdateDone now open
        self._done_mark = 0  # chunks_sent when that UpdateDone went out
        self._done_early = False  # that UpdateDone was sent with chunks still queued
        self._early_giveup_at = 0.0  # when to stop waiting for its answer once drained
        self._last_tx: dict[int, int] = {}  # index -> chunks_sent after its latest send
        self.rtt_s: float | None = None  # smoothed round trip (CON -> ACK, Karn)
        self.early_dones = 0  # UpdateDones sent while chunks were still queued
        self._wait_until: float | None = None
        self._bad_in_row = 0
        self._stalled = 0
        self._last_missed: int | None = None
        self._vanished = False
        self._held: CoapMessage | None = None  # a separate response awaiting its request's ACK
        self.strays = 0  # separate responses that answer no open exchange

    # ----------------------------------------------------------------- public
    @property
    def terminal(self) -> bool:
        """Complete or failed."""
        return self.status in (SessionStatus.COMPLETE, SessionStatus.FAILED)

    def deadline(self) -> float | None:
        """When :meth:`poll` must next be called."""
        if self._vanished:
            return None
        cands = [self.ep.deadline(), self._wait_until]
        if (
            self._queue
            and self.config.pace_bps
            and self.status == SessionStatus.SENDING
            and not self._window_closed()  # a closed window waits for a ChunkMissed instead
        ):
            cands.append(self._next_send_at)
        if self._done_early and not self._queue and self.status == SessionStatus.SENDING:
            cands.append(self._early_giveup_at)
        vals = [c for c in cands if c is not None]
        return min(vals) if vals else None

    def poll(self, now: float) -> list[bytes]:
        """Retransmissions, paced sends, timeouts."""
        if self._vanished:
            return []
        out, failed = self.ep.poll(now)
        for msg in failed:
            if self.terminal:
                continue
            what = "UpdateDone" if msg.message_id == self._done_mid else code_str(msg.code)
            self._fail(now, f"the device stopped answering ({what} unacknowledged)")
        if self._wait_until is not None and now >= self._wait_until and not self.terminal:
            self._fail(now, f"no answer from the device within {self.config.response_timeout_s} s")
        out += self._pump(now)
        return out

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Process one datagram from the device."""
        if self._vanished:
            return []
        d = self.ep.receive(data)
        out = list(d.out)
        msg = d.message
        if msg is None:
            return out
        if d.acked is not None:
            return out + self._on_ack(msg, d.acked, now)
        if msg.is_request:
            return out + self._on_request(msg, now)
        return out + self._on_separate(msg, now)

    def _on_separate(self, msg: CoapMessage, now: float) -> list[bytes]:
        """A separate response (CON/NON) from the device: UpdateReady or ChunkReceived.

        The device ACKs UpdateBegin and a stop-and-wait Chunk before it sends the separate
        response (spec 6.2 #2, 6.3 #2), and only the ACK, matched by message ID, proves that
        the peer saw the request: a 1-byte token is guessed blind in 256 tries (spec 6.1). A
        response to a request still unacknowledged is held unanswered (the device keeps
        retransmitting it) until that ACK comes in; our request's own retransmission fetches
        the device's cached ACK (RFC 7252 4.5).
        """
        for req in (self._begin if self.status == SessionStatus.BEGIN else None, self._saw):
            if (
                req is not None
                and msg.token == req.token
                and self.ep.attempts(req.message_id)  # still unacknowledged
            ):
                self._held = msg
                return []
        out: list[bytes] = []
        if msg.mtype == CoapType.CON:
            out.append(self.ep.reply(msg, empty_ack(msg.message_id)))
        return out + self._on_response(msg, now)

    def _release_held(self, now: float) -> list[bytes]:
        """The ACK a held separate response waited for arrived: take the response now."""
        held, self._held = self._held, None
        return [] if held is None or self.terminal else self._on_separate(held, now)

    def close(self, now: float, why: str) -> None:
        """End the session as failed (the server's table evicts or expires it); no-op once
        terminal."""
        if not self.terminal:
            self._fail(now, why)

    # ----------------------------------------------------------------- internals
    def _fail(self, now: float, why: str) -> None:
        self.status = SessionStatus.FAILED
        self.error = why
        self.finished_at = now
        self._wait_until = None
        self._queue.clear()
        self.ep.cancel_all()

    def _wait(self, now: float) -> None:
        self._wait_until = now + self.config.response_timeout_s

    def _on_request(self, msg: CoapMessage, now: float) -> list[bytes]:
        try:
            req = parse_request(msg)
        except TransportError as e:
            out = (
                [self.ep.reply(msg, reset_for(msg.message_id))] if msg.mtype == CoapType.CON else []
            )
            if not self.terminal and self.status != SessionStatus.WAITING:
                self._fail(now, f"malformed request from the device: {e}")
            return out
        if isinstance(req, Hello):
            out = [self.ep.reply(msg, empty_ack(msg.message_id))]
            if self.status == SessionStatus.WAITING:
                self.hello = req
                self.hello_mid = msg.message_id
                out += self._start(now)
            return out
        if isinstance(req, ChunkMissed):
            out = [self.ep.reply(msg, empty_ack(msg.message_id))]
            if self.terminal:
                return out
            return out + self._on_missed(req, now)
        if msg.mtype == CoapType.CON:
            return [self.ep.reply(msg, reset_for(msg.message_id))]
        return []

    def _start(self, now: float) -> list[bytes]:
        self.started_at = now
        cfg = self.config
        short = cfg.begin_form == BeginForm.SHORT
        if self.offer is not None:
            # the per-device pick (ota/stream.py); a size-less UpdateBegin has no store field
            choice = self.offer.choose(None if short else self.hello)
            self.choice = choice
            self.image = choice.payload
            self.store = choice.store
            self.chunk_count = math.ceil(len(self.image) / cfg.chunk_size)
            if choice.report is not None and choice.store == STORE_STREAMED_FIRMWARE:
                self.window = receive_window(choice.report, cfg.chunk_size)
        refusal = compressed_refusal(self.image, self.store, self.hello)
        if refusal is not None:
            self._fail(now, refusal)
            return []
        flags = FLAG_FAST_OTA if cfg.fast else 0
        length = len(self.image) + cfg.faults.file_length_delta
        begin = UpdateBegin(flags, cfg.chunk_size, length, self.store, 0)
        msg = begin.to_coap(self.ep.next_mid(), self.ep.next_token(), short=short)
        self._begin = msg
        self.status = SessionStatus.BEGIN
        self._wait(now)
        self.progress(0, self.chunk_count)
        return [self.ep.send(msg, now, ack_timeout_s=self._ack_timeout())]

    def _on_ack(self, msg: CoapMessage, acked: CoapMessage, now: float) -> list[bytes]:
        if self.terminal:
            return []
        if msg.mtype == CoapType.RST:
            self._fail(now, f"the device reset the exchange (RST to {code_str(acked.code)})")
            return []
        if self._begin is not None and acked.message_id == self._begin.message_id:
            if self.started_at is not None:
                self._rtt_sample(acked.message_id, now - self.started_at)
            if msg.code == CODE_SERVICE_UNAVAILABLE:
                self._fail(now, "the device refused UpdateBegin (5.03, docs/device-os.md#protocol)")
                return []
            if msg.code == CODE_CHANGED and self.status == SessionStatus.BEGIN:
                return self._ready(UpdateReady.from_coap(msg), now)  # piggybacked
            return self._release_held(now)
        if acked.message_id == self._done_mid:
            self._done_mid = None
            self._rtt_sample(acked.message_id, now - self._done_sent_at)
            if msg.code == CODE_CHANGED:
                self.status = SessionStatus.COMPLETE
                self.finished_at = now
                self._wait_until = None
                self._queue.clear()  # an early UpdateDone found nothing missing
                self._done_early = False
                self.progress(self.chunk_count, self.chunk_count)
            elif msg.code == CODE_BAD_REQUEST:
                self._wait(now)  # spec 6.4 #5: a ChunkMissed follows
            else:
                self._fail(now, f"UpdateDone answered with {code_str(msg.code)}")
            return []
        if self._saw is not None and acked.message_id == self._saw.message_id:
            self._rtt_sample(acked.message_id, now - self._saw_sent_at)
        if self._saw is not None and acked.message_id == self._saw.message_id:
            if msg.code in (CODE_CHANGED, CODE_BAD_REQUEST):  # piggybacked ChunkReceived
                return self._chunk_received(ChunkReceived(msg.code == CODE_CHANGED), now)
            return self._release_held(now)
        return []

    def _rtt_sample(self, message_id: int, sample: float) -> None:
        """Fold one CON -> ACK time into :attr:`rtt_s`, unless the CON was retransmitted
        (Karn: the ACK could answer either copy)."""
        if self.ep.was_retransmitted(message_id):
            return
        self.rtt_s = sample if self.rtt_s is None else 0.875 * self.rtt_s + 0.125 * sample

    def _ack_timeout(self) -> float | None:
        """ACK_TIMEOUT for the next CON: from the measured round trip when there is one."""
        cfg = self.config
        if not cfg.rto_rtts or self.rtt_s is None:
            return None
        rto = max(cfg.rto_rtts * self.rtt_s, cfg.min_rto_s)
        return min(rto, cfg.tuning.ack_timeout_s)

    def _on_response(self, msg: CoapMessage, now: float) -> list[bytes]:
        if self.terminal or msg.code == CODE_EMPTY:
            return []
        # 1-byte tokens wrap after 256 exchanges: match against the exchange now open only.
        if (
            self.status == SessionStatus.BEGIN
            and self._begin is not None
            and msg.token == self._begin.token
        ):
            if msg.code == CODE_CHANGED:
                self.ep.cancel(self._begin.message_id)  # the ACK may be late or lost
                return self._ready(UpdateReady.from_coap(msg), now)
            return []
        if self._saw is not None and msg.token == self._saw.token:
            try:
                cr = ChunkReceived.from_coap(msg)
            except TransportError as e:
                self._fail(now, str(e))
                return []
            return self._chunk_received(cr, now)
        self.strays += 1  # a stale response to an earlier exchange, or a blind guess
        return []

    def _ready(self, ready: UpdateReady, now: float) -> list[bytes]:
        # The first chunk waits for UpdateReady, although that costs a round trip: UpdateReady
        # says the region is erased and the bitmap allocated (spec 6.2 #3-5), and only it tells
        # whether the device accepted fast OTA (the FAST_OTA property may veto it, spec 6.2).
        # Device OS drops a chunk that arrives before UpdateBegin took effect ("got chunk when
        # not updating"), and the erase time (spec 8.7) is not on the simulated clock, so chunks
        # sent earlier would have to wait in the modem through a real erase (spec-silent).
        self.fast = self.config.fast and bool(ready.flags & FLAG_FAST_OTA)
        self.status = SessionStatus.SENDING
        self.ready_at = now
        self._wait_until = None
        if self.fast:
            n = self.chunk_count
            faults = self.config.faults
            if faults.done_after_chunks is not None:
                n = min(n, faults.done_after_chunks)
            self._queue.extend(range(n))
            self._next_send_at = now
            return self._pump(now)
        return self._send_saw(now)

    # ---- stop-and-wait
    def _send_saw(self, now: float) -> list[bytes]:
        faults = self.config.faults
        limit = self.chunk_count
        if faults.done_after_chunks is not None:
            limit = min(limit, faults.done_after_chunks)
        if self._cursor >= limit:
            self._saw = None
            return self._send_done(now)
        if self._gone(now):
            return []
        msg = self._chunk_msg(self._cursor, CoapType.CON, with_index=False)
        self._saw = msg
        self._saw_sent_at = now
        self._wait(now)
        return [self.ep.send(msg, now, ack_timeout_s=self._ack_timeout())]

    def _chunk_received(self, cr: ChunkReceived, now: float) -> list[bytes]:
        if self.status != SessionStatus.SENDING or self._saw is None:
            return []
        self.ep.cancel(self._saw.message_id)
        if cr.ok:
            self._bad_in_row = 0
            self._cursor += 1
            self.progress(self._cursor, self.chunk_count)
        else:
            self.bad_replies += 1
            self._bad_in_row += 1
            if self._bad_in_row > self.config.max_bad_chunks:
                self._fail(now, f"chunk {self._cursor} rejected {self._bad_in_row} times (4.00)")
                return []
        return self._send_saw(now)

    # ---- fast OTA
    def _pump(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        if self.status != SessionStatus.SENDING or not self.fast:
            return out
        pace = self.config.pace_bps
        while self._queue:
            if self._window_closed():
                out += self._poll_window(now)
                break
            if pace and now < self._next_send_at:
                break
            if self._gone(now):
                return out
            index = self._queue.popleft()
            msg = self._chunk_msg(index, CoapType.NON, with_index=True)
            data = self.ep.send(msg, now)
            out.append(data)
            if pace:
                bits = (len(data) + self.config.per_datagram_overhead) * 8
                self._next_send_at = max(self._next_send_at, now) + bits / pace
                if self._early_done_due(len(data), pace):
                    self.early_dones += 1
                    out += self._send_done(now, early=True)
        if not self._queue and self._done_early and now >= self._early_giveup_at:
            # The queue drained and the early UpdateDone is still unanswered two round trips
            # on: its ChunkMissed (or the UpdateDone itself) was probably lost. Do not wait out
            # the device's CoAP retransmission; a fresh UpdateDone gets a fresh ChunkMissed
            # (spec 6.4 #5).
            if self._done_mid is not None:
                self.ep.cancel(self._done_mid)
            self._done_mid = None
            self._wait_until = None
        if not self._queue and self._done_mid is None and self._wait_until is None:
            extra = self.config.faults.extra_chunk_index
            if extra is not None and extra not in self._sent_once:
                self._sent_once.add(extra)
                filler = Chunk.of(b"\xa5" * self.config.chunk_size, extra)
                msg = filler.to_coap(self.ep.next_mid(), self.ep.next_token(), CoapType.NON)
                out.append(self.ep.send(msg, now))
            out += self._send_done(now)
        return out

    def _window_closed(self) -> bool:
        """A streamed file's next chunk is past the device's receive window (module docstring)."""
        return self.window is not None and self._queue[0] >= self._floor + self.window

    def _poll_window(self, now: float) -> list[bytes]:
        """Ask where the device is (an UpdateDone; its ChunkMissed moves the floor up)."""
        if self._done_mid is not None or self._wait_until is not None:
            return []  # one UpdateDone open at a time: its answer is on the way
        self.early_dones += 1
        return self._send_done(now, early=True)

    def _early_done_due(self, chunk_datagram: int, pace: float) -> bool:
        """Paced fast OTA: is it time for an UpdateDone while chunks are still queued?

        Yes when none is open, the queue will take at most ``done_lead_rtts`` round trips to
        drain, and at least one round trip (otherwise the answer would come back after the
        queue drained and the final UpdateDone would only be delayed by waiting for it).
        """
        if self._done_mid is not None or self._wait_until is not None:
            return False  # one UpdateDone open at a time
        if self.window is not None and self._frontier >= self._floor + self.window // 2:
            return self.chunks_sent > self._done_mark  # half the window out: poll
        lead = self.config.done_lead_rtts
        rtt = self.rtt_s
        if not lead or rtt is None or not self._queue:
            return False
        if self.chunks_sent <= self._done_mark:
            return False  # nothing sent since the last one
        per_chunk = (chunk_datagram + self.config.per_datagram_overhead) * 8 / pace
        drain = len(self._queue) * per_chunk
        return rtt <= drain <= lead * rtt

    def _on_missed(self, req: ChunkMissed, now: float) -> list[bytes]:
        self.missed_requests += 1
        bad = [i for i in req.indices if i >= self.chunk_count]
        if bad:
            self._fail(
                now,
                f"the device asked for chunk {bad[0]}, but the image has {self.chunk_count} "
                f"chunks of {self.config.chunk_size} bytes (file length mismatch)",
            )
            return []
        lowest = min(req.indices, default=None)
        self._stalled = self._stalled + 1 if lowest == self._last_missed else 0
        self._last_missed = lowest
        if self._stalled >= self.config.max_stalled_rounds:
            self._fail(
                now,
                f"the device asked for chunk {lowest} {self._stalled + 1} times in a row: "
                "resent chunks do not get through",
            )
            return []
        self._wait_until = None
        if self._done_mid is not None:  # its 4.00 ACK was lost or is late: stop repeating it
            self.ep.cancel(self._done_mid)
        self._done_mid = None  # a new UpdateDone follows the resent chunks
        self._done_early = False
        self.status = SessionStatus.SENDING
        if not self.fast:
            # Stop-and-wait never leaves gaps; restart the counter at the lowest index.
            self._cursor = min(req.indices, default=self._cursor)
            return self._send_saw(now)
        # Resend what was sent before the UpdateDone this answers; chunks sent after it, or
        # still queued, were in flight or pending and are listed only because they had not
        # arrived yet (see the module docstring).
        queued = set(self._queue)
        resend: list[int] = []
        for i in req.indices:
            last = self._last_tx.get(i)  # None: never sent (e.g. an UpdateDone fault)
            if (last is None or last <= self._done_mark) and i not in queued:
                queued.add(i)
                resend.append(i)
        if self.window is not None:
            # a streamed file: the device needs the lowest missing chunk before anything else
            self._floor = max(self._floor, min(req.indices, default=self._floor))
            self._queue.extendleft(reversed(resend))
        else:
            self._queue.extend(resend)
        self._next_send_at = max(self._next_send_at, now)
        return self._pump(now)

    # ---- shared
    def _gone(self, now: float) -> bool:
        limit = self.config.faults.vanish_after_chunks
        if limit is not None and self.chunks_sent >= limit:
            self._vanished = True
            self._fail(now, f"server stopped after {limit} chunks (fault)")
            return True
        return False

    def _chunk_msg(self, index: int, mtype: CoapType, *, with_index: bool) -> CoapMessage:
        cs = self.config.chunk_size
        data = self.image[index * cs : (index + 1) * cs]
        crc = crc32(data)
        if index in self.config.faults.bad_crc_once and index not in self._sent_once:
            crc ^= 0xFFFFFFFF
        if index in self._sent_once:
            self.resends += 1
        else:
            self._sent_once.add(index)
            if self.fast:  # fast OTA confirms nothing per chunk: progress is chunks sent once
                self.progress(len(self._sent_once), self.chunk_count)
        self.chunks_sent += 1
        self._frontier = max(self._frontier, index + 1)
        self._last_tx[index] = self.chunks_sent
        self.chunk_bytes_sent += len(data)
        chunk = Chunk(data, crc, index if with_index else None)
        return chunk.to_coap(self.ep.next_mid(), self.ep.next_token(), mtype)

    def _send_done(self, now: float, *, early: bool = False) -> list[bytes]:
        msg = UpdateDone().to_coap(self.ep.next_mid(), self.ep.next_token())
        self._done_mid = msg.message_id
        self._done_sent_at = now
        self._done_mark = self.chunks_sent
        self._done_early = early
        self._early_giveup_at = now + 2 * (self.rtt_s or 0.0)
        if not early:  # an early UpdateDone leaves the rest of the queue flowing
            self.status = SessionStatus.DONE_SENT
        return [self.ep.send(msg, now, ack_timeout_s=self._ack_timeout())]
