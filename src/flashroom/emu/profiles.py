"""Device OS behaviour profiles as data: ``module_bounds_t`` tables and what the firmware does.

Two profiles:

* ``stock``: Device OS v2.3.1 exactly (spec 1.5 tables, factory slot re-registered every boot,
  automatic factory fallback). Photon, P1 and Electron.
* ``extended``: spec 9 changes 1, 2 and 5 on Electron only:
  1. user bounds max 0x40000 end 0x080C0000, OTA bounds max 0x40000 end 0x08100000;
  2. factory slot retired: slot 0 cleared once and never re-registered, no factory fallback in
     ``HAL_Core_Validate_User_Module``, ``module_factory`` removed from the searched array;
  5. the modified system modules carry a distinct version (:data:`EXTENDED_SYSTEM_VERSION`), and a
     256K user part can depend on it so stock firmware refuses to run it (safe mode).
"""

from __future__ import annotations

from dataclasses import dataclass

from flashroom.errors import EmulatorError
from flashroom.particle.module_info import (
    ModuleDependency,
    ModuleFunction,
    ModuleStore,
    PlatformId,
)
from flashroom.ranges import AddrRange

#: spec 9 change 5: the extended system modules' ``module_version``. Spec-silent value: 2.3.1's
#: 2302 plus 48 ("2.3.1-ext"), larger than every stock 2.3.x value so ">= 2302" deps still hold.
EXTENDED_SYSTEM_VERSION = 2350

#: spec 9 change 5: the dependency a 256K user part carries so that stock firmware (2302) puts
#: it in safe mode instead of running it with 128K OTA limits (SYSTEM_PART idx 2 >= extended).
EXTENDED_USER_DEPENDENCY = ModuleDependency(ModuleFunction.SYSTEM_PART, 2, EXTENDED_SYSTEM_VERSION)

#: Bootloader module versions by copy semantics (spec 4.5): legacy <= 1002 clears the slot before
#: copying, resumable >= 1003 after. The legacy variant installs a 1002 bootloader.
LEGACY_BOOTLOADER_VERSION = 1002
BOOTLOADER_VARIANTS = ("resumable", "legacy")
PROFILES = ("stock", "extended")
PLATFORMS = {"photon": PlatformId.PHOTON, "p1": PlatformId.P1, "electron": PlatformId.ELECTRON}

CORE_FW_ADDRESS = 0x08020000  # spec 1.1: where the bootloader jumps
FLASH_END = 0x08100000  # spec 3.1: FLASH_CheckValidAddressRange upper bound
FACTORY_SLOT_LENGTH = 0x20000  # spec 5.1: registered length is the whole region


@dataclass(frozen=True)
class ModuleBounds:
    """``module_bounds_t`` (spec 1.5, ota_flash_hal.h:47-57)."""

    name: str
    maximum_size: int
    start_address: int
    end_address: int
    module_function: int
    module_index: int
    store: int

    @property
    def range(self) -> AddrRange:
        return AddrRange(self.start_address, self.end_address)


def _b(name: str, size: int, start: int, end: int, fn: int, ix: int, store: int) -> ModuleBounds:
    return ModuleBounds(name, size, start, end, fn, ix, store)


_BL, _SP, _UP, _NONE = (
    ModuleFunction.BOOTLOADER,
    ModuleFunction.SYSTEM_PART,
    ModuleFunction.USER_PART,
    ModuleFunction.NONE,
)
_M, _F, _T = ModuleStore.MAIN, ModuleStore.FACTORY, ModuleStore.SCRATCHPAD

