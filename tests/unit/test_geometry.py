from __future__ import annotations

import pytest

from flashroom.errors import UsageError
from flashroom.geometry import CHIPS, NRF52840, STM32F205XG, get_chip
from flashroom.ranges import AddrRange


def test_stm32f205_sector_table_matches_spec_1_1() -> None:
    starts = [s.start for s in STM32F205XG.sectors]
    assert starts == [
        0x08000000,
        0x08004000,
        0x08008000,
        0x0800C000,
        0x08010000,
        0x08020000,
        0x08040000,
        0x08060000,
        0x08080000,
        0x080A0000,
        0x080C0000,
        0x080E0000,
    ]
    assert STM32F205XG.size == 0x100000
    assert STM32F205XG.end == 0x08100000
    assert STM32F205XG.erased_value == 0xFF
    assert STM32F205XG.program_unit == 4


def test_sector_lookup_and_alignment() -> None:
    assert STM32F205XG.sector_at(0x080A0000).index == 9
    assert STM32F205XG.sector_at(0x0809FFFF).index == 8
    assert [s.index for s in STM32F205XG.sectors_in(AddrRange(0x08080000, 0x080C0000))] == [8, 9]
    assert STM32F205XG.is_sector_aligned(AddrRange(0x08080000, 0x080C0000))
    assert not STM32F205XG.is_sector_aligned(AddrRange(0x08080000, 0x080B0000))
    with pytest.raises(UsageError, match="0x08100000"):
        STM32F205XG.sector_at(0x08100000)


def test_timing_figures_are_the_datasheet_ones() -> None:
    t = STM32F205XG.timing
    assert t.erase(128 * 1024) == 1.0
    assert t.erase(128 * 1024, worst=True) == 2.0
    assert t.program_words(1000) == pytest.approx(0.016)


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_every_chip_has_contiguous_sectors(name: str) -> None:
    chip = get_chip(name)
    for a, b in zip(chip.sectors, chip.sectors[1:], strict=False):
        assert a.end == b.start
    assert chip.sectors[-1].end == chip.end


def test_nrf52840_has_256_pages_of_4k() -> None:
    assert len(NRF52840.sectors) == 256
    assert {s.size for s in NRF52840.sectors} == {4096}
    with pytest.raises(UsageError):
        get_chip("esp32")
