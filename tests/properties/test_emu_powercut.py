"""Hypothesis: with a resumable bootloader, a power cut anywhere in a user OTA (receive path,
slot write, reset, bootloader copy, slot clear, boot) leaves a device that boots the old or the
new app (spec 4.5, 8.1)."""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from flashroom.emu.device import Device, DeviceSnapshot
from flashroom.particle.build import synthetic_user_app

K = 1024


@functools.lru_cache(maxsize=4)
def _setup(profile: str, granularity: str) -> tuple[Device, DeviceSnapshot, bytes, str, int]:
    dev = Device.new("electron", profile, "resumable", granularity=granularity)  # type: ignore[arg-type]
    new = synthetic_user_app(48 * K, seed=21)
    old_running = dev.running_module()
    assert old_running is not None
    snap = dev.snapshot()
    clean = dev.ota(new)
    assert clean.result == "applied"
    total = clean.flash_ops
    dev.restore(snap)
    return dev, snap, new, old_running.sha256, total


@settings(max_examples=40, deadline=None)
@given(
    frac=st.floats(0.0, 1.0, exclude_max=True),
    torn=st.booleans(),
    seed=st.integers(0, 2**16),
    profile=st.sampled_from(["stock", "extended"]),
    granularity=st.sampled_from(["word", "chunk"]),
)
def test_every_power_cut_in_a_user_ota_boots_old_or_new_app(
    frac: float, torn: bool, seed: int, profile: str, granularity: str
) -> None:
    dev, snap, new, old_sha, total = _setup(profile, granularity)
    dev.restore(snap)
    cut = int(frac * total)
    out = dev.ota(new, cut_at_op=cut, torn=torn, seed=seed)
    assert out.result == "interrupted"
    after = dev.boot()
    assert after.boot == "application", (cut, after.to_json(), after.events)
    assert after.running is not None
    assert after.running.sha256 in (old_sha, new[-38:-6].hex())
    # a second power cycle is stable
    again = dev.boot()
    assert again.running == after.running
