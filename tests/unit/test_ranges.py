from __future__ import annotations

import pytest

from flashroom.errors import UsageError
from flashroom.ranges import AddrRange, align_up, fmt_addr, fmt_size, parse_addr, parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("128K", 131072),
        ("256k", 262144),
        ("1M", 1048576),
        ("0x20000", 131072),
        ("4096", 4096),
        ("200KiB", 204800),
    ],
)
def test_parse_size_accepts_units_and_hex(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "12Q", "-5", "K", "0x"])
def test_parse_size_rejects_garbage_with_the_text_in_the_message(text: str) -> None:
    with pytest.raises(UsageError, match="invalid size"):
        parse_size(text)


def test_parse_addr_and_format_round_trip() -> None:
    assert parse_addr("0x08080000") == 0x08080000
    assert fmt_addr(0x08080000) == "0x08080000"
    with pytest.raises(UsageError):
        parse_addr("0x1_0000_0000")
    with pytest.raises(UsageError):
        parse_addr("eight")


def test_range_is_half_open() -> None:
    r = AddrRange(0x08080000, 0x080A0000)
    assert 0x08080000 in r
    assert 0x080A0000 not in r
    assert r.size == 0x20000
    assert not r.overlaps(AddrRange(0x080A0000, 0x080C0000))
    assert r.overlaps(AddrRange(0x0809FFFF, 0x080C0000))
    assert r.intersection(AddrRange(0x08090000, 0x080C0000)) == AddrRange(0x08090000, 0x080A0000)
    with pytest.raises(UsageError):
        AddrRange(2, 1)


def test_alignment_and_size_formatting() -> None:
    assert align_up(5, 4) == 8
    assert align_up(8, 4) == 8
    assert fmt_size(262144) == "256K"
    assert fmt_size(1048576) == "1M"
    assert fmt_size(1000) == "1000B"
