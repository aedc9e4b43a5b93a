"""Negotiating a streamed (delta or compressed) update: the Hello extension and the server's pick.

flashroom's extension of spec 6.5 (``deviceos.stream`` has the facts, docs/delta-ota.md the
story). A device that can decode while receiving sets bit 0 of the Hello's reserved byte
(payload byte 4, datagram byte 11: always 0 on v2.3.1) and appends this block after its device
ID (big-endian, as the rest of the Hello)::

    u16  length of what follows
    u8   version (1)
    u8   encodings it applies (EncodingMask: 0x01 Deflate, 0x02 heatshrink, 0x04 delta,
         0x08 LZMA)
    u8   largest Deflate window, in bits
    u8   largest heatshrink window, in bits
    u32  largest module it can rebuild (HAL_OTA_FlashLength)
    u32  RAM budget of its decoder, bytes
    u32  running app: module file length (0: no valid app, no base for a delta)
    32   running app: SHA-256 over those bytes of the user part (only when the length is not 0)
    u8   largest LZMA dictionary, in bits (only when the LZMA bit is set)
    u8   largest LZMA lc + lp (only when the LZMA bit is set)

The v2.3.1 parser (and the Particle cloud's, as far as spec 6.5 shows) reads the device ID by its
length and ignores what follows, and a stock device never sends the block.

The two LZMA bytes were appended to version 1, which stays 1: a parser that predates them reads
the fields before them at the same offsets, ignores bytes past the SHA-256 and masks the
encodings to 0x07, so it never sends such a device LZMA. A Hello with the LZMA bit but without the
two bytes is read as a device without LZMA. LZMA has its own limits because its RAM is the
dictionary *and* the literal probabilities (``deviceos.stream.decoder_ram``); the Deflate
window does not bound it.

The server's pick (:meth:`OtaOffer.choose`), per device, from its Hello: a **delta** when the
device applies deltas and reports a running app whose SHA-256 equals a base the server has a
patch for; otherwise the smallest **compressed** file the device's encodings, windows and RAM
budget allow; otherwise **raw** (the module as is, FIRMWARE store). Encoded files go with store
``STORE_STREAMED_FIRMWARE``; a stock device never sees one. An encoded file that is not smaller
than the module is not sent.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flashroom.deviceos.enums import FileTransferStore
from flashroom.deviceos.stream import (
    ENCODING_BIT,
    ENCODING_MASK_KNOWN,
    HELLO_EXT_VERSION,
    HELLO_RESERVED_STREAMED_OTA,
    LZMA_DICT_MIN_BITS,
    STORE_STREAMED_FIRMWARE,
    STREAM_OUT_BUFFER,
    STREAM_STATE_BYTES,
    EncodingMask,
    StreamEncoding,
    StreamReport,
    decoder_ram,
    largest_decoder_ram,
    lzma_param,
    lzma_props,
)
from flashroom.errors import TransportError, UsageError
from flashroom.ota.messages import Hello
from flashroom.particle.stream import (
    DEFAULT_HEATSHRINK,
    DEFAULT_LZMA,
    DEFAULT_WINDOW_BITS,
    StreamHeader,
    decode_stream,
    detools_patch,
    encode_compressed,
    encode_delta,
    encoding_name,
)

_EXT = struct.Struct(">BBBBIII")


def encode_hello_ext(report: StreamReport) -> bytes:
    """The extension block for ``report`` (see the module docstring)."""
    body = _EXT.pack(
        HELLO_EXT_VERSION,
        int(report.encodings),
        report.max_window_bits,
        report.max_heatshrink_window,
        report.max_output,
        report.ram_budget,
        report.base_size,
    )
    if report.base_size:
        if len(report.base_sha256) != 32:
            raise UsageError("a stream report with a base needs its 32-byte SHA-256")
        body += report.base_sha256
    if report.encodings & EncodingMask.LZMA:
        body += bytes([report.max_lzma_dict_bits, report.max_lzma_lc_lp])
    return struct.pack(">H", len(body)) + body


def hello_report(hello: Hello) -> StreamReport | None:
    """The device's stream report from its Hello, or None (a stock device, or no valid block).

    A malformed block is treated as absent: the device then gets raw bytes, which every device
    can take.
    """
    if not hello.reserved & HELLO_RESERVED_STREAMED_OTA:
        return None
    ext = hello.ext
    try:
        return parse_hello_ext(ext)
    except TransportError:
        return None


def parse_hello_ext(ext: bytes) -> StreamReport:
    """Parse the extension block.

    Raises:
        TransportError: short, wrong version or inconsistent lengths.
    """
    if len(ext) < 2 + _EXT.size:
        raise TransportError(f"Hello extension of {len(ext)} bytes; expected >= {2 + _EXT.size}")
    (length,) = struct.unpack_from(">H", ext, 0)
    body = ext[2 : 2 + length]
    if len(body) != length or length < _EXT.size:
        raise TransportError(f"Hello extension says {length} bytes, carries {len(ext) - 2}")
    ver, enc, wbits, hsw, max_out, ram, base_size = _EXT.unpack_from(body, 0)
    if ver != HELLO_EXT_VERSION:
        raise TransportError(f"Hello extension version {ver}; expected {HELLO_EXT_VERSION}")
    sha = b""
    at = _EXT.size
    if base_size:
        sha = bytes(body[at : at + 32])
        at += 32
        if len(sha) != 32:
            raise TransportError("Hello extension reports a base without its SHA-256")
    encodings = EncodingMask(enc & ENCODING_MASK_KNOWN)
    lz_dict = lz_lclp = 0
    if encodings & EncodingMask.LZMA:
        if len(body) >= at + 2:
            lz_dict, lz_lclp = body[at], body[at + 1]
        else:  # the bit without its limits: no LZMA for this device
            encodings &= ~EncodingMask.LZMA
    return StreamReport(encodings, max_out, ram, wbits, hsw, base_size, sha, lz_dict, lz_lclp)


def receive_window(report: StreamReport, chunk_size: int) -> int:
    """How many chunks from the lowest one a streamed-OTA device still lacks it can take
    without deferring any: the next one, plus what its reorder buffer holds with the largest
    decoder it may have to allocate (before the header is in, ``emu/stream.py`` reserves that).
    """
    largest = largest_decoder_ram(
        report.max_window_bits,
        report.max_heatshrink_window,
        report.max_lzma_dict_bits,
        report.max_lzma_lc_lp,
    )
    room = report.ram_budget - largest - STREAM_STATE_BYTES - STREAM_OUT_BUFFER
    return 1 + max(0, room) // max(1, chunk_size)


def stream_hello(platform_id: int, device_id: bytes, report: StreamReport | None) -> Hello:
    """The Hello a device sends: v2.3.1's, plus the extension when it has a report."""
    if report is None:
        return Hello(platform_id, device_id)
    return Hello(
        platform_id,
        device_id,
        reserved=HELLO_RESERVED_STREAMED_OTA,
        ext=encode_hello_ext(report),
    )


