"""Power-loss sweeps (issue 6 section 1): the sweep finds the legacy hazard and none on extended."""

from __future__ import annotations

import dataclasses

import pytest

from flashroom.errors import UsageError
from flashroom.scenarios.sweep import OUTCOMES, SweepConfig, run_sweep
from flashroom.scenarios.sweep_scenarios import SCENARIOS

#: The registered scenarios whose update must be atomic (an OTA and its apply).
UPDATE_SCENARIOS = [name for name, s in SCENARIOS.items() if s.atomic_update]

#: A strided subset of word granularity keeps the suite fast; the exhaustive runs are in
#: bench/bench_emu.py and the demo.
WORD_STRIDE = 997


@pytest.mark.parametrize("scenario", UPDATE_SCENARIOS)
@pytest.mark.parametrize("torn", [False, True])
def test_extended_resumable_survives_every_chunk_cut(scenario: str, torn: bool) -> None:
    profile = SCENARIOS[scenario].needs_profile or "extended"  # migrate starts from stock
    res = run_sweep(SweepConfig(profile=profile, scenario=scenario, granularity="chunk", torn=torn))
    assert res.exhaustive
    assert res.points == res.total_ops * (2 if torn else 1)
    assert res.counts["brick"] == 0
    assert res.counts["invariant_violation"] == 0, res.failures[:2]
    assert res.ok
    # Both ends are reached: early cuts keep the old module, late cuts finish the new one.
    assert res.counts["old_app"] > 0 and res.counts["new_app"] > 0
    assert sum(res.counts.values()) == res.points
    assert res.clean_class == "new_app"


@pytest.mark.parametrize("scenario", UPDATE_SCENARIOS)
@pytest.mark.parametrize("torn", [False, True])
def test_extended_resumable_survives_strided_word_cuts(scenario: str, torn: bool) -> None:
    profile = SCENARIOS[scenario].needs_profile or "extended"
    res = run_sweep(
        SweepConfig(
            profile=profile, scenario=scenario, granularity="word", torn=torn, stride=WORD_STRIDE
        )
    )
    assert not res.exhaustive
    assert res.total_ops > 60_000  # a real word-level op count (>= one 128K copy in words)
    assert res.bad == 0, res.failures[:2]
    assert res.counts["old_app"] > 0 and res.counts["new_app"] > 0


def test_legacy_bootloader_hazard_shows_as_bad_outcomes() -> None:
    # spec 4.5: bootloaders <= 1002 clear the slot before copying, so a cut mid-copy is not
    # retried and the device is left with neither app (safe mode).
    res = run_sweep(SweepConfig(bootloader="legacy", granularity="chunk"))
    assert not res.ok
    assert res.counts["invariant_violation"] > 0
    first = res.first_failure
    assert first is not None
    assert first.boot == "safe_mode"
    assert first.label.endswith("user_part")  # the cut fell into the bootloader copy
    assert any(v.startswith("update_atomic") for v in first.violations)
    cmds = res.reproduce(image_dir="D")
    assert any(f"--cut-at-op {first.cut_at_op}" in c for c in cmds)


def test_legacy_hazard_also_found_at_word_granularity() -> None:
    res = run_sweep(SweepConfig(bootloader="legacy", granularity="word", stride=WORD_STRIDE))
    assert res.counts["invariant_violation"] > 0


def test_photon_stock_system_part_copy_is_not_resumable() -> None:
    # spec 4.5 (derived): on Photon the bootloader reads the DCT through system part 2, so a cut
    # while part 2 is being copied cannot be retried; the sweep must report it.
    res = run_sweep(
        SweepConfig(platform="photon", profile="stock", scenario="system-ota", granularity="chunk")
    )
    assert res.counts["brick"] > 0
    assert all(f.label.endswith("system_part_2") for f in res.failures)
    assert res.clean_class == "new_app"


def test_dfu_install_cut_leaves_safe_mode_not_a_violation() -> None:
    # DFU writes in place (spec 3.4): a cut leaves a broken user part, which the system
    # refuses to run (safe mode); recovery is to run DFU again. Not an atomic update, so no
    # update_atomic invariant, but never a mix and never a brick.
    res = run_sweep(SweepConfig(scenario="install", granularity="chunk", torn=True))
    assert res.counts["safe_mode"] > 0
    assert res.counts["brick"] == 0
    assert res.counts["invariant_violation"] == 0


@pytest.mark.parametrize("torn", [False, True])
@pytest.mark.parametrize("bootloader", ["resumable", "legacy"])
def test_equiv_replay_and_rerun_agree_point_by_point(torn: bool, bootloader: str) -> None:
    common = {"granularity": "word", "torn": torn, "bootloader": bootloader, "keep_points": True}
    equiv = run_sweep(SweepConfig(method="equiv", stride=211, app_size=200 * 1024, **common))
    replay = run_sweep(SweepConfig(method="replay", stride=211, app_size=200 * 1024, **common))
    rerun = run_sweep(SweepConfig(method="rerun", stride=211 * 23, app_size=200 * 1024, **common))
    e = {p[:3]: p[3] for p in equiv.point_outcomes}
    r = {p[:3]: p[3] for p in replay.point_outcomes}
    assert e == r
    if bootloader == "resumable":
        # in the 32K-word copy calls the recovery boot re-erases the destination first, so
        # later cuts in the same call are proven equivalent instead of booted
        assert equiv.proven > 0
    assert replay.proven == 0
    for key, outcome in ((p[:3], p[3]) for p in rerun.point_outcomes):
        assert r[key] == outcome, key


