"""Fidelity audit of the device end against spec 6 and 4.1 (Device OS v2.3.1, warts included).

Each test drives :class:`DeviceEnd` with hand-built datagrams and names the spec rule it pins.
"""

from __future__ import annotations

from typing import Any

import pytest

from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.messages import (
    CODE_BAD_REQUEST,
    CODE_CHANGED,
    CODE_EMPTY,
    CODE_POST,
    CODE_PUT,
    OPT_CHUNK,
    OPT_URI_PATH,
    Chunk,
    CoapMessage,
    CoapType,
    UpdateBegin,
    UpdateDone,
    empty_ack,
    parse_request,
)
from flashroom.particle.crc import crc32

REGION_ELECTRON = 0x20000  # HAL_OTA_FlashLength() on Electron (spec 4.1 #1)


def _device(ota: Any, **cfg: Any) -> tuple[DeviceEnd, Any]:
    fake = ota.FakeOtaDevice()
    dev = DeviceEnd(fake, DeviceConfig(**cfg))
    dev.start(0.0)
    return dev, fake


def _decode(out: list[bytes]) -> list[CoapMessage]:
    return [CoapMessage.decode(d) for d in out]


def _begin(dev: DeviceEnd, begin: UpdateBegin, now: float = 0.1) -> list[CoapMessage]:
    return _decode(dev.receive(begin.to_coap(1, b"\x01").encode(), now))


def test_long_form_file_length_zero_stays_zero_when_chunk_size_given_spec_4_1(ota: Any) -> None:
    # spec 4.1 #1: only chunk_size == 0 selects the defaults (512 and HAL_OTA_FlashLength())
    dev, fake = _device(ota)
    _begin(dev, UpdateBegin(0, 512, 0))
    assert dev.status == DeviceStatus.UPDATING
    assert fake.file_length == 0
    assert dev.chunk_count == 0


def test_chunk_size_zero_selects_512_and_the_region_length_spec_4_1(ota: Any) -> None:
    dev, fake = _device(ota)
    _begin(dev, UpdateBegin(0, 0, 5000))
    assert dev.chunk_size == 512
    assert fake.file_length == REGION_ELECTRON
    assert dev.chunk_count == REGION_ELECTRON // 512


def test_update_begin_long_form_needs_the_payload_marker_at_byte_7_spec_6_2() -> None:
    # A 2-byte token moves the marker to byte 8: Device OS then uses the legacy defaults.
    payload = bytes((1,)) + (256).to_bytes(2, "big") + (9000).to_bytes(4, "big") + bytes(5)
    msg = CoapMessage(CoapType.CON, CODE_POST, 7, b"\x01\x02", ((OPT_URI_PATH, b"u"),), payload)
    raw = msg.encode()
    assert len(raw) >= 20 and raw[7] != 0xFF
    assert UpdateBegin.from_coap(CoapMessage.decode(raw)) == UpdateBegin(0, 0, 0, 0, 0)


def test_update_begin_long_form_reads_bytes_8_to_19_big_endian_spec_6_2() -> None:
    raw = UpdateBegin(1, 0x0102, 0x03040506, 128, 0x0708090A).to_coap(3, b"\x09").encode()
    assert raw[7] == 0xFF and len(raw) == 20
    assert raw[8:20] == bytes.fromhex("01 0102 03040506 80 0708090a")
    got = UpdateBegin.from_coap(CoapMessage.decode(raw))
    assert got == UpdateBegin(1, 0x0102, 0x03040506, 128, 0x0708090A)


def test_update_begin_with_a_short_payload_uses_legacy_defaults_spec_6_2() -> None:
    msg = CoapMessage(CoapType.CON, CODE_POST, 7, b"\x01", ((OPT_URI_PATH, b"u"),), bytes(11))
    assert len(msg.encode()) == 19
    assert UpdateBegin.from_coap(msg) == UpdateBegin(0, 0, 0, 0, 0)


