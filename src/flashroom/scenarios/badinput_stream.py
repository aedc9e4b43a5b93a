"""The bad-input campaign's ``stream`` layer: hostile delta and compressed files.

The files are flashroom's streamed updates (docs/delta-ota.md).

Each builder makes a streamed-update file (``particle/stream.py``) that the extended device's
streamed OTA (``emu/stream.py``) must refuse, and the runner pushes it through the device's
system OTA path with the streamed store (``Device.ota(store=STORE_STREAMED_FIRMWARE)``), or,
for the lying device, through a real server session that picks the delta from the Hello. The
campaign (``scenarios/badinput.py``) then checks that the running app is byte-identical.

A profile without the capability (stock, or ``ota_stream_enabled`` False) refuses every streamed
file as an unknown store (SYSTEM_ERROR_UNKNOWN, nothing written): the same cases prove that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Sequence
from typing import Any, Protocol

from flashroom.deviceos.stream import STORE_STREAMED_FIRMWARE, StreamEncoding, lzma_param
from flashroom.emu.device import Device
from flashroom.ota.device_end import DeviceConfig
from flashroom.ota.stream import OtaOffer
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.evolve import small_change
from flashroom.particle.stream import (
    DEFAULT_WINDOW_BITS,
    StreamHeader,
    encode_compressed,
    encode_delta,
    lzma_compress,
    make_header,
    split_stream,
)
from flashroom.particle.stream import deflate_raw as _deflate
from flashroom.scenarios.deliver import update_in_process


class StreamCtx(Protocol):
    """What the builders read from the campaign's context."""

    @property
    def platform(self) -> str: ...

    @property
    def user_max(self) -> int: ...

    @property
    def user_app(self) -> bytes: ...


def _new(ctx: StreamCtx) -> bytes:
    """The next build of the running app (a 64-byte change, relinked)."""
    return small_change(ctx.user_app, seed=3)


def _other(ctx: StreamCtx) -> bytes:
    """An app of the same size the device does not run."""
    return synthetic_user_app(len(ctx.user_app), platform=ctx.platform, version=4, seed=55)


def _reheader(data: bytes, **fields: Any) -> bytes:
    """The same payload under a header with some fields replaced (header CRC recomputed)."""
    h, payload = split_stream(data)
    return dataclasses.replace(h, **fields).to_bytes() + payload


# --------------------------------------------------------------------------- builders
def other_base(ctx: StreamCtx) -> bytes:
    """A delta made for another base, whose header says so."""
    return encode_delta(_other(ctx), _new(ctx))


def corrupt_payload(ctx: StreamCtx) -> bytes:
    """A delta whose payload has 16 bytes flipped in the middle (header intact)."""
    d = bytearray(encode_delta(ctx.user_app, _new(ctx), compression="none"))
    h = StreamHeader.from_bytes(bytes(d))
    mid = h.size + h.payload_size // 2
    for i in range(mid, min(mid + 16, len(d))):
        d[i] ^= 0x5A
    return bytes(d)


def truncated(ctx: StreamCtx) -> bytes:
    """A delta with its last 64 bytes missing (the transfer announces the shorter file)."""
    return encode_delta(ctx.user_app, _new(ctx))[:-64]


def truncated_consistent(ctx: StreamCtx) -> bytes:
    """A delta cut short whose header was rewritten to the shorter payload."""
    d = encode_delta(ctx.user_app, _new(ctx), compression="none")
    h, payload = split_stream(d)
    cut = payload[: len(payload) - 2000]
    return dataclasses.replace(h, payload_size=len(cut)).to_bytes() + cut


def too_large(ctx: StreamCtx) -> bytes:
    """A compressed file whose header promises a module 4 KB larger than the scratch."""
    target = bytes(ctx.user_max + 4096)
    payload = _deflate(target, DEFAULT_WINDOW_BITS)
    h = make_header(target, payload, encoding=StreamEncoding.DEFLATE, param=DEFAULT_WINDOW_BITS)
    return h.to_bytes() + payload


def not_a_module(ctx: StreamCtx) -> bytes:
    """A compressed file that decodes exactly to 32 KB of text, not a module."""
    target = (b"this is not a Particle module. " * 1100)[: 32 * 1024]
    return encode_compressed(target, thumb=False)


def wrong_platform(ctx: StreamCtx) -> bytes:
    """A delta that rebuilds a valid user part for another Gen2 platform."""
    other = "photon" if ctx.platform != "photon" else "electron"
    target = synthetic_user_app(len(ctx.user_app), platform=other, version=8, seed=1)
    return encode_delta(ctx.user_app, target)


def zip_bomb(ctx: StreamCtx) -> bytes:
    """Deflate that inflates to 2 MB of zeros under a header that promises 64 KB."""
    payload = _deflate(bytes(2 * 1024 * 1024), DEFAULT_WINDOW_BITS)
    h = make_header(
        bytes(64 * 1024), payload, encoding=StreamEncoding.DEFLATE, param=DEFAULT_WINDOW_BITS
    )
    return h.to_bytes() + payload


#: The LZMA parameters the server sends the extended device (DEFAULT_LZMA: 2^12, lc 0, lp 1, pb 1).
_LZMA = lzma_param(12, 0, 1, 1)


def lzma_bomb(ctx: StreamCtx) -> bytes:
    """LZMA that decodes to 2 MB of zeros (a few hundred bytes) under a header promising 64 KB."""
    payload = lzma_compress(bytes(2 * 1024 * 1024), _LZMA)
    h = make_header(bytes(64 * 1024), payload, encoding=StreamEncoding.LZMA, param=_LZMA)
    return h.to_bytes() + payload


