"""Progress reporting: the one callback type every long-running API takes.

A library function reports ``progress(done, total)`` to an injected callback; the CLI turns it
into a rich progress bar (``flashroom.cli.common.progress_bar``). Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total)``: units of work done so far, and the total when known.
ProgressFn = Callable[[int, int], None]


def noop_progress(done: int, total: int) -> None:
    """A progress callback that does nothing."""
    return None


__all__ = ["ProgressFn", "noop_progress"]
