"""A small Markdown writer for reports (tables, headings, code), and atomic file output.

Reports are built as data first and rendered here, so the same facts feed the rich terminal view,
the Markdown report and the JSON report. Files are written to a temporary name beside the target
and renamed, so a failed run never leaves a half-written report (team rule: nothing half-written).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _cell(value: object) -> str:
    text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


class MarkdownDoc:
    """Accumulates Markdown blocks; :meth:`render` joins them with blank lines."""

    def __init__(self) -> None:
        self._blocks: list[str] = []

    def heading(self, text: str, level: int = 1) -> MarkdownDoc:
        """Add a ``#``-style heading of ``level`` (1-6)."""
        self._blocks.append(f"{'#' * max(1, min(level, 6))} {text}")
        return self

    def para(self, text: str) -> MarkdownDoc:
        """Add a paragraph."""
        self._blocks.append(text.strip())
        return self

    def bullets(self, items: Iterable[str]) -> MarkdownDoc:
        """Add a bullet list."""
        lines = [f"- {item}" for item in items]
        if lines:
            self._blocks.append("\n".join(lines))
        return self

    def code(self, text: str, lang: str = "") -> MarkdownDoc:
        """Add a fenced code block."""
        self._blocks.append(f"```{lang}\n{text.rstrip()}\n```")
        return self

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> MarkdownDoc:
        """Add a pipe table. Cells are converted with ``str`` and ``|`` is escaped."""
        head = "| " + " | ".join(_cell(h) for h in headers) + " |"
        sep = "|" + "|".join("---" for _ in headers) + "|"
        body = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        self._blocks.append("\n".join([head, sep, *body]))
        return self

    def image(self, alt: str, path: str) -> MarkdownDoc:
        """Add an image reference (``path`` relative to the Markdown file)."""
        self._blocks.append(f"![{alt}]({path})")
        return self

    def render(self) -> str:
        """The document as one string ending with a newline."""
        return "\n\n".join(self._blocks) + "\n"
