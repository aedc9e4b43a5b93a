"""Unit tests for dependency checks, placement and pack (ELF, raw, synthetic)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flashroom.errors import LayoutError, ModuleFormatError, ModuleTooLargeError, UsageError
from flashroom.particle.build import device_os_install, synthetic_user_app
from flashroom.particle.deps import check_dependencies
from flashroom.particle.module import parse_module
from flashroom.particle.module_info import ModuleDependency, ModuleInfo, read_module_info_at
from flashroom.particle.pack import PackRequest, pack_module
from flashroom.particle.placement import check_fits

S = 4


def _infos(platform: str = "electron") -> list[ModuleInfo]:
    return [read_module_info_at(m) for m in device_os_install(platform)]


def _with(info: ModuleInfo, **kw: object) -> ModuleInfo:
    from dataclasses import replace

    return replace(info, **kw)  # type: ignore[arg-type]


def test_user_app_dependencies_met_by_full_electron_install() -> None:
    app = read_module_info_at(synthetic_user_app(4096))
    r = check_dependencies(app, _infos())
    assert r.ok and r.unmet == []
    assert "met" in r.message


def test_every_electron_system_part_has_its_dependencies_met() -> None:
    infos = _infos()
    for i in infos:
        assert check_dependencies(i, infos).ok, i


def test_old_system_part_2_is_reported_as_unmet_with_installed_version() -> None:
    infos = [_with(i, module_version=2100) if i.module_index == 2 else i for i in _infos()]
    app = read_module_info_at(synthetic_user_app(4096))
    r = check_dependencies(app, infos)
    assert not r.ok
    assert r.unmet == [ModuleDependency(S, 2, 2302)]
    assert r.findings[0].installed_version == 2100
    assert "SYSTEM_PART idx 2 >= 2302" in r.message


def test_missing_module_is_unmet_and_second_slot_checked_independently() -> None:
    infos = _infos()
    part2 = infos[2]  # idx2: needs SYSTEM_PART 1 >= 2302 and BOOTLOADER >= 1003
    old_boot = [_with(i, module_version=1000) if i.module_function == 2 else i for i in infos]
    r = check_dependencies(part2, old_boot)
    assert r.unmet == [ModuleDependency(2, 0, 1003)]
    # userOptional (OTA path, spec 3.3) skips a BOOTLOADER dependency2
    assert check_dependencies(part2, old_boot, user_optional=True).ok
    r = check_dependencies(part2, [])
    assert len(r.unmet) == 2


def test_user_optional_ignores_user_part_dependencies() -> None:
    app = read_module_info_at(synthetic_user_app(4096))
    assert not check_dependencies(app, []).ok
    assert check_dependencies(app, [], user_optional=True).ok


def test_200k_user_part_refused_on_stock_electron_layout_naming_region() -> None:
    with pytest.raises(ModuleTooLargeError, match="user_part") as e:
        check_fits(size=200 * 1024, start_address=0x08080000, platform="electron",
                   layout="stock", function=5, index=1)  # fmt: skip
    assert "0x08080000" in str(e.value) and "0x080a0000" in str(e.value)
    p = check_fits(size=200 * 1024, start_address=0x08080000, platform="electron",
                   layout="extended", function=5, index=1)  # fmt: skip
    assert (p.region, p.end) == ("user_part", 0x080C0000)


def test_photon_extended_layout_is_refused_with_reason() -> None:
    with pytest.raises(LayoutError):
        check_fits(size=1000, start_address=0x080A0000, platform="photon", layout="extended",
                   function=5, index=1)  # fmt: skip


def test_pack_raw_payload_defaults_start_to_region_and_sets_product() -> None:
    req = PackRequest(platform="electron", function="user", index=1, version=6,
                      depends=("system:2:2302",), product_id=42, product_version=7)  # fmt: skip
    r = pack_module(req, b"\x10\x20" * 100)
    m = parse_module(r.module)
    assert m.ok
    assert m.info.module_start_address == 0x08080000
    assert m.info.dependency == ModuleDependency(S, 2, 2302)
    assert (m.suffix.product_id, m.suffix.product_version) == (42, 7)
    assert r.source == "raw" and r.payload_size == 200


def test_pack_elf_takes_loadable_image(elf: Callable[..., bytes]) -> None:
    image = elf([(0x08080018, b"\xaa" * 16), (0x08080100, b"\xbb" * 8)])
    req = PackRequest(platform="electron", function="user", index=1, version=6)
    r = pack_module(req, image)
    assert r.source == "elf" and r.elf_load_address == 0x08080018
    m = parse_module(r.module)
    body = m.data[24 : 24 + r.payload_size]
    assert body[:16] == b"\xaa" * 16 and body[-8:] == b"\xbb" * 8
    assert body[16:-8] == b"\xff" * (0x100 - 0x18 - 16)


def test_pack_rejects_garbage_elf(elf: Callable[..., bytes]) -> None:
    req = PackRequest(platform="electron", function="user", index=1, version=6)
    with pytest.raises(ModuleFormatError, match="loadable segment"):
        pack_module(req, elf([(0x1000, b"x")], p_type=4))
    with pytest.raises(ModuleFormatError):
        pack_module(req, b"\x7fELF" + b"\x01" * 10)


def test_pack_synthetic_system_part_and_size_refusals() -> None:
    req = PackRequest(platform="electron", function="system", index=3, version=2302,
                      depends=("system:2:110",), synthetic_size=100 * 1024)  # fmt: skip
    r = pack_module(req, None)
    assert len(r.module) == 100 * 1024
    assert parse_module(r.module).info.module_start_address == 0x08060000
    big = PackRequest(platform="electron", function="system", index=3, version=2302,
                      synthetic_size=130 * 1024)  # fmt: skip
    with pytest.raises(ModuleTooLargeError, match="system_part_3"):
        pack_module(big, None)
    with pytest.raises(UsageError, match="either"):
        pack_module(req, b"abc")


def test_pack_finishes_a_linked_device_os_image_in_place_instead_of_wrapping_it() -> None:
    """spec 2.5 post-link: an image that carries its own module_info_t gets SHA-256 then CRC-32
    over the link's placeholder tail; its fields are the linked ones."""
    from flashroom.particle.pack import TAIL_PLACEHOLDER

    finished = synthetic_user_app(4096)
    linked = finished[:-38] + TAIL_PLACEHOLDER  # what objcopy gives before module.mk's step
    req = PackRequest(platform="electron", function="user", index=1, version=6)
    r = pack_module(req, linked)
    assert r.module == finished
    assert r.source == "raw+module_info"
    assert pack_module(req, finished).module == finished  # finishing twice is harmless
    sys_req = PackRequest(platform="electron", function="system", index=1, version=2302)
    part1 = device_os_install()[1]
    assert pack_module(sys_req, part1).module == part1  # module_info at +0x184 (spec 2.2)


def test_pack_refuses_a_linked_image_it_would_have_to_change() -> None:
    finished = synthetic_user_app(4096)
    with pytest.raises(UsageError, match="module_version 6"):
        pack_module(PackRequest(platform="electron", function="user", index=1, version=7), finished)
    other_dep = PackRequest(
        platform="electron", function="user", index=1, version=6, depends=("system:2:9999",)
    )
    with pytest.raises(UsageError, match="dependency"):
        pack_module(other_dep, finished)
    req = PackRequest(platform="electron", function="user", index=1, version=6)
    with pytest.raises(UsageError, match="4096 bytes, but the image has 4092"):
        pack_module(req, finished[:-4])
    garbled = finished[:-38] + bytes(38)
    with pytest.raises(UsageError, match="placeholder"):
        pack_module(req, garbled)
