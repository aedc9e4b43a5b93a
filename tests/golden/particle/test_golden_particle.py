"""Differential tests against binary-version-reader's recorded output on real binaries.

Every ``X.bin`` with an ``X.bin.json`` in the fixtures directory: flashroom's fields must equal
the recorded ``parse.value`` (crc, prefixInfo, suffixInfo), including recorded failures.
Deliberate differences live in expected_differences.json beside this file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from flashroom.errors import ModuleFormatError
from flashroom.particle.compress import compress_module, decompress_module, split_modules
from flashroom.particle.module import parse_module
from flashroom.particle.parser import PREFERRED_OFFSETS, prefix_score, read_prefix


def _load(fixtures: Path, name: str) -> tuple[bytes, dict[str, Any]]:
    return (fixtures / name).read_bytes(), json.loads((fixtures / f"{name}.json").read_text())


def test_parse_fields_equal_reference_tool(fixtures: Path, module_fixture: str, rules: Any) -> None:
    data, rec = _load(fixtures, module_fixture)
    expected = rec["parse"]
    recorded_name = expected.get("value", {}).get("filename") or rec.get("file")
    if not expected["ok"]:
        with pytest.raises(ModuleFormatError) as exc:
            parse_module(data, recorded_name)
        rules.check_text(
            module_fixture, "parse.error.message", expected["error"]["message"], str(exc.value)
        )
        assert "field" in str(exc.value) and "offset" in str(exc.value)
        return
    got = parse_module(data, recorded_name).to_reference_json()
    for key in rules.compared_keys:
        assert got[key] == expected["value"][key], f"{module_fixture}: {key}"
        assert _key_order(got[key]) == _key_order(expected["value"][key]), key


def _key_order(obj: Any) -> Any:
    """Keys in order, recursively (the reference's JSON key order, module-format.md 2, 4)."""
    if isinstance(obj, dict):
        return [(k, _key_order(v)) for k, v in obj.items()]
    if isinstance(obj, list):
        return [_key_order(v) for v in obj]
    return None


def test_prefix_search_scores_equal_reference_tool(fixtures: Path, searched_fixture: str) -> None:
    data, rec = _load(fixtures, searched_fixture)
    search = rec["derived"]["prefixSearch"]
    p = read_prefix(data)
    assert p.prefix_offset == search["chosenOffset"]
    assert p.score == search["scoreAtChosenOffset"]["score"]
    for off in PREFERRED_OFFSETS:
        want = search["scoresAtPreferredOffsets"][str(off)]
        assert prefix_score(data, off) == want["score"], f"offset {off}"
        assert (prefix_score(data, off) == 7) == want["passed"]


def test_sha256_verdict_equals_reference_recomputation(fixtures: Path, sha_fixture: str) -> None:
    data, rec = _load(fixtures, sha_fixture)
    sha = rec["derived"]["sha256"]
    m = parse_module(data)
    assert m.sha256_ok == sha["ok"]
    assert m.sha256_computed.hex() == sha["recomputedByUpdateModuleSha256"]


def test_size_verdict_equals_reference(fixtures: Path, size_fixture: str) -> None:
    data, rec = _load(fixtures, size_fixture)
    size = rec["derived"]["size"]
    m = parse_module(data)
    assert m.expected_size == size["endMinusStartPlus4"]
    assert m.size_ok == size["matchesFileLength"]


def test_compress_round_trip_matches_reference_headers(
    fixtures: Path, compress_fixture: str, rules: Any
) -> None:
    module_fixture = compress_fixture
    data, rec = _load(fixtures, module_fixture)
    ref = rec["derived"]["compressRoundTrip"]
    if not ref["ok"]:
        with pytest.raises(ModuleFormatError) as exc:
            compress_module(data)
        rules.check_text(
            module_fixture,
            "derived.compressRoundTrip.error.message",
            ref["error"]["message"],
            str(exc.value),
        )
        return
    out = compress_module(data)
    m = parse_module(out)
    header = out[m.prefix_size : m.prefix_size + 8]
    assert header.hex() == ref["compressedHeaderHex"]
    base = "derived.compressRoundTrip.compressedPrefix"
    got_prefix = rules.strip(module_fixture, base, m.to_reference_json()["prefixInfo"])
    assert got_prefix == rules.strip(module_fixture, base, ref["compressedPrefix"])
    assert m.crc_ok == ref["compressedCrcOk"]
    assert m.ok
    assert (decompress_module(out) == data) == ref["decompressEqualsInput"]


def test_compressed_fixture_decompresses_to_recorded_original(
    fixtures: Path, compressed_fixture: str
) -> None:
    data, rec = _load(fixtures, compressed_fixture)
    want = rec["decompress"]
    assert want["ok"]
    out = decompress_module(data)
    assert len(out) == want["size"]
    assert hashlib.sha256(out).hexdigest() == want["sha256"]
    m = parse_module(data)
    assert m.compressed is not None
    assert m.compressed.original_size == want["size"]
    assert m.ok


def test_combined_fixture_splits_to_recorded_parts(fixtures: Path, combined_fixture: str) -> None:
    data, rec = _load(fixtures, combined_fixture)
    want = rec["split"]
    assert want["ok"]
    parts = split_modules(data)
    assert [(len(p), hashlib.sha256(p).hexdigest()) for p in parts] == [
        (w["size"], w["sha256"]) for w in want["parts"]
    ]
    m = parse_module(data)
    assert m.combined is not None and m.ok
    for part, emb in zip(m.combined, rec["embeddedParses"], strict=True):
        assert part.offset == emb["offset"]
        ref = emb["parse"]["value"]
        got = part.module.to_reference_json()
        for key in ("crc", "prefixInfo", "suffixInfo"):
            assert got[key] == ref[key]
