"""Deliver an update to an emulated device: the protocol's device end (:mod:`flashroom.ota`)
driving the device's system OTA path (:mod:`flashroom.emu`), then the reset; over UDP or
in-process. ``emu`` and ``ota`` are peers; this campaign layer is where they meet.

This is what ``flashroom emu connect`` calls. After the transfer the device is reset whenever
Device OS would reset it: after the finish whatever its result (spec 4.2 #4), after the
inactivity timeout (spec 6.5) or a mid-transfer reset; not after an aborted transfer (spec 6.4
#7: finish(0) only notifies).
When the update never started (refused by the dry run) or was aborted, the device keeps running
and the report carries its state as it stands (result ``running``); a server that never answers
raises.

The result says what the device did, in the classes of :class:`flashroom.emu.outcome.RunResult`
where they apply: ``applied`` only when the device installed the module and runs it after the
reset; ``installed_not_running`` when the system accepted it (HAL_FLASH_End returned 1) but the
device does not run it after the reset (a user part whose dependency is unmet boots safe mode,
spec 3.2); ``rejected`` when HAL_FLASH_End refused it; otherwise the device end's status
(``refused``, ``timeout``, ``aborted``, ``no_update``, ``reset``). Every report also carries
flashroom's host-side checks of the received file
(:func:`flashroom.particle.hostcheck.host_check`, the checks ``ota serve`` and ``emu badinput``
make) against the device's installed modules, so both paths say the same about the same file.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from flashroom.emu.device import Device
from flashroom.emu.outcome import OutcomeError
from flashroom.emu.verdict import Before, capture, judge
from flashroom.errors import FlashroomError
from flashroom.ota.accounting import TransferReport
from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.link import IDEAL, LinkProfile
from flashroom.ota.server import OtaServer
from flashroom.ota.server_end import ServerConfig
from flashroom.ota.simulate import simulate
from flashroom.ota.stream import OtaOffer
from flashroom.ota.transport import ConnectReport, connect_udp, parse_coap_url, serve_udp
from flashroom.particle.hostcheck import HostCheck, host_check, installed_infos
from flashroom.particle.module_info import ModuleFunction, read_module_info_at
from flashroom.progress import ProgressFn

#: ``result`` when the system accepted the module but the device does not run it after the
#: reset (the name of the class :mod:`flashroom.emu.outcome` gives it).
INSTALLED_NOT_RUNNING = "installed_not_running"

#: The ends after which Device OS resets: a finish (always, spec 4.2 #4), the inactivity
#: timeout (spec 6.5) and a reset mid-transfer. An aborted transfer (a protocol error:
#: finish(0), spec 6.4 #7) does not reset: Spark_Finish_Firmware_Update without SUCCESS only
#: notifies (system_update.cpp:406-425).
_RESETTING = {
    DeviceStatus.APPLIED,
    DeviceStatus.REJECTED,
    DeviceStatus.TIMEOUT,
    DeviceStatus.RESET,
}


@dataclass
class UpdateResult:
    """How an update ended on the device, what it cost, and how the device booted after.

    Attributes:
        result: ``applied``, ``installed_not_running``, ``rejected``, or the device end's
            status (``refused``, ``timeout``, ``aborted``, ``no_update``, ``reset``); module
            docstring.
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
        device_status: the device end's own final status (``applied`` means HAL_FLASH_End
            accepted the module).
        host_check: flashroom's host-side checks of the received file (None: nothing whole
            was received).
        dtls: the DTLS session's figures over UDP with a key (None otherwise).
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
    device_status: str = ""
    host_check: HostCheck | None = None
    dtls: dict[str, Any] | None = None

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
        out["device_status"] = self.device_status
        out["host_check"] = None if self.host_check is None else self.host_check.to_json()
        out["dtls"] = self.dtls
        return out


def _after(device: Device, status: DeviceStatus) -> dict[str, Any]:
    if status in _RESETTING:
        return device.reset().to_json()
    return device.status().to_json()  # it keeps running: no reset, no boot


def _received(dev: DeviceEnd, device: Device) -> bytes | None:
    """The file the device received, read back from its OTA region before the reset."""
    if dev.status not in (DeviceStatus.APPLIED, DeviceStatus.REJECTED) or not dev.file_length:
        return None
    length = dev.file_length
    stats = device.last_stream_stats
    if stats is not None and stats.target_size:
        length = stats.target_size  # a streamed file: the scratch holds the module it decoded to
    try:
        return device.flash.read(dev.file_address, length)
    except FlashroomError:
        return None


