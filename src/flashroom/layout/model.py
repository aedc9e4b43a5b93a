"""The flash-layout data model: regions, layouts, platforms and validation findings.

A :class:`Layout` is plain data: a platform, a chip (``flashroom.geometry``) and an ordered tuple of
:class:`Region` objects with half-open address ranges. Nothing here decides whether a layout is
good; that is :mod:`flashroom.layout.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flashroom.deviceos import Platform
from flashroom.errors import LayoutError
from flashroom.geometry import FlashChip
from flashroom.ranges import AddrRange, fmt_addr, fmt_size

#: Every region name a layout may use. Gen2 names come from the issue/contract (spec 1.2-1.6);
#: ``softdevice`` and ``user_part_compat`` exist only in the Gen3 comparison maps (spec 7.1).
REGION_NAMES: tuple[str, ...] = (
    "bootloader",
    "dct1",
    "dct2",
    "eeprom1",
    "eeprom2",
    "system_part_1",
    "system_part_2",
    "system_part_3",
    "user_part",
    "user_part_compat",
    "factory",
    "ota_scratch",
    "free",
    "softdevice",
)

#: Offset of the user part's dynalib table from the user part's start: module_info_t is 24 bytes
#: at +0 and the table follows it (spec 2.2; user.ld:10-16,130).
DYNALIB_OFFSET = 0x18


@dataclass(frozen=True)
class Region:
    """One named region of a flash layout.

    Attributes:
        name: one of :data:`REGION_NAMES`.
        start: first address (absolute).
        end: one past the last address (exclusive, as ``module_end_address``).
        module_function: ``module_function_t`` of the module stored here (2 bootloader,
            4 system part, 5 user part, 8 radio stack, 0 for the OTA scratch), or None for
            regions that hold no module (DCT, EEPROM, free).
        module_index: ``module_index`` of that module, or None.
        store: ``module_store_t`` role as in ``module_bounds_t``: ``"main"``, ``"factory"``,
            ``"scratchpad"``, or None.
        shares_with: names of regions this region is *documented* to share bytes with. Sharing
            is only ever accepted by the validator when declared here (spec 1.2, 4.6: Photon's
            256K OTA scratch covers the factory sector).
        note: one line explaining the region (or its sharing), with the spec section.
        source: where the bounds come from.
        sectors: indices of the chip sectors the region touches; filled in when the region is
            placed into a :class:`Layout` (a bare Region knows no chip, so it is empty there).
    """

    name: str
    start: int
    end: int
    module_function: int | None = None
    module_index: int | None = None
    store: str | None = None
    shares_with: tuple[str, ...] = ()
    note: str = ""
    source: str = ""
    sectors: tuple[int, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.name not in REGION_NAMES:
            raise LayoutError(
                f"unknown region name {self.name!r} at {fmt_addr(self.start)}: expected one of "
                + ", ".join(REGION_NAMES)
            )
        if self.end < self.start:
            raise LayoutError(
                f"region {self.name}: end {fmt_addr(self.end)} is below start "
                f"{fmt_addr(self.start)}"
            )

    @property
    def range(self) -> AddrRange:
        """The half-open address range ``[start, end)``."""
        return AddrRange(self.start, self.end)

    @property
    def size(self) -> int:
        """Size in bytes."""
        return self.end - self.start

    @property
    def holds_module(self) -> bool:
        """True when a Particle module (or the OTA scratch copy of one) lives here."""
        return self.module_function is not None

    def __str__(self) -> str:
        return f"{self.name} {self.range} ({fmt_size(self.size)})"


#: A platform as the layout engine sees it: :class:`flashroom.deviceos.Platform` (key, id,
#: title, chip, generation, ``layouts``, ``ota_internal``, ``comparison_only``).
PlatformInfo = Platform


@dataclass(frozen=True)
class Layout:
    """A complete flash map of one platform.

    Attributes:
        platform: platform key (``electron``).
        platform_id: Device OS platform id (10).
        name: layout name (``stock``, ``extended``, ``v3.1``, ``candidate``).
        chip: the flash geometry the regions live on.
        regions: regions in address order.
        description: one paragraph on what this layout is.
        notes: extra facts worth showing (spec-cited).
    """

    platform: str
    platform_id: int
    name: str
    chip: FlashChip
    regions: tuple[Region, ...]
    description: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # Give every region its sector indices on this chip (Region.sectors, the contract).
        placed = tuple(
            replace(r, sectors=tuple(s.index for s in self.chip.sectors_in(r.range)))
            for r in self.regions
        )
        object.__setattr__(self, "regions", placed)

    def region(self, name: str) -> Region:
        """The first region called ``name``.

        Raises:
            LayoutError: no such region in this layout.
        """
        for r in self.regions:
            if r.name == name:
                return r
        have = ", ".join(r.name for r in self.regions)
        raise LayoutError(
            f"layout {self.platform}/{self.name} has no region {name!r} (it has: {have})"
        )

    def find(self, name: str) -> Region | None:
        """The first region called ``name``, or None."""
        return next((r for r in self.regions if r.name == name), None)

    def has(self, name: str) -> bool:
        """True when the layout has a region called ``name``."""
        return self.find(name) is not None

    def region_for_module(self, function: int, index: int, store: str = "main") -> Region:
        """The region holding the module ``(function, index)`` in ``store``.

        Mirrors ``find_module_bounds`` (spec 1.5): the first region in the list with a matching
        function and index; by default only the ``main`` store is searched, so (USER_PART, 1)
        is the user part, never the factory slot.

        Raises:
            LayoutError: no region of this layout holds that module.
        """
        for r in self.regions:
            if r.module_function == function and r.module_index == index and r.store == store:
                return r
        raise LayoutError(
            f"layout {self.platform}/{self.name} has no {store} region for module function "
            f"{function} index {index}"
        )

    def regions_at(self, addr: int) -> tuple[Region, ...]:
        """Every region containing ``addr`` (two when a documented sharing covers it)."""
        return tuple(r for r in self.regions if addr in r.range)

    def sector_indices(self, region: Region) -> list[int]:
        """Indices of the chip sectors the region touches."""
        return [s.index for s in self.chip.sectors_in(region.range)]

    @property
    def user_part(self) -> Region:
        """The main user part (``user_part``)."""
        return self.region("user_part")

    @property
    def dynalib_address(self) -> int:
        """Address of the user dynalib table, ``user_module_table`` (start + 0x18, spec 2.2)."""
        return self.user_part.start + DYNALIB_OFFSET

    @property
    def max_app_size(self) -> int:
        """Largest user-part module file (module_info through CRC-32) this layout holds.

        The module file, including its 4-byte CRC trailer, must fit the region (spec 3.5 edge
        case: the CRC must fit inside ``APP_FLASH``), so this is the region size.
        """
        return self.user_part.size

    @property
    def ota_capacity(self) -> int:
        """Size of the internal OTA scratch, or 0 when there is none."""
        r = self.find("ota_scratch")
        return r.size if r else 0

    def to_json(self) -> dict[str, Any]:
        """The ``layout show --format json`` contract (integers for addresses and sizes)."""
        regions: list[dict[str, Any]] = []
        for r in self.regions:
            regions.append(
                {
                    "name": r.name,
                    "start": r.start,
                    "end": r.end,
                    "size": r.size,
                    "sectors": list(r.sectors),
                    "module_function": r.module_function,
                    "module_index": r.module_index,
                    "store": r.store,
                    "shares_with": list(r.shares_with),
                    "note": r.note,
                }
            )
        return {
            "platform": self.platform,
            "platform_id": self.platform_id,
            "layout": self.name,
            "chip": self.chip.name,
            "flash_start": self.chip.base,
            "flash_end": self.chip.end,
            "description": self.description,
            "regions": regions,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Violation:
    """One broken layout rule.

    Attributes:
        rule: rule id (``sector_shared``, ``sector_boundary``, ``overlap``, ``outside_chip``,
            ``ota_scratch_capacity``, ``ota_scratch_missing``, ``protected_region``,
            ``user_start``, ``dynalib_address``, ``user_part_missing``).
        region: the region at fault.
        address: the address where the problem is.
        expected: what the rule expected, in words/addresses.
        message: the full explanation, addresses as ``0x%08x``, citing the spec.
    """

    rule: str
    region: str
    address: int
    expected: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """JSON form (``layout check --format json``)."""
        return {
            "rule": self.rule,
            "region": self.region,
            "address": self.address,
            "address_hex": fmt_addr(self.address),
            "expected": self.expected,
            "message": self.message,
        }

    def __str__(self) -> str:
        return f"[{self.rule}] {self.region} at {fmt_addr(self.address)}: {self.message}"
