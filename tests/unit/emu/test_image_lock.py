"""A device image is changed by one command at a time, and a killed command leaves it whole.

Two ``emu ota`` processes on one image used to both report "applied, running" their own version
while one update was lost. Now a command that changes an image holds an exclusive lock on it from
load to save (the second fails at once, exit 2, naming the image), the lock follows the file
across the atomic replace, and a process killed at any moment leaves the image as it was before
or after the command, with no temporary file behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flashroom.atomicfile import unnamed_files_supported
from flashroom.emu.device import Device
from flashroom.emu.image import ImageLock, decode_image
from flashroom.errors import EmulatorError
from flashroom.particle.build import synthetic_user_app

K = 1024


@pytest.fixture
def image(tmp_path: Path) -> Path:
    img = tmp_path / "dev.img"
    Device.new("electron", "extended").save(img)
    return img


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_a_locked_image_is_refused_at_once_and_free_again_after_release(
    image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    first = Device.load(image)
    calls: list[int] = []
    real_flock = fcntl.flock

    def flock(fd: int, op: int) -> None:
        calls.append(op)
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(EmulatorError, match="in use by another flashroom command"):
        Device.load(image)
    # fails at once: every attempt asks for the lock without waiting for it
    assert calls and all(op & fcntl.LOCK_NB for op in calls if op & fcntl.LOCK_EX)
    monkeypatch.undo()
    first.release_image()
    Device.load(image).release_image()


def test_the_lock_follows_the_image_across_its_atomic_replace(image: Path) -> None:
    dev = Device.load(image)
    before = os.stat(image).st_ino
    dev.save(image)
    assert os.stat(image).st_ino != before  # a new file took the name
    with pytest.raises(EmulatorError, match="in use"):
        ImageLock.acquire(image)
    with pytest.raises(EmulatorError, match="in use"):
        Device(dev.profile).save(image)  # another writer is refused too
    dev.release_image()
    ImageLock.acquire(image).release()


def test_a_read_only_look_does_not_need_the_lock(image: Path) -> None:
    holder = Device.load(image)
    assert Device.load(image, lock=False).running_module() is not None
    holder.release_image()


def _flashroom(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flashroom", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _flock_held(image: Path) -> bool:
    """Whether some process holds a flock on ``image`` (read passively from /proc/locks, so
    the test never competes for the lock itself)."""
    ino = os.stat(image).st_ino
    try:
        text = Path("/proc/locks").read_text()
    except OSError:  # pragma: no cover - Linux has /proc/locks
        pytest.skip("no /proc/locks to watch the lock with")
    return any(
        "FLOCK" in line and line.split()[5].endswith(f":{ino}") for line in text.splitlines()
    )


def _wait_until_locked(image: Path, proc: subprocess.Popen[str], limit_s: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        assert proc.poll() is None, proc.communicate()
        if _flock_held(image):
            return
        time.sleep(0.02)
    raise AssertionError("the first process never locked the image")


_SLOW_CLI = """
import os, sys, time
real = os.fsync
def slow(fd):
    time.sleep(3)
    real(fd)
os.fsync = slow
from flashroom.cli.main import main
main(sys.argv[1:])
"""


def test_two_ota_processes_on_one_image_never_both_report_applied(
    image: Path, tmp_path: Path
) -> None:
    apps = []
    for v in (21, 22):
        p = tmp_path / f"app{v}.bin"
        p.write_bytes(synthetic_user_app(200 * K, version=v, seed=v))
        apps.append(p)
    # The first is the real CLI whose final fsync is slowed, so that the second surely arrives
    # while the first holds the image (between its load and its save).
    a = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, "emu", "ota", "--image", str(image), str(apps[0]),
         "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    _wait_until_locked(image, a)
    b = _flashroom("emu", "ota", "--image", str(image), str(apps[1]), "--format", "json")
    b_out, b_err = b.communicate(timeout=120)
    a_out, a_err = a.communicate(timeout=120)
    assert a.returncode == 0 and json.loads(a_out)["running"]["module_version"] == 21, a_err
    assert b.returncode == 2, (b.returncode, b_err)
    assert "in use by another flashroom command" in b_err and str(image) in b_err
    assert json.loads(b_out)["error"]["exit_code"] == 2
    running = Device.load(image, lock=False).running_module()
    assert running is not None and running.module_version == 21  # nothing lost


_SLOW_SAVE = """
import os, sys, time
from flashroom.emu.device import Device
dev = Device.load(sys.argv[1])
dev.reason = "after"
real = os.fsync
def slow(fd):
    print("saving", flush=True)
    time.sleep(60)
    real(fd)
os.fsync = slow
dev.save(sys.argv[1])
"""


def test_a_process_killed_mid_save_leaves_the_old_image_and_no_temp_file(image: Path) -> None:
    before = image.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE, str(image)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "saving"  # the new image is written, not synced
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert image.read_bytes() == before
    stray = [n for n in _files(image.parent) if n != image.name]
    if unnamed_files_supported(image.parent):
        assert stray == []
    # the next command cleans up whatever a killed writer could leave, and works
    Device.load(image).release_image()
    assert _files(image.parent) == [image.name]


def test_a_command_killed_at_any_moment_leaves_the_image_before_or_after(
    image: Path, tmp_path: Path
) -> None:
    app = tmp_path.parent / f"{tmp_path.name}-app.bin"  # outside the image's folder
    app.write_bytes(synthetic_user_app(64 * K, version=31, seed=3))
    before = image.read_bytes()
    rng = random.Random(12)
    outcomes = set()
    for _ in range(6):
        image.write_bytes(before)
        proc = _flashroom("emu", "ota", "--image", str(image), str(app))
        time.sleep(rng.uniform(0.2, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        data = image.read_bytes()
        meta, _ = decode_image(data)  # whole: the header, metadata and CRC check out
        dev = Device.load(image, lock=False)
        running = dev.running_module()
        assert running is not None
        if data == before:
            outcomes.add("before")
        else:
            assert running.module_version == 31, meta  # the update applied, nothing between
            outcomes.add("after")
        if unnamed_files_supported(image.parent):
            assert _files(image.parent) == [image.name]
    assert outcomes  # at least one kill landed; which ones is up to the scheduler


def test_saving_onto_another_file_at_the_loaded_path_locks_that_file(image: Path) -> None:
    """Whether a save may use the lock of its load is asked of the file system every time: an
    image replaced behind the device's back (another inode at the same name) is not the file
    the lock holds, even when the same question was answered before for the old one."""
    from flashroom.emu.device_image import _same_file

    dev = Device.load(image)
    assert dev._image_lock is not None
    assert _same_file(dev._image_lock, image)
    other = image.with_name("other.img")
    Device.new("electron", "stock").save(other)
    os.replace(other, image)  # a new inode takes the name; the lock still holds the old one
    assert not _same_file(dev._image_lock, image)
    dev.save(image)  # locks the new file for the write instead
    assert Device.load(image, lock=False).profile.name == "extended"
    dev.release_image()


def test_fresh_devices_are_built_once_per_kind() -> None:
    """``Device.new`` copies a cached fresh image (boot and installs run once per kind)."""
    from flashroom.emu.device import _fresh_image

    _fresh_image.cache_clear()
    Device.new("electron", "extended")
    Device.new("electron", "extended")
    info = _fresh_image.cache_info()
    assert (info.misses, info.hits) == (1, 1)
