"""The streamed-update file: a module sent compressed or as a delta, decoded while it arrives.

flashroom's format for the modelled extension of :mod:`flashroom.deviceos.stream`
(docs/delta-ota.md). One file is a header, a table of output-block CRCs and the encoded payload::

    off  size  field (little-endian, like module_info_t)
      0     4  magic "FRst"
      4     1  version (1)
      5     1  encoding (StreamEncoding: 1 Deflate, 2 heatshrink, 3 delta, 4 Deflated delta,
               5 LZMA)
      6     1  param: Deflate window bits (1 and 4); heatshrink window << 4 | lookahead; delta:
               the detools compression (0 none, 2 crle, 4 heatshrink); LZMA:
               (dict_bits - 12) << 6 | pb << 4 | lp << 2 | lc (deviceos.stream.lzma_param)
      7     1  filter (StreamFilter: 0 none, 1 ARM-Thumb BL)
      8     4  target_size: bytes the decoder must produce (the module file)
     12    32  target_sha256: SHA-256 of those bytes
     44     4  base_size: delta only, the running app's module file length (0 otherwise)
     48    32  base_sha256: delta only, SHA-256 of that file (zeros otherwise)
     80     4  block_size: the output is checked every block_size bytes (a power of two)
     84     4  payload_size: bytes of encoded payload after the header
     88  4*n   CRC-32 of each output block, n = ceil(target_size / block_size)
      .     4  CRC-32 of the header bytes before it
      .     .  payload

The block table lets the device stop a wrong rebuild mid-stream (a patch made from another base
whose header names this one, a corrupt payload) instead of at the end; the target SHA-256 is the
end-to-end check. The magic's first word fails ``APP_START_MASK`` and no bounds table starts at
0x74735246, so a device without the extension, given this file as a module, finds no module
(-1300, spec 3.3).

Host side only here: building (:func:`encode_delta`, :func:`encode_compressed`) and the reference
decode (:func:`decode_stream`, with detools' own ``apply_patch``, zlib, heatshrink2 and liblzma).
The device's streaming decoder is the emulator's (:mod:`flashroom.emu.stream`).

An LZMA payload is a raw LZMA1 stream (liblzma's ``FORMAT_RAW``, ``FILTER_LZMA1``): no .lzma
header (LzmaDec's 5 property bytes are built from the param), the end-of-payload marker at its
end; the dictionary named by the param bounds every match distance.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from flashroom.deviceos.stream import (
    DELTA_ENCODINGS,
    DETOOLS_COMPRESSION_CRLE,
    DETOOLS_COMPRESSION_HEATSHRINK,
    DETOOLS_COMPRESSION_NONE,
    DETOOLS_HEATSHRINK_LOOKAHEAD,
    DETOOLS_HEATSHRINK_WINDOW,
    STREAM_HEADER_MAX,
    STREAM_MIN_BLOCK,
    StreamEncoding,
    StreamFilter,
    lzma_param,
    lzma_props,
)
from flashroom.errors import ModuleFormatError, UsageError
from flashroom.particle.crc import crc32

MAGIC = b"FRst"
VERSION = 1
#: Default output block: 8 KB (32 table entries, 128 bytes, for a 256 KB module).
DEFAULT_BLOCK_SIZE = 8192
#: Default Deflate window: the extended Electron's maximum (deviceos.stream).
DEFAULT_WINDOW_BITS = 13
#: Default heatshrink parameters of a compressed (not delta) file: 2 KB window, 16-byte matches.
DEFAULT_HEATSHRINK = (11, 4)
#: Default LZMA parameters ``(dict_bits, lc, lp, pb)``: a 4 KB dictionary, lc 0, lp 1, pb 1
#: (Thumb-2 code is halfword-aligned; lc 0 keeps the literal probabilities at 0x600). LzmaDec
#: then needs 11,300 bytes, no more than the Deflated-delta decoder (deviceos.stream). Measured
#: on the 0.4.3 modules: 2^13 or lc 1 gain < 1 % of the module for 4 KB more.
DEFAULT_LZMA = (12, 0, 1, 1)

DETOOLS_COMPRESSIONS = {
    "none": DETOOLS_COMPRESSION_NONE,
    "crle": DETOOLS_COMPRESSION_CRLE,
    "heatshrink": DETOOLS_COMPRESSION_HEATSHRINK,
}
#: A delta's compressions: detools' own (the C library's readers) or ``deflate`` (an
#: uncompressed detools patch, raw-Deflated as a whole: encoding 4).
DELTA_COMPRESSIONS = ("deflate", *DETOOLS_COMPRESSIONS)

_FIXED = struct.Struct("<4sBBBBI32sI32sII")
FIXED_SIZE = _FIXED.size  # 88
if FIXED_SIZE != 88:  # pragma: no cover - import-time check
    raise ImportError("stream header fixed part must be 88 bytes")


def block_count(target_size: int, block_size: int) -> int:
    """Entries of the block table."""
    return -(-target_size // block_size) if block_size else 0


@dataclass(frozen=True)
class StreamHeader:
    """The header of a streamed-update file (see the module docstring).

    ``block_crcs`` and the header CRC are derived when building (:func:`make_header`).
    """

    encoding: int
    param: int
    filter: int
    target_size: int
    target_sha256: bytes
    base_size: int
    base_sha256: bytes
    block_size: int
    payload_size: int
    block_crcs: tuple[int, ...]
    version: int = VERSION

    @property
    def size(self) -> int:
        """Header bytes, table and CRC included."""
        return FIXED_SIZE + 4 * len(self.block_crcs) + 4

    @property
    def is_delta(self) -> bool:
        """The file patches a base (encodings 3 and 4)."""
        return self.encoding in DELTA_ENCODINGS

    def to_bytes(self) -> bytes:
        """The header, block table and header CRC."""
        head = _FIXED.pack(
            MAGIC,
            self.version,
            self.encoding,
            self.param,
            self.filter,
            self.target_size,
            self.target_sha256,
            self.base_size,
            self.base_sha256,
            self.block_size,
            self.payload_size,
        ) + struct.pack(f"<{len(self.block_crcs)}I", *self.block_crcs)
        return head + struct.pack("<I", crc32(head))

    @classmethod
    def fixed_from_bytes(cls, data: bytes) -> tuple[int, ...]:
        """The fixed fields ``(version, encoding, param, filter, target_size, base_size,
        block_size, payload_size)`` of the first 88 bytes, after checking the magic.

        Raises:
            ModuleFormatError: too short or not a stream file.
        """
        if len(data) < FIXED_SIZE:
            raise ModuleFormatError(
                f"stream header needs {FIXED_SIZE} bytes, got {len(data)}", offset=0, field="magic"
            )
        magic, ver, enc, param, flt, tsize, _tsha, bsize, _bsha, blk, psize = _FIXED.unpack_from(
            data, 0
        )
        if magic != MAGIC:
            raise ModuleFormatError(
                f"not a streamed-update file: magic {magic!r}, expected {MAGIC!r}",
                offset=0,
                field="magic",
            )
        return ver, enc, param, flt, tsize, bsize, blk, psize

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamHeader:
        """Parse and check a header (magic, version, block size, table, header CRC).

        Raises:
            ModuleFormatError: what is wrong and at which offset.
        """
        ver, enc, param, flt, tsize, bsize, blk, psize = cls.fixed_from_bytes(data)
        if ver != VERSION:
            raise ModuleFormatError(
                f"stream version {ver}, expected {VERSION}", offset=4, field="version"
            )
        problem = block_size_problem(blk, tsize)
        if problem:
            raise ModuleFormatError(problem, offset=80, field="block_size")
        n = block_count(tsize, blk)
        size = FIXED_SIZE + 4 * n + 4
        if len(data) < size:
            raise ModuleFormatError(
                f"stream header with {n} block CRCs needs {size} bytes, got {len(data)}",
                offset=FIXED_SIZE,
                field="block_crcs",
            )
        (stored,) = struct.unpack_from("<I", data, size - 4)
        computed = crc32(data[: size - 4])
        if stored != computed:
            raise ModuleFormatError(
                f"stream header CRC-32 0x{stored:08x}, computed 0x{computed:08x}",
                offset=size - 4,
                field="header_crc",
            )
        fields = _FIXED.unpack_from(data, 0)
        crcs = struct.unpack_from(f"<{n}I", data, FIXED_SIZE)
        return cls(enc, param, flt, tsize, fields[6], bsize, fields[8], blk, psize, crcs, ver)

    def to_json(self) -> dict[str, Any]:
        """Stable snake_case keys."""
        return {
            "encoding": encoding_name(self.encoding),
            "param": self.param,
            "filter": "arm-thumb" if self.filter == StreamFilter.ARM_THUMB else "none",
            "target_size": self.target_size,
            "target_sha256": self.target_sha256.hex(),
            "base_size": self.base_size,
            "base_sha256": self.base_sha256.hex() if self.is_delta else None,
            "block_size": self.block_size,
            "blocks": len(self.block_crcs),
            "header_size": self.size,
            "payload_size": self.payload_size,
        }


def block_size_problem(block_size: int, target_size: int) -> str | None:
    """Why a block size is unusable for ``target_size`` (None when fine)."""
    if block_size < STREAM_MIN_BLOCK or block_size & (block_size - 1):
        return f"block size {block_size}: expected a power of two >= {STREAM_MIN_BLOCK}"
    if FIXED_SIZE + 4 * block_count(target_size, block_size) + 4 > STREAM_HEADER_MAX:
        return (
            f"block size {block_size} makes a {block_count(target_size, block_size)}-entry "
            f"table for {target_size} bytes; the header must stay within {STREAM_HEADER_MAX}"
        )
    return None


def encoding_name(encoding: int) -> str:
    """``deflate``, ``heatshrink``, ``delta``, ``delta_deflate``, ``lzma`` (or ``encoding N``)."""
    try:
        return StreamEncoding(encoding).name.lower()
    except ValueError:
        return f"encoding {encoding}"


def fit_block_size(target_size: int, block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """``block_size``, doubled until the table fits the header limit."""
    while block_size_problem(block_size, target_size) and block_size < (1 << 30):
        block_size *= 2
    return block_size


def make_header(
    target: bytes,
    payload: bytes,
    *,
    encoding: int,
    param: int,
    filter: int = StreamFilter.NONE,
    base: bytes | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> StreamHeader:
    """The header for ``payload`` that decodes to ``target`` (derived fields computed here)."""
    blk = fit_block_size(len(target), block_size)
    crcs = tuple(crc32(target[i : i + blk]) for i in range(0, len(target), blk))
    return StreamHeader(
        encoding=encoding,
        param=param,
        filter=filter,
        target_size=len(target),
        target_sha256=hashlib.sha256(target).digest(),
        base_size=len(base) if base is not None else 0,
        base_sha256=hashlib.sha256(base).digest() if base is not None else bytes(32),
        block_size=blk,
        payload_size=len(payload),
        block_crcs=crcs,
    )


# ----------------------------------------------------------------------------- ARM-Thumb filter


def _is_bl(b: bytes | bytearray, i: int) -> bool:
    return (b[i + 1] & 0xF8) == 0xF0 and (b[i + 3] & 0xF8) == 0xF8


def thumb_filter_partial(data: bytes, *, encode: bool, start: int = 0) -> tuple[bytes, int]:
    """xz's ARM-Thumb BCJ filter: BL offsets made absolute (``encode``) or relative again.

    ``start`` is the file offset of ``data[0]`` (even); positions are file offsets, so equal
    branch targets give equal bytes. Returns the filtered bytes and how many of them are final:
    the scan stops where fewer than 4 bytes remain, so a streaming caller keeps the rest (at
    most 3 bytes) for the next call. The decision at each even offset reads only bytes that the
    filter leaves in place or rewrites with the same pattern bits, so encoding and decoding
    take the same decisions.
    """
    b = bytearray(data)
    i, n = 0, len(b)
    while i + 4 <= n:
        if _is_bl(b, i):
            src = (((b[i + 1] & 7) << 19) | (b[i] << 11) | ((b[i + 3] & 7) << 8) | b[i + 2]) << 1
            pc = start + i + 4
            dest = ((src + pc) if encode else (src - pc)) & 0x7FFFFF
            dest >>= 1
            b[i + 1] = 0xF0 | ((dest >> 19) & 7)
            b[i] = (dest >> 11) & 0xFF
            b[i + 3] = 0xF8 | ((dest >> 8) & 7)
            b[i + 2] = dest & 0xFF
            i += 4
        else:
            i += 2
    return bytes(b), i


def thumb_filter(data: bytes, *, encode: bool, start: int = 0) -> bytes:
    """:func:`thumb_filter_partial` over a whole buffer (the last < 4 bytes are left as is)."""
    return thumb_filter_partial(data, encode=encode, start=start)[0]


# ----------------------------------------------------------------------------- building


def _check_target(new: bytes) -> None:
    if not new:
        raise UsageError("the new module is empty: nothing to encode")


def deflate_raw(data: bytes, window_bits: int, level: int = 9) -> bytes:
    """Raw Deflate (RFC 1951) with a ``2**window_bits`` window."""
    if not 9 <= window_bits <= 15:  # zlib's raw Deflate encoder accepts 9..15
        raise UsageError(f"Deflate window bits {window_bits}: expected 9..15")
    co = zlib.compressobj(level, zlib.DEFLATED, -window_bits, 9)
    return co.compress(data) + co.flush()


def heatshrink_compress(data: bytes, window: int, lookahead: int) -> bytes:
    """heatshrink LZSS with a ``2**window`` window and ``2**lookahead`` matches."""
    from heatshrink2.core import Encoder, Writer  # C extension: only when encoding

    enc = Encoder(Writer(window_sz2=window, lookahead_sz2=lookahead))
    return bytes(enc.fill(data) + enc.finish())


def heatshrink_decompress(data: bytes, window: int, lookahead: int) -> bytes:
    """The inverse of :func:`heatshrink_compress`."""
    from heatshrink2.core import Encoder, Reader  # C extension: only when decoding on the host

    dec = Encoder(Reader(window_sz2=window, lookahead_sz2=lookahead))
    return bytes(dec.fill(data) + dec.finish())


def lzma_filters(param: int) -> list[dict[str, int]]:
    """liblzma's raw LZMA1 filter chain for an LZMA header param."""
    dict_bits, lc, lp, pb = lzma_props(param)
    return [
        {
            "id": lzma.FILTER_LZMA1,
            "preset": 9 | lzma.PRESET_EXTREME,
            "dict_size": 1 << dict_bits,
            "lc": lc,
            "lp": lp,
            "pb": pb,
        }
    ]


