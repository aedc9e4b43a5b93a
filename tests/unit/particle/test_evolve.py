"""small_change: the synthetic next build of an app (a code insertion, relinked)."""

from __future__ import annotations

import struct

import pytest

from flashroom.errors import UsageError
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.evolve import small_change
from flashroom.particle.module import parse_module
from flashroom.particle.module_info import read_module_info_at


def test_next_build_is_a_valid_module_one_insert_larger_and_one_version_up() -> None:
    old = synthetic_user_app(64 * 1024, version=5, seed=3)
    new = small_change(old, insert=128)
    mod = parse_module(new)
    assert all(c.ok for c in mod.checks()), [c for c in mod.checks() if not c.ok]
    assert len(new) == len(old) + 128
    a, b = read_module_info_at(old, 0), read_module_info_at(new, 0)
    assert b.module_version == a.module_version + 1
    assert b.module_end_address == a.module_end_address + 128
    assert (b.dependency, b.platform_id) == (a.dependency, a.platform_id)


def test_pointers_past_the_insertion_move_and_the_ones_before_do_not() -> None:
    old = synthetic_user_app(32 * 1024, version=5, seed=4)
    new = small_change(old, insert=64, at=0.5)
    start = read_module_info_at(old, 0).module_start_address
    cut = 24 + ((len(old) - 24 - 44) // 2 // 4) * 4
    moved = kept = 0
    for off in range(24, cut, 4):
        (w,) = struct.unpack_from("<I", old, off)
        (w2,) = struct.unpack_from("<I", new, off)
        if start + cut <= (w & ~1) < start + len(old):
            assert w2 == w + 64
            moved += 1
        else:
            assert w2 == w
            kept += 1
    assert moved > 0 and kept > 0


def test_small_change_refuses_odd_inserts() -> None:
    with pytest.raises(UsageError):
        small_change(synthetic_user_app(8 * 1024), insert=3)
