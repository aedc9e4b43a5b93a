"""The extended Electron's streamed OTA: decode while receiving, rebuild into the OTA scratch.

A modelled Device OS change (:mod:`flashroom.deviceos.stream`, docs/delta-ota.md). With
``FileTransfer::Store`` = :data:`~flashroom.deviceos.stream.STORE_STREAMED_FIRMWARE`, the three
system OTA entry points do this instead of writing the received bytes:

* ``Spark_Prepare_For_Firmware_Update``: the dry run checks the file length; the real prepare
  runs ``HAL_FLASH_Begin`` over the **whole** scratch (the decoded length is only known once the
  header arrives; spec-silent choice: the same one or two sectors a full-size raw update erases)
  and allocates the receiver.
* ``Spark_Save_Firmware_Chunk``: the chunk goes through a reorder buffer (fast-OTA chunks can
  arrive out of order) into the decoder. A chunk that arrives ahead of the stream when the buffer
  is full returns :data:`~flashroom.deviceos.stream.SAVE_CHUNK_DEFERRED`: it is not kept, and the
  extended ``ChunkedTransfer`` leaves its bitmap bit clear, so ChunkMissed asks for it again. The
  decoded bytes are staged 512 at a time and written with ``FLASH_Update`` (so through
  :meth:`NorFlash.program`) into 0x080C0000 onwards; a delta reads its base from the user part.
* ``Spark_Finish_Firmware_Update``: the stream must be complete (every byte decoded, the target
  size, the target SHA-256); then the existing ``HAL_FLASH_End`` validates the rebuilt module
  and records the slot, and the unchanged bootloader copies it (spec 4.2-4.5).

The decoders, as the device would run them, are in :mod:`flashroom.emu.stream_decode`. Every
check that fails returns a ``system_error_t`` and leaves the user part untouched: the receiver
only ever writes into the scratch, and nothing is recorded in the DCT before ``HAL_FLASH_End``
accepts the rebuilt module.

RAM: the receiver allocates the decoder named by the header and keeps out-of-order chunks in
whatever the capability's budget leaves (:func:`flashroom.deviceos.stream.decoder_ram`); a header
whose decoder does not fit is refused with SYSTEM_ERROR_NO_MEMORY. :attr:`StreamStats.peak_ram`
is what the model used, checked against the budget by the tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flashroom.deviceos import UpdateFlag
from flashroom.deviceos.gen2 import SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED, SYSTEM_ERROR_UNKNOWN
from flashroom.deviceos.ota import FileTransferDescriptor
from flashroom.deviceos.stream import (
    DETOOLS_COMPRESSION_NONE,
    DETOOLS_DEVICE_COMPRESSIONS,
    ENCODING_BIT,
    SAVE_CHUNK_DEFERRED,
    STORE_STREAMED_FIRMWARE,
    STREAM_HEADER_MAX,
    STREAM_OUT_BUFFER,
    STREAM_STATE_BYTES,
    SYSTEM_ERROR_BAD_DATA,
    SYSTEM_ERROR_INVALID_ARGUMENT,
    SYSTEM_ERROR_INVALID_STATE,
    SYSTEM_ERROR_NO_MEMORY,
    SYSTEM_ERROR_NOT_ENOUGH_DATA,
    SYSTEM_ERROR_OTA_INVALID_FORMAT,
    SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE,
    SYSTEM_ERROR_TOO_LARGE,
    StreamCapability,
    StreamEncoding,
    StreamFilter,
    StreamReport,
    decoder_ram,
    largest_decoder_ram,
    lzma_props,
)
from flashroom.emu.flashmal import module_info_at, verify_crc32
from flashroom.emu.hardware import Hardware
from flashroom.emu.stream_decode import (
    Chain,
    Decoder,
    DeltaApply,
    Heatshrink,
    Inflate,
    Sink,
    Unlzma,
    stream_fail,
)
from flashroom.errors import ModuleFormatError, StreamError
from flashroom.particle.stream import (
    FIXED_SIZE,
    StreamHeader,
    decode_stream,
    encoding_name,
    is_stream,
)
from flashroom.ranges import fmt_addr


# ============================================================================ the receiver
@dataclass
class StreamStats:
    """What one streamed transfer did (for reports and the bench)."""

    encoding: str = ""
    received: int = 0
    written: int = 0
    target_size: int = 0
    deferred: int = 0
    buffered: int = 0
    peak_ram: int = 0
    ram_budget: int = 0
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "received_bytes": self.received,
            "written_bytes": self.written,
            "target_size": self.target_size,
            "chunks_deferred": self.deferred,
            "chunks_buffered": self.buffered,
            "peak_ram": self.peak_ram,
            "ram_budget": self.ram_budget,
            "error": self.error,
        }


class StreamReceiver:
    """One streamed file being received: reorder buffer, header, decoder, sink.

    Args:
        hw: the device's hardware (flash, profile).
        cap: the capability (RAM budget, windows, encodings).
        file_length: the file length from UpdateBegin.
    """

    def __init__(self, hw: Hardware, cap: StreamCapability, file_length: int):
        self.hw = hw
        self.cap = cap
        self.file_length = file_length
        self.scratch = hw.profile.ota_flash_address
        self.scratch_len = hw.profile.ota_flash_length
        self.next = 0  # stream offset the decoder needs next
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0
        self.header: StreamHeader | None = None
        self._head = bytearray()
        self._payload_seen = 0
        self._decoder: Decoder | None = None
        self._sink: Sink | None = None
        self.error: StreamError | None = None
        self.complete = False
        # Until the header says which decoder, reserve the largest the capability allows.
        self._decoder_ram = largest_decoder_ram(
            cap.max_window_bits,
            cap.max_heatshrink_window,
            cap.max_lzma_dict_bits,
            cap.max_lzma_lc_lp,
        )
        self.stats = StreamStats(ram_budget=cap.ram_budget)
        self._note_ram()

    # ---- RAM
    @property
    def reorder_capacity(self) -> int:
        """Bytes of out-of-order chunks the budget leaves next to the decoder."""
        return self.cap.reorder_bytes(self._decoder_ram)

    @property
    def ram_in_use(self) -> int:
        return self._decoder_ram + STREAM_STATE_BYTES + STREAM_OUT_BUFFER + self.pending_bytes

    def _note_ram(self) -> None:
        self.stats.peak_ram = max(self.stats.peak_ram, self.ram_in_use)

    # ---- input
    def save(self, offset: int, data: bytes) -> int:
        """One received chunk at stream ``offset``: 0 taken (consumed or buffered),
        ``SAVE_CHUNK_DEFERRED`` not taken.

        Raises:
            StreamError: the stream is refused (the receiver is then dead).
        """
        if self.error is not None:
            raise self.error
        try:
            if offset < 0 or offset + len(data) > self.file_length:
                raise stream_fail(
                    SYSTEM_ERROR_BAD_DATA,
                    f"chunk at stream offset {offset} ({len(data)} bytes) runs past the "
                    f"{self.file_length}-byte file of UpdateBegin",
                )
            if offset + len(data) <= self.next or offset in self.pending:
                return 0  # already consumed or buffered: a duplicate
            if offset < self.next:
                raise stream_fail(
                    SYSTEM_ERROR_BAD_DATA,
                    f"chunk at stream offset {offset} overlaps consumed bytes up to {self.next}",
                )
            if offset > self.next:
                if self.pending_bytes + len(data) > self.reorder_capacity:
                    self.stats.deferred += 1
                    return SAVE_CHUNK_DEFERRED
                self.stats.received += len(data)
                self.pending[offset] = bytes(data)
                self.pending_bytes += len(data)
                self.stats.buffered += 1
                self._note_ram()
                return 0
            self.stats.received += len(data)
            self._consume(data)
            while self.next in self.pending:
                piece = self.pending.pop(self.next)
                self.pending_bytes -= len(piece)
                self._consume(piece)
            return 0
        except StreamError as e:
            self._die(e)
            raise

    def _die(self, e: StreamError) -> None:
        self.error = e
        self.stats.error = str(e)
        if self._sink is not None:
            self.stats.written = self._sink.written
        self.pending.clear()
        self.pending_bytes = 0

    def _consume(self, data: bytes) -> None:
        self.next += len(data)
        if self.header is None:
            self._head += data
            h = self._try_header()
            if h is None:
                return
            rest = bytes(self._head[h.size :])
            self._head = bytearray()
            self._start(h)
            data = rest
        if not data:
            return
        h = self.header
        if h is None or self._decoder is None:  # pragma: no cover - set by _start
            raise stream_fail(SYSTEM_ERROR_INVALID_STATE, "no decoder")
        self._payload_seen += len(data)
        if self._payload_seen > h.payload_size:  # pragma: no cover - file_length is checked
            raise stream_fail(SYSTEM_ERROR_BAD_DATA, "payload longer than the stream header says")
        self._decoder.push(data)
        if self._sink is not None:
            self.stats.written = self._sink.written

    def _try_header(self) -> StreamHeader | None:
        head = bytes(self._head)
        if len(head) < FIXED_SIZE:
            return None
        try:
            fixed = StreamHeader.fixed_from_bytes(head)
            tsize, blk = fixed[4], fixed[6]
            n_blocks = -(-tsize // blk) if blk > 0 else 0
            size = FIXED_SIZE + 4 * n_blocks + 4
            if size > STREAM_HEADER_MAX or blk <= 0:
                raise ModuleFormatError(
                    f"header of {size} bytes (block size {blk}); the device buffers at most "
                    f"{STREAM_HEADER_MAX}",
                    offset=80,
                    field="block_size",
                )
            if len(head) < size:
                return None
            return StreamHeader.from_bytes(head)
        except ModuleFormatError as e:
            raise stream_fail(
                SYSTEM_ERROR_OTA_INVALID_FORMAT, f"stream header refused: {e}"
            ) from None

    def _start(self, h: StreamHeader) -> None:
        cap = self.cap
        if h.size + h.payload_size != self.file_length:
            raise stream_fail(
                SYSTEM_ERROR_OTA_INVALID_FORMAT,
                f"stream header ({h.size} bytes) + payload ({h.payload_size}) = "
                f"{h.size + h.payload_size} bytes, UpdateBegin announced {self.file_length}",
            )
        try:
            enc = StreamEncoding(h.encoding)
        except ValueError:
            raise stream_fail(
                SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE, f"unknown stream encoding {h.encoding}"
            ) from None
        if not cap.encodings & ENCODING_BIT[enc]:
            raise stream_fail(
                SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE,
                f"{encoding_name(enc)} streams are not applied by this device",
            )
        if h.filter not in (StreamFilter.NONE, StreamFilter.ARM_THUMB) or (
            h.is_delta and h.filter != StreamFilter.NONE
        ):
            raise stream_fail(
                SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE, f"filter {h.filter} with {encoding_name(enc)}"
            )
        if h.target_size > self.scratch_len:
            raise stream_fail(
                SYSTEM_ERROR_TOO_LARGE,
                f"the stream rebuilds a {h.target_size}-byte module; the OTA scratch at "
                f"{fmt_addr(self.scratch)} holds {self.scratch_len} bytes (up to "
                f"{fmt_addr(self.scratch + self.scratch_len)})",
            )
        if h.target_size == 0:
            raise stream_fail(
                SYSTEM_ERROR_OTA_INVALID_FORMAT, "the stream rebuilds an empty module"
            )
        if enc in (StreamEncoding.DEFLATE, StreamEncoding.DELTA_DEFLATE):
            if not 8 <= h.param <= 15:
                raise stream_fail(
                    SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE, f"Deflate window bits {h.param}"
                )
            if h.param > cap.max_window_bits:
                raise stream_fail(
                    SYSTEM_ERROR_NO_MEMORY,
                    f"Deflate window 2^{h.param} bytes; this device's RAM budget allows "
                    f"2^{cap.max_window_bits}",
                )
        elif enc == StreamEncoding.HEATSHRINK:
            w, la = h.param >> 4, h.param & 0xF
            if not (4 <= w <= 15 and 3 <= la < w):
                raise stream_fail(
                    SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE, f"heatshrink window {w} lookahead {la}"
                )
            if w > cap.max_heatshrink_window:
                raise stream_fail(
                    SYSTEM_ERROR_NO_MEMORY,
                    f"heatshrink window 2^{w}; this device allows 2^{cap.max_heatshrink_window}",
                )
        elif enc == StreamEncoding.LZMA:
            dict_bits, lc, lp, _pb = lzma_props(h.param)  # every param byte is valid for LzmaDec
            if dict_bits > cap.max_lzma_dict_bits or lc + lp > cap.max_lzma_lc_lp:
                raise stream_fail(
                    SYSTEM_ERROR_NO_MEMORY,
                    f"LZMA dictionary 2^{dict_bits}, lc {lc} + lp {lp}; this device allows "
                    f"2^{cap.max_lzma_dict_bits} and lc + lp <= {cap.max_lzma_lc_lp}",
                )
        elif enc == StreamEncoding.DELTA and h.param not in DETOOLS_DEVICE_COMPRESSIONS:
            raise stream_fail(
                SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE,
                f"detools compression {h.param}: the device applies none (0), crle (2), "
                "heatshrink (4)",
            )
        need = decoder_ram(enc, h.param)
        if need + STREAM_STATE_BYTES + STREAM_OUT_BUFFER + self.pending_bytes > cap.ram_budget:
            raise stream_fail(
                SYSTEM_ERROR_NO_MEMORY,
                f"{encoding_name(enc)} decoder needs {need} bytes; with the stream state and "
                f"{self.pending_bytes} buffered bytes that exceeds the {cap.ram_budget}-byte "
                "budget",
            )
        self._decoder_ram = need
        self._note_ram()
        if h.is_delta:
            self._check_base(h)
        self.header = h
        self.stats.encoding = encoding_name(enc)
        self.stats.target_size = h.target_size
        sink = Sink(self.hw, self.scratch, h)
        self._sink = sink
        if enc == StreamEncoding.DEFLATE:
            self._decoder = Inflate(h.param, sink.write)
        elif enc == StreamEncoding.HEATSHRINK:
            self._decoder = Heatshrink(h.param >> 4, h.param & 0xF, sink)
        elif enc == StreamEncoding.LZMA:
            self._decoder = Unlzma(h.param, sink.write)
        elif enc == StreamEncoding.DELTA:
            self._decoder = DeltaApply(h.param, h, sink, self._read_base)
        else:
            delta = DeltaApply(DETOOLS_COMPRESSION_NONE, h, sink, self._read_base)
            self._decoder = Chain(h.param, delta)

    def _check_base(self, h: StreamHeader) -> None:
        """The base must be what runs: the SHA-256 of ``base_size`` bytes of the user part."""
        user = self.hw.profile.user_bounds
        if not 0 < h.base_size <= user.maximum_size:
            raise stream_fail(
                SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED,
                f"the patch's base is {h.base_size} bytes; the user part at "
                f"{fmt_addr(user.start_address)} holds at most {user.maximum_size}",
            )
        got = hashlib.sha256(self.hw.flash.view(user.start_address, h.base_size)).digest()
        if got != h.base_sha256:
            raise stream_fail(
                SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED,
                f"the patch is for base SHA-256 {h.base_sha256.hex()[:16]}... "
                f"({h.base_size} bytes); the user part at {fmt_addr(user.start_address)} holds "
                f"{got.hex()[:16]}... over those bytes: not the running app",
            )

    def _read_base(self, offset: int, n: int) -> bytes:
        return self.hw.flash.read(self.hw.profile.user_bounds.start_address + offset, n)

    def finish(self) -> None:
        """Everything received: end the decoder and check the rebuilt bytes (once).

        Raises:
            StreamError: incomplete, or the rebuilt module is not the stream's target.
        """
        if self.complete:
            return
        if self.error is not None:
            raise self.error
        try:
            if self.next < self.file_length or self.header is None or self._decoder is None:
                raise stream_fail(
                    SYSTEM_ERROR_NOT_ENOUGH_DATA,
                    f"UpdateDone after {self.next} of the {self.file_length} stream bytes"
                    + ("" if self.header else " (no complete stream header)"),
                )
            self._decoder.end()
            if self._sink is not None:
                self._sink.end()
                self.stats.written = self._sink.written
        except StreamError as e:
            self._die(e)
            raise
        self.complete = True


# ============================================================================ the system side
class StreamedOta:
    """The three OTA entry points for :data:`STORE_STREAMED_FIRMWARE` (see the module docstring).

    Args:
        hw: the device's hardware.
        flash_begin: ``HAL_FLASH_Begin(addr, length)`` of the system model.
        flash_end: ``HAL_FLASH_End()``: 1, 2 or a negative system error.
        validate: ``HAL_FLASH_OTA_Validate()``: 0 or a negative system error.
    """

    def __init__(
        self,
        hw: Hardware,
        flash_begin: Callable[[int, int], None],
        flash_end: Callable[[], int],
        validate: Callable[[], int],
    ):
        self.hw = hw
        self._begin = flash_begin
        self._end = flash_end
        self._validate = validate
        self.rx: StreamReceiver | None = None
        self.reason = ""

    @property
    def capability(self) -> StreamCapability | None:
        """The profile's capability, unless this device runs without it."""
        return self.hw.profile.ota_stream if self.hw.ota_stream_enabled else None

    def handles(self, file: FileTransferDescriptor) -> bool:
        """A streamed file on a device that applies them."""
        return file.store == STORE_STREAMED_FIRMWARE and self.capability is not None

    def prepare(self, file: FileTransferDescriptor, flags: int, updates_enabled: bool) -> int:
        """``Spark_Prepare_For_Firmware_Update`` for a streamed file: 0, 1 (updates disabled)
        or SYSTEM_ERROR_INVALID_ARGUMENT (no chunk size or file length, or a file larger than
        twice the scratch: nothing a module of the scratch's size encodes to)."""
        cap = self.capability
        p = self.hw.profile
        file.file_address = (p.ota_flash_address + file.chunk_address) & 0xFFFFFFFF
        if (
            cap is None
            or file.chunk_size == 0
            or file.file_length <= 0
            or file.chunk_address != 0
            or file.file_length > 2 * p.ota_flash_length
        ):
            return SYSTEM_ERROR_INVALID_ARGUMENT
        if not updates_enabled:
            return 1
        if flags & 1:
            return 0
        self._begin(p.ota_flash_address, p.ota_flash_length)
        self.rx = StreamReceiver(self.hw, cap, file.file_length)
        self.hw.last_stream = self.rx.stats
        self.hw.log(
            f"system: streamed OTA: {file.file_length}-byte file, decoder budget "
            f"{cap.ram_budget} bytes (modelled, docs/delta-ota.md)"
        )
        return 0

    def save(self, file: FileTransferDescriptor, chunk: bytes) -> int:
        """``Spark_Save_Firmware_Chunk``: 0, SAVE_CHUNK_DEFERRED, or a negative system error
        (the stream is refused; the transfer should be aborted)."""
        rx = self.rx
        if rx is None:
            return -1  # no streamed transfer prepared (as "not FIRMWARE" on v2.3.1)
        try:
            return rx.save(file.chunk_address - file.file_address, chunk[: file.chunk_size])
        except StreamError as e:
            self.reason = str(e)
            self.hw.log(f"system: streamed OTA refused: {e}")
            return e.code if e.code is not None else SYSTEM_ERROR_BAD_DATA

    def finish(self, file: FileTransferDescriptor, flags: int) -> tuple[int, str]:
        """``Spark_Finish_Firmware_Update``: the result code and the reason when it failed."""
        rx = self.rx
        validate = UpdateFlag.SUCCESS | UpdateFlag.VALIDATE_ONLY
        if rx is None:
            return SYSTEM_ERROR_UNKNOWN, "no streamed transfer in progress"
        if not flags & UpdateFlag.SUCCESS:
            self.rx = None
            return SYSTEM_ERROR_UNKNOWN, "streamed transfer aborted: nothing applied"
        try:
            rx.finish()
        except StreamError as e:
            self.reason = str(e)
            if flags & validate != validate:
                self.rx = None
                self.hw.log(f"system: streamed OTA refused at finish: {e}")
            return (e.code if e.code is not None else SYSTEM_ERROR_BAD_DATA), str(e)
        if flags & validate == validate:
            return self._validate(), ""
        self.rx = None
        self.hw.log(
            f"system: streamed OTA rebuilt {rx.stats.written} bytes at "
            f"{fmt_addr(self.hw.profile.ota_flash_address)} from {rx.stats.received} received "
            f"({rx.stats.encoding}): HAL_FLASH_End"
        )
        return self._end(), ""


