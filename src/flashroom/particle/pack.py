"""``module pack``: one request dataclass, one API function (style: thin CLI over the API).

Builds a module from a raw image, an ELF's loadable image, or synthetic content, and refuses
it when it does not fit its region under the chosen layout (spec 1.5, 3.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from flashroom.errors import UsageError
from flashroom.particle.build import (
    build_module,
    default_vector_table,
    dependencies_from_specs,
    elf_image,
    is_elf,
    overhead,
    platform_id_of,
    synthetic_module,
)
from flashroom.particle.module_info import (
    FUNCTION_NAMES,
    ModuleFunction,
    ModuleInfo,
    module_info_offset,
)
from flashroom.particle.placement import Placement, check_fits, region_for_module


@dataclass(frozen=True)
class PackRequest:
    """What ``flashroom module pack`` was asked for."""

    platform: str
    function: str | int
    index: int
    version: int
    start_address: int | None = None  # None: the start of the module's region in the layout
    depends: tuple[str, ...] = ()  # "system:2:2302" (function name or number : index : version)
    product_id: int | None = None
    product_version: int | None = None
    layout: str = "stock"
    synthetic_size: int | None = None
    seed: int = 0
    vector_table: bool | None = None
    input_name: str = "<input>"


@dataclass(frozen=True)
class PackResult:
    """The module bytes and where they go."""

    module: bytes
    placement: Placement
    payload_size: int
    source: str  # "raw", "elf", "synthetic"
    elf_load_address: int | None = None

    def to_json(self) -> dict[str, object]:
        p = self.placement
        return {
            "size": len(self.module),
            "payload_size": self.payload_size,
            "source": self.source,
            "elf_load_address": self.elf_load_address,
            "region": p.region,
            "region_start": p.start,
            "region_end": p.end,
            "layout": p.layout,
            "platform": p.platform,
            "region_free": p.end - p.start - len(self.module),
        }


def function_code(function: str | int) -> int:
    """``user`` -> 5, ``4`` -> 4.

    Raises:
        UsageError: neither a known name nor a number 0..255.
    """
    if isinstance(function, int):
        code = function
    elif function.lower() in FUNCTION_NAMES:
        return int(FUNCTION_NAMES[function.lower()])
    else:
        try:
            code = int(function, 0)
        except ValueError:
            raise UsageError(
                f"unknown module function {function!r}: expected a number or one of "
                + ", ".join(FUNCTION_NAMES)
            ) from None
    if not 0 <= code <= 255:
        raise UsageError(f"module function {code} does not fit in u8")
    return code


def pack_module(req: PackRequest, input_data: bytes | None) -> PackResult:
    """Build the module ``req`` describes from ``input_data`` (raw or ELF) or synthetically.

    Raises:
        UsageError: inconsistent request (both or neither of input and --synthetic...).
        ModuleTooLargeError: the module does not fit its region; the region is named.
        LayoutError: the layout does not exist for the platform.
        ModuleFormatError: the ELF cannot be read.
    """
    pid = platform_id_of(req.platform)
    fn = function_code(req.function)
    if fn == ModuleFunction.NONE:
        raise UsageError("module function NONE (0) cannot be packed: the device ignores it")
    if (input_data is None) == (req.synthetic_size is None):
        raise UsageError("give either an input file or --synthetic SIZE, not both or neither")
    region = region_for_module(req.platform, req.layout, fn, req.index)
    start = region.start if req.start_address is None else req.start_address
    if start % 4:
        # Spec-silent guard: flash is programmed in 32-bit words (spec 8.6) and a vector table
        # or module_info_t at an unaligned address cannot be read by the Cortex-M3 as Device
        # OS does; no real module starts off a word boundary.
        raise UsageError(
            f"--start 0x{start:08x} is not 4-byte aligned: expected a word-aligned address "
            f"such as 0x{start & ~3:08x} (region {region.region} starts at 0x{region.start:08x})"
        )
    dep1, dep2 = dependencies_from_specs(req.depends)
    elf_addr: int | None = None
    if req.synthetic_size is not None:
        if req.product_id is not None or req.product_version is not None:
            raise UsageError("--product-id/--product-version are not supported with --synthetic")
        module = synthetic_module(
            req.synthetic_size,
            platform_id=pid,
            function=fn,
            index=req.index,
            version=req.version,
            start_address=start,
            dependency=dep1,
            dependency2=dep2,
            seed=req.seed,
            vector_table=req.vector_table,
        )
        source = "synthetic"
        vt = req.vector_table
        if vt is None:
            vt = default_vector_table(pid, fn, req.index)
        payload_size = len(module) - overhead(vector_table=vt)
    else:
        payload = input_data if input_data is not None else b""
        if not payload:
            raise UsageError(
                f"{req.input_name} is empty: expected a raw image or an ELF file to pack"
            )
        source = "raw"
        if is_elf(payload):
            elf_addr, payload = elf_image(payload, name=req.input_name)
            source = "elf"
            # An ELF knows where it was linked; one linked for another region is a mistake
            # that would run code at the wrong address (spec-silent guard).
            if not region.start <= elf_addr < region.end:
                raise UsageError(
                    f"{req.input_name}: ELF loadable image starts at 0x{elf_addr:08x}, outside "
                    f"region {region.region} [0x{region.start:08x}, 0x{region.end:08x}) that "
                    f"--function/--index select; expected an ELF linked for that region"
                )
        _refuse_existing_module(payload, start, pid, req.input_name)
        module = build_module(
            payload,
            platform_id=pid,
            function=fn,
            index=req.index,
            version=req.version,
            start_address=start,
            dependency=dep1,
            dependency2=dep2,
            product_id=req.product_id,
            product_version=req.product_version,
            vector_table=req.vector_table,
        )
        payload_size = len(payload)
    placement = check_fits(
        size=len(module),
        start_address=start,
        platform=req.platform,
        layout=req.layout,
        function=fn,
        index=req.index,
    )
    return PackResult(module, placement, payload_size, source, elf_addr)


def _refuse_existing_module(payload: bytes, start: int, platform_id: int, name: str) -> None:
    """Refuse an input that already is a module for this address (spec-silent guard).

    A Device OS build's image already starts with its module_info_t (at +0 or +0x184, spec
    2.2); wrapping it again would give a module whose first module_info describes a second one.

    Raises:
        UsageError: the payload's own module_info (where the device looks) has this module's
            start address and platform.
    """
    if len(payload) < 0x184 + ModuleInfo.SIZE:
        candidates = [0] if len(payload) >= ModuleInfo.SIZE else []
    else:
        candidates = [module_info_offset(struct.unpack_from("<I", payload, 0)[0])]
    for off in candidates:
        info = ModuleInfo.from_bytes(payload, off)
        if info.module_start_address == start and info.platform_id == platform_id:
            raise UsageError(
                f"{name} already is a module: module_info_t at +0x{off:x} has start "
                f"0x{start:08x} and platform {platform_id}; inspect it with "
                "'flashroom module inspect' instead of packing it again"
            )