@pytest.mark.parametrize(("fast", "fill"), [(True, 0x00), (False, 0xFF)])
def test_bitmap_starts_all_zero_fast_all_ff_normal_and_update_ready_flags_spec_6_2(
    ota: Any, fast: bool, fill: int
) -> None:
    dev, _ = _device(ota)
    out = _begin(dev, UpdateBegin(1 if fast else 0, 512, 20 * 512))
    assert out[0].mtype == CoapType.ACK and out[0].code == CODE_EMPTY and not out[0].token
    ready = out[1]
    assert ready.code == CODE_CHANGED and ready.token == b"\x01" and ready.mtype == CoapType.CON
    assert ready.payload == bytes((1 if fast else 0,))
    assert dev.bitmap == bytearray([fill]) * 3


def test_update_done_with_missing_chunks_does_not_reset_the_inactivity_timer_spec_6_5(
    ota: Any,
) -> None:
    # spec 6.5: the timer is reset by prepare, by each chunk and by finish; an UpdateDone that
    # finds chunks missing (spec 6.4 #5) is none of those.
    dev, _ = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512), now=0.0)
    done = UpdateDone().to_coap(2, b"\x02")
    out = _decode(dev.receive(done.encode(), 200.0))
    assert out[0].code == CODE_BAD_REQUEST
    missed = out[1]
    dev.receive(empty_ack(missed.message_id).encode(), 200.1)  # the server ACKs ChunkMissed
    dev.poll(300.0)
    assert dev.status == DeviceStatus.TIMEOUT


def test_indexed_chunk_is_fast_mode_and_gets_no_ack_even_if_confirmable_spec_6_3(
    ota: Any,
) -> None:
    # spec 6.3 #1-#2: the index option means fast mode; only non-fast chunks are ACKed first
    dev, fake = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512))
    data = bytes(range(256)) * 2
    msg = Chunk.of(data, 0).to_coap(5, b"\x05", CoapType.CON)
    assert dev.receive(msg.encode(), 0.2) == []
    assert fake.region[:512] == data


def test_chunk_without_index_in_a_fast_session_is_normal_mode_bad_crc_spec_6_3(
    ota: Any,
) -> None:
    # spec 6.3 #1: without the index option the chunk is a normal-mode chunk: ACK first (#2)
    # and ChunkReceived BAD on a CRC mismatch (#5), whatever UpdateBegin negotiated.
    dev, _ = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512))
    data = bytes(512)
    msg = Chunk(data, crc32(data) ^ 1, None).to_coap(5, b"\x05", CoapType.CON)
    out = _decode(dev.receive(msg.encode(), 0.2))
    assert [m.mtype for m in out] == [CoapType.ACK, CoapType.CON]
    assert out[0].code == CODE_EMPTY and out[0].message_id == 5
    assert out[1].code == CODE_BAD_REQUEST and out[1].token == b"\x05"


def test_indexed_chunk_with_bad_crc_in_a_normal_session_gets_no_reply_spec_6_3(
    ota: Any,
) -> None:
    dev, fake = _device(ota)
    _begin(dev, UpdateBegin(0, 512, 20 * 512))
    data = bytes(512)
    msg = Chunk(data, crc32(data) ^ 1, 3).to_coap(5, b"\x05", CoapType.NON)
    assert dev.receive(msg.encode(), 0.2) == []
    assert fake.region[3 * 512 : 4 * 512] == b"\xff" * 512


def test_the_running_index_continues_after_an_indexed_chunk_spec_6_3_5(ota: Any) -> None:
    # spec 6.3 #3/#5: one index; a good chunk increments it, so a following chunk without the
    # index option lands at (index + 1) * chunk_size.
    dev, fake = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512))
    a, b = b"\xa5" * 512, b"\x3c" * 512
    dev.receive(Chunk.of(a, 5).to_coap(5, b"\x05", CoapType.NON).encode(), 0.2)
    dev.receive(Chunk.of(b, None).to_coap(6, b"\x06", CoapType.CON).encode(), 0.3)
    assert fake.region[5 * 512 : 6 * 512] == a
    assert fake.region[6 * 512 : 7 * 512] == b
    assert fake.region[:512] == b"\xff" * 512


