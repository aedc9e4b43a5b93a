"""Low-level reading of a module the way the reference tool reads it (module-format.md 3-5).

``binary-version-reader`` (HalModuleParser.js) does not look the prefix offset up by platform:
it scores candidate offsets and takes the first perfect one, and it reads the suffix backwards
from the end of the *file*. flashroom copies those rules, quirks included, so that its fields
equal the reference tool's recorded output on every fixture (tests/golden/particle).

All functions take ``bytes``/``memoryview`` and never copy the whole input; errors are
:class:`~flashroom.errors.ModuleFormatError` naming the field and the file offset.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass
from itertools import pairwise

from flashroom.errors import ModuleFormatError
from flashroom.particle.module_info import ModuleFunction, ModuleInfo, ModuleInfoFlags
from flashroom.particle.suffix import (
    CRC_SIZE,
    SUFFIX_BASE_SIZE,
    SUFFIX_SIZE_WITH_PRODUCT,
    Extension,
    ExtensionType,
    parse_suffix_extensions,
    read_extension,
)

Buffer = bytes | bytearray | memoryview

#: Offsets tried first, in this order (HalModuleParser.js:315-324): start of file, Gen3 vector
#: table (0x200), Gen2 vector table (0x184), Bluz (0xC0), Core (0x10C).
PREFERRED_OFFSETS = (0, 0x200, 0x184, 0xC0, 0x10C)
#: The fallback scan never looks past 8 KB ("anything above 8KB is unreasonable").
MAX_PREFIX_OFFSET = 8 * 1024
#: Score of a perfect candidate (the tool's ``maxScore``).
MAX_SCORE = 7

#: Platform IDs of ``ModuleInfo.Platform``: device-constants 4.0.1 entries with generation > 0
#: (module-format.md 8). Membership is one point of the score; Bluz (103) is not in it.
KNOWN_PLATFORM_IDS = frozenset({0, 6, 8, 10, 12, 13, 14, 15, 22, 23, 24, 25, 26, 28, 32, 35, 37})
#: Every platform id device-constants 4.0.1 lists, whatever its generation (module-format.md 8):
#: the ones above plus GCC 3, ESP32 11, Raspberry Pi 31, Tachyon 42, Linux 43, Oak 82, Duo 88 and
#: Bluz 103 (a Bluz system part is a real module that scores 6, module-format.md 3).
DEVICE_CONSTANTS_PLATFORM_IDS = KNOWN_PLATFORM_IDS | frozenset({3, 11, 31, 42, 43, 82, 88, 103})
_KNOWN_FUNCTIONS = frozenset(int(f) for f in ModuleFunction)  # 0..9 (ModuleInfo.js:18-55)
_ALL_FLAGS = 0x1F  # DROP_MODULE_INFO | COMPRESSED | COMBINED | ENCRYPTED | PREFIX_EXTENSIONS

#: The largest module any Particle platform allows: 1572864 bytes, the P2 / M-SoM / Tracker-M
#: user part (device-constants ``maxSize``, module-format.md 5.3); every Gen2 module is at
#: most 256 KB.
LARGEST_MODULE_SIZE = 1536 * 1024
#: The most a module reader reads: two of the largest modules (a combined pair, the most any
#: Device OS accepts in one update, spec 7.4) and slack. A larger file is not a module.
MAX_MODULE_FILE_SIZE = 4 * 1024 * 1024
#: Extensions in one prefix or suffix list. Real modules carry at most a handful; a walk past
#: this many is refused (spec-silent guard: a list of 1-byte extensions would otherwise make
#: one object per byte of a 4 MB file).
MAX_EXTENSIONS = 256

_SCORE_STRUCT = struct.Struct("<IIBBHHBBBBHBBH")
_U16 = struct.Struct("<H")


def prefix_score(data: Buffer, offset: int) -> int:
    """The reference tool's plausibility score of a prefix at ``offset`` (0..7).

    ``_validateModulePrefix`` (HalModuleParser.js:221-296): 0 if fewer than 24 bytes remain,
    end <= start, the file is shorter than ``end - start + 4``, the function is NONE, or an
    empty dependency slot has a non-zero index or version. Otherwise 1, plus one point each
    for a known platform, known function, known dep-1 and dep-2 functions, a file length of
    exactly ``end - start + 4``, and no unknown flag bits.
    """
    n = len(data)
    if offset < 0 or n - offset < ModuleInfo.SIZE:
        return 0
    (start, end, _res, flags, _ver, platform, fn, _idx, d1f, d1i, d1v, d2f, d2i, d2v) = (
        _SCORE_STRUCT.unpack_from(data, offset)
    )
    if end <= start:
        return 0
    expected = end - start + CRC_SIZE
    if n < expected:
        return 0
    if fn == ModuleFunction.NONE:
        return 0
    if d1f == ModuleFunction.NONE and (d1i != 0 or d1v != 0):
        return 0
    if d2f == ModuleFunction.NONE and (d2i != 0 or d2v != 0):
        return 0
    score = 1
    score += platform in KNOWN_PLATFORM_IDS
    score += fn in _KNOWN_FUNCTIONS
    score += d1f in _KNOWN_FUNCTIONS
    score += d2f in _KNOWN_FUNCTIONS
    score += n == expected
    score += (flags & ~_ALL_FLAGS) == 0
    return int(score)


def find_prefix_offset(data: Buffer) -> tuple[int, int]:
    """Where the reference tool finds the prefix: ``(offset, score)``.

    ``_findModulePrefixOffset`` (HalModuleParser.js:310-359): the preferred offsets in order,
    then every multiple of 4 from 4 to ``min(8192, N - 36 - 24 - 4)`` inclusive (skipping the
    preferred ones); the first score of 7 wins, otherwise the strictly highest score (ties go to
    the earliest candidate), otherwise offset 0. At most ~2050 candidates of 24 bytes each, so
    the cost does not grow with the file size.
    """
    best_off, best_score = 0, 0
    for off in PREFERRED_OFFSETS:
        s = prefix_score(data, off)
        if s >= MAX_SCORE:
            return off, s
        if s > best_score:
            best_off, best_score = off, s
    n = len(data)
    limit = min(MAX_PREFIX_OFFSET, n - SUFFIX_BASE_SIZE - ModuleInfo.SIZE - CRC_SIZE)
    if limit < 4:
        return best_off, best_score
    # Fast pre-filter (same result, ~20x faster): a candidate scores 0 unless end > start and
    # the file holds end - start + 4 bytes, so only those get the full score. Word k of the
    # window is the u32 at offset 4k.
    nwords = min(limit // 4 + 2, n // 4)
    words = array("I", bytes(memoryview(data)[: nwords * 4]))
    if sys.byteorder != "little":  # pragma: no cover - little-endian hosts
        words.byteswap()
    preferred = frozenset(PREFERRED_OFFSETS)
    last = min(limit // 4, nwords - 2)
    room = n - CRC_SIZE
    candidates = [
        (i + 1) * 4
        for i, (start, end) in enumerate(pairwise(words[1 : last + 2]))
        if start < end and end - start <= room
    ]
    for off in candidates:
        if off in preferred:
            continue
        s = prefix_score(data, off)
        if s >= MAX_SCORE:
            return off, s
        if s > best_score:
            best_off, best_score = off, s
    return best_off, best_score


@dataclass(frozen=True)
class Implausible:
    """One reason why a ``module_info_t`` candidate is not taken for a module's prefix.

    ``field`` is the module_info_t field, ``offset`` its file offset, ``detail`` what was found
    and what was expected.
    """

    field: str
    offset: int
    detail: str


def prefix_implausibility(data: Buffer, offset: int) -> list[Implausible]:
    """Why the candidate at ``offset`` is not a plausible module prefix (empty when it is).

    The reference tool takes the best-scoring candidate, however low (module-format.md 3 #3),
    so random bytes of a few MB "parse" about one time in fourteen: some u32 pair among the ~2050
    candidates has ``0 < end - start <= N - 4``. flashroom also requires (issue 12 item 5) one
    of two things that random data essentially never has:

    * the file is exactly ``end - start + 4`` bytes (the spec's well-formed file, 1 in 2**32
      per candidate; the ``unknown.bin`` fixture, platform 129, is recognised this way), or
    * the prefix describes a module on its own: a device-constants platform id
      (:data:`DEVICE_CONSTANTS_PLATFORM_IDS`, 25 of 65536), a known module function (1..9),
      known dependency functions (0..9, each about 1 in 25 for random bytes) and no unknown
      flag bit (1 in 8). This is what a module with bytes appended, a padded bootloader
      (RC4) or a combined file (whose first prefix covers only the first part) has.

    Together about 2e-12 per candidate, i.e. under 1e-8 per random file (measured: 0 of 2000).
    Addresses are not checked against a flash map: asset modules start at 0 and flashroom's
    registry maps only five platforms, so such a check would refuse real modules.
    """
    n = len(data)
    if offset < 0 or n - offset < ModuleInfo.SIZE:
        return [
            Implausible(
                "module_info_t",
                max(0, offset),
                f"file is {n} bytes; module_info_t needs {ModuleInfo.SIZE} at offset {offset}",
            )
        ]
    (start, end, _res, flags, _ver, platform, fn, _idx, d1f, _d1i, _d1v, d2f, _d2i, _d2v) = (
        _SCORE_STRUCT.unpack_from(data, offset)
    )
    if end <= start:
        return [
            Implausible(
                "module_end_address",
                offset + 4,
                f"module_end_address 0x{end:08x} is not above module_start_address 0x{start:08x}",
            )
        ]
    declared = end - start + CRC_SIZE
    if n == declared:
        return []
    out: list[Implausible] = []
    if n < declared:
        out.append(
            Implausible(
                "module_end_address",
                offset + 4,
                f"module_end_address 0x{end:08x} - module_start_address 0x{start:08x} + 4 = "
                f"{declared} bytes, but the file is {n}",
            )
        )
    if platform not in DEVICE_CONSTANTS_PLATFORM_IDS:
        known = ", ".join(str(p) for p in sorted(DEVICE_CONSTANTS_PLATFORM_IDS))
        out.append(
            Implausible(
                "platform_id",
                offset + 12,
                f"platform_id {platform} is not a known platform (expected one of {known})",
            )
        )
    if fn not in _KNOWN_FUNCTIONS or fn == ModuleFunction.NONE:
        out.append(
            Implausible(
                "module_function",
                offset + 14,
                f"module_function {fn} is not a module function (expected 1..9)",
            )
        )
    for name, at, dep in (
        ("dependency.module_function", 16, d1f),
        ("dependency2.module_function", 20, d2f),
    ):
        if dep not in _KNOWN_FUNCTIONS:
            out.append(
                Implausible(name, offset + at, f"{name} {dep} is not a module function (0..9)")
            )
    if flags & ~_ALL_FLAGS:
        out.append(
            Implausible(
                "flags",
                offset + 9,
                f"flags 0x{flags:02x} has unknown bits 0x{flags & ~_ALL_FLAGS:02x} "
                f"(expected only 0x{_ALL_FLAGS:02x})",
            )
        )
    if not out:
        return []
    # Not exactly sized *and* not self-describing: say both halves of the rule (the first
    # entry stays the field to name).
    if n > declared:
        out.append(
            Implausible(
                "module_end_address",
                offset + 4,
                f"module_end_address 0x{end:08x} - module_start_address 0x{start:08x} + 4 = "
                f"{declared} bytes, not the file's {n}",
            )
        )
    return out


def not_a_module_message(offset: int, problems: list[Implausible]) -> str:
    """The refusal text for a candidate :func:`prefix_implausibility` rejected."""
    return (
        f"not a Particle module: the best module_info_t candidate, at offset {offset} "
        f"(0x{offset:x}), is not plausible: {'; '.join(p.detail for p in problems)} "
        f"(expected a file of exactly module_end_address - module_start_address + 4 bytes, or "
        f"a known platform_id, module_function and dependency functions with no unknown flag)"
    )


@dataclass(frozen=True)
class Prefix:
    """``module_info_t`` where the reference tool found it, with its prefix extensions."""

    info: ModuleInfo
    prefix_offset: int  # file offset of module_info_t
    prefix_size: int  # 24, or the end of the prefix extension list (relative to the prefix)
    extensions: tuple[Extension, ...] | None  # None unless flag PREFIX_EXTENSIONS is set
    score: int  # the offset search's score for this offset (0..7)


NOT_A_MODULE = (
    "not a Particle module: no plausible module_info_t at any offset searched (0, 0x200, "
    "0x184, 0xc0, 0x10c, then every 4 bytes up to 8 KB: each has end <= start, an end past the "
    "file, function NONE or a malformed dependency)"
)


def read_prefix(data: Buffer) -> Prefix:
    """Find and read the prefix as ``_readPrefix`` does (module-format.md 2-3, 5.2).

    Raises:
        ModuleFormatError: fewer than 24 bytes at the chosen offset; a zero-length prefix
            extension (``Invalid extension length``); a prefix extension list that does not end
            with END.
    """
    offset, score = find_prefix_offset(data)
    if len(data) - offset < ModuleInfo.SIZE:
        raise ModuleFormatError(
            f"file is {len(data)} bytes; module_info_t needs {ModuleInfo.SIZE} at offset {offset}",
            offset=offset,
            field="module_info_t",
        )
    info = ModuleInfo.from_bytes(bytes(data[offset : offset + ModuleInfo.SIZE]))
    prefix_size = ModuleInfo.SIZE
    extensions: tuple[Extension, ...] | None = None
    if info.flags & ModuleInfoFlags.PREFIX_EXTENSIONS:
        extensions, prefix_size = _read_prefix_extensions(memoryview(data)[offset:], offset)
    return Prefix(info, offset, prefix_size, extensions, score)


def _read_prefix_extensions(r: memoryview, base: int) -> tuple[tuple[Extension, ...], int]:
    # module-format.md 5.2: walk from +24 while below len(slice) - 36 - 4; offsets are relative
    # to the prefix start (the tool parses a slice starting there).
    offs = ModuleInfo.SIZE
    out: list[Extension] = []
    while offs < len(r) - SUFFIX_BASE_SIZE - CRC_SIZE:
        ext = read_extension(r, offs, offs)
        if ext is None:
            break
        out.append(ext)
        offs += ext.length
        if len(out) > MAX_EXTENSIONS:
            raise ModuleFormatError(
                f"more than {MAX_EXTENSIONS} prefix extensions: not a module flashroom reads",
                offset=base + ext.offset,
                field="prefix_extensions",
            )
        if ext.length == 0:
            raise ModuleFormatError(
                "Invalid extension length: a prefix extension declares length 0",
                offset=base + ext.offset,
                field="prefix_extension.length",
            )
        if ext.type == ExtensionType.END:
            break
    if not out or out[-1].type != ExtensionType.END:
        raise ModuleFormatError(
            "Prefix extensions should end with END extension (flag PREFIX_EXTENSIONS is set)",
            offset=base + offs,
            field="prefix_extensions",
        )
    return tuple(out), offs


@dataclass(frozen=True)
class Suffix:
    """The suffix read backwards from the end of the file (module-format.md 4).

    ``product_id``/``product_version`` are -1 when ``suffix_size < 40`` (the tool's rule).
    """

    product_id: int
    product_version: int
    sha256: bytes
    reserved: int
    suffix_size: int
    crc_block: bytes  # the last 4 bytes, as stored (big-endian CRC)
    extensions: tuple[Extension, ...]

    @property
    def has_product_fields(self) -> bool:
        return self.suffix_size >= SUFFIX_SIZE_WITH_PRODUCT


#: A file needs this many bytes for the fixed-position suffix reads (product id at N-44).
MIN_SUFFIX_READ = 44


def read_suffix(data: Buffer) -> Suffix:
    """Read the suffix as ``_readSuffix`` does (module-format.md 4).

    Raises:
        ModuleFormatError: the file is shorter than the 44 bytes the fixed reads need, or a
            suffix extension has length 0 (``Invalid extension length``).
    """
    n = len(data)
    if n < MIN_SUFFIX_READ:
        raise ModuleFormatError(
            f"file is {n} bytes; the suffix (product id/version, reserved, sha256, size) and "
            f"CRC need the last {MIN_SUFFIX_READ}",
            offset=max(0, n - MIN_SUFFIX_READ),
            field="suffix.product_id",
        )
    crc_block = bytes(data[n - 4 : n])
    (suffix_size,) = _U16.unpack_from(data, n - 6)
    sha = bytes(data[n - 38 : n - 6])
    (reserved,) = _U16.unpack_from(data, n - 40)
    (product_version,) = _U16.unpack_from(data, n - 42)
    (product_id,) = _U16.unpack_from(data, n - 44)
    if suffix_size < SUFFIX_SIZE_WITH_PRODUCT:  # HalModuleParser.js:648-651
        product_id = product_version = -1
    extensions: tuple[Extension, ...] = ()
    if suffix_size > SUFFIX_SIZE_WITH_PRODUCT:
        extensions = parse_suffix_extensions(data, suffix_size)
    return Suffix(product_id, product_version, sha, reserved, suffix_size, crc_block, extensions)


# --- the reference tool's JSON shape (golden comparisons only) ----------------------------------

_EXT_KEYS = {
    "product_id": "productId",
    "product_version": "productVersion",
    "module_start_address": "moduleStartAddress",
    "dynalib_load_address": "dynalibLoadAddress",
    "dynalib_start_address": "dynalibStartAddress",
    "module_function": "moduleFunction",
    "module_index": "moduleIndex",
    "module_version": "moduleVersion",
    "target_id": "targetId",
    "hash_type": "hashType",
    "hash_length": "hashLength",
    "hash": "hash",
    "name": "name",
    "security_mode": "securityMode",
    "certificate": "certificate",
    "asset_type": "assetType",
}
_HEX_STRING_FIELDS = {"module_start_address", "dynalib_load_address", "dynalib_start_address"}


def reference_extension_json(ext: Extension) -> dict[str, object]:
    """One extension as binary-version-reader's CLI prints it (Buffers as hex strings)."""
    out: dict[str, object] = {
        "type": ext.type,
        "length": ext.length,
        "offset": ext.offset,
        "data": ext.data.hex(),
    }
    for k, v in ext.fields.items():
        if k in _HEX_STRING_FIELDS and isinstance(v, int):
            out[_EXT_KEYS[k]] = format(v, "x")
        elif isinstance(v, bytes):
            out[_EXT_KEYS[k]] = v.hex()
        else:
            out[_EXT_KEYS[k]] = v
    return out


def reference_prefix_json(p: Prefix) -> dict[str, object]:
    """``prefixInfo`` as the reference tool prints it: addresses as bare lower-case hex."""
    i = p.info
    out: dict[str, object] = {
        "moduleStartAddy": format(i.module_start_address, "x"),
        "moduleEndAddy": format(i.module_end_address, "x"),
        "reserved": i.reserved,
        "moduleFlags": i.flags,
        "moduleVersion": i.module_version,
        "platformID": i.platform_id,
        "moduleFunction": i.module_function,
        "moduleIndex": i.module_index,
        "depModuleFunction": i.dependency.module_function,
        "depModuleIndex": i.dependency.module_index,
        "depModuleVersion": i.dependency.module_version,
        "dep2ModuleFunction": i.dependency2.module_function,
        "dep2ModuleIndex": i.dependency2.module_index,
        "dep2ModuleVersion": i.dependency2.module_version,
        "prefixSize": p.prefix_size,
    }
    if p.extensions is not None:
        out["extensions"] = [reference_extension_json(e) for e in p.extensions]
    out["prefixOffset"] = p.prefix_offset
    return out


def reference_suffix_json(s: Suffix) -> dict[str, object]:
    """``suffixInfo`` as the reference tool prints it."""
    out: dict[str, object] = {
        "productId": s.product_id,
        "productVersion": s.product_version,
        "fwUniqueId": s.sha256.hex(),
        "reserved": s.reserved,
        "suffixSize": s.suffix_size,
        "crcBlock": s.crc_block.hex(),
    }
    if s.extensions:
        out["extensions"] = [reference_extension_json(e) for e in s.extensions]
    return out
