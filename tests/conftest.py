"""Shared test helpers: the fixtures directory and an in-process CLI runner."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flashroom.cli.main import main

REPO = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    """The Particle module fixtures: $FLASHROOM_FIXTURES or ../shared/fixtures/particle-modules."""
    env = os.environ.get("FLASHROOM_FIXTURES")
    return Path(env) if env else REPO.parent / "shared" / "fixtures" / "particle-modules"


@pytest.fixture
def fixtures() -> Path:
    d = fixtures_dir()
    if not d.is_dir():
        pytest.skip(f"Particle module fixtures not found at {d} (set FLASHROOM_FIXTURES)")
    return d


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(args: list[str], input: str | None = None) -> CliResult:
    """Run ``flashroom ARGS`` in-process, with the real exit-code mapping of ``main``."""
    runner = CliRunner()
    with runner.isolation(input=input, env={"COLUMNS": "120"}) as (out, err, _):
        code = 0
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        stdout = out.getvalue().decode()
        stderr = err.getvalue().decode() if err is not None else ""
    return CliResult(code, stdout, stderr)


@pytest.fixture
def cli() -> Any:
    return run_cli
