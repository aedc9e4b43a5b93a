"""What an update did to the device, in classes that say what happened to the flash (issue 12 #3).

* ``applied``: the new module is in place and runs (a user part), or is in place and the
  system runs (a system part or bootloader).
* ``installed_not_running``: the new module is in place, but the device does not run it (it
  boots safe mode because a dependency is unmet, the app crashes...).
* ``rejected``: the running app, the DCT's pending slots and every byte outside the OTA region
  hold what they held before; the OTA region may hold the refused image, and the report says so
  (a stock -1300 erases and rewrites the sectors the file needed).
* ``damaged``: not applied, and something outside the OTA region changed (the running app, a
  pending slot, another sector): the report names what. Nothing real is claimed safe that is not.
* ``interrupted``: the armed power cut fired.

:func:`capture` records the device before an update; :func:`judge` compares after the reset.
Both ``emu ota`` and ``emu connect`` (through :mod:`flashroom.scenarios.deliver`) use them, so
the same file gets the same class on both paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flashroom.deviceos.gen2 import DCT_SECTOR_ADDRS, DCT_SECTOR_SIZE, MAGIC_PENDING
from flashroom.emu.outcome import OutcomeError, RunResult
from flashroom.particle.module_info import read_module_info_at
from flashroom.ranges import fmt_addr

if TYPE_CHECKING:
    from flashroom.emu.device import Device


@dataclass(frozen=True)
class Before:
    """The device before an update: flash, the running user module, the pending slots."""

    contents: bytes
    running: tuple[int, str] | None  # (module_version, stored sha256) of the running app
    pending: tuple[tuple[int, int, int, int], ...]  # (slot, source, destination, length)


@dataclass(frozen=True)
class ScratchNote:
    """What the OTA region holds after a rejected update (the ``scratch`` of the report)."""

    start: int
    end: int
    changed: bool
    holds_refused_image: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "start_hex": fmt_addr(self.start),
            "end": self.end,
            "end_hex": fmt_addr(self.end),
            "changed": self.changed,
            "holds_refused_image": self.holds_refused_image,
        }


def _running(dev: Device) -> tuple[int, str] | None:
    m = dev.running_module()
    return None if m is None else (m.module_version, m.sha256)


def _pending(dev: Device) -> tuple[tuple[int, int, int, int], ...]:
    slots = dev.hw.dct.peek_slots()
    if slots is None:
        return ()
    return tuple(
        (i, s.sourceAddress, s.destinationAddress, s.length)
        for i, s in enumerate(slots)
        if i > 0 and s.magicNumber == MAGIC_PENDING
    )


def capture(dev: Device) -> Before:
    """Record what :func:`judge` compares against (before the update starts)."""
    return Before(dev.flash.contents(), _running(dev), _pending(dev))


def ota_region(dev: Device, size: int) -> tuple[int, int]:
    """The OTA region an update of ``size`` bytes may rewrite: from the OTA address, the
    profile's region or the sectors ``FLASH_Begin`` erases for the file, whichever is larger
    (spec 4.1 #2.3), within the flash."""
    p = dev.profile
    start = p.ota_flash_address
    end = start + max(size, p.ota_flash_length)
    chip_end = dev.flash.base + dev.flash.size
    for sec in dev.flash.chip.sectors:  # whole sectors: FLASH_Begin erases them
        if sec.start < end <= sec.end:
            end = sec.end
    return start, min(end, chip_end)


def _changed_outside(dev: Device, before: bytes, region: tuple[int, int]) -> list[tuple[int, int]]:
    """Changed byte ranges outside ``region`` and the DCT sectors, coalesced per sector."""
    now = dev.flash.contents()
    base = dev.flash.base
    skip = [region] + [(a, a + DCT_SECTOR_SIZE) for a in DCT_SECTOR_ADDRS]
    out: list[tuple[int, int]] = []
    for sec in dev.flash.chip.sectors:
        if any(a <= sec.start and sec.end <= b for a, b in skip):
            continue
        lo, hi = sec.start - base, sec.end - base
        if now[lo:hi] != before[lo:hi]:
            first = next(i for i in range(lo, hi) if now[i] != before[i])
            out.append((base + first, sec.end))
    return out


def judge(
    dev: Device, before: Before, module: bytes, error: OutcomeError | None
) -> tuple[RunResult, OutcomeError | None, ScratchNote | None]:
    """The class of a finished (not interrupted) update of ``module``, after the reset.

    ``error`` is the system's refusal or the applied check's complaint (None: applied).
    """
    if error is None:
        return RunResult.APPLIED, None, None
    try:
        info = read_module_info_at(module, 0)
        dest = info.module_start_address
        in_place = dev.flash.read(dest, len(module)) == module
    except Exception:
        in_place = False
        dest = 0
    if in_place:
        return (
            RunResult.INSTALLED_NOT_RUNNING,
            OutcomeError(
                error.code,
                f"installed at {fmt_addr(dest)} but not running: {error.message}",
            ),
            None,
        )
    region = _region_for(dev, module)
    changes: list[str] = []
    for a, _b in _changed_outside(dev, before.contents, region):
        sec = dev.flash.sector_index(a)
        changes.append(f"sector {sec} changed (first at {fmt_addr(a)})")
    running_now = _running(dev)
    if running_now != before.running:
        was = "nothing" if before.running is None else f"v{before.running[0]}"
        is_ = "nothing" if running_now is None else f"v{running_now[0]}"
        changes.append(f"the running app changed from {was} to {is_}")
    if _pending(dev) != before.pending:
        changes.append("the DCT's pending slots changed")
    if changes:
        return (
            RunResult.DAMAGED,
            OutcomeError(error.code, f"{error.message}; not applied, and " + "; ".join(changes)),
            None,
        )
    lo, hi = region[0] - dev.flash.base, region[1] - dev.flash.base
    now = dev.flash.contents()
    changed = now[lo:hi] != before.contents[lo:hi]
    holds = now[lo : lo + len(module)] == module
    note = ScratchNote(region[0], region[1], changed, holds)
    msg = error.message
    if holds:
        msg += (
            f"; the OTA region {fmt_addr(region[0])}-{fmt_addr(region[1])} now holds the "
            "refused image (never run); the running app and everything else are unchanged"
        )
    elif changed:
        msg += f"; the OTA region {fmt_addr(region[0])}-{fmt_addr(region[1])} was rewritten"
    return RunResult.REJECTED, OutcomeError(error.code, msg), note


def _region_for(dev: Device, module: bytes) -> tuple[int, int]:
    return ota_region(dev, len(module))


__all__ = ["Before", "ScratchNote", "capture", "judge", "ota_region"]
