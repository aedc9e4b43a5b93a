"""What a ``.dfu`` file holds: its elements, and the Particle module inside each one.

Used by ``flashroom module inspect FILE.dfu``. Each element is parsed with the module parser
(:func:`~flashroom.particle.module.parse_module`); checks say whether it is a valid module and
whether the element's address is the module's ``module_start_address`` (where dfu-util writes
it is where the device will look for it, spec 2.2). A file with a plain DFU suffix and no
DfuSe prefix (what Device OS's own ``%.dfu`` make rule writes: the ``.bin`` plus
``dfu-suffix -a``) is read as one module without its 16-byte suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flashroom.errors import DfuFormatError, ModuleFormatError
from flashroom.particle.dfuse import DfuElement, DfuFile, DfuSuffix, DfuTarget, is_dfuse
from flashroom.particle.module import Check, Module, parse_module


@dataclass(frozen=True)
class DfuInspection:
    """A parsed ``.dfu`` and the modules of its elements.

    Attributes:
        filename: for messages and JSON.
        size: the file's size.
        dfu: the parsed file (a plain-suffix file becomes one target, one element, address 0).
        dfuse: False for a plain DFU suffix without DfuSe prefix.
        modules: per element, in file order: the parsed module, or None.
        module_errors: per element: why it is not a module, or None.
    """

    filename: str | None
    size: int
    dfu: DfuFile
    dfuse: bool
    modules: tuple[Module | None, ...]
    module_errors: tuple[str | None, ...]

    def checks(self) -> list[Check]:
        out: list[Check] = []
        for i, (el, m, err) in enumerate(
            zip(self.dfu.elements, self.modules, self.module_errors, strict=True)
        ):
            tag = f"element{i}"
            if m is None:
                out.append(Check(f"{tag}.module", False, err or "not a module"))
                continue
            out.append(Check(f"{tag}.module", True, f"{len(m.data)} bytes parse as a module"))
            out.extend(Check(f"{tag}.{c.name}", c.ok, c.detail) for c in m.checks())
            if self.dfuse:
                start = m.info.module_start_address
                out.append(
                    Check(
                        f"{tag}.address",
                        el.address == start,
                        f"element at 0x{el.address:08x}, module_start_address 0x{start:08x}",
                    )
                )
        return out

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks())

    def to_json(self) -> dict[str, Any]:
        targets = []
        k = 0
        for t in self.dfu.targets:
            elements = []
            for el in t.elements:
                m = self.modules[k]
                elements.append(
                    {
                        "address": el.address,
                        "address_hex": f"0x{el.address:08x}",
                        "size": el.size,
                        "end": el.end,
                        "end_hex": f"0x{el.end:08x}",
                        "module": None if m is None else m.to_json(include_file=False),
                        "module_error": self.module_errors[k],
                    }
                )
                k += 1
            targets.append(
                {"alternate_setting": t.alternate_setting, "name": t.name, "elements": elements}
            )
        return {
            "file": self.filename,
            "format": "dfuse" if self.dfuse else "dfu-suffix",
            "size": self.size,
            "usb": {
                "vendor": self.dfu.vendor,
                "product": self.dfu.product,
                "device": self.dfu.device,
            },
            "targets": targets,
            "checks": [c.to_json() for c in self.checks()],
            "ok": self.ok,
        }


def inspect_dfu(data: bytes, filename: str | None = None) -> DfuInspection:
    """Parse a ``.dfu`` and the module in each element.

    Raises:
        DfuFormatError: the DfuSe structure or the DFU suffix is broken (a module that does
            not parse inside a good file is a failed check, not an error).
    """
    name = filename or "<data>"
    if is_dfuse(data):
        dfu = DfuFile.from_bytes(data)
        dfuse = True
    else:
        suffix = DfuSuffix.from_bytes(data)
        body = bytes(data[: -DfuSuffix.SIZE])
        el = DfuElement(0, body)
        dfu = DfuFile((DfuTarget(0, "", (el,)),), suffix.vendor, suffix.product, suffix.device)
        dfuse = False
    modules: list[Module | None] = []
    errors: list[str | None] = []
    for i, el in enumerate(dfu.elements):
        try:
            modules.append(parse_module(el.data, f"{name}#element{i}"))
            errors.append(None)
        except ModuleFormatError as e:
            if isinstance(e, DfuFormatError):  # pragma: no cover - parse_module never raises it
                raise
            modules.append(None)
            errors.append(str(e))
    return DfuInspection(filename, len(data), dfu, dfuse, tuple(modules), tuple(errors))


def looks_like_dfu(data: bytes, filename: str) -> bool:
    """True for a DfuSe file, or a ``.dfu`` name (then the DFU suffix must be there)."""
    return is_dfuse(data) or filename.lower().endswith(".dfu")


__all__ = ["DfuInspection", "inspect_dfu", "looks_like_dfu"]
