"""Build Particle modules: real payloads, synthetic ones, and a whole Device OS 2.3.1 install.

A module is laid out as the Device OS build lays it out (spec 2.2, 2.5)::

    [vector table, 0x184 bytes, first word a stack pointer]   only when vector_table is true
    [module_info_t, 24 bytes]                                 at +0 or +0x184 (spec 2.2)
    [payload]
    [0x00 pad to 2 bytes]                                     the tail section is 2-aligned
    [0xFFFF 0xFFFF]                                           only with product id/version set
    [product_id u16][product_version u16]                     0xFFFF when unset
    [reserved u16 = 0][sha256 32][size u16 = 40]              module_info_suffix_t
    [CRC-32, big-endian]                                      module_end_address points here

Derived fields are computed, never passed in: ``module_end_address = start + N - 4``, the
SHA-256 over ``file[0:N-38]``, then the CRC-32 over ``file[0:N-4]`` (spec 2.5 post-link steps).
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
import struct
from collections.abc import Sequence

from flashroom.deviceos import GEN2_PLATFORMS, Dependency, electron, gen2, get_platform, get_profile
from flashroom.errors import ModuleFormatError, ParamError, UsageError
from flashroom.particle.crc import crc32_be_bytes
from flashroom.particle.module_info import (
    FUNCTION_NAMES,
    VECTOR_TABLE_SIZE,
    ModuleDependency,
    ModuleFunction,
    ModuleInfo,
    PlatformId,
)
from flashroom.particle.parser import LARGEST_MODULE_SIZE
from flashroom.particle.suffix import (
    SUFFIX_SIZE_WITH_PRODUCT,
    ProductBlock,
    SuffixBase,
)

#: Initial stack pointer written as the first vector word. 0x20020000 (top of the 128 KB SRAM)
#: matches ``APP_START_MASK`` (0x2FF10000 -> 0x20000000), so the device finds module_info at
#: +0x184 (spec 2.2; 0x20010000 would *not* match).
DEFAULT_STACK_POINTER = 0x20020000

_UNSET = 0xFFFF
#: Where :func:`synthetic_module` puts embedded bytes in its payload (4-aligned in flash for
#: every module whose payload starts on a word: module_info at +0 or +0x184).
EMBED_OFFSET = 0x100
_TAIL_FIXED = ProductBlock.SIZE + SuffixBase.SIZE + 4  # product block + suffix + CRC = 44
_TAIL_WITH_PRODUCT = _TAIL_FIXED + 4  # plus the 0xFFFF 0xFFFF padding words (spec 2.5 #1)


def platform_id_of(platform: str | int) -> int:
    """``PlatformId`` value of a Gen2 platform name (``electron`` -> 10, any case); ints pass.

    Raises:
        UsageError: not a Gen2 platform name.
    """
    if isinstance(platform, int):
        return platform
    key = platform.strip().lower()
    if key not in GEN2_PLATFORMS:
        raise UsageError(
            f"unknown Gen2 platform {platform!r}: expected one of {', '.join(GEN2_PLATFORMS)}"
        )
    return get_platform(key).platform_id


def _gen2_name(platform: str | int) -> str:
    """The registry key of a Gen2 platform given by name or id (UsageError otherwise)."""
    if isinstance(platform, int):
        for name in GEN2_PLATFORMS:
            if get_platform(name).platform_id == platform:
                return name
        raise UsageError(
            f"unknown Gen2 platform id {platform}: expected one of "
            + ", ".join(f"{get_platform(n).platform_id} ({n})" for n in GEN2_PLATFORMS)
        )
    platform_id_of(platform)
    return platform.strip().lower()


def default_vector_table(platform_id: int, function: int, index: int) -> bool:
    """Whether Device OS puts a vector table (and module_info at +0x184) in front (spec 2.2, 1.6).

    True for the bootloader, monolithic firmware and the system parts of Gen2, except the
    Electron index-3 part (part3.ld has no vector table); false for user parts and the rest.
    """
    if platform_id not in (PlatformId.PHOTON, PlatformId.P1, PlatformId.ELECTRON):
        return False
    if function in (ModuleFunction.BOOTLOADER, ModuleFunction.MONO_FIRMWARE):
        return True
    if function == ModuleFunction.SYSTEM_PART:
        return not (platform_id == PlatformId.ELECTRON and index == 3)
    return False


def _vector_table(start_address: int, stack_pointer: int) -> bytes:
    """97 vector words: SP, then Thumb handler addresses inside the module (spec 2.2)."""
    rng = random.Random(start_address)
    # Handlers land just after module_info (+0x184+24); many vectors share a default handler,
    # as in a real startup file.
    default_handler = start_address + VECTOR_TABLE_SIZE + 0x40 + 1
    words = [stack_pointer, start_address + VECTOR_TABLE_SIZE + 0x19]
    for i in range(2, VECTOR_TABLE_SIZE // 4):
        if i in (7, 8, 9, 10, 13):  # reserved slots in the Cortex-M3 table
            words.append(0)
        elif rng.random() < 0.6:
            words.append(default_handler)
        else:
            words.append(start_address + VECTOR_TABLE_SIZE + 0x40 + rng.randrange(0x400) * 2 + 1)
    return struct.pack(f"<{len(words)}I", *words)


def _check_u(value: int, bits: int, name: str) -> None:
    if not 0 <= value < (1 << bits):
        raise UsageError(f"{name} {value} does not fit in u{bits}")


def build_module(
    payload: bytes,
    *,
    platform_id: int,
    function: int,
    index: int,
    version: int,
    start_address: int,
    dependency: ModuleDependency | None = None,
    dependency2: ModuleDependency | None = None,
    product_id: int | None = None,
    product_version: int | None = None,
    vector_table: bool | None = None,
    flags: int = 0,
    stack_pointer: int = DEFAULT_STACK_POINTER,
) -> bytes:
    """Build a complete module around ``payload`` (spec 2.2, 2.5).

    Args:
        payload: the module body placed right after ``module_info_t``.
        platform_id: ``PlatformId`` value (6, 8, 10; others are accepted as raw numbers).
        function: ``ModuleFunction`` value.
        index: module index.
        version: module version (u16).
        start_address: link address of the first byte of the file.
        dependency: first dependency (None = no dependency).
        dependency2: second dependency (None = no dependency).
        product_id: ``PRODUCT_ID(x)``; None leaves 0xFFFF. With either product field set, the
            extra 0xFFFF 0xFFFF padding words precede the product block (spec 2.5 #1-2).
        product_version: ``PRODUCT_VERSION(x)``; None leaves 0xFFFF.
        vector_table: put a 0x184-byte vector table whose first word is a stack pointer in
            front, so module_info sits at +0x184. None picks the Device OS choice
            (:func:`default_vector_table`).
        flags: ``module_info_t.flags`` (0 on every Gen2 build).
        stack_pointer: first vector word; must match the 0x2FF10000 mask (spec 2.2).

    Returns:
        The module file: ``module_end_address - module_start_address + 4`` bytes.

    Raises:
        UsageError: a field does not fit its width, or the stack pointer fails the mask.
    """
    for value, bits, name in (
        (platform_id, 16, "platform_id"),
        (function, 8, "module_function"),
        (index, 8, "module_index"),
        (version, 16, "module_version"),
        (start_address, 32, "module_start_address"),
        (flags, 8, "flags"),
    ):
        _check_u(value, bits, name)
    for pv, pname in ((product_id, "product_id"), (product_version, "product_version")):
        if pv is not None:
            _check_u(pv, 16, pname)
    if vector_table is None:
        vector_table = default_vector_table(platform_id, function, index)
    head = b""
    if start_address + len(payload) + ModuleInfo.SIZE > 0xFFFFFFFF:
        raise UsageError(
            f"module of {len(payload)} payload bytes at 0x{start_address:08x} runs past the "
            "32-bit address space"
        )
    if vector_table:
        if (stack_pointer & 0x2FF10000) != 0x20000000:
            raise UsageError(
                f"stack pointer 0x{stack_pointer:08x} does not match APP_START_MASK 0x2ff10000 "
                "-> 0x20000000, so the device would look for module_info at +0 "
                "(docs/device-os.md#module-info)"
            )
        head = _vector_table(start_address, stack_pointer)
    body_len = len(head) + ModuleInfo.SIZE + len(payload)
    pad = body_len & 1  # spec 2.5 #1: the tail section is 2-byte aligned
    has_product = product_id is not None or product_version is not None
    tail_len = _TAIL_WITH_PRODUCT if has_product else _TAIL_FIXED
    total = body_len + pad + tail_len
    end_address = start_address + total - 4
    if end_address > 0xFFFFFFFF:
        raise UsageError(
            f"module of {total} bytes at 0x{start_address:08x} runs past the 32-bit address space"
        )
    info = ModuleInfo(
        module_start_address=start_address,
        module_end_address=end_address,
        reserved=0,
        flags=flags,
        module_version=version,
        platform_id=platform_id,
        module_function=function,
        module_index=index,
        dependency=dependency or ModuleDependency(),
        dependency2=dependency2 or ModuleDependency(),
    )
    out = bytearray(head)
    out += info.to_bytes()
    out += payload
    out += b"\x00" * pad
    if has_product:
        out += ProductBlock(_UNSET, _UNSET).to_bytes()
    out += ProductBlock(
        _UNSET if product_id is None else product_id,
        _UNSET if product_version is None else product_version,
    ).to_bytes()
    out += SuffixBase(0, b"\x00" * 32, SUFFIX_SIZE_WITH_PRODUCT).to_bytes()
    out += struct.pack("<I", 0x12345678)  # CRC placeholder (spec 2.5 #5), replaced below
    finish_checksums(out)
    return bytes(out)


def finish_checksums(module: bytearray) -> None:
    """Recompute SHA-256 (over ``[0, N-38)``) then CRC-32 (over ``[0, N-4)``) in place.

    spec 2.5 post-link steps 3-4; the CRC covers the new SHA, so the order matters.

    Raises:
        ModuleFormatError: the buffer is shorter than a suffix and CRC.
    """
    n = len(module)
    if n < SuffixBase.SIZE + 4:
        raise ModuleFormatError(
            f"a module needs at least {SuffixBase.SIZE + 4} bytes for suffix and CRC, got {n}",
            offset=0,
            field="suffix",
        )
    module[n - 38 : n - 6] = hashlib.sha256(memoryview(module)[: n - 38]).digest()
    module[n - 4 :] = crc32_be_bytes(memoryview(module)[: n - 4])


# --- deterministic code-like content ------------------------------------------------------------

#: High bytes of common Thumb-2 16-bit encodings (movs/cmp/adds imm8, ldr/str imm, ldr literal,
#: b<cond>, push/pop, add sp) with rough relative frequencies; the low byte is the operand.
_THUMB_HIGH = (0x20, 0x21, 0x23, 0x28, 0x2B, 0x30, 0x46, 0x48, 0x49, 0x4B, 0x60, 0x68, 0x69,
               0x6A, 0x78, 0x70, 0x9B, 0x9A, 0xD0, 0xD1, 0xDB, 0xE0, 0xB0, 0x1C, 0x18,
               0x3B)  # fmt: skip
_THUMB_WEIGHTS = (8, 5, 4, 6, 4, 2, 9, 5, 4, 5, 6, 8, 3, 2, 4, 3, 4, 3, 5, 5, 2, 4, 2, 3, 3, 2)
_WORDS = (b"cellular", b"modem", b"socket", b"timeout", b"connect", b"particle", b"spark/device",
          b"error %d", b"AT+CGDCONT", b"system", b"flash", b"ready", b"OK\r\n", b"invalid state",
          b"publish", b"subscribe", b"session", b"handshake", b"dtls", b"coap")  # fmt: skip


def _idiom(rng: random.Random) -> bytes:
    """A short instruction sequence that recurs (prologue, epilogue, call, compare-branch)."""
    kind = rng.randrange(4)
    hw: list[int] = []
    if kind == 0:  # push {r4-r7, lr}; sub sp
        hw = [0xB500 | rng.choice((0x10, 0x30, 0x70, 0xF0, 0x08)), 0xB080 | rng.randrange(8)]
    elif kind == 1:  # add sp; pop {.., pc}; bx lr
        hw = [0xB000 | rng.randrange(8), 0xBD00 | rng.choice((0x10, 0x30, 0x70, 0xF0, 0x08))]
    elif kind == 2:  # bl <somewhere>
        hw = [0xF000 | rng.randrange(0x800), 0xF800 | rng.randrange(0x800)]
    else:  # ldr r3, [pc, #x]; ldr r0, [r3]; cmp r0, #0; beq
        hw = [0x4B00 | rng.randrange(256), 0x6818, 0x2800, 0xD000 | rng.randrange(256)]
    return struct.pack(f"<{len(hw)}H", *hw)


@functools.lru_cache(maxsize=64)
def code_like_bytes(size: int, seed: int = 0, base_address: int = electron.USER_LOC) -> bytes:
    """Deterministic bytes that look and compress roughly like Thumb-2 firmware.

    A mix of recurring idioms (prologues, epilogues, calls), operand-varying 16-bit
    instructions, literal pools of flash/RAM addresses and a few strings; same (size, seed,
    base_address) gives the same bytes. zlib level 6 gets it to roughly 70-73 % of its size,
    close to real Gen2 firmware (the system-part fixtures compress to about 67-71 %).
    """
    if size <= 0:
        return b""
    rng = random.Random(seed * 1_000_003 + size)
    idioms = [_idiom(rng) for _ in range(96)]
    out = bytearray()
    pool_base = base_address & ~0xFFF
    choices = rng.choices
    while len(out) < size:
        r = rng.random()
        if r < 0.52:
            out += idioms[int(rng.random() ** 2 * len(idioms))]
        elif r < 0.88:
            n = rng.randrange(2, 9)
            highs = choices(_THUMB_HIGH, _THUMB_WEIGHTS, k=n)
            lows = rng.randbytes(n)
            for h, lo in zip(highs, lows, strict=True):
                out += bytes((lo & 0x3F if h in (0x46, 0x68, 0x60) else lo, h))
        elif r < 0.97:
            n = rng.randrange(1, 4)
            for _ in range(n):
                if rng.random() < 0.7:
                    word = pool_base + (rng.randrange(size) & ~1) + 1
                else:
                    word = 0x20000000 + (rng.randrange(0x8000) << 2)
                out += struct.pack("<I", word & 0xFFFFFFFF)
        else:
            out += rng.choice(_WORDS) + b"\x00"
            if len(out) & 1:
                out += b"\x00"
    return bytes(out[:size])


def overhead(*, vector_table: bool, has_product: bool = False) -> int:
    """Bytes a module adds around its payload: head, module_info, tail (payload even-sized)."""
    head = (VECTOR_TABLE_SIZE if vector_table else 0) + ModuleInfo.SIZE
    return head + (_TAIL_WITH_PRODUCT if has_product else _TAIL_FIXED)


def synthetic_module(
    size: int,
    *,
    platform_id: int,
    function: int,
    index: int,
    version: int,
    start_address: int,
    dependency: ModuleDependency | None = None,
    dependency2: ModuleDependency | None = None,
    seed: int = 0,
    vector_table: bool | None = None,
    embed: bytes | None = None,
) -> bytes:
    """A module whose total file size is exactly ``size``, with deterministic code-like content.

    A user part's payload starts with its 4-entry dynalib table (spec 2.2: pre_init, init,
    setup, loop) pointing into the module, as the system part expects at start + 0x18.

    Args:
        size: total file size in bytes; must be even (the tail is 2-byte aligned and the file
            is ``module_end_address - module_start_address + 4``, spec 2.5/2.6) and at least
            the module overhead.
        platform_id: see :func:`build_module`.
        function: see :func:`build_module`.
        index: see :func:`build_module`.
        version: see :func:`build_module`.
        start_address: see :func:`build_module`.
        dependency: see :func:`build_module`.
        dependency2: see :func:`build_module`.
        seed: content seed; the same arguments always give the same bytes.
        vector_table: see :func:`build_module`.
        embed: bytes to carry in the code at :data:`EMBED_OFFSET` of the payload, as Electron's
            system module index 3 carries its bootloader image (spec 4.7).

    Raises:
        UsageError: ``size`` is odd or too small to hold module_info, suffix and CRC (and the
            embedded bytes).
    """
    if vector_table is None:
        vector_table = default_vector_table(platform_id, function, index)
    minimum = overhead(vector_table=vector_table)
    if size < minimum:
        raise UsageError(
            f"a synthetic module of {size} bytes is too small: module_info_t, the "
            f"{'vector table, ' if vector_table else ''}suffix and CRC alone need {minimum} "
            "bytes"
        )
    if size % 2:
        raise UsageError(
            "a module's file size is always even (2-byte aligned tail, "
            "docs/device-os.md#module-tail); "
            f"got {size} bytes"
        )
    _check_u(start_address, 32, "module_start_address")
    if start_address + size > 1 << 32:
        raise UsageError(
            f"a module of {size} bytes at 0x{start_address:08x} runs past the 32-bit address "
            "space (0xffffffff)"
        )
    payload_len = size - minimum
    body = code_like_bytes(payload_len, seed, start_address)
    if embed is not None:
        if EMBED_OFFSET + len(embed) > payload_len:
            raise UsageError(
                f"a synthetic module of {size} bytes cannot embed {len(embed)} bytes at payload "
                f"offset {EMBED_OFFSET}"
            )
        body = body[:EMBED_OFFSET] + embed + body[EMBED_OFFSET + len(embed) :]
    if function == ModuleFunction.USER_PART and payload_len >= 16:
        # spec 2.2: the user dynalib table (pre_init, init, setup, loop) follows module_info.
        entries = [start_address + 0x40 + 0x20 * i + 1 for i in range(4)]
        body = struct.pack("<4I", *entries) + body[16:]
    module = build_module(
        body,
        platform_id=platform_id,
        function=function,
        index=index,
        version=version,
        start_address=start_address,
        dependency=dependency,
        dependency2=dependency2,
        vector_table=vector_table,
    )
    if len(module) != size:  # pragma: no cover - arithmetic invariant
        raise RuntimeError(f"synthetic module is {len(module)} bytes, wanted {size}")
    return module


# --- Device OS 2.3.1 install (spec 2.4; the parts are facts of flashroom.deviceos) ----------


def _dep(d: Dependency | None) -> ModuleDependency | None:
    return None if d is None else ModuleDependency(*d)


@functools.lru_cache(maxsize=16)
def _device_os_install(
    platform: str, system_version: int | None, bootloader_version: int | None
) -> tuple[bytes, ...]:
    plat = get_platform(platform)
    out: list[bytes] = []
    bootloader: bytes | None = None
    for part in plat.install:
        version = part.version
        if part.function == ModuleFunction.SYSTEM_PART and system_version is not None:
            version = system_version
        if part.function == ModuleFunction.BOOTLOADER and bootloader_version is not None:
            version = bootloader_version
        module = synthetic_module(
            part.size,
            platform_id=plat.platform_id,
            function=part.function,
            index=part.index,
            version=version,
            start_address=part.start_address,
            dependency=_dep(part.dependency),
            dependency2=_dep(part.dependency2),
            seed=part.function * 16 + part.index,
            embed=bootloader if part.embeds_bootloader else None,
        )
        if part.function == ModuleFunction.BOOTLOADER:
            bootloader = module
        out.append(module)
    return tuple(out)


def device_os_install(
    platform: str = "electron",
    *,
    system_version: int | None = None,
    bootloader_version: int | None = None,
) -> list[bytes]:
    """A full synthetic Device OS 2.3.1 install: bootloader then system parts by address.

    Versions and dependencies are those of spec 2.4; each module sits at the start of its spec
    1.2/1.3 region. Electron: bootloader 1004 (the embedded image), idx1/idx2/idx3 2302; idx 3
    carries the bootloader's image in its code (spec 4.7). Photon/P1: bootloader 1006,
    part1/part2 2302. ``system_version`` and ``bootloader_version`` replace those versions (the
    extended system modules, spec 9 change 5; an older bootloader, spec 4.5).

    Raises:
        UsageError: not a Gen2 platform.
    """
    return list(_device_os_install(_gen2_name(platform), system_version, bootloader_version))


def user_start_address(platform: str | int) -> int:
    """The stock user part start: 0x08080000 (Electron), 0x080A0000 (Photon/P1) (spec 1.5)."""
    return get_profile(_gen2_name(platform)).user_loc


def synthetic_user_app(
    size: int,
    *,
    platform: str = "electron",
    version: int = gen2.USER_PART_VERSION,
    seed: int = 0,
) -> bytes:
    """A user part of exactly ``size`` bytes at the platform's user start (spec 1.5, 2.2).

    It depends on SYSTEM_PART idx 2 >= 2302, as a user app built against 2.3.1 (spec 2.4).

    Raises:
        UsageError: unknown platform, odd or too small size.
    """
    return synthetic_module(
        size,
        platform_id=platform_id_of(platform),
        function=ModuleFunction.USER_PART,
        index=1,
        version=version,
        start_address=user_start_address(platform),
        dependency=_dep(get_profile(_gen2_name(platform)).user_dependency),
        seed=seed,
    )


# --- ELF input ------------------------------------------------------------------------------------


def elf_image(data: bytes, *, name: str = "<elf>") -> tuple[int, bytes]:
    """The loadable image of an ELF file: (lowest physical address, bytes).

    Takes every PT_LOAD segment with file bytes, placed at its physical (load) address, gaps
    filled with 0xFF (erased flash), as ``objcopy -O binary`` does for a flash image.

    Raises:
        ModuleFormatError: not an ELF, or no loadable segment.
    """
    from elftools.common.exceptions import ELFError  # pyelftools: deferred for start-up time
    from elftools.elf.elffile import ELFFile  # pyelftools: deferred

    try:
        elf = ELFFile(io.BytesIO(data))
        machine = elf["e_machine"]
        if machine != "EM_ARM" or elf.elfclass != 32:
            raise ModuleFormatError(
                f"{name}: ELF is for {machine} ({elf.elfclass}-bit); expected a 32-bit ARM "
                "(EM_ARM) image for the STM32F205",
                offset=0x12,
                field="e_machine",
            )
        segs = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                continue
            segs.append((int(seg["p_paddr"]), bytes(seg.data())))
    except ModuleFormatError:
        raise
    except (ELFError, ValueError, OSError, struct.error) as e:
        raise ModuleFormatError(
            f"{name}: not a readable ELF file ({e})", offset=0, field="elf"
        ) from None
    except Exception as e:  # pyelftools raises what it meets on a hostile header (spec-silent)
        raise ModuleFormatError(
            f"{name}: not a readable ELF file ({type(e).__name__}: {e})", offset=0, field="elf"
        ) from None
    if not segs:
        raise ModuleFormatError(f"{name}: ELF has no loadable segment", offset=0, field="PT_LOAD")
    segs.sort()
    base = segs[0][0]
    end = max(a + len(d) for a, d in segs)
    if end - base > LARGEST_MODULE_SIZE:
        raise ModuleFormatError(
            f"{name}: loadable segments span {end - base} bytes from 0x{base:08x}; "
            f"expected one flash image (no module is larger than {LARGEST_MODULE_SIZE} bytes)",
            offset=0,
            field="PT_LOAD",
        )
    img = bytearray(b"\xff" * (end - base))
    for addr, seg_data in segs:
        img[addr - base : addr - base + len(seg_data)] = seg_data
    return base, bytes(img)


def is_elf(data: bytes) -> bool:
    """True when ``data`` starts with the ELF magic."""
    return data[:4] == b"\x7fELF"


def dependency_from_spec(text: str) -> ModuleDependency:
    """Parse ``system:2:2302`` or ``4:2:2302`` (function name or number : index : version).

    Raises:
        UsageError: malformed text or a value out of range.
    """
    parts = text.split(":")
    if len(parts) != 3:
        raise UsageError(
            f"invalid dependency {text!r}: expected FUNCTION:INDEX:VERSION, e.g. system:2:2302"
        )
    fn_text, idx_text, ver_text = (p.strip() for p in parts)
    if fn_text.lower() in FUNCTION_NAMES:
        fn = int(FUNCTION_NAMES[fn_text.lower()])
    else:
        try:
            fn = int(fn_text, 0)
        except ValueError:
            names = ", ".join(FUNCTION_NAMES)
            raise UsageError(
                f"invalid dependency function {fn_text!r}: expected a number or one of {names}"
            ) from None
    try:
        idx = int(idx_text, 0)
        ver = int(ver_text, 0)
    except ValueError:
        raise UsageError(
            f"invalid dependency {text!r}: index and version must be numbers"
        ) from None
    _check_u(fn, 8, "dependency module_function")
    _check_u(idx, 8, "dependency module_index")
    _check_u(ver, 16, "dependency module_version")
    return ModuleDependency(fn, idx, ver)


def dependencies_from_specs(specs: Sequence[str]) -> tuple[ModuleDependency | None, ...]:
    """Up to two ``--depends`` values as (dependency, dependency2).

    Raises:
        UsageError: more than two.
    """
    if len(specs) > 2:
        raise ParamError(
            f"module_info_t has two dependency slots; got {len(specs)} depends", "depends"
        )
    deps: list[ModuleDependency | None] = [dependency_from_spec(s) for s in specs]
    while len(deps) < 2:
        deps.append(None)
    return tuple(deps)
