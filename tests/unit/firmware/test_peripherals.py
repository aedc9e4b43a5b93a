"""Register-level behaviour of the modelled STM32F2 blocks (RM0033), without the CPU."""

from __future__ import annotations

from typing import Any

from flashroom.emu.flash import NorFlash
from flashroom.firmware import stm32f2 as st
from flashroom.firmware.flashport import FlashPort, FlashRecorder
from flashroom.firmware.peripherals import (
    CrcUnit,
    FlashInterface,
    Pwr,
    Rcc,
    Rtc,
    SystemControl,
    crc32_words,
    merge_store,
)

F = st.FLASH_R_BASE
A = 0x08080000


def flash_if(**kw: Any) -> tuple[NorFlash, FlashInterface, FlashRecorder]:
    flash = NorFlash(granularity="word")
    rec = FlashRecorder()
    port = FlashPort(flash, bytearray(flash.contents()), recorder=rec)
    return flash, FlashInterface(flash, port, **kw), rec


def unlock(fi: FlashInterface) -> None:
    fi.write(F + st.FLASH_KEYR, 4, st.FLASH_KEY1)
    fi.write(F + st.FLASH_KEYR, 4, st.FLASH_KEY2)


def test_flash_cr_is_locked_until_the_key_sequence() -> None:
    _, fi, _ = flash_if()
    fi.write_cr(F + st.FLASH_CR, 4, st.FLASH_CR_PG)
    assert fi.locked and not fi.read_register(st.FLASH_CR) & st.FLASH_CR_PG  # ignored
    fi.write(F + st.FLASH_KEYR, 4, 0x12345678)  # a wrong key
    fi.write(F + st.FLASH_KEYR, 4, st.FLASH_KEY2)
    assert fi.locked
    unlock(fi)
    assert not fi.locked
    fi.write_cr(F + st.FLASH_CR, 4, st.FLASH_CR_LOCK)
    assert fi.locked


def test_program_needs_pg_and_errors_are_write_one_to_clear() -> None:
    flash, fi, rec = flash_if()
    unlock(fi)
    fi.store(A, 4, 0)
    assert fi.read_register(st.FLASH_SR) == st.FLASH_SR_PGSERR and rec.events == []
    fi.write(F + st.FLASH_SR, 4, st.FLASH_SR_PGSERR | st.FLASH_SR_EOP)
    assert fi.read_register(st.FLASH_SR) == 0
    fi.write_cr(F + st.FLASH_CR, 4, st.FLASH_CR_PG | (2 << st.FLASH_CR_PSIZE_SHIFT))
    fi.store(A + 2, 4, 0)  # misaligned word
    assert fi.read_register(st.FLASH_SR) == st.FLASH_SR_PGAERR
    fi.store(A, 4, 0x12345678)
    assert flash.read(A, 4) == bytes.fromhex("78563412")


def test_strt_erases_sector_snb_and_clears_itself() -> None:
    flash, fi, rec = flash_if()
    flash.program(0x080A0000, b"\x00" * 8)
    unlock(fi)
    cr = st.FLASH_CR_SER | (9 << st.FLASH_CR_SNB_SHIFT)
    fi.write_cr(F + st.FLASH_CR, 4, cr)
    assert rec.events == []
    fi.write_cr(F + st.FLASH_CR, 4, cr | st.FLASH_CR_STRT)
    assert [(e.kind, e.addr) for e in rec.events] == [("erase", 0x080A0000)]
    assert fi.read_register(st.FLASH_CR) == cr  # STRT reads 0 again
    assert flash.is_blank(0x080A0000, 8)


def test_write_protected_sectors_refuse_until_optstrt_lifts_them() -> None:
    _, fi, rec = flash_if(write_protected=frozenset({0}))
    unlock(fi)
    cr = st.FLASH_CR_SER | (0 << st.FLASH_CR_SNB_SHIFT)
    fi.write_cr(F + st.FLASH_CR, 4, cr | st.FLASH_CR_STRT)
    assert fi.read_register(st.FLASH_SR) & st.FLASH_SR_WRPERR and rec.events == []
    optcr = F + st.FLASH_OPTCR
    fi.write(optcr + 2, 2, 0x0FFF)  # OPTLOCK still set: ignored
    assert fi.nwrp == 0xFFE
    fi.write(F + st.FLASH_OPTKEYR, 4, st.FLASH_OPT_KEY1)
    fi.write(F + st.FLASH_OPTKEYR, 4, st.FLASH_OPT_KEY2)
    fi.write(optcr + 2, 2, 0x0FFF)  # FLASH_OB_WRPConfig: a halfword store to OPTCR byte 2
    assert fi.nwrp == 0xFFE  # pending until OPTSTRT
    fi.write(optcr, 1, fi.read_register(st.FLASH_OPTCR) | st.FLASH_OPTCR_OPTSTRT)
    assert fi.nwrp == 0xFFF
    fi.write_cr(F + st.FLASH_CR, 4, cr | st.FLASH_CR_STRT)
    assert [e.addr for e in rec.events] == [0x08000000]


