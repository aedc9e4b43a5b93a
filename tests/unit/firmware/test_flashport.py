"""The granularity contract of flashport, without the CPU: stores in, NorFlash calls out."""

from __future__ import annotations

import pytest

from flashroom.emu.flash import FlashEvent, FlashEventKind, NorFlash
from flashroom.errors import PowerCut
from flashroom.firmware.flashport import FlashCall, FlashPort, FlashRecorder, FlashRun

A = 0x08080000


class Calls:
    """A NorFlash observer keeping program and erase events."""

    def __init__(self) -> None:
        self.events: list[FlashEvent] = []

    def flash_event(self, event: FlashEvent) -> None:
        if event.kind != FlashEventKind.READ:
            self.events.append(event)

    def shape(self) -> list[tuple[str, int, int, int]]:
        return [(str(e.kind), e.addr, e.size, e.width) for e in self.events]


class Rig:
    def __init__(self, granularity: str) -> None:
        self.flash = NorFlash(granularity=granularity)  # type: ignore[arg-type]
        self.calls = Calls()
        self.flash.subscribe(self.calls)
        self.rec = FlashRecorder()
        self.port = FlashPort(self.flash, bytearray(self.flash.contents()), recorder=self.rec)
        self.fails: list[str] = []
        self.port.on_fail = self.fails.append
        self.port.begin_session()

    def view(self, addr: int, size: int) -> bytes:
        off = addr - self.flash.base
        return bytes(self.port.view[off : off + size])


def test_word_granularity_is_one_norflash_call_per_store_with_its_width() -> None:
    r = Rig("word")
    r.port.program(A, 4, 0x11223344)
    r.port.program(A + 4, 2, 0x5566)
    r.port.program(A + 6, 1, 0x77)
    assert r.calls.shape() == [
        ("program", A, 4, 4),
        ("program", A + 4, 2, 2),
        ("program", A + 6, 1, 1),
    ]
    assert r.flash.op_count == 3 and r.port.ops == 3
    assert r.flash.read(A, 7) == bytes.fromhex("44332211665577") == r.view(A, 7)


def test_chunk_granularity_buffers_a_session_run_and_hands_it_over_at_the_lock() -> None:
    r = Rig("chunk")
    r.port.program(A, 4, 0x11223344)
    r.port.program(A + 4, 2, 0x5566)
    assert r.calls.events == [] and r.flash.read(A, 4) == b"\xff" * 4
    assert r.view(A, 4) == bytes.fromhex("44332211")  # the CPU already sees the run
    r.port.end_session()
    assert r.calls.shape() == [("program", A, 6, 0)]  # one call; mixed units: ALIGNED
    assert r.flash.op_count == 1 and r.flash.read(A, 6) == bytes.fromhex("443322116655")
    assert r.rec.runs() == [FlashRun("program", A, A + 6, 1, ((0, 1),))]


def test_chunk_runs_end_at_a_gap_an_erase_and_a_new_session() -> None:
    r = Rig("chunk")
    r.port.program(A, 4, 0)
    r.port.program(A + 8, 4, 0)  # not contiguous: a new run
    r.port.erase(9)  # an erase ends the run
    r.port.program(A + 12, 4, 0)
    r.port.begin_session()  # an unlock ends it too
    r.port.program(A + 16, 4, 0)
    r.port.flush()  # the end of the emulation
    assert [(k, a, n) for k, a, n, _ in r.calls.shape()] == [
        ("program", A, 4),
        ("program", A + 8, 4),
        ("erase", 0x080A0000, 0x20000),
        ("program", A + 12, 4),
        ("program", A + 16, 4),
    ]


def test_a_cut_on_a_chunk_loses_the_whole_run() -> None:
    r = Rig("chunk")
    r.flash.arm_fault(0)
    for i in range(8):
        r.port.program(A + 4 * i, 4, 0)
    with pytest.raises(PowerCut):
        r.port.end_session()
    assert r.flash.is_blank(A, 32)


def test_a_failed_store_reports_the_failure_writes_nothing_and_is_not_counted() -> None:
    r = Rig("word")
    r.flash.arm_fault(1, kind="fail")
    assert r.port.program(A, 4, 0)
    assert not r.port.program(A + 4, 4, 0)
    assert r.fails == ["program"]
    assert r.flash.read(A + 4, 4) == b"\xff" * 4 == r.view(A + 4, 4)
    assert r.rec.failed() == [FlashCall("program", A + 4, 4, 4, 1, False)]
    assert r.port.ops == r.flash.op_count == 1 == r.rec.op_count


def test_a_failed_chunk_reverts_the_cpu_view() -> None:
    r = Rig("chunk")
    r.flash.arm_fault(0, kind="fail")
    r.port.program(A, 4, 0)
    r.port.end_session()
    assert r.fails == ["program"]
    assert r.view(A, 4) == b"\xff" * 4


def test_runs_merge_words_and_halfwords_of_one_session_and_skip_failures() -> None:
    rec = FlashRecorder()
    rec.events = [
        FlashCall("program", A, 2, 2, 1),
        FlashCall("program", A + 2, 4, 4, 1),
        FlashCall("program", A + 6, 4, 4, 1),
        FlashCall("program", A + 10, 4, 4, 1, False),  # failed: not an operation
        FlashCall("program", A + 10, 4, 4, 2),  # next session: a new run
        FlashCall("erase", 0x080A0000, 0x20000, 0, 2),
    ]
    assert rec.runs() == [
        FlashRun("program", A, A + 10, 3, ((2, 1), (4, 2))),
        FlashRun("program", A + 10, A + 14, 1, ((4, 1),)),
        FlashRun("erase", 0x080A0000, 0x080C0000, 1, ()),
    ]
    assert rec.runs()[0].describe() == "program 0x08080000-0x0808000a (1x2 + 2x4)"


def test_the_aligned_width_is_norflashs() -> None:
    from flashroom.emu import flash as emu_flash
    from flashroom.firmware import flashport

    assert flashport.ALIGNED == emu_flash.ALIGNED
