"""The streamed OTA's decoders and output side; :mod:`flashroom.emu.stream` drives them.

As the extended device would run them (docs/delta-ota.md): the detools C library's sequential
patch apply as a push state machine over the same states as ``c/detools.c``, with its
none/CRLE/heatshrink readers; Deflate as uzlib does it (zlib stands in: the same output on valid
streams, error positions may differ on corrupt ones; the window bits are enforced); heatshrink
(heatshrink2, the C library's Python binding); LZMA as the LZMA SDK's LzmaDec does it (liblzma's
raw LZMA1 decoder stands in: the same output on valid streams; it refuses a match past the
header's dictionary, as LzmaDec does, and the end marker must come). The sink filters, checks
the output-block CRCs and the target SHA-256, and writes 512-byte staged blocks with
``FLASH_Update``. Every failure is a :class:`~flashroom.errors.StreamError` carrying the system
error the device returns.
"""

from __future__ import annotations

import hashlib
import lzma
import zlib
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from flashroom.deviceos.stream import (
    DETOOLS_COMPRESSION_CRLE,
    DETOOLS_COMPRESSION_HEATSHRINK,
    DETOOLS_HEATSHRINK_LOOKAHEAD,
    DETOOLS_HEATSHRINK_WINDOW,
    STREAM_OUT_BUFFER,
    SYSTEM_ERROR_BAD_DATA,
    SYSTEM_ERROR_INVALID_STATE,
    SYSTEM_ERROR_NOT_ENOUGH_DATA,
    SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED,
    SYSTEM_ERROR_OTA_INVALID_FORMAT,
    SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE,
    SYSTEM_ERROR_TOO_LARGE,
    StreamFilter,
)
from flashroom.emu.flashmal import flash_update
from flashroom.emu.hardware import Hardware
from flashroom.errors import StreamError
from flashroom.particle.stream import StreamHeader, lzma_filters, thumb_filter_partial
from flashroom.ranges import fmt_addr

_Wait = Generator[None, None, Any]


def stream_fail(code: int, message: str) -> StreamError:
    return StreamError(message, code=code)


# ============================================================================ the output side
class Sink:
    """Decoded bytes -> filter -> block CRCs, SHA-256 -> 512-byte staging -> ``FLASH_Update``."""

    def __init__(self, hw: Hardware, addr: int, header: StreamHeader):
        self.hw = hw
        self.addr = addr
        self.h = header
        self.thumb = header.filter == StreamFilter.ARM_THUMB
        self.count = 0  # final (post-filter) bytes produced
        self.written = 0  # bytes programmed into the scratch
        self._pending = b""  # filter input not yet final (< 4 bytes)
        self._filtered_at = 0  # file offset of _pending[0]
        self._stage = bytearray()
        self._sha = hashlib.sha256()
        self._block = 0  # index of the block being accumulated
        self._block_crc = 0
        self._block_fill = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.thumb:
            buf = self._pending + data
            out, final = thumb_filter_partial(buf, encode=False, start=self._filtered_at)
            self._pending = buf[final:]  # < 4 bytes the scan could not decide yet
            self._filtered_at += final
            self._emit(out[:final])
        else:
            self._emit(data)

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        h = self.h
        if self.count + len(data) > h.target_size:
            raise stream_fail(
                SYSTEM_ERROR_TOO_LARGE,
                f"the stream decodes past its {h.target_size}-byte target (at least "
                f"{self.count + len(data)} bytes): refused at "
                f"{fmt_addr(self.addr + h.target_size)} before writing past it",
            )
        self._sha.update(data)
        view = memoryview(data)
        while view:
            room = h.block_size - self._block_fill
            part = view[:room]
            self._block_crc = zlib.crc32(part, self._block_crc)
            self._block_fill += len(part)
            self.count += len(part)
            self._stage += part
            view = view[len(part) :]
            if self._block_fill == h.block_size or self.count == h.target_size:
                self._close_block()
        while len(self._stage) >= STREAM_OUT_BUFFER:
            self._program(bytes(self._stage[:STREAM_OUT_BUFFER]))
            del self._stage[:STREAM_OUT_BUFFER]

    def _close_block(self) -> None:
        h = self.h
        want = h.block_crcs[self._block]
        got = self._block_crc & 0xFFFFFFFF
        start = self._block * h.block_size
        if got != want:
            raise stream_fail(
                SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED,
                f"rebuilt block {self._block} ({fmt_addr(self.addr + start)}-"
                f"{fmt_addr(self.addr + start + self._block_fill)}) has CRC-32 0x{got:08x}, the "
                f"stream header expects 0x{want:08x}: wrong base or corrupt payload, stopped "
                "mid-stream",
            )
        self._block += 1
        self._block_crc = 0
        self._block_fill = 0

    def _program(self, data: bytes) -> None:
        flash_update(self.hw.flash, self.addr + self.written, data)
        self.written += len(data)

    def end(self) -> None:
        """Flush the filter and the staging buffer, then check size and SHA-256."""
        if self._pending:
            tail, self._pending = self._pending, b""
            self._emit(tail)  # fewer than 4 bytes: never filtered (as the encoder left them)
        h = self.h
        if self.count != h.target_size:
            raise stream_fail(
                SYSTEM_ERROR_NOT_ENOUGH_DATA,
                f"the stream ended after {self.count} of its {h.target_size} target bytes "
                f"(rebuilt up to {fmt_addr(self.addr + self.count)})",
            )
        if self._stage:
            self._program(bytes(self._stage))
            self._stage.clear()
        got = self._sha.digest()
        if got != h.target_sha256:
            raise stream_fail(
                SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED,
                f"rebuilt module SHA-256 {got.hex()[:16]}..., the stream header expects "
                f"{h.target_sha256.hex()[:16]}...",
            )


