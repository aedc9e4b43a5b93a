"""The Device OS profiles: module_bounds_t tables per platform and profile (spec 1.5, 9)."""

from __future__ import annotations

import pytest

from flashroom.deviceos import GEN2_PLATFORMS, PLATFORMS, default_profile, get_platform, get_profile
from flashroom.errors import EmulatorError, LayoutError
from flashroom.layout import get_layout


def test_profile_bounds_match_spec_tables() -> None:
    st = get_profile("electron", "stock")
    assert [b.name for b in st.bounds][-1] == "module_factory"
    u = st.find_module_bounds(5, 1)
    assert u is not None and u.name == "module_user"  # first match, never factory
    assert (u.end_address, u.maximum_size) == (0x080A0000, 0x20000)
    ext = get_profile("electron", "extended")
    u = ext.find_module_bounds(5, 1)
    assert u is not None and (u.end_address, u.maximum_size) == (0x080C0000, 0x40000)
    assert (ext.ota_bounds.end_address, ext.ota_bounds.maximum_size) == (0x08100000, 0x40000)
    assert all(b.store != 1 for b in ext.bounds)
    ph = get_profile("photon")
    assert (ph.ota_bounds.start_address, ph.ota_bounds.end_address) == (0x080C0000, 0x08100000)
    with pytest.raises(EmulatorError, match="Electron only"):
        get_profile("photon", "extended")


@pytest.mark.parametrize(
    ("platform", "profile"),
    [("electron", "stock"), ("electron", "extended"), ("photon", "stock"), ("p1", "stock")],
)
def test_profile_bounds_agree_with_layout_regions(platform: str, profile: str) -> None:
    lay = get_layout(platform, profile)
    prof = get_profile(platform, profile)
    names = {
        "module_bootloader": "bootloader",
        "module_system_part1": "system_part_1",
        "module_system_part2": "system_part_2",
        "module_system_part3": "system_part_3",
        "module_user": "user_part",
        "module_factory": "factory",
    }
    for b in prof.bounds:
        r = lay.region(names[b.name])
        assert (r.start, r.end) == (b.start_address, b.end_address), b.name
        assert (r.module_function, r.module_index) == (b.module_function, b.module_index)
    ota = lay.region("ota_scratch")
    assert (ota.start, ota.end) == (prof.ota_bounds.start_address, prof.ota_bounds.end_address)
    assert {r.name for r in lay.regions if r.name == "factory"} == (
        {"factory"} if prof.module_factory else set()
    )


def test_photon_extended_is_refused_as_a_layout_error_and_an_emulator_error() -> None:
    for cls in (LayoutError, EmulatorError):
        with pytest.raises(cls, match=r"'extended' is Electron only: .*device-os.md#photon-ota"):
            get_profile("photon", "extended")


def test_platform_lookup_accepts_any_case_and_names_the_known_ones() -> None:
    assert get_platform("Electron").platform_id == 10
    with pytest.raises(LayoutError, match="unknown platform 'nope': expected one of photon, p1"):
        get_platform("nope")


def test_gen3_maps_are_not_emulated_devices() -> None:
    with pytest.raises(EmulatorError, match="comparison-only"):
        get_profile("argon", "stock", gen2_only=True)
    assert get_profile("argon", "v3.1").module_ota is None


@pytest.mark.parametrize("platform", GEN2_PLATFORMS)
def test_default_profile_is_the_largest_layout_and_exists(platform: str) -> None:
    name = default_profile(platform)
    assert name == PLATFORMS[platform].layouts[-1]
    sizes = [get_profile(platform, n).user_bounds.maximum_size for n in PLATFORMS[platform].layouts]
    assert get_profile(platform, name).user_bounds.maximum_size == max(sizes)


@pytest.mark.parametrize("platform", GEN2_PLATFORMS)
def test_every_gen2_profile_has_an_ota_scratch_at_0x080c0000(platform: str) -> None:
    # spec 4.1 #1: HAL_OTA_FlashAddress() is 0x080C0000 on all three platforms
    for name in PLATFORMS[platform].layouts:
        prof = get_profile(platform, name)
        assert prof.ota_flash_address == 0x080C0000
        assert prof.ota_flash_length == prof.ota_bounds.end_address - 0x080C0000


def test_extended_user_dependency_gates_on_the_extended_system_version() -> None:
    ext = get_profile("electron", "extended")
    st = get_profile("electron", "stock")
    assert ext.user_dependency == (4, 2, ext.system_version) and ext.system_version == 2350
    assert st.user_dependency == (4, 2, 2302)
