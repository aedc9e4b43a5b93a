"""What each flash region of an emulated device holds now (``flashroom emu show``).

Regions come from the layout package (``flashroom.layout.get_layout``); their contents are read
from the emulated flash with the device's own rules (spec 2.2 module_info location, CRC over
``module_length``). A user module that runs past the profile's user part is flagged: stock
firmware runs it after a USB install (spec 3.2), with its tail over the next region.

JSON (docs/json/emu-show.json): addresses and registers are integers with ``*_hex`` twins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flashroom.deviceos.gen2 import INTERNAL_FLASH_END, MAGIC_FACTORY, MAGIC_PENDING
from flashroom.emu.dct import DcdStore, FlashModuleSlot
from flashroom.emu.flashmal import module_info_at, verify_crc32
from flashroom.layout import get_layout
from flashroom.ranges import fmt_addr

if TYPE_CHECKING:  # device.py imports this module
    from flashroom.emu.device import Device


@dataclass(frozen=True)
class RegionView:
    """One region of the flash map and what it holds.

    Attributes:
        name: layout region name.
        start: first address.
        end: exclusive end.
        sectors: sector indices the region touches.
        erases: total erases of those sectors so far.
        content: ``module``, ``blank``, ``dct``, ``data`` (non-blank, no module header:
            EEPROM, the stale tail of an app...) or ``garbage`` (a module header whose CRC
            fails).
        module: the module found (function, index, version, size, start address, CRC).
        detail: one line for the text table.
    """

    name: str
    start: int
    end: int
    sectors: tuple[int, ...]
    erases: int
    content: str
    module: dict[str, Any] | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start,
            "start_hex": fmt_addr(self.start),
            "end": self.end,
            "end_hex": fmt_addr(self.end),
            "sectors": list(self.sectors),
            "erases": self.erases,
            "content": self.content,
            "module": self.module,
            "detail": self.detail,
        }


def _module_here(dev: Device, addr: int, expected_start: int | None) -> dict[str, Any] | None:
    info = module_info_at(dev.flash, addr)
    if info is None:
        return None
    start, end = info.module_start_address, info.module_end_address
    if expected_start is not None and start != expected_start:
        return None
    if not (dev.flash.base <= start < end <= INTERNAL_FLASH_END) or info.platform_id not in (
        6,
        8,
        10,
    ):
        return None
    length = end - start
    return {
        "module_function": info.module_function,
        "module_index": info.module_index,
        "module_version": info.module_version,
        "platform_id": info.platform_id,
        "start_address": start,
        "start_address_hex": fmt_addr(start),
        "end_address": end,
        "end_address_hex": fmt_addr(end),
        "size": length + 4,
        "crc_ok": verify_crc32(dev.flash, addr, length),
        "overrun": 0,
    }


def flash_map(dev: Device) -> list[RegionView]:
    """The device's flash map with the current contents of every region."""
    lay = get_layout(dev.profile.platform, dev.profile.name)
    out: list[RegionView] = []
    for r in lay.regions:
        sectors = tuple(
            s.index for s in dev.flash.chip.sectors if s.start < r.end and r.start < s.end
        )
        erases = sum(dev.flash.erase_counts[i] for i in sectors)
        size = r.end - r.start
        blank = dev.flash.is_blank(r.start, size)
        module: dict[str, Any] | None = None
        if r.name in ("dct1", "dct2"):
            st = DcdStore(dev.flash, app_offset=dev.profile.dct_app_offset).copy_state(
                0 if r.name == "dct1" else 1
            )
            content = "blank" if st.blank else "dct"
            crc = "ok" if st.crc_ok else "bad"
            detail = (
                "erased" if st.blank else f"seal {st.seal_name}, counter {st.counter}, CRC {crc}"
            )
        else:
            expected: int | None = r.start
            if r.name == "factory":
                expected = dev.profile.user_loc  # spec 5.1: linked for the user slot
            elif r.name == "ota_scratch":
                expected = None
            holds_modules = r.module_function is not None or r.name == "ota_scratch"
            module = None if blank or not holds_modules else _module_here(dev, r.start, expected)
            if module is not None:
                content = "module" if module["crc_ok"] else "garbage"
                detail = (
                    f"function {module['module_function']} index {module['module_index']} "
                    f"v{module['module_version']}, {module['size']} bytes, CRC "
                    f"{'ok' if module['crc_ok'] else 'BAD'}"
                )
                over = r.start + module["size"] - r.end
                if r.name == "user_part" and over > 0:
                    module["overrun"] = over
                    detail += f"; RUNS {over} bytes PAST the user part end {fmt_addr(r.end)}"
            elif blank:
                content, detail = "blank", "erased"
            else:
                content = "data"
                detail = "no module header here (data, or the stale tail of a module)"
                if r.shares_with:
                    shared = ", ".join(r.shares_with)
                    detail = f"no module header at the start; shares bytes with {shared}"
        out.append(RegionView(r.name, r.start, r.end, sectors, erases, content, module, detail))
    return out


