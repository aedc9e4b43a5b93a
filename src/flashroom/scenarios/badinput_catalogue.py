"""The bad-input catalogue: each :class:`BadCase` names a kind of bad input, the layer that must
refuse it, where the refusal comes from, and how to make it (the builders below). Data for the
campaign in :mod:`flashroom.scenarios.badinput`, which runs it; a new case is one entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from flashroom.deviceos.gen2 import CORE_FW_ADDRESS
from flashroom.errors import FlashroomError
from flashroom.ota.messages import (
    CoapMessage,
    UpdateBegin,
)
from flashroom.particle.build import finish_checksums, synthetic_module
from flashroom.particle.compress import combine_modules, compress_module
from flashroom.particle.crc import crc32_be_bytes
from flashroom.particle.module_info import (
    ModuleDependency,
    ModuleFunction,
    ModuleInfo,
    module_info_offset,
)
from flashroom.scenarios import badinput_stream as bs


class Layer(StrEnum):
    """Where a bad input must be refused (see the module docstring)."""

    DEVICE = "device"
    TRANSFER = "transfer"
    STREAM = "stream"
    HOST = "host"


class Verdict(StrEnum):
    """How one case ended."""

    REFUSED = "refused"  # a specific error, the running app unchanged byte for byte
    ACCEPTED = "accepted"  # nothing refused it with a specific error
    APP_CHANGED = "app_changed"  # the running app (or a system module) changed
    HAZARD = "hazard"  # a documented Device OS hazard: the device takes it and is changed or
    # bricked; flashroom's server never sends it (the case's guard, checked on the real code)
    SKIPPED = "skipped"


#: Size of the well-formed app most cases start from (fits stock and extended).
BASE_APP_SIZE = 64 * 1024


@dataclass(frozen=True)
class Ctx:
    """What case builders may use: the platform, its user start, the installed system part."""

    platform: str
    platform_id: int
    profile: str
    user_start: int
    user_max: int
    system2: ModuleInfo
    system2_bytes: bytes
    user_app: bytes = b""  # the running app (the base of the stream cases' deltas)


@dataclass(frozen=True)
class Step:
    """One action of a hostile server in a ``transfer`` case.

    ``kind``: ``begin`` (UpdateBegin; ``args``: fast, chunk_size, file_length, file_address),
    ``chunks`` (send chunks ``args['first']..args['last']`` of the image, optionally with
    ``bad_crc`` / ``index_offset`` / ``truncate``), ``chunk`` (one chunk: ``index``, ``data``
    source index, ``crc_xor``, ``index_option``), ``done`` (UpdateDone), ``reset`` (power-cycle
    the device mid-transfer), ``raw`` (a datagram given as bytes), ``stale`` (before the
    session: an older app, v5, goes through a full OTA and the running app is then put back
    over USB DFU, so the OTA scratch holds a stale, valid image).
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadCase:
    """One kind of bad input.

    Attributes:
        name: snake_case id (``--case NAME``).
        layer: ``device``, ``transfer`` or ``host`` (see the module docstring).
        description: what is wrong with the input.
        spec: where the refusal comes from.
        make: builds the module (for ``transfer`` cases: the image the server sends).
        expect: the error the case should end with (a system error code, a CoAP code such as
            ``"4.00"``, a device-end status such as ``"timeout"``, or ``"host"``); documentary:
            the verdict depends on refusal and the unchanged app, not on matching this.
        steps: the server script for ``transfer`` cases.
        guard: for a hazard Device OS does not refuse: checks, on flashroom's own server code,
            that it never sends this input, and says how (None when it would send it).
    """

    name: str
    layer: str
    description: str
    spec: str
    make: Callable[[Ctx], bytes]
    expect: int | str | None = None
    steps: tuple[Step, ...] = ()
    guard: Callable[[Ctx, bytes], str | None] | None = None


# --------------------------------------------------------------------------- module builders


def base_app(ctx: Ctx, size: int = BASE_APP_SIZE, **over: Any) -> bytes:
    kw: dict[str, Any] = {
        "platform_id": ctx.platform_id,
        "function": ModuleFunction.USER_PART,
        "index": 1,
        "version": 7,
        "start_address": ctx.user_start,
        "dependency": ModuleDependency(ModuleFunction.SYSTEM_PART, 2, 2302),
        "seed": 77,
    }
    kw.update(over)
    return synthetic_module(size, **kw)


def _info_offset(data: bytes) -> int:
    return module_info_offset(int.from_bytes(data[:4], "little")) if len(data) >= 4 else 0


