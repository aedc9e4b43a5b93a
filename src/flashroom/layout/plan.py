"""Candidate layouts from sizes, and the planner that picks the smallest layout that fits.

Both are pure functions over the registry in :mod:`flashroom.layout.maps`.

"App size" everywhere means the **user-part module file size**: module_info_t, code and data,
the product/suffix block, the SHA-256 and the 4-byte CRC-32 trailer (the ``.bin`` that DFU or OTA
sends). That whole file must fit the user-part region (spec 1.6 / 3.5: the linker's ``APP_FLASH``
length bounds the image including its CRC), so a layout's maximum app size is its user-part
region size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flashroom.errors import LayoutError, UsageError
from flashroom.geometry import FlashChip
from flashroom.layout.maps import get_layout, get_platform
from flashroom.layout.model import Layout, Region
from flashroom.layout.validate import CheckResult, check_layout, validate
from flashroom.ranges import AddrRange, fmt_addr, fmt_size


def _free_regions(chip_regions: list[Region], layout_chip: FlashChip) -> list[Region]:
    """``free`` regions for every run of whole sectors that no region touches."""
    free: list[Region] = []
    run_start: int | None = None
    run_end = 0
    for sec in layout_chip.sectors:
        used = any(sec.range.overlaps(r.range) for r in chip_regions)
        if not used:
            if run_start is None:
                run_start = sec.start
            run_end = sec.end
        elif run_start is not None:
            free.append(Region("free", run_start, run_end, note="unassigned sectors"))
            run_start = None
    if run_start is not None:
        free.append(Region("free", run_start, run_end, note="unassigned sectors"))
    return free


def candidate_layout(platform: str, user_size: int, ota_size: int | None = None) -> Layout:
    """Build the layout ``layout check --user-size/--ota-size`` checks.

    The construction (a choice of ours, since the spec is silent; ``layout check --help`` repeats
    it for users):

    * the user part keeps its stock start address and gets ``user_size`` bytes;
    * the OTA scratch stays at its stock address while the user part does not grow past its stock
      end; once it does, the scratch starts right after the user part;
    * the OTA scratch size is ``ota_size``, or by default the largest module that travels through
      it (the larger of the user part and the biggest system part), capped at the end of the chip;
    * the factory image stays where it is if it still fits (it overlaps neither the user part nor
      the scratch, except for the stock, documented sharing with the scratch on Photon/P1), and
      is dropped otherwise;
    * every other region is stock; whole sectors nobody owns become ``free``.

    The result is *not* validated here; pass it to :func:`~flashroom.layout.validate.validate`.

    Raises:
        UsageError: a size is not positive.
        LayoutError: unknown platform, or a platform without a user part.
    """
    if user_size <= 0:
        raise UsageError(f"user-part size must be positive, got {user_size}")
    if ota_size is not None and ota_size <= 0:
        raise UsageError(f"OTA scratch size must be positive, got {ota_size}")
    info = get_platform(platform)
    stock = get_layout(info.name, "stock")
    chip = stock.chip
    su = stock.user_part
    user = replace(
        su,
        end=su.start + user_size,
        note=f"user application (module index {su.module_index}), {fmt_size(user_size)}",
        source="candidate",
    )
    regions = [r for r in stock.regions if r.name not in ("user_part", "ota_scratch", "factory")]
    regions = [r for r in regions if r.name != "free"]
    regions.append(user)
    notes = [
        f"candidate: user_part {user.range} ({fmt_size(user.size)}) from its fixed start "
        f"{fmt_addr(su.start)}"
    ]
    s_scratch = stock.find("ota_scratch")
    scratch: Region | None = None
    if s_scratch is not None:
        start = s_scratch.start if user.end <= su.end else user.end
        if ota_size is None:
            biggest = max(
                [user.size]
                + [r.size for r in stock.regions if r.module_function == 4 and r.store == "main"]
            )
            size = min(biggest, max(chip.end - start, 0)) if start < chip.end else biggest
            how = "sized for the largest module through it, capped at the end of flash"
        else:
            size = ota_size
            how = "as requested"
        scratch = replace(
            s_scratch,
            start=start,
            end=start + size,
            shares_with=(),
            note=f"OTA scratch, {fmt_size(size)}",
            source="candidate",
        )
        regions.append(scratch)
        notes.append(f"candidate: ota_scratch {scratch.range} ({fmt_size(size)}, {how})")
    fac = stock.find("factory")
    if fac is not None:
        keeps = not fac.range.overlaps(user.range)
        if keeps and scratch is not None and fac.range.overlaps(scratch.range):
            # Photon/P1: the stock factory sector lies inside the 256K scratch (spec 4.6). Keep
            # that documented sharing only while the scratch still covers the whole sector.
            keeps = "ota_scratch" in fac.shares_with and scratch.range.contains_range(fac.range)
            if keeps and s_scratch is not None:
                shared = replace(scratch, shares_with=("factory",), note=s_scratch.note)
                regions[regions.index(scratch)] = shared
        if keeps:
            regions.append(fac)
        else:
            notes.append(
                f"candidate: factory image {fac.range} dropped (it no longer fits), so factory "
                "reset is given up (docs/device-os.md#factory-reset)"
            )
    regions.extend(_free_regions(regions, chip))
    regions.sort(key=lambda r: (r.start, r.end))
    return Layout(
        platform=info.name,
        platform_id=info.platform_id,
        name="candidate",
        chip=chip,
        regions=tuple(regions),
        description=f"{info.title} candidate: user part {fmt_size(user_size)}"
        + (f", OTA scratch {fmt_size(scratch.size)}" if scratch else ""),
        notes=tuple(notes),
    )


def check_candidate(platform: str, user_size: int, ota_size: int | None = None) -> CheckResult:
    """Build :func:`candidate_layout` and validate it; returns a ``CheckResult``."""
    lay = candidate_layout(platform, user_size, ota_size)
    extra = list(lay.notes)
    info = get_platform(platform)
    stock = get_layout(info.name, "stock")
    if info.name in ("photon", "p1") and user_size > stock.user_part.size:
        extra.append(
            f"{info.name}: a user part larger than {fmt_size(stock.user_part.size)} cannot keep "
            "system OTA. The user slot is followed directly by the OTA scratch, which must hold "
            "256K system parts (docs/device-os.md#photon-ota), and sector 11 is both the factory "
            "area and the OTA "
            "scratch (docs/device-os.md#factory-reset). Growing the user part shrinks the scratch "
            "below 256K or "
            "pushes it off the chip."
        )
    return check_layout(lay, tuple(extra))


@dataclass(frozen=True)
class Considered:
    """One layout the planner looked at, and why it was or was not chosen."""

    layout: str
    max_app_size: int
    valid: bool
    fits: bool
    why: str

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "max_app_size": self.max_app_size,
            "valid": self.valid,
            "fits": self.fits,
            "why": self.why,
        }


@dataclass(frozen=True)
class Plan:
    """The planner's answer for one platform and app size.

    Attributes:
        platform: platform key.
        app_size: requested user-part module file size in bytes (see module docstring).
        layout: the chosen layout, or None when nothing fits.
        max_app_size: the chosen layout's maximum app size; when nothing fits, the largest
            maximum among the valid layouts.
        gives_up: what the chosen layout gives up compared with stock (e.g. factory reset).
        gains: what the chosen layout puts to use that stock leaves idle (Electron's sector 11).
        system_ota_capacity: size of the OTA scratch of the chosen (or largest) layout.
        reason: one paragraph explaining the choice or the refusal.
        considered: every layout looked at, in order.
    """

    platform: str
    app_size: int
    layout: Layout | None
    max_app_size: int
    gives_up: tuple[str, ...]
    system_ota_capacity: int
    reason: str
    considered: tuple[Considered, ...] = field(default=())
    gains: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        """True when a layout was chosen."""
        return self.layout is not None

    def to_json(self) -> dict[str, Any]:
        """``layout plan --format json``: ``layout``, ``max_app_size``, ``gives_up``, ..."""
        lay = self.layout
        return {
            "platform": self.platform,
            "app_size": self.app_size,
            "fits": self.fits,
            "layout": lay.name if lay else None,
            "max_app_size": self.max_app_size,
            "headroom": self.max_app_size - self.app_size if lay else None,
            "gives_up": list(self.gives_up),
            "gains": list(self.gains),
            "system_ota_capacity": self.system_ota_capacity,
            "user_part": (
                {
                    "start": lay.user_part.start,
                    "start_hex": fmt_addr(lay.user_part.start),
                    "end": lay.user_part.end,
                    "end_hex": fmt_addr(lay.user_part.end),
                    "size": lay.user_part.size,
                    "dynalib_address": lay.dynalib_address,
                    "dynalib_address_hex": fmt_addr(lay.dynalib_address),
                }
                if lay
                else None
            ),
            "reason": self.reason,
            "considered": [c.to_json() for c in self.considered],
        }


def gives_up(layout: Layout) -> tuple[str, ...]:
    """What ``layout`` gives up compared with its platform's stock layout."""
    stock = get_layout(layout.platform, "stock")
    out: list[str] = []
    if stock.has("factory") and not layout.has("factory"):
        fac = stock.region("factory")
        out.append(
            f"factory reset: the factory image slot {fac.range} is reused, so a factory reset "
            "(button > 6.5 s, System.factoryReset()) restores nothing "
            "(docs/device-os.md#factory-reset)"
        )
    return tuple(out)


def gains(layout: Layout) -> tuple[str, ...]:
    """What ``layout`` puts to use that its platform's stock layout leaves idle."""
    stock = get_layout(layout.platform, "stock")
    out: list[str] = []
    if stock.has("free") and not layout.has("free"):
        free = stock.region("free")
        users = [r.name for r in layout.regions if r.range.overlaps(free.range)]
        out.append(
            f"sector(s) {free.range}, unused on stock, now hold {' and '.join(users) or 'data'}"
        )
    return tuple(out)


def plan(platform: str, app_size: int) -> Plan:
    """Choose the smallest valid layout whose user part holds an app of ``app_size`` bytes.

    Layouts are tried in the platform's registry order (stock first, then larger ones), and the
    first valid one that fits is chosen, so stock wins whenever it is enough.

    Args:
        platform: platform key.
        app_size: the user-part module file size in bytes (including its CRC-32 trailer).

    Returns:
        A :class:`Plan`; ``plan.fits`` is False (with ``reason``) when nothing fits.

    Raises:
        UsageError: ``app_size`` is not positive.
        LayoutError: unknown platform.
    """
    if app_size <= 0:
        raise UsageError(f"app size must be positive, got {app_size}")
    info = get_platform(platform)
    considered: list[Considered] = []
    best_valid: Layout | None = None
    for name in info.layouts:
        lay = get_layout(info.name, name)
        violations = validate(lay)
        fits = lay.max_app_size >= app_size
        valid = not violations
        if valid and (best_valid is None or lay.max_app_size > best_valid.max_app_size):
            best_valid = lay
        if not valid:
            why = "invalid: " + "; ".join(v.message for v in violations)
        elif fits:
            why = f"fits: user part {fmt_size(lay.max_app_size)} >= {fmt_size(app_size)}"
        else:
            why = (
                f"too small: user part {lay.user_part.range} holds {fmt_size(lay.max_app_size)}"
                f" < {fmt_size(app_size)}"
            )
        considered.append(Considered(name, lay.max_app_size, valid, fits, why))
        if valid and fits:
            gu = gives_up(lay)
            reason = (
                f"{info.name} {name}: user part {lay.user_part.range} holds an app (module file "
                f"incl. CRC) of up to {fmt_size(lay.max_app_size)} ({lay.max_app_size} bytes); "
                + (
                    f"OTA scratch {fmt_size(lay.ota_capacity)} keeps OTA for every module"
                    if info.ota_internal
                    else "OTA is received into external flash (Gen3, docs/device-os.md#gen3)"
                )
                + (f"; gives up: {'; '.join(gu)}" if gu else "; nothing given up")
            )
            return Plan(
                info.name,
                app_size,
                lay,
                lay.max_app_size,
                gu,
                lay.ota_capacity,
                reason,
                tuple(considered),
                gains(lay),
            )
    biggest = best_valid
    max_size = biggest.max_app_size if biggest else 0
    # Explain with the candidate a bigger user part would need (sector-aligned), e.g. Photon 200K.
    reason = (
        f"no {info.name} layout that keeps OTA holds a {fmt_size(app_size)} app: the largest is "
        f"{biggest.name if biggest else '-'} with {fmt_size(max_size)}"
    )
    try:
        stock = get_layout(info.name, "stock")
        chip = stock.chip
        end = stock.user_part.start + app_size
        if end < chip.end:
            end = chip.sector_at(end - 1).end
        cand = candidate_layout(info.name, end - stock.user_part.start)
        broken = [v.message for v in validate(cand)]
        if broken:
            reason += (
                f". A {fmt_size(end - stock.user_part.start)} user part "
                f"{AddrRange(stock.user_part.start, end)} would break: " + "; ".join(broken)
            )
    except LayoutError:  # pragma: no cover - defensive
        pass
    if info.name in ("photon", "p1"):
        reason += (
            f". On {info.name} the OTA scratch follows the user slot directly and must hold 256K "
            "system parts; sector 11 is both factory area and OTA scratch "
            "(docs/device-os.md#photon-ota, #factory-reset)"
        )
    return Plan(
        info.name,
        app_size,
        None,
        max_size,
        (),
        biggest.ota_capacity if biggest else 0,
        reason,
        tuple(considered),
    )
