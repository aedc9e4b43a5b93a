"""``flashroom ota serve`` and ``flashroom emu connect``: Particle OTA over real CoAP/UDP.

Thin shells: parse options, call :mod:`flashroom.ota`, render. ``connect`` is attached to the
``emu`` group by ``cli/main.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flashroom.cli.common import CheckFailed, emit_json, format_option, progress_bar, stdout_console
from flashroom.cli.params import FiniteFloatRange
from flashroom.errors import UsageError
from flashroom.ota.link import PRESETS
from flashroom.ranges import fmt_size

_DEFAULT_BIND = "127.0.0.1:5683"


# =========================================================================== ota serve
@click.group()
def ota() -> None:
    """Serve updates over CoAP/UDP as the Particle cloud does (spec 6).

    \b
    Example (two terminals):
      flashroom ota serve --bind 127.0.0.1:5683 --firmware app.bin
      flashroom emu connect coap://127.0.0.1:5683 --image dev.img --link 3g
    """


@dataclass
class ServeOptions:
    """``ota serve`` options."""

    bind: str
    firmware: Path
    fast: bool
    chunk_size: int
    max_sessions: int | None
    ack_timeout: float
    response_timeout: float
    allow_invalid: bool = False
    pace_kbps: float | None = None


def _read_firmware(opts: ServeOptions) -> bytes:
    """The served file, read once."""
    try:
        data = opts.firmware.read_bytes()
    except OSError as e:
        raise UsageError(
            f"--firmware {opts.firmware}: cannot read file ({e.strerror or e})"
        ) from None
    if not data:
        raise UsageError(f"--firmware {opts.firmware}: the file is empty")
    return data


def _check_firmware(opts: ServeOptions, data: bytes) -> dict[str, Any]:
    """What is served; an invalid module is refused unless --allow-invalid (spec-silent: the
    Particle cloud validates binaries before flashing them)."""
    from flashroom.errors import FlashroomError
    from flashroom.particle.module import parse_module

    info: dict[str, Any] = {"path": str(opts.firmware), "size": len(data)}
    try:
        mod = parse_module(data, filename=str(opts.firmware))
    except FlashroomError as e:
        if not opts.allow_invalid:
            raise UsageError(f"--firmware {opts.firmware}: not a valid module: {e}") from None
        info["valid"] = False
        return info
    if not mod.crc_ok and not opts.allow_invalid:
        raise UsageError(
            f"--firmware {opts.firmware}: CRC-32 stored 0x{mod.crc_stored:08x}, computed "
            f"0x{mod.crc_computed:08x} (use --allow-invalid to serve it anyway)"
        )
    info.update(
        valid=mod.crc_ok,
        platform_id=mod.info.platform_id,
        module_function=mod.info.module_function,
        module_index=mod.info.module_index,
        module_version=mod.info.module_version,
    )
    return info


@ota.command()
@click.option(
    "--bind",
    default=_DEFAULT_BIND,
    show_default=True,
    help="UDP HOST:PORT to listen on (port 0 picks a free port; the address is printed).",
)
@click.option(
    "--firmware",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The module file to send (e.g. a user part built for the device).",
)
@click.option(
    "--fast/--no-fast",
    default=True,
    show_default=True,
    help="Request fast OTA (chunks sent without waiting, missed ones resent, spec 6.4).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 65535),
    default=512,
    show_default=True,
    help="Bytes per chunk (the device default is 512, spec 6.5).",
)
@click.option(
    "--allow-invalid",
    is_flag=True,
    help="Serve FIRMWARE even when it does not parse as a module or its CRC-32 is wrong "
    "(to watch the device refuse it).",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(1),
    default=None,
    help="Exit after this many device sessions ended (default: serve until Ctrl-C).",
)
@click.option(
    "--ack-timeout",
    type=FiniteFloatRange(0.001),
    default=2.0,
    show_default=True,
    help="CoAP ACK_TIMEOUT in seconds (RFC 7252: 2; use ~0.2 on loopback).",
)
@click.option(
    "--response-timeout",
    type=FiniteFloatRange(0.01),
    default=60.0,
    show_default=True,
    help="Seconds to wait for UpdateReady, ChunkReceived or ChunkMissed before giving up.",
)
@click.option(
    "--pace-kbps",
    type=FiniteFloatRange(1.0),
    default=None,
    help="Fast OTA: send chunks at this wire rate in kbit/s, e.g. the modem's downlink "
    "(default: back to back).",
)
@format_option
def serve(
    bind: str,
    firmware: Path,
    fast: bool,
    chunk_size: int,
    allow_invalid: bool,
    max_sessions: int | None,
    ack_timeout: float,
    response_timeout: float,
    pace_kbps: float | None,
    fmt: str,
) -> None:
    """Serve FIRMWARE to every device that says Hello, over CoAP on UDP.

    A device opens the exchange with a CON `POST h` (Hello); the server then drives
    UpdateBegin (`POST u`), Chunks (`POST c`) and UpdateDone (`PUT u`) towards it, and takes
    its UpdateReady / ChunkReceived responses and ChunkMissed (`GET c`) requests (spec 6.1).
    Prints the bound address on stderr, then a per-session report.

    \b
    Example:
      flashroom ota serve --bind 127.0.0.1:5683 --firmware app.bin --max-sessions 1
    """
    opts = ServeOptions(
        bind,
        firmware,
        fast,
        chunk_size,
        max_sessions,
        ack_timeout,
        response_timeout,
        allow_invalid,
        pace_kbps,
    )
    image = _read_firmware(opts)
    firmware_info = _check_firmware(opts, image)
    report = _run_serve(opts, image)
    data = report.to_json()
    data["firmware"] = firmware_info
    if fmt == "json":
        emit_json(data)
    else:
        _print_serve(data)
    if max_sessions is not None and report.completed < len(report.sessions):
        raise CheckFailed()


def _run_serve(opts: ServeOptions, image: bytes) -> Any:
    from flashroom.ota.endpoint import CoapTuning
    from flashroom.ota.server import OtaServer
    from flashroom.ota.server_end import ServerConfig
    from flashroom.ota.transport import parse_bind, serve_udp

    host, port = parse_bind(opts.bind)
    config = ServerConfig(
        fast=opts.fast,
        pace_bps=None if opts.pace_kbps is None else opts.pace_kbps * 1000.0,
        chunk_size=opts.chunk_size,
        response_timeout_s=opts.response_timeout,
        tuning=CoapTuning(ack_timeout_s=opts.ack_timeout),
    )
    chunks = -(-len(image) // opts.chunk_size)
    total = chunks * (opts.max_sessions or 1)
    progress_by_peer: dict[Any, int] = {}

    with progress_bar("serving update", total) as progress:

        def on_progress(addr: Any, done: int, tot: int) -> None:
            progress_by_peer[addr] = done
            progress(min(sum(progress_by_peer.values()), total), total)

        server = OtaServer(image, config, on_progress=on_progress)

        def on_bound(addr: tuple[str, int]) -> None:
            click.echo(f"listening on coap://{addr[0]}:{addr[1]}", err=True)
            sys.stderr.flush()

        async def main() -> Any:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                # not possible outside the main thread (in-process test runner)
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, stop.set)
            try:
                return await serve_udp(
                    server,
                    host,
                    port,
                    max_sessions=opts.max_sessions,
                    stop=stop,
                    on_bound=on_bound,
                )
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                        loop.remove_signal_handler(sig)

        return asyncio.run(main())


def _print_serve(data: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout_console()
    t = Table(title=f"ota serve {data['address']}")
    for col in ("peer", "device_id", "status", "chunks_sent", "resends", "error"):
        t.add_column(col)
    for s in data["session_records"]:
        t.add_row(
            s["peer"],
            s["device_id"],
            s["status"],
            str(s["chunks_sent"]),
            str(s["resends"]),
            s["error"] or "",
        )
    console.print(t)
    fw = data.get("firmware") or {}
    if "module_version" in fw:
        console.print(
            f"firmware {fw['path']}: {fmt_size(fw['size'])}, platform {fw['platform_id']}, "
            f"function {fw['module_function']} index {fw['module_index']} "
            f"version {fw['module_version']}"
        )
    console.print(
        f"sessions {data['sessions']}: {data['completed']} complete, {data['failed']} failed; "
        f"{fmt_size(data['payload_bytes'])} delivered in {data['active_s']} s of sessions "
        f"({data['throughput_bps'] / 1000:.1f} kbit/s; served {data['wall_s']} s in all); "
        f"datagrams in {data['datagrams_in']}, "
        f"out {data['datagrams_out']}, malformed {data['malformed']}"
    )


# =========================================================================== emu connect
@dataclass
class ConnectOptions:
    """``emu connect`` options."""

    url: str
    image: Path
    link: str | None
    rtt_ms: float | None
    bandwidth_bps: float | None
    uplink_bps: float | None
    loss: float | None
    duplicate: float | None
    reorder: float | None
    seed: int
    ack_timeout: float
    inactivity_timeout: float | None
    time_limit: float
    save: bool
    fast_ota: bool = True


def build_link(opts: ConnectOptions) -> Any:
    """The link profile from a preset and/or explicit values (explicit values win)."""
    from flashroom.ota.link import IDEAL, get_link

    base = get_link(opts.link) if opts.link else IDEAL
    changes: dict[str, Any] = {}
    if opts.rtt_ms is not None:
        changes["rtt_s"] = opts.rtt_ms / 1000
    if opts.bandwidth_bps is not None:
        changes["bandwidth_bps"] = opts.bandwidth_bps
    if opts.uplink_bps is not None:
        changes["uplink_bps"] = opts.uplink_bps
    for name in ("loss", "duplicate", "reorder"):
        v = getattr(opts, name)
        if v is not None:
            changes[name] = v
    if not changes:
        return base
    if opts.link is None:
        changes["name"] = "custom"
    return base.with_(**changes)


_PROB = FiniteFloatRange(0.0, 1.0, max_open=True)


@click.command()
@click.argument("url")
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Device image (from `flashroom emu new`); updated in place unless --no-save.",
)
@click.option(
    "--link",
    type=click.Choice(list(PRESETS)),
    default=None,
    help="Link preset (figures and sources: flashroom.ota.link). Default: no emulation.",
)
@click.option("--rtt-ms", type=FiniteFloatRange(0), default=None, help="Round-trip time (ms).")
@click.option(
    "--bandwidth-bps",
    type=FiniteFloatRange(0),
    default=None,
    help="Downlink bits/s (0 = unlimited).",
)
@click.option("--uplink-bps", type=FiniteFloatRange(0), default=None, help="Uplink bits/s.")
@click.option("--loss", type=_PROB, default=None, help="Datagram loss probability.")
@click.option("--duplicate", type=_PROB, default=None, help="Duplication probability.")
@click.option("--reorder", type=_PROB, default=None, help="Reordering probability.")
@click.option("--seed", type=int, default=0, show_default=True, help="Link RNG seed.")
@click.option(
    "--ack-timeout",
    type=FiniteFloatRange(0.001),
    default=2.0,
    show_default=True,
    help="Real CoAP ACK_TIMEOUT in seconds (RFC 7252: 2; ~0.2 on loopback).",
)
@click.option(
    "--inactivity-timeout",
    type=FiniteFloatRange(0.01),
    default=None,
    help="Seconds without OTA activity before the device gives up (default: the platform's "
    "TIMING_FLASH_UPDATE_TIMEOUT, 300 on Electron, 30 on Photon/P1; spec 6.5).",
)
@click.option(
    "--time-limit",
    type=FiniteFloatRange(0.1),
    default=900.0,
    show_default=True,
    help="Real seconds before the run is abandoned.",
)
@click.option(
    "--fast-ota/--no-fast-ota",
    default=True,
    show_default=True,
    help="The device's FAST_OTA connection property: accept fast OTA when the server asks "
    "(spec 6.2).",
)
@click.option("--save/--no-save", default=True, show_default=True, help="Write the image back.")
@format_option
def connect(
    url: str,
    image: Path,
    link: str | None,
    rtt_ms: float | None,
    bandwidth_bps: float | None,
    uplink_bps: float | None,
    loss: float | None,
    duplicate: float | None,
    reorder: float | None,
    seed: int,
    ack_timeout: float,
    inactivity_timeout: float | None,
    time_limit: float,
    fast_ota: bool,
    save: bool,
    fmt: str,
) -> None:
    """Connect an emulated device to an OTA server and take its update.

    The device says Hello, receives the update through its system OTA path (erase, chunk
    writes, HAL_FLASH_End), resets and reports what it cost on the emulated link: payload and
    wire bytes (CoAP + UDP + IPv4 + DTLS), messages, retransmissions and the simulated link
    time. Exits 1 when the update was not applied (the report says why).

    \b
    Example:
      flashroom emu connect coap://127.0.0.1:5683 --image dev.img --link 3g --format json
    """
    opts = ConnectOptions(
        url,
        image,
        link,
        rtt_ms,
        bandwidth_bps,
        uplink_bps,
        loss,
        duplicate,
        reorder,
        seed,
        ack_timeout,
        inactivity_timeout,
        time_limit,
        save,
        fast_ota,
    )
    result = _run_connect(opts)
    data = result.to_json()
    if fmt == "json":
        emit_json(data)
    else:
        _print_connect(data)
    if result.result != "applied":
        raise CheckFailed()


def _run_connect(opts: ConnectOptions) -> Any:
    from flashroom.emu.device import Device
    from flashroom.ota.device_end import DeviceConfig
    from flashroom.ota.endpoint import CoapTuning
    from flashroom.ota.transport import parse_coap_url
    from flashroom.scenarios.deliver import update_over_udp

    parse_coap_url(opts.url)  # precise error before touching the image
    link = build_link(opts)
    device = Device.load(opts.image)
    # A stable 12-byte device ID per image file (the Hello carries it, spec 6.5).
    device_id = hashlib.sha256(str(opts.image.resolve()).encode()).digest()[:12]
    cfg = DeviceConfig(
        platform=device.profile.platform,
        device_id=device_id,
        allow_fast=opts.fast_ota,
        seed=opts.seed,
        inactivity_timeout_s=opts.inactivity_timeout,
        tuning=CoapTuning(ack_timeout_s=opts.ack_timeout),
        linger_s=min(5.0, 4 * opts.ack_timeout),
        begin_timeout_s=max(30 * opts.ack_timeout, 5.0),
    )
    with progress_bar("receiving update", None) as progress:
        result = update_over_udp(
            device,
            opts.url,
            link=link,
            seed=opts.seed,
            device_config=cfg,
            time_limit_s=opts.time_limit,
            progress=progress,
        )
    if opts.save:
        device.save(opts.image)
    return result


def _print_connect(data: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout_console()
    t = Table(title=f"emu connect: {data['result']}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("result", data["result"]),
        ("error", data["error"] or ""),
        ("payload bytes", str(data["payload_bytes"])),
        ("wire bytes (CoAP+UDP+IPv4+DTLS)", str(data["wire_bytes"])),
        ("messages", str(data["messages"])),
        ("retransmissions", str(data["retransmissions"])),
        ("link", data["link"]["name"]),
        ("link time (simulated)", f"{data['link_time_s']} s"),
        ("goodput / bandwidth", f"{data['goodput_ratio']:.3f}"),
        ("fast OTA", str(data["fast_ota"])),
        ("boot", str(data["boot"])),
    ]
    running = data.get("running")
    if running:
        rows.append(("running", f"user v{running['module_version']} ({fmt_size(running['size'])})"))
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
