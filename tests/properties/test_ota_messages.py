"""Hypothesis: decode(encode(m)) == m for CoAP and every OTA message; decode never crashes."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from flashroom.errors import TransportError
from flashroom.ota.messages import (
    Chunk,
    ChunkMissed,
    ChunkReceived,
    CoapMessage,
    CoapType,
    Hello,
    UpdateBegin,
    UpdateReady,
    parse_request,
)

options = st.lists(st.tuples(st.integers(0, 3000), st.binary(max_size=300)), max_size=6).map(
    lambda opts: tuple(sorted(opts, key=lambda o: o[0]))
)

coap_messages = st.builds(
    CoapMessage,
    mtype=st.sampled_from(list(CoapType)),
    code=st.integers(1, 255),
    message_id=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    options=options,
    payload=st.binary(max_size=600),
)


@settings(max_examples=200, deadline=None)
@given(coap_messages)
def test_coap_decode_inverts_encode(msg: CoapMessage) -> None:
    assert CoapMessage.decode(msg.encode()) == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_decode_of_arbitrary_bytes_only_raises_transport_error(data: bytes) -> None:
    try:
        msg = CoapMessage.decode(data)
    except TransportError:
        return
    with contextlib.suppress(TransportError):
        parse_request(msg)


mid = st.integers(0, 0xFFFF)
token = st.binary(min_size=1, max_size=1)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([0, 1, 128]),
    st.integers(0, 0xFFFFFFFF),
    mid,
    token,
)
def test_update_begin_round_trip(
    flags: int, cs: int, length: int, store: int, addr: int, m: int, t: bytes
) -> None:
    ub = UpdateBegin(flags, cs, length, store, addr)
    wire = CoapMessage.decode(ub.to_coap(m, t).encode())
    assert parse_request(wire) == ub


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=1, max_size=1024),
    st.integers(0, 0xFFFFFFFF),
    st.none() | st.integers(0, 0xFFFF),
    mid,
    token,
    st.sampled_from([CoapType.CON, CoapType.NON]),
)
def test_chunk_round_trip(
    data: bytes, crc: int, index: int | None, m: int, t: bytes, mtype: CoapType
) -> None:
    ch = Chunk(data, crc, index)
    assert parse_request(CoapMessage.decode(ch.to_coap(m, t, mtype).encode())) == ch


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), max_size=40), mid, token)
def test_chunk_missed_round_trip(indices: list[int], m: int, t: bytes) -> None:
    cm = ChunkMissed(tuple(indices))
    assert parse_request(CoapMessage.decode(cm.to_coap(m, t).encode())) == cm


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 255), st.booleans(), mid, token)
def test_responses_round_trip(flags: int, ok: bool, m: int, t: bytes) -> None:
    assert UpdateReady.from_coap(
        CoapMessage.decode(UpdateReady(flags).to_coap(m, t).encode())
    ) == UpdateReady(flags)
    assert ChunkReceived.from_coap(
        CoapMessage.decode(ChunkReceived(ok).to_coap(m, t).encode())
    ) == ChunkReceived(ok)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 0xFFFF), st.binary(max_size=16), mid)
def test_hello_round_trip(platform: int, device_id: bytes, m: int) -> None:
    h = Hello(platform, device_id)
    assert parse_request(CoapMessage.decode(h.to_coap(m).encode())) == h
