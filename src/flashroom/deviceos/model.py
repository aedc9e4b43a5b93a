"""The shapes of Device OS facts: bounds tables, map areas, install sets, profiles, platforms.

Plain frozen data. The values live in one file per platform (:mod:`~flashroom.deviceos.photon`,
:mod:`~flashroom.deviceos.p1`, :mod:`~flashroom.deviceos.electron`, the Gen3 comparison maps in
:mod:`~flashroom.deviceos.gen3`) and in :mod:`~flashroom.deviceos.gen2` for what the three Gen2
platforms share; :mod:`~flashroom.deviceos.registry` is the one table that lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from flashroom.deviceos.enums import ModuleFunction, ModuleStore
from flashroom.errors import PlatformError
from flashroom.geometry import FlashChip
from flashroom.ranges import AddrRange

if TYPE_CHECKING:  # stream.py reads gen2, which imports this module
    from flashroom.deviceos.stream import StreamCapability


class Dependency(NamedTuple):
    """A ``module_dependency_t`` value as a fact: (function, index, minimum version)."""

    module_function: int
    module_index: int
    module_version: int


@dataclass(frozen=True)
class ModuleBounds:
    """``module_bounds_t`` (spec 1.5, hal/inc/ota_flash_hal.h:47-57).

    Attributes:
        name: the C variable (``module_user``).
        maximum_size: ``maximum_size``.
        start_address: ``start_address``.
        end_address: ``end_address`` (exclusive, as Device OS uses it for regions).
        module_function: ``module_function_t``.
        module_index: ``module_index``.
        store: ``module_store_t``.
    """

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


@dataclass(frozen=True)
class MapArea:
    """One named area of a platform's flash map, as the layout shows it.

    A module area points at its ``module_bounds_t`` entry (the one home of its addresses);
    other areas (DCT, EEPROM, an unassigned sector) carry their own range.

    Attributes:
        name: the layout's region name (``user_part``, ``dct1``...).
        bounds: the bounds entry of a module area, else None.
        start, end: the range of a non-module area (ignored when ``bounds`` is set).
        shares_with: areas it is documented to share bytes with (spec 1.2, 4.6, 7.2).
        note: one line explaining it, citing the spec.
        source: where the addresses come from.
    """

    name: str
    bounds: ModuleBounds | None = None
    start: int = 0
    end: int = 0
    shares_with: tuple[str, ...] = ()
    note: str = ""
    source: str = ""

    @property
    def range(self) -> AddrRange:
        if self.bounds is not None:
            return self.bounds.range
        return AddrRange(self.start, self.end)


@dataclass(frozen=True)
class InstallPart:
    """One module of the Device OS install a fresh emulated device carries (spec 2.4).

    ``size`` is spec-silent where no real binary is in the fixtures (see the platform file).
    """

    function: int
    index: int
    version: int
    start_address: int
    size: int
    dependency: Dependency | None = None
    dependency2: Dependency | None = None
    #: it carries the install's bootloader image in its code (Electron idx 3:
    #: modules/electron/system-part1/src/bootloader_hal.c:1-2, spec 4.7)
    embeds_bootloader: bool = False


@dataclass(frozen=True)
class Profile:
    """What one platform's firmware does under one profile (stock Device OS 2.3.1, extended).

    Attributes:
        platform: platform key (``electron``).
        platform_id: ``PLATFORM_ID`` compiled into the firmware.
        name: profile name (``stock``, ``extended``; ``v3.1`` for the Gen3 comparison maps).
        bounds: the array ``find_module_bounds`` searches, in order (first match wins).
        module_ota: the OTA scratch bounds (``HAL_OTA_FlashAddress``/``FlashLength``); None on
            the Gen3 comparison maps (their OTA goes to external flash, spec 7.1).
        module_factory: the factory bounds (None when retired).
        areas: the whole map, for the layout (module areas point into ``bounds``).
        description: one paragraph on what this map is.
        notes: extra facts worth showing (spec-cited).
        user_loc: ``USER_FIRMWARE_IMAGE_LOCATION``.
        fac_addr: ``INTERNAL_FLASH_FAC_ADDRESS`` (the bootloader's compiled-in default source).
        registers_factory_slot: ``HAL_Core_Config`` re-registers slot 0 every boot (spec 5.1).
        clears_factory_slot: the extended firmware clears slot 0 once (spec 9 change 2).
        factory_fallback: ``HAL_Core_Validate_User_Module``'s factory fallback (spec 3.2 #3.5).
        validates_bootloader: ``HAL_Core_Validate_Modules(1)`` at boot (Photon/P1, spec 3.2 #2).
        dct_app_offset: physical offset of the app DCT inside a DCT sector (spec 4.3).
        system_version: the ``module_version`` of this profile's system modules.
        user_dependency: the dependency a user part built for this profile carries (spec 2.4;
            spec 9 change 5 on ``extended``: stock firmware then refuses to run it).
        publishes_max_binary: the system publishes ``spark/hardware/max_binary`` (spec 6.5,
            spec 9 change 4).
        ota_stream: the streamed (delta/compressed) OTA this profile's system firmware applies
            while receiving, or None (stock and the real firmware: raw bytes only). A modelled
            Device OS change (:mod:`flashroom.deviceos.stream`, docs/delta-ota.md).
        ota_address_guard: ``Spark_Prepare_For_Firmware_Update`` and
            ``Spark_Save_Firmware_Chunk`` refuse (-1350, nothing erased or written) a file or a
            chunk outside the OTA scratch, in u32 arithmetic: the ``devos patch`` change
            ``flashroom_in_ota_region`` (docs/device-os.md#extended). Stock erases whatever
            ``HAL_OTA_FlashAddress() + chunk_address`` lands on.
    """

    platform: str
    platform_id: int
    name: str
    bounds: tuple[ModuleBounds, ...]
    module_ota: ModuleBounds | None
    module_factory: ModuleBounds | None
    areas: tuple[MapArea, ...]
    description: str = ""
    notes: tuple[str, ...] = ()
    user_loc: int = 0
    fac_addr: int = 0
    registers_factory_slot: bool = False
    clears_factory_slot: bool = False
    factory_fallback: bool = False
    validates_bootloader: bool = False
    dct_app_offset: int = 0
    system_version: int = 0
    user_dependency: Dependency | None = None
    publishes_max_binary: bool = False
    ota_stream: StreamCapability | None = None
    ota_address_guard: bool = False

    def find_module_bounds(self, function: int, index: int) -> ModuleBounds | None:
        """First entry with that function and index (spec 1.5, stm32f2xx.cpp:64-71)."""
        for b in self.bounds:
            if b.module_function == function and b.module_index == index:
                return b
        return None

    def area_for_module(self, function: int, index: int, store: int = ModuleStore.MAIN) -> MapArea:
        """The first map area holding module (function, index) in ``store`` (the layout's
        ``region_for_module``; with the main store (USER_PART, 1) is never the factory slot).

        Raises:
            PlatformError: no area of this map holds that module.
        """
        for a in self.areas:
            b = a.bounds
            if (
                b is not None
                and b.module_function == function
                and b.module_index == index
                and b.store == store
            ):
                return a
        raise PlatformError(
            f"layout {self.platform}/{self.name} has no {store_name(store)} region for module "
            f"function {function} index {index}"
        )

    @property
    def user_bounds(self) -> ModuleBounds:
        """``module_user`` (the first USER_PART index 1 entry)."""
        b = self.find_module_bounds(ModuleFunction.USER_PART, 1)
        if b is None:  # pragma: no cover - every Gen2 profile has one
            raise PlatformError(f"{self.platform}/{self.name} has no module_user bounds")
        return b

    @property
    def ota_bounds(self) -> ModuleBounds:
        """``module_ota`` (Gen2 only).

        Raises:
            PlatformError: this map has no internal OTA scratch (Gen3).
        """
        if self.module_ota is None:
            raise PlatformError(
                f"{self.platform}/{self.name} has no internal OTA scratch (docs/device-os.md#gen3)"
            )
        return self.module_ota

    @property
    def system_bounds(self) -> tuple[ModuleBounds, ...]:
        """The SYSTEM_PART entries, in table order."""
        return tuple(b for b in self.bounds if b.module_function == ModuleFunction.SYSTEM_PART)

    @property
    def ota_flash_length(self) -> int:
        """``HAL_OTA_FlashLength()`` = ``module_ota.maximum_size`` (spec 4.1 #1)."""
        return self.ota_bounds.maximum_size

    @property
    def ota_flash_address(self) -> int:
        """``HAL_OTA_FlashAddress()`` = ``module_ota.start_address`` (spec 4.1 #1)."""
        return self.ota_bounds.start_address


@dataclass(frozen=True)
class Platform:
    """A platform flashroom knows, with its profiles.

    Attributes:
        name: registry key (``electron``).
        platform_id: Device OS ``PLATFORM_ID``.
        title: human name.
        chip: the internal flash geometry.
        generation: 2 or 3.
        profiles: its profiles, smallest user part first (the planner's order).
        refusals: profile name -> why this platform cannot have it (shown when asked).
        ota_internal: the OTA scratch lives in internal flash (Gen2). Gen3 receives OTA into
            external flash (spec 7.1).
        comparison_only: shown beside Gen2, never planned for or emulated (Gen3).
        inactivity_timeout_s: ``TIMING_FLASH_UPDATE_TIMEOUT`` (spec 6.5).
        dfu_product_id: the USB DFU product id (VID 0x2B04, spec 2.3).
        install: the stock Device OS 2.3.1 install of a fresh emulated device (spec 2.4).
        embedded_bootloader_version: the bootloader ``module_version`` the system firmware
            embeds and applies at boot (``HAL_REPLACE_BOOTLOADER``, Electron only, spec 4.7), or
            None.
        compressed_ota: an update may be a compressed module (the bootloader inflates it,
            spec 7.4). False on Gen2: ``HAL_PLATFORM_COMPRESSED_OTA`` is 0 and nothing reads
            the COMPRESSED flag, so the compressed bytes are copied and run as they are.
        max_combined_modules: how many modules of a combined file an update applies: 2 on
            Gen3 (spec 7.4), 1 on Gen2, where nothing reads the COMBINED flag and the update
            validates and copies the first module only.
    """

    name: str
    platform_id: int
    title: str
    chip: FlashChip
    generation: int
    profiles: tuple[Profile, ...]
    refusals: dict[str, str] = field(default_factory=dict)
    ota_internal: bool = True
    comparison_only: bool = False
    inactivity_timeout_s: float = 0.0
    dfu_product_id: int = 0
    install: tuple[InstallPart, ...] = ()
    embedded_bootloader_version: int | None = None
    compressed_ota: bool = False
    max_combined_modules: int = 1

    @property
    def layouts(self) -> tuple[str, ...]:
        """The profile names, smallest user part first."""
        return tuple(p.name for p in self.profiles)

    def profile(self, name: str) -> Profile:
        """The named profile.

        Raises:
            PlatformError: no such profile here (:func:`flashroom.deviceos.get_profile` adds
                the reason when it is impossible).
        """
        for p in self.profiles:
            if p.name == name:
                return p
        raise PlatformError(
            f"{self.name} has no profile {name!r}: expected one of {', '.join(self.layouts)}"
        )


def store_name(store: int) -> str:
    """``module_store_t`` as the layout spells it (``main``, ``factory``, ``scratchpad``)."""
    return ModuleStore(store).name.lower()


__all__ = [
    "Dependency",
    "InstallPart",
    "MapArea",
    "ModuleBounds",
    "Platform",
    "Profile",
    "store_name",
]
