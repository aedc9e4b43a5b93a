"""Shared test helpers: the fixtures directory and an in-process CLI runner."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Callable
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


# --- Device OS: the shared source tree and the real build (flashroom devos) -------------------
# The real build runs once per test run: bootloader, system and the test apps of tests/data/apps
# against a patched copy of ../shared/device-os/v2.3.1, and two apps against a stock copy, cached
# in the gitignored build/devos-cache/<key> (key: source tree + flashroom's patch + apps + devos
# code + gcc version) behind a file lock, so the pytest-xdist workers build it once.

DEVOS_APPS = REPO / "tests" / "data" / "apps"
DEVOS_CACHE = REPO / "build" / "devos-cache"


def device_os_source_dir() -> Path | None:
    """``<shared>/device-os/v2.3.1`` beside the checkout (or under $FLASHROOM_SHARED)."""
    from flashroom.devos.tree import find_shared_dir

    shared = find_shared_dir(REPO)
    src = None if shared is None else shared / "device-os" / "v2.3.1"
    return src if src is not None and (src / "build" / "version.mk").is_file() else None


@pytest.fixture(scope="session")
def device_os_source() -> Path:
    """The pristine, read-only Device OS 2.3.1 tree (skips when it is not there)."""
    src = device_os_source_dir()
    if src is None:
        pytest.skip(
            "Device OS 2.3.1 tree not found at ../shared/device-os/v2.3.1 (set FLASHROOM_SHARED)"
        )
    return src


@pytest.fixture(scope="session")
def device_os_stock_fixtures(device_os_source: Path) -> Path:
    """``<shared>/fixtures/device-os``: the stock v2.3.1 Electron binaries (see its README)."""
    d = device_os_source.parent.parent / "fixtures" / "device-os"
    if not d.is_dir():
        pytest.skip(f"stock Device OS binaries not found at {d}")
    return d


@pytest.fixture(scope="session")
def devos_build(device_os_source: Path) -> Any:
    """The real build (:class:`flashroom.devos.reference.ReferenceBuild`): ``.out`` holds
    bootloader, system-part1..3 and user-part-{big200k,tiny,tiny-v2} with manifest.json;
    ``.stock_links`` the stock tree's link of big200k (fails) and tiny; ``.system_build()``
    builds more apps against the patched tree in seconds. Skips when the toolchain is missing."""
    from flashroom.devos.reference import reference_build
    from flashroom.devos.toolchain import find_toolchain
    from flashroom.errors import ToolchainError

    try:
        find_toolchain()
    except ToolchainError as e:
        pytest.skip(str(e))
    from flashroom.scenarios.story_real import DEMO_APPS, DEMO_STOCK_APPS  # the demo's list

    return reference_build(
        device_os_source,
        DEVOS_CACHE,
        apps=[DEVOS_APPS / n for n in DEMO_APPS],
        stock_apps=[DEVOS_APPS / n for n in DEMO_STOCK_APPS],
        jobs=2,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first test to use the real build waits for it (about 3 minutes on 2 cores).
    for item in items:
        if "devos_build" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(1800))


# --- the real Device OS binaries (shared/fixtures/device-os) ---------------------------------


def device_os_binaries_dir() -> Path | None:
    """$FLASHROOM_DEVICE_OS_FIXTURES, else ``shared/fixtures/device-os`` beside the checkout."""
    from flashroom.devos.tree import find_device_os_binaries

    return find_device_os_binaries(REPO)


@pytest.fixture(scope="session")
def real_binaries() -> Path:
    """The folder of real Electron binaries (bootloaders 1006/1002, system parts, Tinker)."""
    d = device_os_binaries_dir()
    if d is None:
        pytest.skip(
            "real Device OS binaries not found (shared/fixtures/device-os beside the repo, or "
            "set FLASHROOM_DEVICE_OS_FIXTURES)"
        )
    return d


def _run_on_tty(args: list[str], cwd: Path, timeout_s: float = 300) -> tuple[int, str, str]:
    """Run ``flashroom ARGS`` with stderr on a pseudo-terminal: (exit code, stdout, what the
    terminal showed). ``timeout_s`` bounds the silence between outputs and the exit."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flashroom", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout_s)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=timeout_s)
    os.close(master)
    return code, out, b"".join(chunks).decode(errors="replace")


@pytest.fixture
def run_on_tty() -> Callable[..., tuple[int, str, str]]:
    """``run_on_tty(args, cwd)``: a flashroom command with its stderr on a terminal (progress
    bars show only there)."""
    return _run_on_tty
