"""STM32F2 peripherals at register level, as the real bootloader and system code use them.

Every modelled block but the CRC unit is a 1 KB-page-aligned ``bytearray`` that Unicorn maps
**read-only**: reads are plain memory (no callback; ``FLASH_WaitForLastOperation`` polls SR at
full speed), and every store raises Unicorn's write-protection event, which the machine routes to
the block's ``write``. Unicorn then discards the store, so the block alone decides what the
register holds (write-1-to-clear SR bits, self-clearing STRT, ready bits that follow their enable
bits). That is the whole trick: no register here needs a read callback.

Modelled behaviour (everything else in a block is a plain register: it reads what was written):

* :class:`FlashInterface` (RM0033 2.4): KEYR/OPTKEYR key sequences, SR rc_w1 error bits (BSY
  never set: operations complete instantly), CR (writes ignored while locked; STRT with SER
  erases sector SNB, with MER every sector; LOCK ends the session), OPTCR (OPTSTRT applies the
  nWRP bits; write-protected sectors refuse program/erase with WRPERR), and CPU stores to flash:
  a store while PG is set is a program, without PG it is refused with PGSERR, misaligned with
  PGAERR. PSIZE is not checked against the store size: the program unit is the store's size.
* :class:`CrcUnit` (RM0033 3.4): DR is a CRC-32 (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no
  final XOR) over the 32-bit words written; CR.RESET reloads it. It is the one MMIO block:
  DR writes are queued and the CRC is computed over the queue (zlib, C speed) when DR is read.
* :class:`Rcc` (RM0033 5.3): CR ready bits follow their enables (HSI, HSE, PLL, PLLI2S);
  CFGR.SWS follows SW; CSR.LSIRDY follows LSION, CSR.RMVF clears the reset flags.
* :class:`Rtc` (RM0033 23.6): BKP0R..BKP19R are the **device's** backup registers (written
  through to the list given); ISR.RSF always reads set and ISR.INITF follows INIT; the write
  protection key (WPR) is not modelled.
* :class:`Pwr` (RM0033 4.4): CSR.BRR follows CSR.BRE.
* :class:`SystemControl` (ARMv7-M SCS): a write of VECTKEY + SYSRESETREQ to AIRCR requests a
  reset (the machine stops: outcome ``reset``); CPUID reads as a Cortex-M3.
"""

from __future__ import annotations

import array
import functools
import sys
import zlib
from collections.abc import Callable, Sequence

from flashroom.firmware import stm32f2 as st
from flashroom.firmware.flashport import FlashPort, FlashPrimitive

_M32 = 0xFFFFFFFF
_PG_LOCK = st.FLASH_CR_PG | st.FLASH_CR_LOCK
_UNIT_MASK = (0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF, 0, 0, 0, 0xFFFFFFFFFFFFFFFF)


def merge_store(old: int, offset: int, size: int, value: int) -> int:
    """The 32-bit register value after a ``size``-byte store at byte ``offset`` (0-3) of it."""
    shift = (offset & 3) * 8
    mask = ((1 << (8 * size)) - 1) << shift
    return ((old & ~mask) | ((value << shift) & mask)) & _M32


class RegisterBlock:
    """A page-aligned block of 32-bit registers backed by a bytearray Unicorn maps read-only.

    Subclasses override :meth:`write_register`; the default stores the value (a plain register).
    """

    def __init__(self, base: int, size: int = st.PAGE_SIZE) -> None:
        self.base = base
        self.size = size
        self.buf = bytearray(size)
        self.words = memoryview(self.buf).cast("I")

    def reset(self) -> None:
        """Registers to their reset values (all 0 by default)."""
        self.buf[:] = bytes(self.size)

    def write(self, addr: int, size: int, value: int) -> None:
        """A CPU store of ``size`` bytes at ``addr`` (the write-protection event)."""
        off = addr - self.base
        idx = off >> 2
        if size == 4 and not off & 3:
            self.write_register(idx * 4, value & _M32)
        else:
            self.write_register(idx * 4, merge_store(self.words[idx], off, size, value))

    def write_register(self, offset: int, value: int) -> None:
        """The register at ``offset`` is written with ``value`` (32-bit, merged)."""
        self.words[offset >> 2] = value

    def read_register(self, offset: int) -> int:
        """The register's current value."""
        return int(self.words[offset >> 2])


