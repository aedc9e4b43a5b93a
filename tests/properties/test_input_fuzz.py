"""Every parser and loader of an input file, fed random and mutated bytes.

Covers module files (parse, compress, decompress, combine, split), device images (decode and the
metadata check behind ``Device.load``), ELF inputs of ``module pack`` and, when the DfuSe reader
is present, ``.dfu`` files. For every input: only ``FlashroomError`` escapes, no input takes
more than :data:`HANG_GUARD_S` (a generous bound, a guard against hangs, not a timing target),
and no input costs more than :data:`MEMORY_BOUND` bytes of Python allocations.

Two drivers: Hypothesis (random and structured mutations), and a bounded, seeded mutation loop
over every real fixture in ``$FLASHROOM_FIXTURES`` (each fixture mutated the same way on every
run, so a failure names its fixture, seed and mutation).
"""

from __future__ import annotations

import contextlib
import os
import random
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashroom.emu.image import decode_image, encode_image, image_metadata
from flashroom.errors import FlashroomError
from flashroom.particle.build import device_os_install, elf_image, synthetic_user_app
from flashroom.particle.compress import (
    combine_modules,
    combined_apply_warnings,
    compress_module,
    compressed_apply_warnings,
    decompress_module,
    split_modules,
)
from flashroom.particle.module import parse_module

#: Per input: a hang guard (a parse takes milliseconds; anything near this is a hang).
HANG_GUARD_S = 5.0
#: Per input: Python allocations (tracemalloc peak). The largest input here is 4 MB; parsing
#: a 1.5 MB module peaks under 5 MB.
MEMORY_BOUND = 32 * 1024 * 1024
#: Mutations per fixture in the bounded loop (``FLASHROOM_FUZZ_MUTATIONS`` to raise it).
MUTATIONS = int(os.environ.get("FLASHROOM_FUZZ_MUTATIONS", "40"))

