"""Messages cite what a user has: the Device OS source or flashroom's docs/device-os.md.

The spec flashroom is built from is not shipped, so a message that says "spec 3.5 #20" sends the
user nowhere. Every string a user can see (error messages, notes, JSON text, help) cites a
section of ``docs/device-os.md`` or ``device-os@v2.3.1:path:line``; code comments and
docstrings of internal functions may keep spec citations. Every cited section exists, and every
cited Device OS file exists in the v2.3.1 tree (when it is on this machine).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

import flashroom
from flashroom.cli.main import all_commands

SRC = Path(flashroom.__file__).parent
DOC = Path(__file__).resolve().parents[2] / "docs" / "device-os.md"
DEVICE_OS = Path("/work/shared/device-os/v2.3.1")
#: A citation a user cannot look up.
UNSHIPPED = re.compile(
    r"\bspec(?:-silent| \d| §)|\banchors \d|module-format\.md|particle-gen2\.md|§\s*\d"
)
#: devos/changes.py writes comments into the patched Device OS tree and is its owner's to
#: reword (its patch text is compared with real builds).
EXEMPT = {"devos/changes.py"}


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _strings() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in EXEMPT:
            continue
        tree = ast.parse(path.read_text())
        docs = _docstring_ids(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
            ):
                out.append((rel, node.lineno, node.value))
    return out


def test_no_user_facing_string_cites_the_unshipped_spec() -> None:
    found = [f"{rel}:{line}: {text[:80]!r}" for rel, line, text in _strings()
             if UNSHIPPED.search(text)]  # fmt: skip
    assert found == [], "\n".join(found)


def _all_help() -> list[tuple[str, str]]:
    out = []
    for name, cmd in all_commands(groups=True):
        with click.Context(cmd, info_name=name) as c:
            out.append((name, cmd.get_help(c)))
    return out


def _raw_help() -> list[tuple[str, str]]:
    """Help as written (click's rendering wraps long words such as anchors at hyphens)."""
    return [(name, cmd.help or "") for name, cmd in all_commands(groups=True)]


def test_no_help_text_cites_the_unshipped_spec() -> None:
    bad = [f"{name}: {line.strip()}" for name, text in _all_help() for line in text.splitlines()
           if UNSHIPPED.search(line)]  # fmt: skip
    assert bad == [], "\n".join(bad)


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors() -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", DOC.read_text(), re.M)}


def test_every_cited_section_of_docs_device_os_exists() -> None:
    anchors = _anchors()
    cited: dict[str, str] = {}
    texts = [(f"{rel}:{line}", t) for rel, line, t in _strings()] + _raw_help()
    for where, text in texts:
        for m in re.finditer(r"docs/device-os\.md((?:#[\w-]+(?:, )?)+)", text):
            for a in re.findall(r"#([\w-]+)", m.group(1)):
                cited.setdefault(a, where)
    assert cited, "no message cites docs/device-os.md"
    missing = {a: w for a, w in cited.items() if a not in anchors}
    assert missing == {}, f"cited sections missing from docs/device-os.md: {missing}"


def test_the_doc_cites_device_os_files_that_exist() -> None:
    if not DEVICE_OS.is_dir():
        pytest.skip(f"no Device OS 2.3.1 tree at {DEVICE_OS}")
    cite = re.compile(r"device-os@v2\.3\.1:([^\s`:),;]+)(?::(\d+))?")
    texts = [DOC.read_text()] + [t for _, _, t in _strings()]
    cites = {(m.group(1), m.group(2) or "") for t in texts for m in cite.finditer(t)}
    cites.discard(("path", ""))  # the doc's own "device-os@v2.3.1:path:line" pattern
    assert len(cites) > 30
    bad = []
    for path, line in cites:
        f = DEVICE_OS / path
        if not f.is_file():
            if f.parent.is_dir():  # the local tree is pruned: judge only folders it has
                bad.append(f"{path}: no such file")
        elif line and int(line) > len(f.read_text(errors="replace").splitlines()):
            bad.append(f"{path}:{line}: past the end")
    assert bad == []