def test_two_workers_give_the_same_counts_as_one() -> None:
    cfg = SweepConfig(granularity="word", stride=53, keep_points=True)
    one = run_sweep(cfg)
    two = run_sweep(SweepConfig(granularity="word", stride=53, keep_points=True, workers=2))
    assert one.counts == two.counts
    assert one.point_outcomes == two.point_outcomes


def test_recovery_cuts_are_counted_and_survived() -> None:
    res = run_sweep(SweepConfig(granularity="chunk", recovery_cuts=2, stride=3))
    j = res.to_json()
    assert res.bad == 0
    # cut points in the copy have a non-empty recovery boot, so they add recovery-cut points
    assert res.points > len(range(0, res.total_ops, 3))
    assert set(j["counts"]) == set(OUTCOMES)


def test_json_has_stable_keys() -> None:
    j = run_sweep(SweepConfig(granularity="chunk", stride=50)).to_json()
    for key in (
        "config",
        "ok",
        "exhaustive",
        "total_ops",
        "points",
        "booted",
        "proven_equivalent",
        "counts",
        "by_label",
        "first_failure",
        "reproduce",
        "clean_run",
        "erase_plan",
        "modules",
        "points_per_s",
        "device_s_per_wall_s",
    ):
        assert key in j
    assert j["modules"]["new"]["size"] == 256 * 1024


@pytest.mark.parametrize(
    "change",
    [{"stride": 0}, {"workers": 0}, {"scenario": "nope"}, {"method": "x"}, {"app_size": 3}],
)
def test_config_rejects_bad_options(change: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        SweepConfig(**change).validate()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- backends, faults


def test_a_dask_cluster_gives_the_same_results_as_local_processes() -> None:
    # issue 10 #6: --scheduler tcp://HOST:PORT runs the points on an existing Dask cluster
    from distributed import LocalCluster

    cfg = SweepConfig(granularity="chunk", torn=True, keep_points=True, workers=2)
    local = run_sweep(cfg)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        remote = run_sweep(dataclasses.replace(cfg, scheduler=cluster.scheduler_address))
    assert remote.counts == local.counts and remote.points == local.points
    assert remote.point_outcomes == local.point_outcomes
    assert remote.booted == local.booted and remote.proven == local.proven


def test_an_unreachable_scheduler_is_a_precise_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from flashroom.errors import ParamError
    from flashroom.scenarios import sweep_pool

    monkeypatch.setattr(sweep_pool, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(ParamError, match=r"scheduler tcp://127\.0\.0\.1:9: cannot connect"):
        run_sweep(SweepConfig(granularity="chunk", scheduler="tcp://127.0.0.1:9", last_op=4))


def test_a_failed_word_program_in_the_resumable_copy_is_a_hazard() -> None:
    # issue 10 #5: CopyFlashBlock stops at the failed program and FLASH_CopyMemory returns
    # ERROR, but FLASH_UpdateModules clears the slot anyway (flash_mal.c:658-664): the copy is
    # not retried and the half-copied app does not run. Report it as the hazard it is.
    cfg = SweepConfig(
        granularity="chunk", fault="fail", method="rerun", app_size=64 * 1024, keep_points=True
    )
    res = run_sweep(cfg)
    assert not res.ok
    copy = [f for f in res.failures if f.label.startswith("program user_part")]
    assert copy, [f.label for f in res.failures]
    assert copy[0].boot == "safe_mode"
    assert any("update_atomic" in v for v in copy[0].violations)
    # a failed chunk write of the receive path is caught later by HAL_FLASH_End's CRC check
    receive = [o for o in res.point_outcomes if o[3] != "new_app"]
    assert receive


def test_fail_faults_need_the_rerun_method() -> None:
    from flashroom.errors import ParamError

    with pytest.raises(ParamError, match="fault fail needs method rerun"):
        SweepConfig(fault="fail").validate()


def test_a_sample_tests_that_many_seeded_cut_points_and_says_it_is_not_exhaustive() -> None:
    res = run_sweep(SweepConfig(granularity="chunk", sample=7, seed=3, keep_points=True))
    assert res.points == 7 and not res.exhaustive
    again = run_sweep(SweepConfig(granularity="chunk", sample=7, seed=3, keep_points=True))
    assert again.point_outcomes == res.point_outcomes
    assert res.to_json()["config"]["sample"] == 7


def test_an_old_app_larger_than_the_user_part_is_refused_before_any_work() -> None:
    # issue 12 #8: 300K at 0x08080000 overlaps the OTA scratch; it used to report 6,144 false
    # violations
    from flashroom.errors import ParamError

    with pytest.raises(ParamError) as e:
        run_sweep(SweepConfig(old_size=300 * 1024, granularity="chunk"))
    assert e.value.params == ("old_size",)
    assert "0x080c0000" in str(e.value) and "262144" in str(e.value)


def test_ctrl_c_at_any_moment_says_how_far_the_sweep_got(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the set-up (the clean run) was reported as a bare 'stopped by Ctrl-C';
    now every moment of the sweep says how far it got."""
    from flashroom.errors import Interrupted
    from flashroom.scenarios import sweep as sweep_mod

    cfg = SweepConfig(app_size=64 * 1024, granularity="chunk", profile="extended")

    def interrupt(*_a: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(sweep_mod, "_prepare", interrupt)
        with pytest.raises(Interrupted, match="before its first cut point"):
            run_sweep(cfg)
    calls = [0]
    real = sweep_mod._run_points

    def second_chunk_interrupts(*a: object) -> object:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(sweep_mod, "_run_points", second_chunk_interrupts)
    with pytest.raises(Interrupted, match=r"sweep interrupted: [1-9]\d* of [1-9]\d* cut points"):
        run_sweep(cfg)
