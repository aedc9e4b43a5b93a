"""A synthetic "next build" of an app: a small code change, relinked (for deltas and benches).

A real release-to-release change inserts or edits a little code; the linker then moves
everything after it, so pointers into the moved part (literal pools, the dynalib table, vector
entries) all change by the same amount. :func:`small_change` does that to a synthetic module
built by :func:`flashroom.particle.build.synthetic_user_app`: it inserts ``insert`` bytes of new
code-like bytes at a payload offset, adds ``insert`` to every aligned 32-bit word that points into
the module past the insertion point, bumps the version and recomputes the checksums. Relative
branches (BL) that cross the insertion are not patched: a spec-silent simplification; bsdiff
sees them as a few scattered byte differences, as it would.
"""

from __future__ import annotations

import struct

from flashroom.errors import UsageError
from flashroom.particle.build import build_module, code_like_bytes
from flashroom.particle.module_info import read_module_info_at

#: Bytes after the payload of a module without product data: product block, suffix, CRC (44),
#: plus the pad byte when the payload is odd (spec 2.5).
_TAIL = 44


def small_change(module: bytes, *, insert: int = 64, at: float = 0.5, seed: int = 0) -> bytes:
    """The next build of ``module``: ``insert`` new bytes at ``at`` (a fraction of the
    payload), relinked, version + 1.

    Only modules with ``module_info_t`` at offset 0 and no product block (user parts as
    ``synthetic_user_app`` builds them) are supported.

    Raises:
        UsageError: the module is not of that shape, or ``insert`` is odd or negative.
    """
    if insert < 0 or insert % 4:
        raise UsageError(f"insert {insert}: expected a non-negative multiple of 4 bytes")
    info = read_module_info_at(module, 0)
    if (module[0:4] != struct.pack("<I", info.module_start_address)) or len(module) < 24 + _TAIL:
        raise UsageError("small_change needs a module with module_info_t at offset 0")
    start = info.module_start_address
    payload = bytearray(module[24 : len(module) - _TAIL])
    if len(payload) % 2 == 1:  # pragma: no cover - synthetic payloads are even
        raise UsageError("odd payload")
    cut = (int(len(payload) * at) // 4) * 4
    old_end = start + len(module)
    moved_from = start + 24 + cut
    for off in range(0, len(payload) - 3, 4):
        (word,) = struct.unpack_from("<I", payload, off)
        if moved_from <= (word & ~1) < old_end:
            struct.pack_into("<I", payload, off, (word + insert) & 0xFFFFFFFF)
    new_code = code_like_bytes(insert, seed + 1_000, start + 24 + cut)
    body = bytes(payload[:cut]) + new_code + bytes(payload[cut:])
    return build_module(
        body,
        platform_id=info.platform_id,
        function=info.module_function,
        index=info.module_index,
        version=(info.module_version + 1) & 0xFFFF,
        start_address=start,
        dependency=None if info.dependency.is_none else info.dependency,
        dependency2=None if info.dependency2.is_none else info.dependency2,
        vector_table=False,
    )


__all__ = ["small_change"]
