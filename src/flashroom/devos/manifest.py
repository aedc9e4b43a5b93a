"""``manifest.json``: what a ``flashroom devos build`` output folder holds, module by module.

Every entry is made by parsing the module file with flashroom's own parser
(:func:`flashroom.particle.module.parse_module`) and refusing one that does not verify (CRC-32,
SHA-256, size). The file names follow Device OS's build folders, which on Electron do not match
the module index (spec 1.4: ``system-part1`` holds idx 3, ``system-part2`` idx 1,
``system-part3`` idx 2), so each entry says the function and index it really holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashroom.errors import ManifestError
from flashroom.particle.module import Module, function_name, parse_module
from flashroom.particle.module_info import ModuleFunction, PlatformId

#: The manifest's ``format`` string; bumped when a key changes meaning.
MANIFEST_FORMAT = "flashroom-devos-build/1"
MANIFEST_NAME = "manifest.json"

#: Device OS build folder -> the (module_function, module_index) it holds on Electron (spec 1.4).
ELECTRON_BUILD_DIRS: dict[str, tuple[int, int]] = {
    "bootloader": (ModuleFunction.BOOTLOADER, 0),
    "system-part1": (ModuleFunction.SYSTEM_PART, 3),
    "system-part2": (ModuleFunction.SYSTEM_PART, 1),
    "system-part3": (ModuleFunction.SYSTEM_PART, 2),
    "user-part": (ModuleFunction.USER_PART, 1),
}


@dataclass(frozen=True)
class Dependency:
    """One ``module_dependency_t`` that is not NONE."""

    module_function: int
    module_index: int
    module_version: int

    def to_json(self) -> dict[str, Any]:
        return {
            "module_function": self.module_function,
            "module_function_name": function_name(self.module_function),
            "module_index": self.module_index,
            "module_version": self.module_version,
        }

    def describe(self) -> str:
        return f"{function_name(self.module_function)} idx {self.module_index} >= " + str(
            self.module_version
        )


@dataclass(frozen=True)
class ModuleEntry:
    """One module file of a build output.

    Attributes:
        name: the file stem: ``bootloader``, ``system-part1``..., ``user-part-<app>``.
        file: the ``.bin`` (relative to the output folder).
        elf: its ``.elf`` (symbols kept, debug info dropped), or None.
        build_dir: the Device OS build folder it came from (``system-part3``...).
        app: the user app's name, for user parts.
        module_function, module_index, module_version, platform_id: from ``module_info_t``.
        start_address, end_address: ``module_start_address``/``module_end_address`` (the end
            is exclusive; the CRC-32 follows it).
        size: the file's size in bytes.
        sha256: SHA-256 of the whole file, hex.
        dependencies: the non-NONE dependency slots.
    """

    name: str
    file: str
    elf: str | None
    build_dir: str
    app: str | None
    module_function: int
    module_index: int
    module_version: int
    platform_id: int
    start_address: int
    end_address: int
    size: int
    sha256: str
    dependencies: tuple[Dependency, ...] = field(default_factory=tuple)

    @property
    def function_name(self) -> str:
        return function_name(self.module_function)

    @property
    def is_user_part(self) -> bool:
        return self.module_function == ModuleFunction.USER_PART

    @property
    def is_system_part(self) -> bool:
        return self.module_function == ModuleFunction.SYSTEM_PART

    @property
    def is_bootloader(self) -> bool:
        return self.module_function == ModuleFunction.BOOTLOADER

    @classmethod
    def from_module(
        cls, m: Module, *, name: str, file: str, elf: str | None, build_dir: str, app: str | None
    ) -> ModuleEntry:
        """An entry for a parsed module that has been verified."""
        i = m.info
        deps = tuple(
            Dependency(d.module_function, d.module_index, d.module_version)
            for d in (i.dependency, i.dependency2)
            if not d.is_none
        )
        return cls(
            name=name,
            file=file,
            elf=elf,
            build_dir=build_dir,
            app=app,
            module_function=i.module_function,
            module_index=i.module_index,
            module_version=i.module_version,
            platform_id=i.platform_id,
            start_address=i.module_start_address,
            end_address=i.module_end_address,
            size=len(m.data),
            sha256=hashlib.sha256(m.data).hexdigest(),
            dependencies=deps,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "elf": self.elf,
            "build_dir": self.build_dir,
            "app": self.app,
            "module_function": self.module_function,
            "module_function_name": self.function_name,
            "module_index": self.module_index,
            "module_version": self.module_version,
            "platform_id": self.platform_id,
            "start_address": self.start_address,
            "end_address": self.end_address,
            "size": self.size,
            "sha256": self.sha256,
            "dependencies": [d.to_json() for d in self.dependencies],
        }

    @classmethod
    def from_json(cls, obj: Any, where: str) -> ModuleEntry:
        try:
            return cls(
                name=str(obj["name"]),
                file=str(obj["file"]),
                elf=None if obj.get("elf") is None else str(obj["elf"]),
                build_dir=str(obj["build_dir"]),
                app=None if obj.get("app") is None else str(obj["app"]),
                module_function=int(obj["module_function"]),
                module_index=int(obj["module_index"]),
                module_version=int(obj["module_version"]),
                platform_id=int(obj["platform_id"]),
                start_address=int(obj["start_address"]),
                end_address=int(obj["end_address"]),
                size=int(obj["size"]),
                sha256=str(obj["sha256"]),
                dependencies=tuple(
                    Dependency(
                        int(d["module_function"]), int(d["module_index"]), int(d["module_version"])
                    )
                    for d in obj.get("dependencies", [])
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(
                f"{where}: malformed module entry ({type(e).__name__}: {e})"
            ) from None


@dataclass(frozen=True)
class Manifest:
    """A build output's manifest.

    Attributes:
        device_os_version: ``VERSION_STRING`` of the tree built.
        changes_applied, changes_missing: flashroom's changes found applied or not in the tree.
        toolchain: the compiler's version.
        modules: bootloader, system parts (by file name), then user parts.
    """

    device_os_version: str
    changes_applied: tuple[str, ...]
    changes_missing: tuple[str, ...]
    toolchain: str
    modules: tuple[ModuleEntry, ...]
    platform: str = "electron"
    platform_id: int = PlatformId.ELECTRON

    def module(self, name: str) -> ModuleEntry:
        """The entry named ``name`` (``system-part3``, ``user-part-tiny``...).

        Raises:
            ManifestError: no such module.
        """
        for m in self.modules:
            if m.name == name:
                return m
        names = ", ".join(m.name for m in self.modules)
        raise ManifestError(f"no module {name!r} in the manifest (it has {names})")

    def by_index(self, function: int, index: int) -> tuple[ModuleEntry, ...]:
        return tuple(
            m for m in self.modules if m.module_function == function and m.module_index == index
        )

    @property
    def system_parts(self) -> tuple[ModuleEntry, ...]:
        """The system parts in file-name order (the order Particle's tools flash them)."""
        return tuple(sorted((m for m in self.modules if m.is_system_part), key=lambda m: m.name))

    @property
    def user_parts(self) -> tuple[ModuleEntry, ...]:
        return tuple(m for m in self.modules if m.is_user_part)

    @property
    def bootloaders(self) -> tuple[ModuleEntry, ...]:
        return tuple(m for m in self.modules if m.is_bootloader)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "platform": self.platform,
            "platform_id": self.platform_id,
            "device_os_version": self.device_os_version,
            "changes_applied": list(self.changes_applied),
            "changes_missing": list(self.changes_missing),
            "toolchain": self.toolchain,
            "modules": [m.to_json() for m in self.modules],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, obj: Any, where: str = MANIFEST_NAME) -> Manifest:
        if not isinstance(obj, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        fmt = obj.get("format")
        if fmt != MANIFEST_FORMAT:
            raise ManifestError(f"{where}: format {fmt!r}, expected {MANIFEST_FORMAT!r}")
        mods = obj.get("modules")
        if not isinstance(mods, list) or not mods:
            raise ManifestError(f"{where}: no modules")
        try:
            return cls(
                device_os_version=str(obj["device_os_version"]),
                changes_applied=tuple(str(x) for x in obj.get("changes_applied", [])),
                changes_missing=tuple(str(x) for x in obj.get("changes_missing", [])),
                toolchain=str(obj.get("toolchain", "")),
                modules=tuple(
                    ModuleEntry.from_json(m, f"{where}: modules[{i}]") for i, m in enumerate(mods)
                ),
                platform=str(obj.get("platform", "electron")),
                platform_id=int(obj.get("platform_id", PlatformId.ELECTRON)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"{where}: malformed ({type(e).__name__}: {e})") from None

    @classmethod
    def from_dir(cls, out_dir: str | Path) -> Manifest:
        """Read ``out_dir/manifest.json``.

        Raises:
            ManifestError: missing or malformed.
        """
        p = Path(out_dir) / MANIFEST_NAME
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError(
                f"{p}: not found (is {out_dir} the --out folder of 'flashroom devos build'?)"
            ) from None
        except OSError as e:
            raise ManifestError(f"{p}: cannot read ({e.strerror or e})") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{p}: not JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_json(obj, str(p))

    def verify_files(self, out_dir: str | Path) -> dict[str, Module]:
        """Re-read every module file: it must exist, hash as recorded, parse and verify.

        Returns:
            name -> the parsed module.

        Raises:
            ManifestError: a file is missing, changed since the build, or does not verify.
        """
        out: dict[str, Module] = {}
        for e in self.modules:
            p = Path(out_dir) / e.file
            try:
                data = p.read_bytes()
            except OSError as err:
                raise ManifestError(f"{p}: cannot read ({err.strerror or err})") from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != e.sha256:
                raise ManifestError(
                    f"{p}: changed since the build: sha256 {digest}, manifest says {e.sha256}"
                )
            out[e.name] = verified_module(data, str(p))
        return out


def verified_module(data: bytes, where: str, expect: tuple[int, int] | None = None) -> Module:
    """Parse ``data`` with flashroom's parser and refuse it unless every check passes.

    Args:
        expect: the (module_function, module_index) it must hold, when known.

    Raises:
        ManifestError: it does not parse, a check fails (CRC-32, SHA-256, size), it is not an
            Electron module, or it holds another module than expected.
    """
    from flashroom.errors import ModuleFormatError

    try:
        m = parse_module(data, where)
    except ModuleFormatError as e:
        raise ManifestError(f"{where}: not a valid module: {e}") from None
    bad = [c for c in m.checks() if not c.ok]
    if bad:
        detail = "; ".join(f"{c.name}: {c.detail}" for c in bad)
        raise ManifestError(f"{where}: module does not verify: {detail}")
    i = m.info
    if i.platform_id != PlatformId.ELECTRON:
        raise ManifestError(f"{where}: platform_id {i.platform_id}, expected 10 (Electron)")
    if expect is not None and (i.module_function, i.module_index) != expect:
        raise ManifestError(
            f"{where}: holds {function_name(i.module_function)} idx {i.module_index}, expected "
            f"{function_name(expect[0])} idx {expect[1]} (docs/device-os.md#electron-naming)"
        )
    return m


def order_entries(entries: Iterable[ModuleEntry]) -> tuple[ModuleEntry, ...]:
    """Bootloader first, then system parts by file name, then user parts in build order."""
    items = list(entries)
    rank: dict[int, int] = {ModuleFunction.BOOTLOADER: 0, ModuleFunction.SYSTEM_PART: 1}
    return tuple(
        sorted(
            items,
            key=lambda m: (
                rank.get(m.module_function, 2),
                m.name if m.is_system_part else "",
                items.index(m),
            ),
        )
    )


__all__ = [
    "ELECTRON_BUILD_DIRS",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "Dependency",
    "Manifest",
    "ModuleEntry",
    "order_entries",
    "verified_module",
]
