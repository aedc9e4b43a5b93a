"""``flashroom ota serve``: Particle OTA over real CoAP/UDP, as the cloud serves it; and
``flashroom ota diff``: the delta a server sends a device running a known base.

A thin shell: parse options, call :mod:`flashroom.ota`, render. The device side of the same
exchange is ``flashroom emu connect`` (:mod:`flashroom.cli.emu`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flashroom.atomicfile import write_bytes_atomic
from flashroom.cli.common import (
    CheckFailed,
    FlashroomGroup,
    emit_json,
    format_option,
    progress_bar,
    stdout_console,
)
from flashroom.cli.options import output_option
from flashroom.cli.params import FiniteFloatRange
from flashroom.errors import FlashroomError, UsageError
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.server import OtaServer
from flashroom.ota.server_end import BeginForm, ServerConfig
from flashroom.particle.module import parse_module
from flashroom.ranges import fmt_size

_DEFAULT_BIND = "127.0.0.1:5683"


# =========================================================================== ota serve
@click.group(cls=FlashroomGroup)
def ota() -> None:
    """Serve updates over CoAP/UDP as the Particle cloud does (spec 6), and make the deltas
    it sends to devices that apply them (docs/delta-ota.md).

    \b
    Example (two terminals):
      flashroom ota serve --bind 127.0.0.1:5683 --firmware app.bin
      flashroom emu connect coap://127.0.0.1:5683 --image dev.img --link 3g
    A delta for devices running app-v7, and the same by hand:
      flashroom ota serve --firmware app-v8.bin --base app-v7.bin
      flashroom ota diff app-v7.bin app-v8.bin -o v7-to-v8.patch
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
    begin_form: str = "long"
    bases: tuple[Path, ...] = ()
    stream: bool = True


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
    "--begin-form",
    type=click.Choice(["long", "short"]),
    default="long",
    show_default=True,
    help="UpdateBegin with sizes (long), or without (short: the device takes its own defaults, "
    "512-byte chunks and its whole OTA region, and fast OTA is off; spec 6.2).",
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
@click.option(
    "--base",
    "bases",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A module devices may be running (repeatable): a device whose Hello reports it gets "
    "a delta to FIRMWARE (docs/delta-ota.md).",
)
@click.option(
    "--stream/--no-stream",
    default=True,
    show_default=True,
    help="Send a delta or compressed file to devices whose Hello says they apply one "
    "(flashroom's extension; a stock device always gets raw bytes). --no-stream: raw to all.",
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
    begin_form: str,
    bases: tuple[Path, ...],
    stream: bool,
    fmt: str,
) -> None:
    """Serve FIRMWARE to every device that says Hello, over CoAP on UDP.

    A device opens the exchange with a CON `POST h` (Hello); the server then drives
    UpdateBegin (`POST u`), Chunks (`POST c`) and UpdateDone (`PUT u`) towards it, and takes
    its UpdateReady / ChunkReceived responses and ChunkMissed (`GET c`) requests (spec 6.1).
    Prints the bound address on stderr, then a per-session report.

    Per device, from its Hello: a delta when it runs one of the --base modules and applies
    deltas, else a compressed file when it applies those, else the raw module (stock).

    \b
    Example:
      flashroom ota serve --bind 127.0.0.1:5683 --firmware app.bin --max-sessions 1
      flashroom ota serve --firmware app-v8.bin --base app-v7.bin --base app-v6.bin
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
        begin_form,
        bases,
        stream,
    )
    image = _read_firmware(opts)
    firmware_info = _check_firmware(opts, image)
    offer = _offer(opts, image)
    report = _run_serve(opts, image, offer)
    data = report.to_json()
    data["firmware"] = firmware_info
    data["offer"] = _offer_json(offer)
    if fmt == "json":
        emit_json(data)
    else:
        _print_serve(data)
    if max_sessions is not None and report.completed < len(report.sessions):
        raise CheckFailed()


def _read_module(path: Path, what: str) -> bytes:
    """A module file given on the command line, parsed and CRC-checked (exit 2 otherwise)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot read file ({e.strerror or e})") from None
    try:
        mod = parse_module(data, filename=str(path))
    except FlashroomError as e:
        raise UsageError(f"{what} {path}: not a valid module: {e}") from None
    if not mod.crc_ok:
        raise UsageError(
            f"{what} {path}: CRC-32 stored 0x{mod.crc_stored:08x}, computed "
            f"0x{mod.crc_computed:08x}"
        )
    return data


