"""Helpers of ``flashroom emu``'s commands (:mod:`flashroom.cli.emu`): loading and saving the
image, the shared cut/compare options, running a step with the model beside the real code, and
``emu connect``'s options and runner. The commands themselves are all in ``cli/emu.py``."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flashroom.atomicfile import check_output_file
from flashroom.cli.common import CheckFailed, progress_bar
from flashroom.cli.emu_render import render_outcome
from flashroom.errors import EmulatorError, FlashroomError, UsageError
from flashroom.ota.device_end import DeviceConfig
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.link import IDEAL, get_link
from flashroom.particle.module import read_module_file
from flashroom.readfile import read_input


def read_module(path: Path) -> bytes:
    """A module file's bytes: a regular file, bounded by the largest module."""
    data = read_module_file(path)
    if not data:
        raise UsageError(f"{path} is empty: expected a Particle module binary")
    return data


def load_image(image: Path, *, writable: bool = True) -> Any:
    """Load the image; a command that saves it (``writable``) locks it until it ends."""
    from flashroom.emu.device import Device  # numpy: deferred for start-up time

    if not os.path.lexists(image):
        raise UsageError(
            f"device image {image} does not exist: create it with "
            f"'flashroom emu new --image {image}'"
        )
    if writable:
        check_output_file(image)  # a link or a device would be refused at save: refuse now
    dev = Device.load(image, lock=writable)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(dev.release_image)
    return dev


def require_cut(
    dev: Any, out: Any, cut_at_op: int | None, fail_at_op: int | None, what: str, image: Path
) -> None:
    """Refuse a --cut-at-op or --fail-at-op that the run never reached (before the image is
    saved).

    A fault past the last operation would silently run the whole update, which is not what the
    user asked for; the image is left as it was.
    """
    n = out.flash_ops
    ops = f"has only {n} flash operations (0..{n - 1})" if n else "has no flash operation"
    if cut_at_op is not None and out.result != "interrupted":
        raise UsageError(
            f"--cut-at-op {cut_at_op}: this {what} {ops}, so power was never cut; "
            f"the image is unchanged ({image})"
        )
    if fail_at_op is not None and not dev.fault_fired:
        raise UsageError(
            f"--fail-at-op {fail_at_op}: this {what} {ops}, so no operation failed; "
            f"the image is unchanged ({image})"
        )


def finish(
    out: Any,
    fmt: str,
    title: str,
    ok: bool,
    comparison: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> None:
    render_outcome(out, fmt, title, comparison, steps)
    if not ok or (comparison is not None and comparison["difference"] is not None):
        raise CheckFailed()


def compare_model_option(f: Any) -> Any:
    return click.option(
        "--compare-model",
        is_flag=True,
        help="On a device that runs real code: run this step with the Python model first, "
        "then (from the same state) with the real code, and compare all 1 MB of flash, the "
        "backup registers, the boot outcome and the operation sequence. Exit 1 on any "
        "difference; the image keeps the real code's result.",
    )(f)


def run_step(dev: Any, step: Any, compare: bool) -> tuple[Any, dict[str, Any] | None]:
    """Run ``step`` (returns an Outcome); with ``compare`` model first, then real."""
    if not compare:
        return step(), None
    if not dev.real.any:
        raise UsageError(
            "--compare-model needs a device that runs real code: make it with emu new "
            "--bootloader-firmware FILE and/or --system-firmware DIR"
        )
    from flashroom.scenarios.compare import compare_run  # the emulator: deferred

    model, real, diff = compare_run(dev, step)
    if real.result is None:
        raise EmulatorError(f"the real-code run failed: {real.error}")

    def side(t: Any) -> dict[str, Any]:
        return {
            "boot": t.boot,
            "bootloader_runs": list(t.bootloader_runs),
            "operations": len(t.ops),
            "error": t.error,
        }

    return real.result, {
        "identical": diff is None,
        "difference": None if diff is None else diff.to_json(),
        "model": side(model),
        "real": side(real),
    }


def cut_options(f: Any) -> Any:
    """``--cut-at-op N [--torn] [--seed S]``: cut power at flash operation N of this run;
    ``--fail-at-op N``: operation N fails instead (an FLASH_SR error bit, as on a brown-out)."""
    f = click.option(
        "--fail-at-op",
        type=click.IntRange(min=0),
        default=None,
        help="Flash operation N of this run fails (an FLASH_SR error bit, as on a brown-out): "
        "nothing is written for it and the firmware's own error handling runs.",
    )(f)
    f = click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed of a torn operation."
    )(f)
    f = click.option("--torn", is_flag=True, help="The cut operation happens partially (seeded).")(
        f
    )
    return click.option(
        "--cut-at-op",
        type=click.IntRange(min=0),
        default=None,
        help="Cut power at flash operation N of this run (0 = the first).",
    )(f)


