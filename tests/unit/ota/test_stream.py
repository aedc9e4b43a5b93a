"""Negotiating a streamed update (ota/stream.py) and carrying it (server end, device end).

Simulated link time only; the device is the emulated extended Electron.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

import pytest

from flashroom.deviceos.stream import (
    ELECTRON_EXTENDED_STREAM,
    HELLO_RESERVED_STREAMED_OTA,
    STORE_STREAMED_FIRMWARE,
    EncodingMask,
    StreamEncoding,
    StreamReport,
    lzma_props,
)
from flashroom.emu.device import Device
from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.link import PRESETS
from flashroom.ota.messages import (
    Chunk,
    ChunkMissed,
    CoapMessage,
    CoapType,
    Hello,
    UpdateBegin,
    UpdateDone,
)
from flashroom.ota.server_end import ServerConfig, ServerSession
from flashroom.ota.stream import (
    OtaOffer,
    diff_modules,
    encode_hello_ext,
    hello_report,
    parse_hello_ext,
    receive_window,
    stream_hello,
)
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.evolve import small_change
from flashroom.particle.stream import StreamHeader, decode_stream
from flashroom.scenarios.deliver import update_in_process

CAP = ELECTRON_EXTENDED_STREAM


@functools.lru_cache(maxsize=1)
def _pair() -> tuple[bytes, bytes]:
    old = synthetic_user_app(100 * 1024, version=5, seed=31)
    return old, small_change(old, seed=9)


def _report(base: bytes | None = None, **over: Any) -> StreamReport:
    rep = StreamReport(
        CAP.encodings,
        0x40000,
        CAP.ram_budget,
        CAP.max_window_bits,
        CAP.max_heatshrink_window,
        len(base) if base else 0,
        hashlib.sha256(base).digest() if base else b"",
        CAP.max_lzma_dict_bits,
        CAP.max_lzma_lc_lp,
    )
    return dataclasses.replace(rep, **over)


@functools.lru_cache(maxsize=1)
def _offer() -> OtaOffer:
    old, new = _pair()
    return OtaOffer(new, [old])


def _extended() -> Device:
    dev = Device.new(profile="extended")
    dev.install(_pair()[0])
    return dev


# ----------------------------------------------------------------------------- Hello extension
def test_hello_extension_round_trips_through_the_datagram() -> None:
    old, _new = _pair()
    rep = _report(old)
    hello = stream_hello(10, b"\x07" * 12, rep)
    back = Hello.from_coap(CoapMessage.decode(hello.to_coap(5).encode()))
    assert back.device_id == b"\x07" * 12 and back.reserved == HELLO_RESERVED_STREAMED_OTA
    assert hello_report(back) == rep
    assert parse_hello_ext(encode_hello_ext(_report())) == _report()


def test_a_stock_hello_is_byte_for_byte_v2_3_1_and_reports_nothing() -> None:
    plain = stream_hello(10, b"\x01" * 12, None)
    assert plain == Hello(10, b"\x01" * 12)
    raw = plain.to_coap(1).encode()
    assert raw[11] == 0 and len(raw) == 17 + 12  # reserved byte 0, nothing after the device ID
    assert hello_report(plain) is None


@pytest.mark.parametrize("cut", [1, 5, 14])
def test_a_malformed_extension_counts_as_none(cut: int) -> None:
    ext = encode_hello_ext(_report(_pair()[0]))
    hello = Hello(10, bytes(12), reserved=HELLO_RESERVED_STREAMED_OTA, ext=ext[:cut])
    assert hello_report(hello) is None
    no_flag = Hello(10, bytes(12), ext=ext)  # the block without the flag: ignored
    assert hello_report(no_flag) is None


# ----------------------------------------------------------------------------- the pick
def _hello(rep: StreamReport | None) -> Hello:
    return stream_hello(10, bytes(12), rep)


def test_a_device_running_a_base_gets_the_delta() -> None:
    old, new = _pair()
    c = _offer().choose(_hello(_report(old)))
    assert c.encoding == "delta_deflate" and c.store == STORE_STREAMED_FIRMWARE
    assert c.base_sha256 == hashlib.sha256(old).hexdigest()
    assert decode_stream(c.payload, old) == new
    assert c.ratio < 0.03


def test_a_device_running_an_unknown_app_gets_the_compressed_file() -> None:
    other = synthetic_user_app(100 * 1024, version=3, seed=77)
    c = _offer().choose(_hello(_report(other)))
    assert c.encoding in ("deflate", "heatshrink", "lzma") and c.store == STORE_STREAMED_FIRMWARE
    assert "no base of this offer" in c.reason
    assert decode_stream(c.payload) == _pair()[1]


def test_a_stock_device_gets_raw_bytes() -> None:
    c = _offer().choose(_hello(None))
    assert (c.encoding, c.store, c.payload) == ("raw", 0, _pair()[1])


def test_a_device_whose_ram_cannot_hold_a_decoder_gets_raw_bytes() -> None:
    c = _offer().choose(_hello(_report(_pair()[0], ram_budget=2048)))
    assert c.encoding == "raw"
    c = _offer().choose(_hello(_report(_pair()[0], encodings=EncodingMask.HEATSHRINK)))
    assert c.encoding == "heatshrink"  # no delta, no Deflate: the one compressor it has


def test_a_module_larger_than_the_device_can_rebuild_goes_raw() -> None:
    c = _offer().choose(_hello(_report(_pair()[0], max_output=64 * 1024)))
    assert c.encoding == "raw" and "larger than the device can rebuild" in c.reason


def test_a_server_that_allows_only_raw_sends_raw() -> None:
    old, new = _pair()
    offer = OtaOffer(new, [old], allow=frozenset())
    assert offer.choose(_hello(_report(old))).encoding == "raw"


def test_the_receive_window_is_what_the_budget_leaves_past_the_largest_decoder() -> None:
    w = receive_window(_report(), 512)
    assert 30 <= w <= 64
    assert receive_window(_report(ram_budget=1024), 512) == 1


# ----------------------------------------------------------------------------- on the wire
def test_the_session_picks_at_hello_and_sends_the_store_in_update_begin() -> None:
    old, new = _pair()
    sess = ServerSession(new, ServerConfig(), offer=_offer())
    hello = _hello(_report(old)).to_coap(3).encode()
    out = [CoapMessage.decode(d) for d in sess.receive(hello, 0.0)]
    begin = UpdateBegin.from_coap(next(m for m in out if m.uri_path == "u"))
    assert sess.choice is not None and sess.choice.encoding == "delta_deflate"
    assert begin.store == STORE_STREAMED_FIRMWARE
    assert begin.file_length == len(sess.choice.payload)
    assert sess.window == receive_window(_report(old), 512)


@pytest.mark.parametrize("link", ["3g", "lossy"])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_delta_over_the_link_rebuilds_and_runs_the_new_app(link: str, seed: int) -> None:
    _old, new = _pair()
    dev = _extended()
    res = update_in_process(dev, new, link=PRESETS[link], seed=seed, offer=_offer())
    assert res.ok, res.error
    j = res.to_json()
    assert j["encoding"] == "delta_deflate"
    assert j["received_bytes"] < 0.03 * len(new) and j["written_bytes"] == len(new)
    assert dev.user_part_bytes() == new


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_compressed_file_over_a_lossy_link_needs_no_chunk_twice_past_the_window(
    seed: int,
) -> None:
    _old, new = _pair()
    dev = _extended()
    offer = OtaOffer(new, [], allow=frozenset({"compressed"}))
    res = update_in_process(dev, new, link=PRESETS["lossy"], seed=seed, offer=offer)
    assert res.ok, res.error
    stats = dev.last_stream_stats
    assert stats is not None and stats.deferred == 0  # the server kept to the window
    assert stats.peak_ram <= stats.ram_budget
    assert res.report.written_bytes == len(new)


def test_deferred_chunks_are_left_clear_and_asked_for_again() -> None:
    # A hostile (windowless) server: chunk 0 lost, everything else sent. The device defers what
    # its reorder buffer cannot hold; those bitmap bits stay clear, so ChunkMissed lists them.
    _old, new = _pair()
    dev = _extended()
    data = (
        OtaOffer(new, [], allow=frozenset({"compressed"}))
        .choose(_hello(dev.stream_report()))
        .payload
    )
    end = DeviceEnd(dev, DeviceConfig())
    end.start(0.0)
    n = -(-len(data) // 512)
    mid = 100

    def send(msg: CoapMessage, now: float) -> list[CoapMessage]:
        return [CoapMessage.decode(d) for d in end.receive(msg.encode(), now)]

    def chunk(i: int) -> CoapMessage:
        nonlocal mid
        mid += 1
        c = Chunk.of(data[i * 512 : (i + 1) * 512], i)
        return c.to_coap(mid, b"\x02", CoapType.NON)

    send(UpdateBegin(1, 512, len(data), STORE_STREAMED_FIRMWARE).to_coap(1, b"\x01"), 0.1)
    for i in range(1, n):
        send(chunk(i), 0.2)
    assert end.deferred_chunks > 0
    missing = end.missing()
    assert missing[0] == 0 and len(missing) == 1 + end.deferred_chunks
    for _round in range(40):
        replies = send(UpdateDone().to_coap(mid + 1000 + _round, b"\x03"), 1.0 + _round)
        if end.status == DeviceStatus.APPLIED:
            break
        asked = next(m for m in replies if m.uri_path == "c")
        for i in ChunkMissed.from_coap(asked).indices:
            send(chunk(i), 1.5 + _round)
    assert end.status == DeviceStatus.APPLIED
    assert dev.reset().running is not None and dev.user_part_bytes() == new


def test_a_stock_device_served_by_an_offer_gets_the_raw_module() -> None:
    _old, new = _pair()
    dev = Device.new(profile="stock")
    small = synthetic_user_app(64 * 1024, version=8, seed=3)
    res = update_in_process(dev, small, offer=OtaOffer(small, [new]))
    assert res.ok and res.report.encoding == "raw"
    assert res.report.written_bytes == res.report.payload_bytes == len(small)


def test_a_device_that_lies_about_its_base_is_refused_by_its_own_check() -> None:
    old, new = _pair()
    other = synthetic_user_app(len(old), version=4, seed=5)
    dev = _extended()
    cfg = DeviceConfig(claim_base_sha256=hashlib.sha256(other).digest())
    res = update_in_process(dev, new, device_config=cfg, offer=OtaOffer(new, [other]))
    assert res.result == "aborted" and res.error_code == -1340
    assert res.report.encoding == "delta_deflate"
    assert dev.user_part_bytes() == old


def test_a_device_with_the_change_disabled_says_stock_hello_and_gets_raw() -> None:
    _old, new = _pair()
    dev = _extended()
    dev.ota_stream_enabled = False
    res = update_in_process(dev, new, offer=_offer())
    assert res.ok and res.report.encoding == "raw"
    cfg = DeviceConfig(announce_stream=False)
    res = update_in_process(_extended(), new, device_config=cfg, offer=_offer())
    assert res.ok and res.report.encoding == "raw"


def test_diff_report_measures_the_alternatives() -> None:
    old, new = _pair()
    rep = diff_modules(old, new)
    j = rep.to_json()
    assert j["patch"]["size"] == len(rep.patch) and j["patch"]["ratio"] < 0.03
    assert j["compressed"]["deflate"]["ratio"] < 1.0
    assert j["compressed"]["lzma"]["ratio"] < j["compressed"]["deflate"]["ratio"]
    assert set(j["detools"]) == {"lzma", "heatshrink"}
    assert decode_stream(rep.patch, old) == new


def test_a_compressed_file_that_saves_too_little_is_not_sent() -> None:
    # incompressible bytes: Deflate saves < 5 %, less than a streamed transfer costs on the wire
    import random

    from flashroom.deviceos.stream import StreamEncoding
    from flashroom.particle.build import synthetic_module
    from flashroom.particle.module_info import ModuleFunction

    # random bytes with a 2 KB run of zeros: Deflate saves about 3 %
    noise = random.Random(5).randbytes(62 * 1024) + bytes(2 * 1024)
    app = synthetic_module(
        len(noise) + 1024,
        platform_id=10,
        function=ModuleFunction.USER_PART,
        index=1,
        version=6,
        start_address=0x08080000,
        seed=5,
    )
    app = app[:0x200] + noise[: len(app) - 0x200 - 40] + app[len(app) - 40 :]
    offer = OtaOffer(app, [])
    other = synthetic_user_app(100 * 1024, version=3, seed=77)
    c = offer.choose(_hello(_report(other)))
    deflated = offer.compressed(StreamEncoding.DEFLATE, 13)
    assert 0.9 < len(deflated) / len(app) < 0.99  # smaller, but by less than the margin
    assert c.encoding == "raw" and "no compressed form fits the device or is smaller" in c.reason


# ----------------------------------------------------------------------------- LZMA
def test_the_lzma_limits_ride_at_the_end_of_the_block_and_an_old_parser_ignores_them() -> None:
    old, _new = _pair()
    for base in (old, None):
        rep = _report(base)
        ext = encode_hello_ext(rep)
        assert ext[-2:] == bytes([CAP.max_lzma_dict_bits, CAP.max_lzma_lc_lp])
        assert parse_hello_ext(ext) == rep
        # what a version-1 parser without LZMA reads: the same fields, the LZMA bit masked off
        body = ext[2:]
        assert body[1] & 0x07 == int(rep.encodings) & 0x07 and body[1] & 0x08
        assert len(ext) == 2 + 16 + (32 if base else 0) + 2
    # the LZMA bit without its two bytes: read as a device without LZMA
    no_lz = _report(
        old,
        encodings=CAP.encodings & ~EncodingMask.LZMA,
        max_lzma_dict_bits=0,
        max_lzma_lc_lp=0,
    )
    short = bytearray(encode_hello_ext(no_lz))
    short[3] |= int(EncodingMask.LZMA)
    assert parse_hello_ext(bytes(short)) == no_lz


def test_a_device_that_applies_lzma_gets_it_when_it_is_the_smallest() -> None:
    other = synthetic_user_app(100 * 1024, version=3, seed=77)
    offer = _offer()
    c = offer.choose(_hello(_report(other)))
    assert c.encoding == "lzma" and c.store == STORE_STREAMED_FIRMWARE
    h = StreamHeader.from_bytes(c.payload)
    assert lzma_props(h.param)[:3] == (12, 0, 1)  # the device's 2^12 and lc + lp <= 1
    assert decode_stream(c.payload) == _pair()[1]
    deflate = c.payload  # and it is smaller than every other compressed candidate
    for enc, param in ((StreamEncoding.DEFLATE, 13), (StreamEncoding.HEATSHRINK, (11 << 4) | 4)):
        assert len(deflate) < len(offer.compressed(enc, param))


def test_lzma_within_tighter_device_limits_or_not_at_all() -> None:
    other = synthetic_user_app(100 * 1024, version=3, seed=77)
    c = _offer().choose(_hello(_report(other, max_lzma_lc_lp=0)))
    assert c.encoding == "lzma" and lzma_props(StreamHeader.from_bytes(c.payload).param)[1:3] == (
        0,
        0,
    )
    no_lz = CAP.encodings & ~EncodingMask.LZMA
    c = _offer().choose(_hello(_report(other, encodings=no_lz)))
    assert c.encoding == "deflate"  # no LZMA bit: the best of the rest
    c = _offer().choose(_hello(_report(other, max_lzma_dict_bits=11)))
    assert c.encoding == "deflate"  # a dictionary below LzmaDec's 4 KB minimum: no LZMA
    c = _offer().choose(_hello(_report(other, encodings=EncodingMask.LZMA, ram_budget=8 * 1024)))
    assert c.encoding == "raw"  # the decoder does not fit the budget


def test_a_stock_device_never_gets_lzma() -> None:
    _old, new = _pair()
    res = update_in_process(Device.new(profile="stock"), new, offer=OtaOffer(new, []))
    assert res.ok and res.report.encoding == "raw"


def test_an_lzma_file_over_the_link_rebuilds_and_runs_the_new_app() -> None:
    _old, new = _pair()
    dev = Device.new(profile="extended")
    dev.install(synthetic_user_app(100 * 1024, version=3, seed=77))
    offer = OtaOffer(new, [], allow=frozenset({"compressed"}))
    res = update_in_process(dev, new, link=PRESETS["lossy"], seed=2, offer=offer)
    assert res.ok, res.error
    assert res.report.encoding == "lzma" and res.report.written_bytes == len(new)
    stats = dev.last_stream_stats
    assert stats is not None and stats.deferred == 0 and stats.peak_ram <= stats.ram_budget
    assert dev.user_part_bytes() == new
