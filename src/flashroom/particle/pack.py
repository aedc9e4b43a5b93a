"""``module pack``: one request dataclass, one API function (style: thin CLI over the API).

Builds a module from a raw image, an ELF's loadable image, or synthetic content, and refuses
it when it does not fit its region under the chosen layout (spec 1.5, 3.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from flashroom.deviceos import get_platform, get_profile
from flashroom.errors import ParamError, UsageError
from flashroom.particle.build import (
    build_module,
    default_vector_table,
    dependencies_from_specs,
    elf_image,
    finish_checksums,
    is_elf,
    overhead,
    platform_id_of,
    synthetic_module,
)
from flashroom.particle.crc import crc32_be_bytes
from flashroom.particle.deps import check_dependencies, describe_dependency, platform_text
from flashroom.particle.module_info import (
    FUNCTION_NAMES,
    VECTOR_TABLE_SIZE,
    ModuleDependency,
    ModuleFunction,
    ModuleInfo,
    module_info_offset,
)
from flashroom.particle.parser import KNOWN_PLATFORM_IDS
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
    dependencies: tuple[ModuleDependency, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        p = self.placement
        ela = self.elf_load_address
        return {
            "size": len(self.module),
            "payload_size": self.payload_size,
            "source": self.source,
            "elf_load_address": ela,
            "elf_load_address_hex": None if ela is None else f"0x{ela:08x}",
            "region": p.region,
            "region_start": p.start,
            "region_start_hex": f"0x{p.start:08x}",
            "region_end": p.end,
            "region_end_hex": f"0x{p.end:08x}",
            "layout": p.layout,
            "platform": p.platform,
            "region_free": p.end - p.start - len(self.module),
            "dependencies": [
                {
                    "module_function": d.module_function,
                    "module_index": d.module_index,
                    "module_version": d.module_version,
                }
                for d in self.dependencies
            ],
            "warnings": list(self.warnings),
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
        raise ParamError(
            "give either an input file or synthetic_size SIZE, not both or neither",
            "synthetic_size",
        )
    region = region_for_module(req.platform, req.layout, fn, req.index)
    start = region.start if req.start_address is None else req.start_address
    if start % 4:
        # Spec-silent guard: flash is programmed in 32-bit words (spec 8.6) and a vector table
        # or module_info_t at an unaligned address cannot be read by the Cortex-M3 as Device
        # OS does; no real module starts off a word boundary.
        raise ParamError(
            f"start_address 0x{start:08x} is not 4-byte aligned: expected a word-aligned "
            f"address such as 0x{start & ~3:08x} (region {region.region} starts at "
            f"0x{region.start:08x})",
            "start_address",
        )

    def fits(size: int) -> Placement:
        return check_fits(
            size=size,
            start_address=start,
            platform=req.platform,
            layout=req.layout,
            function=fn,
            index=req.index,
        )

    # The dependencies asked for; a user part built for a larger layout without any gets the
    # layout's own (spec 9 change 5: stock firmware then refuses to run it).
    asked = dependencies_from_specs(req.depends)
    dep1, dep2 = asked
    if not req.depends and fn == ModuleFunction.USER_PART and req.layout != "stock":
        own = get_profile(req.platform, req.layout).user_dependency
        if own is not None:
            dep1 = ModuleDependency(*own)
    elf_addr: int | None = None
    if req.synthetic_size is not None:
        if req.product_id is not None or req.product_version is not None:
            raise ParamError(
                "product_id/product_version are not supported with synthetic_size",
                "product_id",
                "product_version",
                "synthetic_size",
            )
        # Refuse what cannot fit before building it (a 256M request is answered at once).
        fits(req.synthetic_size)
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
                raise ParamError(
                    f"{req.input_name}: ELF loadable image starts at 0x{elf_addr:08x}, outside "
                    f"region {region.region} [0x{region.start:08x}, 0x{region.end:08x}) that "
                    f"function/index select; expected an ELF linked for that region",
                    "function",
                    "index",
                )
        if len(payload) > region.end - start:  # cannot fit whatever wraps it: refuse unbuilt
            fits(len(payload) + ModuleInfo.SIZE)
        _refuse_finished_module(req, payload, start, pid)
        existing = _own_module_info(payload, start, pid)
        if existing is not None:
            # A Device OS build's image (the user.ld / module_end.ld link): finish it in place
            # as build/module.mk does, instead of wrapping it in a second module_info_t.
            _refuse_conflicting_fields(req, existing, asked[0], asked[1])
            module = finish_device_os_image(payload, existing, fn, req.index, req.input_name)
            source += "+module_info"
            payload_size = len(module)
            dep1, dep2 = existing.dependency, existing.dependency2
        else:
            module = _wrap_payload(req, payload, elf_addr, pid, fn, start, dep1, dep2)
            payload_size = len(payload)
    placement = fits(len(module))
    deps = tuple(d for d in (dep1, dep2) if d is not None and not d.is_none)
    warnings = _stock_runs_it(req, fn, len(module), deps)
    return PackResult(module, placement, payload_size, source, elf_addr, deps, warnings)


def _stock_runs_it(
    req: PackRequest, fn: int, size: int, deps: tuple[ModuleDependency, ...]
) -> tuple[str, ...]:
    """A warning when stock firmware would run a user part larger than its user part.

    Stock Device OS checks a user part's dependencies at boot, not its end address (spec 3.2):
    an app larger than stock's user part whose dependencies stock's own modules meet is run
    after a USB install, with 128K OTA limits and its upper part over the factory image.
    """
    if fn != ModuleFunction.USER_PART or req.layout == "stock":
        return ()
    stock = get_profile(req.platform, "stock")
    limit = stock.user_bounds.maximum_size
    if size <= limit:
        return ()
    plat = get_platform(req.platform)
    installed = [
        ModuleInfo(part.start_address, part.start_address + part.size - 4, 0, 0, part.version,
                   plat.platform_id, part.function, part.index, ModuleDependency(),
                   ModuleDependency())
        for part in plat.install
    ]  # fmt: skip
    info = ModuleInfo(0, size - 4, 0, 0, req.version, plat.platform_id, fn, req.index,
                      deps[0] if deps else ModuleDependency(),
                      deps[1] if len(deps) > 1 else ModuleDependency())  # fmt: skip
    if not check_dependencies(info, installed).ok:
        return ()
    own = get_profile(req.platform, req.layout).user_dependency
    want = (
        ""
        if own is None
        else f" (the {req.layout} default: depends {own.module_function}:"
        f"{own.module_index}:{own.module_version})"
    )
    what = (
        "no dependency"
        if not deps
        else "dependencies " + ", ".join(describe_dependency(d) for d in deps)
    )
    return (
        f"this {size}-byte user part for the {req.layout} layout has {what}, which stock "
        f"Device OS 2.3.1 meets (its system parts are version "
        f"{stock.system_version}): a stock {req.platform} runs it after a USB install although "
        f"its user part holds {limit} bytes, and the rest lands on the factory image "
        f"(docs/device-os.md#extended); depend on a system version only the {req.layout} "
        f"firmware has{want} so that stock firmware refuses it",
    )


def _refuse_finished_module(req: PackRequest, payload: bytes, start: int, pid: int) -> None:
    """Refuse an input that is already a finished module for another platform or address.

    Wrapping it would put a second ``module_info_t`` in front and drop its own dependency.
    """
    info = _finished_module_info(payload)
    if info is None:
        return
    same = info.platform_id == pid and info.module_start_address == start
    if same:
        return  # finished in place (or refused for conflicting fields) by the caller
    deps = [d for d in (info.dependency, info.dependency2) if not d.is_none]
    dep_text = ", ".join(describe_dependency(d) for d in deps) or "no dependency"
    if info.platform_id != pid:
        why = f"packing it for {platform_text(pid)}"
    else:
        why = f"packing it at 0x{start:08x}"
    raise UsageError(
        f"{req.input_name} is already a finished module for {platform_text(info.platform_id)} "
        f"(function {info.module_function} index {info.module_index} at "
        f"0x{info.module_start_address:08x}, {dep_text}); {why} would wrap it in a second "
        "module_info_t and drop its dependency: pack its source image instead"
    )


def _finished_module_info(payload: bytes) -> ModuleInfo | None:
    """The payload's own ``module_info_t`` (where the device looks, spec 2.2) when the payload
    is a whole module: known platform and function, and ``end - start + 4`` bytes long."""
    if len(payload) < ModuleInfo.SIZE:
        return None
    first = struct.unpack_from("<I", payload, 0)[0] if len(payload) >= 4 else 0
    off = module_info_offset(first) if len(payload) >= VECTOR_TABLE_SIZE + ModuleInfo.SIZE else 0
    info = ModuleInfo.from_bytes(payload, off)
    if info.module_end_address - info.module_start_address + 4 != len(payload):
        return None
    if info.platform_id not in KNOWN_PLATFORM_IDS or info.module_function == ModuleFunction.NONE:
        return None
    if info.module_function not in set(int(f) for f in ModuleFunction):
        return None
    return info


def _wrap_payload(
    req: PackRequest,
    payload: bytes,
    elf_addr: int | None,
    pid: int,
    fn: int,
    start: int,
    dep1: ModuleDependency | None,
    dep2: ModuleDependency | None,
) -> bytes:
    """Put ``payload`` right after a new ``module_info_t`` and finish the module (spec 2.2, 2.5).

    Raises:
        UsageError: an ELF payload was linked to run somewhere other than where it lands.
    """
    vt = req.vector_table
    if vt is None:
        vt = default_vector_table(pid, fn, req.index)
    payload_addr = start + (VECTOR_TABLE_SIZE if vt else 0) + ModuleInfo.SIZE
    if elf_addr is not None and elf_addr != payload_addr:
        # The payload goes right after module_info_t; code linked to run anywhere else
        # would run at the wrong addresses (spec 2.2: module_info_t at +0 for user parts).
        raise UsageError(
            f"{req.input_name}: ELF loadable image starts at 0x{elf_addr:08x}, but the "
            f"payload goes after module_info_t at 0x{payload_addr:08x}; expected an ELF "
            f"linked at 0x{payload_addr:08x}, or one that carries its own module_info_t "
            f"at 0x{start:08x} (Device OS's user.ld), which pack then finishes in place"
        )
    return build_module(
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


def _own_module_info(payload: bytes, start: int, platform_id: int) -> ModuleInfo | None:
    """The payload's own ``module_info_t`` where the device looks (spec 2.2), when it describes
    a module at ``start`` for this platform: the input is then already a Device OS image."""
    if len(payload) < 0x184 + ModuleInfo.SIZE:
        candidates = [0] if len(payload) >= ModuleInfo.SIZE else []
    else:
        candidates = [module_info_offset(struct.unpack_from("<I", payload, 0)[0])]
    for off in candidates:
        info = ModuleInfo.from_bytes(payload, off)
        if info.module_start_address == start and info.platform_id == platform_id:
            return info
    return None


def _refuse_conflicting_fields(
    req: PackRequest,
    info: ModuleInfo,
    dep1: ModuleDependency | None,
    dep2: ModuleDependency | None,
) -> None:
    """In finish mode the image's own module_info_t is authoritative: an option that asks for
    something else would be silently ignored, so it is refused instead."""
    name = req.input_name
    if req.version != info.module_version:
        raise ParamError(
            f"{name} already carries module_info_t with module_version {info.module_version}; "
            f"version {req.version} cannot change a linked image (rebuild it, or pass "
            f"version {info.module_version} to finish it)",
            "version",
        )
    for opt, want, have in (("first", dep1, info.dependency), ("second", dep2, info.dependency2)):
        if want is not None and want != have:
            raise ParamError(
                f"{name}: depends asks for {opt} dependency {want.module_function}:"
                f"{want.module_index}:{want.module_version}, but the linked module_info_t has "
                f"{have.module_function}:{have.module_index}:{have.module_version}",
                "depends",
            )
    if req.product_id is not None or req.product_version is not None:
        raise UsageError(
            f"{name} is a linked Device OS image: its product id/version are set at link time "
            "(PRODUCT_ID/PRODUCT_VERSION), not by pack"
        )


#: The tail Device OS's link leaves for the post-link step (spec 2.5 post-link #2): SHA-256
#: placeholder bytes 0x01..0x20, suffix size 0x0028, CRC placeholder 0x12345678 (LE in flash).
TAIL_PLACEHOLDER = bytes(range(1, 33)) + b"\x28\x00" + b"\x78\x56\x34\x12"


def finish_device_os_image(
    image: bytes, info: ModuleInfo, function: int, index: int, name: str
) -> bytes:
    """Finish a Device OS build's flat image as ``build/module.mk`` does (spec 2.5 post-link).

    Checks that the image is the whole module (``module_end_address - module_start_address +
    4`` bytes), that its ``module_info_t`` has the requested function and index, and that its
    last 38 bytes are the link's placeholder (or already hold a valid CRC, so finishing twice is
    harmless); then writes the SHA-256 over ``[0, N-38)`` and the CRC-32 over ``[0, N-4)``.

    Raises:
        UsageError: the image is not a complete, unfinished module of the requested kind.
    """
    n = len(image)
    want = info.module_end_address - info.module_start_address + 4
    if n != want:
        raise UsageError(
            f"{name}: its module_info_t says module_end_address 0x{info.module_end_address:08x}"
            f" - module_start_address 0x{info.module_start_address:08x} + 4 = {want} bytes, "
            f"but the image has {n}; expected the whole flat image (objcopy -O binary)"
        )
    if (info.module_function, info.module_index) != (function, index):
        raise ParamError(
            f"{name}: its module_info_t is function {info.module_function} index "
            f"{info.module_index}; function/index ask for {function} index {index}",
            "function",
            "index",
        )
    if image[-38:] != TAIL_PLACEHOLDER and crc32_be_bytes(image[:-4]) != image[-4:]:
        raise UsageError(
            f"{name}: the last 38 bytes (from offset {n - 38}) are neither Device OS's "
            "SHA-256/CRC placeholder nor a finished tail; expected an image linked with "
            "module_end.ld"
        )
    module = bytearray(image)
    finish_checksums(module)
    return bytes(module)