def stream_args(dev: Any, data: bytes, streamed_ota_args: Any) -> dict[str, Any]:
    """``store``/``expect`` for ``Device.ota`` when ``data`` is a streamed (delta/compressed)
    file (ota/stream.py), else none."""
    store, expect = streamed_ota_args(dev.user_part_bytes(), data)
    return {"store": store, "expect": expect}


@dataclass
class Total:
    """An outcome whose ``flash_ops`` is the whole update sequence's (for require_cut)."""

    out: Any
    flash_ops: int

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


# --------------------------------------------------------------------------- connect
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
    psk_file: Path | None = None
    stream: bool = True


def build_link(opts: ConnectOptions) -> Any:
    """The link profile from a preset and/or explicit values (explicit values win)."""

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


#: Hello (or DTLS ClientHello) transmissions before "no answer": 3 takes 2 + 4 + 8 timeouts,
#: 14-21 s at the default ACK_TIMEOUT, instead of RFC 7252's 5 (45-93 s).
HELLO_ATTEMPTS = 3


def device_key(path: Path, own_id: bytes) -> tuple[bytes, tuple[bytes, bytes]]:
    """(device ID, (DTLS identity, key)) from a key file (see ``--psk-file``)."""
    from flashroom.ota.dtls import parse_psk_lines

    try:  # a regular file of key lines (a FIFO or a device is refused unopened)
        text = read_input(path, limit=1024 * 1024, what="a key file").decode()
    except (FlashroomError, UnicodeDecodeError) as e:
        raise UsageError(f"--psk-file {path}: cannot read it ({e})") from None
    keys = parse_psk_lines(text, f"--psk-file {path}")
    if len(keys) == 1:
        ident, key = next(iter(keys.items()))
    else:
        ident = own_id.hex().encode()
        if ident not in keys:
            raise UsageError(
                f"--psk-file {path}: no key for this device (ID {ident.decode()}) among "
                f"{len(keys)} lines"
            )
        key = keys[ident]
    try:
        device_id = bytes.fromhex(ident.decode())
    except ValueError:
        raise UsageError(
            f"--psk-file {path}: identity {ident.decode()!r} is not a device ID in hex"
        ) from None
    return device_id, (ident, key)


def run_connect(opts: ConnectOptions) -> Any:
    # the OTA transport and the device model import aiocoap and numpy: deferred for start-up
    from flashroom.ota.transport import parse_coap_url  # asyncio: deferred for start-up time
    from flashroom.scenarios.deliver import update_over_udp  # numpy: deferred for start-up time

    parse_coap_url(opts.url)  # precise error before touching the image
    link = build_link(opts)
    device = load_image(opts.image)
    # A stable 12-byte device ID per image file (the Hello carries it, spec 6.5).
    device_id = hashlib.sha256(str(opts.image.resolve()).encode()).digest()[:12]
    psk: tuple[bytes, bytes] | None = None
    if opts.psk_file is not None:
        device_id, psk = device_key(opts.psk_file, device_id)
    cfg = DeviceConfig(
        platform=device.profile.platform,
        device_id=device_id,
        allow_fast=opts.fast_ota,
        seed=opts.seed,
        inactivity_timeout_s=opts.inactivity_timeout,
        tuning=CoapTuning(ack_timeout_s=opts.ack_timeout),
        linger_s=min(5.0, 4 * opts.ack_timeout),
        begin_timeout_s=max(30 * opts.ack_timeout, 5.0),
        hello_attempts=HELLO_ATTEMPTS,
        announce_stream=opts.stream,
    )
    device.ota_stream_enabled = opts.stream
    with progress_bar("receiving update", None) as progress:
        result = update_over_udp(
            device,
            opts.url,
            link=link,
            seed=opts.seed,
            device_config=cfg,
            time_limit_s=opts.time_limit,
            progress=progress,
            psk=psk,
        )
    if opts.save:
        device.save(opts.image)
    return result


__all__ = [
    "HELLO_ATTEMPTS",
    "ConnectOptions",
    "Total",
    "build_link",
    "compare_model_option",
    "cut_options",
    "device_key",
    "finish",
    "load_image",
    "read_module",
    "require_cut",
    "run_connect",
    "run_step",
    "stream_args",
]
