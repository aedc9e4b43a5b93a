"""The layers of docs/architecture.md, checked on the source: each package imports only the
packages below it (and ``emu`` and ``ota`` never import each other)."""

from __future__ import annotations

import ast
from pathlib import Path

import flashroom

SRC = Path(flashroom.__file__).parent

_BASE = {"flashroom", "errors", "ranges", "progress", "atomicfile", "readfile"}
_LOW = _BASE | {"geometry", "deviceos"}
#: package -> the flashroom packages (first component under flashroom) it may import.
ALLOWED: dict[str, set[str]] = {
    "errors": {"flashroom"},
    "ranges": {"flashroom", "errors"},
    "progress": {"flashroom"},
    "atomicfile": {"flashroom", "errors", "readfile"},
    "readfile": {"flashroom", "errors"},
    "geometry": _BASE,
    "deviceos": _BASE | {"geometry"},
    "layout": _LOW,
    "particle": _LOW,
    "firmware": _LOW | {"particle"},
    "emu": _LOW | {"layout", "particle", "firmware"},
    "ota": _LOW | {"particle"},
    "devos": _LOW | {"layout", "particle"},
    "scenarios": _LOW | {"layout", "particle", "firmware", "emu", "ota", "devos", "scenarios"},
    "report": _LOW | {"layout", "particle", "firmware", "emu", "ota", "devos", "scenarios"},
    "cli": set(),  # the top: anything
}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flashroom"):
            parts = node.module.split(".")
            out.add(parts[1] if len(parts) > 1 else "flashroom")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("flashroom"):
                    parts = a.name.split(".")
                    out.add(parts[1] if len(parts) > 1 else "flashroom")
    return out


def test_every_package_imports_only_the_layers_below_it() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        pkg = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem
        if pkg in ("__init__", "__main__", "cli"):
            continue
        allowed = ALLOWED.get(pkg)
        assert allowed is not None, f"{rel}: package {pkg!r} has no layer in ALLOWED"
        for imp in _imports(path) - {pkg}:
            if imp not in allowed:
                bad.append(f"{rel} imports flashroom.{imp}")
    assert bad == [], bad


def test_the_device_model_and_the_protocol_are_peers() -> None:
    assert "ota" not in ALLOWED["emu"] and "emu" not in ALLOWED["ota"]
