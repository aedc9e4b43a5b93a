"""P1 (platform 8): the Photon's module layout (spec 1.2, build/platform-id.mk:181-196).

Differences from the Photon: ``HAS_SERIAL_FLASH`` makes ``HAL_Core_Config`` run ``sFLASH_Init()``
instead of registering factory slot 0 (spec 5.1), and its DFU product id.
"""

from __future__ import annotations

from flashroom.deviceos import photon
from flashroom.deviceos.enums import PlatformId
from flashroom.deviceos.model import Platform
from flashroom.geometry import STM32F205XG

PLATFORM = Platform(
    name="p1",
    platform_id=PlatformId.P1,
    title="P1",
    chip=STM32F205XG,
    generation=2,
    profiles=(
        photon.stock_profile(
            "p1",
            PlatformId.P1,
            "P1",
            registers_factory_slot=False,  # spec 5.1: P1 never registers slot 0
            factory_note_extra="; P1 never registers factory slot 0, spec 5.1",
        ),
    ),
    refusals={"extended": photon.EXTENDED_REFUSAL.format(title="P1")},
    inactivity_timeout_s=30.0,  # spec 6.5
    dfu_product_id=0xD008,
    install=photon.INSTALL,
)
