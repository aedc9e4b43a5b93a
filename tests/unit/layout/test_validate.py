"""Validation rules: each rule fires on the layout that breaks it, with the right details."""

from __future__ import annotations

from dataclasses import replace

from flashroom.layout import Layout, Region, check_candidate, get_layout, sharing_notes, validate

K = 1024


def _with(lay: Layout, *regions: Region, drop: tuple[str, ...] = ()) -> Layout:
    names = {r.name for r in regions} | set(drop)
    kept = [r for r in lay.regions if r.name not in names]
    return replace(
        lay, name="test", regions=tuple(sorted([*kept, *regions], key=lambda r: r.start))
    )


def _rules(lay: Layout) -> list[str]:
    return [v.rule for v in validate(lay)]


def test_192k_user_and_192k_ota_share_sector_9() -> None:
    res = check_candidate("electron", 192 * K, 192 * K)
    assert not res.valid
    shared = [v for v in res.violations if v.rule == "sector_shared"]
    assert len(shared) == 1
    v = shared[0]
    assert v.address == 0x080A0000
    assert "sector 9 (0x080a0000-0x080c0000)" in v.message
    assert "user_part" in v.message and "ota_scratch" in v.message
    assert "smallest erasable unit" in v.message
    bounds = {(x.region, x.address) for x in res.violations if x.rule == "sector_boundary"}
    assert bounds == {("user_part", 0x080B0000), ("ota_scratch", 0x080B0000)}


def test_overlap_without_declared_sharing_is_reported() -> None:
    lay = get_layout("electron")
    bad = _with(lay, replace(lay.region("factory"), start=0x08080000, end=0x080C0000))
    overlaps = [v for v in validate(bad) if v.rule == "overlap"]
    assert overlaps and overlaps[0].address == 0x08080000
    assert "user_part" in overlaps[0].message


def test_photon_stock_sharing_is_accepted_only_because_it_is_declared() -> None:
    lay = get_layout("photon")
    assert validate(lay) == []
    assert any("factory" in n and "ota_scratch" in n for n in sharing_notes(lay))
    undeclared = _with(
        lay,
        replace(lay.region("ota_scratch"), shares_with=()),
        replace(lay.region("factory"), shares_with=()),
    )
    assert "overlap" in _rules(undeclared)


def test_region_outside_the_chip_is_reported() -> None:
    lay = get_layout("electron", "extended")
    bad = _with(lay, replace(lay.region("ota_scratch"), end=0x08120000))
    v = next(v for v in validate(bad) if v.rule == "outside_chip")
    assert v.region == "ota_scratch" and v.address == 0x08100000


def test_ota_scratch_smaller_than_largest_module_is_reported() -> None:
    lay = get_layout("electron", "extended")
    bad = _with(lay, replace(lay.region("ota_scratch"), end=0x080E0000))
    v = next(v for v in validate(bad) if v.rule == "ota_scratch_capacity")
    assert v.region == "ota_scratch"
    assert "256K" in v.expected and "user_part" in v.expected


def test_missing_ota_scratch_is_reported_on_gen2_only() -> None:
    e = get_layout("electron", "extended")
    assert "ota_scratch_missing" in _rules(_with(e, drop=("ota_scratch",)))
    # Gen3 receives OTA into external flash (spec 7.1): no internal scratch is fine.
    assert not get_layout("argon", "v3.1").has("ota_scratch")
    assert validate(get_layout("argon", "v3.1")) == []


def test_photon_256k_user_part_loses_system_ota() -> None:
    res = check_candidate("photon", 256 * K)
    cap = [v for v in res.violations if v.rule == "ota_scratch_capacity"]
    assert cap, [str(v) for v in res.violations]
    assert "system OTA" in cap[0].message
    assert any("docs/device-os.md#factory-reset" in n for n in res.notes)


def test_moving_the_dct_is_a_protected_region_violation() -> None:
    lay = get_layout("electron")
    bad = _with(lay, replace(lay.region("dct2"), start=0x08008000, end=0x0800C000 - 0x2000))
    v = next(v for v in validate(bad) if v.rule == "protected_region")
    assert v.region == "dct2" and "0x08008000-0x0800c000" in v.expected


def test_moving_the_user_start_moves_the_dynalib_table() -> None:
    lay = get_layout("electron", "extended")
    bad = _with(lay, replace(lay.region("user_part"), start=0x080A0000))
    rules = {v.rule: v for v in validate(bad)}
    assert rules["user_start"].address == 0x080A0000
    assert rules["dynalib_address"].address == 0x080A0018
    assert "0x08080018" in rules["dynalib_address"].expected


def test_dropping_the_user_part_is_reported() -> None:
    lay = get_layout("electron")
    assert "user_part_missing" in _rules(_with(lay, drop=("user_part",)))


def test_empty_region_is_reported() -> None:
    lay = get_layout("electron")
    bad = _with(lay, replace(lay.region("free"), end=0x080E0000))
    assert "empty_region" in _rules(bad)


def test_candidate_of_stock_sizes_is_the_stock_map() -> None:
    for platform in ("electron", "photon", "p1"):
        stock = get_layout(platform)
        cand = check_candidate(platform, stock.user_part.size)
        assert cand.valid, [str(v) for v in cand.violations]
        got = [(r.name, r.start, r.end) for r in cand.layout.regions]
        assert got == [(r.name, r.start, r.end) for r in stock.regions]


def test_candidate_of_256k_on_electron_is_the_extended_map() -> None:
    cand = check_candidate("electron", 256 * K, 256 * K)
    assert cand.valid
    ext = get_layout("electron", "extended")
    assert [(r.name, r.start, r.end) for r in cand.layout.regions] == [
        (r.name, r.start, r.end) for r in ext.regions
    ]
    assert any("factory" in n and "dropped" in n for n in cand.notes)


def test_violation_json_has_the_structured_fields() -> None:
    v = check_candidate("electron", 192 * K, 192 * K).violations[0]
    j = v.to_json()
    assert set(j) >= {"rule", "region", "address", "expected", "message"}
    assert j["address_hex"] == f"0x{j['address']:08x}"
