"""Module dependencies: the device's rule (spec 2.4, 3.1 ``validate_module_dependencies``, 3.2).

Each of the two ``module_dependency_t`` slots whose function is not NONE must be met by the
installed module with the same function and index (the device finds it through
``find_module_bounds(dep.function, dep.index)`` and reads the module_info at that region's
start) whose ``module_version`` is at least the required version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flashroom.deviceos import PLATFORMS
from flashroom.errors import UsageError
from flashroom.particle.module_info import ModuleDependency, ModuleFunction, ModuleInfo


def _name(function: int) -> str:
    try:
        return ModuleFunction(function).name
    except ValueError:
        return f"function {function}"


def describe_dependency(dep: ModuleDependency) -> str:
    """``SYSTEM_PART idx 2 >= 2302``."""
    return f"{_name(dep.module_function)} idx {dep.module_index} >= {dep.module_version}"


@dataclass(frozen=True)
class DependencyFinding:
    """The verdict on one dependency slot."""

    slot: int  # 1 = dependency, 2 = dependency2
    dependency: ModuleDependency
    met: bool
    installed_version: int | None  # version of the matching installed module, None if absent
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "slot": self.slot,
            "module_function": self.dependency.module_function,
            "module_function_name": _name(self.dependency.module_function),
            "module_index": self.dependency.module_index,
            "module_version": self.dependency.module_version,
            "met": self.met,
            "installed_version": self.installed_version,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DependencyResult:
    """Outcome of :func:`check_dependencies`: ``ok``, the ``unmet`` dependencies, a message."""

    findings: tuple[DependencyFinding, ...] = field(default=())

    @property
    def unmet(self) -> list[ModuleDependency]:
        return [f.dependency for f in self.findings if not f.met]

    @property
    def ok(self) -> bool:
        return not self.unmet

    @property
    def message(self) -> str:
        if not self.findings:
            return "no dependencies"
        bad = [f for f in self.findings if not f.met]
        if not bad:
            return "all dependencies met: " + "; ".join(f.reason for f in self.findings)
        return "unmet: " + "; ".join(f.reason for f in bad)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "message": self.message,
            "dependencies": [f.to_json() for f in self.findings],
        }


def check_dependencies(
    info: ModuleInfo, installed: Sequence[ModuleInfo], *, user_optional: bool = False
) -> DependencyResult:
    """Apply the device's dependency rule to ``info`` against ``installed`` modules.

    Args:
        info: the module whose dependencies are checked.
        installed: module_info of the installed modules. When several share a function and
            index, the first one counts (the device reads the single region
            ``find_module_bounds`` returns, spec 1.5).
        user_optional: ``userDepsOptional`` (spec 3.1, 3.3): a USER_PART's dependencies are
            not checked and a BOOTLOADER ``dependency2`` is skipped. False at boot (spec 3.2).

    Returns:
        One finding per non-NONE slot. When ``dependency`` is set, each slot is judged on its
        own (spec 3.1 step 3: both must pass); when it is NONE the module is valid and a set
        ``dependency2`` is reported as not checked (spec 3.1 step 1).
    """
    findings: list[DependencyFinding] = []
    for slot, dep in ((1, info.dependency), (2, info.dependency2)):
        if dep.is_none:
            continue
        if slot == 2 and info.dependency.is_none:
            # spec 3.1 step 1: ``dependency.module_function == NONE`` makes the module valid
            # outright; the device never looks at dependency2 then (quirk, kept).
            findings.append(
                DependencyFinding(
                    slot,
                    dep,
                    True,
                    None,
                    f"{describe_dependency(dep)}: not checked (the first slot is empty; "
                    "the device then skips the second)",
                )
            )
            continue
        if user_optional and info.module_function == ModuleFunction.USER_PART:
            findings.append(
                DependencyFinding(
                    slot, dep, True, None, f"{describe_dependency(dep)}: optional for user parts"
                )
            )
            continue
        if user_optional and slot == 2 and dep.module_function == ModuleFunction.BOOTLOADER:
            findings.append(
                DependencyFinding(
                    slot, dep, True, None, f"{describe_dependency(dep)}: skipped (userOptional)"
                )
            )
            continue
        match = next(
            (
                m
                for m in installed
                if m.module_function == dep.module_function and m.module_index == dep.module_index
            ),
            None,
        )
        if match is None:
            findings.append(
                DependencyFinding(
                    slot, dep, False, None, f"{describe_dependency(dep)}: no such module installed"
                )
            )
        elif match.module_version < dep.module_version:
            findings.append(
                DependencyFinding(
                    slot,
                    dep,
                    False,
                    match.module_version,
                    f"{describe_dependency(dep)}: installed version is {match.module_version}",
                )
            )
        else:
            findings.append(
                DependencyFinding(
                    slot,
                    dep,
                    True,
                    match.module_version,
                    f"{describe_dependency(dep)}: installed version {match.module_version}",
                )
            )
    return DependencyResult(tuple(findings))


def platform_text(platform_id: int) -> str:
    """``electron (platform 10)``, or ``platform 45773`` for an id no platform has."""
    for p in PLATFORMS.values():
        if p.platform_id == platform_id:
            return f"{p.name} (platform {platform_id})"
    return f"platform {platform_id}"


def require_same_platform(
    target: ModuleInfo, installed: Sequence[tuple[str, ModuleInfo]], target_name: str = "APP"
) -> None:
    """Refuse to compare modules of different platforms (the device only ever holds its own).

    Args:
        target: the module whose dependencies are checked.
        installed: ``(name, module_info)`` of each module it is compared against.
        target_name: the target's name for the message.

    Raises:
        UsageError: an installed module is for another platform; both platform ids are named.
    """
    for name, info in installed:
        if info.platform_id != target.platform_id:
            raise UsageError(
                f"{name} is for {platform_text(info.platform_id)} but {target_name} is for "
                f"{platform_text(target.platform_id)}: a device only holds modules of its own "
                "platform, so the dependency check would compare unrelated modules"
            )
