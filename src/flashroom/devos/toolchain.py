"""The tools the Device OS build runs, found before anything starts (spec 10).

Debian packages them as ``gcc-arm-none-eabi`` (compiler, pulls in ``binutils-arm-none-eabi``),
``libnewlib-arm-none-eabi`` (``--specs=nano.specs``), ``libarchive-zip-perl`` (the ``crc32``
tool ``build/common-tools.mk:25-27`` runs) and ``xxd``; plus ``make``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flashroom.errors import ToolchainError

#: The Debian packages the build needs, in the order ``apt-get install`` is told them.
DEBIAN_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "libarchive-zip-perl", "xxd")

#: tool -> the Debian package that provides it.
_TOOLS = {
    "make": "make",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-g++": "gcc-arm-none-eabi",
    "arm-none-eabi-objcopy": "binutils-arm-none-eabi",
    "crc32": "libarchive-zip-perl",
    "xxd": "xxd",
}


@dataclass(frozen=True)
class Toolchain:
    """The tools found on ``PATH``.

    Attributes:
        path: the ``PATH`` they were found on (the build runs with it).
        gcc: ``arm-none-eabi-gcc``.
        gcc_version: its ``-dumpversion`` (``12.2.1`` on Debian 12).
        objcopy: ``arm-none-eabi-objcopy`` (to drop debug info from the ELFs flashroom keeps).
    """

    path: str
    gcc: Path
    gcc_version: str
    objcopy: Path

    @property
    def gcc_major(self) -> int:
        try:
            return int(self.gcc_version.split(".")[0])
        except ValueError:
            return 0


def install_hint(packages: tuple[str, ...] = DEBIAN_PACKAGES) -> str:
    return f"install the Debian packages: apt-get install {' '.join(packages)}"


def find_toolchain(env: Mapping[str, str] | None = None) -> Toolchain:
    """Find every tool the Device OS build runs.

    Args:
        env: the environment whose ``PATH`` is searched (default ``os.environ``).

    Raises:
        ToolchainError: naming each missing tool and the Debian packages to install.
    """
    path = (os.environ if env is None else env).get("PATH", os.defpath)
    missing: dict[str, str] = {}
    found: dict[str, Path] = {}
    for tool, pkg in _TOOLS.items():
        where = shutil.which(tool, path=path)
        if where is None:
            missing[tool] = pkg
        else:
            found[tool] = Path(where)
    gcc = found.get("arm-none-eabi-gcc")
    version = ""
    if gcc is not None:
        try:
            version = _run([str(gcc), "-dumpversion"], path)
            specs = _run([str(gcc), "-print-file-name=nano.specs"], path)
        except (OSError, subprocess.SubprocessError) as e:
            raise ToolchainError(f"{gcc} does not run ({e}); {install_hint()}") from None
        if not os.path.isabs(specs) or not os.path.isfile(specs):
            missing["newlib (nano.specs)"] = "libnewlib-arm-none-eabi"
    if missing:
        tools = ", ".join(missing)
        packages = tuple(dict.fromkeys((*DEBIAN_PACKAGES, *missing.values())))
        raise ToolchainError(
            f"the Device OS build needs {tools}, not found on PATH; {install_hint(packages)}"
        )
    if gcc is None:  # unreachable: a missing gcc is in ``missing``
        raise ToolchainError(f"arm-none-eabi-gcc not found; {install_hint()}")
    return Toolchain(path, gcc, version, found["arm-none-eabi-objcopy"])


def _run(argv: list[str], path: str) -> str:
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": path, "LC_ALL": "C"},
    )
    return out.stdout.strip()


__all__ = ["DEBIAN_PACKAGES", "Toolchain", "find_toolchain", "install_hint"]