def test_normal_mode_chunk_is_acked_first_then_chunk_received_ok_spec_6_3(ota: Any) -> None:
    dev, fake = _device(ota)
    _begin(dev, UpdateBegin(0, 512, 20 * 512))
    data = b"\x11" * 512
    out = _decode(dev.receive(Chunk.of(data).to_coap(5, b"\x05", CoapType.CON).encode(), 0.2))
    assert out[0].mtype == CoapType.ACK and out[0].code == CODE_EMPTY
    assert out[1].code == CODE_CHANGED and out[1].token == b"\x05" and not out[1].payload
    assert fake.region[:512] == data


def test_chunk_options_are_positional_crc_then_index_spec_6_3_1() -> None:
    msg = Chunk(b"x", 0x01020304, 0x0506).to_coap(1, b"\x01", CoapType.NON)
    raw = msg.encode()
    assert raw[4] == 0x01 and raw[5:7] == b"\xb1c"  # 1-byte token, path 'c' at 5 + token_len
    opts = [v for n, v in msg.options if n == OPT_CHUNK]
    assert opts == [b"\x01\x02\x03\x04", b"\x05\x06"]


def test_update_begin_past_end_of_flash_passes_the_dry_run_spec_4_1(ota: Any) -> None:
    dev, _ = _device(ota)
    out = _begin(dev, UpdateBegin(0, 512, 0x40000, 0, 0x1000))
    assert out[0].code == CODE_EMPTY


def test_chunk_missed_count_counts_every_chunk_message_of_the_flight_spec_6_4_5(
    ota: Any,
) -> None:
    # spec 6.4 #5: min(chunks received in this flight + max(0.2 x that, 2), 40). Device OS
    # counts every Chunk message it handles (chunk_count++ on entry), duplicates and bad CRCs
    # included: 4 here, so 4 + 2 = 6 indices, not 2 + 2.
    dev, _ = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512))
    good, bad = b"\x01" * 512, b"\x02" * 512
    chunks = [Chunk.of(good, 0), Chunk.of(good, 1), Chunk.of(good, 1), Chunk(bad, 0, 2)]
    for mid, c in enumerate(chunks, start=10):
        dev.receive(c.to_coap(mid, b"\x07", CoapType.NON).encode(), 0.2)
    out = _decode(dev.receive(UpdateDone().to_coap(30, b"\x08").encode(), 0.3))
    missed = out[1]
    ask = [int.from_bytes(missed.payload[i : i + 2], "big") for i in range(0, 12, 2)]
    assert len(missed.payload) == 12
    assert ask == [2, 3, 4, 5, 6, 7]


def test_chunk_missed_is_a_confirmable_get_c_without_token_spec_6_1(ota: Any) -> None:
    # spec 6.1: ChunkMissed is a CON GET c with the big-endian u16 indices as payload; Device OS
    # builds it by hand as 0x40 0x01 <mid> 0xb1 'c' 0xff (no token; send_missing_chunks).
    dev, _ = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512))
    out = dev.receive(UpdateDone().to_coap(30, b"\x08").encode(), 0.3)
    raw = out[1]
    assert raw[0] == 0x40 and raw[1] == 0x01
    assert raw[4:7] == b"\xb1c\xff"
    assert raw[7:] == b"\x00\x00\x00\x01"


def _chunk_msg(token: bytes, options: tuple[tuple[int, bytes], ...], data: bytes) -> CoapMessage:
    opts = ((OPT_URI_PATH, b"c"), *options)
    raw = CoapMessage(CoapType.CON, CODE_POST, 4, token, opts, data).encode()
    return CoapMessage.decode(raw)


def test_chunk_options_are_walked_from_byte_7_with_a_short_crc_option_spec_6_3_1() -> None:
    # spec 6.3 #1: Device OS walks option headers from byte 7 and reads the CRC as the 4 bytes
    # after the 1st header, whatever that option's length; here they run into the next option.
    msg = _chunk_msg(b"\x01", ((OPT_CHUNK, b"\xaa\xbb"), (OPT_CHUNK, b"\x00\x05")), b"data")
    assert Chunk.from_coap(msg) == Chunk(b"data", 0xAABB0200, 5)