def _slot_json(slot: FlashModuleSlot) -> dict[str, Any]:
    return {
        "magic": slot.magicNumber,
        "magic_hex": f"0x{slot.magicNumber:04x}",
        "state": {MAGIC_PENDING: "pending", MAGIC_FACTORY: "factory"}.get(
            slot.magicNumber, "unused"
        ),
        "source_address": slot.sourceAddress,
        "source_address_hex": fmt_addr(slot.sourceAddress),
        "destination_address": slot.destinationAddress,
        "destination_address_hex": fmt_addr(slot.destinationAddress),
        "length": slot.length,
        "flags": slot.flags,
        "flags_hex": f"0x{slot.flags:02x}",
        "module_function": slot.module_function,
    }


def dct_view(dev: Device) -> dict[str, Any]:
    """Both DCT copies, which one is current, and the flash-module slots (no side effects)."""
    store = DcdStore(dev.flash, app_offset=dev.profile.dct_app_offset)
    copies = []
    for i in (0, 1):
        st = store.copy_state(i)
        copies.append(
            {
                "address": st.address,
                "address_hex": fmt_addr(st.address),
                "seal": st.seal_name,
                "counter": st.counter,
                "crc_ok": st.crc_ok,
                "header_valid": st.header_valid,
                "blank": st.blank,
            }
        )
    slots = store.peek_slots()
    return {
        "current": store.select(),
        "copies": copies,
        "slots": None if slots is None else [_slot_json(s) for s in slots],
    }


def overrun_warnings(regions: list[RegionView], dev: Device) -> list[str]:
    """A warning for a user module that runs past the profile's user part."""
    out = []
    for r in regions:
        if r.module is not None and r.module.get("overrun", 0) > 0:
            over = r.module["overrun"]
            out.append(
                f"the user module in {r.name} is {r.module['size']} bytes and runs {over} bytes "
                f"past the {dev.profile.platform}/{dev.profile.name} user part "
                f"[{fmt_addr(r.start)}, {fmt_addr(r.end)}), over the next region: this firmware "
                "runs it (the boot check reads its start, CRC and dependencies, not the user "
                "part's end; docs/device-os.md#boot-check), but OTA updates stay limited to "
                f"{r.end - r.start} bytes"
            )
    return out


def show(dev: Device) -> dict[str, Any]:
    """The ``emu show`` JSON document (docs/json/emu-show.json)."""
    regions = flash_map(dev)
    regs = dev.regs.to_json()
    return {
        "platform": dev.profile.platform,
        "profile": dev.profile.name,
        "bootloader": dev.bootloader_variant,
        "bootloader_version": dev.bootloader_version(),
        "state": dev.state,
        "reason": dev.reason,
        "running": None if (m := dev.running_module()) is None else m.to_json(),
        "bootloader_firmware": dev.bootloader_firmware(),
        "system_firmware": dev.system_firmware(),
        "regions": [r.to_json() for r in regions],
        "dct": dct_view(dev),
        "backup_registers": {
            "registers": list(dev.regs.regs),
            "registers_hex": [f"0x{v:08x}" for v in dev.regs.regs],
            "system_flags": regs["system_flags"],
        },
        "counters": {
            "flash_ops": dev.flash.op_count,
            "sector_erases": {str(i): n for i, n in enumerate(dev.flash.erase_counts)},
            "device_time_s": round(dev.flash.device_time_s, 6),
            "device_time_max_s": round(dev.flash.device_time_max_s, 6),
        },
        "warnings": overrun_warnings(regions, dev),
    }


__all__ = ["RegionView", "dct_view", "flash_map", "overrun_warnings", "show"]
