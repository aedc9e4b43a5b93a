"""The device end of Particle's OTA transfer (spec 6.2-6.5) as a sans-I/O state machine.

It plays ``ChunkedTransfer`` (communication/src/chunked_transfer.cpp): it parses the server's
messages and calls the system's three OTA entry points
(:class:`flashroom.deviceos.ota.SystemUpdateCallbacks`), which the emulated device's system model
and the real system code implement alike. The defaults of a size-less UpdateBegin come from
those callbacks (``Spark_Prepare_For_Firmware_Update`` fills them in from the profile's
``module_ota``), never from a table here. See :mod:`flashroom.ota` for who drives the exchange and
the confirmability choices.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from flashroom.deviceos import GEN2_PLATFORMS, UpdateFlag, get_platform
from flashroom.deviceos.gen2 import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNKS,
    MINIMUM_CHUNK_INCREASE,
    MISSED_CHUNKS_TO_SEND,
)
from flashroom.deviceos.ota import FileTransferDescriptor, SystemUpdateCallbacks
from flashroom.deviceos.stream import (
    SAVE_CHUNK_DEFERRED,
    STORE_STREAMED_FIRMWARE,
    StreamReport,
    StreamReporting,
)
from flashroom.errors import FlashroomError, TransportError
from flashroom.ota.endpoint import CoapEndpoint, CoapTuning
from flashroom.ota.messages import (
    CODE_BAD_REQUEST,
    CODE_CHANGED,
    CODE_SERVICE_UNAVAILABLE,
    FLAG_FAST_OTA,
    Chunk,
    ChunkMissed,
    ChunkReceived,
    CoapMessage,
    CoapType,
    UpdateBegin,
    UpdateDone,
    UpdateReady,
    code_str,
    empty_ack,
    parse_request,
    reset_for,
)
from flashroom.ota.stream import stream_hello
from flashroom.particle.crc import crc32
from flashroom.progress import ProgressFn, noop_progress


def missed_request_count(received_in_flight: int) -> int:
    """How many missing indices one ChunkMissed lists (spec 6.4 #5, integer arithmetic)."""
    n = received_in_flight
    return min(n + max(n // 5, MINIMUM_CHUNK_INCREASE), MISSED_CHUNKS_TO_SEND)


class DeviceStatus(StrEnum):
    """Where the device end is. The last seven are terminal."""

    CONNECTING = "connecting"
    IDLE = "idle"
    UPDATING = "updating"
    APPLIED = "applied"  # finish returned 1 (or 2); reset pending (spec 4.2 #3)
    REJECTED = "rejected"  # finish returned an error; nothing recorded (spec 4.2 #1)
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
        platform: "electron", "photon" or "p1" (Hello platform ID and inactivity timeout).
        device_id: 12 bytes sent in the Hello.
        allow_fast: the FAST_OTA connection property (spec 6.2).
        inactivity_timeout_s: None means the platform's TIMING_FLASH_UPDATE_TIMEOUT (spec 6.5).
        begin_timeout_s: how long to wait for UpdateBegin after the Hello (spec-silent).
        hello_attempts: transmissions of the Hello before the server counts as unreachable
            (RFC 7252's MAX_RETRANSMIT + 1 = 5 by default; fewer answer "nobody there" in a few
            retransmission timeouts instead of ~45-93 s).
        linger_s: after finishing, keep answering duplicates this long (the device resets
            shortly after finish; spec-silent).
        reset_after_chunks: fault injection: reset after writing this many chunks.
        tuning: CoAP retransmission parameters.
        seed: message-ID/token/jitter seed.
        announce_stream: put the target's streamed-OTA report (``deviceos.stream``) in the
            Hello when it has one (False: a v2.3.1 Hello whatever the target can do).
        claim_base_sha256: fault injection: the Hello claims this running app instead of the
            one the target reports (a device that lies about its base).
    """

    platform: str = "electron"
    device_id: bytes = bytes(12)
    allow_fast: bool = True
    inactivity_timeout_s: float | None = None
    begin_timeout_s: float = 120.0
    hello_attempts: int = 5
    linger_s: float = 5.0
    reset_after_chunks: int | None = None
    tuning: CoapTuning = field(default_factory=CoapTuning)
    seed: int = 0
    announce_stream: bool = True
    claim_base_sha256: bytes | None = None


class DeviceEnd:
    """The device side of spec 6: Hello, then UpdateBegin/Chunk/UpdateDone handling.

    Drive it with :meth:`start`, :meth:`receive` and :meth:`poll`; send what they return; call
    :meth:`poll` at :meth:`deadline`.
    """

    def __init__(
        self,
        target: SystemUpdateCallbacks,
        config: DeviceConfig | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.target = target
        self.config = config or DeviceConfig()
        if self.config.platform not in GEN2_PLATFORMS:
            raise TransportError(
                f"platform {self.config.platform!r}: expected one of {', '.join(GEN2_PLATFORMS)}"
            )
        self._platform = get_platform(self.config.platform)
        self.file = FileTransferDescriptor()
        self.ep = CoapEndpoint(seed=self.config.seed, tuning=self.config.tuning)
        self.progress = progress or noop_progress
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
        self.deferred_chunks = 0  # streamed store: the decoder could not take them yet
        self.duplicate_chunks = 0
        self.ignored_chunks = 0
        self.out_of_bitmap_chunks = 0
        self.missed_requests = 0
        self.resends_seen = 0
        self._received_in_flight = 0
        #: chunk indices that arrived in this transfer (any outcome): a second arrival is a resend
        self._arrived: set[int] = set()
        self._last_activity = 0.0
        self._begin_deadline: float | None = None
        self._linger_until: float | None = None
        self._hello_mid: int | None = None
        self.started_at = 0.0
        self.finished_at: float | None = None
        self.inactivity_timeout_s = (
            self.config.inactivity_timeout_s
            if self.config.inactivity_timeout_s is not None
            else self._platform.inactivity_timeout_s
        )

    # ----------------------------------------------------------------- driving
    def start(self, now: float) -> list[bytes]:
        """Send the Hello (CON ``POST h``), with the streamed-OTA extension when the target
        reports one (flashroom's extension of spec 6.5, :mod:`flashroom.ota.stream`)."""
        hello = stream_hello(
            self._platform.platform_id, self.config.device_id, self._stream_report()
        )
        msg = hello.to_coap(self.ep.next_mid())
        self._hello_mid = msg.message_id
        self._begin_deadline = now + self.config.begin_timeout_s
        self.started_at = now
        attempts = max(1, self.config.hello_attempts)
        return [self.ep.send(msg, now, max_retransmit=attempts - 1)]

    def unreachable(self, now: float, why: str) -> None:
        """The driver learnt that nobody listens at the server's address (an ICMP port
        unreachable, say) before the Hello was answered: end as UNREACHABLE."""
        if self.status == DeviceStatus.CONNECTING:
            self._end(DeviceStatus.UNREACHABLE, now, why)

    def stop_lingering(self, now: float) -> None:
        """End the linger now: the driver knows no retransmission can follow (see
        :func:`flashroom.ota.transport.connect_udp`)."""
        if self.terminal and self._linger_until is not None:
            # as if there had been no linger: it ends when the device finished
            self._linger_until = min(self._linger_until, self.finished_at or now)

    def _stream_report(self) -> StreamReport | None:
        cfg = self.config
        if not cfg.announce_stream or not isinstance(self.target, StreamReporting):
            return None
        report = self.target.stream_report()
        if report is not None and cfg.claim_base_sha256 is not None:
            size = report.base_size or 1
            report = replace(report, base_size=size, base_sha256=cfg.claim_base_sha256)
        return report

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
                    n = max(1, self.config.hello_attempts)
                    self._end(
                        DeviceStatus.UNREACHABLE,
                        now,
                        f"the Hello (CON POST h) went out {n} times over "
                        f"{now - self.started_at:.1f} s and was never acknowledged",
                    )
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
                "(TIMING_FLASH_UPDATE_TIMEOUT, docs/device-os.md#protocol): reset with reason "
                "UPDATE_TIMEOUT",
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

    def _on_begin(self, msg: CoapMessage, req: UpdateBegin, now: float) -> list[bytes]:
        # spec 6.2: the descriptor as handle_update_begin fills it; chunk_address = file_address
        file = FileTransferDescriptor(
            file_length=req.file_length,
            chunk_size=req.chunk_size,
            chunk_address=req.file_address,
            file_address=req.file_address,
            store=req.store,
        )
        # spec 6.2 #1, 4.1 #1: the dry run (flags 1) fills in the defaults and the address and
        # checks "updates enabled"; then the chunk count must stay below MAX_CHUNKS. No range
        # check here: FLASH_EraseMemory's runs in the real prepare and its result is ignored
        # (spec 3.5 #17), so a file past the end of flash fails only when a chunk lands there.
        try:
            rc = self.target.prepare_for_firmware_update(file, 1)
        except FlashroomError as e:  # the device cannot take an update (not running, cut...)
            self._end(DeviceStatus.ABORTED, now, f"prepare (dry run) failed: {e}")
            return [self.ep.reply(msg, empty_ack(msg.message_id))]
        why: str | None = None
        if rc != 0:
            why = "updates are disabled" if rc == 1 else f"prepare returned {rc}"
        elif file.chunk_count() >= MAX_CHUNKS:
            why = f"{file.chunk_count()} chunks; must be below {MAX_CHUNKS}"
        if why is not None:
            # spec 6.2 #2: ACK coded 5.03 on failure, with the request's token
            ack = CoapMessage(CoapType.ACK, CODE_SERVICE_UNAVAILABLE, msg.message_id, msg.token)
            out = [self.ep.reply(msg, ack)]
            # linger: the device keeps running and re-sends the 5.03 to a retransmission
            self._end(DeviceStatus.REFUSED, now, f"UpdateBegin refused: {why}", linger=True)
            return out
        out = [self.ep.reply(msg, empty_ack(msg.message_id))]
        try:
            rc = self.target.prepare_for_firmware_update(file, 0)  # erase (HAL_FLASH_Begin)
        except FlashroomError as e:
            self._end(DeviceStatus.ABORTED, now, f"prepare (HAL_FLASH_Begin) failed: {e}")
            return out
        if rc != 0:
            self.error_code = rc
            self._end(DeviceStatus.ABORTED, now, f"prepare (HAL_FLASH_Begin) failed with {rc}")
            return out
        # The FAST_OTA property (spec 6.2) is modelled as "disable" only.
        self.file = file
        self.fast = req.fast and self.config.allow_fast
        self.chunk_size = file.chunk_size
        self.file_length = file.file_length
        self.file_address = file.file_address
        self.chunk_count = file.chunk_count()
        # spec 6.2 #4: all-zero bitmap in fast mode, all-0xFF ("everything received") otherwise
        fill = 0x00 if self.fast else 0xFF
        self.bitmap = bytearray([fill]) * math.ceil(self.chunk_count / 8)
        self.next_index = 0
        self.chunks_written = 0
        self.bytes_written = 0
        self._received_in_flight = 0
        self._arrived.clear()
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
            # Spec-silent: Device OS returns without any reply (not even the ACK); flashroom
            # sends an RST so a stray CON chunk fails fast at the server instead of being
            # retransmitted to exhaustion.
            if msg.mtype == CoapType.CON:
                out.append(self.ep.reply(msg, reset_for(msg.message_id)))
            return out
        # spec 6.4 #5 "chunks received in this flight": every Chunk message counts, as Device
        # OS's chunk_count++ on entry to handle_chunk (duplicates and bad CRCs included)
        self._received_in_flight += 1
        # spec 6.3 #1: the index option, per message, means fast mode (whatever UpdateBegin
        # negotiated); #2: only a non-fast chunk is ACKed first. (Device OS would also "ACK" a
        # NON one; flashroom ACKs only a CON, as RFC 7252 4.2 wants: spec-silent.)
        fast_chunk = chunk.index is not None
        if msg.mtype == CoapType.CON and not fast_chunk:
            out.append(self.ep.reply(msg, empty_ack(msg.message_id)))
        index = chunk.index if chunk.index is not None else self.next_index
        if index >= MAX_CHUNKS:
            # spec 6.2: indices are only checked against 65535, and such a chunk is ignored
            # (chunked_transfer.cpp:187-191 returns NO_ERROR after the ACK)
            self.ignored_chunks += 1
            return out
        in_bitmap = index < self.chunk_count
        # A resend is an index that arrives again (deferred, bad CRC, lost reply, duplicate);
        # an index the device asked for in ChunkMissed may arrive for the first time (the
        # server had not sent it yet), which is not a resend.
        if index in self._arrived:
            self.resends_seen += 1
        self._arrived.add(index)
        if fast_chunk and in_bitmap and self._bit(index):
            self.duplicate_chunks += 1  # spec 6.3 #4: duplicates ignored
            return out
        if crc32(chunk.data) != chunk.crc:
            self.crc_errors += 1
            if not fast_chunk:  # spec 6.3 #5: BAD in normal mode only
                bad = ChunkReceived(False).to_coap(self.ep.next_mid(), msg.token)
                out.append(self.ep.send(bad, now))
            return out  # fast mode: silent, re-requested later (spec 6.3 #5)
        # spec 6.3 #3: address = file_address + index * chunk_size (u32, as the MCU computes)
        offset = index * self.chunk_size
        self.file.chunk_size = len(chunk.data)
        self.file.chunk_address = (self.file_address + offset) & 0xFFFFFFFF
        try:
            rc = self.target.save_firmware_chunk(self.file, chunk.data)
        except FlashroomError as e:  # e.g. a write past the end of flash bus-faults
            return out + self._protocol_error(msg, now, f"write at offset {offset}: {e}")
        if self.file.store == STORE_STREAMED_FIRMWARE:
            # The modelled extension (deviceos.stream): v2.3.1 ignores the result; the extended
            # ChunkedTransfer leaves a deferred chunk's bit clear (ChunkMissed asks again) and
            # aborts a stream the system refused (finish(0), as a protocol error does, 6.4 #7).
            if rc == SAVE_CHUNK_DEFERRED:
                self.deferred_chunks += 1
                return out
            if rc < 0:
                self.error_code = rc
                reason = self.target.last_ota_error or f"Spark_Save_Firmware_Chunk returned {rc}"
                out += self._protocol_error(msg, now, f"streamed update refused: {reason}")
                self._abort_transfer()
                return out
        # spec 6.5: the inactivity timer is reset by prepare, a saved chunk and finish only
        # (Spark_Save_Firmware_Chunk: TimingFlashUpdateTimeout = 0); a duplicate, a bad CRC or
        # an ignored index does not reset it
        self._last_activity = now
        if in_bitmap:
            self.bitmap[index >> 3] |= 1 << (index & 7)
        else:
            # Stock v2.3.1 would set a bit past the bitmap (a buffer overrun, spec 6.2); the
            # data is written as FLASH_Update does and the image validation decides.
            self.out_of_bitmap_chunks += 1
        self.chunks_written += 1
        if in_bitmap:
            self.bytes_written += len(chunk.data)
        self.next_index = index + 1  # spec 6.3 #5: one index, incremented after a good chunk
        if not fast_chunk:
            ok = ChunkReceived(True).to_coap(self.ep.next_mid(), msg.token)
            out.append(self.ep.send(ok, now))
        self.progress(self._count_received(), self.chunk_count)
        limit = self.config.reset_after_chunks
        if limit is not None and self.chunks_written >= limit:
            self._end(DeviceStatus.RESET, now, f"device reset after {limit} chunks (fault)")
        return out

    def _abort_transfer(self) -> None:
        """``finish(0)``: the system drops the transfer (nothing applied, spec 6.4 #7)."""
        with contextlib.suppress(FlashroomError):  # finish(0) only frees the transfer
            self.target.finish_firmware_update(self.file, UpdateFlag.NONE)

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
            # Spec-silent: Device OS ACKs from its stale bitmap and does nothing else; flashroom
            # always answers 4.00 (nothing to finish).
            ack = CoapMessage(CoapType.ACK, CODE_BAD_REQUEST, msg.message_id, msg.token)
            return [self.ep.reply(msg, ack)]
        missing = self.missing()
        if missing:
            # spec 6.5: the inactivity timer is reset by prepare, each chunk and finish only;
            # an UpdateDone that finds chunks missing does not reset it.
            # spec 6.4 #3, #5: ACK 4.00, then one ChunkMissed with the lowest missing indices
            ack = CoapMessage(CoapType.ACK, CODE_BAD_REQUEST, msg.message_id, msg.token)
            out = [self.ep.reply(msg, ack)]
            n = missed_request_count(self._received_in_flight)
            self._received_in_flight = 0
            ask = tuple(missing[:n])
            self.missed_requests += 1
            # Device OS builds it with no token (0x40 0x01 mid 0xb1 'c' 0xff ...); spec 6.1
            cm = ChunkMissed(ask).to_coap(self.ep.next_mid(), b"")
            out.append(self.ep.send(cm, now))
            return out
        self._last_activity = now  # finish (spec 6.5)
        # spec 6.4 #2: validate-only pass does not change the ACK; #3 ACK 2.04 with the token
        ack = CoapMessage(CoapType.ACK, CODE_CHANGED, msg.message_id, msg.token)
        out = [self.ep.reply(msg, ack)]
        try:
            # spec 6.4 #2: a validate-only pass first; its result does not change the ACK
            self.target.finish_firmware_update(
                self.file, UpdateFlag.SUCCESS | UpdateFlag.VALIDATE_ONLY
            )
            rc = self.target.finish_firmware_update(self.file, UpdateFlag.SUCCESS)  # spec 6.4 #4
        except FlashroomError as e:
            self._end(DeviceStatus.ABORTED, now, f"finish (HAL_FLASH_End) failed: {e}")
            return out
        if rc in (1, 2):  # 1 pending restart; 2 bootloader flashed at once (spec 4.7)
            self._end(DeviceStatus.APPLIED, now, None, linger=True)
        else:
            self.error_code = rc
            reason = self.target.last_ota_error
            self._end(
                DeviceStatus.REJECTED,
                now,
                f"HAL_FLASH_End refused the image with {rc}"
                + (f": {reason}" if reason else "")
                + "; nothing recorded (docs/device-os.md#ota-finish)",
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
