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


# --------------------------------------------------------------- Ctrl-C while real code runs
BL_1006 = "electron-bootloader@v2.3.1.bin"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (/proc/<pid>/stat fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _runs_unicorn(pid: int) -> bool:
    try:
        return "unicorn" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize(
    "workers, extra",
    [(1, []), (2, ["--compare-model"])],
    ids=["in-process", "workers-compare-model"],
)
def test_ctrl_c_while_real_code_runs_is_exit_130_with_one_line(
    tmp_path: Path, real_binaries: Path, workers: int, extra: list[str]
) -> None:
    """SIGINT while the real bootloader runs under Unicorn (in this process, or in the workers
    with the parent waiting): exit 130, one line, no traceback, no worker left behind. A
    KeyboardInterrupt raised inside a ctypes callback used to be printed and dropped."""
    pytest.importorskip("unicorn", reason="the firmware runner needs unicorn")
    cmd = [*FLASHROOM, "emu", "sweep", "--app-size", "256K", "--granularity", "chunk",
           "--workers", str(workers), "--bootloader-firmware", str(real_binaries / BL_1006),
           *extra]  # fmt: skip
    p = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    kids: list[int] = []
    deadline = time.monotonic() + 120  # hang guard, not a timing check
    if workers == 1:
        while time.monotonic() < deadline and p.poll() is None and not _runs_unicorn(p.pid):
            time.sleep(0.05)
        # unicorn loaded: spend a second of CPU in the sweep's real boots before Ctrl-C
        busy = _cpu_seconds(p.pid) + 1.0
        while time.monotonic() < deadline and p.poll() is None and _cpu_seconds(p.pid) < busy:
            time.sleep(0.05)
    else:
        while time.monotonic() < deadline and p.poll() is None and len(kids) < workers:
            time.sleep(0.2)
            kids = _children(p.pid)
        busy = sum(_cpu_seconds(k) for k in kids) + 1.0  # the workers' real boots
        while (
            time.monotonic() < deadline
            and p.poll() is None
            and (sum(_cpu_seconds(k) for k in kids) < busy)
        ):
            time.sleep(0.05)
    assert p.poll() is None, "the sweep ended before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: sweep interrupted: "), err
    assert "Traceback" not in err and "Exception ignored" not in err
    time.sleep(0.5)
    assert not [k for k in kids if _running(k)]
