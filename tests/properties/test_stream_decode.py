"""Properties of the device's streamed OTA decoder (emu/stream.py), against the references.

* Differential: for any base, any edit of it and any detools compression, the device's push
  applier (the detools C library's state machine, fed chunk by chunk in any order its buffer
  allows) rebuilds exactly what detools' own ``apply_patch`` does, which is the new module.
* The ARM-Thumb filter gives the same bytes streamed in any split as over the whole buffer.
* Fuzz: whatever bytes of a streamed file are corrupted, the user part is never written, the RAM
  budget holds, and the transfer either fails with a system error or rebuilds the exact target.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import random

import detools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashroom.deviceos import UpdateFlag
from flashroom.deviceos.ota import FileTransferDescriptor
from flashroom.deviceos.stream import SAVE_CHUNK_DEFERRED, STORE_STREAMED_FIRMWARE
from flashroom.emu.device import Device
from flashroom.particle.build import code_like_bytes
from flashroom.particle.stream import (
    encode_compressed,
    encode_delta,
    split_stream,
    thumb_filter,
    thumb_filter_partial,
)

S = STORE_STREAMED_FIRMWARE


@functools.lru_cache(maxsize=1)
def _fresh() -> object:
    return Device.new(profile="extended").snapshot()


def _device(base: bytes) -> Device:
    dev = Device.new(profile="extended")
    dev.restore(_fresh())  # type: ignore[arg-type]
    user = dev.profile.user_bounds.start_address
    dev.flash.erase_sector(dev.flash.sector_index(user))
    dev.flash.program(user, base + b"\xff" * (-len(base) % 4))
    return dev


def _push(dev: Device, data: bytes, chunk: int, seed: int) -> int:
    """Send ``data`` in chunks, locally shuffled, resending deferred ones; finish's result."""
    f = FileTransferDescriptor(len(data), chunk, 0, store=S)
    if dev.prepare_for_firmware_update(f, 0) != 0:
        return -1
    n = -(-len(data) // chunk)
    order = list(range(n))
    rng = random.Random(seed)
    for i in range(0, n, 4):
        block = order[i : i + 4]
        rng.shuffle(block)
        order[i : i + 4] = block
    pending = order
    for _round in range(n + 1):
        again = []
        for i in pending:
            piece = data[i * chunk : (i + 1) * chunk]
            c = dataclasses.replace(
                f, chunk_address=f.file_address + i * chunk, chunk_size=len(piece)
            )
            rc = dev.save_firmware_chunk(c, piece)
            if rc == SAVE_CHUNK_DEFERRED:
                again.append(i)
            elif rc < 0:
                return rc
        if not again:
            break
        pending = again
    return dev.finish_firmware_update(f, UpdateFlag.SUCCESS | UpdateFlag.VALIDATE_ONLY)


_edit = st.tuples(st.floats(0, 1), st.integers(0, 3), st.binary(min_size=0, max_size=40))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(200, 6000),
    seed=st.integers(0, 1000),
    edits=st.lists(_edit, min_size=0, max_size=6),
    compression=st.sampled_from(["deflate", "heatshrink", "crle", "none"]),
    chunk=st.sampled_from([32, 100, 512]),
)
def test_device_applier_matches_detools_apply_patch(
    size: int, seed: int, edits: list[tuple[float, int, bytes]], compression: str, chunk: int
) -> None:
    base = code_like_bytes(size, seed)
    new = bytearray(base)
    for where, kind, data in edits:
        at = int(where * len(new))
        if kind == 0:
            new[at:at] = data  # insert
        elif kind == 1:
            del new[at : at + len(data)]  # delete
        else:
            new[at : at + len(data)] = data  # replace
    new_b = bytes(new) or b"\x00"
    stream = encode_delta(base, new_b, compression=compression)
    h, payload = split_stream(stream)
    dev = _device(base)
    rc = _push(dev, stream, chunk, seed)
    # the rebuilt bytes are not a module, so HAL_FLASH_OTA_Validate refuses them (-1300):
    # the stream itself was accepted up to the end
    assert rc == -1300, dev.last_ota_error
    got = dev.flash.read(dev.profile.ota_flash_address, len(new_b))
    assert got == new_b
    if compression != "deflate":  # detools' own reader on the same patch
        ref = io.BytesIO()
        detools.apply_patch(io.BytesIO(base), io.BytesIO(payload), ref)
        assert ref.getvalue() == got
    stats = dev.last_stream_stats
    assert stats is not None and stats.peak_ram <= stats.ram_budget
    assert h.target_size == len(new_b)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_thumb_filter_streamed_in_any_split_equals_the_whole(data: bytes, cuts: list[int]) -> None:
    whole = thumb_filter(data, encode=False)
    out = bytearray()
    pending, at = b"", 0
    bounds = sorted({c for c in cuts if c <= len(data)} | {len(data)})
    prev = 0
    for b in bounds:
        buf = pending + data[prev:b]
        conv, final = thumb_filter_partial(buf, encode=False, start=at)
        out += conv[:final]
        pending, at, prev = buf[final:], at + final, b
    out += pending
    assert bytes(out) == whole
    assert thumb_filter(thumb_filter(data, encode=True), encode=False) == data


@functools.lru_cache(maxsize=1)
def _fuzz_files() -> tuple[bytes, bytes, list[bytes]]:
    base = code_like_bytes(9000, 7)
    new = base[:4000] + code_like_bytes(300, 8) + base[4100:]
    files = [
        encode_delta(base, new),
        encode_delta(base, new, compression="heatshrink"),
        encode_delta(base, new, compression="crle"),
        encode_compressed(new),
        encode_compressed(new, encoding=2),
    ]
    return base, new, files


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, 4),
    flips=st.lists(st.tuples(st.floats(0, 0.9999), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_any_corruption_is_refused_or_rebuilds_the_exact_target(
    which: int, flips: list[tuple[float, int]]
) -> None:
    base, new, files = _fuzz_files()
    data = bytearray(files[which])
    for where, x in flips:
        data[int(where * len(data))] ^= x
    dev = _device(base)
    user = dev.profile.user_bounds
    before = dev.flash.read(user.start_address, user.maximum_size)
    rc = _push(dev, bytes(data), 256, 1)
    assert dev.flash.read(user.start_address, user.maximum_size) == before
    stats = dev.last_stream_stats
    assert stats is not None and stats.peak_ram <= stats.ram_budget
    if rc == -1300:  # the stream was accepted to its end: the rebuilt bytes are the target
        assert dev.flash.read(dev.profile.ota_flash_address, len(new)) == new
    else:
        assert rc < 0 and dev.last_ota_error
