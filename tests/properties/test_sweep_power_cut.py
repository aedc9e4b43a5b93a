"""Property (style.md): for every power-cut point the device boots a valid image, old or new.

Hypothesis picks cut points, torn or not, and the granularity; each example runs the scenario
the slow, faithful way (``rerun``: the whole OTA with the fault armed, as ``emu ota --cut-at-op``
does) and then powers the device on again.
"""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from flashroom.scenarios.sweep_config import SweepConfig
from flashroom.scenarios.sweep_engine import _boot, _build_setup, _classify, _Runner
from flashroom.scenarios.sweep_scenarios import SCENARIOS


@functools.lru_cache(maxsize=4)
def _setup(granularity: str, scenario: str):  # type: ignore[no-untyped-def]
    return _build_setup(
        SweepConfig(
            profile=SCENARIOS[scenario].needs_profile or "extended",
            granularity=granularity,
            scenario=scenario,
            method="rerun",
            app_size=200 * 1024,
        )
    )


@settings(max_examples=25, deadline=None)
@given(
    granularity=st.sampled_from(["word", "chunk"]),
    scenario=st.sampled_from([n for n, s in SCENARIOS.items() if s.atomic_update]),
    where=st.floats(min_value=0.0, max_value=0.999999),
    torn=st.booleans(),
)
def test_any_cut_boots_old_or_new_never_a_mix(
    granularity: str, scenario: str, where: float, torn: bool
) -> None:
    s = _setup(granularity, scenario)
    n = int(where * s.total_ops)
    runner = _Runner(s)
    call, _k = runner.cut(n, torn)
    boot, err = _boot(s.device)
    torn_erase = call.arg if (torn and call.kind == "erase") else None
    from flashroom.scenarios.sweep_engine import _erases_since

    cls, kind, viol = _classify(s, boot, _erases_since(s, torn_erase), 1, err)
    assert cls in ("old_app", "new_app"), (n, torn, kind, viol)
