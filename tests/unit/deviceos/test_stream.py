"""The streamed-OTA facts (deviceos/stream.py): which profile models it and its RAM arithmetic."""

from __future__ import annotations

from flashroom.deviceos import GEN2_PLATFORMS, get_platform, get_profile
from flashroom.deviceos.gen2 import SRAM_END, SRAM_START
from flashroom.deviceos.stream import (
    DETOOLS_APPLY_BYTES,
    ELECTRON_EXTENDED_STREAM,
    STREAM_OUT_BUFFER,
    STREAM_STATE_BYTES,
    UZLIB_STATE_BYTES,
    EncodingMask,
    StreamEncoding,
    decoder_ram,
)


def test_only_the_extended_electron_models_streamed_ota() -> None:
    for name in GEN2_PLATFORMS:
        for prof in get_platform(name).profiles:
            expected = (name, prof.name) == ("electron", "extended")
            assert (prof.ota_stream is not None) == expected, (name, prof.name)


def test_the_capability_applies_all_three_kinds() -> None:
    cap = get_profile("electron", "extended").ota_stream
    assert cap is ELECTRON_EXTENDED_STREAM
    assert cap.encodings == EncodingMask.DEFLATE | EncodingMask.HEATSHRINK | EncodingMask.DELTA


def test_the_largest_decoder_fits_the_budget_with_room_for_a_reorder_buffer() -> None:
    cap = ELECTRON_EXTENDED_STREAM
    largest = max(
        decoder_ram(StreamEncoding.DELTA_DEFLATE, cap.max_window_bits),
        decoder_ram(StreamEncoding.DEFLATE, cap.max_window_bits),
        decoder_ram(StreamEncoding.HEATSHRINK, cap.max_heatshrink_window << 4),
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
