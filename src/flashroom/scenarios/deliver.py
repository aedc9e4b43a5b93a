"""Deliver an update to an emulated device: the protocol's device end (:mod:`flashroom.ota`)
driving the device's system OTA path (:mod:`flashroom.emu`), then the reset; over UDP or
in-process. ``emu`` and ``ota`` are peers; this campaign layer is where they meet.

This is what ``flashroom emu connect`` calls. After the transfer the device is reset whenever
Device OS would reset it: after the finish whatever its result (spec 4.2 #4), after the
inactivity timeout (spec 6.5), after an aborted transfer (spec 6.4 #7) or a mid-transfer reset.
When the update never started (refused by the dry run, server unreachable) the device keeps
running and the report carries a fresh ``boot()`` outcome instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from flashroom.emu.device import Device
from flashroom.ota.accounting import TransferReport
from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.link import IDEAL, LinkProfile
from flashroom.ota.server_end import ServerConfig
from flashroom.ota.simulate import simulate
from flashroom.ota.stream import OtaOffer
from flashroom.ota.transport import connect_udp, parse_coap_url
from flashroom.progress import ProgressFn

_RESETTING = {
    DeviceStatus.APPLIED,
    DeviceStatus.REJECTED,
    DeviceStatus.TIMEOUT,
    DeviceStatus.ABORTED,
    DeviceStatus.RESET,
}


@dataclass
class UpdateResult:
    """How an update ended on the device, what it cost, and how the device booted after.

    Attributes:
        result: the device end's final status (``applied``, ``rejected``, ``refused``,
            ``timeout``, ``aborted``, ``unreachable``, ``no_update``...).
        error: why, when not applied.
        error_code: the system error (e.g. -1300) when there is one.
        report: payload/wire bytes, messages, retransmissions, link time.
        link: the link figures used.
        fast: whether fast OTA was used.
        chunk_size: chunk size the server chose.
        crc_errors: chunks whose CRC-32 did not match.
        missed_requests: ChunkMissed messages sent.
        restarts: mid-transfer restarts (in-process runs only).
        outcome: the emulator's outcome after the reset (or boot), as its ``to_json()``.
    """

    result: str
    error: str | None
    error_code: int | None
    report: TransferReport
    link: LinkProfile
    fast: bool
    chunk_size: int
    crc_errors: int
    missed_requests: int
    restarts: int
    outcome: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        """The update was applied and the device boots an application that runs (a module
        the device cannot execute, e.g. a compressed one on Gen2, is not running)."""
        return self.result == DeviceStatus.APPLIED and (
            self.outcome is None
            or (self.outcome.get("boot") == "application" and bool(self.outcome.get("running")))
        )

    def to_json(self) -> dict[str, Any]:
        """``{"result", "payload_bytes", "wire_bytes", "messages", "retransmissions",
        "link_time_s", ..., "boot", "running", "outcome"}`` (stable snake_case keys)."""
        out: dict[str, Any] = {"result": self.result, "error": self.error}
        out["error_code"] = self.error_code
        out.update(self.report.to_json())
        out["fast_ota"] = self.fast
        out["chunk_size"] = self.chunk_size
        out["crc_errors"] = self.crc_errors
        out["missed_requests"] = self.missed_requests
        out["restarts"] = self.restarts
        out["link"] = self.link.to_json()
        out["boot"] = self.outcome.get("boot") if self.outcome else None
        out["running"] = self.outcome.get("running") if self.outcome else None
        out["outcome"] = self.outcome
        return out


def _after(device: Device, status: DeviceStatus) -> dict[str, Any]:
    if status in _RESETTING:
        return device.reset().to_json()
    return device.boot().to_json()


def _account_stream(device: Device, report: TransferReport) -> None:
    """Received vs written: a streamed transfer's figures come from the device's decoder."""
    stats = device.last_stream_stats
    if stats is None:
        report.written_bytes = report.payload_bytes
        return
    report.encoding = stats.encoding or report.encoding
    report.written_bytes = stats.written


def _result(
    dev: DeviceEnd,
    report: TransferReport,
    link: LinkProfile,
    device: Device,
    restarts: int,
) -> UpdateResult:
    _account_stream(device, report)
    return UpdateResult(
        result=str(dev.status),
        error=dev.error,
        error_code=dev.error_code,
        report=report,
        link=link,
        fast=dev.fast,
        chunk_size=dev.chunk_size,
        crc_errors=dev.crc_errors,
        missed_requests=dev.missed_requests,
        restarts=restarts,
        outcome=_after(device, dev.status),
    )


async def update_over_udp_async(
    device: Device,
    url: str,
    *,
    link: LinkProfile = IDEAL,
    seed: int = 0,
    device_config: DeviceConfig | None = None,
    time_limit_s: float = 900.0,
    progress: ProgressFn | None = None,
) -> UpdateResult:
    """Connect to the server at ``url`` (``coap://HOST:PORT``), take the update, reset.

    Args:
        device: the emulated device (its OTA path receives the chunks).
        url: the server.
        link: link emulation at the device (loss, duplication, reordering; simulated time).
        seed: link and message-ID seed.
        device_config: device-end parameters (platform defaults to the device's).
        time_limit_s: real-time bound.
        progress: ``progress(done, total)`` in chunks.

    Raises:
        TransportError: bad URL or the socket cannot be opened.
    """
    host, port = parse_coap_url(url)
    cfg = device_config or DeviceConfig(platform=device.profile.platform, seed=seed)
    device.hw.last_stream = None
    dev = DeviceEnd(device, cfg, progress)
    rep = await connect_udp(dev, host, port, link=link, seed=seed, time_limit_s=time_limit_s)
    return _result(dev, rep.report, link, device, 0)


def update_over_udp(
    device: Device,
    url: str,
    **kwargs: Any,
) -> UpdateResult:
    """Blocking wrapper of :func:`update_over_udp_async` (same arguments)."""
    return asyncio.run(update_over_udp_async(device, url, **kwargs))


def update_in_process(
    device: Device,
    image: bytes,
    *,
    link: LinkProfile = IDEAL,
    seed: int = 0,
    fast: bool = True,
    chunk_size: int = 512,
    server_config: ServerConfig | None = None,
    device_config: DeviceConfig | None = None,
    progress: ProgressFn | None = None,
    offer: OtaOffer | None = None,
) -> UpdateResult:
    """Serve ``image`` to ``device`` through the in-process transport (simulated time), reset.

    Args:
        device: the emulated device.
        image: the module file.
        link: link figures.
        seed: one seed for link, server and device end.
        fast: request fast OTA (ignored when ``server_config`` is given).
        chunk_size: chunk size (ignored when ``server_config`` is given).
        server_config: full server parameters (faults...).
        device_config: device-end parameters (platform defaults to the device's).
        progress: ``progress(done, total)`` in chunks.
        offer: the server picks a delta, compressed or raw file from the device's Hello
            (ota/stream.py); ``image`` is then the raw module (``offer.module``).
    """
    scfg = server_config or ServerConfig(fast=fast, chunk_size=chunk_size)
    device.hw.last_stream = None
    dcfg = device_config or DeviceConfig(platform=device.profile.platform, seed=seed + 1)
    if dcfg.platform != device.profile.platform:
        dcfg = replace(dcfg, platform=device.profile.platform)
    resets: list[Any] = []

    def on_reset() -> None:
        resets.append(device.reset())

    out = simulate(
        image,
        device,
        server_config=scfg,
        device_config=dcfg,
        link=link,
        seed=seed,
        on_reset=on_reset,
        progress=progress,
        offer=offer,
    )
    return _result(out.device, out.report, link, device, out.restarts)


__all__ = [
    "CoapTuning",
    "UpdateResult",
    "update_in_process",
    "update_over_udp",
    "update_over_udp_async",
]
