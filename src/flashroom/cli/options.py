"""The options several commands share, each declared once with one default.

``--platform``, ``--profile``, ``--bootloader``, ``--granularity``, ``--image``,
``-o/--output`` (the one file a command writes), ``--out`` (the folder a command writes several
files into) and ``--fast-ota/--no-fast-ota`` mean the same thing wherever they appear; their
choices come from the registries (:mod:`flashroom.deviceos`, the flash model's granularities).

Outputs follow one rule: flashroom creates only the folder it is told to write into (``--out
DIR``, not its parents), never the folder of an output file (``-o FILE``), and never replaces
what is not a regular file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from flashroom.cli.common import PathType
from flashroom.deviceos import GEN2_PLATFORMS, GEN2_PROFILES, PLATFORMS, default_profile
from flashroom.deviceos.gen2 import BOOTLOADER_VARIANTS
from flashroom.errors import ParamError

F = TypeVar("F", bound=Callable[..., Any])

#: ``flashroom.emu.flash.GRANULARITIES``, spelled out so that ``flashroom --help`` does not
#: import numpy (a test checks they agree).
GRANULARITIES = ("word", "chunk")


def platform_option(*, gen2_only: bool = True, required: bool = False) -> Callable[[F], F]:
    """``--platform``: a registry key in any case (``electron``, ``Electron``).

    Args:
        gen2_only: only the platforms the emulator, the OTA path and the module tools model.
        required: no default (the layout commands: the platform is the question).
    """
    names = GEN2_PLATFORMS if gen2_only else tuple(PLATFORMS)
    ids = ", ".join(f"{n} {PLATFORMS[n].platform_id}" for n in names)
    return click.option(
        "--platform",
        "platform",
        type=click.Choice(list(names), case_sensitive=False),
        default=None if required else "electron",
        required=required,
        show_default=not required,
        help=f"Device platform ({ids}"
        + ("; argon and boron are Gen3 comparison maps)." if not gen2_only else ")."),
    )


def profile_option(f: F) -> F:
    """``--profile``: the firmware behaviour; the default depends on ``--platform`` only."""
    return click.option(
        "--profile",
        type=click.Choice(list(GEN2_PROFILES)),
        default=None,
        help="Firmware behaviour: stock Device OS 2.3.1, or extended (the 256K layout, Electron "
        "only; docs/device-os.md#extended). Default: the platform's largest layout (extended "
        "on Electron, stock on Photon and P1).",
    )(f)


def resolve_profile(platform: str, profile: str | None) -> str:
    """The ``--profile`` value, or the platform's default when none was given."""
    return profile if profile is not None else default_profile(platform)


def bootloader_option(f: F) -> F:
    """``--bootloader``: the installed bootloader's copy semantics (spec 4.5)."""
    return click.option(
        "--bootloader",
        type=click.Choice(list(BOOTLOADER_VARIANTS)),
        default=None,
        show_default="resumable",
        help="The model bootloader's copy semantics (docs/device-os.md#copy): resumable (>= 1003: "
        "a copy cut by a power loss is retried at the next boot) or legacy (<= 1002: the slot is "
        "cleared first). With --bootloader-firmware the file's own version decides.",
    )(f)


def resolve_bootloader(bootloader: str | None, bootloader_firmware: Path | None) -> str:
    """The ``--bootloader`` value; refused next to ``--bootloader-firmware`` (whose version
    decides)."""
    if bootloader is not None and bootloader_firmware is not None:
        raise ParamError(
            f"bootloader {bootloader} names a model variant, but bootloader_firmware "
            f"{bootloader_firmware} is real code: its own module_version decides (1002 and "
            "older: legacy, 1003 and newer: resumable); drop one of the two",
            "bootloader",
            "bootloader_firmware",
        )
    return bootloader or "resumable"


def bootloader_firmware_option(*, help: str | None = None) -> Callable[[F], F]:
    """``--bootloader-firmware FILE``: a real bootloader that every boot executes."""
    return click.option(
        "--bootloader-firmware",
        type=PathType(exists=True, dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help=help
        or "A real Electron bootloader (.bin or .elf, e.g. electron-bootloader@v2.3.1.bin): "
        "written into sector 0, and every boot then executes sector 0 instruction by "
        "instruction (Unicorn) instead of the Python model.",
    )


def system_firmware_option(*, help: str | None = None) -> Callable[[F], F]:
    """``--system-firmware DIR``: real system modules whose OTA path runs."""
    return click.option(
        "--system-firmware",
        type=PathType(exists=True, file_okay=False, path_type=Path),
        default=None,
        metavar="DIR",
        help=help
        or "A folder with the three real Electron system modules (found by module info; an "
        ".elf beside each .bin gives the symbols): installed, and OTA updates run their real "
        "receive/finish code (docs/real-code.md). The profile follows their version.",
    )


def granularity_option(
    *, default: str | None = "word", help: str | None = None
) -> Callable[[F], F]:
    """``--granularity``: what one flash operation is for cuts (word, or a whole write call)."""
    return click.option(
        "--granularity",
        type=click.Choice(list(GRANULARITIES)),
        default=default,
        show_default=default is not None,
        help=help
        or "What one flash operation is: a program unit (32-bit word, halfword or byte, as the "
        "code programs it) or a whole write call.",
    )


def image_option(f: F) -> F:
    """``--image``: the device image file."""
    return click.option(
        "--image",
        "image",
        type=PathType(dir_okay=False, path_type=Path),
        required=True,
        help="Device image file (created by 'flashroom emu new').",
    )(f)


_OUTPUT_HELP = (
    "File to write, in an existing folder (replaced atomically, keeping its permissions; "
    "never left half-written)."
)


def output_option(*, help: str = _OUTPUT_HELP) -> Callable[[F], F]:
    """``-o/--output FILE``: the one file a command writes."""
    return click.option("-o", "--output", required=True, type=PathType(dir_okay=False), help=help)


def out_dir_option(
    *, help: str, default: Path | None = None, required: bool = False
) -> Callable[[F], F]:
    """``--out DIR``: the folder a command writes several files into, as one set."""
    return click.option(
        "--out",
        "out",
        type=PathType(file_okay=False, path_type=Path),
        default=default,
        required=required,
        show_default=default is not None,
        help=help + " A folder, created when missing (not its parents); the files are written as "
        "a set: "
        "all of them or, on an error, none.",
    )


def fast_ota_option(*, help: str) -> Callable[[F], F]:
    """``--fast-ota/--no-fast-ota``: fast OTA (chunks without per-chunk replies), on by
    default on both ends; ``help`` says what this end does with it."""
    return click.option(
        "--fast-ota/--no-fast-ota", "fast_ota", default=True, show_default=True, help=help
    )


__all__ = [
    "GRANULARITIES",
    "bootloader_firmware_option",
    "bootloader_option",
    "fast_ota_option",
    "granularity_option",
    "image_option",
    "out_dir_option",
    "output_option",
    "platform_option",
    "profile_option",
    "resolve_bootloader",
    "resolve_profile",
    "system_firmware_option",
]
