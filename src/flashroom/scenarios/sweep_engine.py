"""The sweep engine: setup, the clean-run recording, cut states, recovery and classification.

:mod:`flashroom.scenarios.sweep` is the public face (:func:`~flashroom.scenarios.sweep.run_sweep`);
this module holds the machinery. Three ways to reach the state after a cut at operation ``n``
(:data:`METHODS`), which the tests check agree point by point:

* ``rerun``: restore the snapshot, run the whole scenario with the fault armed at ``n`` (what
  ``flashroom emu ota --cut-at-op n`` does). Cost: a scenario run per point.
* ``replay``: restore the checkpoint taken at the start of the flash call that contains op ``n``
  (with the backup registers as they were then), and run only that call through NorFlash with the
  fault armed. NOR physics and torn behaviour stay in NorFlash; only the Python control flow of
  the scenario is skipped, and a power cut loses that anyway. Cost: one partial call and a boot.
* ``equiv`` (default): ``replay``, plus a proof that lets one recovery boot stand for many cut
  points. During each recovery boot (and the classification that follows) every flash byte whose
  value the device *depended on* is recorded: every read, and every program into a sector the
  boot had not erased first (programming ANDs with the old value). Bytes of a sector read after
  the boot erased it do not depend on the cut state. Two cut points inside the same program call
  differ only in the bytes that call writes between them; when those bytes are disjoint from the
  recorded read set, the emulator, which is deterministic and reads flash only through NorFlash,
  would take exactly the same path, so the outcome is the same and is counted without booting.
  Anything else (erases, DCT writes, the first point of every call, recovery cuts) is booted.
"""

from __future__ import annotations

import bisect
import contextlib
from dataclasses import dataclass, replace
from typing import Any

from flashroom.deviceos.gen2 import DCT_SECTOR_ADDRS, DCT_SECTOR_SIZE
from flashroom.emu.device import Device, DeviceSnapshot
from flashroom.emu.flash import FaultKind, FlashEvent, FlashEventKind
from flashroom.emu.outcome import Outcome
from flashroom.errors import FlashroomError, PowerCut
from flashroom.layout import get_layout
from flashroom.particle.build import synthetic_user_app
from flashroom.ranges import fmt_addr
from flashroom.scenarios.compare import Difference, difference, trace
from flashroom.scenarios.sweep_check import ErasePlan, read_dcd
from flashroom.scenarios.sweep_config import (
    CutResult,
    SweepConfig,
)
from flashroom.scenarios.sweep_scenarios import SCENARIOS

# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class _Call:
    """One recorded flash mutation call of the clean scenario run."""

    kind: str  # "program" | "erase"
    arg: int  # address for a program, sector index for an erase
    data: bytes | None
    first_op: int
    ops: int
    label: str
    regs: tuple[int, ...] = ()
    width: int = 4  # the program unit (NorFlash.program width)


class _Recorder:
    """A flash observer that records every mutation call of the clean run as a :class:`_Call`
    (with the backup registers as they were: flash operations never change them)."""

    def __init__(self, dev: Any, layout: Any, op_base: int):
        self.dev = dev
        self.layout = layout
        self.op_base = op_base
        self.calls: list[_Call] = []

    def flash_event(self, ev: FlashEvent) -> None:
        if ev.kind == FlashEventKind.PROGRAM:
            self.calls.append(
                _Call(
                    "program",
                    ev.addr,
                    ev.data,
                    ev.first_op - self.op_base,
                    ev.ops,
                    "program " + _region_label(self.layout, ev.addr),
                    tuple(self.dev.regs.regs),
                    ev.width,
                )
            )
        elif ev.kind == FlashEventKind.ERASE and ev.sector is not None:
            self.calls.append(
                _Call(
                    "erase",
                    ev.sector,
                    None,
                    ev.first_op - self.op_base,
                    ev.ops,
                    "erase " + _region_label(self.layout, ev.addr),
                    tuple(self.dev.regs.regs),
                )
            )