# spec 1.5: photon/ota_module_bounds.c:4-11,21-27
_PHOTON_BOOT = _b("module_bootloader", 0x4000, 0x08000000, 0x08004000, _BL, 0, _M)
_PHOTON_P1 = _b("module_system_part1", 0x40000, 0x08020000, 0x08060000, _SP, 1, _M)
_PHOTON_P2 = _b("module_system_part2", 0x40000, 0x08060000, 0x080A0000, _SP, 2, _M)
_PHOTON_USER = _b("module_user", 0x20000, 0x080A0000, 0x080C0000, _UP, 1, _M)
_PHOTON_FAC = _b("module_factory", 0x20000, 0x080E0000, 0x08100000, _UP, 1, _F)
_PHOTON_OTA = _b("module_ota", 0x40000, 0x080C0000, 0x08100000, _NONE, 0, _T)

# spec 1.5: electron/ota_module_bounds.c:4-12,22-28
_EL_BOOT = _b("module_bootloader", 0x4000, 0x08000000, 0x08004000, _BL, 0, _M)
_EL_P1 = _b("module_system_part1", 0x20000, 0x08020000, 0x08040000, _SP, 1, _M)
_EL_P2 = _b("module_system_part2", 0x20000, 0x08040000, 0x08060000, _SP, 2, _M)
_EL_P3 = _b("module_system_part3", 0x20000, 0x08060000, 0x08080000, _SP, 3, _M)
_EL_USER = _b("module_user", 0x20000, 0x08080000, 0x080A0000, _UP, 1, _M)
_EL_FAC = _b("module_factory", 0x20000, 0x080A0000, 0x080C0000, _UP, 1, _F)
_EL_OTA = _b("module_ota", 0x20000, 0x080C0000, 0x080E0000, _NONE, 0, _T)
# spec 9 change 1: ota_module_bounds.c:10,12 widened
_EXT_USER = _b("module_user", 0x40000, 0x08080000, 0x080C0000, _UP, 1, _M)
_EXT_OTA = _b("module_ota", 0x40000, 0x080C0000, 0x08100000, _NONE, 0, _T)


@dataclass(frozen=True)
class Profile:
    """What one platform's firmware does under one profile.

    Attributes:
        platform: ``photon``, ``p1`` or ``electron``.
        platform_id: PLATFORM_ID compiled into the firmware.
        name: ``stock`` or ``extended``.
        bounds: the array ``find_module_bounds`` searches, in order (first match wins).
        module_ota: the OTA scratch bounds (``HAL_OTA_FlashAddress``/``FlashLength``).
        module_factory: the factory bounds (None when retired).
        user_loc: ``USER_FIRMWARE_IMAGE_LOCATION``.
        fac_addr: ``INTERNAL_FLASH_FAC_ADDRESS`` (the bootloader's compiled-in default source).
        registers_factory_slot: ``HAL_Core_Config`` re-registers slot 0 every boot (spec 5.1).
        clears_factory_slot: the extended firmware clears slot 0 once (spec 9 change 2).
        factory_fallback: ``HAL_Core_Validate_User_Module``'s factory fallback (spec 3.2 #3.5).
        validates_bootloader: ``HAL_Core_Validate_Modules(1)`` at boot (Photon/P1, spec 3.2 #2).
        dct_app_offset: physical offset of the app DCT inside a DCT sector (spec 4.3).
        system_version: version given to the system modules of a fresh device.
    """

    platform: str
    platform_id: int
    name: str
    bounds: tuple[ModuleBounds, ...]
    module_ota: ModuleBounds
    module_factory: ModuleBounds | None
    user_loc: int
    fac_addr: int
    registers_factory_slot: bool
    clears_factory_slot: bool
    factory_fallback: bool
    validates_bootloader: bool
    dct_app_offset: int
    system_version: int

    def find_module_bounds(self, function: int, index: int) -> ModuleBounds | None:
        """First entry with that function and index (spec 1.5, stm32f2xx.cpp:64-71)."""
        for b in self.bounds:
            if b.module_function == function and b.module_index == index:
                return b
        return None

    @property
    def user_bounds(self) -> ModuleBounds:
        b = self.find_module_bounds(_UP, 1)
        if b is None:  # pragma: no cover - every profile has one
            raise EmulatorError("profile without module_user")
        return b

    @property
    def system_bounds(self) -> tuple[ModuleBounds, ...]:
        return tuple(b for b in self.bounds if b.module_function == _SP)

    @property
    def ota_flash_length(self) -> int:
        """``HAL_OTA_FlashLength()`` = ``module_ota.maximum_size`` (spec 4.1 #1)."""
        return self.module_ota.maximum_size


