"""Streamed OTA (delta and compressed) on the extended Electron: flashroom's modelled extension.

**Modelled, not shipped.** Device OS 2.3.1 has no compressed or delta OTA on Gen2 (spec 7.4: only
Gen3 bootloaders inflate). flashroom models a system-firmware change on the ``extended`` profile
(docs/delta-ota.md): the device decodes the update *while the chunks arrive* and writes the
rebuilt module into the OTA scratch (0x080C0000), reading a delta's base from the user part
(0x08080000). Everything after that is the path that exists: ``HAL_FLASH_End`` validates the
rebuilt module (CRC-32, range, platform, dependencies), records the DCT slot, and the unchanged
bootloader copies it (spec 4.2-4.5). The real extended firmware (spec 9) does not carry this
change yet; :attr:`flashroom.deviceos.model.Profile.ota_stream` says which profile models it.

This module holds the facts of that extension, as Device OS facts live in this package:

* the negotiation: a flag in the Hello's reserved byte and an extension block after the device
  ID (flashroom's extension of spec 6.5; see :data:`HELLO_RESERVED_STREAMED_OTA`);
* the transfer: a distinct ``FileTransfer::Store`` value in UpdateBegin
  (:data:`STORE_STREAMED_FIRMWARE`), so that every system entry point knows the file is encoded;
* the return code of ``Spark_Save_Firmware_Chunk`` for a chunk the decoder cannot take yet
  (:data:`SAVE_CHUNK_DEFERRED`): the extended ``ChunkedTransfer`` leaves its bitmap bit clear, so
  the chunk is re-requested with ChunkMissed (spec 6.4 #5);
* the RAM the decoder may borrow (:class:`StreamCapability`, :func:`decoder_ram`), with the
  sizes of the C structures it would use, measured with arm-none-eabi-gcc 12.2 for Cortex-M3
  (LzmaDec's: a transcription of its struct, plus an estimated stack; see ``LZMA_STATE_BYTES``).

Only plain data and the standard library here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Protocol, runtime_checkable

from flashroom.deviceos import gen2

# ----------------------------------------------------------------------------- negotiation
#: Hello payload byte 4 (datagram byte 11) is "reserved flags", always 0 in v2.3.1
#: (communication/src/messages.cpp:137). flashroom's streamed-OTA device sets bit 0 there and
#: appends an extension block after the device ID (``ota/stream.py`` has the wire format).
#: Spec-silent choice: not a bit of the flags byte (datagram byte 12): those are Particle's, and
#: 0x40 there already means "compressed OTA" to the Particle cloud, i.e. Gen3 modules that
#: *the bootloader* inflates (spec 6.5, 7.4), which a Gen2 bootloader cannot apply.
HELLO_RESERVED_STREAMED_OTA = 0x01
#: The extension block's version.
HELLO_EXT_VERSION = 1

# ----------------------------------------------------------------------------- the transfer
#: ``FileTransfer::Store`` of a streamed (encoded) firmware file. v2.3.1 knows 0, 1 and 128
#: (file_transfer.h:27-33); a stock system treats any other store as "not FIRMWARE": it computes
#: no OTA address, its erase fails the range check, ``Spark_Save_Firmware_Chunk`` returns -1 and
#: ``Spark_Finish_Firmware_Update`` returns SYSTEM_ERROR_UNKNOWN without a reset
#: (system_update.cpp:291-447), so a stock device writes nothing.
STORE_STREAMED_FIRMWARE = 0x40
#: ``Spark_Save_Firmware_Chunk`` result for a chunk the decoder could not take (it arrived ahead
#: of the stream and the reorder buffer is full). Positive so that the v2.3.1 path, which ignores
#: the result, is unaffected.
SAVE_CHUNK_DEFERRED = 3

# system_error_t values the streamed path returns (services/inc/system_error.h:27-66).
SYSTEM_ERROR_TOO_LARGE = -190
SYSTEM_ERROR_NOT_ENOUGH_DATA = -191
SYSTEM_ERROR_INVALID_STATE = -210
SYSTEM_ERROR_NO_MEMORY = -260
SYSTEM_ERROR_INVALID_ARGUMENT = -270
SYSTEM_ERROR_BAD_DATA = -280
SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE = gen2.SYSTEM_ERROR_OTA_UNSUPPORTED_MODULE  # -1310
SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED = gen2.SYSTEM_ERROR_OTA_INTEGRITY_CHECK_FAILED  # -1330
SYSTEM_ERROR_OTA_INVALID_FORMAT = -1370


class StreamEncoding(IntEnum):
    """How the payload after the stream header is encoded (``particle/stream.py`` has the
    header)."""

    DEFLATE = 1  # raw Deflate (RFC 1951), window 2^8..2^15; uzlib on the device
    HEATSHRINK = 2  # heatshrink LZSS (the compressor detools uses), window 2^4..2^12
    DELTA = 3  # detools sequential patch (bsdiff) against the running app; the detools C library
    #: a detools sequential patch without compression, raw-Deflated as a whole: uzlib feeds the
    #: detools C library (Deflate codes bsdiff's long zero runs far better than heatshrink 8/7)
    DELTA_DEFLATE = 4
    #: raw LZMA1 (no .lzma header: the parameters are the header's param, :func:`lzma_param`),
    #: a small dictionary, with the end marker; the LZMA SDK's LzmaDec on the device
    LZMA = 5


class EncodingMask(IntFlag):
    """The encodings a device can apply, as the Hello extension reports them."""

    NONE = 0
    DEFLATE = 0x01
    HEATSHRINK = 0x02
    DELTA = 0x04
    LZMA = 0x08


#: The ``EncodingMask`` bits a device needs for each encoding.
ENCODING_BIT = {
    StreamEncoding.DEFLATE: EncodingMask.DEFLATE,
    StreamEncoding.HEATSHRINK: EncodingMask.HEATSHRINK,
    StreamEncoding.DELTA: EncodingMask.DELTA,
    StreamEncoding.DELTA_DEFLATE: EncodingMask.DELTA | EncodingMask.DEFLATE,
    StreamEncoding.LZMA: EncodingMask.LZMA,
}
#: Every bit this model knows (a Hello's other bits are ignored).
ENCODING_MASK_KNOWN = (
    EncodingMask.DEFLATE | EncodingMask.HEATSHRINK | EncodingMask.DELTA | EncodingMask.LZMA
)
#: The encodings that patch the running app.
DELTA_ENCODINGS = (StreamEncoding.DELTA, StreamEncoding.DELTA_DEFLATE)


class StreamFilter(IntEnum):
    """A reversible filter between the decoder and the flash."""

    NONE = 0
    #: BL (Thumb-2 32-bit branch-with-link) offsets made absolute before compression, relative
    #: again after decoding, as xz's ARM-Thumb BCJ filter does; stateless apart from 3 bytes.
    ARM_THUMB = 1


#: detools compression numbers (detools/common.py: COMPRESSION_*), and the ones the detools C
#: library can apply with LZMA disabled (c/detools.h: DETOOLS_CONFIG_COMPRESSION_*).
DETOOLS_COMPRESSION_NONE = 0
DETOOLS_COMPRESSION_CRLE = 2
DETOOLS_COMPRESSION_HEATSHRINK = 4
DETOOLS_DEVICE_COMPRESSIONS = (
    DETOOLS_COMPRESSION_NONE,
    DETOOLS_COMPRESSION_CRLE,
    DETOOLS_COMPRESSION_HEATSHRINK,
)
#: The detools C library's static heatshrink configuration (c/heatshrink/heatshrink_config.h:
#: window 8, lookahead 7, 256-byte input buffer); a patch with other parameters fails with
#: DETOOLS_HEATSHRINK_HEADER (c/detools.c:288-291). detools' Python side defaults to the same.
DETOOLS_HEATSHRINK_WINDOW = 8
DETOOLS_HEATSHRINK_LOOKAHEAD = 7

# ----------------------------------------------------------------------------- RAM (measured)
# sizeof() on arm-none-eabi-gcc 12.2.1 -mcpu=cortex-m3 -Os (docs/delta-ota.md "RAM budget"):
#: ``struct detools_apply_patch_t`` with LZMA and file I/O disabled (eerimoq/detools@53d1f47
#: c/detools.h), including the static heatshrink 8/7 decoder: 640 bytes; plus the 2 x 128-byte
#: ``to``/``from`` arrays of ``process_data`` (c/detools.c:1215-1222), on the stack.
DETOOLS_APPLY_BYTES = 640 + 256
#: ``struct uzlib_uncomp`` (pfalcon/uzlib@6d60d65 src/uzlib.h): 1,284 bytes; plus the code-length
#: tree ``tinf_decode_trees`` builds on the stack (a TINF_TREE and 320 lengths).
UZLIB_STATE_BYTES = 1284 + 608 + 320
#: ``heatshrink_decoder`` header fields before its buffers (c/heatshrink/heatshrink_decoder.h):
#: 526 bytes with the static 8/7 buffers of 256 + 256 bytes, i.e. 14 bytes of fields.
HEATSHRINK_FIELDS_BYTES = 14
#: heatshrink's input buffer in the detools configuration.
HEATSHRINK_INPUT_BUFFER = 256
#: The stream state: the header and block-CRC table being assembled (at most
#: :data:`STREAM_HEADER_MAX` bytes), a SHA-256 context (mbedtls_sha256_context, 108 bytes), the
#: CRC and counters, the filter's 3 pending bytes.
STREAM_STATE_BYTES = 1024
#: Decoded bytes staged before each ``FLASH_Update`` (128 words: as many writes as a raw
#: OTA of 512-byte chunks).
STREAM_OUT_BUFFER = 512
#: The largest stream header with its block table (64 fixed bytes, 4 per block, the CRC).
STREAM_HEADER_MAX = 512
#: The smallest output block the header may declare (it bounds the table).
STREAM_MIN_BLOCK = 4096

# ----------------------------------------------------------------------------- LZMA (LzmaDec)
# The LZMA SDK's LzmaDec (C/LzmaDec.h, LzmaDec.c; public domain, releases 19.00-23.01), the
# small C decoder detools' C library can be built with. Figures from its source, not from a
# build of it for the device:
#: ``NUM_BASE_PROBS`` (LzmaDec.c: every probability but the literal coder's; 1846 in 9.20).
LZMA_NUM_BASE_PROBS = 1984
#: ``LZMA_LIT_SIZE``: probabilities per literal context (0x300 << (lc + lp) of them).
LZMA_LIT_SIZE = 0x300
#: ``CLzmaProb``: UInt16 (without ``Z7_LZMA_PROB32``).
LZMA_PROB_BYTES = 2
#: ``sizeof(CLzmaDec)`` (its 20-byte ``tempBuf`` included): 100 bytes, measured with
#: arm-none-eabi-gcc 12.2.1 -mcpu=cortex-m3 -Os on a transcription of the struct (not a build of
#: LzmaDec.c); plus an **estimate**, not measured, of 64 bytes of stack for
#: ``LzmaDec_DecodeToDic`` (its locals; the range coder lives in registers and the struct).
LZMA_STATE_BYTES = 100 + 64
#: The dictionary range of the header's param: LzmaDec rounds anything below 4 KB up to
#: ``LZMA_DIC_MIN`` (1 << 12); the param's two bits go up to 2^15.
LZMA_DICT_MIN_BITS = 12
LZMA_DICT_MAX_BITS = 15


def lzma_param(dict_bits: int, lc: int, lp: int, pb: int) -> int:
    """The stream header's param of an LZMA file:
    ``(dict_bits - 12) << 6 | pb << 4 | lp << 2 | lc`` (dictionary 2^12..2^15, lc, lp, pb 0..3:
    every byte is valid).

    Raises:
        ValueError: a value outside those ranges.
    """
    if not LZMA_DICT_MIN_BITS <= dict_bits <= LZMA_DICT_MAX_BITS or not all(
        0 <= v <= 3 for v in (lc, lp, pb)
    ):
        raise ValueError(
            f"LZMA dictionary 2^{dict_bits}, lc {lc}, lp {lp}, pb {pb}: expected 2^12..2^15 "
            "and lc, lp, pb 0..3"
        )
    return (dict_bits - LZMA_DICT_MIN_BITS) << 6 | pb << 4 | lp << 2 | lc


def lzma_props(param: int) -> tuple[int, int, int, int]:
    """``(dict_bits, lc, lp, pb)`` of an LZMA header param (the inverse of :func:`lzma_param`)."""
    return LZMA_DICT_MIN_BITS + ((param >> 6) & 3), param & 3, (param >> 2) & 3, (param >> 4) & 3


@dataclass(frozen=True)
class StreamCapability:
    """What a profile's system firmware can apply while receiving (the modelled change).

    Attributes:
        encodings: the encodings it applies.
        ram_budget: bytes of heap the system borrows for the whole transfer (decoder, reorder
            buffer, stream state). Spec-silent assumption, docs/delta-ota.md: the Electron has
            128 KB of SRAM, of which 111 KB are user static RAM plus the heap shared with the
            system (spec 1.7); flashroom assumes an app that leaves 32 KB of heap free during
            an update.
        max_window_bits: the largest Deflate window it accepts (the window lives in RAM).
        max_heatshrink_window: the largest heatshrink window (2^bits bytes of RAM).
        max_lzma_dict_bits: the largest LZMA dictionary, bits (0: no LZMA).
        max_lzma_lc_lp: the largest ``lc + lp`` of an LZMA stream (its literal probabilities,
            ``0x300 << (lc + lp)`` 16-bit counters, are the other big part of LzmaDec's RAM).
        source: why these figures.
    """

    encodings: EncodingMask
    ram_budget: int
    max_window_bits: int
    max_heatshrink_window: int
    max_lzma_dict_bits: int = 0
    max_lzma_lc_lp: int = 0
    source: str = ""

    def reorder_bytes(self, decoder_bytes: int) -> int:
        """What the budget leaves for out-of-order chunks once the decoder is allocated."""
        return max(0, self.ram_budget - decoder_bytes - STREAM_STATE_BYTES - STREAM_OUT_BUFFER)


def decoder_ram(encoding: int, param: int) -> int:
    """Heap bytes of the decoder for ``encoding`` with its header ``param`` (window bits for
    Deflate and a Deflated delta, ``window << 4 | lookahead`` for heatshrink, the detools
    compression for a delta, :func:`lzma_param` for LZMA).

    Raises:
        ValueError: an unknown encoding.
    """
    if encoding == StreamEncoding.DEFLATE:
        return UZLIB_STATE_BYTES + (1 << param)  # the dictionary ring holds the whole window
    if encoding == StreamEncoding.HEATSHRINK:
        return HEATSHRINK_FIELDS_BYTES + (1 << (param >> 4)) + HEATSHRINK_INPUT_BUFFER
    if encoding == StreamEncoding.DELTA:
        return DETOOLS_APPLY_BYTES
    if encoding == StreamEncoding.DELTA_DEFLATE:
        return UZLIB_STATE_BYTES + (1 << param) + DETOOLS_APPLY_BYTES
    if encoding == StreamEncoding.LZMA:
        # LzmaDec_Allocate: the probabilities (LzmaProps_GetNumProbs) and a dictionary of
        # exactly dicSize bytes (it rounds only sizes >= 4 MB), besides the CLzmaDec struct
        dict_bits, lc, lp, _pb = lzma_props(param)
        probs = (LZMA_NUM_BASE_PROBS + (LZMA_LIT_SIZE << (lc + lp))) * LZMA_PROB_BYTES
        return LZMA_STATE_BYTES + probs + (1 << dict_bits)
    raise ValueError(f"unknown stream encoding {encoding}")


def largest_decoder_ram(
    window_bits: int, heatshrink_window: int, lzma_dict_bits: int = 0, lzma_lc_lp: int = 0
) -> int:
    """The largest decoder a device with these limits may have to allocate (what it reserves
    before a header is in, and what the server's receive window assumes)."""
    largest = max(
        decoder_ram(StreamEncoding.DELTA_DEFLATE, window_bits),
        decoder_ram(StreamEncoding.HEATSHRINK, heatshrink_window << 4),
    )
    if lzma_dict_bits >= LZMA_DICT_MIN_BITS:
        dict_bits = min(lzma_dict_bits, LZMA_DICT_MAX_BITS)
        lc_lp = min(lzma_lc_lp, 6)
        lp = min(lc_lp, 3)
        largest = max(
            largest,
            decoder_ram(StreamEncoding.LZMA, lzma_param(dict_bits, lc_lp - lp, lp, 0)),
        )
    return largest


@dataclass(frozen=True)
class StreamReport:
    """What a streamed-OTA device says in its Hello: what it can apply and what it runs.

    Attributes:
        encodings: the encodings it applies.
        max_output: the largest module it can rebuild (``HAL_OTA_FlashLength()``).
        ram_budget: :attr:`StreamCapability.ram_budget`.
        max_window_bits: :attr:`StreamCapability.max_window_bits`.
        max_heatshrink_window: :attr:`StreamCapability.max_heatshrink_window`.
        base_size: the running app's module file length (0: no valid app to patch).
        base_sha256: SHA-256 the device computed over those bytes of the user part.
        max_lzma_dict_bits: :attr:`StreamCapability.max_lzma_dict_bits`.
        max_lzma_lc_lp: :attr:`StreamCapability.max_lzma_lc_lp`.
    """

    encodings: EncodingMask
    max_output: int
    ram_budget: int
    max_window_bits: int
    max_heatshrink_window: int
    base_size: int = 0
    base_sha256: bytes = b""
    max_lzma_dict_bits: int = 0
    max_lzma_lc_lp: int = 0


@runtime_checkable
class StreamReporting(Protocol):
    """A system OTA target that can report a :class:`StreamReport` for its Hello."""

    def stream_report(self) -> StreamReport | None:
        """The report, or None when it applies raw bytes only."""
        ...


#: The extended Electron's modelled capability (docs/delta-ota.md).
ELECTRON_EXTENDED_STREAM = StreamCapability(
    encodings=ENCODING_MASK_KNOWN,
    ram_budget=32 * 1024,
    max_window_bits=13,
    max_heatshrink_window=12,
    max_lzma_dict_bits=12,
    max_lzma_lc_lp=1,
    source="modelled (docs/delta-ota.md): 32 KB of the 111 KB user/heap SRAM "
    "(docs/device-os.md#maps); "
    "Deflate window 2^13 = 8 KB (uzlib dictionary ring), which leaves a ~38-chunk reorder "
    "buffer (the server's receive window); LZMA (LzmaDec) with a 4 KB dictionary and "
    "lc + lp <= 1, no larger than the Deflated-delta decoder, so the buffer is unchanged; "
    "the detools C library for deltas",
)


__all__ = [
    "DELTA_ENCODINGS",
    "DETOOLS_DEVICE_COMPRESSIONS",
    "ELECTRON_EXTENDED_STREAM",
    "ENCODING_BIT",
    "ENCODING_MASK_KNOWN",
    "HELLO_EXT_VERSION",
    "HELLO_RESERVED_STREAMED_OTA",
    "SAVE_CHUNK_DEFERRED",
    "STORE_STREAMED_FIRMWARE",
    "EncodingMask",
    "StreamCapability",
    "StreamEncoding",
    "StreamFilter",
    "StreamReport",
    "StreamReporting",
    "decoder_ram",
    "largest_decoder_ram",
    "lzma_param",
    "lzma_props",
]