SETTINGS = settings(
    max_examples=int(os.environ.get("FLASHROOM_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _fixture_dir() -> Path:
    env = os.environ.get("FLASHROOM_FIXTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "particle-modules"


def _fixtures() -> list[Path]:
    d = _fixture_dir()
    return sorted(d.glob("*.bin")) if d.is_dir() else []


def _image_seed() -> bytes:
    meta = {
        "platform": "electron",
        "platform_id": 10,
        "profile": "stock",
        "bootloader": "resumable",
        "granularity": "word",
        "state": "application",
        "reason": "",
        "backup_registers": [0] * 20,
        "counters": {
            "op_count": 7,
            "erase_counts": [0] * 12,
            "device_time_s": 0.5,
            "device_time_max_s": 1.0,
        },
    }
    return encode_image(meta, b"\xff" * 1024 * 1024)


def _load_image(data: bytes) -> None:
    meta, _ = decode_image(data)
    image_metadata(meta, name="<fuzz>", sectors=12)


def _elf(data: bytes) -> None:
    elf_image(b"\x7fELF" + data[4:] if len(data) >= 4 else b"\x7fELF", name="<fuzz>")


def _combine(data: bytes) -> None:
    combine_modules([data, data])


MODULE_OPS: list[Callable[[bytes], object]] = [
    parse_module,
    decompress_module,
    split_modules,
    compress_module,
    _combine,
    compressed_apply_warnings,
    lambda d: combined_apply_warnings([d]),
]
IMAGE_OPS: list[Callable[[bytes], object]] = [_load_image]
ELF_OPS: list[Callable[[bytes], object]] = [_elf]


def _dfu_ops() -> list[Callable[[bytes], object]]:
    try:
        from flashroom.particle.dfu_inspect import inspect_dfu  # type: ignore[import-not-found]
    except ImportError:  # the DfuSe reader is not on this branch
        return []
    return [lambda d: inspect_dfu(d, "<fuzz>")]


def _guarded(op: Callable[[bytes], object], data: bytes, what: str) -> None:
    """Run ``op(data)``: only FlashroomError may escape; bounded time and memory."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        op(data)
    except FlashroomError:
        pass
    finally:
        took = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert took < HANG_GUARD_S, f"{what}: {took:.1f} s for {len(data)} bytes (hang guard)"
    assert peak < MEMORY_BOUND, f"{what}: {peak} bytes allocated for {len(data)} bytes of input"


def _mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    kind = rng.choice(["flip", "set", "truncate", "extend", "header", "tail", "u32", "splice"])
    n = len(buf)
    if kind == "flip" and n:
        i = rng.randrange(n)
        buf[i] ^= 1 << rng.randrange(8)
    elif kind == "set" and n:
        i = rng.randrange(n)
        buf[i : i + 8] = rng.randbytes(8)
    elif kind == "truncate" and n:
        del buf[rng.randrange(n) :]
    elif kind == "extend":
        buf += rng.randbytes(rng.randrange(1, 256))
    elif kind == "header" and n >= 24:
        for off in (0, 0x184, 0x200):
            if off + 24 <= n:
                buf[off + rng.choice([4, 5, 6, 7, 9, 16, 20])] = rng.randrange(256)
    elif kind == "tail" and n >= 6:
        buf[n - rng.randrange(1, min(n, 48) + 1)] = rng.randrange(256)
    elif kind == "u32" and n >= 8:
        i = rng.randrange(0, n - 4) & ~3
        struct.pack_into("<I", buf, i, rng.choice([0, 0xFFFFFFFF, n, n - 4, 0x80000000]))
    elif kind == "splice" and n >= 16:
        a = rng.randrange(n)
        buf[a:a] = buf[: rng.randrange(1, 16)]
    return bytes(buf), kind


# --------------------------------------------------------------------------- the bounded loop
@pytest.mark.parametrize("fixture", _fixtures(), ids=lambda p: p.name)
def test_every_fixture_mutated_raises_only_flashroom_errors_quickly(fixture: Path) -> None:
    data = fixture.read_bytes()
    rng = random.Random(f"{fixture.name}")
    _guarded(parse_module, data, fixture.name)
    for i in range(MUTATIONS):
        mutated, kind = _mutate(data, rng)
        for op in (*MODULE_OPS, *ELF_OPS, *_dfu_ops()):
            _guarded(op, mutated, f"{fixture.name} mutation {i} ({kind}) {op}")


def test_the_fixture_loop_has_fixtures_to_mutate() -> None:
    if not _fixture_dir().is_dir():
        pytest.skip(f"Particle module fixtures not found at {_fixture_dir()}")
    assert len(_fixtures()) >= 10


def test_device_image_mutated_raises_only_flashroom_errors_quickly() -> None:
    seed = _image_seed()
    rng = random.Random("image")
    for i in range(MUTATIONS):
        mutated, kind = _mutate(seed, rng)
        # keep the CRC valid half of the time, so the metadata checks are reached
        if i % 2 and len(mutated) >= 24:
            body = mutated[24:]
            crc = zlib.crc32(body) & 0xFFFFFFFF
            mutated = mutated[:20] + struct.pack("<I", crc) + body
        _guarded(_load_image, mutated, f"image mutation {i} ({kind})")


# --------------------------------------------------------------------------- Hypothesis
def _seeds() -> list[bytes]:
    out = [p.read_bytes() for p in _fixtures() if p.stat().st_size < 65536]
    app = synthetic_user_app(3000)
    out += [app, compress_module(app), combine_modules([app, synthetic_user_app(2000, seed=1)])]
    out.append(device_os_install("electron")[0])
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(SEEDS))
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 5))):
        data, _ = _mutate(data, rng)
    return data


@SETTINGS
@given(st.one_of(st.binary(max_size=4096), mutated()))
def test_module_parsers_raise_only_flashroom_errors(data: bytes) -> None:
    for op in (*MODULE_OPS, *ELF_OPS, *_dfu_ops()):
        _guarded(op, data, str(op))


@SETTINGS
@given(
    meta=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
        max_leaves=30,
    )
)
def test_any_image_metadata_is_checked_without_crashing(meta: object) -> None:
    body = {
        "platform": "electron",
        "profile": "stock",
        "bootloader": "resumable",
        "state": "application",
        "backup_registers": [0] * 20,
        "counters": {
            "op_count": 0,
            "erase_counts": [0] * 12,
            "device_time_s": 0.0,
            "device_time_max_s": 0.0,
        },
    }
    for key in ("platform", "backup_registers", "counters", "state"):
        trial = dict(body, **{key: meta})
        with contextlib.suppress(FlashroomError):
            image_metadata(trial, name="<fuzz>", sectors=12)


# --------------------------------------------------------------------------- bombs and chains
def _compressed_claiming(original_size: int, stream: bytes) -> bytes:
    """A compressed user part whose header claims ``original_size`` and carries ``stream``."""
    app = bytearray(compress_module(synthetic_user_app(4096)))
    # header at 24 (no vector table on a user part): u16 size, u8 method, u8 bits, u32 size
    struct.pack_into("<I", app, 24 + 4, original_size)
    tail = bytes(app[-44:])
    out = bytearray(app[:32]) + stream + tail
    struct.pack_into("<I", out, 4, 0x08080000 + len(out) - 4)
    from flashroom.particle.build import finish_checksums

    finish_checksums(out)
    return bytes(out)


def test_a_module_claiming_gigabytes_is_refused_before_inflating() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = bomb.compress(bytes(64 * 1024 * 1024)) + bomb.flush()  # 64 MB of zeros, ~64 KB
    for claim in (48 * 1024**2, 3 * 1024**3, 0xFFFFFFFF):
        data = _compressed_claiming(claim, stream)
        _guarded(decompress_module, data, f"claims {claim}")
        with pytest.raises(FlashroomError, match="larger than any Particle module"):
            decompress_module(data)
        m = parse_module(data)
        assert not m.ok  # inspect reports the refusal as a failed check


def test_a_lying_header_stops_inflating_one_byte_past_its_claim() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = bomb.compress(bytes(64 * 1024 * 1024)) + bomb.flush()
    data = _compressed_claiming(4096, stream)  # claims 4 KB, inflates to 64 MB
    _guarded(decompress_module, data, "lying header")
    with pytest.raises(FlashroomError, match="Unexpected size of the decompressed data"):
        decompress_module(data)


def test_a_megabyte_chain_of_tiny_combined_pieces_is_answered_quickly() -> None:
    piece = bytearray(synthetic_user_app(68))  # the smallest module: 68 bytes
    piece[9] |= 0x04  # COMBINED
    from flashroom.particle.build import finish_checksums

    finish_checksums(piece)
    chain = bytes(piece) * (1024 * 1024 // len(piece))
    for op in (parse_module, split_modules):
        _guarded(op, chain, f"chain {op}")
    with pytest.raises(FlashroomError, match="more than 16 modules combined"):
        split_modules(chain)
