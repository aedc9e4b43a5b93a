"""STM32F2xx peripheral facts the real-firmware runner models, as data (RM0033).

Addresses, register offsets, bit positions and reset values only: no behaviour. The behaviour is
in :mod:`flashroom.firmware.peripherals`; what Particle puts where is in
:mod:`flashroom.firmware.targets`.

Source: ST RM0033 rev 9 (STM32F205/207/215/217 reference manual): memory map (section 2.3),
RCC (5.3), GPIO (6.4), CRC (3.4), FLASH interface (2.4 "Flash interface registers"), RTC backup
registers (23.6.20), PWR (4.4); ARM DDI0337 (Cortex-M3 TRM) for the System Control Space.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The smallest page Unicorn maps on ARM (TARGET_PAGE_BITS 10): every modelled register block
#: is one or more whole 1 KB pages.
PAGE_SIZE = 0x400

# ---------------------------------------------------------------------------- memory map
PERIPH_BASE = 0x40000000
#: APB1 + APB2 + AHB1 (RM0033 table 1): 0x40000000-0x4007FFFF.
PERIPH_END = 0x40080000
#: Cortex-M3 bit-band aliases (ARM DDI0337 3.7): 1 word per bit of the first MB of each region.
SRAM_BITBAND = (0x22000000, 0x20000000)
PERIPH_BITBAND = (0x42000000, 0x40000000)
BITBAND_SIZE = 0x02000000
#: Private peripheral bus (ITM, DWT, FPB, SCS, TPIU...): 0xE0000000-0xE00FFFFF.
PPB_BASE = 0xE0000000
PPB_END = 0xE0100000

#: System memory (ST's ROM bootloader, RM0033 table 1); Device OS never touches it, so the
#: runner puts its return trap there.
SYSTEM_MEMORY = 0x1FFF0000

# ---------------------------------------------------------------------------- RCC (RM0033 5.3)
RCC_BASE = 0x40023800
RCC_CR = 0x00
RCC_CFGR = 0x08
RCC_CSR = 0x74
#: (enable bit, ready bit) pairs of RCC_CR: HSI, HSE, PLL, PLLI2S.
RCC_CR_READY = ((0, 1), (16, 17), (24, 25), (26, 27))
RCC_CR_RESET = 0x00000083  # HSION | HSIRDY, HSITRIM = 16
RCC_CFGR_SW_MASK = 0x3  # bits 0-1; SWS (bits 2-3) mirrors it
RCC_CSR_LSION = 1 << 0
RCC_CSR_LSIRDY = 1 << 1
RCC_CSR_RMVF = 1 << 24
#: Reset flags (RCC_CSR bits 25-31).
RCC_CSR_BORRSTF = 1 << 25
RCC_CSR_PINRSTF = 1 << 26
RCC_CSR_PORRSTF = 1 << 27
RCC_CSR_SFTRSTF = 1 << 28
RCC_CSR_IWDGRSTF = 1 << 29
RCC_CSR_WWDGRSTF = 1 << 30
RCC_CSR_LPWRRSTF = 1 << 31
RCC_CSR_RESET_FLAGS = 0xFE000000
#: After a power-on reset: POR, PIN and BOR flags set (RM0033 5.3.21 reset value 0x0E000000).
RCC_CSR_POWER_ON = RCC_CSR_BORRSTF | RCC_CSR_PINRSTF | RCC_CSR_PORRSTF

# ---------------------------------------------------------------------------- FLASH (RM0033 2.4)
FLASH_R_BASE = 0x40023C00
FLASH_ACR = 0x00
FLASH_KEYR = 0x04
FLASH_OPTKEYR = 0x08
FLASH_SR = 0x0C
FLASH_CR = 0x10
FLASH_OPTCR = 0x14
FLASH_KEY1 = 0x45670123
FLASH_KEY2 = 0xCDEF89AB
FLASH_OPT_KEY1 = 0x08192A3B
FLASH_OPT_KEY2 = 0x4C5D6E7F
# SR bits
FLASH_SR_EOP = 1 << 0
FLASH_SR_OPERR = 1 << 1
FLASH_SR_WRPERR = 1 << 4
FLASH_SR_PGAERR = 1 << 5
FLASH_SR_PGPERR = 1 << 6
FLASH_SR_PGSERR = 1 << 7
FLASH_SR_BSY = 1 << 16
#: The rc_w1 bits of SR (written 1 to clear).
FLASH_SR_W1C = (
    FLASH_SR_EOP
    | FLASH_SR_OPERR
    | FLASH_SR_WRPERR
    | FLASH_SR_PGAERR
    | FLASH_SR_PGPERR
    | FLASH_SR_PGSERR
)
# CR bits
FLASH_CR_PG = 1 << 0
FLASH_CR_SER = 1 << 1
FLASH_CR_MER = 1 << 2
FLASH_CR_SNB_SHIFT = 3
FLASH_CR_SNB_MASK = 0xF << 3
FLASH_CR_PSIZE_SHIFT = 8
FLASH_CR_PSIZE_MASK = 0x3 << 8
FLASH_CR_STRT = 1 << 16
FLASH_CR_EOPIE = 1 << 24
FLASH_CR_ERRIE = 1 << 25
FLASH_CR_LOCK = 1 << 31
FLASH_CR_RESET = FLASH_CR_LOCK
#: PSIZE encodings -> program unit in bytes (x8, x16, x32, x64).
FLASH_PSIZE_BYTES = (1, 2, 4, 8)
# OPTCR bits
FLASH_OPTCR_OPTLOCK = 1 << 0
FLASH_OPTCR_OPTSTRT = 1 << 1
FLASH_OPTCR_NWRP_SHIFT = 16
FLASH_OPTCR_NWRP_MASK = 0xFFF << 16
#: RM0033 2.4.6: OPTCR reset value (OPTLOCK, RDP level 0 = 0xAA, no sector write-protected).
FLASH_OPTCR_RESET = 0x0FFFAAED

# ---------------------------------------------------------------------------- CRC (RM0033 3.4)
CRC_BASE = 0x40023000
CRC_DR = 0x00
CRC_IDR = 0x04
CRC_CR = 0x08
CRC_CR_RESET = 1 << 0
CRC_POLY = 0x04C11DB7
CRC_INIT = 0xFFFFFFFF

# ---------------------------------------------------------------------------- RTC (RM0033 23.6)
RTC_BASE = 0x40002800
RTC_ISR = 0x0C
RTC_ISR_INITF = 1 << 6
RTC_ISR_RSF = 1 << 5
RTC_ISR_INIT = 1 << 7
RTC_BKP0R = 0x50
RTC_BKP_COUNT = 20

# ---------------------------------------------------------------------------- PWR (RM0033 4.4)
PWR_BASE = 0x40007000
PWR_CR = 0x00
PWR_CSR = 0x04
PWR_CSR_BRR = 1 << 3  # backup regulator ready, mirrors BRE
PWR_CSR_BRE = 1 << 9

# ---------------------------------------------------------------------------- GPIO (RM0033 6.4)
GPIO_BASE = 0x40020000
GPIO_STRIDE = 0x400
GPIO_PORTS = "ABCDEFGHI"
GPIO_IDR = 0x10

# ---------------------------------------------------------------------------- USB OTG FS
USB_OTG_FS_BASE = 0x50000000
USB_OTG_FS_SIZE = 0x40000

# ---------------------------------------------------------------------------- SCS (DDI0337)
SCS_BASE = 0xE000E000
SCS_SIZE = 0x1000
SCB_CPUID = 0xE000ED00
SCB_VTOR = 0xE000ED08
SCB_AIRCR = 0xE000ED0C
AIRCR_VECTKEY = 0x05FA
AIRCR_SYSRESETREQ = 1 << 2
#: Cortex-M3 r2p0 (what an STM32F205 reports).
CPUID_CORTEX_M3 = 0x412FC230


@dataclass(frozen=True)
class FlashErrorBits:
    """Which SR error bit a failed flash operation raises (RM0033 2.4.5 FLASH_SR).

    The STM32 sets WRPERR when the target sector is write-protected (the error an erase can
    meet) and PGSERR/PGPERR/PGAERR for programming sequence/parallelism/alignment errors. A
    ``fail`` fault injected through :meth:`NorFlash.arm_fault` has no real cause, so which bit
    it shows is a choice: by default an erase shows WRPERR, a program PGPERR. Every bit makes
    ``FLASH_GetStatus`` report an error (WRPERR as FLASH_ERROR_WRP, the others as
    FLASH_ERROR_PROGRAM).
    """

    erase: int = FLASH_SR_WRPERR
    program: int = FLASH_SR_PGPERR


DEFAULT_FAIL_BITS = FlashErrorBits()