# ============================================================================ decoders
class Decoder:
    """Push decoder: ``push(payload bytes)``, then ``end()`` once the payload is complete."""

    ram = 0

    def push(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def end(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Inflate(Decoder):
    """Raw Deflate with at most a ``2**bits`` window (uzlib with a dictionary ring of that size)."""

    STEP = 4096

    def __init__(self, bits: int, out: Callable[[bytes], None]):
        self.d = zlib.decompressobj(-bits)
        self.out = out

    def _run(self, data: bytes) -> None:
        d = self.d
        buf = data
        try:
            while True:
                out = d.decompress(buf, self.STEP)
                self.out(out)
                buf = d.unconsumed_tail
                if d.eof or (not buf and len(out) < self.STEP):
                    break
        except zlib.error as e:
            raise stream_fail(SYSTEM_ERROR_BAD_DATA, f"inflate failed: {e}") from None
        if d.eof and d.unused_data:
            raise stream_fail(
                SYSTEM_ERROR_BAD_DATA,
                f"{len(d.unused_data)} bytes after the end of the Deflate stream",
            )

    def push(self, data: bytes) -> None:
        self._run(data)

    def end(self) -> None:
        self._run(b"")
        if not self.d.eof:
            raise stream_fail(SYSTEM_ERROR_NOT_ENOUGH_DATA, "the Deflate stream has no final block")


class Unlzma(Decoder):
    """Raw LZMA1 with the header's dictionary, lc, lp, pb (LzmaDec_DecodeToDic into a
    dictionary of that size, flushed to the sink as it fills)."""

    STEP = 4096

    def __init__(self, param: int, out: Callable[[bytes], None]):
        self.d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=lzma_filters(param))
        self.out = out

    def _run(self, data: bytes) -> None:
        d = self.d
        buf = data
        try:
            while not d.eof:
                if not buf and d.needs_input:
                    break
                out = d.decompress(buf, self.STEP)  # at most STEP bytes: a bomb stops at the sink
                buf = b""
                self.out(out)
        except (lzma.LZMAError, EOFError) as e:
            raise stream_fail(SYSTEM_ERROR_BAD_DATA, f"LZMA decode failed: {e}") from None
        if d.eof and (d.unused_data or buf):
            raise stream_fail(
                SYSTEM_ERROR_BAD_DATA,
                f"{len(d.unused_data) + len(buf)} bytes after the LZMA end marker",
            )

    def push(self, data: bytes) -> None:
        if self.d.eof and data:
            raise stream_fail(SYSTEM_ERROR_BAD_DATA, f"{len(data)} bytes after the LZMA end marker")
        self._run(data)

    def end(self) -> None:
        self._run(b"")
        if not self.d.eof:
            raise stream_fail(
                SYSTEM_ERROR_NOT_ENOUGH_DATA, "the LZMA stream ends without its end marker"
            )


class Chain(Decoder):
    """A Deflated delta: uzlib's output is the detools patch."""

    def __init__(self, bits: int, delta: DeltaApply):
        self.delta = delta
        self.inflate = Inflate(bits, delta.push)

    def push(self, data: bytes) -> None:
        self.inflate.push(data)

    def end(self) -> None:
        self.inflate.end()
        self.delta.end()


class Heatshrink(Decoder):
    """heatshrink LZSS (heatshrink2's decoder, the C library's binding)."""

    def __init__(self, window: int, lookahead: int, sink: Sink):
        from heatshrink2.core import Encoder, Reader  # C extension: only for a streamed update

        self.dec = Encoder(Reader(window_sz2=window, lookahead_sz2=lookahead))
        self.sink = sink

    def push(self, data: bytes) -> None:
        self.sink.write(bytes(self.dec.fill(data)))

    def end(self) -> None:
        self.sink.write(bytes(self.dec.finish()))


class Crle:
    """detools' CRLE reader (c/detools.c patch_reader_crle_*): scattered / repeated segments."""

    def __init__(self) -> None:
        self.state = "kind"
        self.left = 0
        self.value = 0
        self.shift = 0

    @property
    def idle(self) -> bool:
        return self.state == "kind"

    def feed(self, raw: bytes) -> bytes:
        out = bytearray()
        i, n = 0, len(raw)
        while i < n:
            st = self.state
            if st == "kind":
                kind = raw[i]
                i += 1
                if kind not in (0, 1):
                    raise stream_fail(
                        SYSTEM_ERROR_BAD_DATA,
                        f"CRLE kind {kind}: expected scattered (0) or repeated (1) "
                        "(DETOOLS_CORRUPT_PATCH_CRLE_KIND)",
                    )
                self.state = "scattered_size" if kind == 0 else "repeated_size"
                self.left = self.shift = 0
            elif st in ("scattered_size", "repeated_size"):
                b = raw[i]
                i += 1
                if self.shift + 7 > 32:
                    raise stream_fail(SYSTEM_ERROR_BAD_DATA, "CRLE size overflows 32 bits")
                self.left |= (b & 0x7F) << self.shift
                self.shift += 7
                if not b & 0x80:
                    if st == "scattered_size":
                        self.state = "scattered_data" if self.left else "kind"
                    else:
                        self.state = "repeated_data"
            elif st == "scattered_data":
                take = min(self.left, n - i)
                out += raw[i : i + take]
                i += take
                self.left -= take
                if not self.left:
                    self.state = "kind"
            else:  # repeated_data: one value, ``left`` repetitions
                out += bytes([raw[i]]) * self.left
                i += 1
                self.state = "kind"
        return bytes(out)


class DeltaApply(Decoder):
    """The detools C library's sequential patch apply (c/detools.c:1110-1520) as a push machine.

    States: fixed header (patch type, compression), to_size, the reader's own header (heatshrink
    window/lookahead), dfpatch size (must be 0: the C library does not implement data formats),
    then diff size, diff data (added to the base bytes), extra size, extra data, adjustment
    (a signed seek in the base), until to_size bytes are out.
    """

    def __init__(
        self,
        compression: int,
        header: StreamHeader,
        sink: Sink,
        read_base: Callable[[int, int], bytes],
    ):
        self.compression = compression
        self.h = header
        self.sink = sink
        self.read_base = read_base
        self.raw = bytearray()  # patch bytes before the compressed part starts
        self.dec = bytearray()  # decompressed patch bytes not yet consumed
        self.dpos = 0
        self.body = False
        self.eof = False
        self.done = False
        self._hs: Any = None
        self._crle: Crle | None = None
        self.gen = self._run()
        next(self.gen)

    # ---- input layers
    def push(self, data: bytes) -> None:
        if not data:
            return
        if self.done:
            raise stream_fail(
                SYSTEM_ERROR_BAD_DATA,
                f"{len(data)} patch bytes after the patch produced its {self.h.target_size} bytes",
            )
        if self.body:
            self.dec += self._decompress(data)
        else:
            self.raw += data
        self._resume()

    def _decompress(self, data: bytes) -> bytes:
        if self.compression == DETOOLS_COMPRESSION_HEATSHRINK:
            return bytes(self._hs.fill(data))
        if self.compression == DETOOLS_COMPRESSION_CRLE:
            crle = self._crle
            if crle is None:  # pragma: no cover - set with the body
                raise stream_fail(SYSTEM_ERROR_INVALID_STATE, "CRLE reader not initialised")
            return crle.feed(data)
        return data

    def _resume(self) -> None:
        if self.done:
            return
        try:
            next(self.gen)
        except StopIteration:
            self.done = True

    def end(self) -> None:
        self.eof = True
        if self.body and self.compression == DETOOLS_COMPRESSION_HEATSHRINK:
            self.dec += bytes(self._hs.finish())
        self._resume()
        if not self.done:  # pragma: no cover - _run raises at eof instead of waiting
            raise stream_fail(SYSTEM_ERROR_NOT_ENOUGH_DATA, "the patch ends before its to-data")
        if self.dpos < len(self.dec) or (self._crle is not None and not self._crle.idle):
            raise stream_fail(
                SYSTEM_ERROR_BAD_DATA,
                f"{len(self.dec) - self.dpos} decompressed bytes after the end of the patch",
            )

    # ---- reading helpers (generators: they yield while waiting for input)
    def _raw_bytes(self, n: int) -> _Wait:
        while len(self.raw) < n:
            if self.eof:
                raise stream_fail(SYSTEM_ERROR_NOT_ENOUGH_DATA, "the patch header is truncated")
            yield
        out = bytes(self.raw[:n])
        del self.raw[:n]
        return out

    def _dec_wait(self) -> _Wait:
        while self.dpos >= len(self.dec):
            if self.eof:
                raise stream_fail(
                    SYSTEM_ERROR_NOT_ENOUGH_DATA,
                    f"the patch ends after {self.sink.count} of {self.h.target_size} bytes",
                )
            yield
        if self.dpos > 65536:  # compact what has been consumed
            del self.dec[: self.dpos]
            self.dpos = 0

    def _dec_some(self, n: int) -> _Wait:
        yield from self._dec_wait()
        take = min(n, len(self.dec) - self.dpos)
        out = bytes(self.dec[self.dpos : self.dpos + take])
        self.dpos += take
        return out

    def _size(self, *, raw: bool, signed: bool) -> _Wait:
        """detools' size encoding: bit 6 of the first byte is the sign, 6 + 7k value bits."""
        value = shift = 0
        first = True
        negative = False
        while True:
            piece = (yield from self._raw_bytes(1)) if raw else (yield from self._dec_some(1))
            b = piece[0]
            if first:
                negative = bool(b & 0x40)
                value = b & 0x3F
                shift = 6
                first = False
            else:
                if shift + 7 > 32:  # is_overflow (c/detools.c:124-127)
                    raise stream_fail(SYSTEM_ERROR_BAD_DATA, "patch size field overflows 32 bits")
                value |= (b & 0x7F) << shift
                shift += 7
            if not b & 0x80:
                break
        return -value if (negative and signed) else value

    # ---- the state machine
    def _run(self) -> Generator[None, None, None]:
        yield  # primed: wait for the first bytes
        h = self.h
        fixed = (yield from self._raw_bytes(1))[0]
        ptype, comp = (fixed >> 4) & 0x7, fixed & 0xF
        if ptype != 0:
            raise stream_fail(
                SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE,
                f"detools patch type {ptype}: the device applies sequential (0) patches only "
                "(DETOOLS_BAD_PATCH_TYPE)",
            )
        if comp != self.compression:
            raise stream_fail(
                SYSTEM_ERROR_OTA_INVALID_FORMAT,
                f"detools compression {comp}, the stream header says {self.compression}",
            )
        to_size = yield from self._size(raw=True, signed=False)
        if to_size != h.target_size:
            raise stream_fail(
                SYSTEM_ERROR_OTA_INVALID_FORMAT,
                f"the patch produces {to_size} bytes, the stream header says {h.target_size}",
            )
        if comp == DETOOLS_COMPRESSION_HEATSHRINK:
            hb = (yield from self._raw_bytes(1))[0]
            w, la = ((hb >> 4) & 0xF) + 4, (hb & 0xF) + 3
            if (w, la) != (DETOOLS_HEATSHRINK_WINDOW, DETOOLS_HEATSHRINK_LOOKAHEAD):
                raise stream_fail(
                    SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE,
                    f"heatshrink window {w} lookahead {la}: the detools C library's static "
                    f"configuration is {DETOOLS_HEATSHRINK_WINDOW}/{DETOOLS_HEATSHRINK_LOOKAHEAD} "
                    "(DETOOLS_HEATSHRINK_HEADER)",
                )
            from heatshrink2.core import Encoder, Reader  # C extension: only for a delta

            self._hs = Encoder(Reader(window_sz2=w, lookahead_sz2=la))
        elif comp == DETOOLS_COMPRESSION_CRLE:
            self._crle = Crle()
        self.body = True
        leftover, self.raw = bytes(self.raw), bytearray()
        self.dec += self._decompress(leftover)
        if to_size == 0:
            return
        dfpatch = yield from self._size(raw=False, signed=True)
        if dfpatch > 0:
            raise stream_fail(
                SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE,
                f"the patch uses a data format (dfpatch size {dfpatch}): the detools C library "
                "does not implement it (DETOOLS_NOT_IMPLEMENTED)",
            )
        to_pos = 0
        from_pos = 0
        base_size = h.base_size
        while to_pos < to_size:
            for kind in ("diff", "extra"):
                n = yield from self._size(raw=False, signed=True)
                if n < 0 or to_pos + n > to_size:
                    raise stream_fail(
                        SYSTEM_ERROR_BAD_DATA,
                        f"patch {kind} size {n} at to-offset {to_pos} runs past the "
                        f"{to_size}-byte target (DETOOLS_CORRUPT_PATCH)",
                    )
                while n:
                    piece = yield from self._dec_some(n)
                    if kind == "diff":
                        k = len(piece)
                        if from_pos < 0 or from_pos + k > base_size:
                            raise stream_fail(
                                SYSTEM_ERROR_BAD_DATA,
                                f"the patch reads base bytes {from_pos}..{from_pos + k} outside "
                                f"the {base_size}-byte base",
                            )
                        frm = self.read_base(from_pos, k)
                        piece = (
                            np.frombuffer(piece, np.uint8) + np.frombuffer(frm, np.uint8)
                        ).tobytes()
                        from_pos += k
                    self.sink.write(piece)
                    n -= len(piece)
                    to_pos += len(piece)
            adj = yield from self._size(raw=False, signed=True)
            from_pos += adj


__all__ = [
    "Chain",
    "Crle",
    "Decoder",
    "DeltaApply",
    "Heatshrink",
    "Inflate",
    "Sink",
    "Unlzma",
    "stream_fail",
]
