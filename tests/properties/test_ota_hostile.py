"""Hypothesis: hostile datagrams at both protocol ends, mid-update.

Issue 12 #5 asks that every parser of what comes off the network (CoAP datagrams, and the
server's replies as the device end reads them) lets only ``FlashroomError`` escape. Here each end
is brought to the middle of a real update (Hello, UpdateBegin/UpdateReady, some chunks) and then
fed arbitrary bytes and well-formed CoAP messages with hostile options and payloads: it may
refuse, ignore, answer or give up on them, but nothing else may escape, and its state stays one
of its declared statuses.
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashroom.emu.device import Device
from flashroom.errors import FlashroomError
from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.messages import CoapMessage, CoapType
from flashroom.ota.server_end import ServerConfig, ServerSession, SessionStatus
from flashroom.particle.build import synthetic_user_app

APP = synthetic_user_app(8 * 1024, platform="electron", version=21, seed=12)


@cache
def _base() -> tuple[Device, Any]:
    dev = Device.new("electron", "extended")
    return dev, dev.snapshot()


def _mid_update(fast: bool = True) -> tuple[DeviceEnd, ServerSession, float]:
    """A device end and a server session, both a few chunks into an update (the rest of a
    fast-OTA burst is lost on the way)."""
    base, snap = _base()
    dev = Device(base.profile)
    dev.restore(snap)
    end = DeviceEnd(dev, DeviceConfig(platform="electron", seed=3))
    srv = ServerSession(APP, ServerConfig(fast=fast), seed=4)
    now = 0.0
    to_server = end.start(now)
    for _ in range(4):  # a few exchanges: Hello, UpdateBegin/Ready, the first chunks
        now += 0.01
        to_device = [out for d in to_server for out in srv.receive(d, now)][:4]
        to_server = [out for d in to_device for out in end.receive(d, now)]
    return end, srv, now


_CODES = st.sampled_from([0x01, 0x02, 0x03, 0x44, 0x45, 0x80, 0x84, 0xA3, 0x00, 0xFF])
_OPTIONS = st.lists(
    st.tuples(st.sampled_from([1, 4, 11, 12, 14, 15, 17, 60, 2048, 65000]), st.binary(max_size=40)),
    max_size=5,
).map(lambda opts: tuple(sorted(opts, key=lambda o: o[0])))
_MESSAGES = st.builds(
    CoapMessage,
    mtype=st.sampled_from(list(CoapType)),
    code=_CODES,
    message_id=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    options=_OPTIONS,
    payload=st.binary(max_size=900),
).map(lambda m: m.encode())
#: Hypothesis favours short byte strings: full-size datagrams (up to a 1500-byte MTU) are drawn too
_LARGE = st.integers(600, 1500).flatmap(lambda n: st.binary(min_size=n, max_size=n))
_DATAGRAMS = st.lists(
    st.one_of(st.binary(max_size=1500), _LARGE, _MESSAGES), min_size=1, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(_DATAGRAMS, st.booleans())
def test_hostile_datagrams_mid_update_raise_only_flashroom_errors(
    datagrams: list[bytes], fast: bool
) -> None:
    end, srv, now = _mid_update(fast)
    for d in datagrams:
        now += 0.05
        for side in (end, srv):
            with contextlib.suppress(FlashroomError):
                side.receive(d, now)
        for side in (end, srv):
            with contextlib.suppress(FlashroomError):
                side.poll(now)
    assert end.status in set(DeviceStatus)
    assert srv.status in set(SessionStatus)


@pytest.mark.parametrize("fast", [True, False])
def test_the_ends_are_mid_update_when_the_hostile_datagrams_come(fast: bool) -> None:
    end, srv, _ = _mid_update(fast)
    assert end.status == DeviceStatus.UPDATING and 0 < end.chunks_written < srv.chunk_count
    assert not srv.terminal  # sending, or waiting for the answer to an early UpdateDone
