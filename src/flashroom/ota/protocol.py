"""Sans-I/O state machines for both ends of Particle's OTA transfer (spec 6).

Datagrams in, datagrams out; time is a parameter. Neither end opens a socket or reads a clock.

Who drives (spec-silent in the device-side spec, documented choice): the device opens the
exchange with a CON ``POST h`` Hello (spec 6.5 payload), as Device OS does when it connects. The
server ACKs it and then drives the update *towards the device* over the same UDP association, as
the Particle cloud does: ``POST u`` UpdateBegin, ``POST c`` Chunk, ``PUT u`` UpdateDone; the
device answers with separate CON responses (UpdateReady, ChunkReceived) and its own CON
``GET c`` ChunkMissed (spec 6.1). Both ends are therefore CoAP clients *and* servers, and every
spec 6.1 code and URI is real on the wire.

Confirmability (spec 6.1: CON on UDP/DTLS): UpdateBegin, stop-and-wait Chunks and UpdateDone are
CON; UpdateReady, ChunkReceived and ChunkMissed are CON. Fast-OTA Chunks are sent NON: spec 6.3
#5 says the device stays silent on them, so a CON would be retransmitted for nothing
(spec-silent choice; losses are recovered through ChunkMissed, spec 6.4 #5).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from flashroom.errors import FlashroomError, TransportError
from flashroom.ota.endpoint import CoapEndpoint, CoapTuning
from flashroom.ota.messages import (
    CODE_BAD_REQUEST,
    CODE_CHANGED,
    CODE_EMPTY,
    CODE_SERVICE_UNAVAILABLE,
    FLAG_FAST_OTA,
    MAX_MISSED_PER_MESSAGE,
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
from flashroom.particle.crc import crc32

OTA_REGION_START = 0x080C0000  # HAL_OTA_FlashAddress() on all Gen2 platforms (spec 4.1 #1)
FLASH_END = 0x08100000  # FLASH_EraseMemory range check (spec 4.1 #2.3)
DEFAULT_CHUNK_SIZE = 512  # OTA_CHUNK_SIZE (spec 6.5)
MAX_CHUNKS = 65535  # ceil(file_length / chunk_size) must stay below this (spec 6.2 #1)

# HAL_OTA_FlashLength() (spec 4.1 #1) and TIMING_FLASH_UPDATE_TIMEOUT (spec 6.5), per platform.
OTA_FLASH_LENGTH: dict[str, int] = {"photon": 0x40000, "p1": 0x40000, "electron": 0x20000}
INACTIVITY_TIMEOUT_S: dict[str, float] = {"photon": 30.0, "p1": 30.0, "electron": 300.0}
PLATFORM_IDS: dict[str, int] = {"photon": 6, "p1": 8, "electron": 10}

ProgressFn = Callable[[int, int], None]


class OtaTarget(Protocol):
    """The device's system OTA receive path (emulator contract; spec 4.1, 4.2)."""

    def ota_begin(self, file_length: int, chunk_size: int = 512, file_address: int = 0) -> int:
        """HAL_FLASH_Begin: erase; 0 or a negative system error."""
        ...

    def ota_write(self, offset: int, data: bytes) -> None:
        """HAL_FLASH_Update at ``offset`` into the OTA region; no bounds check (spec 4.1 #3)."""
        ...

    def ota_finish(self) -> int:
        """HAL_FLASH_End: 1 applied pending restart, or a negative system error (spec 4.2)."""
        ...


def _noop_progress(done: int, total: int) -> None:
    return None


