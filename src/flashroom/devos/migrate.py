"""Migrating a deployed stock 2.3.1 Electron to the extended layout, over the air only (issue 11).

The fleet owner can only send OTA updates, one module at a time, each through the OTA path of
the system **running at that moment**: while system module idx 2 is stock (2302) the scratch is
128 KB and user parts above 128 KB get -1300 (spec 4.1); once the patched idx 2 (version 2350,
spec 9 change 5) runs, the scratch is 256 KB and the 256K app fits. Every module of the patched
build depends on the previous one (the manifest's dependency chain: idx 3 >= idx 2 110, idx 1
>= idx 3 2350, idx 2 >= idx 1 2350 and bootloader 1003, the app >= idx 2 2350), and Device OS
checks a module's dependencies before it applies it (spec 3.1-3.2), so the order is forced.

:func:`plan_migration` is the pure planner: it walks the steps against a model of what the
device has installed (versions, the running profile's OTA region), orders them when no order is
given, refuses an order that cannot work with the reason the device would give, and says for
each step whether it is power-safe (the bootloader's copy semantics, spec 4.5, and an embedded
bootloader newer than the fleet's, which the system writes over sector 0 at the next boot, spec
4.7). :mod:`flashroom.scenarios.migrate` runs the plan on the emulator; the ``migrate`` sweep
scenario cuts power at every flash operation of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashroom.deviceos import ModuleFunction, get_profile
from flashroom.deviceos.gen2 import (
    EXTENDED_SYSTEM_VERSION,
    RESUMABLE_FROM_VERSION,
    SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED,
    SYSTEM_ERROR_OTA_MODULE_NOT_FOUND,
    SYSTEM_VERSION_2_3_1,
)
from flashroom.devos.manifest import Manifest
from flashroom.errors import ParamError
from flashroom.particle.build import device_os_install, synthetic_module
from flashroom.particle.module_info import (
    ModuleDependency,
    ModuleInfo,
    read_module_info_at,
)
from flashroom.ranges import fmt_size

#: The bootloader a stock 2.3.1 fleet has at least: 2.3.1's system module idx 3 embeds 1004 and
#: writes it over any older bootloader at its first boot (spec 4.7).
FLEET_MIN_BOOTLOADER = 1004
#: Where a module_info_t sits in a bootloader image (spec 1.6), for the embedded scan.
_BOOTLOADER_INFO_OFFSET = 0x184

#: The patched build's system modules as ``flashroom devos build`` made them (manifest.json of
#: build/devos-cache; sizes of the real .bin files): (index, size, dependencies). The synthetic
#: stand-ins below copy them so a sweep without a build cuts the same number of operations.
PATCHED_SYSTEM_PARTS: tuple[tuple[int, int, tuple[tuple[int, int, int], ...]], ...] = (
    (3, 98_016, ((ModuleFunction.SYSTEM_PART, 2, 110),)),
    (1, 115_632, ((ModuleFunction.SYSTEM_PART, 3, EXTENDED_SYSTEM_VERSION),)),
    (
        2,
        129_244,
        (
            (ModuleFunction.SYSTEM_PART, 1, EXTENDED_SYSTEM_VERSION),
            (ModuleFunction.BOOTLOADER, 0, RESUMABLE_FROM_VERSION),
        ),
    ),
)


@dataclass(frozen=True)
class MigrationModule:
    """One module the migration may send.

    Attributes:
        name: for messages (the file stem, or ``synthetic idx 2``...).
        data: the module file.
        info: its module_info_t.
        embedded_bootloader: the version of a bootloader image it carries (idx 3), or None.
        source: the file, or ``synthetic``.
    """

    name: str
    data: bytes
    info: ModuleInfo
    embedded_bootloader: int | None = None
    source: str = "synthetic"

    @property
    def key(self) -> tuple[int, int]:
        return (self.info.module_function, self.info.module_index)

    @property
    def is_app(self) -> bool:
        return self.info.module_function == ModuleFunction.USER_PART

    def label(self) -> str:
        if self.is_app:
            return f"user part ({self.name})"
        return f"system part idx {self.info.module_index} ({self.name})"

    def to_json(self) -> dict[str, Any]:
        i = self.info
        return {
            "name": self.name,
            "source": self.source,
            "module_function": i.module_function,
            "module_index": i.module_index,
            "module_version": i.module_version,
            "start_address": f"0x{i.module_start_address:08x}",
            "size": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
            "dependencies": [_dep_text(d) for d in _deps(i)],
            "embedded_bootloader": self.embedded_bootloader,
        }


def _deps(info: ModuleInfo) -> list[ModuleDependency]:
    return [d for d in (info.dependency, info.dependency2) if not d.is_none]


def _dep_text(d: ModuleDependency) -> str:
    what = "bootloader" if d.module_function == ModuleFunction.BOOTLOADER else (
        f"system part idx {d.module_index}"
        if d.module_function == ModuleFunction.SYSTEM_PART
        else f"function {d.module_function} idx {d.module_index}"
    )  # fmt: skip
    return f"{what} >= {d.module_version}"


def embedded_bootloader_version(data: bytes) -> int | None:
    """The version of a bootloader image embedded in a module (Electron idx 3, spec 4.7): the
    first bootloader module_info_t (start address 0x08000000, function BOOTLOADER) found on a
    4-byte boundary of the file, or None."""
    needle = (0x08000000).to_bytes(4, "little")
    at = data.find(needle, 0x200)
    while at != -1:
        if at % 4 == 0 and at + 24 <= len(data):
            try:
                info = read_module_info_at(data, at)
            except Exception:
                info = None
            if info is not None and info.module_function == ModuleFunction.BOOTLOADER:
                return info.module_version
        at = data.find(needle, at + 1)
    return None


def _module(name: str, data: bytes, source: str) -> MigrationModule:
    info = read_module_info_at(data, 0)
    embedded = None
    if info.module_function == ModuleFunction.SYSTEM_PART and info.module_index == 3:
        embedded = embedded_bootloader_version(data)
    return MigrationModule(name, data, info, embedded, source)


def load_migration_modules(
    out_dir: str | Path, app: str | Path | None = None
) -> list[MigrationModule]:
    """The patched system modules of a ``flashroom devos build`` output and the app to send
    (``app``, or the largest user part of the build).

    Raises:
        ManifestError: the output's manifest is missing or disagrees with its files.
        ParamError: the build has no user part and no ``app`` was given, or ``app`` is not a
            user part.
    """
    d = Path(out_dir)
    manifest = Manifest.from_dir(d)
    manifest.verify_files(d)
    mods = [
        _module(e.name, (d / e.file).read_bytes(), str(d / e.file)) for e in manifest.system_parts
    ]
    if app is not None:
        a = Path(app)
        m = _module(a.stem, a.read_bytes(), str(a))
        if not m.is_app:
            raise ParamError(
                f"app {a}: module function {m.info.module_function} is not a user part", "app"
            )
        mods.append(m)
    else:
        users = sorted(manifest.user_parts, key=lambda e: e.size)
        if not users:
            raise ParamError(f"{d} holds no user part: give the app to send", "app")
        e = users[-1]
        mods.append(_module(e.name, (d / e.file).read_bytes(), str(d / e.file)))
    return mods


def synthetic_migration_modules(app_size: int = 256 * 1024, seed: int = 0) -> list[MigrationModule]:
    """Stand-ins for the patched build (no toolchain needed): the sizes, versions and dependency
    chain of :data:`PATCHED_SYSTEM_PARTS`, idx 3 embedding the same synthetic 1004 bootloader the
    emulator's stock 2.3.1 system carries, and an ``app_size`` user part depending on idx 2 2350.
    """
    prof = get_profile("electron", "stock")
    bootloader = device_os_install("electron")[0]
    out: list[MigrationModule] = []
    for index, size, deps in PATCHED_SYSTEM_PARTS:
        b = prof.find_module_bounds(ModuleFunction.SYSTEM_PART, index)
        assert b is not None
        dd = [ModuleDependency(*x) for x in deps] + [ModuleDependency()] * 2
        data = synthetic_module(
            size,
            platform_id=prof.platform_id,
            function=ModuleFunction.SYSTEM_PART,
            index=index,
            version=EXTENDED_SYSTEM_VERSION,
            start_address=b.start_address,
            dependency=dd[0],
            dependency2=dd[1],
            seed=seed + 40 + index,
            embed=bootloader if index == 3 else None,
        )
        out.append(_module(f"synthetic system-part idx {index}", data, "synthetic"))
    app = synthetic_module(
        app_size - app_size % 2,
        platform_id=prof.platform_id,
        function=ModuleFunction.USER_PART,
        index=1,
        version=7,
        start_address=prof.user_loc,
        dependency=ModuleDependency(ModuleFunction.SYSTEM_PART, 2, EXTENDED_SYSTEM_VERSION),
        seed=seed + 2,
    )
    out.append(_module(f"synthetic app {fmt_size(len(app))}", app, "synthetic"))
    return out


# ------------------------------------------------------------------ the planner


@dataclass(frozen=True)
class Installed:
    """What the device has, as the planner tracks it: versions by (function, index)."""

    versions: dict[tuple[int, int], int]
    bootloader: int

    def version(self, function: int, index: int) -> int | None:
        if function == ModuleFunction.BOOTLOADER:
            return self.bootloader
        return self.versions.get((function, index))

    def profile(self) -> str:
        v = self.versions.get((ModuleFunction.SYSTEM_PART, 2))
        return "extended" if v == EXTENDED_SYSTEM_VERSION else "stock"

    def after(self, m: MigrationModule) -> Installed:
        v = dict(self.versions)
        v[m.key] = m.info.module_version
        bl = self.bootloader
        if m.embedded_bootloader is not None and m.embedded_bootloader > bl:
            bl = m.embedded_bootloader  # the system rewrites sector 0 at the next boot (4.7)
        return Installed(v, bl)


@dataclass(frozen=True)
class PlanStep:
    """One OTA update of the plan and what the device does with it."""

    number: int
    module: MigrationModule
    profile_before: str
    profile_after: str
    scratch: int
    does: str
    power_safe: bool
    hazards: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "module": self.module.to_json(),
            "label": self.module.label(),
            "size": len(self.module.data),
            "runs_on": self.profile_before,
            "ota_region_size": self.scratch,
            "system_after": self.profile_after,
            "does": self.does,
            "power_safe": self.power_safe,
            "hazards": list(self.hazards),
        }


@dataclass(frozen=True)
class Refusal:
    """Why a step cannot work: the module, the rule, and the device's answer."""

    step: int
    module: str
    reason: str
    expected_error: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "module": self.module,
            "reason": self.reason,
            "expected_error": self.expected_error,
        }


