"""The modules a fresh emulated device carries (no device needed to make them)."""

from __future__ import annotations

from flashroom.deviceos import get_profile
from flashroom.deviceos.gen2 import LEGACY_BOOTLOADER_VERSION
from flashroom.particle.build import device_os_install, synthetic_user_app

#: The small stock app of a fresh device (spec-silent size).
DEFAULT_APP_SIZE = 32 * 1024
#: The factory image of a fresh stock device (spec-silent size and version).
FACTORY_APP_SIZE = 24 * 1024
FACTORY_APP_VERSION = 1


def default_modules(platform: str, profile: str, bootloader: str) -> list[bytes]:
    """Bootloader, system parts and the small stock app a fresh device carries.

    On ``extended`` the system modules carry the profile's version (spec 9 change 5); with the
    ``legacy`` variant the bootloader is a 1002 one (spec 4.5), and the Electron system embeds
    that same image (spec-silent modelling choice: a real v2.3.1 system embeds 1004 and would
    replace a 1002 bootloader at its first boot, spec 4.7, so the legacy hazard is only real
    before the system reaches 2.x).

    Raises:
        EmulatorError: unknown platform/profile.
    """
    prof = get_profile(platform, profile, gen2_only=True)
    install = device_os_install(
        prof.platform,
        system_version=prof.system_version if profile == "extended" else None,
        bootloader_version=LEGACY_BOOTLOADER_VERSION if bootloader == "legacy" else None,
    )
    return [*install, synthetic_user_app(DEFAULT_APP_SIZE, platform=prof.platform, seed=1)]


def factory_image(platform: str) -> bytes:
    """The factory image of a fresh stock device: a user part linked for the user slot (5.1)."""
    return synthetic_user_app(
        FACTORY_APP_SIZE, platform=platform, version=FACTORY_APP_VERSION, seed=99
    )


__all__ = [
    "DEFAULT_APP_SIZE",
    "FACTORY_APP_SIZE",
    "FACTORY_APP_VERSION",
    "default_modules",
    "factory_image",
]