def missed_request_count(received_in_flight: int) -> int:
    """How many missing indices one ChunkMissed lists (spec 6.4 #5, integer arithmetic)."""
    n = received_in_flight
    return min(n + max(n // 5, 2), MAX_MISSED_PER_MESSAGE)


# =========================================================================== device end
class DeviceStatus(StrEnum):
    """Where the device end is. The last seven are terminal."""

    CONNECTING = "connecting"
    IDLE = "idle"
    UPDATING = "updating"
    APPLIED = "applied"  # ota_finish returned 1; reset pending (spec 4.2 #3)
    REJECTED = "rejected"  # ota_finish returned an error; nothing recorded (spec 4.2 #1)
    REFUSED = "refused"  # UpdateBegin dry run failed; ACK 5.03 sent (spec 6.2 #2)
    TIMEOUT = "timeout"  # inactivity timeout: reset with UPDATE_TIMEOUT (spec 6.5)
    ABORTED = "aborted"  # protocol error while updating: finish(0) (spec 6.4 #7)
    UNREACHABLE = "unreachable"  # the Hello was never acknowledged
    NO_UPDATE = "no_update"  # the server never started an update
    RESET = "reset"  # the device was reset mid-transfer (fault injection)


TERMINAL_DEVICE = frozenset(DeviceStatus) - {
    DeviceStatus.CONNECTING,
    DeviceStatus.IDLE,
    DeviceStatus.UPDATING,
}


@dataclass
class DeviceConfig:
    """Device-end parameters.

    Attributes:
        platform: "electron", "photon" or "p1" (region length, timeout, platform ID).
        device_id: 12 bytes sent in the Hello.
        allow_fast: the FAST_OTA connection property (spec 6.2).
        updates_enabled: when false the dry run fails and UpdateBegin gets 5.03 (spec 6.2 #2).
        inactivity_timeout_s: None means the platform's TIMING_FLASH_UPDATE_TIMEOUT (spec 6.5).
        begin_timeout_s: how long to wait for UpdateBegin after the Hello (spec-silent).
        linger_s: after finishing, keep answering duplicates this long (the device resets
            shortly after finish; spec-silent).
        reset_after_chunks: fault injection: reset after writing this many chunks.
        tuning: CoAP retransmission parameters.
        seed: message-ID/token/jitter seed.
    """

    platform: str = "electron"
    device_id: bytes = bytes(12)
    allow_fast: bool = True
    updates_enabled: bool = True
    inactivity_timeout_s: float | None = None
    begin_timeout_s: float = 120.0
    linger_s: float = 5.0
    reset_after_chunks: int | None = None
    tuning: CoapTuning = field(default_factory=CoapTuning)
    seed: int = 0


class DeviceEnd:
    """The device side of spec 6: Hello, then UpdateBegin/Chunk/UpdateDone handling.

    Drive it with :meth:`start`, :meth:`receive` and :meth:`poll`; send what they return; call
    :meth:`poll` at :meth:`deadline`.
    """

    def __init__(
        self,
        target: OtaTarget,
        config: DeviceConfig | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.target = target
        self.config = config or DeviceConfig()
        if self.config.platform not in OTA_FLASH_LENGTH:
            raise TransportError(
                f"platform {self.config.platform!r}: expected one of {sorted(OTA_FLASH_LENGTH)}"
            )
        self.ep = CoapEndpoint(seed=self.config.seed, tuning=self.config.tuning)
        self.progress = progress or _noop_progress
        self.status = DeviceStatus.CONNECTING
        self.error: str | None = None
        self.error_code: int | None = None
        self.fast = False
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.file_length = 0
        self.file_address = 0
        self.chunk_count = 0
        self.bitmap = bytearray()
        self.next_index = 0  # implicit index in stop-and-wait (spec 6.3 #2)
        self.chunks_written = 0
        self.bytes_written = 0
        self.crc_errors = 0
        self.duplicate_chunks = 0
        self.out_of_bitmap_chunks = 0
        self.missed_requests = 0
        self.resends_seen = 0
        self._received_in_flight = 0
        self._requested: set[int] = set()
        self._bad_pending = False
        self._last_activity = 0.0
        self._begin_deadline: float | None = None
        self._linger_until: float | None = None
        self._hello_mid: int | None = None
        self.finished_at: float | None = None
        self.inactivity_timeout_s = (
            self.config.inactivity_timeout_s
            if self.config.inactivity_timeout_s is not None
            else INACTIVITY_TIMEOUT_S[self.config.platform]
        )

    # ----------------------------------------------------------------- driving
    def start(self, now: float) -> list[bytes]:
        """Send the Hello (CON ``POST h``)."""
        hello = Hello(PLATFORM_IDS[self.config.platform], self.config.device_id)
        msg = hello.to_coap(self.ep.next_mid())
        self._hello_mid = msg.message_id
        self._begin_deadline = now + self.config.begin_timeout_s
        return [self.ep.send(msg, now)]

    @property
    def terminal(self) -> bool:
        """The update is over (successfully or not)."""
        return self.status in TERMINAL_DEVICE

    @property
    def finished(self) -> bool:
        """Terminal and done lingering: the driver may stop."""
        return self.terminal and self._linger_until is not None

    def done_lingering(self, now: float) -> bool:
        """Terminal and past the linger period."""
        return self.finished and self._linger_until is not None and now >= self._linger_until

    def deadline(self) -> float | None:
        """When :meth:`poll` must next be called."""
        cands = [self.ep.deadline()]
        if self.status == DeviceStatus.UPDATING:
            cands.append(self._last_activity + self.inactivity_timeout_s)
        elif self.status in (DeviceStatus.CONNECTING, DeviceStatus.IDLE):
            cands.append(self._begin_deadline)
        if self._linger_until is not None:
            cands.append(self._linger_until)
        vals = [c for c in cands if c is not None]
        return min(vals) if vals else None

    def poll(self, now: float) -> list[bytes]:
        """Retransmissions and timeouts."""
        out, failed = self.ep.poll(now)
        for msg in failed:
            if self._hello_mid is not None and msg.message_id == self._hello_mid:
                if self.status == DeviceStatus.CONNECTING:  # else the server did answer
                    self._end(DeviceStatus.UNREACHABLE, now, "no ACK to the Hello from the server")
            elif not self.terminal:
                # spec 6.4 #7: a protocol error while updating aborts with finish(0)
                self._end(
                    DeviceStatus.ABORTED,
                    now,
                    f"the server stopped answering ({code_str(msg.code)} unacknowledged)",
                )
        if (
            self.status == DeviceStatus.UPDATING
            and now >= self._last_activity + self.inactivity_timeout_s
        ):
            self._end(
                DeviceStatus.TIMEOUT,
                now,
                f"no OTA activity for {self.inactivity_timeout_s:g} s "
                "(TIMING_FLASH_UPDATE_TIMEOUT, spec 6.5): reset with reason UPDATE_TIMEOUT",
            )
        if (
            self.status in (DeviceStatus.CONNECTING, DeviceStatus.IDLE)
            and self._begin_deadline is not None
            and now >= self._begin_deadline
        ):
            self._end(DeviceStatus.NO_UPDATE, now, "the server did not start an update")
        return out

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Process one datagram from the server."""
        d = self.ep.receive(data)
        out = list(d.out)
        msg = d.message
        if msg is None:
            return out
        if d.acked is not None:
            if msg.mtype == CoapType.RST and not self.terminal:
                self._end(DeviceStatus.ABORTED, now, "the server reset the exchange (RST)")
            elif d.acked.message_id == self._hello_mid and self.status == DeviceStatus.CONNECTING:
                self.status = DeviceStatus.IDLE
            return out
        if self.terminal:
            # After finish the device is resetting: new exchanges are refused.
            if msg.mtype == CoapType.CON:
                out.append(self.ep.reply(msg, reset_for(msg.message_id)))
            return out
        if not msg.is_request:
            if msg.mtype == CoapType.CON:
                out.append(self.ep.reply(msg, empty_ack(msg.message_id)))
            return out
        if self.status == DeviceStatus.CONNECTING:
            self.status = DeviceStatus.IDLE  # the Hello's ACK may have been lost
        try:
            req = parse_request(msg)
        except TransportError as e:
            return out + self._protocol_error(msg, now, str(e))
        if isinstance(req, UpdateBegin):
            out += self._on_begin(msg, req, now)
        elif isinstance(req, Chunk):
            out += self._on_chunk(msg, req, now)
        elif isinstance(req, UpdateDone):
            out += self._on_done(msg, now)
        elif msg.mtype == CoapType.CON:
            out.append(self.ep.reply(msg, reset_for(msg.message_id)))
        return out

    # ----------------------------------------------------------------- handlers
    def _protocol_error(self, msg: CoapMessage, now: float, why: str) -> list[bytes]:
        out: list[bytes] = []
        if msg.mtype == CoapType.CON:
            out.append(self.ep.reply(msg, reset_for(msg.message_id)))
        if self.status == DeviceStatus.UPDATING:
            self._end(DeviceStatus.ABORTED, now, f"protocol error: {why}")
        return out

    def _dry_run(self, req: UpdateBegin) -> tuple[int, int, str | None]:
        """spec 4.1 #1 / 6.2 #1: defaults, chunk count, range check; no erase."""
        chunk_size = req.chunk_size or DEFAULT_CHUNK_SIZE
        file_length = req.file_length
        if req.chunk_size == 0 or file_length == 0:  # spec 4.1 #1, spec 6.2 legacy defaults
            file_length = OTA_FLASH_LENGTH[self.config.platform]
        if not self.config.updates_enabled:
            return chunk_size, file_length, "updates are disabled"
        chunks = math.ceil(file_length / chunk_size)
        if chunks >= MAX_CHUNKS:
            return chunk_size, file_length, f"{chunks} chunks; must be below {MAX_CHUNKS}"
        end = OTA_REGION_START + req.file_address + file_length
        if end > FLASH_END:
            return (
                chunk_size,
                file_length,
                f"file ends at 0x{end:08x}, past the end of flash 0x{FLASH_END:08x}",
            )
        return chunk_size, file_length, None

    def _on_begin(self, msg: CoapMessage, req: UpdateBegin, now: float) -> list[bytes]:
        chunk_size, file_length, why = self._dry_run(req)
        if why is not None:
            # spec 6.2 #2: ACK coded 5.03 on failure, with the request's token
            ack = CoapMessage(CoapType.ACK, CODE_SERVICE_UNAVAILABLE, msg.message_id, msg.token)
            out = [self.ep.reply(msg, ack)]
            # linger: the device keeps running and re-sends the 5.03 to a retransmission
            self._end(DeviceStatus.REFUSED, now, f"UpdateBegin refused: {why}", linger=True)
            return out
        out = [self.ep.reply(msg, empty_ack(msg.message_id))]
        try:
            rc = self.target.ota_begin(file_length, chunk_size, req.file_address)
        except FlashroomError as e:  # the device cannot take an update (not running, cut...)
            self._end(DeviceStatus.ABORTED, now, f"prepare (HAL_FLASH_Begin) failed: {e}")
            return out
        if rc != 0:
            self.error_code = rc
            self._end(DeviceStatus.ABORTED, now, f"prepare (HAL_FLASH_Begin) failed with {rc}")
            return out
        self.fast = req.fast and self.config.allow_fast
        self.chunk_size = chunk_size
        self.file_length = file_length
        self.file_address = req.file_address
        self.chunk_count = math.ceil(file_length / chunk_size)
        # spec 6.2 #4: all-zero bitmap in fast mode, all-0xFF ("everything received") otherwise
        fill = 0x00 if self.fast else 0xFF
        self.bitmap = bytearray([fill]) * math.ceil(self.chunk_count / 8)
        self.next_index = 0
        self.chunks_written = 0
        self.bytes_written = 0
        self._received_in_flight = 0
        self._requested.clear()
        self.status = DeviceStatus.UPDATING
        self._last_activity = now
        self.progress(0, self.chunk_count)
        ready = UpdateReady(FLAG_FAST_OTA if self.fast else 0)
        out.append(self.ep.send(ready.to_coap(self.ep.next_mid(), msg.token), now))
        return out

    def _bit(self, index: int) -> bool:
        return bool(self.bitmap[index >> 3] & (1 << (index & 7)))

    def _on_chunk(self, msg: CoapMessage, chunk: Chunk, now: float) -> list[bytes]:
        out: list[bytes] = []
        if self.status != DeviceStatus.UPDATING:
            if msg.mtype == CoapType.CON:
                out.append(self.ep.reply(msg, reset_for(msg.message_id)))
            return out
        self._last_activity = now  # spec 6.5: each chunk resets the inactivity timer
        if msg.mtype == CoapType.CON:
            out.append(self.ep.reply(msg, empty_ack(msg.message_id)))  # spec 6.3 #2
        fast_chunk = chunk.index is not None
        index = chunk.index if chunk.index is not None else self.next_index
        if index >= MAX_CHUNKS:  # spec 6.2: indices are only checked against 65535
            return out + self._protocol_error(msg, now, f"chunk index {index}")
        in_bitmap = index < self.chunk_count
        if fast_chunk and in_bitmap and self._bit(index):
            self.duplicate_chunks += 1  # spec 6.3 #4: duplicates ignored
            self.resends_seen += 1
            return out
        if index in self._requested or (not fast_chunk and self._bad_pending):
            self.resends_seen += 1
            self._requested.discard(index)
        if crc32(chunk.data) != chunk.crc:
            self.crc_errors += 1
            if not self.fast:
                self._bad_pending = True
                bad = ChunkReceived(False).to_coap(self.ep.next_mid(), msg.token)
                out.append(self.ep.send(bad, now))
            return out  # fast mode: silent, re-requested later (spec 6.3 #5)
        self._bad_pending = False
        # spec 6.3 #3: address = file_address + index * chunk_size; ota_begin took file_address
        offset = index * self.chunk_size
        try:
            self.target.ota_write(offset, chunk.data)
        except FlashroomError as e:  # e.g. a write past the end of flash bus-faults
            return out + self._protocol_error(msg, now, f"write at offset {offset}: {e}")
        if in_bitmap:
            self.bitmap[index >> 3] |= 1 << (index & 7)
        else:
            # Stock v2.3.1 would set a bit past the bitmap (a buffer overrun, spec 6.2); the
            # data is written as FLASH_Update does and the image validation decides.
            self.out_of_bitmap_chunks += 1
        self.chunks_written += 1
        if in_bitmap:
            self.bytes_written += len(chunk.data)
        self._received_in_flight += 1
        if not fast_chunk:
            self.next_index += 1
            ok = ChunkReceived(True).to_coap(self.ep.next_mid(), msg.token)
            out.append(self.ep.send(ok, now))
        self.progress(self._count_received(), self.chunk_count)
        limit = self.config.reset_after_chunks
        if limit is not None and self.chunks_written >= limit:
            self._end(DeviceStatus.RESET, now, f"device reset after {limit} chunks (fault)")
        return out

    def _count_received(self) -> int:
        if not self.fast:
            return min(self.next_index, self.chunk_count)
        return sum(bin(b).count("1") for b in self.bitmap)

    def abandon(self, now: float, why: str) -> None:
        """Stop where it stands (the driver's time limit): ABORTED if an update was running,
        else NO_UPDATE."""
        if self.terminal:
            return
        status = (
            DeviceStatus.ABORTED
            if self.status == DeviceStatus.UPDATING
            else (DeviceStatus.NO_UPDATE)
        )
        self._end(status, now, why)

    def missing(self) -> list[int]:
        """Indices whose bitmap bit is clear (spec 6.4 #1)."""
        if not self.fast:
            return []
        return [i for i in range(self.chunk_count) if not self._bit(i)]

    def _on_done(self, msg: CoapMessage, now: float) -> list[bytes]:
        if self.status != DeviceStatus.UPDATING:
            ack = CoapMessage(CoapType.ACK, CODE_BAD_REQUEST, msg.message_id, msg.token)
            return [self.ep.reply(msg, ack)]
        self._last_activity = now
        missing = self.missing()
        if missing:
            # spec 6.4 #3, #5: ACK 4.00, then one ChunkMissed with the lowest missing indices
            ack = CoapMessage(CoapType.ACK, CODE_BAD_REQUEST, msg.message_id, msg.token)
            out = [self.ep.reply(msg, ack)]
            n = missed_request_count(self._received_in_flight)
            self._received_in_flight = 0
            ask = tuple(missing[:n])
            self._requested.update(ask)
            self.missed_requests += 1
            cm = ChunkMissed(ask).to_coap(self.ep.next_mid(), self.ep.next_token())
            out.append(self.ep.send(cm, now))
            return out
        # spec 6.4 #2: validate-only pass does not change the ACK; #3 ACK 2.04 with the token
        ack = CoapMessage(CoapType.ACK, CODE_CHANGED, msg.message_id, msg.token)
        out = [self.ep.reply(msg, ack)]
        try:
            rc = self.target.ota_finish()  # spec 6.4 #4 -> HAL_FLASH_End (spec 4.2)
        except FlashroomError as e:
            self._end(DeviceStatus.ABORTED, now, f"finish (HAL_FLASH_End) failed: {e}")
            return out
        if rc in (1, 2):  # 1 pending restart; 2 bootloader flashed at once (spec 4.7)
            self._end(DeviceStatus.APPLIED, now, None, linger=True)
        else:
            self.error_code = rc
            reason = getattr(self.target, "last_ota_error", "") or ""
            self._end(
                DeviceStatus.REJECTED,
                now,
                f"HAL_FLASH_End refused the image with {rc}"
                + (f": {reason}" if reason else "")
                + "; nothing recorded (spec 4.2 #1)",
                linger=True,
            )
        self.progress(self.chunk_count, self.chunk_count)
        return out

    def _end(
        self, status: DeviceStatus, now: float, error: str | None, *, linger: bool = False
    ) -> None:
        self.status = status
        self.error = error
        self.finished_at = now
        self._linger_until = now + (self.config.linger_s if linger else 0.0)
        if not linger:
            self.ep.cancel_all()


# =========================================================================== server end
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
        response_timeout_s: how long to wait for UpdateReady/ChunkReceived/ChunkMissed.
        max_bad_chunks: give up after this many ChunkReceived BAD in a row.
        max_stalled_rounds: give up after this many ChunkMissed rounds in a row that ask for
            the same lowest index (the device is not receiving anything).
        pace_bps: fast OTA: send chunks at this wire rate (None: back to back).
        per_datagram_overhead: bytes below CoAP per datagram, used for pacing.
        tuning: CoAP retransmission parameters.
        faults: deliberate misbehaviour for tests.
    """

    fast: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    store: int = STORE_FIRMWARE
    response_timeout_s: float = 60.0
    max_bad_chunks: int = 10
    max_stalled_rounds: int = 20
    pace_bps: float | None = None
    per_datagram_overhead: int = 0
    tuning: CoapTuning = field(default_factory=CoapTuning)
    faults: ServerFaults = field(default_factory=ServerFaults)


class ServerSession:
    """The server side of spec 6 for one device: waits for a Hello, then drives the update."""

    def __init__(
        self,
        image: bytes,
        config: ServerConfig | None = None,
        *,
        seed: int = 0,
        progress: ProgressFn | None = None,
    ) -> None:
        self.image = image
        self.config = config or ServerConfig()
        if not 1 <= self.config.chunk_size <= 0xFFFF:
            raise TransportError(f"chunk size {self.config.chunk_size}: expected 1..65535")
        self.ep = CoapEndpoint(seed=seed, tuning=self.config.tuning)
        self.progress = progress or _noop_progress
        self.chunk_count = math.ceil(len(image) / self.config.chunk_size)
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
        self._wait_until: float | None = None
        self._bad_in_row = 0
        self._stalled = 0
        self._last_missed: int | None = None
        self._vanished = False

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
        if self._queue and self.config.pace_bps:
            cands.append(self._next_send_at)
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
        # A separate response (CON/NON) from the device: UpdateReady or ChunkReceived.
        if msg.mtype == CoapType.CON:
            out.append(self.ep.reply(msg, empty_ack(msg.message_id)))
        return out + self._on_response(msg, now)

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
        flags = FLAG_FAST_OTA if cfg.fast else 0
        length = len(self.image) + cfg.faults.file_length_delta
        begin = UpdateBegin(flags, cfg.chunk_size, length, cfg.store, 0)
        msg = begin.to_coap(self.ep.next_mid(), self.ep.next_token())
        self._begin = msg
        self.status = SessionStatus.BEGIN
        self._wait(now)
        self.progress(0, self.chunk_count)
        return [self.ep.send(msg, now)]

    def _on_ack(self, msg: CoapMessage, acked: CoapMessage, now: float) -> list[bytes]:
        if self.terminal:
            return []
        if msg.mtype == CoapType.RST:
            self._fail(now, f"the device reset the exchange (RST to {code_str(acked.code)})")
            return []
        if self._begin is not None and acked.message_id == self._begin.message_id:
            if msg.code == CODE_SERVICE_UNAVAILABLE:
                self._fail(now, "the device refused UpdateBegin (5.03, spec 6.2 #2)")
                return []
            if msg.code == CODE_CHANGED and self.status == SessionStatus.BEGIN:
                return self._ready(UpdateReady.from_coap(msg), now)  # piggybacked
            return []
        if acked.message_id == self._done_mid:
            self._done_mid = None
            if msg.code == CODE_CHANGED:
                self.status = SessionStatus.COMPLETE
                self.finished_at = now
                self._wait_until = None
                self.progress(self.chunk_count, self.chunk_count)
            elif msg.code == CODE_BAD_REQUEST:
                self._wait(now)  # spec 6.4 #5: a ChunkMissed follows
            else:
                self._fail(now, f"UpdateDone answered with {code_str(msg.code)}")
            return []
        if (
            self._saw is not None
            and acked.message_id == self._saw.message_id
            and msg.code in (CODE_CHANGED, CODE_BAD_REQUEST)  # piggybacked ChunkReceived
        ):
            return self._chunk_received(ChunkReceived(msg.code == CODE_CHANGED), now)
        return []

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
        return []  # stale response to an earlier exchange

    def _ready(self, ready: UpdateReady, now: float) -> list[bytes]:
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
        self._wait(now)
        return [self.ep.send(msg, now)]

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
        while self._queue and (not pace or now >= self._next_send_at):
            if self._gone(now):
                return out
            index = self._queue.popleft()
            msg = self._chunk_msg(index, CoapType.NON, with_index=True)
            data = self.ep.send(msg, now)
            out.append(data)
            if pace:
                bits = (len(data) + self.config.per_datagram_overhead) * 8
                self._next_send_at = max(self._next_send_at, now) + bits / pace
        if not self._queue and self._done_mid is None and self._wait_until is None:
            extra = self.config.faults.extra_chunk_index
            if extra is not None and extra not in self._sent_once:
                self._sent_once.add(extra)
                filler = Chunk.of(b"\xa5" * self.config.chunk_size, extra)
                msg = filler.to_coap(self.ep.next_mid(), self.ep.next_token(), CoapType.NON)
                out.append(self.ep.send(msg, now))
            out += self._send_done(now)
        return out

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
        self.status = SessionStatus.SENDING
        if not self.fast:
            # Stop-and-wait never leaves gaps; restart the counter at the lowest index.
            self._cursor = min(req.indices, default=self._cursor)
            return self._send_saw(now)
        for i in req.indices:
            if i not in self._queue:
                self._queue.append(i)
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
        self._sent_once.add(index)
        self.chunks_sent += 1
        self.chunk_bytes_sent += len(data)
        chunk = Chunk(data, crc, index if with_index else None)
        return chunk.to_coap(self.ep.next_mid(), self.ep.next_token(), mtype)

    def _send_done(self, now: float) -> list[bytes]:
        msg = UpdateDone().to_coap(self.ep.next_mid(), self.ep.next_token())
        self._done_mid = msg.message_id
        self.status = SessionStatus.DONE_SENT
        return [self.ep.send(msg, now)]
