"""Audit: the device's dependency rule (spec 3.1 ``validate_module_dependencies``, 3.2).

Device OS 2.3.1 (ota_flash_hal_stm32f2xx.cpp:103-202): when ``dependency.module_function`` is
NONE the module is valid and ``dependency2`` is never looked at; otherwise ``dependency`` and
then ``dependency2`` must each be met by the installed module with the same function and index
at a version >= the required one. With ``userOptional`` a USER_PART is valid outright and a
BOOTLOADER ``dependency2`` is skipped.
"""

from __future__ import annotations

from flashroom.particle.deps import check_dependencies
from flashroom.particle.module_info import ModuleDependency, ModuleInfo

NONE = ModuleDependency()


def info(
    function: int,
    index: int,
    version: int,
    dep: ModuleDependency = NONE,
    dep2: ModuleDependency = NONE,
) -> ModuleInfo:
    return ModuleInfo(0x08020000, 0x08060000, 0, 0, version, 10, function, index, dep, dep2)


def test_empty_first_slot_makes_the_module_valid_even_with_an_unmet_second_slot() -> None:
    mod = info(4, 2, 2302, NONE, ModuleDependency(2, 0, 1003))
    res = check_dependencies(mod, [])  # no bootloader installed at all
    assert res.ok
    assert res.unmet == []
    [finding] = res.findings
    assert finding.slot == 2 and finding.met and finding.installed_version is None


def test_second_slot_is_checked_when_the_first_is_set() -> None:
    mod = info(4, 2, 2302, ModuleDependency(4, 1, 2302), ModuleDependency(2, 0, 1003))
    installed = [info(4, 1, 2302), info(2, 0, 1002)]
    res = check_dependencies(mod, installed)
    assert not res.ok
    assert res.unmet == [ModuleDependency(2, 0, 1003)]
    assert check_dependencies(mod, [info(4, 1, 2302), info(2, 0, 1003)]).ok


def test_first_slot_unmet_and_version_equal_is_met() -> None:
    mod = info(5, 1, 6, ModuleDependency(4, 2, 2302))
    assert not check_dependencies(mod, [info(4, 2, 2301)]).ok
    assert not check_dependencies(mod, [info(4, 1, 9999)]).ok  # wrong index
    assert check_dependencies(mod, [info(4, 2, 2302)]).ok


def test_user_optional_skips_user_parts_and_a_bootloader_second_slot() -> None:
    user = info(5, 1, 6, ModuleDependency(4, 2, 2302))
    assert check_dependencies(user, [], user_optional=True).ok
    assert not check_dependencies(user, [], user_optional=False).ok
    part2 = info(4, 2, 2302, ModuleDependency(4, 1, 2302), ModuleDependency(2, 0, 1003))
    assert check_dependencies(part2, [info(4, 1, 2302)], user_optional=True).ok
    assert not check_dependencies(part2, [info(4, 1, 2302)], user_optional=False).ok