def get_profile(platform: str, name: str = "stock") -> Profile:
    """The profile for ``platform`` (photon, p1, electron) and ``name`` (stock, extended).

    Raises:
        EmulatorError: unknown platform or profile, or extended asked for Photon/P1 (spec 5.4 #5:
            a 256K user part is impossible there without re-planning).
    """
    key = platform.lower()
    if key not in PLATFORMS:
        raise EmulatorError(
            f"unknown platform {platform!r}: expected one of {', '.join(PLATFORMS)}"
        )
    if name not in PROFILES:
        raise EmulatorError(f"unknown profile {name!r}: expected one of {', '.join(PROFILES)}")
    pid = int(PLATFORMS[key])
    if key == "electron":
        if name == "stock":
            return Profile(
                key,
                pid,
                name,
                (_EL_BOOT, _EL_P1, _EL_P2, _EL_P3, _EL_USER, _EL_FAC),
                _EL_OTA,
                _EL_FAC,
                user_loc=0x08080000,
                fac_addr=0x080A0000,  # spec 1.3: FAC = user + 128K on Electron
                registers_factory_slot=True,
                clears_factory_slot=False,
                factory_fallback=True,
                validates_bootloader=False,  # spec 3.2 #2: skipped on Electron
                dct_app_offset=8,  # spec 8.1
                system_version=2302,
            )
        return Profile(
            key,
            pid,
            name,
            (_EL_BOOT, _EL_P1, _EL_P2, _EL_P3, _EXT_USER),  # spec 9 change 2: no factory
            _EXT_OTA,
            None,
            user_loc=0x08080000,
            # spec 9 "Bootloader: no change is strictly required": its compiled-in default
            # (0x080A0000 -> 0x08080000) remains and fails harmlessly (spec 5.4 #1).
            fac_addr=0x080A0000,
            registers_factory_slot=False,
            clears_factory_slot=True,
            factory_fallback=False,
            validates_bootloader=False,
            dct_app_offset=8,
            system_version=EXTENDED_SYSTEM_VERSION,
        )
    if name == "extended":
        raise EmulatorError(
            f"profile 'extended' is Electron only: on {key} the user slot is 128K before the "
            "OTA scratch and sector 11 is both factory area and OTA scratch (spec 5.4 #5)"
        )
    return Profile(
        key,
        pid,
        name,
        (_PHOTON_BOOT, _PHOTON_P1, _PHOTON_P2, _PHOTON_USER, _PHOTON_FAC),
        _PHOTON_OTA,
        _PHOTON_FAC,
        user_loc=0x080A0000,
        fac_addr=0x080E0000,  # spec 1.2: FAC = user + 256K on Photon/P1
        # spec 5.1: P1 runs sFLASH_Init() instead and never registers slot 0
        registers_factory_slot=key == "photon",
        clears_factory_slot=False,
        factory_fallback=True,
        validates_bootloader=True,  # spec 3.2 #2
        # spec 4.3 / 8.2: the app DCT follows the 7548-byte WICED system part
        dct_app_offset=7548,
        system_version=2302,
    )


__all__ = [
    "BOOTLOADER_VARIANTS",
    "CORE_FW_ADDRESS",
    "EXTENDED_SYSTEM_VERSION",
    "EXTENDED_USER_DEPENDENCY",
    "FACTORY_SLOT_LENGTH",
    "FLASH_END",
    "LEGACY_BOOTLOADER_VERSION",
    "PLATFORMS",
    "PROFILES",
    "ModuleBounds",
    "Profile",
    "get_profile",
]
