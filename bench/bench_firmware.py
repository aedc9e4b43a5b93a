"""Real-firmware benchmarks (issue 10 part 4): the real v2.3.1 bootloader in Unicorn vs the model.

Measured in this run, on the same device state (a 256 KB user part pending on the extended
profile, made by flashroom's model OTA path):

* real-bootloader apply time / model apply time, at word and at chunk granularity;
* Python callbacks per boot, by kind, and per word copied (what bounds the real run);
* the NorFlash share of a word-granularity boot (word boot - chunk boot: the ~69 K
  ``NorFlash.program`` calls the word contract makes);
* two floors: the instructions alone (a tight loop without callbacks) and one hooked register
  store alone, to show which one bounds a boot;
* the cost of a fresh machine and of snapshot/restore, in boots;
* the real OTA receive path (200 KB, 400 chunks, function level) / the model's.

Times are CPU seconds of this process (``time.process_time``: the runs are single-threaded),
so other load on the machine does not skew the ratios.

Needs the real binaries (``shared/fixtures/device-os`` above the repo or
``$FLASHROOM_DEVICE_OS_FIXTURES``); without them the benchmark reports that and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KiB = 1024
APP = 256 * KiB
REPEAT = 3


def _row(
    metric: str, value: Any, unit: str = "", target: str = "", note: str = ""
) -> dict[str, Any]:
    return {"metric": metric, "value": value, "unit": unit, "target": target, "note": note}


def _fixtures() -> Path | None:
    from flashroom.devos.tree import find_device_os_binaries

    return find_device_os_binaries(Path(__file__))


def _best(fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(REPEAT):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def run() -> dict[str, Any]:
    d = _fixtures()
    if d is None:
        return {"rows": [_row("skipped: no Device OS binaries", 0, note="see module docstring")]}

    from flashroom.emu.bootloader import Bootloader
    from flashroom.emu.device import Device
    from flashroom.emu.flash import NorFlash
    from flashroom.emu.sysflags import BackupRegisters
    from flashroom.firmware.boot import RealBootloader, install_bootloader, load_bootloader
    from flashroom.firmware.machine import FirmwareOutcome
    from flashroom.particle.build import synthetic_user_app

    bl = load_bootloader(d / "electron-bootloader@v2.3.1.bin")
    dev = Device.new(platform="electron", profile="extended")
    app = synthetic_user_app(APP, platform="electron", seed=2)
    dev.ota_begin(len(app), 512, 0)
    for off in range(0, len(app), 512):
        dev.ota_write(off, app[off : off + 512])
    if dev.ota_finish() != 1:
        raise RuntimeError("the model refused the 256 KB update")
    install_bootloader(dev.flash, bl)
    contents, regs = dev.flash.contents(), tuple(dev.regs.regs)

    def fresh(granularity: str) -> tuple[NorFlash, BackupRegisters]:
        f = NorFlash(granularity=granularity)  # type: ignore[arg-type]
        f.load_contents(contents)
        return f, BackupRegisters(list(regs))

    def model(granularity: str) -> Callable[[], Any]:
        def go() -> Any:
            f, r = fresh(granularity)
            hw = Device(dev.profile, flash=f, regs=r).hw
            t0 = time.process_time()
            kind = Bootloader(hw).run().kind
            return time.process_time() - t0, kind

        return go

    def real(granularity: str) -> Callable[[], Any]:
        def go() -> Any:
            f, r = fresh(granularity)
            rb = RealBootloader(f, r)
            t0 = time.process_time()
            res = rb.boot()
            dt = time.process_time() - t0
            if res.outcome is not FirmwareOutcome.JUMP or f.read(0x08080000, len(app)) != app:
                raise RuntimeError(f"the real bootloader did not apply the update: {res}")
            return dt, res, rb.machine.callback_counts()

        return go

    rows: list[dict[str, Any]] = []
    times: dict[str, float] = {}
    for g in ("word", "chunk"):
        m = min(model(g)()[0] for _ in range(REPEAT))
        runs = [real(g)() for _ in range(REPEAT)]
        r = min(x[0] for x in runs)
        res, counts = runs[0][1], runs[0][2]
        times[g] = r
        rows.append(
            _row(
                f"real 1006 apply / model apply, 256K, {g} granularity",
                round(r / m, 1),
                "x",
                note=f"real {r:.3f} s, model {m * 1000:.1f} ms; {res.flash_ops} flash ops",
            )
        )
        rows.append(
            _row(
                f"  Python callbacks per boot ({g})",
                res.callbacks,
                "calls",
                note=", ".join(f"{k} {v}" for k, v in counts.items()),
            )
        )
    words = APP // 4
    res_chunk = real("chunk")()
    rows.append(
        _row(
            "  callbacks per word copied",
            round(res_chunk[1].callbacks / words, 2),
            "calls",
            note="FLASH_CR writes (PG/PSIZE set, PG clear), the program store, CRC_DR words; "
            "no register read is ever hooked",
        )
    )
    rows.append(
        _row(
            "  CPU time per callback (chunk boot / callbacks)",
            round(times["chunk"] / res_chunk[1].callbacks * 1e6, 2),
            "us",
            note="everything included; compare the two floors below",
        )
    )
    rows.extend(_floor_rows(times["chunk"], res_chunk[1].callbacks))
    rows.append(
        _row(
            "  NorFlash share of a word-granularity boot",
            round((times["word"] - times["chunk"]) / times["word"], 2),
            "fraction",
            note="one NorFlash.program call per store (the word contract) vs one per run",
        )
    )

    # machine set-up and snapshots, in units of one (chunk) boot
    f, r = fresh("chunk")
    setup, _ = _best(lambda: RealBootloader(f, r))
    rb = RealBootloader(f, r)
    snap_s, snap = _best(rb.snapshot)
    restore_s, _ = _best(lambda: rb.restore(snap))
    rows.append(
        _row(
            "fresh machine / one boot",
            round(setup / times["chunk"], 3),
            "x",
            note=f"{setup * 1000:.1f} ms; snapshot {snap_s * 1000:.1f} ms, "
            f"restore {restore_s * 1000:.2f} ms",
        )
    )
    rows.extend(_ota_rows(d))
    return {"name": "bench_firmware", "rows": rows}


#: Thumb code for the floors, run from SRAM with Machine.call(code, (count, address)):
#: loop: ldr r3,[r1]; adds r3,#1; subs r0,#1; bne loop; bx lr  (4 instructions per turn)
_LOAD_LOOP = bytes.fromhex("0b6801330138fbd17047")
#: loop: str r2,[r1]; subs r0,#1; bne loop; bx lr  (one hooked register store per turn)
_STORE_LOOP = bytes.fromhex("0a600138fcd17047")


def _floor_rows(boot_s: float, callbacks: int) -> list[dict[str, Any]]:
    """What a boot would cost without callbacks, and what one callback costs alone."""
    from flashroom.emu.flash import NorFlash
    from flashroom.firmware.machine import Machine

    m = Machine(NorFlash())
    load, store = 0x20001000, 0x20002000
    turns = 1_000_000
    m.write(load, _LOAD_LOOP)
    m.write(store, _STORE_LOOP)
    t_exec, _ = _best(lambda: m.call(load, (turns, 0x20000000), budget=10 * turns))
    t_cb, _ = _best(lambda: m.call(store, (turns, 0x40023C10), budget=10 * turns))  # FLASH_CR
    per_insn = t_exec / (4 * turns)
    per_cb = (t_cb - per_insn * 3 * turns) / turns
    return [
        _row(
            "  instruction floor: 7.0 M instructions (one apply) without callbacks",
            round(7.0e6 * per_insn / boot_s, 3),
            "boots",
            note=f"{1 / per_insn / 1e6:.0f} M instructions/s (tight loop from SRAM)",
        ),
        _row(
            "  callback floor: one hooked register store, alone",
            round(per_cb * 1e6, 2),
            "us",
            note=f"{callbacks} of them = {callbacks * per_cb / boot_s:.2f} boots: "
            "ctypes round trip, Unicorn's PC sync, the FLASH_CR body",
        ),
    ]


def _ota_rows(d: Path) -> list[dict[str, Any]]:
    from flashroom.emu.device import Device
    from flashroom.firmware.ota import RealSystemOta, SystemParts
    from flashroom.particle.build import synthetic_user_app

    app = synthetic_user_app(200 * KiB, platform="electron", seed=3)
    parts = SystemParts.from_folder(d)

    def model() -> float:
        dev = Device.new(platform="electron", profile="stock")
        t0 = time.process_time()
        dev.ota_begin(len(app), 512, 0)
        for off in range(0, len(app), 512):
            dev.ota_write(off, app[off : off + 512])
        dev.ota_finish()
        return time.process_time() - t0

    def real() -> tuple[float, int]:
        dev = Device.new(platform="electron", profile="stock")
        ota = RealSystemOta(dev.flash, dev.regs, parts)
        t0 = time.process_time()
        ota.prepare(len(app), 512, 0, 0, 0)
        for off in range(0, len(app), 512):
            ota.save_chunk(0x080C0000 + off, app[off : off + 512])
        rc = ota.finish(1)
        return time.process_time() - t0, rc

    m = min(model() for _ in range(REPEAT))
    runs = [real() for _ in range(REPEAT)]
    r = min(x[0] for x in runs)
    return [
        _row(
            "real OTA receive+finish (200K, 400 chunks) / model",
            round(r / m, 1),
            "x",
            note=f"real {r:.3f} s (finish rc {runs[0][1]}), model {m * 1000:.1f} ms",
        )
    ]


if __name__ == "__main__":
    for row in run()["rows"]:
        print(row)
