"""The one gate between CPU stores and :class:`~flashroom.emu.flash.NorFlash`.

The emulated FLASH interface (:mod:`flashroom.firmware.peripherals`) decides *that* a store is a
program or a CR write is an erase; this module decides *how* it reaches NorFlash, which is what
makes operation numbers comparable between the real code and the Python model.

**The granularity contract** (NorFlash's ``granularity``):

* ``"word"``: every CPU store to flash while ``CR.PG`` is set is one
  ``NorFlash.program(addr, bytes, width=store_size)`` call, made immediately, so one store of
  1, 2 or 4 bytes is one operation (``FLASH_ProgramHalfWord`` reaches NorFlash as width 2, not as
  two bytes). Every erase (``CR.SER`` + ``SNB`` + ``STRT``) is one ``erase_sector`` call.
* ``"chunk"``: one operation is a **maximal run of contiguous programs of one flash session**:
  a session runs from the unlock (the KEYR key sequence) to ``CR.LOCK``; a run ends at the lock,
  at an erase, at a store that does not continue the run, and at the end of the emulation. The
  run is buffered and handed to NorFlash as one ``program(start, data, width)`` call when it ends
  (``width`` is the stores' unit, or NorFlash's ``ALIGNED`` (0) when the run mixes units, as
  ``InternalFlashStore::write``'s runs do: a halfword, then words). Meanwhile the CPU's view of
  flash already shows the run's data, so the code's own reads (``InternalFlashStore::write``'s
  ``memcmp``) see it; a power cut at that operation therefore loses the whole run and a torn cut
  tears the whole run with NorFlash's own tear, exactly as for one ``program`` call of the
  model. Erases are still one operation each.

A ``cut`` fault (:class:`~flashroom.errors.PowerCut`) propagates: the device is off. A ``fail``
fault (``FlashOpError``) is reported to the FLASH interface through ``on_fail`` so it can raise
the SR error bit the chip would, and the CPU view is put back to what NorFlash holds (the
operation wrote nothing). At chunk granularity a failed run is therefore only seen after the run
ended (at the lock), by the code's read-back; at word granularity the very store fails.

The CPU view is a ``bytearray`` that Unicorn maps as flash; NorFlash stays the truth and the view
equals it outside an open chunk run.

A failed operation (``fail``) is not counted, as NorFlash does not count it: the next operation
has its number. The recorder keeps it as an event with ``ok=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, Protocol

from flashroom.errors import FlashOpError
from flashroom.geometry import FlashChip
from flashroom.ranges import fmt_addr


class FlashPrimitive(Protocol):
    """What the runner needs of the device's flash: :class:`flashroom.emu.flash.NorFlash` is one.

    (``firmware`` sits below ``emu`` in the layers, so it names the primitive by its shape.)
    """

    @property
    def chip(self) -> FlashChip: ...
    @property
    def base(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def granularity(self) -> str: ...

    def read(self, addr: int, size: int) -> bytes: ...
    def read_u32(self, addr: int) -> int: ...
    def contents(self) -> bytes: ...
    def sector_index(self, addr: int) -> int: ...
    def program(
        self, addr: int, data: bytes | bytearray | memoryview, *, width: int = 4
    ) -> None: ...
    def erase_sector(self, index: int) -> None: ...
    def snapshot(self) -> Any: ...
    def restore(self, snap: Any) -> None: ...


EventKind = Literal["erase", "program"]

#: NorFlash's ``width`` for a call programmed by alignment (word when 4-aligned with 4 bytes
#: left, else halfword, else byte: ``InternalFlashStore::write``, spec 11); the value of
#: ``flashroom.emu.flash.ALIGNED`` (firmware sits below emu and cannot import it).
ALIGNED = 0


class FlashCall(NamedTuple):
    """One NorFlash call the runner made (word granularity: one per store).

    Attributes:
        kind: ``"erase"`` or ``"program"``.
        addr: first address (the sector start for an erase).
        size: bytes programmed, or the sector size.
        width: program unit in bytes (0 for an erase).
        session: flash session number (one per unlock).
        ok: False when NorFlash failed it (a ``fail`` fault): nothing was written.
    """

    kind: EventKind
    addr: int
    size: int
    width: int
    session: int
    ok: bool = True


class FlashRun(NamedTuple):
    """A maximal run of contiguous programs of one session (or one erase), for reports.

    ``ops`` counts word-granularity operations (one per store); ``widths`` lists
    ``(width, count)`` groups in address order, e.g. ``((2, 1), (4, 3367))``.
    """

    kind: EventKind
    start: int
    end: int
    ops: int
    widths: tuple[tuple[int, int], ...]

    def describe(self) -> str:
        """``program 0x08008b42-0x0800bfe0 (1x2 + 3367x4)`` / ``erase 0x08080000-0x080a0000``."""
        span = f"{fmt_addr(self.start)}-{fmt_addr(self.end)}"
        if self.kind == "erase":
            return f"erase {span}"
        groups = " + ".join(f"{n}x{w}" for w, n in self.widths)
        return f"program {span} ({groups})"


class FlashRecorder:
    """Records every NorFlash call a :class:`FlashPort` makes (the runner's own observer)."""

    def __init__(self) -> None:
        self.events: list[FlashCall] = []

    def clear(self) -> None:
        """Forget everything recorded."""
        self.events.clear()

    @property
    def op_count(self) -> int:
        """Operations recorded (one per event that did not fail)."""
        return sum(1 for e in self.events if e.ok)

    def failed(self) -> list[FlashCall]:
        """The operations NorFlash failed (``fail`` faults)."""
        return [e for e in self.events if not e.ok]

    def runs(self) -> list[FlashRun]:
        """Events that did not fail merged into maximal contiguous same-session program runs
        (erases apart). At word granularity these are the operations chunk granularity makes.
        """
        out: list[FlashRun] = []
        acc: _RunAcc | None = None
        for ev in self.events:
            if not ev.ok:
                continue
            if (
                acc is not None
                and ev.kind == "program"
                and acc.kind == "program"
                and ev.addr == acc.end
                and ev.session == acc.session
            ):
                acc.add(ev)
                continue
            if acc is not None:
                out.append(acc.run())
            acc = _RunAcc(ev)
        if acc is not None:
            out.append(acc.run())
        return out


class _RunAcc:
    """A run being merged by :meth:`FlashRecorder.runs`."""

    def __init__(self, ev: FlashCall) -> None:
        self.kind: EventKind = ev.kind
        self.start = ev.addr
        self.end = ev.addr + ev.size
        self.session = ev.session
        self.ops = 1
        self.widths: list[tuple[int, int]] = [(ev.width, 1)] if ev.kind == "program" else []

    def add(self, ev: FlashCall) -> None:
        self.end = ev.addr + ev.size
        self.ops += 1
        if self.widths[-1][0] == ev.width:
            self.widths[-1] = (ev.width, self.widths[-1][1] + 1)
        else:
            self.widths.append((ev.width, 1))

    def run(self) -> FlashRun:
        return FlashRun(self.kind, self.start, self.end, self.ops, tuple(self.widths))


class FlashPort:
    """Turns the FLASH interface's programs and erases into NorFlash calls (see module doc).

    Args:
        flash: the device's NorFlash (the truth).
        view: the CPU's view of flash (a bytearray Unicorn maps); kept equal to NorFlash.
        recorder: optional observer of every NorFlash call.
        code_changed: called with ``(start, end)`` when bytes inside ``code_ranges`` change,
            so the emulator can drop translated code.
        code_ranges: address ranges that may hold code the CPU executes.
    """

    def __init__(
        self,
        flash: FlashPrimitive,
        view: bytearray,
        *,
        recorder: FlashRecorder | None = None,
        code_changed: Callable[[int, int], None] | None = None,
        code_ranges: tuple[tuple[int, int], ...] = (),
    ) -> None:
        self.flash = flash
        self.view = view
        self.view_words = memoryview(view).cast("I")
        self.base = flash.base
        self.recorder = recorder
        self.code_changed = code_changed
        self.code_ranges = code_ranges
        self.chunked = flash.granularity == "chunk"
        self.session = 0
        self.ops = 0
        #: called with "program" or "erase" when NorFlash failed an operation (fail fault)
        self.on_fail: Callable[[str], None] = lambda kind: None
        self._run_start = -1
        self._run_data = bytearray()
        self._run_width = 4
        self._sectors = flash.chip.sectors

    # ------------------------------------------------------------------ sessions
    def begin_session(self) -> None:
        """The FLASH interface was unlocked: a new session (and chunk runs) start."""
        self.flush()
        self.session += 1

    def end_session(self) -> None:
        """``CR.LOCK`` was set: the open run ends."""
        self.flush()

    # ------------------------------------------------------------------ programs
    def program(self, addr: int, size: int, value: int) -> bool:
        """One CPU store of ``size`` bytes while ``CR.PG`` is set. False: NorFlash failed it.

        Raises:
            PowerCut: the armed cut fell on this operation (word) or on a run it closed (chunk).
        """
        off = addr - self.base
        if self.chunked:
            run = self._run_data
            if self._run_start + len(run) != addr or self._run_start < 0:
                self.flush()
                self._run_start = addr
                self._run_width = size
                run = self._run_data
            elif size != self._run_width:
                self._run_width = ALIGNED  # mixed units: InternalFlashStore::write's pattern
            run += value.to_bytes(size, "little")
            if size == 4 and not off & 3:
                self.view_words[off >> 2] &= value
            else:
                self._and_view(off, size, value)
            return True
        data = value.to_bytes(size, "little")
        try:
            self.flash.program(addr, data, width=size)
        except FlashOpError:
            self._record("program", addr, size, size, False)
            self.on_fail("program")
            return False
        self.ops += 1
        self._and_view(off, size, value)
        if self.recorder is not None:
            self.recorder.events.append(FlashCall("program", addr, size, size, self.session))
        if self.code_ranges:
            self._code_changed(addr, addr + size)
        return True

    def flush(self) -> None:
        """Hand the open chunk run to NorFlash as one ``program`` call (no-op at word level).

        Raises:
            PowerCut: the armed cut fell on this run.
        """
        start = self._run_start
        if start < 0:
            return
        data = bytes(self._run_data)
        width = self._run_width
        self._run_start = -1
        self._run_data = bytearray()
        try:
            self.flash.program(start, data, width=width)
        except FlashOpError:
            self._record("program", start, len(data), width, False)
            off = start - self.base
            self.view[off : off + len(data)] = self.flash.read(start, len(data))
            self.on_fail("program")
            return
        self.ops += 1
        self._record("program", start, len(data), width, True)
        if self.code_ranges:
            self._code_changed(start, start + len(data))

    def discard(self) -> None:
        """Drop an open run without programming it (the device lost power before it ended)."""
        self._run_start = -1
        self._run_data = bytearray()

    # ------------------------------------------------------------------ erases
    def erase(self, index: int) -> bool:
        """Erase sector ``index``. False: NorFlash failed it (nothing erased).

        Raises:
            PowerCut: the armed cut fell on this erase (or on the run it closed).
        """
        self.flush()
        sector = self._sectors[index]
        try:
            self.flash.erase_sector(index)
        except FlashOpError:
            self._record("erase", sector.start, sector.size, 0, False)
            self.on_fail("erase")
            return False
        self.ops += 1
        self._record("erase", sector.start, sector.size, 0, True)
        off = sector.start - self.base
        self.view[off : off + sector.size] = self.flash.read(sector.start, sector.size)
        self._code_changed(sector.start, sector.start + sector.size)
        return True

    # ------------------------------------------------------------------ internals
    def _and_view(self, off: int, size: int, value: int) -> None:
        if size == 4 and not off & 3:
            self.view_words[off >> 2] &= value
            return
        old = int.from_bytes(self.view[off : off + size], "little")
        self.view[off : off + size] = (old & value).to_bytes(size, "little")

    def _record(self, kind: EventKind, addr: int, size: int, width: int, ok: bool) -> None:
        if self.recorder is not None:
            self.recorder.events.append(FlashCall(kind, addr, size, width, self.session, ok))

    def _code_changed(self, start: int, end: int) -> None:
        if self.code_changed is None:
            return
        for lo, hi in self.code_ranges:
            if start < hi and lo < end:
                self.code_changed(start, end)
                return


__all__ = [
    "FlashCall",
    "FlashPort",
    "FlashPrimitive",
    "FlashRecorder",
    "FlashRun",
]
