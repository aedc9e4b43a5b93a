"""Chip flash geometry as data: sector tables, erased value, program unit, timing."""

from flashroom.geometry.chips import (
    CHIPS,
    NRF52840,
    STM32F205XG,
    FlashChip,
    Sector,
    SectorSpan,
    Timing,
    get_chip,
)

__all__ = [
    "CHIPS",
    "NRF52840",
    "STM32F205XG",
    "FlashChip",
    "Sector",
    "SectorSpan",
    "Timing",
    "get_chip",
]
