"""Flash layouts: platform maps as data, validation rules, planner and exporters.

Public API (the contract other areas code against)::

    from flashroom.layout import PLATFORMS, get_layout, validate, plan
    lay = get_layout("electron", "extended")
    lay.region("user_part").range            # AddrRange(0x08080000, 0x080c0000)
    lay.region_for_module(5, 1)              # the region holding USER_PART index 1
    validate(lay)                            # [] when valid, else [Violation, ...]
    plan("electron", 200 * 1024).layout.name # "extended"
"""

from flashroom.layout.maps import (
    LAYOUT_NAMES,
    PLATFORMS,
    PROTECTED_REGIONS,
    all_layouts,
    get_layout,
    get_platform,
)
from flashroom.layout.model import (
    DYNALIB_OFFSET,
    REGION_NAMES,
    Layout,
    PlatformInfo,
    Region,
    Violation,
)
from flashroom.layout.plan import (
    Considered,
    Plan,
    candidate_layout,
    check_candidate,
    gains,
    gives_up,
    plan,
)
from flashroom.layout.validate import CheckResult, check_layout, sharing_notes, validate

__all__ = [
    "DYNALIB_OFFSET",
    "LAYOUT_NAMES",
    "PLATFORMS",
    "PROTECTED_REGIONS",
    "REGION_NAMES",
    "CheckResult",
    "Considered",
    "Layout",
    "Plan",
    "PlatformInfo",
    "Region",
    "Violation",
    "all_layouts",
    "candidate_layout",
    "check_candidate",
    "check_layout",
    "gains",
    "get_layout",
    "get_platform",
    "gives_up",
    "plan",
    "sharing_notes",
    "validate",
]
