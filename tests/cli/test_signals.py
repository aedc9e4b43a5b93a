"""Ctrl-C and a killed parent during a multi-process sweep (issue 12 #11), with real processes.

No timing assertion: the waits are generous bounds so that a hang fails instead of blocking.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FLASHROOM = [sys.executable, "-m", "flashroom"]
SWEEP = [*FLASHROOM, "emu", "sweep", "--app-size", "256K", "--workers", "2", "--method", "replay"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status  # a zombie is dead: only its parent has not reaped it


def _start_with_workers(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    p = subprocess.Popen(
        SWEEP, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    kids: list[int] = []
    while time.monotonic() < deadline and len(kids) < 2 and p.poll() is None:
        time.sleep(0.2)
        kids = _children(p.pid)
    assert len(kids) >= 2, "the sweep never started its two workers"
    return p, kids


def test_ctrl_c_stops_the_sweep_and_its_workers_with_exit_130(tmp_path: Path) -> None:
    p, kids = _start_with_workers(tmp_path)
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith("interrupted: sweep interrupted: ")
    assert "cut points done" in lines[0] and "Traceback" not in err
    time.sleep(0.5)
    assert not [k for k in kids if _running(k)]


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    p, kids = _start_with_workers(tmp_path)
    p.kill()
    p.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(k) for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if _running(k)]
    for k in kids:  # tidy up if the check above failed
        if _running(k):
            os.kill(k, signal.SIGKILL)