def _patch_info(data: bytes, *, checksums: bool = True, **fields: Any) -> bytes:
    """Rewrite module_info_t fields in place (and the SHA-256/CRC-32 unless told not to)."""
    off = _info_offset(data)
    info = ModuleInfo.from_bytes(data, off)
    new = dataclasses.replace(info, **fields)
    out = bytearray(data)
    out[off : off + ModuleInfo.SIZE] = new.to_bytes()
    if checksums:
        finish_checksums(out)
    return bytes(out)


def _flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0xFF
    return bytes(out)


def _bad_sha(data: bytes) -> bytes:
    """Corrupt the stored SHA-256 and recompute the CRC-32 over it (a consistent CRC)."""
    out = bytearray(data)
    n = len(out)
    out[n - 38] ^= 0x5A
    out[n - 4 :] = crc32_be_bytes(bytes(out[: n - 4]))
    return bytes(out)


def _system2(ctx: Ctx, **over: Any) -> bytes:
    """A new build of system part index 2 (same place and dependencies), with overrides."""
    i = ctx.system2
    kw: dict[str, Any] = {
        "platform_id": ctx.platform_id,
        "function": ModuleFunction.SYSTEM_PART,
        "index": 2,
        "version": i.module_version + 1,
        "start_address": i.module_start_address,
        "dependency": i.dependency,
        "dependency2": i.dependency2,
        "seed": 78,
    }
    kw.update(over)
    return synthetic_module(96 * 1024, **kw)


def _compressed_bad_header(ctx: Ctx) -> bytes:
    packed = bytearray(compress_module(base_app(ctx)))
    off = _info_offset(bytes(packed)) + ModuleInfo.SIZE
    packed[off : off + 8] = b"\x08\x00\x07\x0f\xff\xff\xff\x7f"  # method 7, 2 GB original size
    finish_checksums(packed)
    return bytes(packed)


