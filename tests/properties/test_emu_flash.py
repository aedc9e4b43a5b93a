"""Hypothesis properties of NorFlash physics (spec 8.6)."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from flashroom.emu.flash import NorFlash
from flashroom.errors import PowerCut

BASE = 0x08004000  # sector 1, 16 KB

writes = st.lists(st.tuples(st.integers(0, 0x3F00), st.binary(min_size=1, max_size=64)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(writes=writes, cut=st.one_of(st.none(), st.integers(0, 200)), torn=st.booleans())
def test_programming_never_sets_a_bit(
    writes: list[tuple[int, bytes]], cut: int | None, torn: bool
) -> None:
    f = NorFlash()
    if cut is not None:
        f.arm_fault(cut, torn=torn, seed=cut)
    for off, data in writes:
        before = f.read(BASE, 0x4000)
        with contextlib.suppress(PowerCut):
            f.program(BASE + off, data)
        after = f.read(BASE, 0x4000)
        b = int.from_bytes(before, "little")
        a = int.from_bytes(after, "little")
        assert a & ~b == 0  # no bit went 0 -> 1
        # where the write completed, the result is exactly old AND data
        if not f.armed and cut is None:
            seg = after[off : off + len(data)]
            old = before[off : off + len(data)]
            assert seg == bytes(x & y for x, y in zip(old, data, strict=True))


@settings(max_examples=30, deadline=None)
@given(writes=writes, sector=st.integers(1, 3))
def test_erase_sets_whole_sector_to_ff(writes: list[tuple[int, bytes]], sector: int) -> None:
    f = NorFlash()
    start = 0x08000000 + sector * 0x4000
    for off, data in writes:
        f.program(start + off, data)
    neighbour = f.read(start - 0x4000, 0x4000)
    f.erase_sector(sector)
    assert f.read(start, 0x4000) == b"\xff" * 0x4000
    assert f.read(start - 0x4000, 0x4000) == neighbour
