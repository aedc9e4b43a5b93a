"""Hypothesis: build then parse gives back every field; compress and combine round-trip."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashroom.particle.build import build_module, synthetic_module
from flashroom.particle.compress import (
    combine_modules,
    compress_module,
    decompress_module,
    split_modules,
)
from flashroom.particle.module import parse_module
from flashroom.particle.module_info import ModuleDependency

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
deps = st.one_of(
    st.none(),
    st.builds(ModuleDependency, st.integers(1, 9), u8, u16),
)


@st.composite
def module_args(draw: st.DrawFn) -> dict[str, object]:
    has_product = draw(st.booleans())
    return {
        "payload": draw(st.binary(min_size=0, max_size=600)),
        "platform_id": draw(st.sampled_from([6, 8, 10, 12, 13, 26, 32])),
        "function": draw(st.sampled_from([2, 3, 4, 5, 7, 8])),
        "index": draw(u8),
        "version": draw(u16),
        "start_address": draw(st.integers(0, 0xF0000000)),
        "dependency": draw(deps),
        "dependency2": draw(deps),
        "product_id": draw(u16) if has_product else None,
        "product_version": draw(u16) if has_product else None,
        "vector_table": draw(st.sampled_from([None, False, True])),
    }


@SETTINGS
@given(module_args())
def test_build_then_parse_gives_back_every_field(args: dict[str, object]) -> None:
    data = build_module(**args)  # type: ignore[arg-type]
    m = parse_module(data)
    i = m.info
    assert m.ok, [c for c in m.checks() if not c.ok]
    assert i.module_start_address == args["start_address"]
    assert i.module_end_address == args["start_address"] + len(data) - 4  # type: ignore[operator]
    assert i.platform_id == args["platform_id"]
    assert i.module_function == args["function"]
    assert i.module_index == args["index"]
    assert i.module_version == args["version"]
    assert i.flags == 0
    assert i.dependency == (args["dependency"] or ModuleDependency())
    assert i.dependency2 == (args["dependency2"] or ModuleDependency())
    pid = args["product_id"]
    assert m.suffix.product_id == (0xFFFF if pid is None else pid)
    pv = args["product_version"]
    assert m.suffix.product_version == (0xFFFF if pv is None else pv)
    assert m.suffix.suffix_size == 40
    assert m.suffix.sha256 == hashlib.sha256(data[:-38]).digest()
    payload = args["payload"]
    assert isinstance(payload, bytes)
    assert data[m.prefix_offset + 24 : m.prefix_offset + 24 + len(payload)] == payload


@SETTINGS
@given(
    st.integers(300, 6000).map(lambda n: n * 2),
    st.sampled_from([(10, 4, 1), (10, 4, 3), (10, 5, 1), (6, 2, 0)]),
    st.integers(0, 1000),
)
def test_synthetic_module_has_exact_size_and_parses(
    size: int, kind: tuple[int, int, int], seed: int
) -> None:
    pid, fn, idx = kind
    m = synthetic_module(
        size, platform_id=pid, function=fn, index=idx, version=2302,
        start_address=0x08020000, seed=seed,
    )  # fmt: skip
    assert len(m) == size
    parsed = parse_module(m)
    assert parsed.ok
    assert (parsed.info.module_function, parsed.info.module_index) == (fn, idx)


@SETTINGS
@given(module_args(), st.sampled_from([0, 9, 12, 15]), st.integers(0, 9))
def test_compress_then_decompress_is_identity(
    args: dict[str, object], wbits: int, level: int
) -> None:
    data = build_module(**args)  # type: ignore[arg-type]
    out = compress_module(data, level=level, window_bits=wbits)
    parsed = parse_module(out)
    assert parsed.ok and parsed.prefix_offset == 0 and parsed.info.flags & 0x02
    assert decompress_module(out) == data


@SETTINGS
@given(st.lists(module_args(), min_size=1, max_size=4))
def test_combine_then_split_is_identity(arg_list: list[dict[str, object]]) -> None:
    mods = [build_module(**a) for a in arg_list]  # type: ignore[arg-type]
    combined = combine_modules(mods)
    assert split_modules(combined) == mods
    assert parse_module(combined).ok
