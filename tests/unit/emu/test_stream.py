"""The extended system's streamed OTA (emu/stream.py): decode while receiving, into the scratch."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import random
from typing import Any

import pytest

from flashroom.deviceos import UpdateFlag
from flashroom.deviceos.ota import FileTransferDescriptor
from flashroom.deviceos.stream import (
    ELECTRON_EXTENDED_STREAM,
    SAVE_CHUNK_DEFERRED,
    STORE_STREAMED_FIRMWARE,
    STREAM_OUT_BUFFER,
    STREAM_STATE_BYTES,
    StreamEncoding,
    decoder_ram,
    lzma_param,
)
from flashroom.emu.device import Device
from flashroom.emu.flash import FlashEvent, FlashEventKind
from flashroom.emu.outcome import RunResult
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.compress import compress_module
from flashroom.particle.evolve import small_change
from flashroom.particle.stream import (
    encode_compressed,
    encode_delta,
    lzma_compress,
    make_header,
    split_stream,
)

S = STORE_STREAMED_FIRMWARE


@functools.lru_cache(maxsize=1)
def _pair() -> tuple[bytes, bytes]:
    old = synthetic_user_app(120 * 1024, version=5, seed=21)
    return old, small_change(old, seed=5)


@functools.lru_cache(maxsize=1)
def _device() -> Any:
    dev = Device.new(profile="extended")
    dev.install(_pair()[0])
    return dev.snapshot()


def _dev() -> Device:
    dev = Device.new(profile="extended")
    dev.restore(_device())
    return dev


def _files() -> dict[str, bytes]:
    old, new = _pair()
    return {
        "delta_deflate": encode_delta(old, new),
        "delta_heatshrink": encode_delta(old, new, compression="heatshrink"),
        "delta_crle": encode_delta(old, new, compression="crle"),
        "delta_none": encode_delta(old, new, compression="none"),
        "deflate": encode_compressed(new, thumb=True),
        "deflate_plain": encode_compressed(new, thumb=False),
        "heatshrink": encode_compressed(new, encoding=StreamEncoding.HEATSHRINK),
        "lzma": encode_compressed(new, encoding=StreamEncoding.LZMA, thumb=True),
        "lzma_plain": encode_compressed(new, encoding=StreamEncoding.LZMA, thumb=False),
    }


@pytest.mark.parametrize("name", list(_files()))
def test_every_encoding_rebuilds_the_new_module_and_it_runs(name: str) -> None:
    _old, new = _pair()
    data = _files()[name]
    dev = _dev()
    out = dev.ota(data, store=S, expect=new)
    assert out.result == RunResult.APPLIED, out.error
    assert out.running is not None and out.running.module_version == 6
    assert dev.user_part_bytes() == new
    stats = dev.last_stream_stats
    assert stats is not None and stats.received == len(data) and stats.written == len(new)
    assert stats.peak_ram <= stats.ram_budget


def _begin(dev: Device, data: bytes, chunk: int = 512) -> FileTransferDescriptor:
    f = FileTransferDescriptor(len(data), chunk, 0, store=S)
    assert dev.prepare_for_firmware_update(f, 1) == 0
    assert dev.prepare_for_firmware_update(f, 0) == 0
    return f


def _save(dev: Device, f: FileTransferDescriptor, data: bytes, i: int, chunk: int = 512) -> int:
    piece = data[i * chunk : (i + 1) * chunk]
    c = dataclasses.replace(f, chunk_address=f.file_address + i * chunk, chunk_size=len(piece))
    return dev.save_firmware_chunk(c, piece)


def test_chunks_out_of_order_within_the_buffer_are_reassembled() -> None:
    _old, new = _pair()
    data = _files()["deflate"]
    dev = _dev()
    f = _begin(dev, data)
    n = -(-len(data) // 512)
    order = list(range(n))
    rng = random.Random(3)
    for i in range(0, n, 8):  # shuffle within windows of 8 chunks (well inside the buffer)
        block = order[i : i + 8]
        rng.shuffle(block)
        order[i : i + 8] = block
    for i in order:
        assert _save(dev, f, data, i) == 0
    assert _save(dev, f, data, 0) == 0  # a duplicate is taken and ignored
    assert dev.finish_firmware_update(f, UpdateFlag.SUCCESS) == 1
    assert dev.reset().running is not None
    assert dev.user_part_bytes() == new
    assert dev.last_stream_stats is not None and dev.last_stream_stats.buffered > 0


def test_a_chunk_past_the_reorder_buffer_is_deferred_and_taken_when_resent() -> None:
    data = _files()["deflate"]
    dev = _dev()
    f = _begin(dev, data)
    n = -(-len(data) // 512)
    rcs = [_save(dev, f, data, i) for i in range(1, n)]  # chunk 0 "lost"
    assert 0 in rcs and SAVE_CHUNK_DEFERRED in rcs
    first_deferred = rcs.index(SAVE_CHUNK_DEFERRED) + 1
    stats = dev.last_stream_stats
    assert stats is not None and stats.peak_ram <= stats.ram_budget
    # the buffer held what the budget allows, no more
    assert first_deferred * 512 >= stats.ram_budget // 2
    assert _save(dev, f, data, 0) == 0  # the gap is filled: the buffer drains
    for i in range(1, n):
        if rcs[i - 1] == SAVE_CHUNK_DEFERRED:
            assert _save(dev, f, data, i) == 0
    assert dev.finish_firmware_update(f, UpdateFlag.SUCCESS) == 1


def test_a_streamed_transfer_writes_only_the_scratch_until_hal_flash_end() -> None:
    data = _files()["delta_deflate"]
    dev = _dev()
    scratch = dev.profile.ota_bounds
    seen: list[FlashEvent] = []

    class Obs:
        def flash_event(self, ev: FlashEvent) -> None:
            if ev.kind != FlashEventKind.READ:
                seen.append(ev)

    with dev.flash.subscribe(Obs()):
        f = _begin(dev, data)
        for i in range(-(-len(data) // 512)):
            _save(dev, f, data, i)
        assert dev.finish_firmware_update(f, UpdateFlag.SUCCESS | UpdateFlag.VALIDATE_ONLY) == 0
    assert seen
    for ev in seen:
        assert scratch.start_address <= ev.addr < scratch.end_address, hex(ev.addr)
    erased = {ev.sector for ev in seen if ev.kind == FlashEventKind.ERASE}
    assert erased == {10, 11}  # the whole scratch, once


def test_a_cut_during_the_rebuild_keeps_the_old_app_and_the_next_attempt_starts_over() -> None:
    old, new = _pair()
    data = _files()["delta_deflate"]
    dev = _dev()
    clean = dev.snapshot()
    ops = dev.ota(data, store=S, expect=new).flash_ops
    dev.restore(clean)
    # op 2 is after the two scratch erases: inside the rebuild's first writes
    for cut in (2, 60, ops // 4):
        dev.restore(clean)
        out = dev.ota(data, store=S, expect=new, cut_at_op=cut)
        assert out.result == RunResult.INTERRUPTED
        boot = dev.boot()
        assert boot.boot == "application" and dev.user_part_bytes() == old
        again = dev.ota(data, store=S, expect=new)
        assert again.result == RunResult.APPLIED and dev.user_part_bytes() == new


def test_stream_report_names_the_running_app_by_its_bytes() -> None:
    old, _new = _pair()
    dev = _dev()
    rep = dev.stream_report()
    assert rep is not None
    assert rep.base_size == len(old) and rep.base_sha256 == hashlib.sha256(old).digest()
    assert rep.max_output == dev.profile.ota_flash_length
    dev.ota_stream_enabled = False
    assert dev.stream_report() is None
    assert Device.new(profile="stock").stream_report() is None


def test_a_device_without_the_capability_writes_nothing_for_a_streamed_file() -> None:
    old, new = _pair()
    dev = _dev()
    dev.ota_stream_enabled = False
    out = dev.ota(_files()["delta_deflate"], store=S, expect=new)
    assert out.result == RunResult.REJECTED
    assert out.running is not None and dev.user_part_bytes() == old
    stock = Device.new(profile="stock")
    before = stock.user_part_bytes()
    out = stock.ota(_files()["deflate"], store=S, expect=new)
    assert out.result == RunResult.REJECTED and stock.user_part_bytes() == before


def test_a_compressed_module_installed_raw_is_never_reported_running() -> None:
    # spec 7.4: only Gen3 bootloaders inflate. Gen2's HAL_FLASH_End accepts the file (its CRC
    # is valid), the bootloader copies it verbatim; the device would execute a Deflate stream.
    app = synthetic_user_app(48 * 1024, version=9, seed=8)
    packed = compress_module(app)
    dev = _dev()
    out = dev.ota(packed)
    # issue 12 #1/#3: installed, and the MCU faults in the Deflate bytes: crashed, not running
    assert out.result == RunResult.INSTALLED_NOT_RUNNING and out.boot == "crashed"
    assert out.running is None
    assert out.error is not None and "compressed" in out.error.message
    assert dev.running_module() is None


@pytest.mark.parametrize(
    ("chunk", "length", "address"), [(0, 1000, 0), (512, 0, 0), (512, 1 << 20, 0), (512, 99, 4)]
)
def test_prepare_refuses_a_streamed_file_it_cannot_place(
    chunk: int, length: int, address: int
) -> None:
    dev = _dev()
    f = FileTransferDescriptor(length, chunk, address, store=S)
    assert dev.prepare_for_firmware_update(f, 1) < 0


def test_a_refused_stream_keeps_refusing_and_finish_reports_why() -> None:
    _old, new = _pair()
    other = synthetic_user_app(len(_pair()[0]), version=4, seed=99)
    data = encode_delta(other, new)
    dev = _dev()
    f = _begin(dev, data)
    rc = _save(dev, f, data, 0)
    assert rc == -1340
    assert "not the running app" in dev.last_ota_error
    assert _save(dev, f, data, 1) == -1340
    assert dev.finish_firmware_update(f, UpdateFlag.SUCCESS) == -1340


@pytest.mark.parametrize("part", ["system-part1", "system-part2", "user-part"])
def test_real_device_os_modules_rebuild_from_their_previous_release(
    fixtures: Any, part: str
) -> None:
    # 0.4.0 -> 0.4.3 Photon modules: the base goes raw into the user part, the device rebuilds
    # 0.4.3 into the scratch byte for byte (HAL_FLASH_End then refuses a Photon module: -1360
    # or -1300, as it should on an Electron)
    old = (fixtures / f"040_{part}.bin").read_bytes()
    new = (fixtures / f"043_{part}.bin").read_bytes()
    dev = Device.new(profile="extended")
    dev.install(old, address=dev.profile.user_loc)
    for data in (encode_delta(old, new), encode_compressed(new)):
        f = _begin(dev, data)
        for i in range(-(-len(data) // 512)):
            assert _save(dev, f, data, i) == 0
        assert dev.finish_firmware_update(f, UpdateFlag.SUCCESS) in (-1300, -1360)
        assert dev.flash.read(dev.profile.ota_flash_address, len(new)) == new
        assert dev.flash.read(dev.profile.user_loc, len(old)) == old


def _push_all(dev: Device, data: bytes) -> tuple[list[int], int]:
    f = _begin(dev, data)
    rcs = [_save(dev, f, data, i) for i in range(-(-len(data) // 512))]
    return rcs, dev.finish_firmware_update(f, UpdateFlag.SUCCESS)


def test_lzma_decoder_ram_is_accounted_as_lzmadec_allocates_it() -> None:
    _old, new = _pair()
    dev = _dev()
    rcs, rc = _push_all(dev, _files()["lzma"])
    assert set(rcs) == {0} and rc == 1
    stats = dev.last_stream_stats
    assert stats is not None and stats.encoding == "lzma"
    # in order, nothing buffered: the peak is the reserve made before the header (the largest
    # decoder) or the LZMA decoder itself, plus the stream state and staging buffer
    need = decoder_ram(StreamEncoding.LZMA, lzma_param(12, 0, 1, 1))
    assert stats.peak_ram >= need + STREAM_STATE_BYTES + STREAM_OUT_BUFFER
    assert stats.peak_ram <= stats.ram_budget
    assert dev.user_part_bytes() != new  # not applied until the reset
    assert dev.reset().running is not None and dev.user_part_bytes() == new


def test_an_lzma_bomb_stops_at_its_target_before_writing_past_it() -> None:
    app = _pair()[0]
    param = lzma_param(12, 0, 1, 1)
    payload = lzma_compress(bytes(2 * 1024 * 1024), param)
    h = make_header(bytes(64 * 1024), payload, encoding=StreamEncoding.LZMA, param=param)
    dev = _dev()
    rcs, rc = _push_all(dev, h.to_bytes() + payload)
    assert -190 in rcs and rc == -190
    stats = dev.last_stream_stats
    assert stats is not None and stats.written <= 64 * 1024
    # nothing programmed past the 64 KB target: the rest of the scratch is still erased
    after = dev.flash.read(dev.profile.ota_flash_address + 64 * 1024, 64 * 1024)
    assert after == b"\xff" * len(after)
    assert dev.user_part_bytes() == app


@pytest.mark.parametrize(
    ("mutate", "code"),
    [("flip", -280), ("cut", -191), ("trailing", -280)],
)
def test_a_corrupt_or_truncated_lzma_stream_is_refused(mutate: str, code: int) -> None:
    app = _pair()[0]
    h, payload = split_stream(_files()["lzma_plain"])
    if mutate == "flip":
        payload = b"\x01" + payload[1:]  # LzmaDec: the first byte of the stream must be 0
    elif mutate == "cut":
        payload = payload[:-300]  # no end marker
    else:
        payload += b"\x00" * 8  # bytes after the end marker
    data = dataclasses.replace(h, payload_size=len(payload)).to_bytes() + payload
    dev = _dev()
    rcs, rc = _push_all(dev, data)
    assert rc == code and (code in rcs or set(rcs) == {0}), (rcs, rc)
    assert dev.user_part_bytes() == app


def test_an_lzma_dictionary_or_literal_context_over_the_device_limit_is_refused() -> None:
    _old, new = _pair()
    cap = ELECTRON_EXTENDED_STREAM
    for params in ((cap.max_lzma_dict_bits + 1, 0, 1, 1), (12, 1, 1, 1)):
        dev = _dev()
        data = encode_compressed(new, encoding=StreamEncoding.LZMA, lzma_params=params)
        rcs, rc = _push_all(dev, data)
        assert rcs[0] == -260 and rc == -260, params
        assert "this device allows" in dev.last_ota_error
