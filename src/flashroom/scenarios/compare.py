"""The model against the real Device OS code, from the same state (issue 10).

A device made with real firmware (:mod:`flashroom.emu.realcode`) can run a step twice: once
with flashroom's Python model (``Device.use_real_code = False``) and once with the real code,
each from the same snapshot. :func:`compare_run` does that and compares what a user could ever
observe: all 1 MB of flash, the RTC backup registers, how the boot ended (the device's boot
mode and how each bootloader run ended), and the sequence of flash operations (kind, address,
size, program width). :class:`Comparison` sums many such runs (one per sweep cut point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flashroom.emu.device import Device
from flashroom.emu.flash import FlashEvent, FlashEventKind, program_units
from flashroom.ranges import fmt_addr

#: What is compared, in the order a difference is reported.
ASPECTS: tuple[str, ...] = ("boot", "bootloader_runs", "operations", "flash", "backup_registers")


@dataclass(frozen=True)
class FlashOp:
    """One flash operation call as the comparison sees it."""

    kind: str  # program | erase
    address: int
    size: int
    width: int

    def text(self) -> str:
        if self.kind == "erase":
            return f"erase {fmt_addr(self.address)} ({self.size} bytes)"
        return f"program {fmt_addr(self.address)} {self.size} bytes, width {self.width}"


class _OpLog:
    """A flash observer keeping the program/erase **operations** (reads are not compared).

    At ``word`` granularity one operation is one program unit, so a program call is expanded
    into its units (a model call by alignment and the real code's separate stores compare
    equal when they program the same units); at ``chunk`` granularity one call is one
    operation, its width the unit when all units are equal, else 0 (mixed).
    """

    def __init__(self, granularity: str) -> None:
        self.per_unit = granularity == "word"
        self.ops: list[FlashOp] = []

    def flash_event(self, ev: FlashEvent) -> None:
        if ev.kind == FlashEventKind.PROGRAM:
            units = program_units(ev.addr, ev.size, ev.width)
            if self.per_unit:
                a = ev.addr
                append = self.ops.append
                for u in units:
                    append(FlashOp("program", a, u, u))
                    a += u
            else:
                width = units[0] if units and all(u == units[0] for u in units) else 0
                self.ops.append(FlashOp("program", ev.addr, ev.size, width))
        elif ev.kind == FlashEventKind.ERASE:
            self.ops.append(FlashOp("erase", ev.addr, ev.size, 0))


@dataclass(frozen=True)
class Trace:
    """What one engine did from the common state."""

    boot: str
    bootloader_runs: tuple[str, ...]
    ops: tuple[FlashOp, ...]
    flash: bytes
    regs: tuple[int, ...]
    error: str | None = None
    result: Any = None


@dataclass(frozen=True)
class Difference:
    """The first aspect in which the model and the real code differ."""

    what: str
    model: str
    real: str
    cut_at_op: int | None = None
    torn: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "cut_at_op": self.cut_at_op,
            "torn": self.torn,
            "what": self.what,
            "model": self.model,
            "real": self.real,
        }


def trace(dev: Device, step: Callable[[], Any], *, real: bool) -> Trace:
    """Run ``step`` on ``dev`` with one engine and record what it did."""
    log = _OpLog(dev.flash.granularity)
    dev.use_real_code = real
    error = None
    result = None
    try:
        with dev.flash.subscribe(log):
            result = step()
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    finally:
        dev.use_real_code = True
    return Trace(
        str(dev.state),
        tuple(dev.bootloader_log),
        tuple(log.ops),
        dev.flash.contents(),
        tuple(dev.regs.regs),
        error,
        result,
    )


def difference(model: Trace, real: Trace) -> Difference | None:
    """The first aspect (:data:`ASPECTS`) in which two traces differ, or None."""
    if model.error != real.error:
        return Difference("error", str(model.error), str(real.error))
    if model.boot != real.boot:
        return Difference("boot", model.boot, real.boot)
    if model.bootloader_runs != real.bootloader_runs:
        return Difference(
            "bootloader_runs", ",".join(model.bootloader_runs), ",".join(real.bootloader_runs)
        )
    if model.ops != real.ops:
        n = next(
            (i for i, (a, b) in enumerate(zip(model.ops, real.ops, strict=False)) if a != b),
            min(len(model.ops), len(real.ops)),
        )

        def at(ops: tuple[FlashOp, ...]) -> str:
            op = ops[n].text() if n < len(ops) else "none (the run ended)"
            return f"op {n} of {len(ops)}: {op}"

        return Difference("operations", at(model.ops), at(real.ops))
    if model.flash != real.flash:
        i = next(i for i, (a, b) in enumerate(zip(model.flash, real.flash, strict=True)) if a != b)
        addr = 0x08000000 + i
        return Difference(
            "flash",
            f"{fmt_addr(addr)}: {model.flash[i : i + 8].hex()}",
            f"{fmt_addr(addr)}: {real.flash[i : i + 8].hex()}",
        )
    if model.regs != real.regs:
        i = next(i for i, (a, b) in enumerate(zip(model.regs, real.regs, strict=True)) if a != b)
        return Difference(
            "backup_registers",
            f"DR{i} = 0x{model.regs[i]:08x}",
            f"DR{i} = 0x{real.regs[i]:08x}",
        )
    return None


def compare_run(dev: Device, step: Callable[[], Any]) -> tuple[Trace, Trace, Difference | None]:
    """Run ``step`` with the model, put ``dev`` back, run it with the real code; compare.

    The device is left in the real code's end state.
    """
    snap = dev.snapshot()
    model = trace(dev, step, real=False)
    dev.restore(snap)
    real = trace(dev, step, real=True)
    return model, real, difference(model, real)


@dataclass
class Comparison:
    """Many comparisons summed (the ``comparison`` block of a sweep's JSON)."""

    points: int = 0
    identical: int = 0
    first_difference: Difference | None = None
    by_aspect: dict[str, int] = field(default_factory=dict)

    @property
    def differing(self) -> int:
        return self.points - self.identical

    def add(self, diff: Difference | None) -> None:
        self.points += 1
        if diff is None:
            self.identical += 1
            return
        self.by_aspect[diff.what] = self.by_aspect.get(diff.what, 0) + 1
        if self.first_difference is None or _earlier(diff, self.first_difference):
            self.first_difference = diff

    def merge(self, other: Comparison) -> None:
        self.points += other.points
        self.identical += other.identical
        for k, v in other.by_aspect.items():
            self.by_aspect[k] = self.by_aspect.get(k, 0) + v
        d = other.first_difference
        if d is not None and (self.first_difference is None or _earlier(d, self.first_difference)):
            self.first_difference = d

    def to_json(self) -> dict[str, Any]:
        fd = self.first_difference
        return {
            "points": self.points,
            "identical": self.identical,
            "differing": self.differing,
            "by_aspect": dict(sorted(self.by_aspect.items())),
            "first_difference": None if fd is None else fd.to_json(),
        }


def _earlier(a: Difference, b: Difference) -> bool:
    return (a.cut_at_op if a.cut_at_op is not None else -1, a.torn) < (
        b.cut_at_op if b.cut_at_op is not None else -1,
        b.torn,
    )


__all__ = [
    "ASPECTS",
    "Comparison",
    "Difference",
    "FlashOp",
    "Trace",
    "compare_run",
    "difference",
    "trace",
]
