"""flashroom's host-side checks of a module before it is sent, and after an update.

Device OS 2.3.1 does not refuse everything that breaks a device: it never verifies the SHA-256
(spec 2.5 #7) and ignores a user part's dependencies at OTA time (spec 3.3), so a user part
needing a newer system installs and boots into safe mode (spec 3.2). These are the checks
flashroom adds: the module checks of ``module verify`` (parse, CRC-32, SHA-256, size, packaging)
and the boot-time dependency rule of spec 3.2 against the modules installed on the device.
``emu badinput`` (the ``host`` layer), ``ota serve`` (before it offers a module) and the report
after every update (``emu connect``) all call :func:`host_check`, so they say the same about the
same file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flashroom.deviceos import get_profile
from flashroom.errors import FlashroomError
from flashroom.particle.build import device_os_install
from flashroom.particle.deps import check_dependencies
from flashroom.particle.module import parse_module
from flashroom.particle.module_info import ModuleInfo, read_module_info_at


@dataclass(frozen=True)
class HostCheck:
    """The verdict: ``refusals`` lists each check that failed (empty: the module passes).

    Attributes:
        refusals: ``"module verify: ..."`` and ``"dependency check (spec 3.2): ..."`` texts.
        info: the module's ``module_info_t`` when it parses.
    """

    refusals: tuple[str, ...]
    info: ModuleInfo | None = None

    @property
    def ok(self) -> bool:
        """No check failed."""
        return not self.refusals

    @property
    def message(self) -> str:
        """One line: the refusals, or ``host checks pass``."""
        return "; ".join(self.refusals) if self.refusals else "host checks pass"

    def to_json(self) -> dict[str, object]:
        """Stable keys."""
        return {"ok": self.ok, "message": self.message, "refusals": list(self.refusals)}


def host_check(data: bytes, installed: Sequence[ModuleInfo]) -> HostCheck:
    """Run flashroom's host-side checks on ``data`` (a module file).

    Args:
        data: the module file.
        installed: ``module_info_t`` of the modules installed on the target device (see
            :func:`installed_infos`, :func:`fresh_install_infos`).

    Returns:
        The failed checks, in order: module verify first, then the dependency rule.
    """
    try:
        mod = parse_module(data)
    except FlashroomError as e:
        return HostCheck((f"module verify: {e}",))
    failed = [c for c in mod.checks() if not c.ok]
    if failed:
        detail = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        return HostCheck((f"module verify: {detail}",), mod.info)
    res = check_dependencies(mod.info, installed, user_optional=False)
    if not res.ok:
        return HostCheck(
            (f"dependency check (docs/device-os.md#boot-check): {res.message}",), mod.info
        )
    return HostCheck((), mod.info)


def installed_infos(platform: str, read: Callable[[int, int], bytes]) -> list[ModuleInfo]:
    """``module_info_t`` of each module installed where Device OS 2.3.1 puts them (spec 2.4),
    read through ``read(address, size)`` (a device's flash); unreadable places are skipped."""
    out = []
    for m in device_os_install(platform):
        base = read_module_info_at(m, 0).module_start_address
        try:
            out.append(read_module_info_at(read(base, 0x200), 0))
        except FlashroomError:
            continue
    return out


def fresh_install_infos(platform: str, profile: str = "stock") -> list[ModuleInfo]:
    """``module_info_t`` of a fresh install of ``platform`` with ``profile``'s Device OS: stock
    2.3.1, or the extended system modules (their version, docs/device-os.md#extended). The
    target a server assumes, since a Hello does not say what the device runs.

    Raises:
        PlatformError: an unknown platform or profile.
    """
    prof = get_profile(platform, profile, gen2_only=True)
    version = prof.system_version if profile == "extended" else None
    return [
        read_module_info_at(m, 0) for m in device_os_install(prof.platform, system_version=version)
    ]


__all__ = ["HostCheck", "fresh_install_infos", "host_check", "installed_infos"]
