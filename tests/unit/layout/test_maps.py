"""Platform maps: the stock and extended layouts match the spec tables (spec 1.2-1.6, 7.1, 9)."""

from __future__ import annotations

import pytest

from flashroom.errors import LayoutError
from flashroom.layout import (
    PLATFORMS,
    REGION_NAMES,
    all_layouts,
    get_layout,
    get_platform,
    validate,
)

K = 1024

# (name, start, end) from spec 1.3 (Electron) and spec 1.2 (Photon/P1), transcribed by hand.
ELECTRON_STOCK = [
    ("bootloader", 0x08000000, 0x08004000),
    ("dct1", 0x08004000, 0x08008000),
    ("dct2", 0x08008000, 0x0800C000),
    ("eeprom1", 0x0800C000, 0x08010000),
    ("eeprom2", 0x08010000, 0x08020000),
    ("system_part_1", 0x08020000, 0x08040000),
    ("system_part_2", 0x08040000, 0x08060000),
    ("system_part_3", 0x08060000, 0x08080000),
    ("user_part", 0x08080000, 0x080A0000),
    ("factory", 0x080A0000, 0x080C0000),
    ("ota_scratch", 0x080C0000, 0x080E0000),
    ("free", 0x080E0000, 0x08100000),
]
PHOTON_STOCK = [
    ("bootloader", 0x08000000, 0x08004000),
    ("dct1", 0x08004000, 0x08008000),
    ("dct2", 0x08008000, 0x0800C000),
    ("eeprom1", 0x0800C000, 0x08010000),
    ("eeprom2", 0x08010000, 0x08020000),
    ("system_part_1", 0x08020000, 0x08060000),
    ("system_part_2", 0x08060000, 0x080A0000),
    ("user_part", 0x080A0000, 0x080C0000),
    ("ota_scratch", 0x080C0000, 0x08100000),
    ("factory", 0x080E0000, 0x08100000),
]


def _triples(name: str, platform: str) -> list[tuple[str, int, int]]:
    return [(r.name, r.start, r.end) for r in get_layout(platform, name).regions]


def test_electron_stock_matches_spec_1_3() -> None:
    assert _triples("stock", "electron") == ELECTRON_STOCK


@pytest.mark.parametrize("platform", ["photon", "p1"])
def test_photon_and_p1_stock_match_spec_1_2(platform: str) -> None:
    assert _triples("stock", platform) == PHOTON_STOCK


def test_platform_ids_come_from_the_registry() -> None:
    assert {p: PLATFORMS[p].platform_id for p in PLATFORMS} == {
        "photon": 6,
        "p1": 8,
        "electron": 10,
        "argon": 12,
        "boron": 13,
    }
    assert get_layout("p1").platform_id == 8


def test_electron_extended_is_spec_9_target() -> None:
    ext = get_layout("electron", "extended")
    assert ext.region("user_part").range.start == 0x08080000
    assert ext.region("user_part").range.end == 0x080C0000
    assert ext.region("ota_scratch").start == 0x080C0000
    assert ext.region("ota_scratch").end == 0x08100000
    assert not ext.has("factory")
    assert not ext.has("free")
    assert ext.sector_indices(ext.user_part) == [8, 9]
    assert ext.sector_indices(ext.region("ota_scratch")) == [10, 11]
    assert ext.dynalib_address == 0x08080018
    assert ext.max_app_size == 256 * K


def test_extended_keeps_everything_below_the_user_part_stock() -> None:
    stock, ext = get_layout("electron"), get_layout("electron", "extended")
    below = [r for r in stock.regions if r.end <= 0x08080000]
    assert below == [r for r in ext.regions if r.end <= 0x08080000]


def test_electron_system_parts_are_named_by_module_index_spec_1_4() -> None:
    lay = get_layout("electron")
    assert lay.region_for_module(4, 1).name == "system_part_1"
    assert lay.region_for_module(4, 1).start == 0x08020000
    assert lay.region_for_module(4, 3).start == 0x08060000


def test_region_for_user_part_is_never_the_factory_slot() -> None:
    lay = get_layout("electron")
    assert lay.region_for_module(5, 1).name == "user_part"
    assert lay.region_for_module(5, 1, store="factory").name == "factory"
    assert get_layout("electron", "extended").region_for_module(5, 1).size == 256 * K


def test_region_for_unknown_module_raises_layout_error() -> None:
    with pytest.raises(LayoutError, match="function 5 index 2"):
        get_layout("electron").region_for_module(5, 2)


def test_region_lookup_names_the_missing_region() -> None:
    with pytest.raises(LayoutError, match="'factory'"):
        get_layout("electron", "extended").region("factory")


def test_photon_ota_scratch_overlaps_factory_as_declared_sharing() -> None:
    lay = get_layout("photon")
    scratch, fac = lay.region("ota_scratch"), lay.region("factory")
    assert scratch.range.contains_range(fac.range)
    assert "factory" in scratch.shares_with
    assert [r.name for r in lay.regions_at(0x080F0000)] == ["ota_scratch", "factory"]


def test_photon_has_no_extended_layout_and_says_why() -> None:
    with pytest.raises(LayoutError, match=r"docs/device-os\.md#photon-ota"):
        get_layout("photon", "extended")


def test_unknown_platform_is_a_layout_error() -> None:
    with pytest.raises(LayoutError, match="unknown platform"):
        get_platform("xenon")


@pytest.mark.parametrize("platform", ["argon", "boron"])
def test_gen3_maps_before_and_after_3_1(platform: str) -> None:
    old, new = get_layout(platform, "stock"), get_layout(platform, "v3.1")
    assert old.chip.name == "nrf52840"
    assert (old.user_part.start, old.user_part.end) == (0xD4000, 0xF4000)
    assert (new.user_part.start, new.user_part.end) == (0xB4000, 0xF4000)
    assert new.region_for_module(5, 2).name == "user_part"
    assert new.region_for_module(5, 1).name == "user_part_compat"
    assert new.region("system_part_1").end == 0xB4000


@pytest.mark.parametrize("lay", all_layouts(), ids=lambda x: f"{x.platform}-{x.name}")
def test_every_registry_layout_is_valid(lay: object) -> None:
    assert validate(lay) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("lay", all_layouts(), ids=lambda x: f"{x.platform}-{x.name}")
def test_every_sector_of_every_registry_layout_has_an_owner(lay: object) -> None:
    from flashroom.layout import Layout

    assert isinstance(lay, Layout)
    for sec in lay.chip.sectors:
        assert lay.regions_at(sec.start), f"sector {sec.index} has no region"
    assert all(r.name in REGION_NAMES for r in lay.regions)


def test_to_json_contract_for_extended() -> None:
    j = get_layout("electron", "extended").to_json()
    assert j["platform"] == "electron"
    assert j["platform_id"] == 10
    assert j["layout"] == "extended"
    up = next(r for r in j["regions"] if r["name"] == "user_part")
    assert {k: up[k] for k in ("name", "start", "end", "size", "sectors")} == {
        "name": "user_part",
        "start": 134742016,
        "end": 135004160,
        "size": 262144,
        "sectors": [8, 9],
    }


def test_regions_know_their_sector_indices_once_in_a_layout() -> None:
    lay = get_layout("electron")
    assert lay.region("bootloader").sectors == (0,)
    assert lay.region("eeprom2").sectors == (4,)
    assert lay.region("free").sectors == (11,)
    assert get_layout("photon").region("ota_scratch").sectors == (10, 11)
    assert get_layout("argon").region("bootloader").sectors == tuple(range(244, 256))
