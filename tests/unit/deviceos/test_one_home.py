"""Each Device OS fact has one definition: flashroom.deviceos (issue 9).

Checked by reading the source: no module outside ``deviceos/`` (and the chip geometry in
``geometry/``) writes a module-region address as a number, defines a bounds table, a platform id
table, an OTA length table or its own progress-callback type. A refactor that copies a fact
back into another package makes this fail.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import flashroom
from flashroom.deviceos import PLATFORMS

SRC = Path(flashroom.__file__).parent
HOMES = ("deviceos/", "geometry/")

#: Every bounds start/end of every Gen2 profile, and the DCT sector addresses.
_FACTS = {
    v
    for plat in PLATFORMS.values()
    if plat.generation == 2
    for prof in plat.profiles
    for b in (*prof.bounds, prof.ota_bounds)
    for v in (b.start_address, b.end_address)
} | {0x08004000, 0x08008000}
_FACTS.discard(0x08000000)  # the flash base is chip geometry, used by every address check

#: Names only their home may define at module level.
_ONE_HOME = {
    "ModuleBounds": "deviceos/model.py",
    "Profile": "deviceos/model.py",
    "Platform": "deviceos/model.py",
    "PLATFORMS": "deviceos/registry.py",
    "PLATFORM_IDS": "",
    "OTA_FLASH_LENGTH": "",
    "INACTIVITY_TIMEOUT_S": "",
    "FLASH_END": "",
    "INTERNAL_FLASH_END": "deviceos/gen2.py",
    "DEFAULT_CHUNK_SIZE": "deviceos/gen2.py",
    "OTA_CHUNK_SIZE": "",
    "ProgressFn": "progress.py",
}


def _modules() -> list[tuple[str, str]]:
    return [
        (p.relative_to(SRC).as_posix(), p.read_text())
        for p in sorted(SRC.rglob("*.py"))
        if "__pycache__" not in p.parts
    ]


def test_no_module_outside_deviceos_writes_a_region_address_as_a_number() -> None:
    found = []
    for rel, text in _modules():
        if rel.startswith(HOMES):
            continue
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NUMBER:
                try:
                    value = int(tok.string, 0)
                except ValueError:
                    continue
                if value in _FACTS:
                    found.append(f"{rel}:{tok.start[0]} {tok.string}")
    assert found == [], found


def test_bounds_tables_platform_ids_and_ota_lengths_are_defined_once() -> None:
    found = []
    for rel, text in _modules():
        for node in ast.parse(text).body:
            names: list[str] = []
            if isinstance(node, ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            for name in names:
                home = _ONE_HOME.get(name)
                if home is not None and rel != home:
                    found.append(f"{rel}: {name} (its home is {home or 'nowhere: removed'})")
    assert found == [], found


def test_the_scanner_would_see_a_copied_fact(tmp_path: Path) -> None:
    # the checks above can fail: the same scan over a module that copies a fact finds it
    text = "MODULE_USER_END = 0x080A0000\nOTA_FLASH_LENGTH = {'electron': 0x20000}\n"
    tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline)]
    assert "0x080A0000" in tokens and int("0x080A0000", 0) in _FACTS
    assert any(
        isinstance(n, ast.Assign) and n.targets[0].id in _ONE_HOME  # type: ignore[attr-defined]
        for n in ast.parse(text).body
    )
