"""Byte-exact CoAP and the spec 6.1-6.4 OTA messages."""

from __future__ import annotations

import pytest

from flashroom.errors import TransportError
from flashroom.ota.messages import (
    CODE_BAD_REQUEST,
    CODE_CHANGED,
    OPT_CHUNK,
    OPT_URI_PATH,
    Chunk,
    ChunkMissed,
    ChunkReceived,
    CoapMessage,
    CoapType,
    Hello,
    UpdateBegin,
    UpdateDone,
    UpdateReady,
    parse_request,
)
from flashroom.ota.transport import aiocoap_check, aiocoap_reencode
from flashroom.particle.crc import crc32


def test_update_begin_is_20_bytes_with_marker_at_byte_7_and_big_endian_fields() -> None:
    msg = UpdateBegin(1, 512, 0x00012345, 0, 0x10).to_coap(0x1234, b"\x07")
    data = msg.encode()
    assert len(data) == 20  # spec 6.2: length >= 20 and byte 7 is 0xFF
    assert data[:7] == bytes([0x41, 0x02, 0x12, 0x34, 0x07, 0xB1]) + b"u"
    assert data[7] == 0xFF
    assert data[8] == 1  # flags
    assert data[9:11] == (512).to_bytes(2, "big")
    assert data[11:15] == (0x12345).to_bytes(4, "big")
    assert data[15] == 0
    assert data[16:20] == (0x10).to_bytes(4, "big")
    assert UpdateBegin.from_coap(CoapMessage.decode(data)) == UpdateBegin(1, 512, 0x12345, 0, 0x10)


def test_update_begin_short_payload_means_legacy_defaults() -> None:
    msg = CoapMessage(CoapType.CON, 0x02, 1, b"\x01", ((OPT_URI_PATH, b"u"),), b"\x01\x02")
    assert UpdateBegin.from_coap(msg) == UpdateBegin(0, 0, 0, 0, 0)


def test_chunk_options_are_crc_then_index_with_small_deltas_device_os_can_skip() -> None:
    data = b"\x10\x20\x30" * 100
    raw = Chunk.of(data, 0x0102).to_coap(0xBEEF, b"\x55", CoapType.NON).encode()
    assert raw[0] == 0x51  # NON, 1-byte token
    assert raw[1] == 0x02  # POST
    assert raw[5 + 1 - 1] == 0xB1 and raw[6] == ord("c")  # path char at byte 5 + token_len
    assert raw[7] >> 4 == OPT_CHUNK - OPT_URI_PATH and raw[7] & 0xF == 4  # delta < 13, len 4
    assert raw[8:12] == crc32(data).to_bytes(4, "big")
    assert raw[12] == 0x02  # delta 0, length 2
    assert raw[13:15] == b"\x01\x02"
    assert raw[15] == 0xFF and raw[16:] == data


def test_chunk_is_parsed_positionally_whatever_the_option_numbers() -> None:
    # The Particle cloud sends Uri-Query (15); Device OS ignores the number (spec 6.3 #1).
    msg = CoapMessage(
        CoapType.CON,
        0x02,
        3,
        b"\x01",
        ((OPT_URI_PATH, b"c"), (15, b"\x00\x00\x00\x07"), (15, b"\x00\x09")),
        b"x",
    )
    assert Chunk.from_coap(msg) == Chunk(b"x", 7, 9)


def test_stop_and_wait_chunk_has_no_index() -> None:
    msg = Chunk.of(b"abc").to_coap(1, b"\x02", CoapType.CON)
    assert Chunk.from_coap(CoapMessage.decode(msg.encode())).index is None


def test_update_ready_and_chunk_received_are_separate_responses_with_codes() -> None:
    ready = UpdateReady(1).to_coap(9, b"\x03").encode()
    assert ready == bytes([0x41, 0x44, 0x00, 0x09, 0x03, 0xFF, 0x01])
    ok = ChunkReceived(True).to_coap(10, b"\x04").encode()
    bad = ChunkReceived(False).to_coap(11, b"\x04").encode()
    assert ok[1] == CODE_CHANGED and bad[1] == CODE_BAD_REQUEST
    assert len(ok) == 5  # no payload
    assert ChunkReceived.from_coap(CoapMessage.decode(bad)) == ChunkReceived(False)