def _offer(opts: ServeOptions, image: bytes) -> Any:
    """The per-device pick (ota/stream.py), or None with --no-stream."""
    from flashroom.ota.stream import OtaOffer  # detools/zlib encoders: only when serving

    if not opts.stream:
        return None
    bases = [_read_module(b, "--base") for b in opts.bases]
    return OtaOffer(image, bases)


def _offer_json(offer: Any) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {
        "delta": "modelled",  # the device side is a modelled change (docs/delta-ota.md)
        "bases": [
            {"sha256": sha, "delta_bytes": len(offer.delta_for(sha) or b"")}
            for sha in offer.base_sha256s
        ],
        "module_bytes": len(offer.module),
    }


def _run_serve(opts: ServeOptions, image: bytes, offer: Any = None) -> Any:
    from flashroom.ota.transport import parse_bind, serve_udp  # asyncio: deferred for start-up time

    host, port = parse_bind(opts.bind)
    config = ServerConfig(
        fast=opts.fast,
        pace_bps=None if opts.pace_kbps is None else opts.pace_kbps * 1000.0,
        chunk_size=opts.chunk_size,
        begin_form=BeginForm(opts.begin_form),
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

        server = OtaServer(image, config, on_progress=on_progress, offer=offer)

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
    from rich.table import Table  # rich: deferred for start-up time

    console = stdout_console()
    t = Table(title=f"ota serve {data['address']}")
    for col in ("peer", "device_id", "status", "encoding", "chunks_sent", "resends", "error"):
        t.add_column(col)
    for s in data["session_records"]:
        t.add_row(
            s["peer"],
            s["device_id"],
            s["status"],
            s.get("encoding", "raw"),
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


# =========================================================================== ota diff
@dataclass
class DiffOptions:
    """``ota diff`` options."""

    old: Path
    new: Path
    output: Path
    compression: str


@ota.command()
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output_option(help="Patch file to write (a delta streamed-update file; replaced atomically).")
@click.option(
    "--compression",
    type=click.Choice(["deflate", "heatshrink", "crle", "none"]),
    default="deflate",
    show_default=True,
    help="How the detools patch is compressed: deflate (the whole patch raw-Deflated) or one "
    "of the detools C library's own readers.",
)
@format_option
def diff(old: Path, new: Path, output: str, compression: str, fmt: str) -> None:
    """Make the delta that rebuilds NEW from OLD on a streamed-OTA device.

    The patch is a detools sequential (bsdiff) patch in flashroom's streamed-update file
    (docs/delta-ota.md); it is decoded back on the host before it is written. Shows its size
    beside the compressed and raw alternatives and detools' own patch sizes.

    \b
    Example:
      flashroom ota diff app-v7.bin app-v8.bin -o v7-to-v8.patch
      flashroom ota diff app-v7.bin app-v8.bin -o v7-to-v8.patch --format json
    """
    from flashroom.ota.stream import diff_modules  # detools: only when a patch is made

    opts = DiffOptions(old, new, Path(output), compression)
    a = _read_module(opts.old, "OLD")
    b = _read_module(opts.new, "NEW")
    result = diff_modules(a, b, compression=opts.compression)
    write_bytes_atomic(opts.output, result.patch)
    data = result.to_json()
    data["old"]["path"] = str(opts.old)
    data["new"]["path"] = str(opts.new)
    data["patch"]["path"] = str(opts.output)
    if fmt == "json":
        emit_json(data)
        return
    console = stdout_console()
    p, c, d = data["patch"], data["compressed"], data["detools"]
    console.print(
        f"wrote {opts.output}: {fmt_size(p['size'])} ({p['encoding']}), {p['ratio']:.4f} of "
        f"the {fmt_size(data['new']['size'])} module"
    )
    console.print(
        f"compressed instead: deflate {c['deflate']['ratio']:.3f}, heatshrink "
        f"{c['heatshrink']['ratio']:.3f}; detools' own patch: lzma {d['lzma']['ratio']:.4f}, "
        f"heatshrink {d['heatshrink']['ratio']:.4f}"
    )