# ============================================================================ CRC
@functools.lru_cache(maxsize=1)
def crc_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(8-bit, 16-bit) lookup tables of the MSB-first CRC-32 with polynomial 0x04C11DB7."""
    t8 = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ st.CRC_POLY) if c & 0x80000000 else (c << 1)
        t8.append(c & _M32)
    t16 = []
    for i in range(65536):
        c = t8[i >> 8]
        c = ((c << 8) & _M32) ^ t8[(c >> 24) ^ (i & 0xFF)]
        t16.append(c)
    return tuple(t8), tuple(t16)


def crc32_words(words: Sequence[int], crc: int = st.CRC_INIT) -> int:
    """What the STM32 CRC unit's DR holds after ``words`` are written to it from ``crc``
    (table-driven, 16 bits per step)."""
    _, t16 = crc_tables()
    for w in words:
        crc = ((crc << 16) & _M32) ^ t16[(crc >> 16) ^ (w >> 16)]
        crc = ((crc << 16) & _M32) ^ t16[(crc >> 16) ^ (w & 0xFFFF)]
    return crc


_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_WORD = next(t for t in "IL" if array.array(t).itemsize == 4)


def _rev32(x: int) -> int:
    return int.from_bytes(x.to_bytes(4, "big").translate(_REV8), "little")


def crc32_words_fast(words: Sequence[int], crc: int = st.CRC_INIT) -> int:
    """:func:`crc32_words` at C speed: the MSB-first CRC is zlib's reflected CRC-32 over the
    bit-reversed bytes with a bit-reversed register (same polynomial, no final XOR)."""
    if not words:
        return crc
    a = array.array(_WORD, words)
    if sys.byteorder == "little":
        a.byteswap()  # MSB first: each word's bytes in big-endian order
    data = a.tobytes().translate(_REV8)
    return _rev32(~zlib.crc32(data, ~_rev32(crc) & _M32) & _M32)


class CrcUnit(RegisterBlock):
    """The CRC calculation unit at 0x40023000 (RM0033 3.4).

    Mapped as MMIO, not as a read-only page: words written to DR are only queued (the write
    callback is one ``list.append``) and the CRC over the queue is computed at C speed when
    anything reads or changes the unit. DR is read once per ``Compute_CRC32``.
    """

    def __init__(self) -> None:
        super().__init__(st.CRC_BASE)
        #: DR words not yet folded into DR (never rebound: the machine holds its ``append``)
        self.pending: list[int] = []
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.pending.clear()
        self.words[st.CRC_DR >> 2] = st.CRC_INIT

    def settle(self) -> None:
        """Fold the queued DR words into DR."""
        if self.pending:
            self.words[0] = crc32_words_fast(self.pending, self.words[0])
            self.pending.clear()

    def mmio_read(self, offset: int, size: int) -> int:
        """A CPU read of ``size`` bytes at ``offset`` into the unit's page."""
        self.settle()
        idx = offset >> 2
        if idx >= len(self.words):
            return 0
        return (self.words[idx] >> ((offset & 3) * 8)) & ((1 << (8 * size)) - 1)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """A CPU store into the unit's page (DR words are queued)."""
        if offset == st.CRC_DR and size == 4:
            self.pending.append(value & _M32)
            return
        self.write(self.base + offset, size, value)

    def read_register(self, offset: int) -> int:
        self.settle()
        return super().read_register(offset)

    def write_dr(self, addr: int, size: int, value: int) -> None:
        """One (possibly narrow) write to DR: RM0033 feeds the merged 32-bit word."""
        if size != 4:
            value = merge_store(0, addr - self.base, size, value)
        self.pending.append(value & _M32)

    def write_register(self, offset: int, value: int) -> None:
        if offset == st.CRC_DR:
            self.pending.append(value)
        elif offset == st.CRC_IDR:
            self.words[offset >> 2] = value & 0xFF
        elif offset == st.CRC_CR and value & st.CRC_CR_RESET:
            self.pending.clear()
            self.words[st.CRC_DR >> 2] = st.CRC_INIT  # CR.RESET reads as 0 (it self-clears)
        # the rest of the page is reserved: writes are ignored


