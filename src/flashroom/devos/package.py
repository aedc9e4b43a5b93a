"""Package a build output for flashing: one DfuSe ``.dfu`` per module and ``FLASHING.md``.

Each ``.dfu`` holds one element, the module at its ``module_start_address``, in target 0
("Internal Flash", alternate setting 0), with a DFU suffix for Particle's DFU mode (``2b04:d00a``,
:mod:`flashroom.particle.dfuse`). ``FLASHING.md`` gives the exact commands, in order: the system
parts first (the new user part depends on them), then the user part; the bootloader apart, with
its warning (spec 4.7: a bootloader write is not power-loss safe).

dfu-util refuses an address (``-s 0x08080000``) with a DfuSe file ("This is a DfuSe file, not
meant for raw download", dfu-util ``dfuse.c``): a ``.dfu`` carries its own address and is
flashed with ``-s :leave`` or no ``-s`` at all; the raw ``.bin`` takes the address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flashroom.atomicfile import write_bytes_atomic, write_text_atomic
from flashroom.devos.changes import PATCHED_SYSTEM_VERSION, STOCK_SYSTEM_VERSION
from flashroom.devos.manifest import Manifest, ModuleEntry
from flashroom.particle.dfuse import PARTICLE_DFU_PID, PARTICLE_VID, DfuFile, dfuse_for_module

FLASHING_NAME = "FLASHING.md"
_DEVICE = f"{PARTICLE_VID:04x}:{PARTICLE_DFU_PID:04x}"


@dataclass(frozen=True)
class PackagedModule:
    """One ``.dfu`` written: for which module, where it writes, how big."""

    entry: ModuleEntry
    dfu_file: str  # relative to the output folder
    size: int

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.entry.name,
            "dfu": self.dfu_file,
            "bin": self.entry.file,
            "address": self.entry.start_address,
            "element_size": self.entry.size,
            "dfu_size": self.size,
            "module_function": self.entry.module_function,
            "module_function_name": self.entry.function_name,
            "module_index": self.entry.module_index,
            "module_version": self.entry.module_version,
        }


@dataclass(frozen=True)
class PackageResult:
    out: Path
    modules: tuple[PackagedModule, ...]
    flashing: str  # relative path of FLASHING.md

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "modules": [m.to_json() for m in self.modules],
            "flashing": self.flashing,
        }


def _dfu_util(arg: str | None, file: str) -> str:
    s = "" if arg is None else f" -s {arg}"
    return f"dfu-util -d {_DEVICE} -a 0{s} -D {file}"


def flashing_guide(manifest: Manifest) -> str:
    """The text of ``FLASHING.md`` for ``manifest``'s modules."""
    systems = manifest.system_parts
    users = manifest.user_parts
    boots = manifest.bootloaders
    patched = "system-version" in manifest.changes_applied
    lines = [
        "# Flashing this build onto an Electron",
        "",
        "Written by `flashroom devos package` from `manifest.json`. Device OS "
        f"{manifest.device_os_version}, platform {manifest.platform} ({manifest.platform_id}); "
        f"flashroom changes applied: {', '.join(manifest.changes_applied) or 'none'}.",
        "",
        "Put the Electron in DFU mode (hold MODE, tap RESET, release MODE when the LED blinks "
        "yellow); `dfu-util -l` then lists it as `[2b04:d00a]` with alternate setting 0 "
        '"Internal Flash". Each `.dfu` file carries its own address, so dfu-util is given '
        "none (`-s :leave` only asks it to leave DFU mode after the last file; dfu-util refuses "
        "an address with a DfuSe file). The raw `.bin` lines give the same writes with the "
        "address spelled out.",
        "",
        "## 1. System parts (in this order)",
        "",
    ]
    if patched:
        lines += [
            f"These are version {PATCHED_SYSTEM_VERSION}: a user part built here depends on "
            f"SYSTEM_PART idx 2 >= {PATCHED_SYSTEM_VERSION}, so stock {STOCK_SYSTEM_VERSION} "
            "system firmware keeps it in safe mode (docs/device-os.md#extended). Flash all three.",
            "",
        ]
    lines.append("```sh")
    for m in systems:
        lines.append(f"{_dfu_util(f'0x{m.start_address:08x}', m.file)}   # {_what(m)}")
    lines.append("# or, the same with the DfuSe files:")
    for m in systems:
        lines.append(_dfu_util(None, f"{m.name}.dfu"))
    lines += ["```", "", "## 2. User part", ""]
    if len(users) > 1:
        lines += ["Pick one; each is a complete user part for 0x08080000.", ""]
    lines.append("```sh")
    for m in users:
        lines.append(f"{_dfu_util(f'0x{m.start_address:08x}:leave', m.file)}   # {_what(m)}")
        lines.append(_dfu_util(":leave", f"{m.name}.dfu"))
    lines += ["```", "", "With the Particle CLI (it reads the address from the module):", ""]
    lines.append("```sh")
    for m in (*systems, *users):
        lines.append(f"particle flash --usb {m.file}")
    lines += [
        "```",
        "",
        "Or over serial (listening mode, blinking blue; YModem): the system then validates each "
        "module against its own bounds, so a user part larger than 128 KB is accepted only once "
        "the system parts above are installed (stock firmware refuses it with -1300, "
        "docs/device-os.md#extended "
        "#20).",
        "",
        "```sh",
    ]
    for m in (*systems, *users):
        lines.append(f"particle flash --serial {m.file}")
    lines += ["```", ""]
    if boots:
        lines += [
            "## 3. Bootloader (separately, only if needed)",
            "",
            "**Warning: a bootloader write is not power-loss safe.** Sector 0 is erased and "
            "rewritten in place (docs/device-os.md#bootloader-updates); a reset or power cut in "
            "between leaves a device that "
            "cannot boot and needs a JTAG/SWD programmer. Do it on a steady supply, never over "
            "a flaky USB hub.",
            "",
        ]
        for m in boots:
            lines += [
                f"`{m.file}` is version {m.module_version}. flashroom's patch leaves the "
                "bootloader unchanged (docs/device-os.md#extended: the v2.x copy has no user-size "
                "limit), so a "
                "device that already runs bootloader 1003 or later does not need it; the system "
                "parts require >= 1003 and idx 3 carries 1004, which it installs itself when "
                "the device has an older one (docs/device-os.md#bootloader-updates).",
                "",
                "```sh",
                f"{_dfu_util(f'0x{m.start_address:08x}:leave', m.file)}",
                _dfu_util(":leave", f"{m.name}.dfu"),
                f"particle flash --usb {m.file}",
                f"particle flash --serial {m.file}",
                "```",
                "",
            ]
    lines += [
        "## Modules",
        "",
        "| file | module | range | version | depends on | sha256 |",
        "|---|---|---|---|---|---|",
    ]
    for m in manifest.modules:
        deps = "; ".join(d.describe() for d in m.dependencies) or "-"
        lines.append(
            f"| `{m.file}` | {_what(m)} | 0x{m.start_address:08x}..0x{m.end_address:08x} "
            f"| {m.module_version} | {deps} | `{m.sha256[:16]}...` |"
        )
    lines += [
        "",
        "Not verified on hardware: flashroom checked these files with its own parser, "
        "dfu-suffix and its emulator only. Whether the Particle cloud accepts a 256 KB Electron "
        "binary is unknown (docs/device-os.md#extended).",
        "",
    ]
    return "\n".join(lines)


