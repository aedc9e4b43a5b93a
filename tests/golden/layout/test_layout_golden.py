"""``layout show --format json`` against hand-checked golden files (the JSON contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def test_golden_files_exist() -> None:
    assert {"electron-stock", "electron-extended", "photon-stock", "p1-stock"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_show_json_matches_golden(cli: Any, case: str) -> None:
    platform, name = case.split("-", 1)
    res = cli(["layout", "show", "--platform", platform, "--layout", name, "--format", "json"])
    assert res.exit_code == 0
    assert res.json() == json.loads((GOLDEN / f"{case}.json").read_text())