# ============================================================================ RCC, PWR, RTC
class Rcc(RegisterBlock):
    """Reset and clock control at 0x40023800 (RM0033 5.3)."""

    def __init__(self, reset_flags: int = st.RCC_CSR_POWER_ON) -> None:
        super().__init__(st.RCC_BASE)
        self.reset_flags = reset_flags
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.words[st.RCC_CR >> 2] = st.RCC_CR_RESET
        self.words[st.RCC_CSR >> 2] = self.reset_flags & st.RCC_CSR_RESET_FLAGS

    def write_register(self, offset: int, value: int) -> None:
        if offset == st.RCC_CR:
            for enable, ready in st.RCC_CR_READY:
                value = (value & ~(1 << ready)) | (((value >> enable) & 1) << ready)
        elif offset == st.RCC_CFGR:
            sw = value & st.RCC_CFGR_SW_MASK
            value = (value & ~(st.RCC_CFGR_SW_MASK << 2)) | (sw << 2)
        elif offset == st.RCC_CSR:
            flags = self.words[offset >> 2] & st.RCC_CSR_RESET_FLAGS
            if value & st.RCC_CSR_RMVF:
                flags = 0
            value = (value & ~st.RCC_CSR_RESET_FLAGS & ~st.RCC_CSR_RMVF) | flags
            value = (value & ~st.RCC_CSR_LSIRDY) | ((value & st.RCC_CSR_LSION) << 1)
        self.words[offset >> 2] = value


class Pwr(RegisterBlock):
    """Power control at 0x40007000 (RM0033 4.4)."""

    def __init__(self) -> None:
        super().__init__(st.PWR_BASE)

    def write_register(self, offset: int, value: int) -> None:
        if offset == st.PWR_CSR:
            value = (value & ~st.PWR_CSR_BRR) | (st.PWR_CSR_BRR if value & st.PWR_CSR_BRE else 0)
        self.words[offset >> 2] = value


class Rtc(RegisterBlock):
    """The RTC at 0x40002800; its backup registers are the device's (spec 8.4, 8.5).

    Args:
        backup: the device's DR0..DR19 (a list, e.g. ``BackupRegisters.regs``), read at reset
            and written through on every store.
    """

    def __init__(self, backup: list[int]) -> None:
        super().__init__(st.RTC_BASE)
        self.backup = backup
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.words[st.RTC_ISR >> 2] = 0x7 | st.RTC_ISR_RSF  # RM0033 reset value + synchronised
        for i, v in enumerate(self.backup[: st.RTC_BKP_COUNT]):
            self.words[(st.RTC_BKP0R >> 2) + i] = v & _M32

    def write_register(self, offset: int, value: int) -> None:
        if offset == st.RTC_ISR:
            value |= st.RTC_ISR_RSF
            value = (value & ~st.RTC_ISR_INITF) | ((value & st.RTC_ISR_INIT) >> 1)
        elif st.RTC_BKP0R <= offset < st.RTC_BKP0R + 4 * st.RTC_BKP_COUNT:
            i = (offset - st.RTC_BKP0R) >> 2
            if i < len(self.backup):
                self.backup[i] = value
        self.words[offset >> 2] = value