def lzma_compress(data: bytes, param: int) -> bytes:
    """Raw LZMA1 of ``data`` with the parameters of ``param`` (and the end marker)."""
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=lzma_filters(param))


def encode_compressed(
    new: bytes,
    *,
    encoding: int = StreamEncoding.DEFLATE,
    window_bits: int = DEFAULT_WINDOW_BITS,
    heatshrink: tuple[int, int] = DEFAULT_HEATSHRINK,
    lzma_params: tuple[int, int, int, int] = DEFAULT_LZMA,
    thumb: bool | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> bytes:
    """A compressed streamed-update file for ``new`` (no base needed).

    Args:
        new: the module file.
        encoding: ``StreamEncoding.DEFLATE``, ``HEATSHRINK`` or ``LZMA``.
        window_bits: the Deflate window.
        heatshrink: heatshrink (window, lookahead) bits.
        lzma_params: LZMA ``(dict_bits, lc, lp, pb)`` (see :data:`DEFAULT_LZMA`).
        thumb: apply the ARM-Thumb BL filter; None tries both and keeps the smaller (it helps
            real Thumb-2 code by 2-4 %, and hurts data that only looks like branches).
        block_size: output block of the CRC table.

    Raises:
        UsageError: empty input, an encoding that is not a compressor, bad parameters.
    """
    _check_target(new)
    if thumb is None:
        with_f = encode_compressed(
            new,
            encoding=encoding,
            window_bits=window_bits,
            heatshrink=heatshrink,
            lzma_params=lzma_params,
            thumb=True,
            block_size=block_size,
        )
        without = encode_compressed(
            new,
            encoding=encoding,
            window_bits=window_bits,
            heatshrink=heatshrink,
            lzma_params=lzma_params,
            thumb=False,
            block_size=block_size,
        )
        return with_f if len(with_f) < len(without) else without
    src = thumb_filter(new, encode=True) if thumb else new
    if encoding == StreamEncoding.DEFLATE:
        payload, param = deflate_raw(src, window_bits), window_bits
    elif encoding == StreamEncoding.HEATSHRINK:
        w, la = heatshrink
        if not (4 <= w <= 15 and 3 <= la < w):
            raise UsageError(f"heatshrink window {w} lookahead {la}: expected 4..15 and 3..w-1")
        payload, param = heatshrink_compress(src, w, la), (w << 4) | la
    elif encoding == StreamEncoding.LZMA:
        try:
            param = lzma_param(*lzma_params)
        except ValueError as e:
            raise UsageError(str(e)) from None
        payload = lzma_compress(src, param)
    else:
        raise UsageError(f"{encoding_name(encoding)} is not a compression encoding")
    flt = StreamFilter.ARM_THUMB if thumb else StreamFilter.NONE
    header = make_header(
        new, payload, encoding=encoding, param=param, filter=flt, block_size=block_size
    )
    return header.to_bytes() + payload


def detools_patch(base: bytes, new: bytes, compression: str = "heatshrink") -> bytes:
    """detools' sequential bsdiff patch from ``base`` to ``new``, in a form the detools C library
    applies (no data format; heatshrink 8/7 as its static configuration, deviceos.stream).

    Raises:
        UsageError: a compression the device cannot apply.
    """
    if compression not in DETOOLS_COMPRESSIONS:
        raise UsageError(
            f"detools compression {compression!r}: the device applies "
            + ", ".join(sorted(DETOOLS_COMPRESSIONS))
        )
    import detools  # C extensions (bsdiff, suffix arrays): only when a patch is made

    out = io.BytesIO()
    detools.create_patch(
        io.BytesIO(base),
        io.BytesIO(new),
        out,
        compression=compression,
        patch_type="sequential",
        algorithm="bsdiff",
        heatshrink_window_sz2=DETOOLS_HEATSHRINK_WINDOW,
        heatshrink_lookahead_sz2=DETOOLS_HEATSHRINK_LOOKAHEAD,
    )
    return out.getvalue()


def encode_delta(
    base: bytes,
    new: bytes,
    *,
    compression: str = "deflate",
    window_bits: int = DEFAULT_WINDOW_BITS,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> bytes:
    """A delta streamed-update file that rebuilds ``new`` from ``base`` (the running app).

    Args:
        base: the module file the device runs.
        new: the module file it must end up with.
        compression: ``deflate`` (default: an uncompressed detools patch, raw-Deflated with a
            ``2**window_bits`` window, encoding 4) or one of detools' own the C library reads
            (``heatshrink`` 8/7, ``crle``, ``none``; encoding 3).
        window_bits: the Deflate window for ``deflate``.
        block_size: output block of the CRC table.

    Raises:
        UsageError: empty input or an unsupported compression.
    """
    _check_target(new)
    if not base:
        raise UsageError("the base module is empty: a delta needs the running app")
    if compression == "deflate":
        payload = deflate_raw(detools_patch(base, new, "none"), window_bits)
        encoding, param = StreamEncoding.DELTA_DEFLATE, window_bits
    elif compression in DETOOLS_COMPRESSIONS:
        payload = detools_patch(base, new, compression)
        encoding, param = StreamEncoding.DELTA, DETOOLS_COMPRESSIONS[compression]
    else:
        raise UsageError(
            f"delta compression {compression!r}: expected one of {', '.join(DELTA_COMPRESSIONS)}"
        )
    header = make_header(
        new, payload, encoding=encoding, param=param, base=base, block_size=block_size
    )
    return header.to_bytes() + payload


# ----------------------------------------------------------------------------- host decode


def split_stream(data: bytes) -> tuple[StreamHeader, bytes]:
    """The header and the payload of a streamed-update file.

    Raises:
        ModuleFormatError: a bad header, or a payload shorter or longer than it says.
    """
    h = StreamHeader.from_bytes(data)
    payload = data[h.size :]
    if len(payload) != h.payload_size:
        raise ModuleFormatError(
            f"payload of {len(payload)} bytes, the header says {h.payload_size}",
            offset=h.size,
            field="payload_size",
        )
    return h, payload


def decode_stream(data: bytes, base: bytes | None = None) -> bytes:
    """Decode a streamed-update file on the host (reference implementations: detools'
    ``apply_patch``, zlib, heatshrink2, liblzma) and check it against its header; a compressed
    payload is decoded to at most one byte past its target (a bomb stops there).

    Raises:
        ModuleFormatError: the file is malformed, needs a base it was not given (or another
            base), or does not decode to its target.
    """
    h, payload = split_stream(data)
    if h.is_delta:
        if base is None:
            raise ModuleFormatError("a delta needs its base module", field="base_sha256")
        if len(base) != h.base_size or hashlib.sha256(base).digest() != h.base_sha256:
            raise ModuleFormatError(
                f"the patch is for base {h.base_sha256.hex()[:16]} ({h.base_size} bytes), "
                f"given {hashlib.sha256(base).hexdigest()[:16]} ({len(base)} bytes)",
                offset=48,
                field="base_sha256",
            )
        import detools  # C extensions: only when a patch is applied on the host

        patch = payload
        if h.encoding == StreamEncoding.DELTA_DEFLATE:
            patch = _inflate(payload, h.param, 4 * h.target_size + (1 << 20))
        out = io.BytesIO()
        try:
            detools.apply_patch(io.BytesIO(base), io.BytesIO(patch), out)
        except Exception as e:  # detools raises its own Error and plain exceptions
            raise ModuleFormatError(f"detools apply_patch failed: {e}", offset=h.size) from None
        raw = out.getvalue()
    elif h.encoding == StreamEncoding.DEFLATE:
        raw = _inflate(payload, h.param, h.target_size + 1)
    elif h.encoding == StreamEncoding.HEATSHRINK:
        raw = heatshrink_decompress(payload, h.param >> 4, h.param & 0xF)
    elif h.encoding == StreamEncoding.LZMA:
        raw = _unlzma(payload, h.param, h.target_size + 1)
    else:
        raise ModuleFormatError(f"unknown {encoding_name(h.encoding)}", offset=5, field="encoding")
    if h.filter == StreamFilter.ARM_THUMB and not h.is_delta:
        raw = thumb_filter(raw, encode=False)
    if len(raw) != h.target_size or hashlib.sha256(raw).digest() != h.target_sha256:
        raise ModuleFormatError(
            f"decodes to {len(raw)} bytes (SHA-256 {hashlib.sha256(raw).hexdigest()[:16]}), "
            f"the header says {h.target_size} ({h.target_sha256.hex()[:16]})",
            offset=8,
            field="target_sha256",
        )
    return raw


def _inflate(payload: bytes, bits: int, limit: int) -> bytes:
    try:
        return zlib.decompressobj(-bits).decompress(payload, limit)
    except (zlib.error, ValueError) as e:
        raise ModuleFormatError(f"inflate failed: {e}", field="payload") from None


def _unlzma(payload: bytes, param: int, limit: int) -> bytes:
    try:
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=lzma_filters(param)).decompress(
            payload, limit
        )
    except lzma.LZMAError as e:
        raise ModuleFormatError(f"LZMA decode failed: {e}", field="payload") from None


def is_stream(data: bytes) -> bool:
    """True when ``data`` starts with the streamed-update magic."""
    return data[:4] == MAGIC


__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_HEATSHRINK",
    "DEFAULT_LZMA",
    "DEFAULT_WINDOW_BITS",
    "DELTA_COMPRESSIONS",
    "DETOOLS_COMPRESSIONS",
    "MAGIC",
    "StreamHeader",
    "decode_stream",
    "detools_patch",
    "encode_compressed",
    "encode_delta",
    "encoding_name",
    "is_stream",
    "lzma_compress",
    "lzma_filters",
    "make_header",
    "split_stream",
    "thumb_filter",
    "thumb_filter_partial",
]
