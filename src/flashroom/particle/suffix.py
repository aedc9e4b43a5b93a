"""Module suffix, product block and TLV extensions (spec 2.5, 2.7; module-format.md 4-5).

Byte layout at the end of a module file of length ``N`` (module-format.md 4)::

    N-4-suffix_size .. N-44   suffix extensions (only when suffix_size > 40)
    N-44  u16 product_id      (reported as -1 when suffix_size < 40)
    N-42  u16 product_version (reported as -1 when suffix_size < 40)
    N-40  u16 reserved
    N-38  32  sha256          (SHA-256 over file[0:N-38])
    N-6   u16 suffix_size     (excludes the CRC)
    N-4   u32 CRC-32, big-endian, over file[0:N-4]

Everything here is pure: bytes in, frozen dataclasses out. Parsing follows the reference tool's
rules (including its quirks) so that the golden tests agree field for field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from flashroom.errors import ModuleFormatError

Buffer = bytes | bytearray | memoryview


class ExtensionType(IntEnum):
    """``module_info_extension_type_t`` (module-format.md 5; Device OS HEAD module_info.h)."""

    END = 0x0000
    PRODUCT_DATA = 0x0001
    DYNAMIC_LOCATION = 0x0002
    DEPENDENCY = 0x0003
    HASH = 0x0010
    NAME = 0x0011
    ASSET_DEPENDENCY = 0x0012
    SECURITY_MODE = 0x0013
    ASSET_TYPE = 0x0014
    INVALID = 0xFFFF


#: ``module_info_suffix_t`` base (module_info.h:209-215): reserved u16, sha[32], size u16.
SUFFIX_BASE_SIZE = 36
#: The Gen2 build's suffix size: base + product id/version words (spec 2.5 #3).
SUFFIX_SIZE_WITH_PRODUCT = 40
CRC_SIZE = 4
#: Extensions in one suffix list (spec-silent guard, as parser.MAX_EXTENSIONS for the prefix).
MAX_SUFFIX_EXTENSIONS = 256
#: Bytes from the end of the file where the SHA-256 starts (spec 2.5: SHA over file[0:N-38]).
SHA256_FROM_END = 38


@dataclass(frozen=True)
class SuffixBase:
    """``module_info_suffix_t``: the last 36 bytes before the CRC (spec 2.5 #3)."""

    reserved: int  # +0  u16, 0 in every build
    sha256: bytes  # +2  32 bytes, SHA-256 over file[0:N-38]
    suffix_size: int  # +34 u16, size of the suffix excluding the CRC (40 on Gen2 builds)

    STRUCT = struct.Struct("<H32sH")
    SIZE = 36

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> SuffixBase:
        """Decode 36 bytes at ``offset``.

        Raises:
            ModuleFormatError: fewer than 36 bytes are available.
        """
        if offset < 0 or len(data) - offset < cls.SIZE:
            raise ModuleFormatError(
                f"module_info_suffix_t needs {cls.SIZE} bytes", offset=offset, field="suffix"
            )
        r, sha, size = cls.STRUCT.unpack_from(data, offset)
        return cls(r, bytes(sha), size)

    def to_bytes(self) -> bytes:
        return self.STRUCT.pack(self.reserved, self.sha256, self.suffix_size)


@dataclass(frozen=True)
class ProductBlock:
    """``.modinfo.product_id`` and ``.modinfo.product_version`` (spec 2.5 #2), 0xFFFF if unset."""

    product_id: int  # +0 u16
    product_version: int  # +2 u16

    STRUCT = struct.Struct("<HH")
    SIZE = 4

    def to_bytes(self) -> bytes:
        return self.STRUCT.pack(self.product_id, self.product_version)


if SuffixBase.STRUCT.size != SuffixBase.SIZE or ProductBlock.STRUCT.size != ProductBlock.SIZE:
    raise RuntimeError("suffix struct sizes are wrong")

_EXT_HEADER = struct.Struct("<HH")  # type u16, length u16 (length includes this header)
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


@dataclass(frozen=True)
class Extension:
    """One TLV extension (module-format.md 5).

    Attributes:
        type: :class:`ExtensionType` value (unknown types are kept raw).
        length: total length including the 4-byte header.
        offset: file-absolute for suffix extensions, relative to the prefix start for prefix
            extensions (the reference tool's convention, module-format.md 5).
        data: the raw ``length`` bytes, header included.
        fields: decoded type-specific fields (reference-tool names in snake_case).
    """

    type: int
    length: int
    offset: int
    data: bytes
    fields: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def to_json(self) -> dict[str, Any]:
        """flashroom's JSON shape: integers for numbers, hex for bytes."""
        out: dict[str, Any] = {
            "type": self.type,
            "type_name": _type_name(self.type),
            "length": self.length,
            "offset": self.offset,
            "data": self.data.hex(),
        }
        for k, v in self.fields.items():
            out[k] = v.hex() if isinstance(v, bytes) else v
            if k.endswith("_address") and isinstance(v, int):
                out[f"{k}_hex"] = f"0x{v:08x}"
        return out


def _type_name(t: int) -> str:
    try:
        return ExtensionType(t).name
    except ValueError:
        return "UNKNOWN"


def _need(buf: Buffer, pos: int, size: int, field_name: str, abs_offset: int) -> None:
    # The reference tool reads fields at fixed positions regardless of the declared length; at
    # the end of the buffer Node throws a RangeError. We raise a precise ModuleFormatError.
    if pos < 0 or pos + size > len(buf):
        raise ModuleFormatError(
            f"extension field {field_name} runs past the end of the data",
            offset=abs_offset,
            field=field_name,
        )


def read_extension(buf: Buffer, pos: int, report_offset: int) -> Extension | None:
    """Read one extension at ``buf[pos]`` the way ``_parseModuleExtension`` does.

    Returns None ("no extension", which ends the walk) for type 0xFFFF or when the declared
    length runs past the buffer (module-format.md 5).

    Args:
        buf: the bytes the extension lives in (whole file, or the slice from the prefix).
        pos: position of the extension header in ``buf``.
        report_offset: the offset to record (file-absolute or prefix-relative, see Extension).

    Raises:
        ModuleFormatError: the header itself does not fit, or a fixed-position field does not.
    """
    if pos < 0 or pos + _EXT_HEADER.size > len(buf):
        raise ModuleFormatError(
            "extension header runs past the end of the data", offset=report_offset, field="type"
        )
    etype, length = _EXT_HEADER.unpack_from(buf, pos)
    if etype == ExtensionType.INVALID or pos + length > len(buf):
        return None
    data = bytes(buf[pos : pos + length])
    fields: dict[str, Any] = {}
    if etype == ExtensionType.PRODUCT_DATA:
        # "XXX: only reading lower 16 bits": product id from +6, version from +8.
        _need(buf, pos + 6, 4, "product_data", report_offset)
        fields["product_id"] = _U16.unpack_from(buf, pos + 6)[0]
        fields["product_version"] = _U16.unpack_from(buf, pos + 8)[0]
    elif etype == ExtensionType.DYNAMIC_LOCATION:
        _need(buf, pos + 4, 12, "dynamic_location", report_offset)
        fields["module_start_address"] = _U32.unpack_from(buf, pos + 4)[0]
        fields["dynalib_load_address"] = _U32.unpack_from(buf, pos + 8)[0]
        fields["dynalib_start_address"] = _U32.unpack_from(buf, pos + 12)[0]
    elif etype == ExtensionType.DEPENDENCY:
        _need(buf, pos + 4, 8, "dependency", report_offset)
        fields["module_function"] = _U8.unpack_from(buf, pos + 4)[0]
        fields["module_index"] = _U8.unpack_from(buf, pos + 5)[0]
        fields["module_version"] = _U16.unpack_from(buf, pos + 6)[0]
        fields["target_id"] = _U32.unpack_from(buf, pos + 8)[0]
    elif etype == ExtensionType.HASH:
        _need(buf, pos + 4, 2, "hash", report_offset)
        fields["hash_type"] = buf[pos + 4]
        fields["hash_length"] = buf[pos + 5]
        fields["hash"] = bytes(buf[pos + 6 : pos + length])
    elif etype == ExtensionType.NAME:
        fields["name"] = bytes(buf[pos + 4 : pos + length]).decode("utf-8", "replace")
    elif etype == ExtensionType.ASSET_DEPENDENCY:
        _need(buf, pos + 4, 2, "asset_dependency", report_offset)
        hlen = buf[pos + 5]
        fields["hash_type"] = buf[pos + 4]
        fields["hash_length"] = hlen
        fields["hash"] = bytes(buf[pos + 6 : pos + 6 + hlen])
        fields["name"] = bytes(buf[pos + 6 + hlen : pos + length]).decode("utf-8", "replace")
    elif etype == ExtensionType.SECURITY_MODE:
        _need(buf, pos + 4, 1, "security_mode", report_offset)
        fields["security_mode"] = buf[pos + 4]
        cert = bytes(buf[pos + 5 : pos + length])
        if cert:
            fields["certificate"] = cert
    elif etype == ExtensionType.ASSET_TYPE:
        _need(buf, pos + 4, 1, "asset_type", report_offset)
        fields["asset_type"] = buf[pos + 4]
    return Extension(etype, length, report_offset, data, fields)


def parse_suffix_extensions(data: Buffer, suffix_size: int) -> tuple[Extension, ...]:
    """Walk the suffix extensions as ``HalModuleParser`` does (module-format.md 4).

    Start at ``N-4-suffix_size``; continue while ``0 < pos < N-40``; stop on END or a rejected
    extension; a zero-length extension raises ``Invalid extension length`` (RC2 bootloader).
    Only called when ``suffix_size > 40``.

    Raises:
        ModuleFormatError: zero-length extension, or a fixed field past the end of the file.
    """
    n = len(data)
    pos = n - CRC_SIZE - suffix_size
    out: list[Extension] = []
    limit = n - SUFFIX_SIZE_WITH_PRODUCT
    while 0 < pos < limit:
        ext = read_extension(data, pos, pos)
        if ext is None:
            break
        if ext.length == 0:
            raise ModuleFormatError(
                "Invalid extension length: a suffix extension declares length 0",
                offset=pos,
                field="suffix_extension.length",
            )
        out.append(ext)
        if len(out) > MAX_SUFFIX_EXTENSIONS:
            raise ModuleFormatError(
                f"more than {MAX_SUFFIX_EXTENSIONS} suffix extensions: not a module flashroom "
                "reads",
                offset=pos,
                field="suffix_extensions",
            )
        if ext.type == ExtensionType.END:
            break
        pos += ext.length
    return tuple(out)


def encode_extension(etype: int, body: bytes) -> bytes:
    """Encode one TLV extension: header (type, length incl. header) and body."""
    return _EXT_HEADER.pack(etype, len(body) + _EXT_HEADER.size) + body