# ----------------------------------------------------------------------------- the server's pick


#: A compressed file goes out only when it is at least this much smaller than the module: a
#: streamed transfer costs about 2-3 % more on the wire than raw (the server polls within the
#: device's receive window, bench_delta), so a file that saves less would cost more (measured:
#: the 200 KB test app's LCG blob compresses to 0.996 of the module and 1.02 of raw's wire bytes).
STREAM_MARGIN = 0.05


@dataclass(frozen=True)
class Choice:
    """What the server sends one device.

    Attributes:
        encoding: ``raw``, ``deflate``, ``heatshrink``, ``lzma``, ``delta``, ``delta_deflate``.
        payload: the file bytes on the wire.
        store: the UpdateBegin store.
        module: the module the device ends up with.
        base_sha256: the base of a delta (hex), else "".
        reason: why this one, in words.
        report: what the device's Hello said (None: a stock Hello).
    """

    encoding: str
    payload: bytes
    store: int
    module: bytes
    base_sha256: str = ""
    reason: str = ""
    report: StreamReport | None = None

    @property
    def ratio(self) -> float:
        """Payload bytes per module byte."""
        return len(self.payload) / len(self.module) if self.module else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "payload_bytes": len(self.payload),
            "module_bytes": len(self.module),
            "ratio": round(self.ratio, 4),
            "base_sha256": self.base_sha256 or None,
            "reason": self.reason,
        }


def _fits(report: StreamReport, encoding: StreamEncoding, param: int) -> bool:
    bits = ENCODING_BIT[encoding]
    if (report.encodings & bits) != bits:
        return False
    need = decoder_ram(encoding, param) + STREAM_STATE_BYTES + STREAM_OUT_BUFFER
    return need <= report.ram_budget


