"""The power-loss sweep's scenarios as registered objects.

A scenario says what is set up before the cut (the old module, the new module and where it
goes), what is run and cut (an OTA and its apply, a USB DFU install...), how often each sector
may be erased (the erase budget), which invariants apply, and the command that reproduces one
cut point by hand. Adding a scenario is one :class:`SweepScenario` subclass and one line in
:data:`SCENARIOS`; the CLI choices and the tests' parametrisation come from the registry.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from flashroom.deviceos import ModuleFunction, Profile
from flashroom.deviceos.gen2 import INTERNAL_FLASH_PAGE_SIZE
from flashroom.deviceos.stream import STORE_STREAMED_FIRMWARE
from flashroom.geometry import FlashChip
from flashroom.layout import Layout
from flashroom.particle.build import synthetic_module, synthetic_user_app
from flashroom.particle.evolve import small_change
from flashroom.particle.module_info import read_module_info_at
from flashroom.particle.stream import encode_delta
from flashroom.scenarios.sweep_check import ErasePlan

if TYPE_CHECKING:  # the device model imports numpy; the CLI reads this registry at start-up
    from flashroom.emu.device import Device
    from flashroom.emu.outcome import Outcome


@dataclass(frozen=True)
class Modules:
    """What a scenario replaces: the old module, the new one, and where the new one goes.

    ``extra``: more regions the scenario replaces, as (start, old bytes, new bytes): when the
    application runs, each must hold its old or its new module byte for byte (``no_mix``).
    """

    old: bytes
    new: bytes
    target_start: int
    extra: tuple[tuple[int, bytes, bytes], ...] = ()


class SweepScenario:
    """One kind of update a sweep cuts power through (subclass and register it).

    Attributes:
        name: the ``--scenario`` value.
        help: one line for ``--help``.
        atomic_update: the ``update_atomic`` invariant applies (the device must end running the
            old or the new module, with no slot pending).
        keeps_user_app: the user app must come out byte for byte unchanged (a system update).
    """

    name: ClassVar[str]
    help: ClassVar[str]
    atomic_update: ClassVar[bool] = True
    keeps_user_app: ClassVar[bool] = False
    #: the profile the scenario starts from, when it needs one (None: any)
    needs_profile: ClassVar[str | None] = None

    def configure(self, cfg: Any) -> None:
        """Take the sweep's options before :meth:`modules` (most scenarios need none)."""

    def files(self) -> list[tuple[str, bytes]]:
        """More files ``--save-failing`` writes for :meth:`reproduce` (name, bytes)."""
        return []

    def modules(
        self, dev: Device, layout: Layout, old_app: bytes, new_app: bytes, app_size: int, seed: int
    ) -> Modules:
        """The old and new modules, given the device with the old app installed and booted."""
        return Modules(old_app, new_app, layout.user_part.start)

    def run(self, dev: Device, new: bytes) -> Outcome:
        """Run the scenario uncut (a fault may already be armed on ``dev.flash``)."""
        return dev.ota(new)

    def erase_budget(
        self, profile: Profile, chip: FlashChip, target_start: int, size: int
    ) -> ErasePlan:
        """How often each sector may be erased (see :class:`ErasePlan`)."""
        return ota_erase_plan(profile, chip, target_start, size)

    def reproduce(self, image: str, new: str, cut: str) -> str:
        """The command that runs this scenario with the cut given as CLI options."""
        return f"flashroom emu ota --image {image} {new} {cut}"


class UserOta(SweepScenario):
    """A user-app OTA through the scratch and the bootloader's copy (spec 4.1-4.5)."""

    name = "user-ota"
    help = "an app OTA + the bootloader's apply"


class SystemOta(SweepScenario):
    """The next build of system part index 2 (the part the user app depends on, spec 2.4):
    the same dependencies as the installed one, version + 1, capped at its region."""

    name = "system-ota"
    help = "a system-part (index 2) OTA + apply"
    keeps_user_app = True

    def modules(
        self, dev: Device, layout: Layout, old_app: bytes, new_app: bytes, app_size: int, seed: int
    ) -> Modules:
        region = layout.region_for_module(ModuleFunction.SYSTEM_PART, 2)
        info = read_module_info_at(dev.flash.read(region.start, 0x200), 0)
        old = dev.flash.read(region.start, info.module_length + 4)
        size = min(app_size, region.size)
        new = synthetic_module(
            size - size % 2,
            platform_id=layout.platform_id,
            function=ModuleFunction.SYSTEM_PART,
            index=2,
            version=info.module_version + 1,
            start_address=region.start,
            dependency=info.dependency,
            dependency2=info.dependency2,
            seed=seed + 3,
        )
        return Modules(old, new, region.start)


