"""Layout validation: every rule, each broken rule a structured :class:`Violation`.

Rules (issue 2 section 4):

* ``outside_chip``: every region lies inside the chip's flash.
* ``empty_region``: no zero-size region.
* ``overlap``: no byte belongs to two regions, unless the sharing is declared on the region
  (``Region.shares_with``: Photon's OTA scratch over the factory sector, spec 1.2, 4.6; Gen3's
  256K user part over the compat slot, spec 7.2).
* ``sector_shared``: two regions that are erased independently never touch the same sector,
  because a sector is the smallest erasable unit (spec 1.1, 4.1).
* ``sector_boundary``: every region starts and ends on a sector boundary (whole-sector
  ownership; the bytes of a split sector cannot be erased without the rest of it).
* ``ota_scratch_missing`` / ``ota_scratch_capacity``: on platforms that receive OTA into internal
  flash, the scratch exists and is at least as large as the largest module that travels through
  it (bootloader, system parts, user part; spec 4.1, 4.6).
* ``protected_region``: bootloader, DCT and EEPROM regions are exactly as stock (spec 9).
* ``user_part_missing`` / ``user_start`` / ``dynalib_address``: every stock user slot still exists
  at its stock start address, so its dynalib table (start + 0x18, spec 2.2) does not move
  (spec 3.5 #4, #24).

All functions are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from flashroom.errors import LayoutError
from flashroom.layout.maps import PROTECTED_REGIONS, get_layout, get_platform
from flashroom.layout.model import DYNALIB_OFFSET, Layout, Region, Violation
from flashroom.ranges import fmt_addr, fmt_size

# module_function_t values of modules that are received into the OTA scratch (spec 4.1-4.2, 4.7):
# bootloader (2), system part (4), user part (5).
_TRAVELLING_FUNCTIONS = (2, 4, 5)
_USER_PART = 5


def declared_sharing(a: Region, b: Region) -> bool:
    """True when either region declares that it shares bytes with the other."""
    return b.name in a.shares_with or a.name in b.shares_with


def _sector_label(layout: Layout, index: int) -> str:
    s = layout.chip.sectors[index]
    return f"sector {index} ({fmt_addr(s.start)}-{fmt_addr(s.end)})"


def _check_chip(layout: Layout) -> list[Violation]:
    out: list[Violation] = []
    chip = layout.chip
    for r in layout.regions:
        if r.size == 0:
            out.append(
                Violation(
                    "empty_region", r.name, r.start, "a region of at least one sector",
                    f"{r.name} at {fmt_addr(r.start)} is empty",
                )
            )  # fmt: skip
        if not chip.range.contains_range(r.range):
            bad = r.start if r.start not in chip.range else chip.end
            out.append(
                Violation(
                    "outside_chip", r.name, bad,
                    f"inside {chip.name} flash {chip.range}",
                    f"{r.name} {r.range} extends outside the {chip.name} flash "
                    f"{chip.range} (docs/device-os.md#maps)",
                )
            )  # fmt: skip
    return out


def _check_overlaps(layout: Layout) -> list[Violation]:
    out: list[Violation] = []
    for a, b in combinations(layout.regions, 2):
        common = a.range.intersection(b.range)
        if common is None or declared_sharing(a, b):
            continue
        out.append(
            Violation(
                "overlap", b.name, common.start, f"no byte of {b.name} inside {a.name} {a.range}",
                f"{a.name} {a.range} and {b.name} {b.range} overlap at {common} "
                f"({fmt_size(common.size)}); writing one would corrupt the other",
            )
        )  # fmt: skip
    return out


def _boundaries(layout: Layout) -> list[int]:
    return [s.start for s in layout.chip.sectors] + [layout.chip.end]


def _check_sectors(layout: Layout) -> list[Violation]:
    out: list[Violation] = []
    chip = layout.chip
    bounds = _boundaries(layout)
    bound_set = set(bounds)
    # No sector touched by two independently erased owners.
    for sec in chip.sectors:
        owners = [r for r in layout.regions if r.size and sec.range.overlaps(r.range)]
        for a, b in combinations(owners, 2):
            if declared_sharing(a, b) or a.range.overlaps(b.range):
                continue  # documented sharing, or already reported as an overlap
            hint = (
                " (the OTA begin erase, docs/device-os.md#ota-receive)"
                if b.name == "ota_scratch"
                else ""
            )
            out.append(
                Violation(
                    "sector_shared", b.name, sec.start,
                    f"{_sector_label(layout, sec.index)} owned by one region only",
                    f"{_sector_label(layout, sec.index)} would be shared by {a.name} and "
                    f"{b.name}. A sector is the smallest erasable unit: erasing {b.name}{hint} "
                    f"would also erase the part of {a.name} in "
                    f"{fmt_addr(sec.start)}-{fmt_addr(sec.end)}, and erasing {a.name} would "
                    f"erase part of {b.name}. Give each region whole sectors.",
                )
            )  # fmt: skip
    # Whole-sector ownership: each edge on a sector boundary.
    for r in layout.regions:
        for edge, what in ((r.start, "start"), (r.end, "end")):
            if edge in bound_set or not chip.base <= edge < chip.end:
                continue
            sec = chip.sector_at(edge)
            out.append(
                Violation(
                    "sector_boundary", r.name, edge,
                    f"{what} on a sector boundary: {fmt_addr(sec.start)} or {fmt_addr(sec.end)}",
                    f"{r.name} {what}s at {fmt_addr(edge)}, inside "
                    f"{_sector_label(layout, sec.index)}; a region erased on its own must own "
                    "whole sectors, because a sector is the smallest erasable unit "
                    "(docs/device-os.md#maps)",
                )
            )  # fmt: skip
    return out


def _check_ota(layout: Layout) -> list[Violation]:
    try:
        info = get_platform(layout.platform)
    except LayoutError:
        return []
    if not info.ota_internal:
        return []  # Gen3: OTA goes to external flash (spec 7.1)
    travelling = [
        r
        for r in layout.regions
        if r.store == "main" and r.module_function in _TRAVELLING_FUNCTIONS and r.size
    ]
    scratch = layout.find("ota_scratch")
    if scratch is None:
        if not travelling:
            return []
        return [
            Violation(
                "ota_scratch_missing", "ota_scratch", layout.chip.base,
                "an ota_scratch region (docs/device-os.md#ota-receive: OTA is received at "
                "module_ota.start_address)",
                "the layout has no OTA scratch, so no module can be updated over the air "
                "(docs/device-os.md#ota-receive)",
            )
        ]  # fmt: skip
    too_big = sorted(
        (r for r in travelling if r.size > scratch.size), key=lambda r: (-r.size, r.start)
    )
    if not too_big:
        return []
    big = too_big[0]
    which = ", ".join(f"{r.name} ({fmt_size(r.size)})" for r in too_big)
    sys_parts = [r for r in too_big if r.module_function == 4]
    lost = "system OTA" if sys_parts else "OTA of the user part"
    return [
        Violation(
            "ota_scratch_capacity", "ota_scratch", scratch.start,
            f">= {fmt_size(big.size)} (the largest module through it: {big.name} {big.range})",
            f"the OTA scratch {scratch.range} is {fmt_size(scratch.size)}, but modules of up "
            f"to {fmt_size(big.size)} travel through it on {layout.platform} ({which}); every "
            f"OTA module is received whole into the scratch before the bootloader copies it "
            f"(docs/device-os.md#ota-receive, #photon-ota), so this layout loses {lost}",
        )
    ]  # fmt: skip


def _check_against_stock(layout: Layout) -> list[Violation]:
    try:
        stock = get_layout(layout.platform, "stock")
    except LayoutError:
        return []
    out: list[Violation] = []
    for name in PROTECTED_REGIONS:
        ref = stock.find(name)
        if ref is None:
            continue
        cur = layout.find(name)
        if cur is None or cur.range != ref.range:
            found = "missing" if cur is None else f"at {cur.range}"
            out.append(
                Violation(
                    "protected_region", name, ref.start, f"{name} exactly at {ref.range}",
                    f"{name} must stay untouched at {ref.range} (found {found}); the bootloader "
                    "and system firmware have it compiled in (docs/device-os.md#maps, #extended)",
                )
            )  # fmt: skip
    for ref in stock.regions:
        if ref.module_function != _USER_PART or ref.store != "main":
            continue
        idx = ref.module_index if ref.module_index is not None else 1
        try:
            cur = layout.region_for_module(_USER_PART, idx)
        except LayoutError:
            out.append(
                Violation(
                    "user_part_missing", ref.name, ref.start,
                    f"a user part (module index {idx}) starting at {fmt_addr(ref.start)}",
                    f"the layout has no user part for module index {idx}",
                )
            )  # fmt: skip
            continue
        if cur.start != ref.start:
            out.append(
                Violation(
                    "user_start", cur.name, cur.start, f"start {fmt_addr(ref.start)}",
                    f"{cur.name} starts at {fmt_addr(cur.start)} but Device OS checks "
                    f"module_start_address == {fmt_addr(ref.start)} at boot and asserts it at "
                    "link time (docs/device-os.md#boot-check, #extended)",
                )
            )  # fmt: skip
            out.append(
                Violation(
                    "dynalib_address", cur.name, cur.start + DYNALIB_OFFSET,
                    f"user_module_table at {fmt_addr(ref.start + DYNALIB_OFFSET)}",
                    f"the dynalib table would move to {fmt_addr(cur.start + DYNALIB_OFFSET)}; "
                    f"the system part calls the user part through the fixed address "
                    f"{fmt_addr(ref.start + DYNALIB_OFFSET)} (docs/device-os.md#module-info, "
                    "#extended)",
                )
            )  # fmt: skip
    return out


def validate(layout: Layout) -> list[Violation]:
    """Check a layout against every rule.

    Args:
        layout: any layout (a registry one, a candidate, or one built by hand).

    Returns:
        The violations, in rule order; empty when the layout is valid.
    """
    return [
        *_check_chip(layout),
        *_check_overlaps(layout),
        *_check_sectors(layout),
        *_check_ota(layout),
        *_check_against_stock(layout),
    ]


def sharing_notes(layout: Layout) -> list[str]:
    """Explanations of the documented sharings that are in effect in this layout."""
    notes: list[str] = []
    for a, b in combinations(layout.regions, 2):
        common = a.range.intersection(b.range)
        if common is not None and declared_sharing(a, b):
            why = a.note if b.name in a.shares_with else b.note
            notes.append(f"{a.name} and {b.name} share {common} by design: {why}")
    return notes


@dataclass(frozen=True)
class CheckResult:
    """The outcome of ``layout check``: the layout checked, its violations, explanations.

    Attributes:
        layout: the layout that was checked.
        violations: broken rules (empty when valid).
        notes: documented sharings and how the candidate was built.
    """

    layout: Layout
    violations: tuple[Violation, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def valid(self) -> bool:
        """True when no rule is broken."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """``layout check --format json``: ``valid``, ``violations`` plus the layout."""
        return {
            "platform": self.layout.platform,
            "layout": self.layout.name,
            "valid": self.valid,
            "violations": [v.to_json() for v in self.violations],
            "notes": list(self.notes),
            "regions": self.layout.to_json()["regions"],
        }


def check_layout(layout: Layout, notes: tuple[str, ...] = ()) -> CheckResult:
    """Validate ``layout`` and collect the explanations ``layout check`` shows."""
    return CheckResult(layout, tuple(validate(layout)), tuple(notes) + tuple(sharing_notes(layout)))