@dataclass
class _Setup:
    """Deterministic sweep fixture: the device before the scenario, modules, the op log."""

    cfg: SweepConfig
    device: Any
    snap0: Any
    old: bytes
    new: bytes
    target_start: int
    user_app: bytes
    user_start: int
    calls: list[_Call]
    call_starts: list[int]
    total_ops: int
    clean_outcome: dict[str, Any]
    plan: ErasePlan
    dct_data0: bytes
    erase0: tuple[int, ...]
    time0: float
    boot_sector0: bytes
    snap0_flash: Any = None
    reset_op: int | None = None  # the clean run's first reset (bootloader start), op index
    boot_sector0_after: bytes = b""  # sector 0 after the clean run
    reset_ops: tuple[int, ...] = ()  # every reset of the clean run, op index
    extra: tuple[tuple[int, bytes, bytes], ...] = ()  # Modules.extra


def _region_label(layout: Any, addr: int) -> str:
    names = [r.name for r in layout.regions_at(addr)] if layout is not None else []
    return "+".join(names) if names else fmt_addr(addr)


def _build_setup(cfg: SweepConfig) -> _Setup:
    cfg.validate()
    dev = Device.new(
        platform=cfg.platform,
        profile=cfg.profile,
        bootloader=cfg.bootloader,
        granularity="chunk" if cfg.granularity == "chunk" else "word",
        bootloader_firmware=cfg.bootloader_firmware,
        system_firmware=cfg.system_firmware,
    )
    flash = dev.flash
    try:
        layout = get_layout(cfg.platform, cfg.profile)
    except FlashroomError:
        layout = get_layout(cfg.platform, "stock")
    user_start = layout.user_part.start
    # The old app: version 5, its own seed; installed by DFU then booted (a device in the field).
    old_app = synthetic_user_app(cfg.old_size, platform=cfg.platform, version=5, seed=cfg.seed + 1)
    dev.install(old_app)  # DFU write + reset: the old app boots
    new_app = synthetic_user_app(cfg.app_size, platform=cfg.platform, version=7, seed=cfg.seed + 2)
    scenario = SCENARIOS[cfg.scenario]
    scenario.configure(cfg)
    mods = scenario.modules(dev, layout, old_app, new_app, cfg.app_size, cfg.seed)
    old, new, target_start = mods.old, mods.new, mods.target_start
    snap0 = dev.snapshot()
    dcd0 = _dcd(dev)
    erase0 = tuple(flash.erase_counts)
    time0 = flash.device_time_s
    boot_sector0 = flash.read(flash.base, flash.chip.sectors[0].size)

    # Record the clean run through a flash observer (no method of the flash is replaced).
    op_base = flash.op_count
    recorder = _Recorder(dev, layout, op_base)
    dev.reset_at_ops.clear()
    with flash.subscribe(recorder):
        clean = _run_scenario(dev, cfg.scenario, new).to_json()
    reset_ops = tuple(n - op_base for n in dev.reset_at_ops)
    reset_op = reset_ops[0] if reset_ops else None
    # a clean run may rewrite sector 0 on purpose (the embedded-bootloader update, spec 4.7)
    boot_sector0_after = flash.read(flash.base, flash.chip.sectors[0].size)
    calls = recorder.calls
    total_ops = flash.op_count - op_base
    logged = sum(c.ops for c in calls)
    if logged != total_ops:
        raise FlashroomError(
            f"the sweep's op log saw {logged} of {total_ops} flash operations: some mutation "
            "bypassed the NorFlash primitive; use the rerun method"
        )
    plan = scenario.erase_budget(dev.profile, flash.chip, target_start, len(new))
    dev.restore(snap0)
    snap0_flash = flash.snapshot()
    return _Setup(
        cfg=cfg,
        device=dev,
        snap0=snap0,
        old=old,
        new=new,
        target_start=target_start,
        user_app=old_app,
        user_start=user_start,
        calls=calls,
        call_starts=[c.first_op for c in calls],
        total_ops=total_ops,
        clean_outcome=clean,
        plan=plan,
        dct_data0=dcd0.app_data_outside_slots(),
        erase0=erase0,
        time0=time0,
        boot_sector0=boot_sector0,
        snap0_flash=snap0_flash,
        reset_op=reset_op,
        boot_sector0_after=boot_sector0_after,
        reset_ops=reset_ops,
        extra=mods.extra,
    )


def _dcd(dev: Any) -> Any:
    flash = dev.flash
    return read_dcd(
        flash.read(DCT_SECTOR_ADDRS[0], DCT_SECTOR_SIZE),
        flash.read(DCT_SECTOR_ADDRS[1], DCT_SECTOR_SIZE),
        dev.profile.dct_app_offset,
    )


