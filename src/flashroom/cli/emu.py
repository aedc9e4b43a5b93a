"""``flashroom emu``: a persistent emulated Photon/P1/Electron in a device image file.

A thin shell over :mod:`flashroom.emu.device`: each command loads the image, calls one Device
method, saves the image atomically and renders the :class:`~flashroom.emu.device.Outcome`.
``sweep``, ``badinput`` and ``connect`` are attached to this group by ``cli/main.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flashroom.cli.common import ADDRESS, CheckFailed, emit_json, format_option
from flashroom.cli.common import stdout_console as _console
from flashroom.cli.params import FiniteFloatRange
from flashroom.deviceos import GEN2_PLATFORMS as PLATFORMS
from flashroom.deviceos import GEN2_PROFILES as PROFILES
from flashroom.deviceos.gen2 import BOOTLOADER_VARIANTS
from flashroom.errors import EmulatorError, UsageError
from flashroom.ranges import fmt_size

_FUNCTIONS = {0: "NONE", 2: "BOOTLOADER", 4: "SYSTEM_PART", 5: "USER_PART"}
#: ``flashroom.emu.flash.GRANULARITIES``, spelled out so that ``flashroom --help`` does not import
#: numpy (tests check they agree).
GRANULARITIES = ("word", "chunk")

_image_option = click.option(
    "--image",
    "image",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Device image file (created by 'flashroom emu new').",
)


def _read_module(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    if not data:
        raise UsageError(f"{path} is empty: expected a Particle module binary")
    return data


def _load(image: Path) -> Any:
    from flashroom.emu.device import Device

    if not image.exists():
        raise UsageError(
            f"device image {image} does not exist: create it with "
            f"'flashroom emu new --image {image}'"
        )
    return Device.load(image)


def _running_text(running: dict[str, Any] | None) -> str:
    if running is None:
        return "-"
    fn = _FUNCTIONS.get(running["module_function"], str(running["module_function"]))
    return (
        f"{fn} #{running['module_index']} v{running['module_version']}, "
        f"{fmt_size(running['size'])} ({running['size']} bytes), sha256 {running['sha256'][:16]}…"
    )


def _render_outcome(out: Any, fmt: str, title: str) -> None:
    doc = out.to_json()
    if fmt == "json":
        emit_json(doc)
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    t.add_row("result", doc["result"])
    if doc["error"] is not None:
        code = doc["error"]["code"]
        t.add_row("error", f"{'' if code is None else str(code) + ': '}{doc['error']['message']}")
    t.add_row("boot", doc["boot"])
    t.add_row("running", _running_text(doc["running"]))
    t.add_row(
        "device time",
        f"{doc['device_time_s']:.3f} s typical, {out.device_time_max_s:.3f} s max (spec 8.7)",
    )
    erases = ", ".join(f"{k}×{v}" for k, v in doc["sector_erases"].items()) or "none"
    t.add_row("sector erases", erases)
    t.add_row("flash ops", str(doc["flash_ops"]))
    con = _console()
    con.print(t)
    if out.events:
        con.print("[bold]trace[/bold]")
        for e in out.events:
            con.print(f"  {e}", markup=False)


def _require_cut(out: Any, cut_at_op: int | None, what: str, image: Path) -> None:
    """Refuse a --cut-at-op that the run never reached (before the image is saved).

    A cut past the last operation would silently run the whole update, which is not what the
    user asked for; the image is left as it was.
    """
    if cut_at_op is None or out.result == "interrupted":
        return
    n = out.flash_ops
    ops = f"has only {n} flash operations (0..{n - 1})" if n else "has no flash operation"
    raise UsageError(
        f"--cut-at-op {cut_at_op}: this {what} {ops}, so power was never cut; "
        f"the image is unchanged ({image})"
    )


def _finish(out: Any, fmt: str, title: str, ok: bool) -> None:
    _render_outcome(out, fmt, title)
    if not ok:
        raise CheckFailed()


#: ``--platform`` for every command that makes an emulated device (Gen2 platforms only).
platform_option = click.option(
    "--platform",
    type=click.Choice(list(PLATFORMS)),
    default="electron",
    show_default=True,
    help="Device platform.",
)


def _cut_options(f: Any) -> Any:
    """``--cut-at-op N [--torn] [--seed S]``: cut power at flash operation N of this run."""
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


@click.group(name="emu")
def emu() -> None:
    """Emulate a Particle Gen2 device: flash, DCT, bootloader and the Device OS OTA path.

    The device lives in an image file, so a session spans commands:

    \b
      flashroom emu new --platform electron --profile stock --image dev.img
      flashroom emu ota --image dev.img app.bin          # 200K app: rejected, -1300
      flashroom emu new --platform electron --profile extended --image ext.img --force
      flashroom emu ota --image ext.img app.bin          # applied, running
      flashroom emu show --image ext.img
    """


@emu.command("new")
@platform_option
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default="stock",
    show_default=True,
    help="Firmware behaviour: stock Device OS 2.3.1, or extended (spec 9, Electron only).",
)
@click.option(
    "--bootloader",
    type=click.Choice(list(BOOTLOADER_VARIANTS)),
    default="resumable",
    show_default=True,
    help="resumable (>= 1003: copy retried after a power cut) or legacy (<= 1002).",
)
@click.option(
    "--granularity",
    type=click.Choice(list(GRANULARITIES)),
    default="word",
    show_default=True,
    help="What one flash operation is for --cut-at-op: a 32-bit word, or a whole write call.",
)
@_image_option
@click.option("--force", is_flag=True, help="Overwrite an existing image.")
@format_option
def new_cmd(
    platform: str,
    profile: str,
    bootloader: str,
    granularity: str,
    image: Path,
    force: bool,
    fmt: str,
) -> None:
    """Create a fresh device: Device OS 2.3.1, a small app and (stock) a factory image.

    Example: flashroom emu new --platform electron --profile extended --image dev.img
    """
    from flashroom.emu.device import Device

    if image.exists() and not force:
        raise UsageError(f"{image} already exists: pass --force to overwrite it")
    dev = Device.new(platform, profile, bootloader, granularity=granularity)  # type: ignore[arg-type]
    out = dev.boot()
    dev.save(image)
    _finish(out, fmt, f"new {platform} ({profile}, {bootloader} bootloader) -> {image}", True)


@emu.command("install")
@_image_option
@click.argument(
    "modules", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--address",
    type=ADDRESS,
    default=None,
    help="DFU address (default: each module's module_start_address, as particle-cli does).",
)
@_cut_options
@format_option
def install_cmd(
    image: Path,
    modules: tuple[Path, ...],
    address: int | None,
    cut_at_op: int | None,
    torn: bool,
    seed: int,
    fmt: str,
) -> None:
    """Write modules directly, as USB DFU does (spec 3.4), then leave DFU and boot.

    DFU checks only the address range; no module parsing, no size limit per region.
    With --cut-at-op, power is cut at flash operation N of the (single-module) write.

    Example: flashroom emu install --image dev.img app-256k.bin
    """
    if address is not None and len(modules) != 1:
        raise UsageError("--address applies to a single module; got " + str(len(modules)))
    if cut_at_op is not None and len(modules) != 1:
        raise UsageError("--cut-at-op applies to a single module; got " + str(len(modules)))
    if torn and cut_at_op is None:
        raise UsageError("--torn needs --cut-at-op N")
    dev = _load(image)
    datas = [_read_module(p) for p in modules]
    out = None
    for i, (path, data) in enumerate(zip(modules, datas, strict=True)):
        try:
            out = dev.install(
                data,
                address=address,
                reset=i == len(datas) - 1,
                cut_at_op=cut_at_op,
                torn=torn,
                seed=seed,
            )
        except EmulatorError as e:
            hint = " (--address)" if address is None and "explicitly" in str(e) else ""
            raise EmulatorError(f"{path}: {e}{hint}") from None
    if out is not None:
        _require_cut(out, cut_at_op, "DFU install", image)
    dev.save(image)
    if out is None:  # pragma: no cover - nargs=-1 with required=True gives one module at least
        raise UsageError("no module to install")
    names = ", ".join(str(p) for p in modules)
    _finish(out, fmt, f"DFU install {names}", out.boot in ("application", "factory"))


@emu.command("ota")
@_image_option
@click.argument("module_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_cut_options
@click.option(
    "--granularity",
    type=click.Choice(list(GRANULARITIES)),
    default=None,
    help="Override the image's operation granularity for this run.",
)
@format_option
def ota_cmd(
    image: Path,
    module_path: Path,
    cut_at_op: int | None,
    torn: bool,
    seed: int,
    granularity: str | None,
    fmt: str,
) -> None:
    """Update over the air: receive path, reset, bootloader apply, boot (spec 4).

    Exit 0 when the module is applied (and, for an app, running), 1 when it was rejected or the
    power cut interrupted it (the device is then off: 'emu boot' powers it on), 2 on bad input.

    Example: flashroom emu ota --image dev.img app.bin --cut-at-op 70000
    """
    if torn and cut_at_op is None:
        raise UsageError("--torn needs --cut-at-op N")
    dev = _load(image)
    data = _read_module(module_path)
    saved = dev.flash.granularity
    if granularity is not None:
        dev.flash.granularity = granularity
    out = dev.ota(data, cut_at_op=cut_at_op, torn=torn, seed=seed)
    dev.flash.granularity = saved
    _require_cut(out, cut_at_op, "OTA", image)
    dev.save(image)
    _finish(out, fmt, f"OTA {module_path}", out.result == "applied")


@emu.command("boot")
@_image_option
@click.option(
    "--button",
    "button_s",
    type=FiniteFloatRange(min=0),
    default=0.0,
    help="Seconds the MODE button is held at reset (1 safe mode, 3 DFU, 6.5 factory reset).",
)
@click.option(
    "--factory-reset",
    is_flag=True,
    help="Request a factory reset from the running firmware (System.factoryReset(), spec 5.2).",
)
@_cut_options
@format_option
def boot_cmd(
    image: Path,
    button_s: float,
    factory_reset: bool,
    cut_at_op: int | None,
    torn: bool,
    seed: int,
    fmt: str,
) -> None:
    """Power the device on again (after a power cut, or to see how it boots now).

    With --cut-at-op, power is cut again at flash operation N of this boot (for example in
    the middle of a bootloader copy that an earlier cut left pending: a double fault).

    Example: flashroom emu boot --image dev.img --cut-at-op 3 --format json
    """
    if torn and cut_at_op is None:
        raise UsageError("--torn needs --cut-at-op N")
    if factory_reset and cut_at_op is not None:
        raise UsageError("--cut-at-op cannot be combined with --factory-reset")
    if factory_reset and button_s:
        raise UsageError(
            f"--button {button_s:g} cannot be combined with --factory-reset: a software factory "
            "reset is requested by the running firmware (spec 5.2), not by holding MODE"
        )
    dev = _load(image)
    out = (
        dev.factory_reset()
        if factory_reset
        else dev.boot(button_s=button_s, cut_at_op=cut_at_op, torn=torn, seed=seed)
    )
    _require_cut(out, cut_at_op, "boot", image)
    dev.save(image)
    _finish(out, fmt, f"boot {image}", out.boot != "bricked")


@emu.command("show")
@_image_option
@format_option
def show_cmd(image: Path, fmt: str) -> None:
    """Show the flash map with what each region holds now, the DCT copies and slots.

    Example: flashroom emu show --image dev.img
    """
    from rich.table import Table

    from flashroom.emu.inspect import show

    dev = _load(image)
    doc = show(dev)
    if fmt == "json":
        emit_json(doc)
        return
    con = _console()
    con.print(
        f"[bold]{doc['platform']}[/bold] ({doc['profile']}), bootloader "
        f"{doc['bootloader']} v{doc['bootloader_version']}, state [bold]{doc['state']}[/bold]"
        + (f" ({doc['reason']})" if doc["reason"] else "")
    )
    con.print(f"running: {_running_text(doc['running'])}", markup=False)
    t = Table(title="flash map", title_justify="left")
    # Addresses and names stay whole; on a narrow console (80 columns) the detail follows the
    # table as lines instead of being squeezed into a column.
    wide = con.width >= 110
    cols = ["Region", "Start", "End (excl.)", "Sectors", "Erases", "Holds"]
    for col in [*cols, "Detail"] if wide else cols:
        t.add_column(col, no_wrap=col != "Detail", overflow="fold")
    for r in doc["regions"]:
        sec = r["sectors"]
        t.add_row(
            r["name"],
            r["start"],
            r["end"],
            "-" if not sec else (str(sec[0]) if len(sec) == 1 else f"{sec[0]}-{sec[-1]}"),
            str(r["erases"]),
            r["content"],
            *([r["detail"]] if wide else []),
        )
    con.print(t)
    if not wide:
        for r in doc["regions"]:
            if r["detail"]:
                con.print(f"  {r['name']}: {r['detail']}", markup=False)
    dct = doc["dct"]
    d = Table(title="DCT copies (spec 8.1)", title_justify="left")
    for col in ("Copy", "Address", "Seal", "Counter", "CRC", "Current"):
        d.add_column(col)
    for i, c in enumerate(dct["copies"]):
        d.add_row(
            str(i),
            c["address"],
            c["seal"],
            str(c["counter"]),
            "ok" if c["crc_ok"] else "bad",
            "yes" if dct["current"] == i else "",
        )
    con.print(d)
    if dct["slots"] is not None:
        s = Table(title="flash_modules slots (app DCT 0xB24, spec 4.3)", title_justify="left")
        for col in ("Slot", "State", "Source", "Destination", "Length", "Flags", "Function"):
            s.add_column(col)
        for i, sl in enumerate(dct["slots"]):
            s.add_row(
                str(i),
                sl["state"],
                sl["source_address"],
                sl["destination_address"],
                str(sl["length"]),
                sl["flags"],
                str(sl["module_function"]),
            )
        con.print(s)


__all__ = ["emu"]
