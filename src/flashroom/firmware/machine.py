"""An STM32F205 in Unicorn: real ARM code against flashroom's NorFlash, instruction by instruction.

Memory map (chip facts in :mod:`~flashroom.firmware.stm32f2`, Particle facts in
:mod:`~flashroom.firmware.targets`):

* flash (and its alias at 0): a ``bytearray`` view of the device's
  :class:`~flashroom.emu.flash.NorFlash`, mapped read+execute; every CPU store to it goes to the
  FLASH interface model and, when it is a program, through
  :class:`~flashroom.firmware.flashport.FlashPort` to NorFlash (the granularity contract is
  documented there);
* SRAM, the backup SRAM page, every peripheral the firmware touches without needing behaviour
  (GPIO, timers, USART, NVIC, SysTick...): plain memory, zero at power-on; GPIO IDRs read high
  (the SETUP/MODE button released) unless ``button_pressed``;
* the modelled register blocks (:mod:`~flashroom.firmware.peripherals`): FLASH interface, CRC
  unit, RCC, PWR, RTC (with the device's backup registers), the System Control Space;
* the bit-band aliases of SRAM and peripherals (ARMv7-M: Unicorn has none): one word per bit,
  routed to the target register;
* USB OTG FS: not modelled; the first access ends the run as ``dfu``;
* a trap page at 0x1FFF0000 (STM32 system memory, never used by Device OS) that
  :meth:`Machine.call` returns to.

Anything else is unmapped: touching it ends the run as ``crash`` with the PC and the address.
Interrupts and exceptions are not delivered (there is no NVIC/SysTick model and none is needed on
the update path, spec 11): the CPU raising one is a ``crash`` too. What needs SysTick does not
finish: a held MODE button (``main.c`` times it with ``TimingBUTTON``, which ``SysTick_Handler``
counts down) ends as ``hang``. The backup SRAM is zeroed at power-on like SRAM (flashroom's
device state does not carry it); the RTC backup registers are the device's and persist.

Speed (spec 11 "where the time goes"): register reads are never hooked, stores only where the
block needs behaviour, and those callbacks bypass the Python binding's wrapper layer.

Ctrl-C (issue 12 #11): Python runs a signal handler at the next bytecode of the main thread, which
during ``emu_start`` is the entry of the next callback, before any ``try`` in it; a
KeyboardInterrupt raised there is printed and dropped by ctypes and the run goes on. So for the
length of each run SIGINT gets a handler that only notes the signal and stops the engine; once
``emu_start`` has returned, :meth:`Machine.run` hands the signal to the handler that was there
before (Python's default raises KeyboardInterrupt), outside every callback.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

import unicorn as _unicorn
from unicorn import arm_const as arm
from unicorn.unicorn_const import (
    UC_ARCH_ARM,
    UC_HOOK_CODE,
    UC_HOOK_INTR,
    UC_HOOK_MEM_FETCH_PROT,
    UC_HOOK_MEM_READ_PROT,
    UC_HOOK_MEM_UNMAPPED,
    UC_HOOK_MEM_WRITE_PROT,
    UC_MODE_MCLASS,
    UC_MODE_THUMB,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
)

from flashroom.errors import EmulatorError, PowerCut
from flashroom.firmware import stm32f2 as st
from flashroom.firmware.flashport import FlashPort, FlashPrimitive, FlashRecorder
from flashroom.firmware.outcome import FirmwareOutcome, FirmwareRun
from flashroom.firmware.peripherals import (
    CrcUnit,
    FlashInterface,
    Pwr,
    Rcc,
    RegisterBlock,
    Rtc,
    SystemControl,
)
from flashroom.firmware.targets import ELECTRON, FirmwareTarget
from flashroom.ranges import AddrRange, fmt_addr

#: Where :meth:`Machine.call` returns to: a page of ``b .`` in STM32 system memory.
TRAP_ADDRESS = st.SYSTEM_MEMORY
#: Instructions a run may execute before it is a ``hang`` (a 256 KB apply needs ~21 M).
DEFAULT_BUDGET = 200_000_000

_M32 = 0xFFFFFFFF

# Unicorn's binding is only partly annotated: the engine is handled as Any here.
_UC: Any = _unicorn
UcError: type[Exception] = _UC.UcError

#: What the Python callbacks Unicorn makes are for (the cost driver, spec 11).
CALLBACK_KINDS = ("flash_store", "flash_cr", "crc_dr", "register", "other")
_STORE, _CR, _DR, _REG, _OTHER = range(len(CALLBACK_KINDS))

#: A raw Unicorn write-protect callback: (handle, access, address, size, value, user_data).
_RawWriteHook = Callable[[object, int, int, int, int, object], bool]


@dataclass(frozen=True)
class MachineSnapshot:
    """CPU registers, every RAM, the register blocks, the flash view and the device's flash."""

    context: Any
    ram: tuple[tuple[int, bytes], ...]
    blocks: tuple[bytes, ...]
    flash_if: tuple[int, int, int]
    view: bytes
    flash: Any
    backup: tuple[int, ...]
    port: tuple[int, int]