def test_chunk_missed_is_get_c_with_big_endian_indices() -> None:
    raw = ChunkMissed((1, 0x0203, 65534)).to_coap(5, b"\x09").encode()
    assert raw[1] == 0x01 and raw[5:7] == b"\xb1c"
    assert raw[8:] == b"\x00\x01\x02\x03\xff\xfe"
    assert parse_request(CoapMessage.decode(raw)) == ChunkMissed((1, 0x0203, 65534))


def test_update_done_is_put_u_without_payload() -> None:
    raw = UpdateDone().to_coap(7, b"\x01").encode()
    assert raw == bytes([0x41, 0x03, 0x00, 0x07, 0x01, 0xB1]) + b"u"
    assert isinstance(parse_request(CoapMessage.decode(raw)), UpdateDone)


def test_hello_has_no_token_and_spec_payload_layout() -> None:
    raw = Hello(10, b"\xaa" * 12).to_coap(0x0102).encode()
    assert raw[0] == 0x40  # CON, no token
    assert raw[4:6] == b"\xb1h" and raw[6] == 0xFF  # payload from byte 7 (spec 6.5)
    assert raw[13:15] == (10).to_bytes(2, "big")  # platform id at bytes 13-14
    assert Hello.from_coap(CoapMessage.decode(raw)).device_id == b"\xaa" * 12


def test_extended_option_delta_and_length_round_trip() -> None:
    msg = CoapMessage(
        CoapType.CON,
        0x02,
        1,
        b"",
        ((11, b"a"), (300, b"x" * 20), (2000, b"y" * 300)),
        b"p",
    )
    data = msg.encode()
    assert CoapMessage.decode(data) == msg
    assert aiocoap_reencode(data) == data


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x41\x02", "header"),
        (b"\x81\x02\x00\x01\x00", "version"),
        (b"\x49\x02\x00\x01" + b"\x00" * 9, "token length"),
        (b"\x40\x02\x00\x01\xb5ab", "past the datagram end"),
        (b"\x40\x02\x00\x01\xff", "empty payload"),
        (b"\x40\x02\x00\x01\xf1a", "nibble 15"),
    ],
)
def test_malformed_datagrams_raise_transport_error(data: bytes, why: str) -> None:
    with pytest.raises(TransportError, match=why):
        CoapMessage.decode(data)


def test_every_ota_message_is_accepted_and_reencoded_identically_by_aiocoap() -> None:
    msgs = [
        Hello(10, b"\x01" * 12).to_coap(1),
        UpdateBegin(1, 512, 204800, 0, 0).to_coap(2, b"\x01"),
        Chunk.of(bytes(range(256)) * 2, 7).to_coap(3, b"\x02", CoapType.NON),
        Chunk.of(b"\xff" * 512).to_coap(4, b"\x03", CoapType.CON),
        UpdateDone().to_coap(5, b"\x04"),
        UpdateReady(1).to_coap(6, b"\x01"),
        ChunkReceived(False).to_coap(7, b"\x02"),
        ChunkMissed(tuple(range(40))).to_coap(8, b"\x05"),
        CoapMessage(CoapType.ACK, 0xA3, 9, b"\x01"),
        CoapMessage(CoapType.ACK, 0, 10),
    ]
    for m in msgs:
        data = m.encode()
        assert aiocoap_check(data), m
        assert aiocoap_reencode(data) == data, m


def test_particle_cloud_style_binary_uri_query_is_rejected_by_aiocoap() -> None:
    # Why flashroom does not put the CRC in Uri-Query: it is a UTF-8 string option.
    bad = CoapMessage(
        CoapType.CON, 0x02, 1, b"\x01", ((11, b"c"), (15, b"\xb1\xff\x00\x80")), b"x"
    ).encode()
    assert not aiocoap_check(bad)
