"""Detection: random bytes are "not a Particle module"; real modules with garbage are still read.

Issue 12 item 5. The reference tool's offset search takes the best-scoring candidate however low
(module-format.md 3 #3), so random files of a few MB used to "parse" (platform_id 18030,
module_function UNKNOWN); :func:`~flashroom.particle.parser.prefix_implausibility` now requires
an exactly sized file or a self-describing prefix. Seeded, so every run checks the same buffers.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from flashroom.errors import ModuleFormatError
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.module import parse_module
from flashroom.particle.parser import prefix_implausibility

PREFIX = struct.Struct("<IIBBHHBBBBHBBH")


def _random_sizes(rng: random.Random, count: int) -> list[int]:
    """Mostly small (1 B .. 4 KB, a tenth under 64 B), some medium (.. 256 KB), a few large
    (.. 4 MB)."""
    out = []
    for _ in range(count):
        r = rng.random()
        if r < 0.1:
            out.append(rng.randint(1, 64))
        elif r < 0.75:
            out.append(rng.randint(1, 4096))
        elif r < 0.95:
            out.append(rng.randint(4097, 256 * 1024))
        else:
            out.append(rng.randint(256 * 1024 + 1, 4 * 1024 * 1024))
    return out


def test_200_seeded_random_buffers_are_all_not_a_particle_module() -> None:
    rng = random.Random(20240512)
    sizes = _random_sizes(rng, 200)
    assert min(sizes) < 24 and max(sizes) > 1024 * 1024  # both ends of the range are covered
    for i, size in enumerate(sizes):
        buf = rng.randbytes(size)
        with pytest.raises(ModuleFormatError, match="not a Particle module") as exc:
            parse_module(buf, f"random{i}.bin")
        assert exc.value.field is not None and exc.value.offset is not None, (i, size)


def test_random_multi_megabyte_buffers_are_not_modules() -> None:
    # The sizes of the report (head -c 3000000 /dev/urandom: ~2 in 9 parsed before).
    rng = random.Random(3000000)
    for i in range(12):
        buf = rng.randbytes(rng.randint(2_000_000, 4_000_000))
        with pytest.raises(ModuleFormatError, match="not a Particle module"):
            parse_module(buf, f"big{i}.bin")


def test_the_refusal_names_the_field_the_address_and_what_was_expected() -> None:
    # A candidate that scores (end > start, fits the file) but describes nothing: platform
    # 18030, function 238, not exactly sized.
    buf = bytearray(600)
    buf[0:24] = PREFIX.pack(0x08000000, 0x08000100, 0, 0, 1, 18030, 238, 1, 4, 1, 1, 0, 0, 0)
    with pytest.raises(ModuleFormatError) as exc:
        parse_module(bytes(buf), "x.bin")
    msg = str(exc.value)
    assert "not a Particle module" in msg and "module_info_t" in msg
    assert "platform_id 18030 is not a known platform" in msg
    assert "module_function 238" in msg and "expected 1..9" in msg
    assert "0x08000100" in msg and "0x08000000" in msg and "260 bytes, not the file's 600" in msg
    assert exc.value.field == "platform_id" and exc.value.offset == 12


def test_short_files_are_not_a_particle_module() -> None:
    for n in (1, 5, 23):
        with pytest.raises(ModuleFormatError, match=r"not a Particle module.*module_info_t needs"):
            parse_module(b"\x01" * n)


def test_a_real_module_with_random_bytes_appended_is_still_recognised() -> None:
    rng = random.Random(7)
    app = synthetic_user_app(3000)
    base = parse_module(app)
    assert base.ok
    for extra in (1, 3, 100, 4096, 300_000):
        m = parse_module(app + rng.randbytes(extra))
        assert m.prefix_offset == base.prefix_offset and m.info == base.info, extra
        assert not m.size_ok  # the appended bytes are reported, not hidden


def test_a_valid_header_followed_by_garbage_is_recognised() -> None:
    rng = random.Random(8)
    for size in (200, 5000, 1_000_000):
        # A Photon system part header (platform 6, function 4, depends on part 1), not sized to
        # the file, over random bytes, with and without a Gen2 vector table in front.
        for at in (0, 0x184) if size > 0x184 + 24 else (0,):
            buf = bytearray(rng.randbytes(size))
            buf[at : at + 24] = PREFIX.pack(
                0x08020000, 0x08020000 + 64, 0, 0, 3, 6, 4, 2, 4, 1, 3, 0, 0, 0
            )
            m = parse_module(bytes(buf))
            assert (m.prefix_offset, m.info.platform_id, m.info.module_function) == (at, 6, 4)
            assert m.info.module_end_address - m.info.module_start_address == 64
            assert not m.ok


def test_an_exactly_sized_module_of_an_unknown_platform_is_recognised() -> None:
    # Like the unknown.bin fixture (platform 129, function 129, flag 0x80): the file length
    # equals end - start + 4, which random data matches once in 2**32 per candidate.
    n = 512
    buf = bytearray(n)
    buf[0:24] = PREFIX.pack(0x20003000, 0x20003000 + n - 4, 129, 0x80, 9, 129, 129, 99, *([0] * 6))
    assert prefix_implausibility(bytes(buf), 0) == []
    m = parse_module(bytes(buf))
    assert m.info.platform_id == 129 and m.size_ok


def test_every_fixture_prefix_is_plausible(fixtures: Path) -> None:
    from flashroom.particle.parser import find_prefix_offset

    checked = 0
    for p in sorted(fixtures.glob("*.bin")):
        data = p.read_bytes()
        if len(data) < 24:
            continue
        off, _score = find_prefix_offset(data)
        assert prefix_implausibility(data, off) == [], p.name
        checked += 1
    assert checked >= 20
