"""Hypothesis: whatever the link does, an update applies the exact image or ends cleanly with the
old app running; a corrupt image is never applied."""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flashroom.emu.device import Device
from flashroom.ota.device_end import DeviceConfig, DeviceStatus
from flashroom.ota.link import LinkProfile
from flashroom.ota.server_end import ServerConfig, ServerFaults
from flashroom.ota.simulate import simulate
from flashroom.particle.build import synthetic_user_app

APP = synthetic_user_app(12 * 1024, platform="electron", version=21, seed=11)


@cache
def _base() -> tuple[Device, Any]:
    dev = Device.new("electron", "stock")
    return dev, dev.snapshot()


def _fresh() -> Device:
    base, snap = _base()
    dev = Device(base.profile)
    dev.restore(snap)
    return dev


@settings(max_examples=25, deadline=None)
@given(
    loss=st.floats(0.0, 0.3),
    duplicate=st.floats(0.0, 0.2),
    reorder=st.floats(0.0, 0.2),
    fast=st.booleans(),
    chunk_size=st.sampled_from([128, 512, 850]),  # 850: near the largest an Electron takes
    bad_crc=st.frozensets(st.integers(0, 30), max_size=3),
    seed=st.integers(0, 10_000),
)
def test_ota_transfer_applies_exact_image_or_keeps_old_app(
    loss: float,
    duplicate: float,
    reorder: float,
    fast: bool,
    chunk_size: int,
    bad_crc: frozenset[int],
    seed: int,
) -> None:
    dev = _fresh()
    old = dev.running_module()
    link = LinkProfile("prop", 0.1, 200_000, loss=loss, duplicate=duplicate, reorder=reorder)
    cfg = ServerConfig(fast=fast, chunk_size=chunk_size, faults=ServerFaults(bad_crc_once=bad_crc))
    out = simulate(
        APP, dev, server_config=cfg, link=link, seed=seed, device_config=DeviceConfig(seed=seed)
    )
    outcome = dev.reset()
    assert outcome.boot == "application"
    running = dev.running_module()
    assert running is not None and old is not None
    if out.status == DeviceStatus.APPLIED:
        assert running.module_version == 21
        assert dev.user_part_bytes()[: len(APP)] == APP
    else:
        assert out.device.error  # a clear status with a reason
        assert running.sha256 == old.sha256
