"""The bad-input campaign: a catalogue of malformed modules and hostile OTA sessions.

The catalogue is data (:data:`CATALOGUE`, in ``scenarios/badinput_catalogue.py`` with its
builders): each :class:`BadCase` names a kind of bad input, the layer that must refuse it, the
spec section that says why, and how to make it. One generic runner
per layer plays it against a fresh device and checks two things: the input ended with a specific
error (a Device OS system error code, a CoAP response code, or the host-side check that refused
it), and the running app (and every system module) is unchanged **byte for byte**.

Layers:

* ``device``: the module is pushed through the device's whole system OTA path
  (``Device.ota``: FLASH_Begin, FLASH_Update, HAL_FLASH_End, reset, bootloader, boot). The device
  itself must refuse it (spec 3.3, 4.2).
* ``transfer``: a hostile server drives the OTA protocol's device end (``flashroom.ota``) with
  crafted datagrams: bad chunk CRCs, indices out of range, UpdateDone too early, a second
  UpdateBegin... (spec 6). Then the device resets (spec 4.2 #4: it always does) and boots.
* ``stream``: a delta or compressed file (docs/delta-ota.md) sent with the streamed store: the
  extended device's streamed OTA must refuse it while decoding, or ``HAL_FLASH_End`` after it
  (``scenarios/badinput_stream.py`` has the builders and the runner). A device without the
  capability refuses them all as an unknown store.
* ``host``: Device OS does *not* refuse these (it never verifies the SHA-256, spec 2.5 #7; it
  ignores a user part's dependencies at OTA time, spec 3.3); flashroom's host-side checks
  (``flashroom module verify``, the dependency rule of spec 3.2) refuse them before sending. The
  campaign also plays them against the device and reports honestly what the device would do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flashroom.emu.device import Device, Outcome
from flashroom.errors import FlashroomError, UsageError
from flashroom.layout import Layout, get_layout
from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.messages import (
    Chunk,
    CoapMessage,
    CoapType,
    UpdateBegin,
    UpdateDone,
    code_str,
    empty_ack,
)
from flashroom.particle.hostcheck import host_check, installed_infos
from flashroom.particle.module_info import (
    ModuleFunction,
    read_module_info_at,
)
from flashroom.progress import ProgressFn
from flashroom.scenarios import badinput_stream as bs
from flashroom.scenarios.badinput_catalogue import (
    CATALOGUE,
    BadCase,
    Ctx,
    Layer,
    Step,
    Verdict,
    base_app,
    chunk_of,
)

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CaseResult:
    """How one case ended.

    Attributes:
        verdict: ``refused`` (the layer refused it and nothing changed), ``accepted`` (nothing
            refused it), ``app_changed`` (refused or not, the running app or a system module
            changed), ``skipped`` (a dependency of the campaign is missing).
        code: the system error code (int), CoAP code (``"4.00"``) or status that ended it.
        message: the error message.
        app_unchanged: the user part, bootloader and system modules are byte-identical after.
        device: for ``host`` cases, what the device does with the same input.
    """

    name: str
    layer: str
    description: str
    spec: str
    verdict: Verdict
    code: int | str | None
    message: str
    app_unchanged: bool
    boot: str | None = None
    device: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form."""
        return {
            "name": self.name,
            "layer": self.layer,
            "description": self.description,
            "spec": self.spec,
            "verdict": self.verdict,
            "code": self.code,
            "message": self.message,
            "app_unchanged": self.app_unchanged,
            "boot": self.boot,
            "device": self.device,
        }