@dataclass
class OtaOffer:
    """One new module and the bases the server can patch from.

    Args:
        module: the new module file.
        bases: module files devices may be running (a delta is made from each).
        delta_compression: the delta's compression (``particle.stream.encode_delta``).
        allow: the encodings the server may send (raw is always allowed).
        window_bits: the largest Deflate window the server uses (capped by each device's).

    Raises:
        UsageError: an empty module.
    """

    module: bytes
    bases: Sequence[bytes] = ()
    delta_compression: str = "deflate"
    allow: frozenset[str] = frozenset({"delta", "compressed"})
    window_bits: int = DEFAULT_WINDOW_BITS
    _bases: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)
    _deltas: dict[tuple[str, int], bytes] = field(default_factory=dict, init=False, repr=False)
    _compressed: dict[tuple[int, int], bytes] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.module:
            raise UsageError("the firmware image is empty")
        for base in self.bases:
            if base != self.module:
                self._bases.setdefault(hashlib.sha256(base).hexdigest(), base)
        if "delta" in self.allow:
            for sha in self._bases:  # made up front: ``ota serve`` shows their sizes
                self.delta_for(sha)

    @property
    def delta_encoding(self) -> StreamEncoding:
        """Encoding 4 (a Deflated detools patch) or 3 (detools' own compression)."""
        if self.delta_compression == "deflate":
            return StreamEncoding.DELTA_DEFLATE
        return StreamEncoding.DELTA

    @property
    def base_sha256s(self) -> list[str]:
        """The bases a delta can be made from."""
        return list(self._bases)

    def delta_for(self, base_sha256: str, window_bits: int | None = None) -> bytes | None:
        """The delta file from that base (None when the base is unknown), cached per window."""
        base = self._bases.get(base_sha256)
        if base is None:
            return None
        wb = self.window_bits if window_bits is None else window_bits
        key = (base_sha256, wb if self.delta_encoding == StreamEncoding.DELTA_DEFLATE else 0)
        if key not in self._deltas:
            self._deltas[key] = encode_delta(
                base, self.module, compression=self.delta_compression, window_bits=wb
            )
        return self._deltas[key]

    def compressed(self, encoding: StreamEncoding, param: int) -> bytes:
        """The compressed file (cached per encoding and parameter)."""
        key = (int(encoding), param)
        if key not in self._compressed:
            if encoding == StreamEncoding.DEFLATE:
                data = encode_compressed(self.module, encoding=encoding, window_bits=param)
            elif encoding == StreamEncoding.LZMA:
                data = encode_compressed(
                    self.module, encoding=encoding, lzma_params=lzma_props(param)
                )
            else:
                data = encode_compressed(
                    self.module, encoding=encoding, heatshrink=(param >> 4, param & 0xF)
                )
            self._compressed[key] = data
        return self._compressed[key]

    def raw(self, reason: str, report: StreamReport | None = None) -> Choice:
        """The module as is, FIRMWARE store."""
        return Choice(
            "raw",
            self.module,
            FileTransferStore.FIRMWARE,
            self.module,
            reason=reason,
            report=report,
        )

    def choose(self, hello: Hello | None) -> Choice:
        """What to send the device that said ``hello`` (see the module docstring)."""
        report = hello_report(hello) if hello is not None else None
        if report is None:
            return self.raw("the device reports no streamed-OTA support (stock Hello)")
        if len(self.module) > report.max_output:
            return self.raw(
                f"the module ({len(self.module)} bytes) is larger than the device can rebuild "
                f"({report.max_output}); raw, and the device's own checks decide",
                report,
            )
        why: list[str] = []
        if "delta" in self.allow and report.base_size:
            sha = report.base_sha256.hex()
            enc = self.delta_encoding
            wb = min(self.window_bits, report.max_window_bits)
            param = wb if enc == StreamEncoding.DELTA_DEFLATE else 0
            known = sha in self._bases
            delta = self.delta_for(sha, wb) if known and 9 <= wb <= 15 else None
            if not known:
                why.append(f"no base of this offer is the running app {sha[:16]}")
            elif delta is None or not _fits(report, enc, param):
                why.append("the device cannot apply this delta (encodings, window or RAM)")
            elif len(delta) < len(self.module):
                return Choice(
                    encoding_name(enc),
                    delta,
                    STORE_STREAMED_FIRMWARE,
                    self.module,
                    sha,
                    f"the device runs {sha[:16]}, a base of this offer",
                    report,
                )
        elif "delta" in self.allow:
            why.append("the device reports no valid running app")
        if "compressed" in self.allow:
            best: tuple[bytes, StreamEncoding] | None = None
            wb = min(self.window_bits, report.max_window_bits)
            cands: list[tuple[StreamEncoding, int]] = []
            if 9 <= wb <= 15:  # zlib's raw Deflate encoder's range
                cands.append((StreamEncoding.DEFLATE, wb))
            hs_w, hs_l = DEFAULT_HEATSHRINK
            hs_w = min(hs_w, report.max_heatshrink_window)
            if hs_w >= 5:
                cands.append((StreamEncoding.HEATSHRINK, (hs_w << 4) | min(hs_l, hs_w - 1)))
            lz = lzma_for(report)
            if lz is not None:
                cands.append((StreamEncoding.LZMA, lz))
            for enc, param in cands:
                if not _fits(report, enc, param):
                    continue
                data = self.compressed(enc, param)
                if best is None or len(data) < len(best[0]):
                    best = (data, enc)
            if best is not None and len(best[0]) < len(self.module) * (1 - STREAM_MARGIN):
                return Choice(
                    encoding_name(best[1]),
                    best[0],
                    STORE_STREAMED_FIRMWARE,
                    self.module,
                    reason="; ".join([*why, "compressed: no delta for this device"]),
                    report=report,
                )
            why.append("no compressed form fits the device or is smaller")
        return self.raw("; ".join(why) or "encodings disabled by the server", report)