def lzma_corrupt(ctx: StreamCtx) -> bytes:
    """The next build as LZMA with 16 payload bytes flipped in the middle (header intact)."""
    d = bytearray(encode_compressed(_new(ctx), encoding=StreamEncoding.LZMA, thumb=False))
    h = StreamHeader.from_bytes(bytes(d))
    mid = h.size + h.payload_size // 2
    for i in range(mid, min(mid + 16, len(d))):
        d[i] ^= 0x5A
    return bytes(d)


def lzma_truncated(ctx: StreamCtx) -> bytes:
    """The next build as LZMA cut 2000 bytes short, its header rewritten to the shorter payload:
    the stream ends without its end marker."""
    h, payload = split_stream(encode_compressed(_new(ctx), encoding=StreamEncoding.LZMA))
    cut = payload[: len(payload) - 2000]
    return dataclasses.replace(h, payload_size=len(cut)).to_bytes() + cut


def midstream_mismatch(ctx: StreamCtx) -> bytes:
    """A patch made from another base under a header that names the running app."""
    new = _new(ctx)
    bad = encode_delta(_other(ctx), new)
    h, payload = split_stream(bad)
    app = ctx.user_app
    return (
        dataclasses.replace(
            h, base_size=len(app), base_sha256=hashlib.sha256(app).digest()
        ).to_bytes()
        + payload
    )


def over_ram(ctx: StreamCtx) -> bytes:
    """A compressed file with a 32 KB (2^15) Deflate window: more RAM than the budget allows."""
    return encode_compressed(_new(ctx), window_bits=15)


def bad_header_crc(ctx: StreamCtx) -> bytes:
    """A delta whose header has one byte changed (its CRC no longer matches)."""
    d = bytearray(encode_delta(ctx.user_app, _new(ctx)))
    d[12] ^= 0x01  # a target_sha256 byte
    return bytes(d)


def lzma_patch(ctx: StreamCtx) -> bytes:
    """A detools patch compressed with LZMA (disabled in the device's detools build)."""
    import detools  # C extensions: only for this case

    out = io.BytesIO()
    app, new = ctx.user_app, _new(ctx)
    detools.create_patch(io.BytesIO(app), io.BytesIO(new), out, compression="lzma")
    payload = out.getvalue()
    h = make_header(new, payload, encoding=StreamEncoding.DELTA, param=1, base=app)
    return h.to_bytes() + payload


def valid_delta(ctx: StreamCtx) -> bytes:
    """A good delta for the running app (for the device that cannot apply it)."""
    return encode_delta(ctx.user_app, _new(ctx))


def lie_base(ctx: StreamCtx) -> bytes:
    """The base the lying device claims to run (a module it does not run)."""
    return _other(ctx)


# --------------------------------------------------------------------------- runner
def run_stream_case(
    dev: Device, ctx: StreamCtx, data: bytes, steps: Sequence[str]
) -> tuple[int | str | None, str, str | None, bool]:
    """Play one stream case: (code, message, boot after, applied).

    ``steps``: ``lie`` (a server session; the device's Hello claims ``data`` as its running
    app), ``no_capability`` (the device runs the extended layout without the streamed-OTA
    change); otherwise ``data`` goes through ``Device.ota`` with the streamed store.
    """
    if "lie" in steps:
        return _lie(dev, ctx, data)
    saved = dev.ota_stream_enabled
    if "no_capability" in steps:
        dev.ota_stream_enabled = False
    try:
        out = dev.ota(data, store=STORE_STREAMED_FIRMWARE, expect=_new(ctx))
    finally:
        dev.ota_stream_enabled = saved
    applied = out.result == "applied"
    stats = dev.last_stream_stats
    where = (
        f" (rebuilt {stats.written} of {stats.target_size} bytes, received {stats.received})"
        if stats is not None and stats.target_size
        else ""
    )
    if out.error is not None:
        code = out.error.code
        return ("no_code" if code is None else code), out.error.message + where, out.boot, applied
    return None, f"result {out.result}", out.boot, applied


def _lie(
    dev: Device, ctx: StreamCtx, claimed: bytes
) -> tuple[int | str | None, str, str | None, bool]:
    if dev.stream_report() is None:
        why = "the profile has no streamed OTA: its Hello cannot claim a base"
        return "skipped", why, None, False
    offer = OtaOffer(_new(ctx), [claimed])
    cfg = DeviceConfig(
        platform=dev.profile.platform, claim_base_sha256=hashlib.sha256(claimed).digest()
    )
    res = update_in_process(dev, offer.module, device_config=cfg, offer=offer)
    return (
        res.error_code if res.error_code is not None else res.result,
        f"device end {res.result} ({res.report.encoding} from the server): {res.error}",
        res.outcome.get("boot") if res.outcome else None,
        res.result == "applied",
    )


__all__ = [
    "StreamCtx",
    "bad_header_crc",
    "corrupt_payload",
    "lie_base",
    "lzma_bomb",
    "lzma_corrupt",
    "lzma_patch",
    "lzma_truncated",
    "midstream_mismatch",
    "not_a_module",
    "other_base",
    "over_ram",
    "run_stream_case",
    "too_large",
    "truncated",
    "truncated_consistent",
    "valid_delta",
    "wrong_platform",
    "zip_bomb",
]
