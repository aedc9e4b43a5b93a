"""flashroom.deviceos: the one home of Device OS facts.

Module functions and stores, platform ids, the ``module_bounds_t`` tables per platform and
profile, OTA region lengths, chunk sizes and timeouts, DCT offsets, the install set, the
bootloader and system version facts, and the protocol/system OTA contract. Every other package
(``layout``, ``particle``, ``emu``, ``ota``, ``firmware``) reads them from here; none defines a
bounds value, a platform id table or an OTA length of its own.

* :mod:`~flashroom.deviceos.enums`: ``ModuleFunction``, ``ModuleStore``, ``PlatformId``...
* :mod:`~flashroom.deviceos.model`: ``ModuleBounds``, ``Profile``, ``Platform``...
* :mod:`~flashroom.deviceos.gen2`: what Photon, P1 and Electron share (addresses, DCT, codes).
* :mod:`~flashroom.deviceos.photon`, :mod:`~flashroom.deviceos.p1`,
  :mod:`~flashroom.deviceos.electron`: one file per platform; :mod:`~flashroom.deviceos.gen3`:
  the Argon/Boron comparison maps.
* :mod:`~flashroom.deviceos.registry`: the registry (``get_platform``, ``get_profile``).
* :mod:`~flashroom.deviceos.ota`: ``FileTransferDescriptor`` and ``SystemUpdateCallbacks``.

Only plain data and the standard library are imported here, so this stays cheap.
"""

from flashroom.deviceos.enums import (
    FUNCTION_NAMES,
    FileTransferStore,
    ModuleFunction,
    ModuleInfoFlags,
    ModuleStore,
    PlatformId,
    UpdateFlag,
)
from flashroom.deviceos.model import (
    Dependency,
    InstallPart,
    MapArea,
    ModuleBounds,
    Platform,
    Profile,
    store_name,
)
from flashroom.deviceos.registry import (
    GEN2_PLATFORMS,
    GEN2_PROFILES,
    PLATFORMS,
    default_profile,
    get_platform,
    get_profile,
    platform_by_id,
)

__all__ = [
    "FUNCTION_NAMES",
    "GEN2_PLATFORMS",
    "GEN2_PROFILES",
    "PLATFORMS",
    "Dependency",
    "FileTransferStore",
    "InstallPart",
    "MapArea",
    "ModuleBounds",
    "ModuleFunction",
    "ModuleInfoFlags",
    "ModuleStore",
    "Platform",
    "PlatformId",
    "Profile",
    "UpdateFlag",
    "default_profile",
    "get_platform",
    "get_profile",
    "platform_by_id",
    "store_name",
]