def lzma_for(report: StreamReport) -> int | None:
    """The LZMA header param the server uses for this device: :data:`DEFAULT_LZMA` within the
    device's dictionary and lc + lp limits (None: it has no LZMA, or a dictionary < 4 KB)."""
    dict_bits, lc, lp, pb = DEFAULT_LZMA
    if not report.encodings & EncodingMask.LZMA or report.max_lzma_dict_bits < LZMA_DICT_MIN_BITS:
        return None
    dict_bits = min(dict_bits, report.max_lzma_dict_bits)
    lp = min(lp, report.max_lzma_lc_lp)
    lc = min(lc, report.max_lzma_lc_lp - lp)
    return lzma_param(dict_bits, lc, lp, pb)


# ----------------------------------------------------------------------------- ota diff


@dataclass(frozen=True)
class DiffReport:
    """``flashroom ota diff``: the patch file and what it saves against the alternatives.

    Attributes:
        patch: the delta streamed-update file (what the server sends).
        old, new: the two module files.
        compressed: the compressed file of ``new`` per encoding (``deflate``, ``heatshrink``,
            ``lzma``, each with the server's default parameters): what a device without this
            base gets.
        detools_sizes: detools' own patch sizes for comparison, with its default compression
            (``lzma``, which the device does not apply) and the C library's ``heatshrink``.
    """

    patch: bytes
    old: bytes
    new: bytes
    compressed: dict[str, int]
    detools_sizes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        n = len(self.new)
        h = StreamHeader.from_bytes(self.patch)
        return {
            "delta": "modelled",  # the device side is a modelled change (docs/delta-ota.md)
            "old": {"size": len(self.old), "sha256": hashlib.sha256(self.old).hexdigest()},
            "new": {"size": n, "sha256": hashlib.sha256(self.new).hexdigest()},
            "patch": {
                "size": len(self.patch),
                "ratio": round(len(self.patch) / n, 4),
                "header_size": h.size,
                "payload_size": h.payload_size,
                "encoding": encoding_name(h.encoding),
            },
            "compressed": {
                k: {"size": v, "ratio": round(v / n, 4)} for k, v in self.compressed.items()
            },
            "detools": {
                k: {"size": v, "ratio": round(v / n, 4)} for k, v in self.detools_sizes.items()
            },
            "raw": {"size": n, "ratio": 1.0},
            "header": h.to_json(),
        }


def diff_modules(
    old: bytes,
    new: bytes,
    *,
    compression: str = "deflate",
    window_bits: int = DEFAULT_WINDOW_BITS,
) -> DiffReport:
    """Make the delta from ``old`` to ``new``, check it decodes back to ``new`` (the host's
    reference decoders), and measure the alternatives.

    Raises:
        UsageError: empty input or a bad compression.
        ModuleFormatError: the patch does not decode to ``new`` (a detools bug).
    """
    patch = encode_delta(old, new, compression=compression, window_bits=window_bits)
    decode_stream(patch, old)
    compressed = {
        "deflate": len(encode_compressed(new, window_bits=window_bits)),
        "heatshrink": len(encode_compressed(new, encoding=StreamEncoding.HEATSHRINK)),
        "lzma": len(encode_compressed(new, encoding=StreamEncoding.LZMA)),
    }
    detools_sizes = {
        "lzma": len(detools_patch_lzma(old, new)),
        "heatshrink": len(detools_patch(old, new, "heatshrink")),
    }
    return DiffReport(patch, old, new, compressed, detools_sizes)


def detools_patch_lzma(old: bytes, new: bytes) -> bytes:
    """detools' sequential patch with its default compression (LZMA), for comparison only."""
    import detools  # C extensions: only when a patch is made

    out = io.BytesIO()
    detools.create_patch(io.BytesIO(old), io.BytesIO(new), out)
    return out.getvalue()


__all__ = [
    "Choice",
    "DiffReport",
    "OtaOffer",
    "detools_patch_lzma",
    "diff_modules",
    "encode_hello_ext",
    "hello_report",
    "lzma_for",
    "parse_hello_ext",
    "receive_window",
    "stream_hello",
]