def _run_scenario(dev: Device, scenario: str, new: bytes) -> Outcome:
    """Run the scenario uncut (any fault must already be armed on ``dev.flash``)."""
    return SCENARIOS[scenario].run(dev, new)


# --------------------------------------------------------------------------- one point


def _classify(
    s: _Setup, boot: Outcome | None, erases: dict[int, int], cuts: int, error: str | None
) -> tuple[str, str, tuple[str, ...]]:
    """Classify the state after the recovery boot: (outcome class, boot kind, violations).

    ``boot`` is the recovery boot's outcome, or None when it raised ``error``.

    Invariants (each violation names the evidence):

    * ``no_mix``: when the application runs, the updated region holds the old or the new module
      byte for byte (and for ``system-ota`` the user app is untouched);
    * ``update_atomic`` (OTA scenarios): the pending update completed or the old module stayed:
      the device runs new or old, and no slot is left pending;
    * ``dct_valid``: the DCD selection rules find a valid copy, the slot table holds only magics
      Device OS writes, and nothing outside the slot table changed (keys, settings);
    * ``erase_budget``: no sector erased more often than the scenario's erase budget allows.
    """
    flash = s.device.flash
    violations: list[str] = []
    boot_kind = str(boot.boot) if boot is not None and error is None else "error"
    if error is not None or boot is None:
        return "brick", boot_kind, (f"recovery boot failed: {error}",)
    sector0 = flash.read(flash.base, len(s.boot_sector0))
    if sector0 != s.boot_sector0 and sector0 != s.boot_sector0_after:
        return (
            "brick",
            boot_kind,
            (
                "bootloader sector 0 is neither the old nor the updated bootloader: no DFU without "
                "a debug probe",
            ),
        )
    region_new = flash.read(s.target_start, len(s.new)) == s.new
    region_old = flash.read(s.target_start, len(s.old)) == s.old
    if boot_kind == "application":
        if region_new:
            cls = "new_app"
        elif region_old:
            cls = "old_app"
        else:
            cls = "mix"
            violations.append(
                f"no_mix: runs an image at {fmt_addr(s.target_start)} that is neither the old "
                f"nor the new module (running {boot.running})"
            )
        if SCENARIOS[s.cfg.scenario].keeps_user_app and (
            flash.read(s.user_start, len(s.user_app)) != s.user_app
        ):
            violations.append("no_mix: the user app changed during a system-part update")
        for start, old_m, new_m in s.extra:
            if flash.read(start, len(new_m)) != new_m and flash.read(start, len(old_m)) != old_m:
                violations.append(
                    f"no_mix: the module at {fmt_addr(start)} is neither the old nor the new one"
                )
    elif boot_kind in ("safe_mode", "dfu"):
        cls = boot_kind
    elif boot_kind == "bricked":
        cls = "brick"
        violations.append(f"the device reports bricked: {getattr(s.device, 'reason', '')}")
    elif boot_kind == "system_mismatch":
        cls = "mix"
        violations.append(f"system_mismatch: {s.device.reason}")
    elif boot_kind == "factory":
        cls = "safe_mode"  # spec 5.3: factory image runs; recoverable over the air like safe mode
    else:
        cls = "brick"
        violations.append(f"unknown boot outcome {boot_kind!r}")
    dcd = _dcd(s.device)
    if SCENARIOS[s.cfg.scenario].atomic_update and cls not in ("new_app", "old_app"):
        violations.append(
            f"update_atomic: an interrupted update left the device in {boot_kind} instead of "
            "finishing the update or keeping the old module"
        )
    if not dcd.valid:
        violations.append(
            "dct_valid: no DCT copy with a valid header and CRC (docs/device-os.md#dct)"
        )
    else:
        violations.extend(f"dct_valid: {p}" for p in dcd.slot_table_problems())
        if dcd.app_data_outside_slots() != s.dct_data0:
            violations.append("dct_valid: DCT data outside the slot table changed")
        if cls in ("new_app", "old_app") and dcd.pending_slots:
            violations.append(
                f"update_atomic: slot(s) {list(dcd.pending_slots)} still pending after the boot"
            )
    violations.extend(f"erase_budget: {v}" for v in s.plan.violations(erases, cuts))
    if cls == "brick":
        return cls, boot_kind, tuple(violations)
    if violations:
        return "invariant_violation", boot_kind, tuple(violations)
    return cls, boot_kind, ()


