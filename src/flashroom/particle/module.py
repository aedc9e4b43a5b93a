"""Parse and verify a Particle module: :func:`parse_module` and :class:`Module`.

The prefix and suffix are read with the reference tool's rules (:mod:`flashroom.particle.parser`,
module-format.md 3-5) so that every field equals binary-version-reader's; on top of that
flashroom verifies what the tool does not: SHA-256 (spec 2.5), size against the addresses
(spec 2.6), the compressed header and stream (module-format.md 6.1) and each part of a combined
file (6.2). Verification outcomes are values (:class:`Check`), never exceptions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashroom.errors import FlashroomError, ModuleFormatError
from flashroom.particle.compress import (
    CompressedHeader,
    decompress_module,
    walk_combined,
)
from flashroom.particle.crc import crc32
from flashroom.particle.module_info import ModuleFunction, ModuleInfo, ModuleInfoFlags
from flashroom.particle.parser import (
    MAX_MODULE_FILE_SIZE,
    NOT_A_MODULE,
    Buffer,
    Prefix,
    Suffix,
    find_prefix_offset,
    not_a_module_message,
    prefix_implausibility,
    read_prefix,
    read_suffix,
    reference_prefix_json,
    reference_suffix_json,
)
from flashroom.particle.suffix import CRC_SIZE, SHA256_FROM_END, Extension
from flashroom.readfile import read_input


@dataclass(frozen=True)
class Check:
    """One verification outcome: ``name`` (crc, sha256, size, compressed, combined...)."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class CombinedPart:
    """One module inside a combined file, parsed as stored (its own CRC covers the flag)."""

    offset: int
    module: Module

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"offset": self.offset, "size": len(self.module.data)}
        out.update(self.module.to_json(include_file=False))
        return out


def function_name(function: int) -> str:
    """``SYSTEM_PART`` for 4; ``UNKNOWN`` for values outside ModuleFunction."""
    try:
        return ModuleFunction(function).name
    except ValueError:
        return "UNKNOWN"


