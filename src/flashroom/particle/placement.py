"""Does a module fit its region under a layout? (spec 1.5 ``module_bounds_t``, 3.3).

The layout package (:mod:`flashroom.layout`) is the authority on regions; when it cannot be
imported this falls back to the stock ``module_bounds_t`` table in
:data:`flashroom.particle.build.STOCK_MODULE_BOUNDS` (spec 1.5), which only knows "stock".
"""

from __future__ import annotations

from dataclasses import dataclass

from flashroom.errors import LayoutError, ModuleTooLargeError, UsageError
from flashroom.particle.build import platform_id_of, stock_bounds
from flashroom.particle.module_info import PlatformId

_PLATFORM_NAMES = {int(p): p.name.lower() for p in PlatformId}


@dataclass(frozen=True)
class Placement:
    """The region a (function, index) module belongs to under a layout."""

    platform: str
    layout: str
    region: str
    start: int
    end: int  # exclusive
    source: str  # "flashroom.layout" or "spec 1.5 stock table"

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
    try:
        from flashroom.layout import get_layout
    except ImportError:  # pragma: no cover - layout package always present in this repo
        if layout != "stock":
            raise LayoutError(
                f"layout {layout!r} needs flashroom.layout; only 'stock' is built in"
            ) from None
        try:
            b = stock_bounds(plat, function, index)
        except UsageError as e:
            raise LayoutError(str(e)) from None
        return Placement(plat, layout, b.name, b.start_address, b.end_address, "spec 1.5")
    platform_id_of(plat)  # precise error for unknown Gen2 names before the layout lookup
    lay = get_layout(plat, layout)
    r = lay.region_for_module(function, index)
    return Placement(plat, layout, r.name, r.start, r.end, "flashroom.layout")


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
