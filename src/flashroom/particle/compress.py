"""Compressed (flag 0x02) and combined (flag 0x04) modules in Particle's formats.

module-format.md 6.1-6.2 (moduleEncoding.js compressModule, decompressModule, combineModules,
splitCombinedModules) and spec 7.4. flashroom follows the reference tool's rules and error
conditions; modules it writes read back in the reference format. Compressed *bytes* differ
between zlib builds, so only decompressed output and headers are ever compared.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from flashroom.deviceos import PLATFORMS, Platform, gen2
from flashroom.errors import ModuleFormatError, UsageError
from flashroom.particle.build import finish_checksums
from flashroom.particle.module_info import ModuleInfo, ModuleInfoFlags
from flashroom.particle.parser import LARGEST_MODULE_SIZE, Buffer, read_prefix, read_suffix
from flashroom.particle.suffix import CRC_SIZE, SUFFIX_BASE_SIZE

#: ``COMPRESSED_MODULE_HEADER_SIZE`` (moduleEncoding.js:114).
COMPRESSED_HEADER_SIZE = 8
#: ``MAX_MODULE_SUFFIX_SIZE``: the suffix size is a u16.
MAX_SUFFIX_SIZE = 0xFFFF
#: Refuse to inflate more than this: the original of a compressed module is one module, and the
#: largest Particle module (a P2/M-SoM user part) is 1.5 MB (module-format.md 5.3). A header
#: that claims more is refused before anything is inflated, and inflating stops one byte past
#: what the header claims, so a decompression bomb never costs more than this in memory.
MAX_DECOMPRESSED_SIZE = LARGEST_MODULE_SIZE
#: Modules in one combined file. Device OS accepts at most 2 in one update (spec 7.4) and the
#: reference tool's fixture has 3; a longer chain is refused (spec-silent guard: each piece is
#: found by the full offset search, so a chain of thousands of tiny pieces would take minutes).
MAX_COMBINED_PARTS = 16

_FLAGS_OFFSET = 9  # module_info_t.flags
_END_OFFSET = 4  # module_info_t.module_end_address


@dataclass(frozen=True)
class CompressedHeader:
    """``compressed_module_header`` (spec 2.7, 7.4; module-format.md 6.1), 8 bytes."""

    header_size: int  # +0 u16: 8; readers skip extra bytes when larger
    method: int  # +2 u8: 0 = raw Deflate (the only one)
    window_bits: int  # +3 u8: 0 = default 15, else 8..15 (the zlib option the writer used)
    original_size: int  # +4 u32: size of the uncompressed data
    offset: int = 0  # file offset of the header (not encoded)

    STRUCT = struct.Struct("<HBBI")

    @classmethod
    def from_bytes(cls, data: Buffer, offset: int) -> CompressedHeader:
        """Decode the header at ``offset``.

        Raises:
            ModuleFormatError: fewer than 8 bytes remain.
        """
        if offset < 0 or len(data) - offset < COMPRESSED_HEADER_SIZE:
            raise ModuleFormatError(
                "compressed module header needs 8 bytes",
                offset=offset,
                field="compressed_module_header",
            )
        hs, method, wb, size = cls.STRUCT.unpack_from(data, offset)
        return cls(hs, method, wb, size, offset)

    def to_bytes(self) -> bytes:
        return self.STRUCT.pack(self.header_size, self.method, self.window_bits, self.original_size)

    def problem(self) -> str | None:
        """Why a reader would refuse this header (decompressModule's checks), or None."""
        if self.header_size < COMPRESSED_HEADER_SIZE:
            return f"header size {self.header_size} is below {COMPRESSED_HEADER_SIZE}"
        if self.method != 0:
            return f"unknown compression method {self.method} (expected 0, raw Deflate)"
        if self.window_bits != 0 and not 8 <= self.window_bits <= 15:
            return f"window bits {self.window_bits} outside 0 or 8..15"
        return None

    def to_json(self) -> dict[str, int]:
        return {
            "offset": self.offset,
            "header_size": self.header_size,
            "method": self.method,
            "window_bits": self.window_bits,
            "original_size": self.original_size,
        }


if CompressedHeader.STRUCT.size != COMPRESSED_HEADER_SIZE:
    raise RuntimeError("compressed_module_header struct is not 8 bytes")


def _addresses(info: ModuleInfo) -> tuple[int, int]:
    return info.module_start_address, info.module_end_address


def _check_suffix_size(size: int, n: int) -> None:
    if not SUFFIX_BASE_SIZE <= size <= MAX_SUFFIX_SIZE:
        raise ModuleFormatError(
            f"Invalid suffix size {size}: expected {SUFFIX_BASE_SIZE}..{MAX_SUFFIX_SIZE}",
            offset=n - 6,
            field="suffix.size",
        )


def _size_error(n: int, start: int, end: int, what: str = "") -> ModuleFormatError:
    return ModuleFormatError(
        f"{what}Invalid size of the module data: file is {n} bytes, module_end_address - "
        f"module_start_address + 4 is {end - start + 4} (0x{end:08x} - 0x{start:08x} + 4)",
        offset=_END_OFFSET,
        field="module_end_address",
    )


def compress_module(data: Buffer, *, level: int = 6, window_bits: int = 0) -> bytes:
    """Compress a module as ``compressModule`` does (module-format.md 6.1).

    The whole file (vector table, prefix, body, suffix, CRC) is raw-deflated, unless the module
    has DROP_MODULE_INFO, in which case only the body is. The result has the prefix at offset 0,
    the 8-byte header, the stream, the original suffix and a new CRC; end address, flags,
    SHA-256 and CRC-32 are updated.

    Args:
        data: a complete, uncompressed, uncombined module.
        level: zlib level (the tool uses Node's default, 6).
        window_bits: 0 for the default (15), else 9..15; stored in the header as given.

    Raises:
        ModuleFormatError: already compressed or combined, bad suffix size, file size not equal
            to ``end - start + 4``, DROP_MODULE_INFO with a vector table.
        UsageError: bad level or window bits.
    """
    if not 0 <= level <= 9 and level != -1:
        raise UsageError(f"zlib level {level} is outside 0..9")
    if window_bits != 0 and not 9 <= window_bits <= 15:
        raise UsageError(
            f"window bits {window_bits}: expected 0 (default 15) or 9..15 (CPython's zlib "
            "refuses 8 for raw Deflate)"
        )
    n = len(data)
    prefix = read_prefix(data)
    suffix = read_suffix(data)
    info = prefix.info
    start, end = _addresses(info)
    flags = info.flags
    if flags & ModuleInfoFlags.COMPRESSED:
        raise ModuleFormatError(
            "Module is already compressed", offset=prefix.prefix_offset + 9, field="flags"
        )
    if flags & ModuleInfoFlags.COMBINED:
        raise ModuleFormatError(
            "Can't compress a combined module: split it and compress the parts",
            offset=prefix.prefix_offset + 9,
            field="flags",
        )
    _check_suffix_size(suffix.suffix_size, n)
    data_size = end - start + CRC_SIZE
    poff = prefix.prefix_offset
    if n < poff + ModuleInfo.SIZE + suffix.suffix_size + CRC_SIZE or n != data_size:
        raise _size_error(n, start, end)
    data_offs = 0
    psize = prefix.prefix_size
    if flags & ModuleInfoFlags.DROP_MODULE_INFO:
        if poff != 0:
            raise ModuleFormatError(
                "DROP_MODULE_INFO can't be set for a module with a vector table",
                offset=poff + 9,
                field="flags",
            )
        data_offs = psize
        data_size -= psize + suffix.suffix_size + CRC_SIZE
    wbits = window_bits or 15
    comp = zlib.compressobj(level, zlib.DEFLATED, -wbits, 8)
    stream = comp.compress(memoryview(data)[data_offs : data_offs + data_size]) + comp.flush()
    out = bytearray(memoryview(data)[poff : poff + psize])
    out += CompressedHeader(COMPRESSED_HEADER_SIZE, 0, window_bits, data_size).to_bytes()
    out += stream
    out += memoryview(data)[n - suffix.suffix_size - CRC_SIZE :]
    new_end = start + psize + COMPRESSED_HEADER_SIZE + len(stream) + suffix.suffix_size
    struct.pack_into("<I", out, _END_OFFSET, new_end & 0xFFFFFFFF)
    out[_FLAGS_OFFSET] = flags | ModuleInfoFlags.COMPRESSED
    finish_checksums(out)
    return bytes(out)


def decompress_module(data: Buffer) -> bytes:
    """Decompress a module as ``decompressModule`` does (module-format.md 6.1).

    Returns the original module (for DROP_MODULE_INFO modules: prefix + body + original suffix,
    with end address, flags, SHA-256 and CRC-32 recomputed).

    Raises:
        ModuleFormatError: not compressed, combined, bad suffix size, file size not equal to
            ``end - start + 4``, bad header, corrupt stream, or a decompressed size different
            from the header's.
    """
    n = len(data)
    prefix = read_prefix(data)
    suffix = read_suffix(data)
    info = prefix.info
    start, end = _addresses(info)
    flags = info.flags
    if not flags & ModuleInfoFlags.COMPRESSED:
        raise ModuleFormatError(
            "Module is not compressed (flag 0x02 clear)",
            offset=prefix.prefix_offset + 9,
            field="flags",
        )
    if flags & ModuleInfoFlags.COMBINED:
        raise ModuleFormatError(
            "Can't decompress a combined module: split it first",
            offset=prefix.prefix_offset + 9,
            field="flags",
        )
    _check_suffix_size(suffix.suffix_size, n)
    data_size = end - start + CRC_SIZE
    psize = prefix.prefix_size
    min_size = psize + COMPRESSED_HEADER_SIZE + suffix.suffix_size + CRC_SIZE
    if n < min_size or n != data_size:
        raise _size_error(n, start, end)
    # The tool reads the header at prefixSize, i.e. assumes the prefix is at offset 0.
    hdr = CompressedHeader.from_bytes(data, psize)
    if hdr.header_size < COMPRESSED_HEADER_SIZE:
        raise ModuleFormatError(
            f"Invalid size of the compressed data header: {hdr.header_size}",
            offset=psize,
            field="compressed_module_header.size",
        )
    if hdr.header_size > COMPRESSED_HEADER_SIZE and n < min_size + hdr.header_size - 8:
        raise ModuleFormatError(
            f"Invalid size of the module data for a {hdr.header_size}-byte compressed header",
            offset=psize,
            field="compressed_module_header.size",
        )
    problem = hdr.problem()
    if problem is not None:
        field = "method" if hdr.method != 0 else "window_bits"
        raise ModuleFormatError(
            problem,
            offset=psize + (2 if field == "method" else 3),
            field=f"compressed_module_header.{field}",
        )
    if hdr.original_size > MAX_DECOMPRESSED_SIZE:
        raise ModuleFormatError(
            f"original size {hdr.original_size} is larger than any Particle module "
            f"({MAX_DECOMPRESSED_SIZE} bytes at most); refusing to inflate it",
            offset=psize + 4,
            field="compressed_module_header.original_size",
        )
    offs = psize + hdr.header_size
    # Everything from the stream start to the end of the file goes to inflate, which stops at
    # the end of the Deflate stream (module-format.md 6.1).
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(memoryview(data)[offs : offs + data_size - psize], hdr.original_size + 1)
    except zlib.error as e:
        raise ModuleFormatError(
            f"corrupt raw Deflate stream: {e}", offset=offs, field="deflate_stream"
        ) from None
    if not d.eof and len(out) <= hdr.original_size:
        raise ModuleFormatError(
            f"raw Deflate stream is truncated after {len(out)} output bytes",
            offset=offs,
            field="deflate_stream",
        )
    if len(out) != hdr.original_size:
        raise ModuleFormatError(
            f"Unexpected size of the decompressed data: got {len(out)}"
            f"{'+' if len(out) > hdr.original_size else ''}, header says {hdr.original_size}",
            offset=psize + 4,
            field="compressed_module_header.original_size",
        )
    if not flags & ModuleInfoFlags.DROP_MODULE_INFO:
        return bytes(out)
    # DROP_MODULE_INFO: rebuild prefix + body + original suffix (moduleEncoding.js:1490-1505).
    ssize = suffix.suffix_size
    rebuilt = bytearray(memoryview(data)[:psize])
    rebuilt += out
    rebuilt += memoryview(data)[n - ssize - CRC_SIZE :]
    struct.pack_into("<I", rebuilt, _END_OFFSET, (start + psize + len(out) + ssize) & 0xFFFFFFFF)
    rebuilt[_FLAGS_OFFSET] = flags & ~ModuleInfoFlags.COMPRESSED & 0xFF
    finish_checksums(rebuilt)
    return bytes(rebuilt)


def combine_modules(modules: Sequence[Buffer]) -> bytes:
    """Concatenate modules as ``combineModules`` does (module-format.md 6.2).

    Every module but the last gets flag COMBINED and fresh SHA-256/CRC-32.

    Raises:
        ModuleFormatError: a module's size is not ``end - start + 4``, or it is already
            combined.
        UsageError: no modules.
    """
    if not modules:
        raise UsageError("Modules array is empty: give at least one module to combine")
    prefixes = []
    for i, m in enumerate(modules):
        p = read_prefix(m)
        start, end = _addresses(p.info)
        if len(m) != end - start + CRC_SIZE:
            raise _size_error(len(m), start, end, f"module #{i + 1}: ")
        if p.info.flags & ModuleInfoFlags.COMBINED:
            raise ModuleFormatError(
                f"module #{i + 1} is already combined",
                offset=p.prefix_offset + 9,
                field="flags",
            )
        prefixes.append(p)
    if len(modules) == 1:
        return bytes(modules[0])
    out = bytearray()
    for i, (m, p) in enumerate(zip(modules, prefixes, strict=True)):
        piece = bytearray(m)
        if i != len(modules) - 1:
            piece[p.prefix_offset + _FLAGS_OFFSET] = p.info.flags | ModuleInfoFlags.COMBINED
            finish_checksums(piece)
        out += piece
    return bytes(out)


@dataclass(frozen=True)
class SplitPart:
    """One module cut out of a combined file: where it was, and its bytes as stored."""

    offset: int
    raw: bytes  # as stored in the combined file (COMBINED flag still set except on the last)
    prefix_offset: int
    flags: int


def walk_combined(data: Buffer) -> list[SplitPart]:
    """Cut a combined file into its stored pieces (``splitCombinedModules``' walk).

    Raises:
        ModuleFormatError: a piece runs past the end, the end address is below the start, the
            last piece still has COMBINED, or bytes are left over.
    """
    n = len(data)
    if n == 0:
        raise ModuleFormatError("Invalid size of the module data: empty", offset=0, field="file")
    view = memoryview(data)
    parts: list[SplitPart] = []
    offs = 0
    flags = 0
    while True:
        if len(parts) == MAX_COMBINED_PARTS:
            raise ModuleFormatError(
                f"Invalid module data: more than {MAX_COMBINED_PARTS} modules combined (Device "
                "OS applies at most 2 from one update)",
                offset=offs,
                field="flags",
            )
        if n - offs < ModuleInfo.SIZE + SUFFIX_BASE_SIZE:
            raise ModuleFormatError(
                f"Invalid size of the module data: {n - offs} bytes left at the start of "
                f"module #{len(parts) + 1}",
                offset=offs,
                field="module_info_t",
            )
        p = read_prefix(view[offs:])
        start, end = _addresses(p.info)
        if end < start:
            raise ModuleFormatError(
                f"Invalid module end address 0x{end:08x} below start 0x{start:08x}",
                offset=offs + p.prefix_offset + _END_OFFSET,
                field="module_end_address",
            )
        flags = p.info.flags
        size = end - start + CRC_SIZE
        if n - offs < size:
            raise ModuleFormatError(
                f"Invalid size of the module data: module #{len(parts) + 1} needs {size} bytes, "
                f"{n - offs} remain",
                offset=offs + p.prefix_offset + _END_OFFSET,
                field="module_end_address",
            )
        parts.append(SplitPart(offs, bytes(view[offs : offs + size]), p.prefix_offset, flags))
        offs += size
        if not flags & ModuleInfoFlags.COMBINED or offs >= n:
            break
    if flags & ModuleInfoFlags.COMBINED or offs < n:
        why = "the last module still has flag COMBINED" if offs >= n else f"{n - offs} bytes left"
        raise ModuleFormatError(f"Invalid module data: {why}", offset=offs, field="flags")
    return parts


def split_modules(data: Buffer) -> list[bytes]:
    """Split a combined file as ``splitCombinedModules`` does: COMBINED cleared, checksums fixed.

    Raises:
        ModuleFormatError: see :func:`walk_combined`.
    """
    out: list[bytes] = []
    for part in walk_combined(data):
        piece = bytearray(part.raw)
        if part.flags & ModuleInfoFlags.COMBINED:
            piece[part.prefix_offset + _FLAGS_OFFSET] = part.flags & ~ModuleInfoFlags.COMBINED
            finish_checksums(piece)
        out.append(bytes(piece))
    return out


def _platform_of(platform_id: int) -> Platform | None:
    return next((p for p in PLATFORMS.values() if p.platform_id == platform_id), None)


def compressed_apply_warnings(module: Buffer) -> list[str]:
    """Why the platform of a compressed ``module`` cannot apply it (empty when it can).

    Gen2 Device OS has no decompression (``HAL_PLATFORM_COMPRESSED_OTA`` is 0 and nothing reads
    the COMPRESSED flag): a device validates the file's own CRC, copies the raw Deflate bytes
    to the module's start address and runs them.
    """
    info = read_prefix(module).info
    plat = _platform_of(info.platform_id)
    if plat is None or plat.compressed_ota:
        return []
    return [
        f"{plat.name} (platform {plat.platform_id}) cannot apply a compressed module: Device OS "
        f"has no decompression there (HAL_PLATFORM_COMPRESSED_OTA is 0, "
        f"{gen2.COMPRESSED_OTA_OFF_SOURCE}, and nothing reads the "
        f"COMPRESSED flag); a device would copy the Deflate bytes to "
        f"0x{info.module_start_address:08x} and run them. Flash the uncompressed module."
    ]


def combined_apply_warnings(modules: Sequence[Buffer]) -> list[str]:
    """Why the platforms of ``modules`` cannot apply them combined (empty when they can).

    Gen2 Device OS ignores the COMBINED flag: an update validates and copies the first module
    (its own end address and CRC) and never installs the rest.
    """
    out: list[str] = []
    seen: set[int] = set()
    for m in modules:
        pid = read_prefix(m).info.platform_id
        plat = _platform_of(pid)
        if pid in seen or plat is None:
            continue
        seen.add(pid)
        if len(modules) > plat.max_combined_modules:
            if plat.max_combined_modules == 1:
                why = (
                    "Device OS there ignores the COMBINED flag (only "
                    f"{gen2.FLAGS_DEFINED_SOURCE} defines it): an "
                    "update validates and copies the first module and never installs the rest"
                )
            else:
                why = f"an update applies at most {plat.max_combined_modules} of them"
            out.append(
                f"{plat.name} (platform {pid}) cannot apply {len(modules)} combined modules: "
                f"{why}. Send the modules one by one."
            )
    return out