@dataclass(frozen=True)
class MigrationPlan:
    """The ordered OTA updates, or the refusal of the order asked for."""

    source: str
    fleet_bootloader: int
    steps: tuple[PlanStep, ...]
    refusal: Refusal | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: every module that was offered (the refused one included)
    modules: tuple[MigrationModule, ...] = ()

    @property
    def ok(self) -> bool:
        return self.refusal is None

    @property
    def power_safe(self) -> bool:
        return all(s.power_safe for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": "stock",
            "to": "extended",
            "ok": self.ok,
            "power_safe": self.power_safe,
            "source": self.source,
            "fleet_bootloader": self.fleet_bootloader,
            "steps": [s.to_json() for s in self.steps],
            "refusal": None if self.refusal is None else self.refusal.to_json(),
            "notes": list(self.notes),
        }


def stock_installed(fleet_bootloader: int = FLEET_MIN_BOOTLOADER) -> Installed:
    """A stock 2.3.1 Electron: system parts 2302 (spec 2.4)."""
    return Installed(
        {(ModuleFunction.SYSTEM_PART, i): SYSTEM_VERSION_2_3_1 for i in (1, 2, 3)},
        fleet_bootloader,
    )


def _check(m: MigrationModule, have: Installed) -> tuple[str, int] | None:
    """Why the device running ``have`` refuses ``m`` (the reason and the error), or None."""
    prof = get_profile("electron", have.profile())
    size = len(m.data)
    if m.is_app:
        bounds = prof.user_bounds
        if size > bounds.maximum_size:
            return (
                f"the {have.profile()} system's user part may be at most "
                f"{fmt_size(bounds.maximum_size)} ({bounds.maximum_size} bytes); this one is "
                f"{size} bytes: HAL_FLASH_End finds no module bounds for it and answers -1300 "
                "(docs/device-os.md#ota-receive, #ota-finish)",
                SYSTEM_ERROR_OTA_MODULE_NOT_FOUND,
            )
    elif size > prof.ota_flash_length:
        return (
            f"{size} bytes do not fit the {have.profile()} OTA region of "
            f"{prof.ota_flash_length} bytes (docs/device-os.md#ota-receive)",
            SYSTEM_ERROR_OTA_MODULE_NOT_FOUND,
        )
    for d in _deps(m.info):
        got = have.version(d.module_function, d.module_index)
        if got is None or got < d.module_version:
            return (
                f"it needs {_dep_text(d)}, the device has {got}: the dependency check refuses it "
                "(docs/device-os.md#ota-checks, #boot-check)"
                + (", and a user part would boot safe mode" if m.is_app else ""),
                SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED,
            )
    return None


