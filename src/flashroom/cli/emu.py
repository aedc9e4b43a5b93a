"""``flashroom emu``: a persistent emulated Photon/P1/Electron in a device image file.

A thin shell over :mod:`flashroom.emu` and the campaigns of :mod:`flashroom.scenarios`: each
command parses its options, loads the image, calls one API function, saves the image atomically
and renders the result (:mod:`flashroom.cli.emu_render`). Verbs: ``new``, ``install``, ``ota``,
``boot``, ``show`` (the device), ``sweep``, ``badinput`` (the fault campaigns) and ``connect``
(an update from ``flashroom ota serve``).

The emulator, the campaigns and the OTA transport import numpy and aiocoap, so they are imported
inside the commands: ``flashroom --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from flashroom.atomicfile import check_output_dir, check_output_file
from flashroom.cli.common import (
    ADDRESS,
    SIZE,
    CheckFailed,
    FlashroomGroup,
    PathType,
    emit_json,
    format_option,
    progress_bar,
    warn,
)
from flashroom.cli.emu_render import (
    render_badinput,
    render_connect,
    render_show,
    render_sweep,
)
from flashroom.cli.emu_support import (
    ConnectOptions,
    Total,
    compare_model_option,
    cut_options,
    finish,
    load_image,
    read_module,
    require_cut,
    run_connect,
    run_step,
    stream_args,
)
from flashroom.cli.options import (
    GRANULARITIES,
    bootloader_firmware_option,
    bootloader_option,
    fast_ota_option,
    granularity_option,
    image_option,
    platform_option,
    profile_option,
    resolve_bootloader,
    resolve_profile,
    system_firmware_option,
)
from flashroom.cli.params import FiniteFloatRange
from flashroom.errors import EmulatorError, UsageError
from flashroom.ota.link import PRESETS
from flashroom.scenarios.sweep_config import METHODS
from flashroom.scenarios.sweep_scenarios import SCENARIOS


@click.group(name="emu", cls=FlashroomGroup)
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
@platform_option()
@profile_option
@bootloader_option
@granularity_option(
    help="What one flash operation is for --cut-at-op: a program unit (32-bit word, halfword or "
    "byte, as the code programs it), or a whole write call."
)
@image_option
@bootloader_firmware_option()
@system_firmware_option()
@click.option("--force", is_flag=True, help="Overwrite an existing image.")
@format_option
def new_cmd(
    platform: str,
    profile: str | None,
    bootloader: str | None,
    granularity: str,
    image: Path,
    bootloader_firmware: Path | None,
    system_firmware: Path | None,
    force: bool,
    fmt: str,
) -> None:
    """Create a fresh device: Device OS 2.3.1, a small app and (stock) a factory image.

    By default every part of the device is flashroom's Python model. With
    --bootloader-firmware the real bootloader runs at every boot (including one replaced
    over the air); with --system-firmware the real system modules are installed and OTA
    updates run their real receive/finish code. What stays model either way: the system's
    boot checks, the cloud session and the application.

    \b
    Example:
      flashroom emu new --platform electron --profile extended --image dev.img
      flashroom emu new --image real.img \\
          --bootloader-firmware electron-bootloader@v2.3.1.bin \\
          --system-firmware ../shared/fixtures/device-os
    """
    from flashroom.emu.device import Device, profile_of_system_parts  # numpy: deferred
    from flashroom.emu.realcode import load_system_dir  # the same

    variant = resolve_bootloader(bootloader, bootloader_firmware)
    if system_firmware is not None and profile is None:
        profile = profile_of_system_parts(load_system_dir(system_firmware))
    profile = resolve_profile(platform, profile)
    if os.path.lexists(image) and not force:
        raise UsageError(f"{image} already exists: pass --force to overwrite it")
    check_output_file(image)  # a bad path fails before the device is built
    dev = Device.new(
        platform,
        profile,
        variant,
        granularity=granularity,  # type: ignore[arg-type]
        bootloader_firmware=bootloader_firmware,
        system_firmware=system_firmware,
    )
    out = dev.boot()
    dev.save(image)
    what = (
        f"real bootloader {bootloader_firmware.name}"
        if bootloader_firmware is not None
        else f"{variant} bootloader"
    )
    if system_firmware is not None:
        what += f", real system from {system_firmware}"
    finish(out, fmt, f"new {platform} ({profile}, {what}) -> {image}", True)


@emu.command("install")
@image_option
@click.argument(
    "modules", nargs=-1, required=True, type=PathType(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--address",
    type=ADDRESS,
    default=None,
    help="DFU address (default: each module's module_start_address, as particle-cli does).",
)
@cut_options
@format_option
def install_cmd(
    image: Path,
    modules: tuple[Path, ...],
    address: int | None,
    cut_at_op: int | None,
    torn: bool,
    seed: int,
    fail_at_op: int | None,
    fmt: str,
) -> None:
    """Write modules directly, as USB DFU does (docs/device-os.md#dfu), then leave DFU and boot.

    DFU checks only the address range; no module parsing, no size limit per region.
    With --cut-at-op, power is cut at flash operation N of the (single-module) write; with
    --fail-at-op, that operation fails instead and the DFU write stops with an error.

    Example: flashroom emu install --image dev.img app-256k.bin
    """
    if address is not None and len(modules) != 1:
        raise UsageError("--address applies to a single module; got " + str(len(modules)))
    if (cut_at_op is not None or fail_at_op is not None) and len(modules) != 1:
        raise UsageError(
            "--cut-at-op/--fail-at-op apply to a single module; got " + str(len(modules))
        )
    if torn and cut_at_op is None:
        raise UsageError("--torn needs --cut-at-op N")
    dev = load_image(image)
    datas = [read_module(p) for p in modules]
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
                fail_at_op=fail_at_op,
            )
        except EmulatorError as e:
            hint = " (--address)" if address is None and "explicitly" in str(e) else ""
            raise EmulatorError(f"{path}: {e}{hint}") from None
    if out is not None:
        require_cut(dev, out, cut_at_op, fail_at_op, "DFU install", image)
    dev.save(image)
    if out is None:  # pragma: no cover - nargs=-1 with required=True gives one module at least
        raise UsageError("no module to install")
    names = ", ".join(str(p) for p in modules)
    finish(out, fmt, f"DFU install {names}", out.boot in ("application", "factory"))


@emu.command("ota")
@image_option
@click.argument(
    "module_paths",
    nargs=-1,
    required=True,
    type=PathType(exists=True, dir_okay=False, path_type=Path),
)
@cut_options
@granularity_option(default=None, help="Override the image's operation granularity for this run.")
@compare_model_option
@format_option
def ota_cmd(
    image: Path,
    module_paths: tuple[Path, ...],
    cut_at_op: int | None,
    torn: bool,
    seed: int,
    fail_at_op: int | None,
    granularity: str | None,
    compare_model: bool,
    fmt: str,
) -> None:
    """Update over the air: receive path, reset, bootloader apply, boot.

    The steps are those of Device OS (docs/device-os.md#ota-receive and the sections after it).

    Several modules are sent one after the other, each once the previous one is applied (a
    migration: idx 3, idx 1, idx 2, app); --cut-at-op and --fail-at-op then count the flash
    operations of all of them, and the report is the last update's (with every step's under
    "steps" in JSON).

    The result says what happened to the flash:
    applied (the new module is in place and runs);
    installed_not_running (in place, but the device does not run it: safe mode for an unmet
    dependency, crashed for a compressed module);
    rejected (the running app, the pending slots and everything outside the OTA region are
    unchanged; the report says whether the OTA region now holds the refused image);
    damaged (not applied, and something outside the OTA region changed: the report names it);
    interrupted (the power cut fired: the device is off, 'emu boot' powers it on).

    Exit 0 when applied, 1 for any other result, 2 on bad input.
    --fail-at-op N makes operation N fail (a brown-out's FLASH_SR error) and shows what Device
    OS does about it: FLASH_Update ignores it, the bootloader's copy stops, the DCT retries.

    A delta or compressed file ('flashroom ota diff') is sent as a streamed update, which an
    extended device decodes into the OTA scratch (docs/delta-ota.md).

    \b
    Example:
      flashroom emu ota --image dev.img app.bin --cut-at-op 70000
      flashroom emu ota --image stock.img step1.bin step2.bin step3.bin step4.bin
    """
    from flashroom.emu.stream import streamed_ota_args  # numpy: deferred for start-up time

    if torn and cut_at_op is None:
        raise UsageError("--torn needs --cut-at-op N")
    if compare_model and len(module_paths) > 1:
        raise UsageError("--compare-model compares one update: give one module")
    dev = load_image(image)
    datas = [read_module(p) for p in module_paths]
    saved = dev.flash.granularity
    if granularity is not None:
        dev.flash.granularity = granularity
    steps: list[Any] = []
    cmp = None
    cut, fail = cut_at_op, fail_at_op
    any_failed = False
    for data in datas:
        out, cmp = run_step(
            dev,
            lambda d=data, c=cut, f=fail: dev.ota(
                d,
                cut_at_op=c,
                torn=torn,
                seed=seed,
                fail_at_op=f,
                **stream_args(dev, d, streamed_ota_args),
            ),
            compare_model,
        )
        steps.append(out)
        fired = dev.fault_fired
        if cut is not None:
            cut = None if fired else cut - out.flash_ops  # numbered across the updates
        if fail is not None:
            failed_here = fired
            fail = None if fired else fail - out.flash_ops
            fired = failed_here
            any_failed = any_failed or failed_here
        if out.result != "applied":
            break
    dev.flash.granularity = saved
    last = steps[-1]
    if len(datas) > 1:
        # the fault must land in one of the updates: check against the whole sequence
        total = sum(o.flash_ops for o in steps)
        dev.fault_fired = any_failed or dev.fault_fired
        require_cut(dev, Total(last, total), cut_at_op, fail_at_op, "OTA sequence", image)
    else:
        require_cut(dev, last, cut_at_op, fail_at_op, "OTA", image)
    dev.save(image)
    title = f"OTA {module_paths[-1]}" if len(datas) == 1 else (
        f"OTA {len(steps)} of {len(datas)} updates, last {module_paths[len(steps) - 1]}"
    )  # fmt: skip
    extra = None if len(datas) == 1 else [o.to_json() for o in steps]
    finish(last, fmt, title, last.result == "applied" and len(steps) == len(datas), cmp,
            steps=extra)  # fmt: skip


@emu.command("boot")
@image_option
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
    help=(
        "Request a factory reset from the running firmware (System.factoryReset(), "
        "docs/device-os.md#factory-reset)."
    ),
)
@cut_options
@compare_model_option
@format_option
def boot_cmd(
    image: Path,
    button_s: float,
    factory_reset: bool,
    cut_at_op: int | None,
    torn: bool,
    seed: int,
    fail_at_op: int | None,
    compare_model: bool,
    fmt: str,
) -> None:
    """Power the device on again (after a power cut, or to see how it boots now).

    With --cut-at-op, power is cut again at flash operation N of this boot (for example in
    the middle of a bootloader copy that an earlier cut left pending: a double fault).

    Example: flashroom emu boot --image dev.img --cut-at-op 3 --format json
    """
    if torn and cut_at_op is None:
        raise UsageError("--torn needs --cut-at-op N")
    if factory_reset and (cut_at_op is not None or fail_at_op is not None):
        raise UsageError("--cut-at-op/--fail-at-op cannot be combined with --factory-reset")
    if factory_reset and button_s:
        raise UsageError(
            f"--button {button_s:g} cannot be combined with --factory-reset: a software factory "
            "reset is requested by the running firmware (docs/device-os.md#factory-reset), not by "
            "holding MODE"
        )
    dev = load_image(image)
    out, cmp = run_step(
        dev,
        lambda: (
            dev.factory_reset()
            if factory_reset
            else dev.boot(
                button_s=button_s,
                cut_at_op=cut_at_op,
                torn=torn,
                seed=seed,
                fail_at_op=fail_at_op,
            )
        ),
        compare_model,
    )
    require_cut(dev, out, cut_at_op, fail_at_op, "boot", image)
    dev.save(image)
    finish(out, fmt, f"boot {image}", out.boot != "bricked", cmp)


@emu.command("show")
@image_option
@format_option
def show_cmd(image: Path, fmt: str) -> None:
    """Show the flash map with what each region holds now, the DCT copies and slots.

    Example: flashroom emu show --image dev.img
    """
    from flashroom.emu.inspect import show  # numpy: deferred for start-up time

    dev = load_image(image, writable=False)
    doc = show(dev)
    for w in doc["warnings"]:
        warn(w)
    if fmt == "json":
        emit_json(doc)
        return
    render_show(doc)


# --------------------------------------------------------------------------- sweep
@emu.command(name="sweep")
@platform_option()
@profile_option
@bootloader_option
@click.option(
    "--scenario",
    type=click.Choice(list(SCENARIOS)),
    default="user-ota",
    show_default=True,
    help="What is interrupted: "
    + "; ".join(f"{name}: {s.help}" for name, s in SCENARIOS.items())
    + ".",
)
@click.option("--app-size", type=SIZE, default="256K", show_default=True, help="New module size.")
@click.option("--old-size", type=SIZE, default="100K", show_default=True, help="Old app size.")
@granularity_option(
    help="word: a cut point before every program unit (32-bit word, halfword or byte); "
    "chunk: before every program call."
)
@click.option("--torn", is_flag=True, help="Also try a torn (partial) version of every cut.")
@click.option(
    "--stride", type=int, default=1, show_default=True, help="Test every Nth cut point only."
)
@click.option("--first-op", type=int, default=0, show_default=True, help="First cut point.")
@click.option("--last-op", type=int, default=None, help="One past the last cut point.")
@click.option(
    "--recovery-cuts",
    type=int,
    default=0,
    show_default=True,
    help="Per cut point, also cut the recovery boot at this many spread-out operations.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Content and torn seed.")
@click.option(
    "--method",
    type=click.Choice([str(m) for m in METHODS]),
    default="equiv",
    show_default=True,
    help="replay: restore the checkpoint at the cut's flash call, cut, boot every point; "
    "equiv: replay, but a point whose state differs from a booted one only in bytes that boot "
    "never depended on is counted without booting (proven equivalent); rerun: re-run the "
    "whole scenario per point (as emu ota --cut-at-op does).",
)
@click.option(
    "--workers",
    type=int,
    default=os.cpu_count() or 1,
    show_default="the CPU count",
    help="Local worker processes the cut points run on (1: in this process).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run the cut points on this existing Dask cluster instead (dask.distributed); the "
    "results are identical.",
)
@click.option(
    "--fault",
    type=click.Choice(["cut", "fail"]),
    default="cut",
    show_default=True,
    help="cut: power is cut at each point; fail: each point's operation fails with an FLASH_SR "
    "error (a brown-out) and the firmware carries on (needs --method rerun).",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Test a seeded sample of N cut points instead of every one (the output says so).",
)
@click.option(
    "--save-failing",
    type=PathType(file_okay=False, path_type=Path),
    default=None,
    help="Write the device image, old/new modules and a reproduce.sh into this folder.",
)
@bootloader_firmware_option()
@system_firmware_option()
@click.option(
    "--compare-model",
    is_flag=True,
    help="With --bootloader-firmware: at every cut point boot the Python model too, from the "
    "same state, and compare all 1 MB of flash, the backup registers, the boot outcome and the "
    "operation sequence (kind, address, width). Exit 1 on any difference.",
)
@click.option(
    "--migration-modules",
    type=PathType(exists=True, file_okay=False),
    default=None,
    metavar="OUT",
    help="--scenario migrate: send the patched system parts and the largest app of this "
    "'devos build' output (default: synthetic stand-ins with the build's sizes and versions).",
)
@click.option(
    "--plot",
    "plot_path",
    type=PathType(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE.png",
    help="Draw the update's operation timeline with every cut point coloured by its outcome "
    "(model and real side by side with --compare-model).",
)
@format_option
def sweep(
    platform: str,
    profile: str | None,
    bootloader: str,
    scenario: str,
    app_size: int,
    old_size: int,
    granularity: str,
    torn: bool,
    stride: int,
    first_op: int,
    last_op: int | None,
    recovery_cuts: int,
    seed: int,
    method: str,
    workers: int,
    scheduler: str | None,
    fault: str,
    sample: int | None,
    save_failing: Path | None,
    bootloader_firmware: Path | None,
    system_firmware: Path | None,
    compare_model: bool,
    migration_modules: str | None,
    plot_path: Path | None,
    fmt: str,
) -> None:
    """Cut power before every flash operation of an update and check the device survives.

    The scenario runs once to count its flash operations; then, for every cut point, the
    device is restored, power is cut there (with --torn also mid-operation), and it boots
    again. Each point is classified new_app, old_app, safe_mode, dfu, brick or
    invariant_violation (old or new image, never a mix; the update completes or the old app
    stays; the DCT stays valid; no sector erased more than planned). Exits 1 on any brick or
    invariant violation.

    \b
    Example:
      flashroom emu sweep --profile extended --scenario user-ota --app-size 256K --workers 2
      flashroom emu sweep --bootloader legacy --granularity chunk   # the legacy copy hazard
      flashroom emu sweep --granularity chunk --torn --compare-model \\
          --bootloader-firmware electron-bootloader@v2.3.1.bin --plot timeline.png

    With --bootloader-firmware every recovery boot runs the real bootloader (every point is
    booted: --method equiv runs as replay); --compare-model also boots the model from the same
    state and reports where the two differ. At word granularity a 256K update has ~140,000
    points: use --sample N (the output says it sampled).
    """
    from flashroom.scenarios.sweep import (  # numpy: deferred for start-up time
        SweepConfig,
        run_sweep,
    )
    from flashroom.scenarios.sweep import save_failing as save  # numpy: deferred for start-up time

    if system_firmware is not None and profile is None:
        from flashroom.emu.device import profile_of_system_parts  # numpy: deferred
        from flashroom.emu.realcode import load_system_dir  # the same

        profile = profile_of_system_parts(load_system_dir(system_firmware))
    if scenario == "migrate" and profile is None:
        profile = "stock"  # a migration starts from stock
    cfg = SweepConfig(
        platform=platform,
        profile=resolve_profile(platform, profile),
        bootloader=resolve_bootloader(bootloader, bootloader_firmware),
        scenario=scenario,
        app_size=app_size,
        old_size=old_size,
        granularity=granularity,
        torn=torn,
        stride=stride,
        first_op=first_op,
        last_op=last_op,
        recovery_cuts=recovery_cuts,
        seed=seed,
        method=method,
        workers=workers,
        scheduler=scheduler,
        fault=fault,
        sample=sample,
        bootloader_firmware=None if bootloader_firmware is None else str(bootloader_firmware),
        system_firmware=None if system_firmware is None else str(system_firmware),
        compare_model=compare_model,
        keep_points=plot_path is not None,
        migration_modules=migration_modules,
    )
    cfg.validate()
    if save_failing is not None:
        check_output_dir(save_failing)  # fail now, not after the sweep
    if plot_path is not None:
        check_output_file(plot_path)  # the folder must exist; a link or device is refused
    with progress_bar(f"sweep {scenario}") as progress:
        result = run_sweep(cfg, progress=progress)
    saved: list[Path] = []
    if save_failing is not None:
        saved = save(result, save_failing)
    if plot_path is not None:
        from flashroom.report.plot import plot_sweep  # matplotlib: deferred

        plot_sweep(result, plot_path)
    cmp = result.comparison
    if fmt == "json":
        data = result.to_json()
        if save_failing is not None:
            data["reproduce"] = result.reproduce(image_dir=str(save_failing))
            data["saved"] = [str(p) for p in saved]
            if "comparison" in data:
                data["comparison"]["reproduce"] = result.reproduce_difference(str(save_failing))
        if plot_path is not None:
            data["plot"] = str(plot_path)
        emit_json(data)
    else:
        render_sweep(result, save_failing)
        if plot_path is not None:
            click.echo(f"timeline: {plot_path}")
    if not result.ok or (cmp is not None and cmp.differing):
        raise CheckFailed()


@emu.command(name="badinput")
@platform_option()
@profile_option
@click.option("--case", "cases", multiple=True, help="Run only this case (repeatable).")
@format_option
def badinput(platform: str, profile: str | None, cases: tuple[str, ...], fmt: str) -> None:
    """Throw a catalogue of malformed modules and OTA sessions at a fresh device.

    Each case must end with a specific error (code and message) and leave the running app
    unchanged byte for byte. Exits 1 if any case is accepted or changes the running app.

    \b
    Example:
      flashroom emu badinput --platform electron --profile extended
      flashroom emu badinput --case bad_crc --format json
    """
    from flashroom.scenarios.badinput import run_campaign  # numpy: deferred for start-up time

    with progress_bar("bad inputs") as progress:
        result = run_campaign(
            platform=platform,
            profile=resolve_profile(platform, profile),
            only=list(cases) or None,
            progress=progress,
        )
    if fmt == "json":
        emit_json(result.to_json())
    else:
        render_badinput(result)
    if not result.ok:
        raise CheckFailed()


_PROB = FiniteFloatRange(0.0, 1.0, max_open=True)


@emu.command()
@click.argument("url")
@image_option
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
    "TIMING_FLASH_UPDATE_TIMEOUT, 300 on Electron, 30 on Photon/P1; docs/device-os.md#protocol).",
)
@click.option(
    "--time-limit",
    type=FiniteFloatRange(0.1),
    default=900.0,
    show_default=True,
    help="Real seconds before the run is abandoned.",
)
@fast_ota_option(
    help="The device's FAST_OTA connection property: accept fast OTA when the server asks "
    "for it (docs/device-os.md#protocol)."
)
@click.option(
    "--psk-file",
    type=PathType(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Talk DTLS 1.2 with a pre-shared key from FILE ('DEVICE_ID_HEX KEY_HEX' lines, as "
    "ota serve --psk-file reads): a single line makes that ID the device's; otherwise the "
    "line of the device's own ID is used. Without it: plain CoAP, for an --insecure server.",
)
@click.option("--save/--no-save", default=True, show_default=True, help="Write the image back.")
@click.option(
    "--stream/--no-stream",
    default=True,
    show_default=True,
    help="Extended profile: say in the Hello that the device applies delta and compressed "
    "updates, and apply them (modelled, docs/delta-ota.md). --no-stream: raw bytes only, as "
    "the real extended firmware.",
)
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
    psk_file: Path | None,
    save: bool,
    stream: bool,
    fmt: str,
) -> None:
    """Connect an emulated device to an OTA server and take its update.

    The device says Hello, receives the update through its system OTA path (erase, chunk
    writes, HAL_FLASH_End), resets and reports what it cost on the emulated link: payload and
    wire bytes (CoAP + UDP + IPv4 + DTLS), messages, retransmissions and the simulated link
    time. An extended device says in its Hello that it applies delta and compressed files and
    decodes whatever it gets into the OTA scratch (modelled, docs/delta-ota.md); the report
    separates the bytes received from the bytes written. Exits 1 when the update was not
    applied (the report says why: result installed_not_running when the system took it but
    the device does not run it after the reset); exits 2 when the server does not answer
    ("no answer from URL after N attempts", within a few retransmission timeouts) or the DTLS
    handshake fails.

    \b
    Example:
      flashroom emu connect coap://127.0.0.1:5683 --image dev.img --link 3g --psk-file keys.txt
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
        psk_file,
        stream,
    )
    result = run_connect(opts)
    data = result.to_json()
    if fmt == "json":
        emit_json(data)
    else:
        render_connect(data)
    if result.result != "applied":
        raise CheckFailed()


__all__ = ["GRANULARITIES", "emu"]
