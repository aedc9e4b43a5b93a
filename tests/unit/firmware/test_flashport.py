"""The granularity contract of flashport, without the CPU: stores in, NorFlash calls out."""

from __future__ import annotations

from typing import Any

import pytest

from flashroom.errors import PowerCut
from flashroom.firmware.flashport import FlashEvent, FlashPort, FlashRecorder, FlashRun

A = 0x08080000


def port(cls: Any, granularity: str) -> tuple[Any, FlashPort, FlashRecorder, list[str]]:
    flash = cls(granularity=granularity)
    view = bytearray(flash.contents())
    rec = FlashRecorder()
    p = FlashPort(flash, view, recorder=rec)
    fails: list[str] = []
    p.on_fail = fails.append
    p.begin_session()
    return flash, p, rec, fails


def test_word_granularity_is_one_norflash_call_per_store_with_its_width(width_flash: Any) -> None:
    flash, p, _, _ = port(width_flash, "word")
    p.program(A, 4, 0x11223344)
    p.program(A + 4, 2, 0x5566)
    p.program(A + 6, 1, 0x77)
    assert [(c.addr, c.size, c.width) for c in flash.calls] == [
        (A, 4, 4),
        (A + 4, 2, 2),
        (A + 6, 1, 1),
    ]
    assert flash.op_count == 3 and p.ops == 3
    assert flash.read(A, 7) == bytes.fromhex("44332211665577")
    assert p.view[A - flash.base : A - flash.base + 7] == flash.read(A, 7)


def test_chunk_granularity_buffers_a_session_run_and_hands_it_over_at_the_lock(
    width_flash: Any,
) -> None:
    flash, p, rec, _ = port(width_flash, "chunk")
    p.program(A, 4, 0x11223344)
    p.program(A + 4, 2, 0x5566)
    assert flash.calls == [] and flash.read(A, 4) == b"\xff" * 4
    assert p.view[A - flash.base : A - flash.base + 4] == bytes.fromhex("44332211")  # CPU sees it
    p.end_session()
    assert [(c.addr, c.size, c.width) for c in flash.calls] == [(A, 6, 2)]  # narrowest width
    assert flash.op_count == 1 and flash.read(A, 6) == bytes.fromhex("443322116655")
    assert rec.runs() == [FlashRun("program", A, A + 6, 1, ((2, 1),))]


def test_chunk_runs_end_at_a_gap_an_erase_and_a_new_session(width_flash: Any) -> None:
    flash, p, _, _ = port(width_flash, "chunk")
    p.program(A, 4, 0)
    p.program(A + 8, 4, 0)  # not contiguous: a new run
    p.erase(9)  # an erase ends the run
    p.program(A + 12, 4, 0)
    p.begin_session()  # an unlock ends it too
    p.program(A + 16, 4, 0)
    p.flush()  # the end of the emulation
    kinds = [(c.kind, c.addr, c.size) for c in flash.calls]
    assert kinds == [
        ("program", A, 4),
        ("program", A + 8, 4),
        ("erase", 0x080A0000, 0),
        ("program", A + 12, 4),
        ("program", A + 16, 4),
    ]


def test_a_cut_on_a_chunk_loses_the_whole_run(width_flash: Any) -> None:
    flash, p, _, _ = port(width_flash, "chunk")
    flash.arm_fault(0)
    for i in range(8):
        p.program(A + 4 * i, 4, 0)
    with pytest.raises(PowerCut):
        p.end_session()
    assert flash.is_blank(A, 32)


def test_a_failed_store_reports_the_failure_and_writes_nothing(width_flash: Any) -> None:
    flash, p, rec, fails = port(width_flash, "word")
    flash.arm_fault(1, kind="fail")
    assert p.program(A, 4, 0)
    assert not p.program(A + 4, 4, 0)
    assert fails == ["program"]
    assert flash.read(A + 4, 4) == b"\xff" * 4
    assert p.view[A + 4 - flash.base : A + 8 - flash.base] == b"\xff" * 4
    assert rec.events[-1] == FlashEvent("program", A + 4, 4, 4, 1, False)


def test_a_failed_chunk_reverts_the_cpu_view(width_flash: Any) -> None:
    flash, p, _, fails = port(width_flash, "chunk")
    flash.arm_fault(0, kind="fail")
    p.program(A, 4, 0)
    p.end_session()
    assert fails == ["program"]
    assert p.view[A - flash.base : A + 4 - flash.base] == b"\xff" * 4


def test_runs_merge_words_and_halfwords_of_one_session(width_flash: Any) -> None:
    rec = FlashRecorder()
    rec.events = [
        FlashEvent("program", A, 2, 2, 1),
        FlashEvent("program", A + 2, 4, 4, 1),
        FlashEvent("program", A + 6, 4, 4, 1),
        FlashEvent("program", A + 10, 4, 4, 2),  # next session: a new run
        FlashEvent("erase", 0x080A0000, 0x20000, 0, 2),
    ]
    assert rec.runs() == [
        FlashRun("program", A, A + 10, 3, ((2, 1), (4, 2))),
        FlashRun("program", A + 10, A + 14, 1, ((4, 1),)),
        FlashRun("erase", 0x080A0000, 0x080C0000, 1, ()),
    ]
    assert rec.runs()[0].describe() == "program 0x08080000-0x0808000a (1x2 + 2x4)"