# ============================================================================ SCS
class SystemControl(RegisterBlock):
    """The System Control Space at 0xE000E000 (4 pages): AIRCR reset requests, CPUID.

    Args:
        on_reset: called when the code requests a system reset (``NVIC_SystemReset``).
    """

    def __init__(self, on_reset: Callable[[int], None]) -> None:
        super().__init__(st.SCS_BASE, st.SCS_SIZE)
        self.on_reset = on_reset
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.words[(st.SCB_CPUID - st.SCS_BASE) >> 2] = st.CPUID_CORTEX_M3

    def write_register(self, offset: int, value: int) -> None:
        addr = self.base + offset
        if addr == st.SCB_CPUID:
            return  # read-only
        if addr == st.SCB_AIRCR:
            if value >> 16 == st.AIRCR_VECTKEY and value & st.AIRCR_SYSRESETREQ:
                self.on_reset(value)
            value = (value & 0xFFFF) | (0xFA05 << 16)  # reads back VECTKEYSTAT
        self.words[offset >> 2] = value


# ============================================================================ FLASH interface
class FlashInterface(RegisterBlock):
    """The embedded flash interface at 0x40023C00 and the CPU's stores to flash (RM0033 2.4).

    Args:
        flash: the device's NorFlash (geometry: sector index of an address).
        port: where programs and erases go (the granularity contract).
        write_protected: sectors write-protected in the option bytes at reset (nWRP = 0).
        fail_bits: the SR bit a ``fail`` fault raises, per operation kind.
    """

    def __init__(
        self,
        flash: FlashPrimitive,
        port: FlashPort,
        *,
        write_protected: frozenset[int] = frozenset(),
        fail_bits: st.FlashErrorBits = st.DEFAULT_FAIL_BITS,
    ) -> None:
        super().__init__(st.FLASH_R_BASE)
        self.port = port
        self.fail_bits = fail_bits
        self.base_addr = flash.base
        self.nsectors = len(flash.chip.sectors)
        self.write_protected = write_protected
        # sector index per 16 KB granule of the chip (the smallest STM32F2 sector)
        self._granule = [
            flash.sector_index(flash.base + g * 0x4000) for g in range(flash.size // 0x4000)
        ]
        self._key = 0
        self._optkey = 0
        #: effective nWRP bits (bit i set = sector i writable), from the option bytes
        self.nwrp = 0
        port.on_fail = self._on_fail
        self.reset()

    def reset(self) -> None:
        super().reset()
        w = self.words
        w[st.FLASH_CR >> 2] = st.FLASH_CR_RESET
        nwrp = 0xFFF & ~sum(1 << s for s in self.write_protected if 0 <= s < 12)
        self.nwrp = nwrp
        w[st.FLASH_OPTCR >> 2] = (st.FLASH_OPTCR_RESET & ~st.FLASH_OPTCR_NWRP_MASK) | (
            nwrp << st.FLASH_OPTCR_NWRP_SHIFT
        )
        self._key = 0
        self._optkey = 0

    @property
    def locked(self) -> bool:
        """CR.LOCK."""
        return bool(self.words[st.FLASH_CR >> 2] & st.FLASH_CR_LOCK)

    def _on_fail(self, kind: str) -> None:
        bit = self.fail_bits.erase if kind == "erase" else self.fail_bits.program
        self.words[st.FLASH_SR >> 2] |= bit

    # ------------------------------------------------------------------ the hot paths
    def write_cr(self, addr: int, size: int, value: int) -> None:
        """A store to FLASH_CR (hooked alone: four per programmed word)."""
        w = self.words
        old = w[4]
        if size != 4:
            value = merge_store(old, addr & 3, size, value)
        if old & st.FLASH_CR_LOCK:
            return  # RM0033 2.4.5: CR cannot be written while locked
        if value & st.FLASH_CR_LOCK:
            w[4] = (value & ~st.FLASH_CR_STRT) & _M32
            self.port.end_session()
            return
        if value & st.FLASH_CR_STRT:
            w[4] = value & ~st.FLASH_CR_STRT
            self._start(value)
            return
        w[4] = value & _M32

    def store(self, addr: int, size: int, value: int) -> None:
        """A CPU store to flash (``addr`` is the flash address, alias already resolved)."""
        w = self.words
        cr = w[4]
        if cr & _PG_LOCK != st.FLASH_CR_PG:
            w[3] |= st.FLASH_SR_PGSERR  # a write without the programming sequence
            return
        if addr & (size - 1):
            w[3] |= st.FLASH_SR_PGAERR
            return
        if self.nwrp != 0xFFF:
            sector = self._granule[(addr - self.base_addr) >> 14]
            if sector < 12 and not (self.nwrp >> sector) & 1:
                w[3] |= st.FLASH_SR_WRPERR
                return
        if self.port.program(addr, size, value & _UNIT_MASK[size]) and cr & st.FLASH_CR_EOPIE:
            w[3] |= st.FLASH_SR_EOP

    # ------------------------------------------------------------------ the rest
    def write_register(self, offset: int, value: int) -> None:
        w = self.words
        if offset == st.FLASH_ACR:
            w[0] = value
        elif offset == st.FLASH_KEYR:
            self._write_key(value)
        elif offset == st.FLASH_OPTKEYR:
            self._write_optkey(value)
        elif offset == st.FLASH_SR:
            w[3] &= ~(value & st.FLASH_SR_W1C)
        elif offset == st.FLASH_CR:
            self.write_cr(self.base + offset, 4, value)
        elif offset == st.FLASH_OPTCR:
            self._write_optcr(value)
        # reserved offsets: ignored

    def _write_key(self, value: int) -> None:
        if not self.locked:
            return
        if self._key == 0 and value == st.FLASH_KEY1:
            self._key = 1
        elif self._key == 1 and value == st.FLASH_KEY2:
            self._key = 0
            self.words[st.FLASH_CR >> 2] &= ~st.FLASH_CR_LOCK
            self.port.begin_session()
        else:
            self._key = 0  # a wrong sequence: stays locked (RM0033 also bus-faults; not modelled)

    def _write_optkey(self, value: int) -> None:
        optcr = self.words[st.FLASH_OPTCR >> 2]
        if not optcr & st.FLASH_OPTCR_OPTLOCK:
            return
        if self._optkey == 0 and value == st.FLASH_OPT_KEY1:
            self._optkey = 1
        elif self._optkey == 1 and value == st.FLASH_OPT_KEY2:
            self._optkey = 0
            self.words[st.FLASH_OPTCR >> 2] = optcr & ~st.FLASH_OPTCR_OPTLOCK
        else:
            self._optkey = 0

    def _write_optcr(self, value: int) -> None:
        idx = st.FLASH_OPTCR >> 2
        if self.words[idx] & st.FLASH_OPTCR_OPTLOCK:
            return  # locked: ignored
        if value & st.FLASH_OPTCR_OPTSTRT:
            # the option bytes are programmed instantly: the nWRP bits take effect
            self.nwrp = (value >> st.FLASH_OPTCR_NWRP_SHIFT) & 0xFFF
            value &= ~st.FLASH_OPTCR_OPTSTRT
        self.words[idx] = value

    def _start(self, cr: int) -> None:
        """CR.STRT: an erase (SER: sector SNB; MER: every sector)."""
        w = self.words
        if cr & st.FLASH_CR_PG or not cr & (st.FLASH_CR_SER | st.FLASH_CR_MER):
            w[3] |= st.FLASH_SR_PGSERR
            return
        if cr & st.FLASH_CR_MER:
            if self.nwrp != 0xFFF:
                w[3] |= st.FLASH_SR_WRPERR
                return
            sectors = list(range(self.nsectors))
        else:
            snb = (cr & st.FLASH_CR_SNB_MASK) >> st.FLASH_CR_SNB_SHIFT
            if snb >= self.nsectors:
                w[3] |= st.FLASH_SR_PGSERR
                return
            if snb < 12 and not (self.nwrp >> snb) & 1:
                w[3] |= st.FLASH_SR_WRPERR
                return
            sectors = [snb]
        ok = True
        for s in sectors:
            ok = self.port.erase(s) and ok
        if ok and cr & st.FLASH_CR_EOPIE:
            w[3] |= st.FLASH_SR_EOP


__all__ = [
    "CrcUnit",
    "FlashInterface",
    "Pwr",
    "Rcc",
    "RegisterBlock",
    "Rtc",
    "SystemControl",
    "crc32_words",
    "crc32_words_fast",
    "crc_tables",
    "merge_store",
]
