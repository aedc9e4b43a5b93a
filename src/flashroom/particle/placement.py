"""Does a module fit its region under a layout? (spec 1.5 ``module_bounds_t``, 3.3).

The regions are the Device OS profiles' maps (:mod:`flashroom.deviceos`): the first area holding
(function, index) in the main store, as ``find_module_bounds`` picks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashroom.deviceos import ModuleStore, get_profile
from flashroom.errors import ModuleTooLargeError
from flashroom.particle.build import platform_id_of


@dataclass(frozen=True)
class Placement:
    """The region a (function, index) module belongs to under a layout."""

    platform: str
    layout: str
    region: str
    start: int
    end: int  # exclusive
    source: str  # where the region comes from ("flashroom.deviceos")

    @property
    def size(self) -> int:
        return self.end - self.start


def region_for_module(platform: str, layout: str, function: int, index: int) -> Placement:
    """The region for module (function, index) on ``platform`` under ``layout``.

    Raises:
        LayoutError: the layout does not exist for the platform (e.g. photon/extended) or has
            no region for that module.
        UsageError: unknown platform.
    """
    plat = platform.lower()
    platform_id_of(plat)  # precise error for unknown Gen2 names before the profile lookup
    prof = get_profile(plat, layout)
    area = prof.area_for_module(function, index, ModuleStore.MAIN)
    r = area.range
    return Placement(plat, layout, area.name, r.start, r.end, "flashroom.deviceos")


def check_fits(
    *,
    size: int,
    start_address: int,
    platform: str,
    layout: str,
    function: int,
    index: int,
) -> Placement:
    """Refuse a module that does not fit its region (the whole file, CRC included).

    Raises:
        ModuleTooLargeError: the module file ``[start, start + size)`` leaves its region; the
            message names the region, its bounds and the overflow.
        LayoutError: no such layout or region.
    """
    p = region_for_module(platform, layout, function, index)
    end = start_address + size
    where = f"region {p.region} [0x{p.start:08x}, 0x{p.end:08x}) of {p.platform}/{p.layout}"
    if start_address < p.start or start_address >= p.end:
        raise ModuleTooLargeError(f"module start 0x{start_address:08x} is outside {where}")
    if end > p.end:
        raise ModuleTooLargeError(
            f"module of {size} bytes at 0x{start_address:08x} ends at 0x{end:08x}, "
            f"{end - p.end} bytes past {where} ({p.size} bytes)"
        )
    return p