@dataclass(frozen=True)
class Module:
    """A parsed module. Fields follow the reference tool; checks are flashroom's.

    Attributes:
        info: ``module_info_t`` at ``prefix_offset``.
        prefix_offset: file offset of the prefix (reference offset search, module-format.md 3).
        prefix_size: 24, or the end of the prefix extension list.
        prefix_extensions: prefix TLVs (flag 0x10), else None.
        prefix_score: the offset search's plausibility score (7 = perfect).
        suffix: the suffix read backwards from the end of the file.
        crc_stored: the last 4 bytes as a big-endian integer.
        crc_computed: CRC-32 over everything but the last 4 bytes.
        sha256_computed: SHA-256 over ``file[0:N-38]`` (spec 2.5).
        compressed: the compressed header when flag 0x02 is set and it can be read.
        combined: the parts when flag 0x04 is set and the chain can be walked.
        data: the file bytes.
        filename: name given to :func:`parse_module`, for messages and JSON.
    """

    info: ModuleInfo
    prefix_offset: int
    prefix_size: int
    prefix_extensions: tuple[Extension, ...] | None
    prefix_score: int
    suffix: Suffix
    crc_stored: int
    crc_computed: int
    sha256_computed: bytes
    compressed: CompressedHeader | None
    combined: tuple[CombinedPart, ...] | None
    data: bytes = field(repr=False)
    filename: str | None = None
    problems: tuple[Check, ...] = ()

    @classmethod
    def from_path(cls, path: str | Path) -> Module:
        """Read ``path`` once (see :func:`read_module_file`) and parse it.

        Raises:
            ModuleFormatError: unparseable (the message names field and offset).
            InputFileError: missing, unreadable, not a regular file or too large.
        """
        return parse_module(read_module_file(path), str(path))

    # --- derived values -----------------------------------------------------------------------

    @property
    def crc_ok(self) -> bool:
        return self.crc_stored == self.crc_computed

    @property
    def sha256_ok(self) -> bool:
        return self.suffix.sha256 == self.sha256_computed

    @property
    def expected_size(self) -> int:
        """``module_end_address - module_start_address + 4`` (spec 2.6)."""
        return self.info.module_end_address - self.info.module_start_address + CRC_SIZE

    @property
    def size_ok(self) -> bool:
        return len(self.data) == self.expected_size

    @property
    def is_compressed(self) -> bool:
        return bool(self.info.flags & ModuleInfoFlags.COMPRESSED)

    @property
    def is_combined(self) -> bool:
        return bool(self.info.flags & ModuleInfoFlags.COMBINED)

    def checks(self) -> list[Check]:
        """Every check flashroom runs on this file.

        A combined file is judged by its parts (each part's CRC, SHA-256 and size) and by the
        chain: the whole-file CRC of a combined file never matches (module-format.md 6.2), so
        it is reported but not counted (spec-silent choice).
        """
        out: list[Check] = []
        n = len(self.data)
        if self.combined is not None:
            for i, part in enumerate(self.combined):
                for c in part.module.checks():
                    out.append(Check(f"part{i + 1}.{c.name}", c.ok, f"@{part.offset}: {c.detail}"))
        else:
            out.append(
                Check(
                    "crc",
                    self.crc_ok,
                    f"stored {self.crc_stored:08x}, computed {self.crc_computed:08x} over "
                    f"[0, {n - CRC_SIZE})",
                )
            )
            out.append(
                Check(
                    "sha256",
                    self.sha256_ok,
                    f"stored {self.suffix.sha256.hex()}, computed {self.sha256_computed.hex()}",
                )
            )
            out.append(
                Check(
                    "size",
                    self.size_ok,
                    f"file {n} bytes, module_end_address - module_start_address + 4 = "
                    f"{self.expected_size} (0x{self.info.module_end_address:08x} - "
                    f"0x{self.info.module_start_address:08x} + 4)",
                )
            )
        out.extend(self.problems)
        return out

    @property
    def ok(self) -> bool:
        """True when every check passes."""
        return all(c.ok for c in self.checks())

    # --- rendering ------------------------------------------------------------------------------

    def to_json(self, *, include_file: bool = True) -> dict[str, Any]:
        """flashroom's ``module inspect --format json`` object (docs/json/module-inspect.json).

        Numbers are integers; addresses and CRCs have a ``*_hex`` twin; product id and version
        are null when the suffix has no product fields (``suffix_size < 40``: the reference
        tool's -1).
        """
        i = self.info
        deps = []
        for slot, d in ((1, i.dependency), (2, i.dependency2)):
            if not d.is_none:
                deps.append(
                    {
                        "slot": slot,
                        "module_function": d.module_function,
                        "module_function_name": function_name(d.module_function),
                        "module_index": d.module_index,
                        "module_version": d.module_version,
                    }
                )
        prefix: dict[str, Any] = {
            "module_start_address": i.module_start_address,
            "module_start_address_hex": f"0x{i.module_start_address:08x}",
            "module_end_address": i.module_end_address,
            "module_end_address_hex": f"0x{i.module_end_address:08x}",
            "reserved": i.reserved,
            "module_flags": i.flags,
            "module_flag_names": _flag_names(i.flags),
            "module_version": i.module_version,
            "platform_id": i.platform_id,
            "module_function": i.module_function,
            "module_function_name": function_name(i.module_function),
            "module_index": i.module_index,
            "dependencies": deps,
            "prefix_offset": self.prefix_offset,
            "prefix_size": self.prefix_size,
            "extensions": [e.to_json() for e in self.prefix_extensions or ()],
        }
        s = self.suffix
        has_product = s.has_product_fields
        suffix: dict[str, Any] = {
            "product_id": s.product_id if has_product else None,
            "product_version": s.product_version if has_product else None,
            "sha256": s.sha256.hex(),
            "reserved": s.reserved,
            "suffix_size": s.suffix_size,
            "extensions": [e.to_json() for e in s.extensions],
        }
        out: dict[str, Any] = {}
        if include_file:
            out["file"] = self.filename
        out.update(
            {
                "size": len(self.data),
                "prefix": prefix,
                "suffix": suffix,
                "crc": {
                    "stored": self.crc_stored,
                    "stored_hex": f"0x{self.crc_stored:08x}",
                    "computed": self.crc_computed,
                    "computed_hex": f"0x{self.crc_computed:08x}",
                    "ok": self.crc_ok,
                },
                "sha256_computed": self.sha256_computed.hex(),
                "sha256_ok": self.sha256_ok,
                "size_ok": self.size_ok,
                "compressed": None if self.compressed is None else self.compressed.to_json(),
                "combined": None if self.combined is None else [p.to_json() for p in self.combined],
                "checks": [c.to_json() for c in self.checks()],
                "ok": self.ok,
            }
        )
        return out

    def to_reference_json(self) -> dict[str, Any]:
        """The reference tool's ``parse`` value shape: ``crc``, ``prefixInfo``, ``suffixInfo``.

        Hex strings and camelCase keys as binary-version-reader prints them; used by the
        golden tests, never by flashroom's own JSON (which uses integers).
        """
        return {
            "crc": {
                "ok": self.crc_ok,
                "storedCrc": f"{self.crc_stored:08x}",
                "actualCrc": f"{self.crc_computed:08x}",
            },
            "prefixInfo": reference_prefix_json(
                Prefix(
                    self.info,
                    self.prefix_offset,
                    self.prefix_size,
                    self.prefix_extensions,
                    self.prefix_score,
                )
            ),
            "suffixInfo": reference_suffix_json(self.suffix),
        }


