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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flashroom.atomicfile import write_bytes_atomic
from flashroom.cli.common import (
    CheckFailed,
    FlashroomGroup,
    PathType,
    emit_json,
    format_option,
    stdout_console,
)
from flashroom.cli.options import fast_ota_option, output_option, profile_option, resolve_profile
from flashroom.cli.params import FiniteFloatRange
from flashroom.deviceos import GEN2_PLATFORMS, PLATFORMS
from flashroom.deviceos.registry import platform_by_id
from flashroom.errors import FlashroomError, PlatformError, UsageError
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.server import OtaServer, SessionEvent, check_chunk_size
from flashroom.ota.server_end import BeginForm, ServerConfig
from flashroom.particle.hostcheck import fresh_install_infos, host_check
from flashroom.particle.module import parse_module, read_module_file
from flashroom.ranges import fmt_size
from flashroom.readfile import read_input

_DEFAULT_BIND = "127.0.0.1:5683"


# =========================================================================== ota serve
@click.group(cls=FlashroomGroup)
def ota() -> None:
    """Serve updates over CoAP/UDP as the Particle cloud does (docs/device-os.md#protocol),
    and make the deltas it sends to devices that apply them (docs/delta-ota.md).

    \b
    Example (two terminals; keys.txt holds "DEVICE_ID_HEX KEY_HEX" lines):
      flashroom ota serve --bind 127.0.0.1:5683 --firmware app.bin --psk-file keys.txt
      flashroom emu connect coap://127.0.0.1:5683 --image dev.img --psk-file keys.txt
    A delta for devices running app-v7, and the same by hand:
      flashroom ota serve --firmware app-v8.bin --base app-v7.bin --psk-file keys.txt
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
    psk_file: Path | None = None
    insecure: bool = False
    bases: tuple[Path, ...] = ()
    stream: bool = True
    profile: str | None = None


def _read_firmware(opts: ServeOptions) -> bytes:
    """The served file, read once (a regular file no larger than any module)."""
    try:
        data = read_module_file(opts.firmware)
    except FlashroomError as e:
        raise UsageError(f"--firmware {e}") from None
    if not data:
        raise UsageError(f"--firmware {opts.firmware}: the file is empty")
    return data


def _check_firmware(opts: ServeOptions, data: bytes) -> dict[str, Any]:
    """What is served. flashroom's host-side checks (:func:`flashroom.particle.hostcheck.
    host_check`: parse, CRC-32, SHA-256, size, and the dependency rule of spec 3.2 against a
    fresh install of the module's platform with the --profile's Device OS, the devices'
    reported modules being unknown to this server) must pass, unless --allow-invalid
    (spec-silent: the Particle cloud validates binaries before flashing them)."""

    info: dict[str, Any] = {"path": str(opts.firmware), "size": len(data)}
    hint = " (use --allow-invalid to serve it anyway)"
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
            f"0x{mod.crc_computed:08x}{hint}"
        )
    try:
        platform = platform_by_id(mod.info.platform_id).name
    except PlatformError:
        platform = ""
    profile = ""
    if platform in GEN2_PLATFORMS:
        profile = resolve_profile(platform, opts.profile)
        layouts = PLATFORMS[platform].layouts
        if profile not in layouts:
            raise UsageError(
                f"--profile {profile}: the firmware is a {platform} module, and {platform} has "
                f"no {profile} profile (expected one of {', '.join(layouts)})"
            )
        check = host_check(data, fresh_install_infos(platform, profile))
    else:
        check = None
        if not opts.allow_invalid:
            raise UsageError(
                f"--firmware {opts.firmware}: platform id {mod.info.platform_id} is not a Gen2 "
                f"platform ({', '.join(GEN2_PLATFORMS)}){hint}"
            )
    if check is not None and not check.ok and not opts.allow_invalid:
        raise UsageError(
            f"--firmware {opts.firmware}: {check.message} (checked against a fresh {profile} "
            f"install){hint}"
        )
    info.update(
        checked_against=profile or None,
        valid=mod.crc_ok and (check is not None and check.ok),
        platform_id=mod.info.platform_id,
        module_function=mod.info.module_function,
        module_index=mod.info.module_index,
        module_version=mod.info.module_version,
        host_check=None if check is None else check.to_json(),
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
    type=PathType(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The module file to send (e.g. a user part built for the device).",
)
@fast_ota_option(
    help="Request fast OTA: chunks sent without waiting for each reply, missed ones resent "
    "(docs/device-os.md#protocol)."
)
@click.option(
    "--begin-form",
    type=click.Choice(["long", "short"]),
    default="long",
    show_default=True,
    help="UpdateBegin with sizes (long), or without (short: the device takes its own defaults, "
    "512-byte chunks and its whole OTA region, and fast OTA is off; docs/device-os.md#protocol).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="Bytes per chunk (the device default is 512, docs/device-os.md#protocol; at most what "
    "the device's protocol buffer takes: about 850 on Electron, 750 on Photon/P1).",
)
@click.option(
    "--allow-invalid",
    is_flag=True,
    help="Serve FIRMWARE even when flashroom's host checks refuse it (it does not parse, bad "
    "CRC-32 or SHA-256, unmet dependency: to watch what the device does with it).",
)
@click.option(
    "--psk-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve over DTLS 1.2 only to devices holding a key in FILE: one 'DEVICE_ID_HEX "
    "KEY_HEX' line per device (keys of 16 bytes or more); a Hello must carry the device ID "
    "its DTLS identity names.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Plain CoAP, no authentication: any host that says Hello gets the firmware. For "
    "loopback experiments only; said at start-up.",
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
@profile_option
@format_option
def serve(
    bind: str,
    firmware: Path,
    fast_ota: bool,
    chunk_size: int,
    allow_invalid: bool,
    max_sessions: int | None,
    ack_timeout: float,
    response_timeout: float,
    pace_kbps: float | None,
    begin_form: str,
    psk_file: Path | None,
    insecure: bool,
    bases: tuple[Path, ...],
    stream: bool,
    profile: str | None,
    fmt: str,
) -> None:
    """Serve FIRMWARE to every device that says Hello, over CoAP on UDP.

    A device opens the exchange with a CON `POST h` (Hello); the server then drives
    UpdateBegin (`POST u`), Chunks (`POST c`) and UpdateDone (`PUT u`) towards it, and takes
    its UpdateReady / ChunkReceived responses and ChunkMissed (`GET c`) requests
    (docs/device-os.md#protocol). Only devices that authenticate with a pre-shared key
    (--psk-file, DTLS) are served, unless --insecure. Prints the bound address and one line per
    session event (connected, update begun, every 10 %, done or failed) on stderr, then a
    per-session report.

    Per device, from its Hello: a delta when it runs one of the --base modules and applies
    deltas, else a compressed file when it applies those, else the raw module (stock).

    Before serving, FIRMWARE must pass flashroom's host checks: parse, CRC-32, SHA-256, and
    its dependencies against a fresh install of --profile's Device OS (a Hello does not say
    what the device runs); --allow-invalid serves it anyway.

    \b
    Example:
      flashroom ota serve --bind 127.0.0.1:5683 --firmware app.bin --psk-file keys.txt
      flashroom ota serve --bind 127.0.0.1:0 --firmware app.bin --insecure --max-sessions 1
      flashroom ota serve --firmware app-v8.bin --base app-v7.bin --base app-v6.bin --insecure
    """
    opts = ServeOptions(
        bind,
        firmware,
        fast_ota,
        chunk_size,
        max_sessions,
        ack_timeout,
        response_timeout,
        allow_invalid,
        pace_kbps,
        begin_form,
        psk_file,
        insecure,
        bases,
        stream,
        profile,
    )
    image = _read_firmware(opts)
    firmware_info = _check_firmware(opts, image)
    check_chunk_size(chunk_size, firmware_info.get("platform_id"), len(image))
    offer = _offer(opts, image)
    report = _run_serve(opts, image, firmware_info.get("platform_id"), offer)
    data = report.to_json()
    data["firmware"] = firmware_info
    data["offer"] = _offer_json(offer)
    if fmt == "json":
        emit_json(data)
    else:
        _print_serve(data)
    if max_sessions is not None and report.completed < report.ended:
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


def _read_psk(path: Path) -> dict[bytes, bytes]:
    from flashroom.ota.dtls import parse_psk_lines

    try:  # a regular file of key lines (a FIFO or a device is refused unopened)
        text = read_input(path, limit=1024 * 1024, what="a key file").decode()
    except (FlashroomError, UnicodeDecodeError) as e:
        raise UsageError(f"--psk-file {path}: cannot read it ({e})") from None
    return parse_psk_lines(text, f"--psk-file {path}")


def _event_line(t0: float, ev: SessionEvent) -> str:
    """One stderr line per session event."""
    who = f"{ev.peer} {ev.device_id[:12] or '-'}"
    at = f"[{time.monotonic() - t0:8.3f} s]"
    if ev.kind == "connected":
        return f"{at} {who}: connected (Hello)"
    if ev.kind == "begun":
        mode = "fast OTA" if ev.fast else "stop-and-wait"
        return f"{at} {who}: update begun: {ev.chunks} chunks of {ev.chunk_size} bytes, {mode}"
    if ev.kind == "progress":
        return f"{at} {who}: {ev.percent:3d} % ({ev.chunks_done}/{ev.chunks} chunks)"
    sent = f"{ev.bytes_sent} chunk bytes sent, {ev.resends} resent, {ev.elapsed_s:.3f} s"
    if ev.kind == "done":
        return f"{at} {who}: done: {ev.payload_bytes} bytes delivered ({sent})"
    return f"{at} {who}: failed: {ev.error} ({sent})"


def _run_serve(opts: ServeOptions, image: bytes, platform_id: int | None, offer: Any = None) -> Any:
    from flashroom.ota.transport import coap_url, parse_bind, serve_udp  # asyncio: deferred

    host, port = parse_bind(opts.bind)
    if (opts.psk_file is None) == (not opts.insecure):
        raise UsageError(
            "give --psk-file FILE (serve devices that authenticate over DTLS) or --insecure "
            "(plain CoAP to anyone), one of them"
            if opts.psk_file is None
            else "--psk-file and --insecure exclude each other"
        )
    psk = None if opts.psk_file is None else _read_psk(opts.psk_file)
    config = ServerConfig(
        fast=opts.fast,
        pace_bps=None if opts.pace_kbps is None else opts.pace_kbps * 1000.0,
        chunk_size=opts.chunk_size,
        begin_form=BeginForm(opts.begin_form),
        response_timeout_s=opts.response_timeout,
        tuning=CoapTuning(ack_timeout_s=opts.ack_timeout),
    )
    t0 = time.monotonic()

    def on_event(ev: SessionEvent) -> None:
        click.echo(_event_line(t0, ev), err=True)

    server = OtaServer(
        image,
        config,
        seed=None,  # unguessable message IDs and tokens
        authenticate=psk is not None,
        on_event=on_event,
        platform_id=platform_id,
        offer=offer,
    )

    def on_bound(addr: tuple[str, int]) -> None:
        click.echo(f"listening on {coap_url(*addr)}", err=True)
        if psk is None:
            click.echo(
                "warning: --insecure: plain CoAP, no authentication; any host that says Hello "
                "gets the firmware",
                err=True,
            )
        else:
            click.echo(f"DTLS 1.2 PSK: {len(psk)} device key(s) from {opts.psk_file}", err=True)
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
                psk=psk,
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
    shown = len(data["session_records"])
    if data["sessions"] > shown:
        console.print(f"(the last {shown} of {data['sessions']} sessions)")
    refused = {k: v for k, v in (data.get("refused") or {}).items() if v}
    if refused or data.get("dtls_rejected"):
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in refused.items()]
        if data.get("dtls_rejected"):
            parts.append(f"unauthenticated datagrams {data['dtls_rejected']}")
        console.print("refused: " + ", ".join(parts))
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
        f"compressed instead: lzma {c['lzma']['ratio']:.3f}, deflate "
        f"{c['deflate']['ratio']:.3f}, heatshrink {c['heatshrink']['ratio']:.3f}; detools' own "
        f"patch: lzma {d['lzma']['ratio']:.4f}, heatshrink {d['heatshrink']['ratio']:.4f}"
    )