def stream_report(hw: Hardware) -> StreamReport | None:
    """What the device says in its Hello (None without the capability): the encodings and
    limits, and the running app's size and SHA-256 as computed over the user part."""
    cap = hw.profile.ota_stream if hw.ota_stream_enabled else None
    if cap is None:
        return None
    p = hw.profile
    base_size, sha = 0, b""
    info = module_info_at(hw.flash, p.user_loc)
    user = p.user_bounds
    if (
        info is not None
        and info.module_start_address == p.user_loc
        and p.user_loc < info.module_end_address <= user.end_address - 4
        and verify_crc32(hw.flash, p.user_loc, info.module_length)
    ):
        base_size = info.module_length + 4
        sha = hashlib.sha256(hw.flash.view(p.user_loc, base_size)).digest()
    return StreamReport(
        encodings=cap.encodings,
        max_output=p.ota_flash_length,
        ram_budget=cap.ram_budget,
        max_window_bits=cap.max_window_bits,
        max_heatshrink_window=cap.max_heatshrink_window,
        base_size=base_size,
        base_sha256=sha,
        max_lzma_dict_bits=cap.max_lzma_dict_bits,
        max_lzma_lc_lp=cap.max_lzma_lc_lp,
    )


def streamed_ota_args(user_part: bytes, data: bytes) -> tuple[int, bytes | None]:
    """``Device.ota``'s ``store`` and ``expect`` for a file: a streamed-update file (magic
    ``FRst``) goes with the streamed store and the module it decodes to on the host (with the
    device's user part as a delta's base; None when it does not decode); anything else is a
    module for the FIRMWARE store."""
    if not is_stream(data):
        return 0, None
    try:
        return STORE_STREAMED_FIRMWARE, decode_stream(data, user_part)
    except ModuleFormatError:
        return STORE_STREAMED_FIRMWARE, None


__all__ = ["StreamReceiver", "StreamStats", "StreamedOta", "stream_report", "streamed_ota_args"]