class Install(SweepScenario):
    """The new app written over USB DFU, then the reset (spec 3.4)."""

    name = "install"
    help = "the new app written by USB DFU"
    atomic_update = False  # DFU promises no atomicity: safe mode is an honest outcome

    def run(self, dev: Device, new: bytes) -> Outcome:
        return dev.install(new)  # DFU write, then leave DFU (reset + boot)

    def erase_budget(
        self, profile: Profile, chip: FlashChip, target_start: int, size: int
    ) -> ErasePlan:
        dest = _sectors(chip, target_start, size)
        return ErasePlan(
            {s: 1 for s in dest},
            {},
            (1, 2),
            0,
            0,
            (f"DFU erases destination sectors {dest} once each (docs/device-os.md#dfu); no retry",),
        )

    def reproduce(self, image: str, new: str, cut: str) -> str:
        return f"flashroom emu install --image {image} {new} {cut}"


class Migrate(SweepScenario):
    """The whole over-the-air migration of a stock 2.3.1 Electron to the extended layout
    (:mod:`flashroom.devos.migrate`): the patched system parts in dependency order (idx 3,
    idx 1, idx 2), each an OTA + reset + apply + boot, then the 256K app through the extended
    system's OTA path. Power is cut at every flash operation of all of it."""

    name = "migrate"
    help = "stock 2.3.1 -> extended over the air: idx 3, idx 1, idx 2, then the 256K app"
    needs_profile = "stock"

    def __init__(self) -> None:
        self._steps: list[Any] = []
        self._source: str | None = None
        self._fleet_bootloader = 1004

    def configure(self, cfg: Any) -> None:
        self._source = getattr(cfg, "migration_modules", None)

    def modules(
        self, dev: Device, layout: Layout, old_app: bytes, new_app: bytes, app_size: int, seed: int
    ) -> Modules:
        from flashroom.devos.migrate import (
            load_migration_modules,
            plan_migration,
            synthetic_migration_modules,
        )

        mods = (
            load_migration_modules(self._source)
            if self._source is not None
            else synthetic_migration_modules(app_size, seed)
        )
        version = dev.bootloader_version() or 0
        plan = plan_migration(mods, fleet_bootloader=version)
        if not plan.ok:  # pragma: no cover - the planner orders the chain it is given
            raise ValueError(f"no migration plan: {plan.refusal}")
        self._steps = [st.module for st in plan.steps]
        app = self._steps[-1].data
        extra = []
        for m in self._steps[:-1]:
            start = m.info.module_start_address
            info = read_module_info_at(dev.flash.read(start, 0x200), 0)
            extra.append((start, dev.flash.read(start, info.module_length + 4), m.data))
        return Modules(old_app, app, layout.user_part.start, tuple(extra))

    def run(self, dev: Device, new: bytes) -> Outcome:
        out: Outcome | None = None
        for m in self._steps:
            out = dev.ota(m.data)
            if out.result != "applied":
                return out
        assert out is not None
        return out

    def erase_budget(
        self, profile: Profile, chip: FlashChip, target_start: int, size: int
    ) -> ErasePlan:
        from flashroom.deviceos import get_profile

        stock = get_profile("electron", "stock")
        ext = get_profile("electron", "extended")
        plans = [
            ota_erase_plan(
                ext if m is self._steps[-1] else stock,
                chip,
                m.info.module_start_address,
                len(m.data),
            )
            for m in self._steps
        ]
        clean: dict[int, int] = {}
        per_cut: dict[int, int] = {}
        for p in plans:
            for k, v in p.clean.items():
                clean[k] = clean.get(k, 0) + v
            for k, v in p.per_cut.items():
                per_cut[k] = max(per_cut.get(k, 0), v)
        # the system's rewrite of sector 0 when idx 3 brings a newer bootloader (spec 4.7)
        clean[0] = clean.get(0, 0) + 1
        per_cut[0] = 1
        return ErasePlan(
            clean,
            per_cut,
            plans[0].dct_sectors,
            # + the extended system's first boot clearing factory slot 0 (spec 9 change 2)
            sum(p.dct_writes for p in plans) + 1,
            1,
            (
                f"{len(self._steps)} OTA updates in order, each with the budget of one OTA; "
                "sector 0 at most once more (the embedded-bootloader rewrite, "
                "docs/device-os.md#bootloader-updates); one "
                "more DCT write when the extended system first boots and clears the factory "
                "slot (docs/device-os.md#extended)",
                *plans[-1].explanation,
            ),
        )

    def files(self) -> list[tuple[str, bytes]]:
        return [(f"step{i}.bin", m.data) for i, m in enumerate(self._steps, 1)]

    def reproduce(self, image: str, new: str, cut: str) -> str:
        d = new.rsplit("/", 1)[0] if "/" in new else "."
        steps = " ".join(f"{d}/step{i}.bin" for i in range(1, len(self._steps) + 1))
        return f"flashroom emu ota --image {image} {steps} {cut}"


