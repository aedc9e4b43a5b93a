"""The in-process transport: both ends in one process on a discrete-event clock.

Datagrams go through a :class:`~flashroom.ota.link.LinkModel`; nothing sleeps. The clock jumps
from event to event (a datagram's arrival, a retransmission deadline, a timeout), so a 300 s
inactivity timeout or a 20-minute 2G transfer costs milliseconds of wall time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flashroom.deviceos import get_platform
from flashroom.deviceos.ota import SystemUpdateCallbacks
from flashroom.ota.accounting import PER_DATAGRAM_OVERHEAD, Meter, TransferReport
from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.link import IDEAL, LinkModel, LinkProfile
from flashroom.ota.server import OtaServer
from flashroom.ota.server_end import ServerConfig, ServerSession
from flashroom.ota.stream import OtaOffer
from flashroom.progress import ProgressFn

DEVICE_ADDR = ("device", 1)
_TO_SERVER = 0
_TO_DEVICE = 1


@dataclass
class SimOutcome:
    """The result of one simulated update.

    Attributes:
        device: the last device end (after any restarts).
        session: the server session that served it (None if no Hello got through).
        server: the server, with one record per session.
        report: bytes, messages, retransmissions, link time.
        restarts: how many times the device restarted mid-transfer.
    """

    device: DeviceEnd
    session: ServerSession | None
    server: OtaServer
    report: TransferReport
    restarts: int

    @property
    def status(self) -> DeviceStatus:
        """The device end's final status."""
        return self.device.status


def simulate(
    image: bytes,
    target: SystemUpdateCallbacks,
    *,
    server_config: ServerConfig | None = None,
    device_config: DeviceConfig | None = None,
    link: LinkProfile = IDEAL,
    seed: int = 0,
    pace: bool = True,
    on_reset: Callable[[], Any] | None = None,
    max_restarts: int = 3,
    max_time_s: float = 7 * 24 * 3600.0,
    progress: ProgressFn | None = None,
    offer: OtaOffer | None = None,
) -> SimOutcome:
    """Run one update of ``image`` into ``target`` over ``link`` in simulated time.

    Args:
        image: the module file the server sends.
        target: the device's system OTA entry points (``SystemUpdateCallbacks``).
        server_config: server parameters (fast OTA, chunk size, faults).
        device_config: device parameters (platform, timeouts, faults).
        link: link figures; losses and delays come from a RNG seeded with ``seed``.
        seed: one seed for the link and both ends.
        pace: when the link has a bandwidth and the server config sets no pace, pace fast-OTA
            chunks at the downlink rate (a server-side rate limiter; without it the UpdateDone
            would queue behind the whole image and time out spuriously).
        on_reset: called when the device end restarts after a mid-transfer reset
            (``reset_after_chunks``); the device then says Hello again.
        max_restarts: restarts allowed before giving up.
        max_time_s: simulated-time bound.
        progress: ``progress(done, total)`` in chunks, from the device end.
        offer: let the server pick a delta, compressed or raw file per device from its Hello
            (ota/stream.py); ``image`` is then the raw module.

    Returns:
        The outcome; ``outcome.device.status`` says how it ended.
    """
    scfg = server_config or ServerConfig()
    if pace and scfg.pace_bps is None and link.bandwidth_bps > 0 and scfg.fast:
        scfg = replace(
            scfg, pace_bps=link.bandwidth_bps, per_datagram_overhead=PER_DATAGRAM_OVERHEAD
        )
    dcfg = device_config or DeviceConfig(seed=seed + 1)
    platform_id = get_platform(dcfg.platform).platform_id
    server = OtaServer(image, scfg, seed=seed + 2, platform_id=platform_id, offer=offer)
    model = LinkModel(link, seed=seed)
    meter = Meter()
    heap: list[tuple[float, int, int, bytes]] = []
    seq = 0
    devices = [DeviceEnd(target, dcfg, progress)]
    restarts = 0

    def transmit(data: bytes, now: float, *, up: bool) -> None:
        nonlocal seq
        meter.count(len(data), up=up)
        fate = model.send(now, len(data), up=up)
        meter.lost += fate.lost
        meter.duplicated += fate.duplicated
        meter.reordered += fate.reordered
        for t in fate.arrivals:
            seq += 1
            heapq.heappush(heap, (t, seq, _TO_SERVER if up else _TO_DEVICE, data))

    now = 0.0
    session: ServerSession | None = None
    for d in devices[-1].start(now):
        transmit(d, now, up=True)
    while True:
        dev = devices[-1]
        cands = [heap[0][0] if heap else None, server.deadline(), dev.deadline()]
        vals = [c for c in cands if c is not None]
        if not vals:
            break
        now = max(now, min(vals))
        if now > max_time_s:
            break
        while heap and heap[0][0] <= now:
            _, _, kind, data = heapq.heappop(heap)
            if kind == _TO_SERVER:
                for _, out in server.receive(DEVICE_ADDR, data, now):
                    transmit(out, now, up=False)
                # the server drops ended sessions after a while; keep the last one for the outcome
                session = server.sessions.get(DEVICE_ADDR, session)
            else:
                for out in dev.receive(data, now):
                    transmit(out, now, up=True)
        sdl = server.deadline()
        if sdl is not None and sdl <= now:
            for _, out in server.poll(now):
                transmit(out, now, up=False)
        ddl = dev.deadline()
        if ddl is not None and ddl <= now:
            for out in dev.poll(now):
                transmit(out, now, up=True)
        if dev.status == DeviceStatus.RESET and restarts < max_restarts:
            restarts += 1
            if on_reset is not None:
                on_reset()
            cfg = replace(dcfg, reset_after_chunks=None, seed=dcfg.seed + 7919 * restarts)
            devices.append(DeviceEnd(target, cfg, progress))
            for d in devices[-1].start(now):
                transmit(d, now, up=True)
            continue
        if dev.done_lingering(now):
            break
    dev = devices[-1]
    dev.abandon(now, f"simulated time limit of {max_time_s:g} s reached")
    end = dev.finished_at if dev.finished_at is not None else now
    if session is not None and session.finished_at is not None and dev.status == "applied":
        end = max(end, session.finished_at)
    retrans = sum(d.ep.stats.retransmissions for d in devices) + server.retransmissions
    report = TransferReport.from_meter(
        meter,
        payload_bytes=dev.bytes_written,
        link_time_s=end,
        bandwidth_bps=link.bandwidth_bps,
    )
    report.retransmissions = retrans
    if session is not None and session.choice is not None:
        report.encoding = session.choice.encoding
        report.module_bytes = len(session.choice.module)
    else:
        report.module_bytes = len(image)
    return SimOutcome(dev, session, server, report, restarts)
