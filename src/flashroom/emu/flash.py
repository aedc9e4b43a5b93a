"""Bit-accurate NOR flash with one mutation primitive and a power-cut hook (spec 8.6, 8.7).

Physics (spec 8.6):

* an erase sets the **whole containing sector** to 0xFF;
* programming can only clear bits: ``new = old AND data``; re-programming never fails (Device OS
  does not read back OTA writes, so programming over unerased data shows up only as a CRC failure).

Every mutation goes through :meth:`NorFlash._mutate`, which enforces the physics, counts the
operations, charges the modelled device time (datasheet figures, spec 8.7) and hosts the fault hook.
Higher layers (DCT, bootloader copy, OTA receive path, DFU) therefore become fault-injectable
without any code of their own.

Operation numbering (the contract the fault sweeps and the real-firmware runner rely on; it
lives here only, in :meth:`NorFlash.op_count_of` and :meth:`NorFlash.op_bytes`):

* granularity ``"word"``: every program unit a ``program`` call writes is one operation. The
  unit is the ``width`` the code used (4: a 32-bit word, 2: a halfword, 1: a byte; the STM32
  FLASH_CR PSIZE of the store, spec 8.6, 11), and every byte of a remainder shorter than the unit
  is one more operation (``FLASH_Update`` programs such a tail byte by byte, spec 4.1 #3). An
  erase is one operation;
* granularity ``"chunk"``: every ``program`` call is one operation; an erase is one operation.

``arm_fault(N)`` numbers operations from 0 starting at the moment of arming. Operations 0..N-1
complete. With ``kind="cut"`` operation N does not happen (or, with ``torn``, happens partially),
then :class:`~flashroom.errors.PowerCut` is raised and the fault disarms itself. With
``kind="fail"`` operation N fails without changing the flash (the chip sets an FLASH_SR error bit,
as on a brown-out) and :class:`~flashroom.errors.FlashOpError` is raised; the device keeps running.

Observers (:meth:`NorFlash.subscribe`) see every read, program and erase as a
:class:`FlashEvent` with its operation numbers and width, so sweeps and the real-firmware runner
watch the flash without replacing any method.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from flashroom.errors import EmulatorError, FlashOpError, PowerCut
from flashroom.geometry import STM32F205XG, FlashChip
from flashroom.ranges import fmt_addr

Granularity = Literal["word", "chunk"]
GRANULARITIES: tuple[Granularity, ...] = ("word", "chunk")

#: Per-call log entries kept (older ones are summarised in the counters only).
LOG_LIMIT = 4096

#: ``width`` for a call programmed as Device OS's ``InternalFlashStore::write`` does
#: (flash_storage_impl.h:40-76, spec 11): at each address a word when it is 4-aligned and at least
#: 4 bytes remain, else a halfword when 2-aligned and at least 2 remain, else a byte.
ALIGNED = 0

#: Program units the STM32F2 flash interface supports (FLASH_CR PSIZE x8/x16/x32, RM0033 3.6),
#: and :data:`ALIGNED`.
PROGRAM_WIDTHS = (1, 2, 4, ALIGNED)


def program_units(addr: int, size: int, width: int = 4) -> list[int]:
    """The program units of a ``size``-byte call at ``addr``, in order (bytes per unit).

    ``width`` 1, 2 or 4: ``size // width`` units of ``width``, then the remainder byte by byte
    (``FLASH_Update``'s tail, spec 4.1 #3). :data:`ALIGNED`: by alignment, as
    ``InternalFlashStore::write``.
    """
    if width != ALIGNED:
        n, rest = divmod(size, width)
        return [width] * n + [1] * rest
    head, n_words, tail = _aligned_plan(addr, size)
    return [*head, *([4] * n_words), *tail]


def _aligned_plan(addr: int, size: int) -> tuple[list[int], int, list[int]]:
    """(head units, number of words, tail units) of an :data:`ALIGNED` call."""
    head: list[int] = []
    while size > 0 and not (addr % 4 == 0 and size >= 4):
        unit = 2 if addr % 2 == 0 and size >= 2 else 1
        head.append(unit)
        addr += unit
        size -= unit
    n_words, rest = divmod(size, 4)
    tail = ([2] if rest >= 2 else []) + ([1] if rest % 2 else [])
    return head, n_words, tail


class FaultKind(StrEnum):
    """What an armed fault does to its operation (see :meth:`NorFlash.arm_fault`)."""

    CUT = "cut"  # power is cut: the operation does not happen (or happens partially if torn)
    FAIL = "fail"  # the operation fails with an FLASH_SR error bit; the device keeps running


class FlashEventKind(StrEnum):
    """The kind of a :class:`FlashEvent`."""

    READ = "read"
    PROGRAM = "program"
    ERASE = "erase"


@dataclass(frozen=True, slots=True)
class FlashEvent:
    """One flash access as an observer sees it.

    Attributes:
        kind: read, program or erase.
        addr: first address (the sector start for an erase).
        size: bytes read or programmed (the sector size for an erase).
        width: the program unit (1, 2 or 4); 0 for reads and erases.
        first_op: the operation number (:attr:`NorFlash.op_count`) of its first operation.
        ops: operations it counted (0 for a read).
        data: the bytes programmed (None for reads and erases).
        sector: the sector index of an erase (None otherwise).
    """

    kind: FlashEventKind
    addr: int
    size: int
    width: int
    first_op: int
    ops: int
    data: bytes | None = None
    sector: int | None = None


class FlashObserver(Protocol):
    """Receives every :class:`FlashEvent` of a :class:`NorFlash` it subscribed to.

    Program and erase events arrive after the mutation took effect (for a call cut by a power
    cut or failed by a fault: only its completed operations); read events before the data is
    returned.
    """

    def flash_event(self, event: FlashEvent) -> None:
        """Called for each event."""
        ...


class Subscription:
    """A handle returned by :meth:`NorFlash.subscribe`; also a context manager."""

    def __init__(self, flash: NorFlash, observer: FlashObserver):
        self._flash = flash
        self._observer = observer

    def unsubscribe(self) -> None:
        """Stop receiving events (idempotent)."""
        self._flash._unsubscribe(self._observer)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()


class FlashOp(NamedTuple):
    """One logged mutation call (not one word): the log stays small for a 256 KB run.

    Attributes:
        kind: ``"erase"`` or ``"program"``.
        addr: first address (sector start for an erase).
        size: bytes programmed, or the sector size for an erase.
        ops: operations this call counted (words + tail bytes, 1 for a chunk or an erase).
        first_op: index (in :attr:`NorFlash.op_count` numbering) of the call's first operation.
    """

    kind: str
    addr: int
    size: int
    ops: int
    first_op: int


@dataclass(frozen=True)
class FlashSnapshot:
    """The whole flash state: 1 MB of data plus the counters. Cheap to take and to restore."""

    data: bytes
    op_count: int
    erase_counts: tuple[int, ...]
    device_time_s: float
    device_time_max_s: float
    log: tuple[FlashOp, ...]


@dataclass(frozen=True)
class _Fault:
    cut_at_op: int
    torn: bool
    seed: int
    kind: FaultKind = FaultKind.CUT


class NorFlash:
    """The internal flash of one chip (default STM32F205xG, 1 MB).

    Attributes:
        chip: the geometry (sectors, erased value, timing).
        granularity: ``"word"`` or ``"chunk"`` (see the module docstring).
        op_count: operations completed since creation (cumulative; restored by :meth:`restore`).
        erase_counts: erases per sector index.
        device_time_s: modelled device time, datasheet typical figures (spec 8.7).
        device_time_max_s: the same with the datasheet maximum figures.
        log: the last :data:`LOG_LIMIT` mutation calls.
    """

    def __init__(self, chip: FlashChip = STM32F205XG, *, granularity: Granularity = "word"):
        if granularity not in GRANULARITIES:
            raise EmulatorError(
                f"unknown flash granularity {granularity!r}: expected one of "
                f"{', '.join(GRANULARITIES)}"
            )
        self.chip = chip
        self.base = chip.base
        self.size = chip.size
        self.granularity: Granularity = granularity
        self._mem = bytearray(bytes([chip.erased_value]) * chip.size)
        self._np: npt.NDArray[np.uint8] = np.frombuffer(self._mem, dtype=np.uint8)
        self._sectors = chip.sectors
        self._sector_starts = [s.start for s in self._sectors]
        self.op_count = 0
        self.erase_counts: list[int] = [0] * len(self._sectors)
        self.device_time_s = 0.0
        self.device_time_max_s = 0.0
        self.log: deque[FlashOp] = deque(maxlen=LOG_LIMIT)
        self._fault: _Fault | None = None
        self._ops_since_arm = 0
        self._word_s = chip.timing.program_words(1)
        self._word_max_s = chip.timing.program_words(1, worst=True)
        self._observers: tuple[FlashObserver, ...] = ()

    def __getstate__(self) -> dict[str, object]:
        # the numpy view aliases _mem; rebuild it after unpickling (multiprocessing workers).
        # Observers belong to the process that subscribed them.
        state = dict(self.__dict__)
        del state["_np"]
        state["_observers"] = ()
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._np = np.frombuffer(self._mem, dtype=np.uint8)

    # ------------------------------------------------------------------ observers
    def subscribe(self, observer: FlashObserver) -> Subscription:
        """Send every read, program and erase of this flash to ``observer`` (see
        :class:`FlashObserver`) until the returned handle is unsubscribed."""
        self._observers = (*self._observers, observer)
        return Subscription(self, observer)

    def _unsubscribe(self, observer: FlashObserver) -> None:
        self._observers = tuple(o for o in self._observers if o is not observer)

    def _notify(self, event: FlashEvent) -> None:
        for o in self._observers:
            o.flash_event(event)

    def _notify_read(self, addr: int, size: int) -> None:
        if self._observers and size > 0:
            self._notify(FlashEvent(FlashEventKind.READ, addr, size, 0, self.op_count, 0))

    # ------------------------------------------------------------------ reading
    def read(self, addr: int, size: int) -> bytes:
        """Return ``size`` bytes at ``addr``.

        Raises:
            EmulatorError: the range is not inside the chip.
        """
        off = self._offset(addr, size)
        self._notify_read(addr, size)
        return bytes(self._mem[off : off + size])

    def view(self, addr: int, size: int) -> memoryview:
        """A read-only zero-copy view of ``size`` bytes at ``addr`` (for CRCs over flash).

        The view reflects later mutations; copy it (``bytes(...)``) to keep a value.

        Raises:
            EmulatorError: the range is not inside the chip.
        """
        off = self._offset(addr, size)
        self._notify_read(addr, size)
        return memoryview(self._mem).toreadonly()[off : off + size]

    def read_u32(self, addr: int) -> int:
        """The little-endian 32-bit word at ``addr``."""
        off = self._offset(addr, 4)
        self._notify_read(addr, 4)
        return int.from_bytes(self._mem[off : off + 4], "little")

    def is_blank(self, addr: int, size: int) -> bool:
        """True when every byte of the range reads as the erased value."""
        off = self._offset(addr, size)
        self._notify_read(addr, size)
        return bool(np.all(self._np[off : off + size] == self.chip.erased_value))

    def contents(self) -> bytes:
        """The whole chip as bytes (a copy)."""
        self._notify_read(self.base, self.size)
        return bytes(self._mem)

    # ------------------------------------------------------------------ mutations
    def program(self, addr: int, data: bytes | bytearray | memoryview, *, width: int = 4) -> None:
        """Program ``data`` at ``addr``: ``new = old AND data`` (spec 8.6); re-programming is fine.

        Args:
            addr: first address.
            data: the bytes.
            width: the program unit the code used: 4 (32-bit words, ``FLASH_ProgramWord``),
                2 (halfwords), 1 (bytes), or :data:`ALIGNED` (by alignment, as Device OS's
                ``InternalFlashStore::write``). It decides the operation numbering at ``word``
                granularity (see the module docstring).

        Raises:
            EmulatorError: the range is not inside the chip, or ``width`` is not 1, 2 or 4.
            PowerCut: an armed ``cut`` fault's operation fell inside this call.
            FlashOpError: an armed ``fail`` fault's operation fell inside this call (the
                operations before it completed).
        """
        if width not in PROGRAM_WIDTHS:
            raise EmulatorError(
                f"program width {width} is not one of 1, 2, 4 (FLASH_CR PSIZE) or 0 (aligned)"
            )
        self._mutate("program", addr, data if type(data) is bytes else bytes(data), width)

    def erase_sector(self, index: int) -> None:
        """Erase sector ``index`` (the whole sector becomes 0xFF).

        Raises:
            EmulatorError: no such sector.
            PowerCut: the armed fault operation is this erase.
        """
        if not 0 <= index < len(self._sectors):
            raise EmulatorError(
                f"sector index {index} does not exist on {self.chip.name} "
                f"(0..{len(self._sectors) - 1})"
            )
        self._mutate("erase", self._sectors[index].start, None)

    def erase_containing(self, addr: int) -> int:
        """Erase the sector containing ``addr`` (spec 8.6); returns its index."""
        idx = self.sector_index(addr)
        self.erase_sector(idx)
        return idx

    def sector_index(self, addr: int) -> int:
        """Index of the sector containing ``addr``.

        Raises:
            EmulatorError: ``addr`` is outside the chip.
        """
        self._offset(addr, 1)
        lo, hi = 0, len(self._sector_starts) - 1
        while lo < hi:  # binary search: last start <= addr
            mid = (lo + hi + 1) // 2
            if self._sector_starts[mid] <= addr:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # ------------------------------------------------------------------ faults
    def arm_fault(
        self,
        cut_at_op: int,
        torn: bool = False,
        seed: int = 0,
        kind: FaultKind | str = FaultKind.CUT,
    ) -> None:
        """Arm a fault at operation ``cut_at_op`` counted from now (0 = the next operation).

        Operations ``0..cut_at_op-1`` complete. With ``kind="cut"`` operation ``cut_at_op``
        does not happen, or with ``torn`` happens partially (a program clears a seeded subset of
        the bits it should have cleared; an erase leaves the sector in a seeded unpredictable
        state); then :class:`PowerCut` is raised. With ``kind="fail"`` the operation fails
        without changing the flash and :class:`FlashOpError` is raised (``torn`` is ignored).
        Either way the fault disarms itself.

        Raises:
            EmulatorError: ``cut_at_op`` is negative or ``kind`` is unknown.
        """
        if cut_at_op < 0:
            raise EmulatorError(f"cut_at_op must be >= 0, got {cut_at_op}")
        try:
            fk = FaultKind(kind)
        except ValueError:
            raise EmulatorError(
                f"unknown fault kind {kind!r}: expected one of {', '.join(FaultKind)}"
            ) from None
        self._fault = _Fault(cut_at_op, torn and fk == FaultKind.CUT, seed, fk)
        self._ops_since_arm = 0

    def disarm(self) -> None:
        """Remove any armed fault."""
        self._fault = None

    @property
    def armed(self) -> bool:
        """True while a fault is armed and not yet fired."""
        return self._fault is not None

    @property
    def ops_since_arm(self) -> int:
        """Operations completed since the last :meth:`arm_fault` (for sweep bookkeeping)."""
        return self._ops_since_arm

    # ------------------------------------------------------------------ state
    def snapshot(self) -> FlashSnapshot:
        """Capture data and counters (a 1 MB bytes copy plus small state)."""
        return FlashSnapshot(
            data=bytes(self._mem),
            op_count=self.op_count,
            erase_counts=tuple(self.erase_counts),
            device_time_s=self.device_time_s,
            device_time_max_s=self.device_time_max_s,
            log=tuple(self.log),
        )

    def restore(self, snap: FlashSnapshot) -> None:
        """Return to ``snap`` (data and counters). An armed fault stays armed.

        Raises:
            EmulatorError: the snapshot is of a different chip size.
        """
        if len(snap.data) != self.size or len(snap.erase_counts) != len(self._sectors):
            raise EmulatorError(
                f"snapshot of {len(snap.data)} bytes does not fit {self.chip.name} "
                f"({self.size} bytes)"
            )
        self._mem[:] = snap.data
        self.op_count = snap.op_count
        self.erase_counts = list(snap.erase_counts)
        self.device_time_s = snap.device_time_s
        self.device_time_max_s = snap.device_time_max_s
        self.log = deque(snap.log, maxlen=LOG_LIMIT)

    def load_contents(self, data: bytes) -> None:
        """Replace the whole chip contents (image-file loading; not a device operation).

        Raises:
            EmulatorError: ``data`` is not exactly the chip size.
        """
        if len(data) != self.size:
            raise EmulatorError(
                f"flash contents are {len(data)} bytes, expected {self.size} for {self.chip.name}"
            )
        self._mem[:] = data

    # ------------------------------------------------------------------ the primitive
    def _offset(self, addr: int, size: int) -> int:
        if size < 0 or addr < self.base or addr + size > self.base + self.size:
            raise EmulatorError(
                f"range {fmt_addr(addr)}+{size} is outside {self.chip.name} flash "
                f"{fmt_addr(self.base)}-{fmt_addr(self.base + self.size)}"
            )
        return addr - self.base

    def _mutate(self, kind: str, addr: int, data: bytes | None, width: int = 4) -> None:
        """The one primitive every mutation passes through: physics, counters, fault hook."""
        if kind == "erase":
            idx = self.sector_index(addr)
            sector = self._sectors[idx]
            off = sector.start - self.base
            cut = self._fault_in(1)
            if cut is not None:
                fault, _ = cut
                if fault.kind == FaultKind.FAIL:
                    raise FlashOpError(fault.cut_at_op, "erase", sector.start)
                if fault.torn:
                    self._torn_erase(off, sector.size, fault.seed)
                raise PowerCut(fault.cut_at_op, fault.torn)
            self._np[off : off + sector.size] = self.chip.erased_value
            self.erase_counts[idx] += 1
            self.device_time_s += self.chip.timing.erase(sector.size)
            self.device_time_max_s += self.chip.timing.erase(sector.size, worst=True)
            first = self.op_count
            self._account("erase", sector.start, sector.size, 1)
            if self._observers:
                self._notify(
                    FlashEvent(
                        FlashEventKind.ERASE, sector.start, sector.size, 0, first, 1, sector=idx
                    )
                )
            return

        if data is None:  # pragma: no cover - internal misuse
            raise EmulatorError("program without data")
        size = len(data)
        off = self._offset(addr, size)
        if size == 0:
            return
        units = self.units_of(size, width, addr)  # device-time units (spec 4.1 #3)
        n_ops = units if self.granularity == "word" else 1
        cut = self._fault_in(n_ops)
        if cut is not None:
            fault, k = cut
            # the k operations before the faulted one complete, in bulk
            done = self.op_bytes(k, size, width, addr)
            self._and(off, data[:done])
            if self.granularity == "word":
                self._charge_units(k)
            if k:
                first = self.op_count
                self._account("program", addr, done, k)
                if self._observers:
                    self._notify(
                        FlashEvent(FlashEventKind.PROGRAM, addr, done, width, first, k, data[:done])
                    )
            if fault.kind == FaultKind.FAIL:
                raise FlashOpError(fault.cut_at_op, "program", addr + done)
            if fault.torn:
                end = self.op_bytes(k + 1, size, width, addr)
                self._torn_program(off + done, data[done:end], fault.seed)
            raise PowerCut(fault.cut_at_op, fault.torn)
        self._and(off, data)
        self._charge_units(units)
        first = self.op_count
        self._account("program", addr, size, n_ops)
        if self._observers:
            self._notify(FlashEvent(FlashEventKind.PROGRAM, addr, size, width, first, n_ops, data))

    @staticmethod
    def units_of(size: int, width: int = 4, addr: int = 0) -> int:
        """Program units of a ``size``-byte call at ``addr`` (see :func:`program_units`)."""
        if width != ALIGNED:
            n_units, rest = divmod(size, width)
            return n_units + rest
        head, n_words, tail = _aligned_plan(addr, size)
        return len(head) + n_words + len(tail)

    def op_count_of(self, size: int, width: int = 4, addr: int = 0) -> int:
        """Operations a ``size``-byte program call counts at this flash's granularity."""
        if size == 0:
            return 0
        return self.units_of(size, width, addr) if self.granularity == "word" else 1

    def op_bytes(self, k: int, size: int, width: int = 4, addr: int = 0) -> int:
        """Bytes covered by the first ``k`` operations of a ``size``-byte program call at
        ``addr``.

        This is the operation numbering's one definition (see the module docstring).
        """
        if self.granularity == "chunk":
            return size if k >= 1 else 0
        if width != ALIGNED:
            n_units = size // width
            if k <= n_units:
                return k * width
            return min(size, n_units * width + (k - n_units))
        head, n_words, tail = _aligned_plan(addr, size)
        if k <= len(head):
            return sum(head[:k])
        done = sum(head)
        if k <= len(head) + n_words:
            return done + 4 * (k - len(head))
        return min(size, done + 4 * n_words + sum(tail[: k - len(head) - n_words]))

    def _fault_in(self, n_ops: int) -> tuple[_Fault, int] | None:
        """Advance the since-arm counter; if the armed op is among the next ``n_ops``, fire.

        Returns the fault and how many of this call's operations complete before it, or None.
        """
        fault = self._fault
        start = self._ops_since_arm
        if fault is None or not start <= fault.cut_at_op < start + n_ops:
            self._ops_since_arm = start + n_ops
            return None
        k = fault.cut_at_op - start
        self._fault = None
        self._ops_since_arm = start + k
        return fault, k

    def _and(self, off: int, data: bytes) -> None:
        if not data:
            return
        seg = self._np[off : off + len(data)]
        np.bitwise_and(seg, np.frombuffer(data, dtype=np.uint8), out=seg)

    def _charge_units(self, units: int) -> None:
        self.device_time_s += units * self._word_s
        self.device_time_max_s += units * self._word_max_s

    def _account(self, kind: str, addr: int, size: int, ops: int) -> None:
        self.log.append(FlashOp(kind, addr, size, ops, self.op_count))
        self.op_count += ops

    def _torn_program(self, off: int, data: bytes, seed: int) -> None:
        """A seeded subset of the bits that should have cleared are cleared."""
        n = len(data)
        if n == 0:
            return
        old = int.from_bytes(self._mem[off : off + n], "little")
        want = int.from_bytes(data, "little")
        should_clear = old & ~want
        keep = random.Random(seed).getrandbits(8 * n)
        new = old & ~(should_clear & keep)
        self._mem[off : off + n] = new.to_bytes(n, "little")

    def _torn_erase(self, off: int, size: int, seed: int) -> None:
        """An interrupted erase: old data with a seeded random set of bits raised to 1."""
        mask = np.frombuffer(random.Random(seed).randbytes(size), dtype=np.uint8)
        seg = self._np[off : off + size]
        np.bitwise_or(seg, mask, out=seg)  # neither the old data nor blank


__all__ = [
    "ALIGNED",
    "GRANULARITIES",
    "PROGRAM_WIDTHS",
    "FaultKind",
    "FlashEvent",
    "FlashEventKind",
    "FlashObserver",
    "FlashOp",
    "FlashSnapshot",
    "Granularity",
    "NorFlash",
    "Subscription",
    "program_units",
]