def test_crc_unit_reset_and_words() -> None:
    crc = CrcUnit()
    crc.mmio_write(st.CRC_DR, 4, 0x12345678)
    crc.mmio_write(st.CRC_DR, 4, 0x9ABCDEF0)
    assert crc.pending == [0x12345678, 0x9ABCDEF0]  # queued, folded in when read
    assert crc.mmio_read(st.CRC_DR, 4) == crc32_words([0x12345678, 0x9ABCDEF0])
    assert crc.mmio_read(st.CRC_DR + 2, 2) == crc32_words([0x12345678, 0x9ABCDEF0]) >> 16
    crc.write(st.CRC_BASE + st.CRC_CR, 4, st.CRC_CR_RESET)
    crc.mmio_write(st.CRC_DR, 4, 0x12345678)
    assert crc.read_register(st.CRC_DR) == crc32_words([0x12345678])
    crc.write(st.CRC_BASE + st.CRC_CR, 4, st.CRC_CR_RESET)
    assert crc.read_register(st.CRC_DR) == 0xFFFFFFFF and crc.read_register(st.CRC_CR) == 0


def test_rcc_ready_bits_follow_their_enables_and_rmvf_clears_reset_flags() -> None:
    rcc = Rcc(st.RCC_CSR_POWER_ON | st.RCC_CSR_IWDGRSTF)
    rcc.write(st.RCC_BASE + st.RCC_CR, 4, (1 << 16) | (1 << 24))
    assert rcc.read_register(st.RCC_CR) == (1 << 16) | (1 << 17) | (1 << 24) | (1 << 25)
    rcc.write(st.RCC_BASE + st.RCC_CFGR, 4, 0x2)
    assert rcc.read_register(st.RCC_CFGR) == 0xA  # SWS = PLL
    assert rcc.read_register(st.RCC_CSR) & st.RCC_CSR_IWDGRSTF
    rcc.write(st.RCC_BASE + st.RCC_CSR, 4, st.RCC_CSR_RMVF | st.RCC_CSR_LSION)
    assert rcc.read_register(st.RCC_CSR) == st.RCC_CSR_LSION | st.RCC_CSR_LSIRDY


def test_rtc_backup_registers_write_through_to_the_devices_list() -> None:
    regs = [0] * 20
    regs[4] = 0x1ADEACC0
    rtc = Rtc(regs)
    assert rtc.read_register(st.RTC_BKP0R + 16) == 0x1ADEACC0
    rtc.write(st.RTC_BASE + st.RTC_BKP0R + 4, 4, 0xEDFA)
    assert regs[1] == 0xEDFA
    rtc.write(st.RTC_BASE + st.RTC_ISR, 4, st.RTC_ISR_INIT)
    assert rtc.read_register(st.RTC_ISR) & (st.RTC_ISR_INITF | st.RTC_ISR_RSF) == (
        st.RTC_ISR_INITF | st.RTC_ISR_RSF
    )


def test_pwr_backup_regulator_ready_follows_bre() -> None:
    pwr = Pwr()
    pwr.write(st.PWR_BASE + st.PWR_CSR, 4, st.PWR_CSR_BRE)
    assert pwr.read_register(st.PWR_CSR) == st.PWR_CSR_BRE | st.PWR_CSR_BRR


def test_aircr_sysresetreq_with_the_key_requests_a_reset() -> None:
    seen: list[int] = []
    scs = SystemControl(seen.append)
    scs.write(st.SCB_AIRCR, 4, 0x05FA0300)  # NVIC_PriorityGroupConfig: no reset
    scs.write(st.SCB_AIRCR, 4, 0x12340004)  # wrong key: no reset
    assert seen == []
    scs.write(st.SCB_AIRCR, 4, 0x05FA0304)
    assert seen == [0x05FA0304]
    assert scs.read_register(st.SCB_CPUID - st.SCS_BASE) == st.CPUID_CORTEX_M3


def test_merge_store_places_narrow_stores() -> None:
    assert merge_store(0x11223344, 2, 2, 0xAABB) == 0xAABB3344
    assert merge_store(0x11223344, 1, 1, 0xFF) == 0x1122FF44
