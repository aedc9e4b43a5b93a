"""Golden-test helpers: fixture names for parametrisation and the expected-differences data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def _fixture_dir() -> Path:
    # Same rule as tests/conftest.py's ``fixtures`` fixture (which does the skipping); needed
    # here only to list the names at collection time.
    env = os.environ.get("FLASHROOM_FIXTURES")
    if env:
        return Path(env)
    return HERE.parents[2].parent / "shared" / "fixtures" / "particle-modules"


def _names(suffix_filter: str | None = None) -> list[str]:
    d = _fixture_dir()
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.glob("*.bin")):
        if not (d / f"{p.name}.json").is_file():
            continue
        if suffix_filter is not None:
            node: Any = json.loads((d / f"{p.name}.json").read_text())
            for part in suffix_filter.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                continue
        out.append(p.name)
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for argname, key in (
        ("module_fixture", None),
        ("compressed_fixture", "decompress"),
        ("combined_fixture", "split"),
        ("searched_fixture", "derived.prefixSearch"),
        ("sha_fixture", "derived.sha256"),
        ("size_fixture", "derived.size"),
        ("compress_fixture", "derived.compressRoundTrip"),
    ):
        if argname in metafunc.fixturenames:
            names = _names(key)
            metafunc.parametrize(
                argname,
                names
                or [
                    pytest.param(
                        None,
                        marks=pytest.mark.skip(
                            reason="no Particle module fixtures found (set FLASHROOM_FIXTURES)"
                        ),
                    )
                ],
            )


class Rules:
    """The expected differences of expected_differences.json, applied by path."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.compared_keys: list[str] = data["compared_parse_keys"]

    def rule(self, fixture: str, path: str) -> str:
        for r in self.data["rules"]:
            if r["path"] == path and r["fixture"] in ("*", fixture):
                return str(r["rule"])
        return "equal"

    def check_text(self, fixture: str, path: str, expected: str, got: str) -> None:
        rule = self.rule(fixture, path)
        if rule == "ignored":
            return
        if rule == "startswith":
            assert got.startswith(expected), f"{fixture} {path}: {got!r} !~ {expected!r}"
        else:
            assert got == expected, f"{fixture} {path}"

    def strip(self, fixture: str, base: str, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` without the keys the rules mark ignored under ``base``."""
        return {k: v for k, v in obj.items() if self.rule(fixture, f"{base}.{k}") != "ignored"}


@pytest.fixture(scope="session")
def rules() -> Rules:
    return Rules(json.loads((HERE / "expected_differences.json").read_text()))