def _runs(device: Device, image: bytes, outcome: dict[str, Any]) -> bool:
    """Whether the device runs ``image`` after the reset (as ``Device.ota`` judges it)."""
    try:
        info = read_module_info_at(image, 0)
        in_place = device.flash.read(info.module_start_address, len(image)) == image
    except FlashroomError:
        return False
    if info.module_function == ModuleFunction.USER_PART:
        running = device.running_module()
        return (
            in_place
            and outcome.get("boot") == "application"
            and running is not None
            and running.start_address == info.module_start_address
        )
    return in_place and outcome.get("boot") in ("application", "safe_mode", "factory")


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
    dtls: dict[str, Any] | None = None,
    before: Before | None = None,
) -> UpdateResult:
    _account_stream(device, report)
    image = _received(dev, device)
    check = None
    if image is not None:
        check = host_check(image, installed_infos(device.profile.platform, device.flash.read))
    outcome = _after(device, dev.status)
    result, error = str(dev.status), dev.error
    if dev.status == DeviceStatus.APPLIED and (image is None or not _runs(device, image, outcome)):
        result = INSTALLED_NOT_RUNNING
        why = check.message if check is not None and not check.ok else "the new module"
        error = f"installed, but after the reset the device boots {outcome.get('boot')}: {why}"
    elif dev.status == DeviceStatus.REJECTED and image is not None and before is not None:
        # the classes emu ota gives (flashroom.emu.verdict): rejected only when nothing
        # outside the OTA region changed; the report says what the region holds now
        verdict, err, scratch = judge(
            device, before, image, OutcomeError(dev.error_code, error or "rejected")
        )
        result = str(verdict)
        error = None if err is None else err.message
        outcome = {**outcome, "result": result, "scratch": None if scratch is None
                   else scratch.to_json()}  # fmt: skip
    return UpdateResult(
        result=result,
        error=error,
        error_code=dev.error_code,
        report=report,
        link=link,
        fast=dev.fast,
        chunk_size=dev.chunk_size,
        crc_errors=dev.crc_errors,
        missed_requests=dev.missed_requests,
        restarts=restarts,
        outcome=outcome,
        device_status=str(dev.status),
        host_check=check,
        dtls=dtls,
    )


def _dtls_json(rep: ConnectReport) -> dict[str, Any] | None:
    if not rep.secure:
        return None
    return {
        "handshake_datagrams": rep.handshake_datagrams,
        "handshake_bytes": rep.handshake_bytes,
    }


async def update_over_udp_async(
    device: Device,
    url: str,
    *,
    link: LinkProfile = IDEAL,
    seed: int = 0,
    device_config: DeviceConfig | None = None,
    time_limit_s: float = 900.0,
    progress: ProgressFn | None = None,
    psk: tuple[bytes, bytes] | None = None,
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
        psk: ``(identity, key)`` for DTLS (None: plain CoAP, for an ``--insecure`` server).

    Raises:
        TransportError: bad URL, the socket cannot be opened, nobody answers ("no answer from
            URL after N attempts"), or the DTLS handshake fails.
    """
    host, port = parse_coap_url(url)
    cfg = device_config or DeviceConfig(platform=device.profile.platform, seed=seed)
    device.hw.last_stream = None
    before = capture(device)
    dev = DeviceEnd(device, cfg, progress)
    rep = await connect_udp(
        dev, host, port, link=link, seed=seed, time_limit_s=time_limit_s, psk=psk
    )
    return _result(dev, rep.report, link, device, 0, _dtls_json(rep), before)


def update_over_udp(
    device: Device,
    url: str,
    **kwargs: Any,
) -> UpdateResult:
    """Blocking wrapper of :func:`update_over_udp_async` (same arguments)."""
    return asyncio.run(update_over_udp_async(device, url, **kwargs))


def update_over_loopback(
    device: Device,
    image: bytes,
    *,
    link: LinkProfile = IDEAL,
    seed: int = 0,
    stream: bool = False,
) -> UpdateResult:
    """What ``ota serve --insecure [--no-stream]`` and ``emu connect --link LINK`` do, in one
    process: an :class:`~flashroom.ota.server.OtaServer` on an ephemeral loopback port serves
    ``image`` over real CoAP/UDP to ``device``, both with those commands' defaults (fast OTA,
    512-byte chunks, ACK_TIMEOUT 2 s), so that the figures are the commands' figures.

    Args:
        device: the emulated device (reset after the update, as by ``emu connect``).
        image: the module file.
        link: link emulation at the device (simulated time).
        seed: link and message-ID seed (``emu connect --seed``).
        stream: the server offers a compressed file to a device that can apply one (False:
            raw to all, ``ota serve --no-stream``); the device announces what it can, as
            ``emu connect`` does by default.

    Raises:
        TransportError: the loopback socket cannot be opened.
    """
    ack = 2.0  # RFC 7252 ACK_TIMEOUT, both commands' default
    offer = OtaOffer(image) if stream else None
    cfg = DeviceConfig(
        platform=device.profile.platform,
        seed=seed,
        tuning=CoapTuning(ack_timeout_s=ack),
        linger_s=min(5.0, 4 * ack),  # emu connect's
        begin_timeout_s=max(30 * ack, 5.0),
    )

    async def main() -> UpdateResult:
        server = OtaServer(image, ServerConfig(), seed=None, offer=offer)
        bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve_udp(server, "127.0.0.1", 0, max_sessions=1, on_bound=bound.set_result)
        )
        host, port = await bound
        try:
            return await update_over_udp_async(
                device, f"coap://{host}:{port}", link=link, seed=seed, device_config=cfg
            )
        finally:
            await task

    return asyncio.run(main())


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
    before = capture(device)

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
    return _result(out.device, out.report, link, device, out.restarts, None, before)


__all__ = [
    "INSTALLED_NOT_RUNNING",
    "CoapTuning",
    "UpdateResult",
    "update_in_process",
    "update_over_loopback",
    "update_over_udp",
    "update_over_udp_async",
]
