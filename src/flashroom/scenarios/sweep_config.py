"""What a power-loss sweep is asked for and what one cut point yields: the options, the
outcome classes and the methods, as plain data (no device model is imported here, so the CLI
can take its choices from it without loading numpy).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flashroom.errors import ParamError, UsageError
from flashroom.scenarios.sweep_scenarios import SCENARIOS


class CutClass(StrEnum):
    """The class of one cut point after its recovery boot (docs/power-loss.md)."""

    NEW_APP = "new_app"
    OLD_APP = "old_app"
    SAFE_MODE = "safe_mode"
    DFU = "dfu"
    BRICK = "brick"
    INVARIANT_VIOLATION = "invariant_violation"


#: Every class, in report order.
OUTCOMES: tuple[CutClass, ...] = tuple(CutClass)
#: Classes that fail a sweep (exit 1).
BAD_OUTCOMES: frozenset[CutClass] = frozenset({CutClass.BRICK, CutClass.INVARIANT_VIOLATION})


class SweepMethod(StrEnum):
    """How the state after a cut is reached (see the module docstring)."""

    EQUIV = "equiv"
    REPLAY = "replay"
    RERUN = "rerun"


METHODS: tuple[SweepMethod, ...] = tuple(SweepMethod)

#: What happens at a cut point: power is cut, or the operation fails (FaultKind of NorFlash).
FAULTS: tuple[str, ...] = ("cut", "fail")

#: Failures kept in full per sweep (the counts cover all of them).
MAX_FAILURES = 20


@dataclass(frozen=True)
class SweepConfig:
    """What to sweep. Every field has a CLI option of the same name (kebab-case).

    Attributes:
        platform: ``electron`` (``photon``/``p1`` with profile ``stock``).
        profile: ``stock`` or ``extended`` (spec 9).
        bootloader: ``resumable`` (>= 1003) or ``legacy`` (<= 1002), spec 4.5.
        scenario: ``user-ota`` (app OTA + apply), ``system-ota`` (system part index 2 OTA + apply)
            or ``install`` (the new app written by USB DFU, spec 3.4).
        app_size: file size of the new module (capped at the region size for ``system-ota``).
        old_size: file size of the old app installed first (default 100K).
        granularity: ``word`` (every 32-bit word programmed is a cut point) or ``chunk``.
        torn: also try a torn version of every cut (a partial program / partial erase).
        stride: test every ``stride``-th cut point (1 = exhaustive).
        first_op: first cut point; ``last_op``: one past the last (None = all).
        recovery_cuts: per cut point, also cut the recovery boot at this many evenly spread ops.
        seed: seeds the app contents and the torn bit patterns.
        method: ``equiv`` (default), ``replay`` or ``rerun`` (see the module docstring).
        workers: processes (1 = in-process).
        fault: ``cut`` (power is cut at the point) or ``fail`` (the operation fails with an
            FLASH_SR error, as on a brown-out, and the firmware carries on; needs ``rerun``).
        sample: test a seeded sample of this many cut points instead of all (after stride).
        scheduler: a Dask scheduler address (``tcp://HOST:PORT``) to run the points on instead
            of local processes.
        keep_points: keep every point's outcome in the result (for tests, diffs, plots).
        bootloader_firmware: a real bootloader file: the device's every boot executes it
            (the variant follows its version; ``bootloader`` is then ignored).
        system_firmware: a folder of real system modules: the OTA path is their real code.
        compare_model: at every cut point boot the model too, from the same state, and compare
            flash, backup registers, boot outcome and operation sequence (needs
            ``bootloader_firmware``).
        migration_modules: ``migrate`` scenario: a ``devos build`` output whose patched system
            parts and largest app are sent (None: synthetic stand-ins of the same sizes).
    """

    platform: str = "electron"
    profile: str = "extended"
    bootloader: str = "resumable"
    scenario: str = "user-ota"
    app_size: int = 256 * 1024
    old_size: int = 100 * 1024
    granularity: str = "word"
    torn: bool = False
    stride: int = 1
    first_op: int = 0
    last_op: int | None = None
    recovery_cuts: int = 0
    seed: int = 0
    method: str = "equiv"
    workers: int = 1
    keep_points: bool = False
    fault: str = "cut"
    sample: int | None = None
    scheduler: str | None = None
    bootloader_firmware: str | None = None
    system_firmware: str | None = None
    compare_model: bool = False
    migration_modules: str | None = None

    @property
    def real_bootloader(self) -> bool:
        return self.bootloader_firmware is not None

    @property
    def effective_method(self) -> str:
        """``equiv`` needs every flash byte a boot read; the real code reads flash through
        Unicorn's memory map, which is not observed, so with a real bootloader ``equiv`` runs as
        ``replay`` (every point booted)."""
        if self.method == SweepMethod.EQUIV and self.real_bootloader:
            return str(SweepMethod.REPLAY)
        return self.method

    def validate(self) -> None:
        """Reject impossible combinations with a precise message.

        Raises:
            UsageError: an option is out of range.
        """
        if self.scenario not in SCENARIOS:
            raise UsageError(f"unknown scenario {self.scenario!r}: expected {', '.join(SCENARIOS)}")
        if self.method not in METHODS:
            raise UsageError(f"unknown method {self.method!r}: expected {', '.join(METHODS)}")
        if self.fault not in FAULTS:
            raise ParamError(f"fault {self.fault!r}: expected one of {', '.join(FAULTS)}", "fault")
        if self.fault == "fail" and self.torn:
            raise ParamError("fault fail and torn cannot be combined: a failed op is not torn",
                             "fault", "torn")  # fmt: skip
        if self.fault == "fail" and self.method != SweepMethod.RERUN:
            raise ParamError(
                f"fault fail needs method rerun (method {self.method} replays the recorded run, "
                "but a failed operation changes what the firmware does next)",
                "fault",
                "method",
            )
        need = SCENARIOS[self.scenario].needs_profile
        if need is not None and self.profile != need:
            raise ParamError(
                f"scenario {self.scenario} starts from the {need} profile, not {self.profile}",
                "scenario",
                "profile",
            )
        if self.migration_modules is not None and self.scenario != "migrate":
            raise ParamError(
                "migration_modules are what the migrate scenario sends: use scenario migrate",
                "migration_modules",
                "scenario",
            )
        if self.compare_model and not self.real_bootloader:
            raise ParamError(
                "compare_model compares the real bootloader with the model at every cut point: "
                "give bootloader_firmware (a real bootloader file)",
                "compare_model",
                "bootloader_firmware",
            )
        if self.compare_model and self.recovery_cuts:
            raise ParamError(
                "compare_model and recovery_cuts cannot be combined yet: the comparison covers "
                "the first recovery boot of each point",
                "compare_model",
                "recovery_cuts",
            )
        if self.sample is not None and self.sample < 1:
            raise ParamError(f"sample must be >= 1, got {self.sample}", "sample")
        if self.granularity not in ("word", "chunk"):
            raise UsageError(f"unknown granularity {self.granularity!r}: expected word or chunk")
        if self.stride < 1:
            raise ParamError(f"stride must be >= 1, got {self.stride}", "stride")
        if self.workers < 1:
            raise ParamError(f"workers must be >= 1, got {self.workers}", "workers")
        if self.recovery_cuts < 0:
            raise ParamError(
                f"recovery_cuts must be >= 0, got {self.recovery_cuts}", "recovery_cuts"
            )
        if self.first_op < 0:
            raise ParamError(f"first_op must be >= 0, got {self.first_op}", "first_op")
        if self.last_op is not None and self.last_op <= self.first_op:
            raise ParamError(
                f"first_op {self.first_op} must be below last_op {self.last_op}: the range "
                "of cut points [first, last) would be empty",
                "first_op",
                "last_op",
            )
        for name, size in (("app_size", self.app_size), ("old_size", self.old_size)):
            if size <= 0 or size % 2:
                raise ParamError(
                    f"{name} must be a positive even number of bytes, got {size}", name
                )

    def to_json(self) -> dict[str, Any]:
        """The options as stable JSON."""
        return {
            "platform": self.platform,
            "profile": self.profile,
            "bootloader": self.bootloader,
            "scenario": self.scenario,
            "app_size": self.app_size,
            "old_size": self.old_size,
            "granularity": self.granularity,
            "torn": self.torn,
            "stride": self.stride,
            "first_op": self.first_op,
            "last_op": self.last_op,
            "recovery_cuts": self.recovery_cuts,
            "seed": self.seed,
            "method": self.method,
            "workers": self.workers,
            "fault": self.fault,
            "sample": self.sample,
            "scheduler": self.scheduler,
            "method_used": self.effective_method,
            "bootloader_firmware": self.bootloader_firmware,
            "system_firmware": self.system_firmware,
            "compare_model": self.compare_model,
            "migration_modules": self.migration_modules,
        }


@dataclass(frozen=True)
class CutResult:
    """The outcome of one cut point.

    Attributes:
        cut_at_op: operation index of the cut (0-based within the scenario run).
        torn: the cut operation happened partially.
        outcome: one of :data:`OUTCOMES`.
        boot: what the recovery boot reported (``application``, ``safe_mode``, ``dfu``...).
        label: the flash call the cut fell into, e.g. ``program user_part``.
        recovery_cut_at_op: operation index of a second cut during the recovery boot, or None.
        violations: the invariants broken, each with the evidence.
        proven: the outcome was not booted but proven equal to a booted point's (``equiv``).
        model_outcome: with ``compare_model``, the class the model's boot from the same state
            got (None otherwise).
        difference: with ``compare_model``, the first way the model's boot differed from the
            real code's (a :class:`flashroom.scenarios.compare.Difference`), or None.
    """

    cut_at_op: int
    torn: bool
    outcome: str
    boot: str
    label: str
    recovery_cut_at_op: int | None = None
    violations: tuple[str, ...] = ()
    proven: bool = False
    model_outcome: str | None = None
    difference: Any = None

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form."""
        extra: dict[str, Any] = {}
        if self.model_outcome is not None:
            extra["model_outcome"] = self.model_outcome
            extra["difference"] = None if self.difference is None else self.difference.to_json()
        return {
            "cut_at_op": self.cut_at_op,
            "torn": self.torn,
            "outcome": self.outcome,
            "boot": self.boot,
            "label": self.label,
            "recovery_cut_at_op": self.recovery_cut_at_op,
            "violations": list(self.violations),
            "proven": self.proven,
            **extra,
        }
