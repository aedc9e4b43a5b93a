"""Platform flash maps as layouts: Photon, P1, Electron (stock and extended), Argon/Boron.

The addresses, notes and sources are Device OS facts and live in :mod:`flashroom.deviceos`
(one file per platform); this module turns each profile's map into a :class:`Layout` (built once
at import: they are small frozen tuples) and looks them up with :func:`get_layout`.
"""

from __future__ import annotations

from flashroom.deviceos import PLATFORMS, Platform, Profile, store_name
from flashroom.deviceos import get_platform as _deviceos_platform
from flashroom.errors import LayoutError
from flashroom.layout.model import Layout, Region

__all__ = [
    "LAYOUT_NAMES",
    "PLATFORMS",
    "PROTECTED_REGIONS",
    "all_layouts",
    "get_layout",
    "get_platform",
    "layout_of",
]

#: Every layout name any platform knows (CLI choices).
LAYOUT_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(n for p in PLATFORMS.values() for n in p.layouts)
)

#: Regions the layout engine may never move or resize on Gen2 (issue 2 section 4; spec 9:
#: "System modules, DCT and EEPROM are unchanged"). Gen3 protects its MBR/SoftDevice and bootloader.
PROTECTED_REGIONS: tuple[str, ...] = (
    "bootloader",
    "dct1",
    "dct2",
    "eeprom1",
    "eeprom2",
    "softdevice",
)


def layout_of(profile: Profile, platform: Platform) -> Layout:
    """The :class:`Layout` of a Device OS profile's map (regions in address order)."""
    regions = []
    for area in profile.areas:
        b = area.bounds
        regions.append(
            Region(
                area.name,
                area.range.start,
                area.range.end,
                None if b is None else int(b.module_function),
                None if b is None else b.module_index,
                None if b is None else store_name(b.store),
                shares_with=area.shares_with,
                note=area.note,
                source=area.source,
            )
        )
    return Layout(
        platform=platform.name,
        platform_id=platform.platform_id,
        name=profile.name,
        chip=platform.chip,
        regions=tuple(sorted(regions, key=lambda r: (r.start, r.end))),
        description=profile.description,
        notes=profile.notes,
    )


def _build_all() -> dict[tuple[str, str], Layout]:
    return {
        (plat.name, prof.name): layout_of(prof, plat)
        for plat in PLATFORMS.values()
        for prof in plat.profiles
    }


_LAYOUTS = _build_all()


def get_platform(platform: str) -> Platform:
    """Look a platform up by key (``photon``, ``p1``, ``electron``, ``argon``, ``boron``).

    Raises:
        LayoutError: unknown platform (a :class:`~flashroom.errors.PlatformError`).
    """
    return _deviceos_platform(platform)


def get_layout(platform: str, name: str = "stock") -> Layout:
    """A named layout of a platform.

    Args:
        platform: platform key.
        name: ``stock`` or ``extended`` (Electron only) for Gen2; ``stock`` (<= 3.0) or ``v3.1``
            for Argon/Boron.

    Raises:
        LayoutError: unknown platform, or the platform has no such layout (with the reason).
    """
    info = get_platform(platform)
    key = (info.name, name)
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    why = info.refusals.get(name)
    if why:
        raise LayoutError(f"{info.name} has no {name!r} layout: {why}")
    raise LayoutError(
        f"{info.name} has no {name!r} layout: expected one of {', '.join(info.layouts)}"
    )


def all_layouts() -> list[Layout]:
    """Every known layout, in registry order (tests parametrise over it)."""
    return list(_LAYOUTS.values())
