"""The one registry of platforms and profiles every package reads.

A new platform is one file in this package and one line in :data:`PLATFORMS`; a new profile is
one :class:`~flashroom.deviceos.model.Profile` in its platform's file and one entry in that
platform's ``profiles``. CLI choices and test parametrisation come from here.
"""

from __future__ import annotations

from flashroom.deviceos import electron, gen3, p1, photon
from flashroom.deviceos.model import Platform, Profile
from flashroom.errors import PlatformError

#: Every platform, in platform-id order.
PLATFORMS: dict[str, Platform] = {
    p.name: p for p in (photon.PLATFORM, p1.PLATFORM, electron.PLATFORM, gen3.ARGON, gen3.BORON)
}

#: The platforms the emulator, the OTA path and the module tools model (Gen2).
GEN2_PLATFORMS: tuple[str, ...] = tuple(p.name for p in PLATFORMS.values() if p.generation == 2)

#: Every Gen2 profile name, in the order platforms list them (``stock``, ``extended``).
GEN2_PROFILES: tuple[str, ...] = tuple(
    dict.fromkeys(n for p in GEN2_PLATFORMS for n in PLATFORMS[p].layouts)
)


def get_platform(name: str) -> Platform:
    """Look a platform up by key, in any case (``electron``, ``Electron``).

    Raises:
        PlatformError: unknown platform.
    """
    try:
        return PLATFORMS[name.strip().lower()]
    except (KeyError, AttributeError):
        raise PlatformError(
            f"unknown platform {name!r}: expected one of {', '.join(PLATFORMS)}"
        ) from None


def default_profile(platform: str) -> str:
    """The profile a command uses when none is given: the platform's largest layout
    (``extended`` on Electron, ``stock`` on Photon and P1), so every default works everywhere.

    Raises:
        PlatformError: unknown platform.
    """
    return get_platform(platform).layouts[-1]


def platform_by_id(platform_id: int) -> Platform:
    """The platform with this ``PLATFORM_ID``.

    Raises:
        PlatformError: no known platform has that id.
    """
    for p in PLATFORMS.values():
        if p.platform_id == platform_id:
            return p
    known = ", ".join(f"{p.platform_id} ({p.name})" for p in PLATFORMS.values())
    raise PlatformError(f"unknown platform_id {platform_id}: expected one of {known}")


def get_profile(platform: str, name: str = "stock", *, gen2_only: bool = False) -> Profile:
    """The profile ``name`` of ``platform``.

    Args:
        platform: platform key.
        name: ``stock`` or ``extended`` (Electron only) on Gen2; ``stock`` or ``v3.1`` on the
            Gen3 comparison maps.
        gen2_only: refuse the Gen3 comparison platforms (the emulator and the OTA path model
            Gen2 only).

    Raises:
        PlatformError: unknown platform or profile, or a profile the platform cannot have (with
            the reason, e.g. extended on Photon/P1, spec 4.6, 5.4 #5).
    """
    plat = get_platform(platform)
    if gen2_only and plat.generation != 2:
        raise PlatformError(
            f"platform {platform!r} is a comparison-only Gen3 map, not a modelled device: "
            f"expected one of {', '.join(GEN2_PLATFORMS)}"
        )
    why = plat.refusals.get(name)
    if why is not None:
        having = [p.name.capitalize() for p in PLATFORMS.values() if name in p.layouts]
        raise PlatformError(f"profile {name!r} is {' and '.join(having)} only: {why}")
    return plat.profile(name)


__all__ = [
    "GEN2_PLATFORMS",
    "GEN2_PROFILES",
    "PLATFORMS",
    "default_profile",
    "get_platform",
    "get_profile",
    "platform_by_id",
]