def read_module_file(path: str | Path, *, limit: int = MAX_MODULE_FILE_SIZE) -> bytes:
    """The bytes of a module file: a regular file of at most ``limit`` bytes.

    A FIFO, a device or a directory is refused without being opened, and a file larger than
    any module (:data:`~flashroom.particle.parser.MAX_MODULE_FILE_SIZE`) without being read.

    Raises:
        InputFileError: missing, unreadable, not a regular file, or too large.
    """
    return read_input(path, limit=limit, what="a Particle module")


def _flag_names(flags: int) -> list[str]:
    names = [f.name for f in ModuleInfoFlags if f.value and flags & f.value and f.name]
    unknown = flags & ~0x1F
    if unknown:
        names.append(f"UNKNOWN_0x{unknown:02x}")
    return [n for n in names if n is not None]


def parse_module(data: Buffer, filename: str | None = None, *, _nested: bool = False) -> Module:
    """Parse one module file (or a combined file) from bytes.

    Follows the reference tool: the empty file is an error; the prefix is found by the offset
    search; the suffix is read backwards from the end of the file; a zero-length suffix or
    prefix extension is ``Invalid extension length`` (module-format.md 4-5, 7.3). A CRC or
    SHA-256 mismatch is not an error: it is a failed :class:`Check`.

    Args:
        data: the whole file.
        filename: used in messages and in JSON.

    Raises:
        ModuleFormatError: unparseable; the message names the field and the offset.
    """
    name = filename or "<data>"
    raw = bytes(data)
    n = len(raw)
    if n == 0:
        raise ModuleFormatError(f"{name} was empty!", offset=0, field="file")
    if n < ModuleInfo.SIZE:
        raise ModuleFormatError(
            f"{name}: not a Particle module: file is {n} bytes; module_info_t needs "
            f"{ModuleInfo.SIZE} at offset 0",
            offset=0,
            field="module_info_t",
        )
    offset, score = find_prefix_offset(raw)
    if score == 0:
        # The reference tool reads garbage at offset 0 then (module-format.md 3 #3); flashroom
        # says what it is (a deliberate difference: no fixture scores 0).
        raise ModuleFormatError(f"{name}: {NOT_A_MODULE}", offset=0, field="module_info_t")
    problems_found = prefix_implausibility(raw, offset)
    if problems_found:
        # The reference tool parses the best candidate however implausible; random files of a
        # few MB would "parse" (issue 12 item 5). Every fixture passes (tests/golden/particle).
        raise ModuleFormatError(
            f"{name}: {not_a_module_message(offset, problems_found)}",
            offset=problems_found[0].offset,
            field=problems_found[0].field,
        )
    prefix = read_prefix(raw)
    suffix = read_suffix(raw)
    crc_stored = int.from_bytes(raw[n - 4 :], "big") if n >= 4 else 0
    crc_computed = crc32(memoryview(raw)[: max(0, n - 4)])
    sha = hashlib.sha256(memoryview(raw)[: max(0, n - SHA256_FROM_END)]).digest()
    problems: list[Check] = []
    compressed: CompressedHeader | None = None
    combined: tuple[CombinedPart, ...] | None = None
    flags = prefix.info.flags
    if flags & ModuleInfoFlags.COMBINED and not _nested:
        try:
            parts = walk_combined(raw)
            combined = tuple(
                CombinedPart(p.offset, parse_module(p.raw, f"{name}@{p.offset}", _nested=True))
                for p in parts
            )
            problems.append(Check("combined", True, f"{len(parts)} modules, chain complete"))
        except FlashroomError as e:
            problems.append(Check("combined", False, str(e)))
    if flags & ModuleInfoFlags.COMPRESSED and combined is None:
        try:
            compressed = CompressedHeader.from_bytes(raw, prefix.prefix_size)
        except ModuleFormatError as e:
            problems.append(Check("compressed", False, str(e)))
        else:
            try:
                out = decompress_module(raw)
                problems.append(
                    Check("compressed", True, f"inflates to {len(out)} bytes as the header says")
                )
            except FlashroomError as e:
                problems.append(Check("compressed", False, str(e)))
    return Module(
        info=prefix.info,
        prefix_offset=prefix.prefix_offset,
        prefix_size=prefix.prefix_size,
        prefix_extensions=prefix.extensions,
        prefix_score=prefix.score,
        suffix=suffix,
        crc_stored=crc_stored,
        crc_computed=crc_computed,
        sha256_computed=sha,
        compressed=compressed,
        combined=combined,
        data=raw,
        filename=filename,
        problems=tuple(problems),
    )