@dataclass
class CampaignResult:
    """The whole campaign. ``ok``: every case refused with the app unchanged."""

    platform: str
    profile: str
    cases: list[CaseResult]
    notes: list[str]

    @property
    def ok(self) -> bool:
        """No case accepted, none changed the app, except the documented hazards that
        flashroom's server is checked never to send."""
        ok = (Verdict.REFUSED, Verdict.SKIPPED, Verdict.HAZARD)
        return all(c.verdict in ok for c in self.cases)

    def to_json(self) -> dict[str, Any]:
        """The ``emu badinput --format json`` contract."""
        verdicts = [c.verdict for c in self.cases]
        return {
            "platform": self.platform,
            "profile": self.profile,
            "ok": self.ok,
            "summary": {
                "cases": len(self.cases),
                **{str(v): verdicts.count(v) for v in Verdict},
            },
            "cases": [c.to_json() for c in self.cases],
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- runner


class _Probe:
    """Fingerprints what must not change: user part region, bootloader and system modules."""

    def __init__(self, device: Device, layout: Layout):
        names = [
            r.name
            for r in layout.regions
            if r.name == "bootloader" or r.name.startswith("system_part") or r.name == "user_part"
        ]
        self.ranges = [(n, layout.region(n).start, layout.region(n).size) for n in names]
        self.device = device

    def digest(self) -> dict[str, str]:
        fl = self.device.flash
        return {
            name: hashlib.sha256(fl.read(start, size)).hexdigest()
            for name, start, size in self.ranges
        }


def _run_device(dev: Device, data: bytes) -> tuple[int | str | None, str, str | None, bool]:
    """Push ``data`` through ``Device.ota``: (code, message, boot, applied).

    An error without a Device OS code (e.g. a bus fault from a write past the end of flash)
    is reported with code ``"no_code"``: it is still a specific, refusing error.
    """
    try:
        out: Outcome = dev.ota(data)
    except FlashroomError as e:
        code = getattr(e, "code", None)
        return (code if isinstance(code, int) else type(e).__name__), str(e), None, False
    applied = out.result == "applied"
    if out.error is not None:
        code = out.error.code
        return ("no_code" if code is None else code), out.error.message, out.boot, applied
    return None, f"result {out.result}", out.boot, applied


def _host_check(ctx: Ctx, dev: Device, data: bytes) -> tuple[bool, str]:
    """flashroom's host-side verification (:func:`flashroom.particle.hostcheck.host_check`, the
    one ``ota serve`` and ``emu connect`` use): module checks plus the boot-time dependency rule
    against what the device has installed."""
    res = host_check(data, installed_infos(ctx.platform, dev.flash.read))
    return not res.ok, res.message


def _run_transfer(ctx: Ctx, dev: Device, case: BadCase, image: bytes) -> tuple[Any, str, bool]:
    """Play ``case.steps`` as a hostile server against the OTA device end; then reset.

    Returns (code, message, applied).
    """
    end = DeviceEnd(dev, DeviceConfig(platform=ctx.platform))
    now = 0.0
    mid = 0x4000
    token = b"\x42"
    codes: list[str] = []
    chunk_size = 512

    def send(msg: CoapMessage) -> None:
        nonlocal now
        now += 0.01
        for raw in end.receive(msg.encode(), now):
            reply = CoapMessage.decode(raw)
            if reply.mtype == CoapType.ACK and reply.code not in (0,):
                codes.append(code_str(reply.code))
            elif reply.mtype == CoapType.CON:
                if reply.code in (0x80,):
                    codes.append(code_str(reply.code))
                end.receive(empty_ack(reply.message_id).encode(), now)
            elif reply.mtype == CoapType.RST:
                codes.append("RST")

    def next_mid() -> int:
        nonlocal mid
        mid += 1
        return mid

    for raw in end.start(now):
        hello = CoapMessage.decode(raw)
        end.receive(empty_ack(hello.message_id).encode(), now)
    n_chunks = -(-len(image) // chunk_size)
    fast = False
    for step in case.steps:
        a = step.args
        if step.kind == "begin":
            fast = bool(a.get("fast", False))
            begin = UpdateBegin(
                1 if fast else 0,
                int(a.get("chunk_size", chunk_size)),
                int(a.get("file_length", len(image))),
                0,
                int(a.get("file_address", 0)),
            )
            send(begin.to_coap(next_mid(), token))
        elif step.kind == "chunks":
            first = int(a.get("first", 0))
            last = min(int(a.get("last", n_chunks)), n_chunks)
            bad = set(a.get("bad_crc", []))
            shift = int(a.get("index_offset", 0))
            for i in range(first, last):
                data = chunk_of(image, i)
                crc = Chunk.of(data).crc ^ (1 if i in bad else 0)
                idx = (i + shift) if fast else None
                mtype = CoapType.NON if fast else CoapType.CON
                send(Chunk(data, crc, idx).to_coap(next_mid(), token, mtype))
        elif step.kind == "chunk":
            i = int(a["index"])
            data = chunk_of(image, i)
            crc = Chunk.of(data).crc ^ int(a.get("crc_xor", 0))
            idx = a.get("index_option", i if fast else None)
            mtype = CoapType.NON if fast else CoapType.CON
            send(Chunk(data, crc, idx).to_coap(next_mid(), token, mtype))
        elif step.kind == "done":
            send(UpdateDone().to_coap(next_mid(), token))
        elif step.kind == "stale":
            current = dev.user_part_bytes()
            dev.ota(base_app(ctx, version=5, seed=80))  # the scratch keeps this copy
            dev.install(current)  # USB DFU puts the running app back (spec 3.4)
            end = DeviceEnd(dev, DeviceConfig(platform=ctx.platform))
            for raw in end.start(now):
                end.receive(empty_ack(CoapMessage.decode(raw).message_id).encode(), now)
        elif step.kind == "reset":
            # Power-cycled mid-transfer: RAM (the transfer state) is lost, no slot was recorded.
            return "reset", f"device power-cycled after {end.chunks_written} chunks", False
        else:  # pragma: no cover - catalogue error
            raise UsageError(f"unknown transfer step {step.kind!r} in case {case.name}")
    if not end.terminal:
        # The server stops talking: the inactivity timeout resets the device (spec 6.5).
        for _ in range(3):
            dl = end.deadline()
            if dl is None or end.terminal:
                break
            now = max(now, dl)
            end.poll(now)
    status = str(end.status)
    applied = end.status == DeviceStatus.APPLIED
    code: int | str | None
    if end.error_code is not None:
        code = end.error_code
    elif codes and codes[-1] != "2.04":
        code = next((c for c in reversed(codes) if c not in ("RST", "2.04")), codes[-1])
    else:
        code = status
    message = f"device end {status}: {end.error or 'no error text'}"
    if codes:
        message += f" (replies: {', '.join(dict.fromkeys(codes))})"
    return code, message, applied


def run_campaign(
    platform: str = "electron",
    profile: str = "extended",
    only: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> CampaignResult:
    """Run the catalogue (or the cases named in ``only``) against a fresh device.

    Args:
        platform: device platform.
        profile: ``stock`` or ``extended``.
        only: case names to run; None runs all.
        progress: ``progress(done, total)``.

    Raises:
        UsageError: an unknown case name.
    """
    cases = list(CATALOGUE)
    if only:
        known = {c.name for c in CATALOGUE}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise UsageError(
                f"unknown bad-input case(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        cases = [c for c in CATALOGUE if c.name in only]
    dev = Device.new(platform=platform, profile=profile)
    dev.boot()
    try:
        layout = get_layout(platform, profile)
    except FlashroomError:
        layout = get_layout(platform, "stock")
    sys2_region = layout.region_for_module(ModuleFunction.SYSTEM_PART, 2)
    head = dev.flash.read(sys2_region.start, 0x200)
    sys2 = read_module_info_at(head, 0)
    ctx = Ctx(
        platform=platform,
        platform_id=layout.platform_id,
        profile=profile,
        user_start=layout.user_part.start,
        user_max=layout.user_part.size,
        system2=sys2,
        system2_bytes=dev.flash.read(sys2_region.start, sys2.module_length + 4),
        user_app=dev.user_part_bytes(),
    )
    snap = dev.snapshot()
    probe = _Probe(dev, layout)
    before = probe.digest()
    notes: list[str] = []
    results: list[CaseResult] = []
    for i, case in enumerate(cases):
        if progress:
            progress(i, len(cases))
        dev.restore(snap)
        data = case.make(ctx)
        device_info: dict[str, Any] | None = None
        if case.layer == "host":
            refused, message = _host_check(ctx, dev, data)
            d_code, d_msg, d_boot, d_applied = _run_device(dev, data)
            d_same = probe.digest() == before
            device_info = {
                "code": d_code,
                "message": d_msg,
                "boot": d_boot,
                "applied": d_applied,
                "accepted": d_applied or not d_same,
                "app_unchanged": d_same,
            }
            verdict = Verdict.REFUSED if refused else Verdict.ACCEPTED
            results.append(
                CaseResult(
                    case.name,
                    case.layer,
                    case.description,
                    case.spec,
                    verdict,
                    "host" if refused else None,
                    message,
                    True,
                    None,
                    device_info,
                )
            )
            continue
        if case.layer == "transfer":
            code, message, applied = _run_transfer(ctx, dev, case, data)
            boot: str | None = dev.reset().boot
        elif case.layer == "stream":
            code, message, boot, applied = bs.run_stream_case(
                dev, ctx, data, [s.kind for s in case.steps]
            )
        else:
            code, message, boot, applied = _run_device(dev, data)
        same = probe.digest() == before
        if code == "skipped":
            verdict = Verdict.SKIPPED
        elif not same:
            verdict = Verdict.APP_CHANGED
        elif applied or code is None:
            verdict = Verdict.ACCEPTED  # nothing refused it with a specific error
        else:
            verdict = Verdict.REFUSED
        if case.guard is not None and verdict != Verdict.REFUSED:
            changed = [n for n, h in probe.digest().items() if h != before[n]]
            guarded = case.guard(ctx, data)
            what = f"the device took it: {', '.join(changed) or 'nothing'} changed, boot {boot}"
            if guarded is not None:
                verdict = Verdict.HAZARD
                code = "hazard"
                message = f"{what} (Device OS hazard); {guarded}. {message}"
            else:
                message = f"{what}; flashroom's server would send it. {message}"
        results.append(
            CaseResult(
                case.name,
                case.layer,
                case.description,
                case.spec,
                verdict,
                code,
                message,
                same,
                boot,
                device_info,
            )
        )
    if progress:
        progress(len(cases), len(cases))
    dev.restore(snap)
    return CampaignResult(platform, profile, results, notes)


__all__ = [
    "CATALOGUE",
    "BadCase",
    "CampaignResult",
    "CaseResult",
    "Layer",
    "Step",
    "Verdict",
    "run_campaign",
]
