"""Extra click parameter types (beside :mod:`flashroom.cli.common`'s SIZE and ADDRESS)."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses ``nan`` and ``inf``.

    ``float("nan")`` compares false with everything, so a plain FloatRange lets it through, and
    ``inf`` would make a timeout or a delay never end.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number: expected {self._describe_range()}")
        return rv


__all__ = ["FiniteFloatRange"]