def _erases_since(s: _Setup, extra_sector: int | None) -> dict[int, int]:
    now = s.device.flash.erase_counts
    out = {i: now[i] - s.erase0[i] for i in range(len(now)) if now[i] != s.erase0[i]}
    if extra_sector is not None:  # a torn erase wore the sector although it did not finish
        out[extra_sector] = out.get(extra_sector, 0) + 1
    return out


def _boot(dev: Device) -> tuple[Outcome | None, str | None]:
    try:
        return dev.boot(), None
    except PowerCut:  # pragma: no cover - no fault is armed here
        raise
    except FlashroomError as e:
        return None, f"{type(e).__name__}: {e}"


class _ReadTracker:
    """Records the flash bytes a boot depends on (see the module docstring, method ``equiv``).

    A flash observer: every read, and every program (new = old AND data: it depends on the old
    value) into a sector the boot had not erased first.
    """

    def __init__(self, flash: Any):
        self.flash = flash
        self.erased: set[int] = set()
        self.ranges: list[tuple[int, int]] = []
        self._sub: Any = None

    def __enter__(self) -> _ReadTracker:
        self._sub = self.flash.subscribe(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._sub.unsubscribe()

    def flash_event(self, ev: FlashEvent) -> None:
        if ev.kind == FlashEventKind.ERASE:
            if ev.sector is not None:
                self.erased.add(ev.sector)
        else:  # a read, or a program (it depends on the old value)
            self._dep(ev.addr, ev.size)

    def _dep(self, addr: int, size: int) -> None:
        if size <= 0:
            return
        end = addr + size
        if not self.erased:
            self.ranges.append((addr, end))
            return
        for sec in self.flash.chip.sectors:
            lo, hi = max(addr, sec.start), min(end, sec.end)
            if lo < hi and sec.index not in self.erased:
                self.ranges.append((lo, hi))

    def intersects(self, lo: int, hi: int) -> bool:
        """True when ``[lo, hi)`` overlaps any recorded dependent byte."""
        return any(a < hi and lo < b for a, b in self.ranges)


@dataclass
class _Ref:
    """A booted cut point whose outcome can stand for equivalent ones."""

    k: int
    local_op: int
    torn: bool
    results: list[CutResult]
    tracker: _ReadTracker
    device_time: float


def _apply_call(flash: Any, call: _Call) -> None:
    """Run one recorded mutation call on ``flash`` (a fault may be armed)."""
    if call.kind == "erase":
        flash.erase_sector(call.arg)
    else:
        flash.program(call.arg, call.data or b"", width=call.width)


class _Runner:
    """Produces cut states for one setup, walking cut points in increasing order."""

    def __init__(self, s: _Setup):
        self.s = s
        self.flash = s.device.flash
        self.k = 0  # call index whose start state is in self.base
        self.base: Any = None
        self.device_time = 0.0
        self.booted = 0
        self.ref: _Ref | None = None
        self._word_s = float(self.flash.chip.timing.program_words(1))

    def _state_before_call(self, k: int) -> Any:
        """A flash snapshot of the state just before call ``k`` of the clean run."""
        fl = self.flash
        if self.base is not None and k == self.k:
            return self.base
        if self.base is None or k < self.k:
            fl.restore(self.s.snap0_flash)
            start = 0
        else:
            fl.restore(self.base)
            start = self.k
        for call in self.s.calls[start:k]:
            _apply_call(fl, call)
        self.k = k
        self.base = fl.snapshot()
        return self.base

    def cut(self, n: int, torn: bool) -> tuple[_Call, int]:
        """Leave the device powered off right after a cut at op ``n``.

        Returns the call the cut fell into and its index.
        """
        s = self.s
        dev = s.device
        k = bisect.bisect_right(s.call_starts, n) - 1
        call = s.calls[k]
        if s.cfg.effective_method == "rerun":
            dev.restore(s.snap0)
            kind = FaultKind.FAIL if s.cfg.fault == "fail" else FaultKind.CUT
            dev.flash.arm_fault(n, torn, s.cfg.seed, kind)
            # a failed operation lets the scenario run on (Device OS handles the error)
            with contextlib.suppress(PowerCut):
                _run_scenario(dev, s.cfg.scenario, s.new)
            dev.flash.disarm()
            return call, k
        base = self._state_before_call(k)
        # One restore: flash at the start of the call, backup registers as they were then
        # (battery-backed, spec 8.4), power off, no OTA in flight (RAM is lost).
        dev.restore(DeviceSnapshot(base, call.regs, "off", "power cut", None))
        fl = self.flash
        fl.arm_fault(n - call.first_op, torn, s.cfg.seed)
        with contextlib.suppress(PowerCut):
            _apply_call(fl, call)
        fl.disarm()
        return call, k

    def _equivalent(self, call: _Call, k: int, n: int, torn: bool) -> _Ref | None:
        ref = self.ref
        s = self.s
        if (
            ref is None
            or s.cfg.effective_method != "equiv"
            or s.cfg.recovery_cuts
            or call.kind != "program"
            or ref.k != k
        ):
            return None
        size = len(call.data or b"")
        fl, w = self.flash, call.width
        j1, j2 = ref.local_op, n - call.first_op
        a = call.arg
        lo = min(fl.op_bytes(j1, size, w, a), fl.op_bytes(j2, size, w, a))
        hi = max(fl.op_bytes(j1 + 1, size, w, a), fl.op_bytes(j2 + 1, size, w, a))
        if ref.tracker.intersects(call.arg + lo, call.arg + hi):
            return None
        return ref

    def point(self, n: int, torn: bool) -> list[CutResult]:
        """Cut at ``n``, recover, classify; plus the recovery-cut variants."""
        s = self.s
        k = bisect.bisect_right(s.call_starts, n) - 1
        call = s.calls[k]
        ref = self._equivalent(call, k, n, torn)
        if ref is not None:
            j = n - call.first_op
            self.device_time += ref.device_time + (j - ref.local_op) * self._word_s
            return [
                CutResult(
                    n,
                    torn,
                    r.outcome,
                    r.boot,
                    r.label,
                    r.recovery_cut_at_op,
                    r.violations,
                    proven=True,
                )
                for r in ref.results
            ]
        dev = s.device
        fl = self.flash
        call, k = self.cut(n, torn)
        torn_erase = call.arg if (torn and call.kind == "erase") else None
        results: list[CutResult] = []
        after_cut = dev.snapshot() if s.cfg.recovery_cuts or s.cfg.compare_model else None
        model_cls: str | None = None
        diff: Difference | None = None
        if s.cfg.compare_model and after_cut is not None:
            # the model first, from the same state; then the real code from it again
            model = trace(dev, lambda: _boot(dev), real=False)
            mboot, merr = model.result if model.result is not None else (None, model.error)
            model_cls = _classify(s, mboot, _erases_since(s, torn_erase), 1, merr)[0]
            dev.restore(after_cut)
            real = trace(dev, lambda: _boot(dev), real=True)
            diff = difference(model, real)
            if diff is not None:
                diff = replace(diff, cut_at_op=n, torn=torn)
            boot, err = real.result if real.result is not None else (None, real.error)
            tracker = _ReadTracker(fl)
            boot_ops = len(real.ops)
            cls, kind, viol = _classify(s, boot, _erases_since(s, torn_erase), 1, err)
            self.booted += 2
        else:
            ops0 = fl.op_count
            with _ReadTracker(fl) as tracker:
                boot, err = _boot(dev)
                boot_ops = fl.op_count - ops0
                cls, kind, viol = _classify(s, boot, _erases_since(s, torn_erase), 1, err)
            self.booted += 1
        dt = fl.device_time_s - s.time0
        self.device_time += dt
        results.append(
            CutResult(n, torn, cls, kind, call.label, None, viol, False, model_cls, diff)
        )
        if after_cut is not None and boot_ops > 0:
            r = s.cfg.recovery_cuts
            positions = sorted({(boot_ops * (i + 1)) // (r + 1) for i in range(r)})
            for m in positions:
                dev.restore(after_cut)
                fl.arm_fault(m, False, s.cfg.seed)
                with contextlib.suppress(PowerCut):
                    dev.boot()
                fl.disarm()
                boot2, err2 = _boot(dev)
                cls2, kind2, viol2 = _classify(s, boot2, _erases_since(s, torn_erase), 2, err2)
                self.booted += 1
                self.device_time += fl.device_time_s - s.time0
                results.append(CutResult(n, torn, cls2, kind2, call.label, m, viol2))
        if call.kind == "program":
            self.ref = _Ref(k, n - call.first_op, torn, results, tracker, dt)
        else:
            self.ref = None
        return results