class BackupRegisterFile(Protocol):
    """The device's RTC backup registers: ``flashroom.emu.sysflags.BackupRegisters`` is one."""

    regs: list[int]


#: What a machine takes as the device's backup registers: an object with ``regs``, the list
#: itself, or None (all zero).
Backup = BackupRegisterFile | list[int] | None


class Machine:
    """One emulated STM32F205 with the device's flash and backup registers.

    Args:
        flash: the device's NorFlash; every program and erase the code makes goes through it.
        backup: the device's RTC backup registers (written through during the run).
        target: the Particle facts (addresses).
        reset_flags: RCC_CSR reset flags the code reads (default: a power-on reset).
        button_pressed: the SETUP/MODE button held (its IDR bit reads low).
        write_protected: sectors write-protected in the option bytes at power-on.
        fail_bits: the SR bit a NorFlash ``fail`` fault shows as.
        recorder: records every NorFlash call (tests, reports).
        code_ranges: flash ranges that may hold executing code; a program or erase there drops
            Unicorn's translated code (default: ``target.code_regions``). Code run from
            elsewhere in flash must not be rewritten during the same run.
    """

    def __init__(
        self,
        flash: FlashPrimitive,
        backup: Backup = None,
        *,
        target: FirmwareTarget = ELECTRON,
        reset_flags: int = st.RCC_CSR_POWER_ON,
        button_pressed: bool = False,
        write_protected: frozenset[int] = frozenset(),
        fail_bits: st.FlashErrorBits = st.DEFAULT_FAIL_BITS,
        recorder: FlashRecorder | None = None,
        code_ranges: Sequence[AddrRange] | None = None,
    ) -> None:
        if flash.base != target.flash.start or flash.size != target.flash.size:
            raise EmulatorError(
                f"flash {fmt_addr(flash.base)}+{flash.size} does not match {target.name} flash "
                f"{target.flash}"
            )
        self.flash = flash
        self._backup_owner: BackupRegisterFile | None = None
        if backup is None:
            self.backup: list[int] = [0] * st.RTC_BKP_COUNT
        elif isinstance(backup, list):
            self.backup = backup
        else:
            self._backup_owner = backup
            self.backup = backup.regs
        self.target = target
        self.button_pressed = button_pressed
        self.recorder = recorder
        if code_ranges is None:
            code_ranges = target.code_regions
        self.uc: Any = _UC.Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc = self.uc
        with contextlib.suppress(UcError, AttributeError):  # older Unicorn: default M-class
            uc.ctl_set_cpu_model(arm.UC_CPU_ARM_CORTEX_M3)
        self.view = bytearray(flash.contents())
        self.port = FlashPort(
            flash,
            self.view,
            recorder=recorder,
            code_changed=self._code_changed,
            code_ranges=tuple((r.start, r.end) for r in code_ranges),
        )
        self.flash_if = FlashInterface(
            flash, self.port, write_protected=write_protected, fail_bits=fail_bits
        )
        self.crc = CrcUnit()
        self.rcc = Rcc(reset_flags)
        self.pwr = Pwr()
        self.rtc = Rtc(self.backup)
        self.scs = SystemControl(self._on_reset_request)
        self.blocks: tuple[RegisterBlock, ...] = (
            self.crc,
            self.rcc,
            self.flash_if,
            self.pwr,
            self.rtc,
            self.scs,
        )
        self._keep: list[Any] = []  # ctypes objects Unicorn points into
        self._ram: list[tuple[int, int]] = []  # plain RAM regions (for snapshots)
        #: Python callbacks by kind (see :data:`CALLBACK_KINDS`), cumulative
        self._counts = [0] * len(CALLBACK_KINDS)
        self._stop: tuple[FirmwareOutcome, int | None, int | None, str] | None = None
        self._error: BaseException | None = None
        self._fault_addr: int | None = None
        self._map_memory()
        self._install_hooks()
        self._power_on_context = uc.context_save()
        self._init_plain_ram()

    # ================================================================== memory map
    def _map_ptr(self, base: int, buf: bytearray, perms: int) -> None:
        cbuf = (ctypes.c_char * len(buf)).from_buffer(buf)
        self._keep.append(cbuf)
        self.uc.mem_map_ptr(base, len(buf), perms, cbuf)
        # mem_map_ptr ignores the missing write permission until mem_protect marks the region
        # read-only; then a store raises the write-protect hook and is discarded.
        self.uc.mem_protect(base, len(buf), perms)

    def _map_plain(self, start: int, end: int, taken: Sequence[tuple[int, int]]) -> None:
        cur = start
        for lo, hi in sorted(taken):
            if hi <= start or lo >= end:
                continue
            if lo > cur:
                self.uc.mem_map(cur, lo - cur, UC_PROT_ALL)
                self._ram.append((cur, lo - cur))
            cur = max(cur, hi)
        if cur < end:
            self.uc.mem_map(cur, end - cur, UC_PROT_ALL)
            self._ram.append((cur, end - cur))

    def _map_memory(self) -> None:
        t = self.target
        rx = UC_PROT_READ | UC_PROT_EXEC
        self._map_ptr(t.flash.start, self.view, rx)
        self._map_ptr(t.flash_alias, self.view, rx)
        self.uc.mem_map(t.sram.start, t.sram.size, UC_PROT_ALL)
        self._ram.append((t.sram.start, t.sram.size))
        trap = bytearray(b"\xfe\xe7" * (st.PAGE_SIZE // 2))  # b . (Thumb)
        self._trap = trap
        self._map_ptr(TRAP_ADDRESS, trap, rx)
        periph = [b for b in self.blocks if st.PERIPH_BASE <= b.base < st.PERIPH_END]
        for b in self.blocks:
            if b is not self.crc:
                self._map_ptr(b.base, b.buf, UC_PROT_READ)
        self._map_crc()
        taken = [(b.base, b.base + b.size) for b in periph]
        self._map_plain(st.PERIPH_BASE, st.PERIPH_END, taken)
        self._map_plain(st.PPB_BASE, st.PPB_END, [(self.scs.base, self.scs.base + self.scs.size)])
        self.uc.mmio_map(
            st.USB_OTG_FS_BASE, st.USB_OTG_FS_SIZE, self._usb_read, None, self._usb_write, None
        )
        for alias, region in (st.SRAM_BITBAND, st.PERIPH_BITBAND):
            self.uc.mmio_map(
                alias,
                st.BITBAND_SIZE,
                self._bitband_read,
                (alias, region),
                self._bitband_write,
                (alias, region),
            )

    def _init_plain_ram(self) -> None:
        """Power-on contents of the plain regions: zero, GPIO IDRs high (button released)."""
        for base, size in self._ram:
            self.uc.mem_write(base, bytes(size))
        t = self.target
        for i, port in enumerate(st.GPIO_PORTS):
            idr = 0xFFFF
            if self.button_pressed and port == t.button_port:
                idr &= ~(1 << t.button_pin)
            idr_addr = st.GPIO_BASE + i * st.GPIO_STRIDE + st.GPIO_IDR
            self.uc.mem_write(idr_addr, struct.pack("<I", idr))

    # ================================================================== hooks
    def _install_hooks(self) -> None:
        t = self.target
        fi = self.flash_if
        self._hook_raw(t.flash.start, t.flash.end - 1, self._flash_store_cb(0))
        self._hook_raw(
            t.flash_alias,
            t.flash_alias + t.flash.size - 1,
            self._flash_store_cb(t.flash.start - t.flash_alias),
        )
        cr = fi.base + st.FLASH_CR
        self._hook_write(fi.base, cr - 1, fi.write)
        self._hook_raw(cr, cr + 3, self._flash_cr_cb())
        self._hook_write(cr + 4, fi.base + fi.size - 1, fi.write)
        for b in (self.rcc, self.pwr, self.rtc, self.scs):
            self._hook_write(b.base, b.base + b.size - 1, b.write)
        self.uc.hook_add(
            UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_FETCH_PROT | UC_HOOK_MEM_READ_PROT, self._invalid
        )
        self.uc.hook_add(UC_HOOK_INTR, self._interrupt)

    # The three hot callbacks (spec 11: ~4 CR writes and one CRC word per word copied, one
    # store per word programmed) are closures over local names: no attribute lookups on the
    # fast path, one Python frame per event.
    def _flash_cr_cb(self) -> _RawWriteHook:
        fi = self.flash_if
        words = fi.words
        slow = st.FLASH_CR_LOCK | st.FLASH_CR_STRT
        lock = st.FLASH_CR_LOCK
        counts = self._counts
        m32 = _M32

        def cb(_h: object, _acc: int, addr: int, size: int, value: int, _ud: object) -> bool:
            counts[_CR] += 1
            try:
                if size == 4 and not (value | words[4]) & slow:
                    words[4] = value & m32  # PG/PSIZE/SER/SNB: plain bits
                elif not words[4] & lock:
                    fi.write_cr(addr, size, value & _M32)
            except BaseException as e:  # ends the run; handled by run()
                self._hook_error(e)
            return True

        return cb

    def _map_crc(self) -> None:
        """The CRC unit as MMIO: a DR write is one ``list.append`` (see :class:`CrcUnit`)."""
        crc = self.crc
        pending_append = crc.pending.append
        counts = self._counts
        m32 = _M32

        def write(_h: object, offset: int, size: int, value: int, _ud: object) -> None:
            counts[_DR] += 1
            try:
                if offset == 0 and size == 4:
                    pending_append(value & m32)
                else:
                    crc.mmio_write(offset, size, value & m32)
            except BaseException as e:  # ends the run; handled by run()
                self._hook_error(e)

        def read(_h: object, offset: int, size: int, _ud: object) -> int:
            counts[_REG] += 1
            try:
                return crc.mmio_read(offset, size)
            except BaseException as e:  # ends the run; handled by run()
                self._hook_error(e)
                return 0

        try:
            from unicorn.unicorn_py3 import unicorn as _binding

            binding: Any = _binding
            rcb = binding.MMIO_READ_CFUNC(read)
            wcb = binding.MMIO_WRITE_CFUNC(write)
            status = binding.uclib.uc_mmio_map(
                self.uc._uch,
                ctypes.c_uint64(crc.base),
                ctypes.c_uint64(crc.size),
                rcb,
                None,
                wcb,
                None,
            )
            if status != 0:
                raise UcError(status)
            self._keep.extend((rcb, wcb))
        except (ImportError, AttributeError):  # pragma: no cover - other binding layout
            self.uc.mmio_map(
                crc.base,
                crc.size,
                lambda uc, off, size, ud: read(None, off, size, ud),
                None,
                lambda uc, off, size, value, ud: write(None, off, size, value, ud),
                None,
            )

    def _flash_store_cb(self, delta: int) -> _RawWriteHook:
        fi = self.flash_if
        store = fi.store
        counts = self._counts

        def cb(_h: object, _acc: int, addr: int, size: int, value: int, _ud: object) -> bool:
            counts[_STORE] += 1
            try:
                store(addr + delta, size, value & _M32)
            except BaseException as e:  # ends the run; handled by run()
                self._hook_error(e)
            return True

        return cb

    def _hook_write(self, begin: int, end: int, fn: Callable[[int, int, int], None]) -> None:
        """A write-protect hook on ``[begin, end]`` calling ``fn(addr, size, value)``."""
        counts = self._counts

        def cb(_h: object, _acc: int, addr: int, size: int, value: int, _ud: object) -> bool:
            counts[_REG] += 1
            try:
                fn(addr, size, value & _M32)
            except BaseException as e:  # ends the run; handled by run()
                self._hook_error(e)
            return True

        self._hook_raw(begin, end, cb)

    def _hook_raw(self, begin: int, end: int, cb: _RawWriteHook) -> None:
        """Register ``cb`` for stores to read-only memory in ``[begin, end]``.

        Straight through ctypes when the binding exposes its internals (half the per-call cost
        of ``Uc.hook_add``'s wrapper layers), else through the public API (``cb`` ignores its
        first argument, so both calling conventions work).
        """
        try:
            from unicorn.unicorn_py3 import unicorn as _binding

            binding: Any = _binding

            cfunc = binding.HOOK_MEM_INVALID_CFUNC(cb)
            handle = binding.uc_hook_h()
            status = binding.uclib.uc_hook_add(
                self.uc._uch,
                ctypes.byref(handle),
                UC_HOOK_MEM_WRITE_PROT,
                cfunc,
                None,
                ctypes.c_uint64(begin),
                ctypes.c_uint64(end),
            )
            if status != 0:
                raise UcError(status)
            self._keep.append(cfunc)
        except (ImportError, AttributeError):  # pragma: no cover - other binding layout
            self.uc.hook_add(UC_HOOK_MEM_WRITE_PROT, cb, None, begin, end)

    def _hook_error(self, e: BaseException) -> None:
        if self._error is None and self._stop is None:
            self._error = e
        self.uc.emu_stop()

    def _stop_run(
        self, outcome: FirmwareOutcome, *, target: int | None = None, reason: str = ""
    ) -> None:
        if self._stop is None and self._error is None:
            self._stop = (outcome, target, None, reason)
        self.uc.emu_stop()

    def _on_reset_request(self, value: int) -> None:
        self._stop_run(
            FirmwareOutcome.RESET,
            target=value,
            reason=f"AIRCR written with 0x{value:08x} (SYSRESETREQ)",
        )

    def _usb_read(self, uc: Any, offset: int, size: int, ud: object) -> int:
        self._counts[_OTHER] += 1
        self._usb(offset)
        return 0

    def _usb_write(self, uc: Any, offset: int, size: int, value: int, ud: object) -> None:
        self._counts[_OTHER] += 1
        self._usb(offset)

    def _usb(self, offset: int) -> None:
        addr = st.USB_OTG_FS_BASE + offset
        self._stop_run(
            FirmwareOutcome.DFU,
            target=addr,
            reason=f"USB OTG FS accessed at {fmt_addr(addr)}: DFU mode",
        )

    def _bitband_read(self, uc: Any, offset: int, size: int, ud: tuple[int, int]) -> int:
        self._counts[_OTHER] += 1
        word_addr = ud[1] + (offset >> 5)
        bit = (offset >> 2) & 7
        try:
            byte = int(self.uc.mem_read(word_addr, 1)[0])
        except UcError:
            self._fault_addr = ud[0] + offset
            self._stop_run(FirmwareOutcome.CRASH, reason="bit-band read of an unmapped address")
            return 0
        return (byte >> bit) & 1

    def _bitband_write(
        self, uc: Any, offset: int, size: int, value: int, ud: tuple[int, int]
    ) -> None:
        self._counts[_OTHER] += 1
        byte_addr = ud[1] + (offset >> 5)
        bit = (offset >> 2) & 7
        word_addr = byte_addr & ~3
        try:
            word = int.from_bytes(self.uc.mem_read(word_addr, 4), "little")
        except UcError:
            self._fault_addr = ud[0] + offset
            self._stop_run(FirmwareOutcome.CRASH, reason="bit-band write to an unmapped address")
            return
        shift = (byte_addr & 3) * 8 + bit
        new = (word & ~(1 << shift)) | ((value & 1) << shift)
        for b in self.blocks:
            if b.base <= word_addr < b.base + b.size:
                try:
                    b.write(word_addr, 4, new)
                except BaseException as e:
                    self._hook_error(e)
                return
        self.uc.mem_write(word_addr, new.to_bytes(4, "little"))

    def _invalid(
        self, uc: Any, access: int, address: int, size: int, value: int, ud: object
    ) -> bool:
        self._counts[_OTHER] += 1
        if self._fault_addr is None:
            self._fault_addr = address
        return False

    def _interrupt(self, uc: Any, intno: int, ud: object) -> None:
        self._counts[_OTHER] += 1
        self._stop_run(
            FirmwareOutcome.CRASH,
            reason=f"the CPU raised exception {intno} (no exception is expected: a fault)",
        )

    def _code_changed(self, start: int, end: int) -> None:
        self.uc.ctl_remove_cache(start, end)

    @property
    def callbacks(self) -> int:
        """Python callbacks Unicorn has made so far (all kinds)."""
        return sum(self._counts)

    def callback_counts(self) -> dict[str, int]:
        """Python callbacks so far by kind: flash stores, FLASH_CR writes, CRC_DR writes, other
        register stores, other events (jump detection, USB, bit-band, faults)."""
        return dict(zip(CALLBACK_KINDS, self._counts, strict=True))

    # ================================================================== memory access
    def read(self, addr: int, size: int) -> bytes:
        """Bytes as the CPU sees them."""
        return bytes(self.uc.mem_read(addr, size))

    def write(self, addr: int, data: bytes) -> None:
        """Host write into RAM (arguments for :meth:`call`, or code); never use it for flash.

        Code Unicorn translated from the range is dropped, so new code there runs.
        """
        self.uc.mem_write(addr, data)
        self.uc.ctl_remove_cache(addr, addr + len(data))

    def read_u32(self, addr: int) -> int:
        """The little-endian word the CPU reads at ``addr``."""
        return int.from_bytes(self.uc.mem_read(addr, 4), "little")

    def sync_flash(self) -> None:
        """Reload the CPU's flash view from NorFlash (after changes made outside a run)."""
        self.port.discard()
        self.view[:] = self.flash.contents()
        self.uc.ctl_flush_tb()

    # ================================================================== power
    def power_on(self) -> None:
        """Power-on reset: CPU, RAM, registers and the flash view from NorFlash.

        Backup registers keep their values (battery-backed, spec 8.4).
        """
        self.uc.context_restore(self._power_on_context)
        if self._backup_owner is not None:  # Device.restore() rebinds the list
            self.backup = self._backup_owner.regs
            self.rtc.backup = self.backup
        for b in self.blocks:
            b.reset()
        self._init_plain_ram()
        self.sync_flash()

    # ================================================================== running
    def run(
        self,
        pc: int,
        *,
        sp: int | None = None,
        budget: int = DEFAULT_BUDGET,
        confine: AddrRange | None = None,
        lr: int | None = None,
    ) -> FirmwareRun:
        """Execute from ``pc`` until an :class:`FirmwareOutcome` (never raises for firmware faults).

        Args:
            pc: the first instruction (Thumb bit optional).
            sp: the main stack pointer to start with (None: keep).
            budget: instructions before the run is a ``hang``.
            confine: the PC leaving this range (and its alias at 0) ends the run as ``jump``.
            lr: the link register (``call`` sets it to the trap).

        Raises:
            Exception: a bug in the emulator itself (not a firmware outcome) is re-raised.
            KeyboardInterrupt: Ctrl-C (SIGINT) during the run, or raised by a callback: the
                engine stops at the next callback and the run returns no outcome.
        """
        uc = self.uc
        if sp is not None:
            uc.reg_write(arm.UC_ARM_REG_SP, sp)
        if lr is not None:
            uc.reg_write(arm.UC_ARM_REG_LR, lr)
        self._stop = None
        self._error = None
        self._fault_addr = None
        start_cb = self.callbacks
        start_ops = self.port.ops
        code_hooks: list[int] = []
        if confine is not None:
            code_hooks = self._confine(confine)
        uc_error: Exception | None = None
        try:
            with self._sigint_stops_the_run():
                try:
                    uc.emu_start(pc | 1, TRAP_ADDRESS, count=budget)
                except UcError as e:
                    uc_error = e
        except BaseException:
            self._error = None  # the interrupt (or bug) wins over what a hook recorded
            raise
        finally:
            for h in code_hooks:
                uc.hook_del(h)
            if code_hooks:
                uc.ctl_flush_tb()
        result = self._result(uc_error, budget)
        if result.outcome is not FirmwareOutcome.OFF:
            try:
                self.port.flush()  # the end of execution ends an open chunk run
            except PowerCut as e:
                result = FirmwareRun(FirmwareOutcome.OFF, result.pc, reason=str(e), power_cut=e)
        else:
            self.port.discard()
        return FirmwareRun(
            result.outcome,
            result.pc,
            result.target,
            result.address,
            result.reason,
            result.r0,
            self.port.ops - start_ops,
            self.callbacks - start_cb,
            result.power_cut,
        )

    @contextlib.contextmanager
    def _sigint_stops_the_run(self) -> Iterator[None]:
        """SIGINT during the block stops the engine; the handler that was installed before gets
        the signal when the block ends (Python's default raises KeyboardInterrupt there; if it
        returns, KeyboardInterrupt is raised anyway: the run did not finish).

        Only in the main thread (the only one Python delivers signals to) and only over a
        Python-level handler: an ignored SIGINT (sweep workers) or the OS default is left alone.
        """
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is not threading.main_thread() or not callable(previous):
            yield
            return
        caught: list[tuple[int, FrameType | None]] = []
        uc = self.uc

        def note(signum: int, frame: FrameType | None) -> None:
            caught.append((signum, frame))
            with contextlib.suppress(UcError):  # stopping a finished run is harmless
                uc.emu_stop()

        signal.signal(signal.SIGINT, note)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            if caught:
                previous(*caught[0])
                # a handler that returns (it only set a flag): the run was cut short all the
                # same, and a cut-short run has no outcome to return
                raise KeyboardInterrupt

    def call(
        self,
        function: int,
        args: Sequence[int] = (),
        *,
        budget: int = DEFAULT_BUDGET,
        sp: int | None = None,
    ) -> FirmwareRun:
        """Call ``function(args...)`` (AAPCS: r0-r3, then the stack) until it returns.

        Returns:
            A :class:`FirmwareRun`; RETURN with ``r0`` when the function returned, else how the
            run ended (a crash inside the function is an outcome, not an exception).
        """
        uc = self.uc
        stack = sp if sp is not None else self.target.sram.end
        extra = [a & _M32 for a in args[4:]]
        stack -= 4 * len(extra)
        stack &= ~7
        if extra:
            uc.mem_write(stack, struct.pack(f"<{len(extra)}I", *extra))
        for reg, value in zip(
            (arm.UC_ARM_REG_R0, arm.UC_ARM_REG_R1, arm.UC_ARM_REG_R2, arm.UC_ARM_REG_R3),
            args[:4],
            strict=False,
        ):
            uc.reg_write(reg, value & _M32)
        return self.run(function, sp=stack, budget=budget, lr=TRAP_ADDRESS | 1)

    def _confine(self, region: AddrRange) -> list[int]:
        """Code hooks on everything outside ``region`` (and outside its alias)."""
        spans: list[tuple[int, int]] = []
        lo_alias = None
        if region.start in self.target.flash:
            lo_alias = region.start - self.target.flash.start + self.target.flash_alias
        edges = sorted(
            [(region.start, region.end)]
            + ([(lo_alias, lo_alias + region.size)] if lo_alias is not None else [])
        )
        cur = 0
        for lo, hi in edges:
            if lo > cur:
                spans.append((cur, lo - 1))
            cur = max(cur, hi)
        spans.append((cur, _M32))
        hooks = [self.uc.hook_add(UC_HOOK_CODE, self._left, None, lo, hi) for lo, hi in spans]
        self.uc.ctl_flush_tb()
        return hooks

    def _left(self, uc: Any, address: int, size: int, ud: object) -> None:
        self._counts[_OTHER] += 1
        self._stop_run(
            FirmwareOutcome.JUMP,
            target=address,
            reason=f"the PC left the region for {fmt_addr(address)}",
        )

    def _result(self, uc_error: Exception | None, budget: int) -> FirmwareRun:
        pc = self.uc.reg_read(arm.UC_ARM_REG_PC)
        if self._error is not None:
            err = self._error
            self._error = None
            if isinstance(err, PowerCut):
                return FirmwareRun(FirmwareOutcome.OFF, pc, reason=str(err), power_cut=err)
            raise err
        if self._stop is not None:
            outcome, target, _addr, reason = self._stop
            if outcome is FirmwareOutcome.CRASH:
                return FirmwareRun(outcome, pc, address=self._fault_addr, reason=reason)
            return FirmwareRun(outcome, pc, target=target, reason=reason)
        if uc_error is not None:
            addr = self._fault_addr
            where = "" if addr is None else f" at {fmt_addr(addr)}"
            return FirmwareRun(
                FirmwareOutcome.CRASH,
                pc,
                address=addr,
                reason=f"{uc_error}{where} (PC {fmt_addr(pc)})",
            )
        if pc == TRAP_ADDRESS:
            r0 = self.uc.reg_read(arm.UC_ARM_REG_R0)
            r0 = r0 - (1 << 32) if r0 & 0x80000000 else r0
            return FirmwareRun(FirmwareOutcome.RETURN, pc, r0=r0, reason="returned")
        return FirmwareRun(
            FirmwareOutcome.HANG, pc, reason=f"{budget} instructions executed, PC {fmt_addr(pc)}"
        )

    # ================================================================== snapshots
    def snapshot(self) -> MachineSnapshot:
        """Everything needed to come back here: CPU, RAM, registers, flash (view and NorFlash)."""
        self.crc.settle()
        return MachineSnapshot(
            self.uc.context_save(),
            tuple((base, bytes(self.uc.mem_read(base, size))) for base, size in self._ram),
            tuple(bytes(b.buf) for b in self.blocks),
            (self.flash_if.nwrp, self.port.session, self.port.ops),
            bytes(self.view),
            self.flash.snapshot(),
            tuple(self.backup),
            (self.port.session, self.port.ops),
        )

    def restore(self, snap: MachineSnapshot) -> None:
        """Return to ``snap`` (an armed NorFlash fault stays armed)."""
        self.uc.context_restore(snap.context)
        for base, data in snap.ram:
            self.uc.mem_write(base, data)
        for b, data in zip(self.blocks, snap.blocks, strict=True):
            b.buf[:] = data
        self.crc.pending.clear()
        self.flash_if.nwrp = snap.flash_if[0]
        self.flash.restore(snap.flash)
        self.port.discard()
        self.view[:] = snap.view
        self.backup[:] = snap.backup
        self.port.session, self.port.ops = snap.port
        self.uc.ctl_flush_tb()


__all__ = [
    "CALLBACK_KINDS",
    "DEFAULT_BUDGET",
    "TRAP_ADDRESS",
    "Backup",
    "BackupRegisterFile",
    "FirmwareOutcome",
    "FirmwareRun",
    "Machine",
    "MachineSnapshot",
]
