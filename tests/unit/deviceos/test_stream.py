"""The streamed-OTA facts (deviceos/stream.py): which profile models it and its RAM arithmetic."""

from __future__ import annotations

import pytest

from flashroom.deviceos import GEN2_PLATFORMS, get_platform, get_profile
from flashroom.deviceos.gen2 import SRAM_END, SRAM_START
from flashroom.deviceos.stream import (
    DETOOLS_APPLY_BYTES,
    ELECTRON_EXTENDED_STREAM,
    ENCODING_BIT,
    LZMA_STATE_BYTES,
    STREAM_OUT_BUFFER,
    STREAM_STATE_BYTES,
    UZLIB_STATE_BYTES,
    EncodingMask,
    StreamEncoding,
    decoder_ram,
    largest_decoder_ram,
    lzma_param,
    lzma_props,
)


def test_only_the_extended_electron_models_streamed_ota() -> None:
    for name in GEN2_PLATFORMS:
        for prof in get_platform(name).profiles:
            expected = (name, prof.name) == ("electron", "extended")
            assert (prof.ota_stream is not None) == expected, (name, prof.name)


def test_the_capability_applies_every_encoding() -> None:
    cap = get_profile("electron", "extended").ota_stream
    assert cap is ELECTRON_EXTENDED_STREAM
    assert cap.encodings == (
        EncodingMask.DEFLATE | EncodingMask.HEATSHRINK | EncodingMask.DELTA | EncodingMask.LZMA
    )
    assert ENCODING_BIT[StreamEncoding.LZMA] == EncodingMask.LZMA == 0x08


def test_the_largest_decoder_fits_the_budget_with_room_for_a_reorder_buffer() -> None:
    cap = ELECTRON_EXTENDED_STREAM
    largest = max(
        decoder_ram(StreamEncoding.DELTA_DEFLATE, cap.max_window_bits),
        decoder_ram(StreamEncoding.DEFLATE, cap.max_window_bits),
        decoder_ram(StreamEncoding.HEATSHRINK, cap.max_heatshrink_window << 4),
        decoder_ram(
            StreamEncoding.LZMA, lzma_param(cap.max_lzma_dict_bits, 0, cap.max_lzma_lc_lp, 3)
        ),
    )
    assert largest == largest_decoder_ram(
        cap.max_window_bits,
        cap.max_heatshrink_window,
        cap.max_lzma_dict_bits,
        cap.max_lzma_lc_lp,
    )
    assert largest + STREAM_STATE_BYTES + STREAM_OUT_BUFFER < cap.ram_budget
    assert cap.reorder_bytes(largest) >= 32 * 512  # a 3g round trip of 512-byte chunks
    # a quarter of the Electron's SRAM at most (spec 1.7: 128 KB)
    assert cap.ram_budget <= (SRAM_END - SRAM_START) // 4


def test_decoder_ram_counts_window_and_state() -> None:
    assert decoder_ram(StreamEncoding.DEFLATE, 13) == UZLIB_STATE_BYTES + 8192
    assert decoder_ram(StreamEncoding.DELTA, 4) == DETOOLS_APPLY_BYTES
    assert decoder_ram(StreamEncoding.DELTA_DEFLATE, 13) == (
        UZLIB_STATE_BYTES + 8192 + DETOOLS_APPLY_BYTES
    )
    assert decoder_ram(StreamEncoding.HEATSHRINK, (11 << 4) | 4) == 14 + 2048 + 256
    # the window over the budget is what the device refuses
    assert decoder_ram(StreamEncoding.DEFLATE, 15) > ELECTRON_EXTENDED_STREAM.reorder_bytes(0)


def test_lzma_decoder_ram_is_lzmadec_probabilities_dictionary_and_state() -> None:
    # LzmaDec: (NUM_BASE_PROBS 1984 + 0x300 << (lc + lp)) UInt16 probabilities + dicSize
    assert decoder_ram(StreamEncoding.LZMA, lzma_param(12, 0, 1, 1)) == (
        (1984 + 0x600) * 2 + 4096 + LZMA_STATE_BYTES
    )
    assert decoder_ram(StreamEncoding.LZMA, lzma_param(14, 3, 0, 2)) == (
        (1984 + (0x300 << 3)) * 2 + 16384 + LZMA_STATE_BYTES
    )
    # the default LZMA decoder is no larger than the Deflated delta's: the reorder buffer and
    # the server's receive window are what they were without LZMA
    cap = ELECTRON_EXTENDED_STREAM
    assert largest_decoder_ram(
        cap.max_window_bits, cap.max_heatshrink_window, cap.max_lzma_dict_bits, cap.max_lzma_lc_lp
    ) == largest_decoder_ram(cap.max_window_bits, cap.max_heatshrink_window)


def test_lzma_param_packs_every_byte_and_refuses_out_of_range_values() -> None:
    for param in range(256):
        assert lzma_param(*lzma_props(param)) == param
    assert lzma_props(lzma_param(12, 0, 1, 1)) == (12, 0, 1, 1)
    for bad in ((11, 0, 0, 0), (16, 0, 0, 0), (12, 4, 0, 0), (12, 0, 4, 0), (12, 0, 0, 4)):
        with pytest.raises(ValueError, match="LZMA dictionary"):
            lzma_param(*bad)
