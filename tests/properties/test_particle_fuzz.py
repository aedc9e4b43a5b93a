"""Fuzz: random and mutated module bytes never raise anything but FlashroomError.

Only ``FlashroomError`` subclasses may escape parse, decompress, split and compress (never
IndexError, struct.error, ValueError, zlib.error...), and every ModuleFormatError names the
field and the offset.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashroom.errors import FlashroomError, ModuleFormatError
from flashroom.particle.build import device_os_install, synthetic_user_app
from flashroom.particle.compress import (
    combine_modules,
    compress_module,
    decompress_module,
    split_modules,
)
from flashroom.particle.module import parse_module

SETTINGS = settings(
    max_examples=int(os.environ.get("FLASHROOM_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _fixture_dir() -> Path:
    env = os.environ.get("FLASHROOM_FIXTURES")
    base = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"
    return base if env else base / "fixtures" / "particle-modules"


def _seeds() -> list[bytes]:
    """Fixture binaries under 64 KB (fast to mutate) plus built modules of every kind."""
    out: list[bytes] = []
    d = _fixture_dir()
    if d.is_dir():
        out += [p.read_bytes() for p in sorted(d.glob("*.bin")) if p.stat().st_size < 65536]
    app = synthetic_user_app(3000)
    out += [app, compress_module(app), combine_modules([app, synthetic_user_app(2000, seed=1)])]
    out.append(device_os_install("electron")[0])
    return out


SEEDS = _seeds()
OPERATIONS: list[Callable[[bytes], object]] = [
    parse_module,
    decompress_module,
    split_modules,
    compress_module,
]


def _run_all(data: bytes) -> None:
    for op in OPERATIONS:
        try:
            op(data)
        except ModuleFormatError as e:
            assert e.field is not None, f"{op.__name__}: {e} has no field"
            assert e.offset is not None, f"{op.__name__}: {e} has no offset"
        except FlashroomError:
            pass


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "extend", "header", "tail"]))
        n = len(data)
        if kind == "flip" and n:
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and n:
            i = draw(st.integers(0, n - 1))
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[i : i + len(chunk)] = chunk
        elif kind == "truncate" and n:
            del data[draw(st.integers(0, n - 1)) :]
        elif kind == "extend":
            data += draw(st.binary(max_size=64))
        elif kind == "header" and n >= 24:
            # the interesting bytes: flags, end address, a dependency slot
            i = draw(st.sampled_from([4, 5, 6, 7, 9, 16, 20]))
            data[i] = draw(st.integers(0, 255))
        elif kind == "tail" and n >= 6:
            i = n - draw(st.integers(1, min(n, 48)))
            data[i] = draw(st.integers(0, 255))
    return bytes(data)


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_flashroom_errors(data: bytes) -> None:
    _run_all(data)


@SETTINGS
@given(mutated())
def test_mutated_modules_raise_only_flashroom_errors(data: bytes) -> None:
    _run_all(data)


def _naive_find_prefix_offset(data: bytes) -> tuple[int, int]:
    """module-format.md 3, written out literally: preferred offsets, then every 4 to the limit."""
    from flashroom.particle.parser import PREFERRED_OFFSETS, prefix_score

    best = (0, 0)
    for off in PREFERRED_OFFSETS:
        s = prefix_score(data, off)
        if s == 7:
            return off, s
        if s > best[1]:
            best = (off, s)
    for off in range(4, min(8192, len(data) - 36 - 24 - 4) + 1, 4):
        if off in PREFERRED_OFFSETS:
            continue
        s = prefix_score(data, off)
        if s == 7:
            return off, s
        if s > best[1]:
            best = (off, s)
    return best


@SETTINGS
@given(st.one_of(mutated(), st.binary(max_size=600)))
def test_fast_prefix_scan_equals_the_literal_rule(data: bytes) -> None:
    from flashroom.particle.parser import find_prefix_offset

    assert find_prefix_offset(data) == _naive_find_prefix_offset(data)