def _step(n: int, m: MigrationModule, have: Installed) -> PlanStep:
    after = have.after(m)
    prof = get_profile("electron", have.profile())
    hazards: list[str] = []
    if have.bootloader < RESUMABLE_FROM_VERSION:
        hazards.append(
            f"bootloader {have.bootloader} clears the slot before copying "
            "(docs/device-os.md#copy): a power "
            "cut during the copy leaves a partial module"
        )
    if m.embedded_bootloader is not None and m.embedded_bootloader > have.bootloader:
        hazards.append(
            f"it embeds bootloader {m.embedded_bootloader}, newer than the device's "
            f"{have.bootloader}: the system erases and rewrites sector 0 at the next boot "
            "(docs/device-os.md#bootloader-updates), and a power cut there bricks the device (no "
            "DFU without a bootloader)"
        )
    where = f"0x{m.info.module_start_address:08x}"
    does = (
        f"receives {len(m.data)} bytes into the {have.profile()} OTA region "
        f"({fmt_size(prof.ota_flash_length)}), marks the slot pending, resets; the bootloader "
        f"copies it to {where}"
    )
    if after.profile() != have.profile():
        does += f"; from this boot the {after.profile()} system runs (its OTA region and bounds)"
    if m.is_app:
        does += "; the app runs"
    return PlanStep(n, m, have.profile(), after.profile(), prof.ota_flash_length, does,
                    not hazards, tuple(hazards))  # fmt: skip