def _what(m: ModuleEntry) -> str:
    app = f" ({m.app})" if m.app else ""
    return f"{m.function_name} idx {m.module_index}{app}"


def package(out_dir: str | os.PathLike[str]) -> PackageResult:
    """Write ``NAME.dfu`` for every module of ``out_dir/manifest.json``, and ``FLASHING.md``.

    Every module file is re-read and checked first (it must hash as the manifest says and
    verify); then each ``.dfu`` is written atomically and read back with flashroom's reader.

    Raises:
        ManifestError: no manifest, or a module file changed or does not verify.
        OutputError: a file cannot be written.
    """
    out = Path(out_dir)
    manifest = Manifest.from_dir(out)
    modules = manifest.verify_files(out)
    written = []
    for e in manifest.modules:
        data = dfuse_for_module(modules[e.name].data, e.start_address)
        name = f"{e.name}.dfu"
        write_bytes_atomic(out / name, data)
        check = DfuFile.from_bytes(data)  # the writer's output must read back as written
        expected = [(e.start_address, modules[e.name].data)]
        if [(x.address, x.data) for x in check.elements] != expected:
            raise RuntimeError(f"{name}: DfuSe round trip failed")  # a bug, not bad input
        written.append(PackagedModule(e, name, len(data)))
    write_text_atomic(out / FLASHING_NAME, flashing_guide(manifest))
    return PackageResult(out, tuple(written), FLASHING_NAME)


__all__ = ["FLASHING_NAME", "PackageResult", "PackagedModule", "flashing_guide", "package"]