class DeltaOta(SweepScenario):
    """A delta update (docs/delta-ota.md): the device rebuilds the next build of its app into
    the scratch from the running app and a detools patch while the chunks arrive, then
    ``HAL_FLASH_End`` and the unchanged bootloader copy as for any OTA (spec 4.2-4.5).

    The base is reinstalled at ``app_size - 64`` bytes (a DFU write, before the sweep's
    snapshot) so the new module, a 64-byte code change relinked, is ``app_size``. A device
    without the streamed-OTA capability gets the raw module, as the server would send it.
    """

    name = "delta-ota"
    help = "a delta OTA rebuilt into the scratch + the bootloader's apply"
    INSERT = 64

    def __init__(self) -> None:
        self._patches: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def modules(
        self, dev: Device, layout: Layout, old_app: bytes, new_app: bytes, app_size: int, seed: int
    ) -> Modules:
        base = synthetic_user_app(
            app_size - self.INSERT, platform=layout.platform, version=5, seed=seed + 1
        )
        dev.install(base)  # DFU write + reset: the base runs
        return Modules(
            base, small_change(base, insert=self.INSERT, seed=seed), layout.user_part.start
        )

    def patch(self, base: bytes, new: bytes) -> bytes:
        """The server's delta from ``base`` to ``new`` (made once per pair)."""
        key = (hashlib.sha256(base).hexdigest(), hashlib.sha256(new).hexdigest())
        with self._lock:
            if key not in self._patches:
                self._patches[key] = encode_delta(base, new)
            return self._patches[key]

    def run(self, dev: Device, new: bytes) -> Outcome:
        report = dev.stream_report()
        if report is None or not report.base_size:
            return dev.ota(new)  # what the server sends a device that cannot apply a delta
        base = dev.user_part_bytes()
        return dev.ota(self.patch(base, new), store=STORE_STREAMED_FIRMWARE, expect=new)

    def reproduce(self, image: str, new: str, cut: str) -> str:
        d = new.rsplit("/", 1)[0] if "/" in new else "."
        return (
            f"flashroom ota diff {d}/old.bin {new} -o {d}/delta.patch && "
            f"flashroom emu ota --image {image} {d}/delta.patch {cut}"
        )

    def erase_budget(
        self, profile: Profile, chip: FlashChip, target_start: int, size: int
    ) -> ErasePlan:
        plan = ota_erase_plan(profile, chip, target_start, size)
        if profile.ota_stream is None:
            return plan
        # The streamed prepare erases the whole scratch once (emu/stream.py: the decoded length
        # is only known from the header); the copy's budget is the same as any OTA's.
        ota = profile.ota_bounds
        scratch = _sectors(chip, ota.start_address, ota.maximum_size)
        clean = dict(plan.clean)
        for sec in scratch:
            clean[sec] = 1
        notes = (
            f"the streamed prepare erases scratch sectors {scratch} once (HAL_FLASH_Begin over "
            "HAL_OTA_FlashLength, docs/delta-ota.md)",
            *plan.explanation[1:],
        )
        return ErasePlan(
            clean, plan.per_cut, plan.dct_sectors, plan.dct_writes, plan.dct_per_cut, notes
        )


#: Every scenario, by name (the CLI's ``--scenario`` choices, in this order).
SCENARIOS: Mapping[str, SweepScenario] = {
    s.name: s for s in (UserOta(), SystemOta(), Install(), DeltaOta(), Migrate())
}


def _sectors(chip: FlashChip, start: int, size: int) -> list[int]:
    return [s.index for s in chip.sectors if s.start < start + size and start < s.end]


def ota_erase_plan(
    profile: Profile, chip: FlashChip, module_start: int, module_size: int
) -> ErasePlan:
    """The erase budget of an OTA and its apply, for a module of ``module_size`` bytes.

    FLASH_Begin erases ``ceil(len / 128K)`` sectors from ``HAL_OTA_FlashAddress()``, once
    (spec 4.1 #2.3; the sweep never retries the transfer). The bootloader erases every
    destination sector once per copy attempt (spec 4.5); a power cut can cause one more
    attempt. Two DCT writes: the slot record (spec 4.2 #3) and the slot clear (spec 4.5 #2.4);
    each DCT write erases at most one alternate sector (spec 8.1 write #2), and each cut may
    cost one more (an interrupted write redone, or the clear after a re-copy).
    """
    dest = _sectors(chip, module_start, module_size)
    n_scratch = -(-module_size // INTERNAL_FLASH_PAGE_SIZE)
    ota = profile.ota_flash_address
    first = next(s.index for s in chip.sectors if s.start <= ota < s.end)
    scratch = list(range(first, first + n_scratch))
    clean: dict[int, int] = {}
    per_cut: dict[int, int] = {}
    for s in scratch:
        clean[s] = clean.get(s, 0) + 1
    for s in dest:
        clean[s] = clean.get(s, 0) + 1
        per_cut[s] = 1
    notes = (
        f"FLASH_Begin erases scratch sectors {scratch} once (ceil({module_size}/128K), "
        "docs/device-os.md#ota-receive)",
        f"the copy erases destination sectors {dest} once per attempt; each cut may add one "
        "attempt (docs/device-os.md#copy)",
        "2 DCT writes (slot record docs/device-os.md#ota-finish, slot clear "
        "docs/device-os.md#copy), each at most one DCT sector "
        "erase (docs/device-os.md#dct); each cut may add one",
    )
    return ErasePlan(clean, per_cut, (1, 2), 2, 1, notes)


__all__ = [
    "SCENARIOS",
    "DeltaOta",
    "Install",
    "Migrate",
    "Modules",
    "SweepScenario",
    "SystemOta",
    "UserOta",
    "ota_erase_plan",
]