def plan_migration(
    modules: list[MigrationModule],
    *,
    order: list[str] | None = None,
    fleet_bootloader: int = FLEET_MIN_BOOTLOADER,
    source: str = "synthetic",
) -> MigrationPlan:
    """Plan the OTA updates that take a stock 2.3.1 Electron to the extended layout.

    Args:
        modules: what may be sent (the patched system parts and the app).
        order: the order asked for, as module keys (``idx1``, ``idx2``, ``idx3``, ``app``);
            None: the planner picks the one order the dependencies allow.
        fleet_bootloader: the oldest bootloader in the fleet (default 1004, see
            :data:`FLEET_MIN_BOOTLOADER`).
        source: where the modules came from (for the report).

    Returns:
        The steps, or (with ``order``) the steps up to the first one that cannot work and the
        refusal with its reason.

    Raises:
        ParamError: ``order`` names a module that is not in ``modules``, or twice.
    """
    by_key = {module_key(m): m for m in modules}
    notes = [
        "every step is one OTA update sent after the previous one is running; the device "
        "reports the module versions it runs, so a step is safe to resend",
        "nothing is written over USB: the factory-reset image in sector 9 is left to be "
        "overwritten by the 256K app (docs/device-os.md#extended: the extended system retires it)",
    ]
    have = stock_installed(fleet_bootloader)
    steps: list[PlanStep] = []
    offered = tuple(modules)

    def done(ref: Refusal | None) -> MigrationPlan:
        return MigrationPlan(source, fleet_bootloader, tuple(steps), ref, tuple(notes), offered)

    if order is not None:
        seen: set[str] = set()
        for k in order:
            if k not in by_key:
                raise ParamError(
                    f"order names {k!r}: expected some of {', '.join(sorted(by_key))}", "order"
                )
            if k in seen:
                raise ParamError(f"order names {k!r} twice", "order")
            seen.add(k)
        for n, k in enumerate(order, 1):
            m = by_key[k]
            why = _check(m, have)
            if why is not None:
                return done(Refusal(n, m.label(), why[0], why[1]))
            steps.append(_step(n, m, have))
            have = have.after(m)
        if have.profile() != "extended" or not any(m.is_app for m in (by_key[k] for k in order)):
            missing = [k for k in sorted(by_key) if k not in order]
            return done(
                Refusal(
                    len(order) + 1,
                    ", ".join(missing) or "-",
                    "the order ends before the extended system and the app run",
                    None,
                )
            )
        return done(None)
    pending = list(modules)
    n = 0
    while pending:
        # system parts first (the app needs the extended system), lowest index first
        pending.sort(key=lambda m: (m.is_app, m.info.module_index))
        pick = next((m for m in pending if _check(m, have) is None), None)
        if pick is None:
            m = pending[0]
            why = _check(m, have)
            assert why is not None
            return done(Refusal(n + 1, m.label(), why[0], why[1]))
        n += 1
        steps.append(_step(n, pick, have))
        have = have.after(pick)
        pending.remove(pick)
    return done(None)


def module_key(m: MigrationModule) -> str:
    """``app``, ``idx1``, ``idx2``, ``idx3``: how ``order`` names a module."""
    return "app" if m.is_app else f"idx{m.info.module_index}"


__all__ = [
    "FLEET_MIN_BOOTLOADER",
    "PATCHED_SYSTEM_PARTS",
    "Installed",
    "MigrationModule",
    "MigrationPlan",
    "PlanStep",
    "Refusal",
    "embedded_bootloader_version",
    "load_migration_modules",
    "module_key",
    "plan_migration",
    "stock_installed",
    "synthetic_migration_modules",
]
