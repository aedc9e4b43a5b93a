"""Hypothesis: the validator never accepts an overlapping or sector-splitting layout; every plan
validates; candidates from whole-sector sizes are judged only by capacity and the chip."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from flashroom.geometry import STM32F205XG
from flashroom.layout import (
    PLATFORMS,
    Layout,
    Region,
    all_layouts,
    candidate_layout,
    get_layout,
    plan,
    validate,
)

SETTINGS = settings(max_examples=150, deadline=None)
CHIP = STM32F205XG
GRAIN = 0x1000  # 4K steps: finer than every STM32F205 sector, so edges can split sectors
NAMES = ["user_part", "factory", "ota_scratch", "free", "system_part_3"]


@st.composite
def random_regions(draw: st.DrawFn) -> Layout:
    """A few regions with arbitrary 4K-aligned edges in the upper half of flash."""
    n = draw(st.integers(2, 4))
    names = draw(st.permutations(NAMES))[:n]
    regions = []
    lo, hi = 0x08080000 // GRAIN, 0x08100000 // GRAIN
    for name in names:
        a = draw(st.integers(lo, hi - 1))
        b = draw(st.integers(a + 1, hi))
        regions.append(Region(name, a * GRAIN, b * GRAIN))
    base = get_layout("electron")
    fixed = [r for r in base.regions if r.end <= 0x08080000]
    return replace(base, name="random", regions=tuple(fixed + regions))


def _has_overlap(lay: Layout) -> bool:
    return any(
        a.range.overlaps(b.range) and not (a.name in b.shares_with or b.name in a.shares_with)
        for a, b in combinations(lay.regions, 2)
    )


def _splits_a_sector(lay: Layout) -> bool:
    return any(not lay.chip.is_sector_aligned(r.range) for r in lay.regions)


def _shares_a_sector(lay: Layout) -> bool:
    for sec in lay.chip.sectors:
        owners = [r for r in lay.regions if sec.range.overlaps(r.range)]
        for a, b in combinations(owners, 2):
            if not (a.name in b.shares_with or b.name in a.shares_with):
                return True
    return False


@SETTINGS
@given(random_regions())
def test_validator_never_accepts_overlap_or_sector_split(lay: Layout) -> None:
    violations = validate(lay)
    rules = {v.rule for v in violations}
    if _has_overlap(lay):
        assert "overlap" in rules
    if _splits_a_sector(lay):
        assert "sector_boundary" in rules
    if _shares_a_sector(lay):
        assert rules & {"sector_shared", "overlap"}
    if not violations:
        assert not (_has_overlap(lay) or _splits_a_sector(lay) or _shares_a_sector(lay))


@SETTINGS
@given(
    st.sampled_from(all_layouts()),
    st.data(),
)
def test_moving_one_edge_of_a_valid_layout_off_its_sector_is_rejected(
    lay: Layout, data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(lay.regions) - 1))
    r = lay.regions[i]
    smallest = min(s.size for s in lay.chip.sectors)
    # Strictly less than every sector: the moved edge lands inside a sector, never on a boundary.
    delta = data.draw(st.integers(1, smallest // 4 - 1)) * 4
    moved = data.draw(
        st.sampled_from([replace(r, end=r.end - delta), replace(r, start=r.start + delta)])
    )
    bad = replace(lay, regions=tuple(moved if j == i else x for j, x in enumerate(lay.regions)))
    assert any(v.rule == "sector_boundary" for v in validate(bad))


@SETTINGS
@given(
    st.sampled_from(sorted(PLATFORMS)),
    st.integers(1, 1024 * 1024),
)
def test_every_plan_validates_and_holds_the_app(platform: str, app_size: int) -> None:
    p = plan(platform, app_size)
    if p.layout is not None:
        assert validate(p.layout) == []
        assert p.layout.max_app_size >= app_size
        # smallest: no earlier valid layout of the platform would have held the app
        for name in PLATFORMS[platform].layouts:
            if name == p.layout.name:
                break
            earlier = get_layout(platform, name)
            assert validate(earlier) != [] or earlier.max_app_size < app_size
    else:
        valid = [get_layout(platform, n) for n in PLATFORMS[platform].layouts]
        assert all(lay.max_app_size < app_size for lay in valid if not validate(lay))


@SETTINGS
@given(st.integers(1, 6), st.one_of(st.none(), st.integers(1, 6)))
def test_electron_candidates_of_whole_sectors_never_share_a_sector(
    user_sectors: int, ota_sectors: int | None
) -> None:
    size = 128 * 1024
    lay = candidate_layout(
        "electron", user_sectors * size, None if ota_sectors is None else ota_sectors * size
    )
    rules = {v.rule for v in validate(lay)}
    assert not rules & {"sector_shared", "sector_boundary", "overlap", "protected_region"}
    assert lay.user_part.start == 0x08080000