def _combined_broken_chain(ctx: Ctx) -> bytes:
    a = base_app(ctx, 32 * 1024)
    b = base_app(ctx, 32 * 1024, seed=79)
    combined = bytearray(combine_modules([a, b]))
    # Truncate the second module: the chain's second link no longer has its suffix and CRC.
    return bytes(combined[: len(a) + len(b) // 2])


def _other_gen2(ctx: Ctx) -> int:
    """A Gen2 platform ID that is not the device's (spec 2.3)."""
    return 10 if ctx.platform_id == 6 else 6


def chunk_of(image: bytes, index: int, size: int = 512) -> bytes:
    return image[index * size : (index + 1) * size]


def _guard_empty(ctx: Ctx, image: bytes) -> str | None:
    """flashroom's server refuses an empty firmware (it would send UpdateBegin length 0)."""
    from flashroom.ota.server import OtaServer

    try:
        OtaServer(b"")
    except FlashroomError as e:
        return f"flashroom's server refuses it: {e}"
    return None


def _guard_file_address(ctx: Ctx, image: bytes) -> str | None:
    """flashroom's server puts file_address 0 in every UpdateBegin it sends."""
    from flashroom.ota.messages import Hello
    from flashroom.ota.server_end import ServerSession

    sess = ServerSession(image, seed=None)
    out = sess.receive(Hello(ctx.platform_id, bytes(12)).to_coap(1).encode(), 0.0)
    begin = UpdateBegin.from_coap(CoapMessage.decode(out[-1]))
    if begin.file_address == 0:
        return "flashroom's server sends file_address 0 in every UpdateBegin (checked)"
    return None


# --------------------------------------------------------------------------- the catalogue

_U = ModuleFunction.USER_PART
_S = ModuleFunction.SYSTEM_PART
_ALL = Step("chunks", {})
_DONE = Step("done")


def _begin(**args: Any) -> Step:
    return Step("begin", args)


_DS = "docs/delta-ota.md"


# fmt: off
CATALOGUE: tuple[BadCase, ...] = (
    # ---- identity: platform, function, index, addresses (spec 3.1 fetch_module, 3.3)
    BadCase("wrong_platform_gen2", "device",
            "user part built for another Gen2 platform (Photon 6, or Electron 10 on a Photon)",
            "docs/device-os.md#ota-checks: PLATFORM bit -> -1360",
            lambda c: base_app(c, platform_id=_other_gen2(c)), -1360),
    BadCase("wrong_platform_gen3", "device", "user part built for Boron (platform 13)",
            "docs/device-os.md#ota-checks: PLATFORM bit -> "
            "-1360", lambda c: base_app(c, platform_id=13), -1360),
    BadCase("wrong_function_resource", "device", "module_function RESOURCE: no bounds entry",
            "docs/device-os.md#ota-checks fetch_module: no bounds -> -1300",
            lambda c: base_app(c, function=ModuleFunction.RESOURCE), -1300),
    BadCase("wrong_function_system", "device",
            "claims SYSTEM_PART index 1 but is linked at the user start",
            "docs/device-os.md#ota-checks: end outside the (SYSTEM_PART,1) bounds -> -1300",
            lambda c: base_app(c, function=_S, index=1), -1300),
    BadCase("wrong_function_bootloader", "device",
            "claims BOOTLOADER (flashed immediately if accepted, "
            "docs/device-os.md#bootloader-updates) at the user start",
            "docs/device-os.md#ota-checks: end outside the bootloader bounds -> -1300",
            lambda c: base_app(c, function=ModuleFunction.BOOTLOADER, index=0), -1300),
    BadCase("wrong_index", "device", "USER_PART index 7: no bounds entry",
            "docs/device-os.md#ota-checks fetch_module: no bounds -> "
            "-1300", lambda c: base_app(c, index=7), -1300),
    BadCase("wrong_start_address", "device", "user part linked at 0x08020000 (system part 1)",
            "docs/device-os.md#ota-checks: end outside the user bounds -> -1300",
            lambda c: base_app(c, start_address=CORE_FW_ADDRESS), -1300),
    BadCase("end_beyond_region", "device",
            "module_end_address 4 KB past the user region (CRC recomputed)",
            "docs/device-os.md#ota-checks: end > bounds end -> -1300",
            lambda c: _patch_info(
                base_app(c), module_end_address=c.user_start + c.user_max + 0x1000
            ),
            -1300),
    BadCase("end_before_start", "device", "module_end_address below module_start_address",
            "docs/device-os.md#ota-checks: end < bounds start -> -1300",
            lambda c: _patch_info(base_app(c), module_end_address=c.user_start - 0x100), -1300),
    BadCase("info_all_ff", "device", "8 KB of 0xFF (an erased or empty file)",
            "docs/device-os.md#ota-checks: no module_info -> "
            "-1300", lambda c: b"\xff" * 8192, -1300),
    BadCase("info_all_zero", "device", "8 KB of zeros", "docs/device-os.md#ota-checks: no "
                                                        "module_info -> -1300",
            lambda c: bytes(8192), -1300),
    # ---- integrity (spec 2.5, 3.1 FLASH_VerifyCRC32, 3.3)
    BadCase("bad_crc", "device", "last byte of the CRC-32 flipped",
            "docs/device-os.md#ota-checks: INTEGRITY bit -> "
            "-1330", lambda c: _flip(base_app(c), -1), -1330),
    BadCase("bad_crc_body", "device", "one byte in the middle of the code flipped",
            "docs/device-os.md#ota-checks: INTEGRITY bit -> -1330",
            lambda c: _flip(base_app(c), BASE_APP_SIZE // 2), -1330),
    BadCase("crc_little_endian", "device", "CRC-32 stored little-endian instead of big-endian",
            "docs/device-os.md#module-tail: the device reads it big-endian -> -1330",
            lambda c: (lambda d: d[:-4] + d[-4:][::-1])(base_app(c)), -1330),
    BadCase("crc_placeholder", "device", "build never post-processed: CRC still 0x12345678",
            "docs/device-os.md#module-tail -> -1330",
            lambda c: base_app(c)[:-4] + (0x12345678).to_bytes(4, "little"), -1330),
    BadCase("truncated_half", "device", "file cut in half (module_info promises the rest)",
            "docs/device-os.md#ota-checks: CRC read from erased scratch -> -1330",
            lambda c: base_app(c)[: BASE_APP_SIZE // 2], -1330),
    BadCase("truncated_crc", "device", "the last 4 bytes (the CRC) missing",
            "docs/device-os.md#ota-checks: CRC read from erased scratch -> "
            "-1330", lambda c: base_app(c)[:-4], -1330),
    BadCase("zero_length", "device", "an empty file", "docs/device-os.md#ota-checks: nothing to "
                                                      "fetch",
            lambda c: b"", None),
    BadCase("header_only", "device", "only the 24-byte module_info_t",
            "docs/device-os.md#ota-checks: CRC read from erased scratch -> -1330",
            lambda c: base_app(c)[: ModuleInfo.SIZE], None),
    BadCase("oversized", "device", "user part 4 KB larger than the profile's user region",
            "extended: the file does not fit the 256K scratch, and the patched system "
            "(flashroom_in_ota_region) refuses the UpdateBegin -> -1350, nothing erased; stock: "
            "fetch_module range -> -1300 (docs/device-os.md#extended)",
            lambda c: base_app(c, c.user_max + 4096), -1350),
    # ---- dependencies (spec 2.4, 3.1 validate_module_dependencies)
    BadCase("system_unmet_dependency", "device",
            "system part 2 that needs system part 1 >= 9999",
            "docs/device-os.md#ota-checks: DEPENDENCIES_FULL -> -1340",
            lambda c: _system2(c, dependency=ModuleDependency(_S, 1, 9999)), -1340),
    BadCase("system_unmet_bootloader", "host",
            "system part 2 that needs bootloader >= 9999",
            "docs/device-os.md#ota-checks: OTA passes userDepsOptional, which skips a BOOTLOADER "
            "dependency2; "
            "the device installs it, the host dependency check refuses",
            lambda c: _system2(c, dependency2=ModuleDependency(ModuleFunction.BOOTLOADER, 0,
                                                                9999)), "host"),
    BadCase("system_downgrade", "device",
            "system part 2 version 100: system part 3 needs >= 110",
            "docs/device-os.md#ota-checks full reverse check -> "
            "-1340", lambda c: _system2(c, version=100), -1340),
    BadCase("system_wrong_platform", "device", "system part 2 built for another platform",
            "docs/device-os.md#ota-checks: PLATFORM -> -1360",
            lambda c: _system2(c, platform_id=_other_gen2(c)), -1360),
    # ---- packaging (module-format.md 6; Gen2 has no compressed OTA, spec 1.3)
    BadCase("compressed_bad_header", "host",
            "COMPRESSED flag with a header naming method 7 and a 2 GB original size",
            "docs/device-os.md#maps, #module-info: Gen2 has no compressed OTA and never looks at "
            "the flags; the device "
            "copies the deflate stream and runs it; module verify refuses the header",
            _compressed_bad_header, "host"),
    BadCase("combined_broken_chain", "host",
            "COMBINED file whose second module is cut in half",
            "docs/device-os.md#compression: Gen2 reads only the first module (its CRC is valid) "
            "and "
            "installs it; module verify refuses the broken chain", _combined_broken_chain,
            "host"),
    # ---- not refused by Device OS: host-side checks (honest about it)
    BadCase("bad_sha256", "host", "SHA-256 corrupted, CRC-32 recomputed over it",
            "docs/device-os.md#module-tail: the device never verifies the SHA-256; module verify "
            "refuses",
            lambda c: _bad_sha(base_app(c)), "host"),
    BadCase("user_unmet_dependency", "host", "user part that needs system part 2 >= 9999",
            "docs/device-os.md#ota-checks: user dependencies ignored at OTA time; "
            "docs/device-os.md#boot-check refuses at boot",
            lambda c: base_app(c, dependency=ModuleDependency(_S, 2, 9999)), "host"),
    BadCase("trailing_garbage", "host", "4 KB of garbage after the CRC",
            "docs/device-os.md#module-tail: file size != end - start + 4; the device copies only "
            "length + 4",
            lambda c: base_app(c) + b"\xa5" * 4096, "host"),
    # ---- transfer sessions (spec 6)
    BadCase("chunk_crc_mismatch", "transfer",
            "stop-and-wait: every copy of chunk 3 carries a wrong CRC-32 option",
            "docs/device-os.md#protocol: ChunkReceived BAD (4.00); the stop-and-wait bitmap reads "
            "complete, so "
            "UpdateDone runs HAL_FLASH_End, whose CRC check fails (-1330)", base_app, -1330,
            (_begin(), Step("chunks", {"last": 3}), Step("chunk", {"index": 3, "crc_xor": 1}),
             Step("chunk", {"index": 3, "crc_xor": 1}), _DONE)),
    BadCase("fast_chunk_crc_mismatch", "transfer",
            "fast OTA: chunk 5 always corrupt, server ignores ChunkMissed",
            "docs/device-os.md#protocol: UpdateDone gets 4.00 + ChunkMissed, then timeout",
            base_app, "4.00",
            (_begin(fast=True), Step("chunks", {"bad_crc": [5]}), _DONE, _DONE)),
    BadCase("chunk_index_out_of_range", "transfer",
            "fast OTA: chunk indices shifted past the end of the file (index + 2000)",
            "docs/device-os.md#protocol: indices only checked against 65535; stock: FLASH_Update "
            "has no bounds check (docs/device-os.md#ota-receive), the write past 0x08100000 "
            "bus-faults and resets; extended: the patched system writes no chunk outside the "
            "scratch (-1350 each), the file never completes -> 4.00", base_app, "4.00",
            (_begin(fast=True), Step("chunks", {"index_offset": 2000}), _DONE)),
    BadCase("chunk_index_65535", "transfer", "fast OTA: a chunk with index 65535",
            "docs/device-os.md#protocol (chunked_transfer.cpp:187-191): an index >= 65535 is "
            "ignored; the UpdateDone finds chunk 0 missing: 4.00 and ChunkMissed, nothing "
            "applied", base_app, "4.00",
            (_begin(fast=True), Step("chunk", {"index": 0, "index_option": 65535}), _DONE)),
    BadCase("update_done_early", "transfer",
            "UpdateDone after half the chunks (fast OTA)",
            "docs/device-os.md#protocol: 4.00 and ChunkMissed; nothing applied", base_app, "4.00",
            (_begin(fast=True), Step("chunks", {"last": 64}), _DONE)),
    BadCase("update_done_early_stop_and_wait", "transfer",
            "UpdateDone after half the chunks (stop-and-wait: no bitmap)",
            "docs/device-os.md#protocol: HAL_FLASH_End validates the partial image -> "
            "-1330", base_app, -1330,
            (_begin(), Step("chunks", {"last": 64}), _DONE)),
    BadCase("second_update_begin", "transfer",
            "a second UpdateBegin mid-transfer, then UpdateDone",
            "docs/device-os.md#protocol: the second prepare erases the scratch again; image "
            "incomplete",
            base_app, "4.00",
            (_begin(fast=True), Step("chunks", {"last": 64}), _begin(fast=True), _DONE)),
    BadCase("file_length_long", "transfer",
            "fast OTA: UpdateBegin announces twice the file length; the rest never comes",
            "docs/device-os.md#protocol: UpdateDone gets 4.00 + ChunkMissed, then the 300 s "
            "timeout", base_app,
            "4.00", (_begin(fast=True, file_length=2 * BASE_APP_SIZE), _ALL, _DONE, _DONE)),
    BadCase("file_past_flash_end", "transfer",
            "UpdateBegin with file_address 0x3f000 and a 64 KB file (past the end of flash)",
            "docs/device-os.md#ota-receive: stock: the dry run has no range check and the "
            "prepare's is ignored (3.5 #17), the first chunk past 0x08100000 bus-faults and "
            "resets; extended: the patched system refuses the UpdateBegin -> -1350 (5.03)",
            base_app, "5.03",
            (_begin(file_address=0x3F000), _ALL, _DONE)),
    BadCase("reset_mid_transfer", "transfer", "the device is power-cycled after 40 chunks",
            "docs/device-os.md#ota-finish: no slot recorded before HAL_FLASH_End", base_app,
            "reset",
            (_begin(), Step("chunks", {"last": 40}), Step("reset"))),
    BadCase("chunk_before_begin", "transfer", "chunks and UpdateDone without an UpdateBegin",
            "docs/device-os.md#protocol: not updating -> RST; UpdateDone -> 4.00", base_app, "4.00",
            (_ALL, _DONE)),
    # ---- hazards Device OS does not refuse: flashroom's server never sends them
    BadCase("zero_length_update", "transfer",
            "UpdateBegin with file_length 0, then UpdateDone, while the OTA scratch holds an "
            "older valid app",
            "docs/device-os.md#ota-receive: FLASH_Begin erases ceil(0 / 128K) = 0 sectors; "
            "docs/device-os.md#protocol: no chunk is missing, so HAL_FLASH_End validates the "
            "stale scratch and the device rolls back "
            "to it (stock Device OS does this)", base_app, "hazard",
            (Step("stale"), _begin(file_length=0), _DONE), _guard_empty),
    BadCase("file_address_wraps_to_bootloader", "transfer",
            "UpdateBegin with file_address 0xfff40000: 0x080c0000 + 0xfff40000 wraps to "
            "0x08000000",
            "docs/device-os.md#extended: stock: FLASH_EraseMemory's range check passes and sector "
            "0 (the bootloader) is erased, a brick at the next reset, and only flashroom's server "
            "stands in the way; extended: the patched system (flashroom_in_ota_region) refuses "
            "the UpdateBegin with -1350 before any erase", base_app, "5.03",
            (_begin(file_address=0xFFF40000), _DONE), _guard_file_address),
    # ---- streamed (delta / compressed) files: the modelled extension (docs/delta-ota.md)
    BadCase("delta_other_base", "stream", "a delta whose header names another base",
            f"{_DS}: the base SHA-256 is checked over the user part at the header -> -1340",
            bs.other_base, -1340),
    BadCase("delta_base_mismatch_midstream", "stream",
            "a patch made from another base under a header naming the running app",
            f"{_DS}: the first output block's CRC-32 fails, mid-stream -> -1330",
            bs.midstream_mismatch, -1330),
    BadCase("delta_corrupt", "stream", "a delta with 16 payload bytes flipped",
            f"{_DS}: a block CRC-32 or the patch parser fails mid-stream -> -1330/-280",
            bs.corrupt_payload, -1330),
    BadCase("delta_truncated", "stream", "a delta with its last 64 bytes missing",
            f"{_DS}: header + payload != UpdateBegin's file length -> -1370",
            bs.truncated, -1370),
    BadCase("delta_truncated_consistent", "stream",
            "a delta cut 2000 bytes short with its header rewritten to match",
            f"{_DS}: the patch ends before its to-data -> -191", bs.truncated_consistent, -191),
    BadCase("delta_bad_header_crc", "stream", "a delta header with one byte changed",
            f"{_DS}: header CRC-32 -> -1370", bs.bad_header_crc, -1370),
    BadCase("delta_lzma", "stream", "a detools patch compressed with LZMA",
            f"{_DS}: the device's detools build has LZMA disabled -> -1310", bs.lzma_patch, -1310),
    BadCase("stream_larger_than_scratch", "stream",
            "a compressed file promising a module 4 KB larger than the OTA scratch",
            f"{_DS}: target_size > HAL_OTA_FlashLength at the header -> -190", bs.too_large, -190),
    BadCase("stream_zip_bomb", "stream", "Deflate of 2 MB of zeros under a 64 KB header",
            f"{_DS}: decoding stops at the target size, before writing past it -> -190",
            bs.zip_bomb, -190),
    BadCase("stream_lzma_bomb", "stream", "LZMA of 2 MB of zeros under a 64 KB header",
            f"{_DS}: LzmaDec stops at the target size, before writing past it -> -190",
            bs.lzma_bomb, -190),
    BadCase("stream_lzma_corrupt", "stream", "an LZMA file with 16 payload bytes flipped",
            f"{_DS}: LzmaDec (SZ_ERROR_DATA) or a block CRC-32 mid-stream -> -280/-1330",
            bs.lzma_corrupt, -280),
    BadCase("stream_lzma_truncated", "stream",
            "an LZMA file cut 2000 bytes short with its header rewritten to match",
            f"{_DS}: the stream ends without its end marker -> -191", bs.lzma_truncated, -191),
    BadCase("stream_not_a_module", "stream", "a compressed file decoding to 32 KB of text",
            f"{_DS} then docs/device-os.md#ota-checks: the rebuilt bytes hold no module -> -1300",
            bs.not_a_module, -1300),
    BadCase("delta_wrong_platform", "stream", "a delta rebuilding a user part for another "
            "platform", f"{_DS} then docs/device-os.md#ota-checks: PLATFORM -> -1360",
            bs.wrong_platform, -1360),
    BadCase("stream_over_ram_budget", "stream", "a compressed file with a 2^15 Deflate window",
            f"{_DS}: the window does not fit the decoder's RAM budget -> -260",
            bs.over_ram, -260),
    BadCase("delta_to_raw_only_device", "stream",
            "a good delta to an extended device without the streamed-OTA change",
            f"{_DS}: an unknown store; the patched system's address guard refuses its "
            "UpdateBegin -> -1350 (stock, no guard: nothing written -> -100)",
            bs.valid_delta, -1350, (Step("no_capability"),)),
    BadCase("device_lies_about_base", "stream",
            "the device's Hello claims a base it does not run; the server sends that delta",
            f"{_DS}: the device hashes its user part at the header -> -1340",
            bs.lie_base, -1340, (Step("lie"),)),
)
# fmt: on


__all__ = [
    "BASE_APP_SIZE",
    "CATALOGUE",
    "BadCase",
    "Ctx",
    "Layer",
    "Step",
    "Verdict",
    "base_app",
    "chunk_of",
]
