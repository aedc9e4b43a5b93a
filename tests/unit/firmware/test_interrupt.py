"""Ctrl-C while real code runs (issue 12 #11): a KeyboardInterrupt from inside Unicorn's
callbacks leaves the run at once instead of being printed and dropped by ctypes.

The boots are the real v2.3.1 bootloader applying a 255 KB pending update (~65,000 flash stores,
each one a callback). No timing assertion: the thread join is a hang guard only.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("unicorn", reason="the firmware runner needs unicorn")

from flashroom.emu.device import Device
from flashroom.firmware.boot import RealBootloader, install_bootloader, load_bootloader
from flashroom.firmware.machine import FirmwareOutcome
from flashroom.firmware.peripherals import FlashInterface

K = 1024


def pending_device(fw: SimpleNamespace) -> Device:
    p = fw.pending_update(255 * K, "extended")
    dev: Device = fw.make_device(p.contents, p.regs)
    install_bootloader(dev.flash, load_bootloader(fw.BOOTLOADER_1006))
    return dev


class CountingStore:
    """Wraps ``FlashInterface.store`` (the hot flash-store callback) and counts its calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, on_call: Any = None) -> None:
        self.calls = 0
        self.after: int | None = None  # calls after ``mark()``
        original = FlashInterface.store
        counter = self

        def store(fi: FlashInterface, addr: int, size: int, value: int) -> None:
            counter.calls += 1
            if counter.after is not None:
                counter.after += 1
            if on_call is not None:
                on_call(counter.calls)
            original(fi, addr, size, value)

        # before the machine is built: the callbacks bind ``fi.store`` when they are made
        monkeypatch.setattr(FlashInterface, "store", store)

    def mark(self) -> None:
        self.after = 0


@pytest.fixture
def no_unraisable(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What ctypes would print as 'Exception ignored on calling ctypes callback function'."""
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


def test_a_keyboard_interrupt_raised_in_a_hook_ends_the_run(
    fw: Any, monkeypatch: pytest.MonkeyPatch, no_unraisable: list[Any]
) -> None:
    calls: CountingStore

    def interrupt(n: int) -> None:
        if n == 1000:
            calls.mark()
            raise KeyboardInterrupt

    calls = CountingStore(monkeypatch, interrupt)
    dev = pending_device(fw)
    rb = RealBootloader(dev.flash, dev.regs)
    with pytest.raises(KeyboardInterrupt):
        rb.boot()
    assert calls.after == 0  # no store ran after the raising one
    assert no_unraisable == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals (os.kill SIGINT)")
def test_sigint_during_a_real_boot_raises_keyboard_interrupt_out_of_the_run(
    fw: Any, monkeypatch: pytest.MonkeyPatch, no_unraisable: list[Any]
) -> None:
    """A real SIGINT, sent by another thread while the main thread is inside ``emu_start``:
    Python's handler then runs on entry to the next callback, where no ``try`` can catch it."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach Python handlers in the main thread only")
    started = threading.Event()
    sent = threading.Event()
    calls: CountingStore

    def on_call(n: int) -> None:
        if n == 1000:
            started.set()  # the sender runs once this callback returns into C

    calls = CountingStore(monkeypatch, on_call)

    def sender() -> None:
        if started.wait(timeout=120):
            calls.mark()
            os.kill(os.getpid(), signal.SIGINT)
            sent.set()

    dev = pending_device(fw)
    rb = RealBootloader(dev.flash, dev.regs)
    handler = signal.getsignal(signal.SIGINT)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            rb.boot()
    finally:
        started.set()
        t.join(timeout=120)
    assert sent.is_set()
    # the engine stops at the first callback after the signal: a few stores at most, not the
    # ~64,000 the rest of the apply makes
    assert calls.after is not None and calls.after < 100, calls.after
    assert no_unraisable == []
    assert signal.getsignal(signal.SIGINT) is handler  # the caller's handler is back


def test_a_run_outside_the_main_thread_is_unchanged(fw: Any) -> None:
    """Off the main thread no handler is installed (Python forbids it there); boots still run."""
    dev = pending_device(fw)
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(RealBootloader(dev.flash, dev.regs).boot()))
    t.start()
    t.join(timeout=300)
    assert out and out[0].outcome is FirmwareOutcome.JUMP


def test_an_ignored_sigint_is_left_alone(fw: Any) -> None:
    """Sweep workers ignore Ctrl-C (their parent handles it): a run keeps SIG_IGN in place."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        seen: list[Any] = []

        def store_hook(n: int) -> None:
            if n == 1:
                seen.append(signal.getsignal(signal.SIGINT))

        mp = pytest.MonkeyPatch()
        try:
            CountingStore(mp, store_hook)
            dev = pending_device(fw)
            res = RealBootloader(dev.flash, dev.regs).boot()
        finally:
            mp.undo()
        assert res.outcome is FirmwareOutcome.JUMP
        assert seen == [signal.SIG_IGN]
    finally:
        signal.signal(signal.SIGINT, previous)
