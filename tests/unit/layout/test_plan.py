"""Planner: smallest valid layout that fits, what it gives up, refusals with reasons."""

from __future__ import annotations

import pytest

from flashroom.errors import UsageError
from flashroom.layout import candidate_layout, gives_up, plan, validate

K = 1024


def test_electron_200k_gets_extended_and_gives_up_factory_reset() -> None:
    p = plan("electron", 200 * K)
    assert p.fits and p.layout is not None
    assert p.layout.name == "extended"
    assert p.max_app_size == 256 * K
    assert p.system_ota_capacity == 256 * K
    assert any(g.startswith("factory reset") for g in p.gives_up)
    j = p.to_json()
    assert j["layout"] == "extended" and j["max_app_size"] == 262144
    assert j["user_part"]["dynalib_address"] == 0x08080018


@pytest.mark.parametrize("size", [1, 100 * K, 128 * K])
def test_electron_stock_is_chosen_whenever_it_fits(size: int) -> None:
    p = plan("electron", size)
    assert p.layout is not None and p.layout.name == "stock"
    assert p.gives_up == ()
    assert p.max_app_size == 128 * K


def test_app_size_is_the_module_file_size_so_128k_plus_one_needs_extended() -> None:
    p = plan("electron", 128 * K + 1)
    assert p.layout is not None and p.layout.name == "extended"


def test_electron_300k_does_not_fit_and_says_why() -> None:
    p = plan("electron", 300 * K)
    assert not p.fits and p.layout is None
    assert p.max_app_size == 256 * K
    assert "256K" in p.reason and "OTA scratch" in p.reason
    assert p.to_json()["layout"] is None


@pytest.mark.parametrize("platform", ["photon", "p1"])
def test_photon_200k_does_not_fit_and_explains_system_ota(platform: str) -> None:
    p = plan(platform, 200 * K)
    assert not p.fits
    assert "system" in p.reason and "docs/device-os.md#photon-ota" in p.reason
    assert "sector 11" in p.reason


def test_gen3_200k_picks_v3_1() -> None:
    p = plan("boron", 200 * K)
    assert p.layout is not None and p.layout.name == "v3.1"


def test_non_positive_app_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        plan("electron", 0)


def test_extended_gives_up_factory_only_and_lists_the_spare_sector_as_a_gain() -> None:
    from flashroom.layout import gains, get_layout

    assert gives_up(get_layout("electron")) == () and gains(get_layout("electron")) == ()
    gu = gives_up(get_layout("electron", "extended"))
    assert len(gu) == 1 and "0x080a0000-0x080c0000" in gu[0]
    assert not any("0x080e0000" in g for g in gu)  # sector 11 is not a loss
    (gain,) = gains(get_layout("electron", "extended"))
    assert "0x080e0000-0x08100000" in gain and "ota_scratch" in gain
    p = plan("electron", 200 * K)
    assert p.gains == (gain,) and p.to_json()["gains"] == [gain]


def test_candidate_keeps_factory_while_it_still_fits() -> None:
    # A smaller user part leaves the Electron factory slot and OTA scratch where they are.
    lay = candidate_layout("electron", 64 * K)
    assert lay.region("factory").start == 0x080A0000
    assert lay.region("ota_scratch").start == 0x080C0000
    # ...but a 64K region does not own whole sectors: only that rule fires.
    assert [(v.rule, v.region, v.address) for v in validate(lay)] == [
        ("sector_boundary", "user_part", 0x08090000)
    ]


def test_candidate_default_ota_size_is_largest_module_capped_at_flash_end() -> None:
    lay = candidate_layout("photon", 256 * K)
    assert lay.region("ota_scratch").range.start == 0x080E0000
    assert lay.region("ota_scratch").range.end == 0x08100000