def test_chunk_without_crc_option_has_crc_zero_spec_6_3_1() -> None:
    # Device OS starts with given_crc = 0; no option after the path leaves it so (no index:
    # normal mode), and the CRC comparison then decides.
    assert Chunk.from_coap(_chunk_msg(b"\x01", (), b"data")) == Chunk(b"data", 0, None)


def test_chunk_with_a_two_byte_token_is_misparsed_as_device_os_does_spec_6_3_1() -> None:
    # "The parser assumes a 1-byte token": with 2, byte 7 is the path value 'c' (0x63), read as
    # an option header of length 3; the CRC is bytes 8-11. (The 0xFF tail keeps the rest of
    # the walk inside the datagram.)
    data = b"\x10\x20\x30\x40\x50" + b"\xff" * 16
    msg = _chunk_msg(b"\x01\x02", ((OPT_CHUNK, crc32(data).to_bytes(4, "big")),), data)
    raw = msg.encode()
    assert raw[7] == ord("c")
    got = Chunk.from_coap(msg)
    assert got.crc == int.from_bytes(raw[8:12], "big") != crc32(data)


def test_requests_are_dispatched_by_the_character_at_byte_5_plus_token_length_spec_6_1() -> None:
    # spec 6.1: Device OS looks only at the path character at byte 5 + token_len, so a longer
    # path ("cx") or a second segment still dispatches as a Chunk. (Its option walk then starts
    # at 'x'; the 0xFF data keeps it inside the datagram.)
    data = b"\xff" * 8
    crc = ((OPT_CHUNK, crc32(data).to_bytes(4, "big")),)
    long_path = CoapMessage(
        CoapType.CON, CODE_POST, 4, b"\x01", ((OPT_URI_PATH, b"cx"), *crc), data
    )
    assert long_path.encode()[6] == ord("c")
    got = parse_request(CoapMessage.decode(long_path.encode()))
    assert isinstance(got, Chunk) and got.index is None
    two = CoapMessage(
        CoapType.CON, CODE_PUT, 4, b"\x01", ((OPT_URI_PATH, b"u"), (OPT_URI_PATH, b"zz"))
    )
    assert isinstance(parse_request(CoapMessage.decode(two.encode())), UpdateDone)


def test_only_a_saved_chunk_resets_the_inactivity_timer_spec_6_5(ota: Any) -> None:
    # system_update.cpp: TimingFlashUpdateTimeout = 0 in prepare, Spark_Save_Firmware_Chunk
    # and finish; a chunk with a bad CRC or a duplicate never reaches the save
    dev, _ = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512), now=0.0)
    data = bytes(512)
    good = Chunk.of(data, 0).to_coap(5, b"\x05", CoapType.NON)
    dev.receive(good.encode(), 100.0)  # saved: the timer restarts at 100
    dup = Chunk.of(data, 0).to_coap(6, b"\x06", CoapType.NON)
    bad = Chunk(data, crc32(data) ^ 1, 1).to_coap(7, b"\x07", CoapType.NON)
    dev.receive(dup.encode(), 250.0)
    dev.receive(bad.encode(), 390.0)
    dev.poll(399.9)
    assert dev.status == DeviceStatus.UPDATING
    dev.poll(400.0)  # 300 s after the last saved chunk, not after the duplicate or the bad one
    assert dev.status == DeviceStatus.TIMEOUT


def test_a_chunk_index_of_65535_or_more_is_ignored_spec_6_2(ota: Any) -> None:
    # chunked_transfer.cpp:187-191: "Invalid chunk index" -> return NO_ERROR; nothing written,
    # the transfer goes on
    dev, fake = _device(ota)
    _begin(dev, UpdateBegin(1, 512, 20 * 512))
    data = bytes(512)
    msg = Chunk.of(data, 65535).to_coap(5, b"\x05", CoapType.NON)
    assert dev.receive(msg.encode(), 0.2) == []
    assert dev.status == DeviceStatus.UPDATING and dev.ignored_chunks == 1
    assert fake.region[:512] == b"\xff" * 512
