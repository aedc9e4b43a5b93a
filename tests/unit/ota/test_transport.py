"""Real CoAP over UDP on loopback: fake and emulated devices, link emulation, 200-device load."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from typing import Any

import pytest

from flashroom.emu.device import Device
from flashroom.ota.device_end import DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.link import PRESETS
from flashroom.ota.server import OtaServer
from flashroom.ota.server_end import ServerConfig
from flashroom.ota.transport import ServeReport, connect_udp, serve_udp
from flashroom.particle.build import synthetic_user_app
from flashroom.scenarios.deliver import update_over_udp_async

FAST_TUNING = CoapTuning(ack_timeout_s=0.1)


async def _serve(
    image: bytes, sessions: int, config: ServerConfig | None = None
) -> tuple[asyncio.Task[ServeReport], str]:
    cfg = config or ServerConfig(tuning=FAST_TUNING, response_timeout_s=10)
    server = OtaServer(image, cfg)
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_udp(server, "127.0.0.1", 0, max_sessions=sessions, on_bound=bound.set_result)
    )
    host, port = await bound
    return task, f"coap://{host}:{port}"


def _device_cfg(seed: int = 0, **kw: Any) -> DeviceConfig:
    base: dict[str, Any] = {
        "seed": seed,
        "device_id": seed.to_bytes(12, "big"),
        "tuning": FAST_TUNING,
        "linger_s": 0.4,
        "begin_timeout_s": 10,
    }
    base.update(kw)
    return DeviceConfig(**base)


@pytest.mark.parametrize("fast", [True, False])
def test_fake_device_over_udp_with_lossy_link(ota: Any, fast: bool) -> None:
    async def run() -> tuple[DeviceEnd, Any, ServeReport]:
        cfg = ServerConfig(fast=fast, tuning=FAST_TUNING, response_timeout_s=10)
        task, url = await _serve(ota.IMAGE, 1, cfg)
        fake = ota.FakeOtaDevice()
        dev = DeviceEnd(fake, _device_cfg(3))
        port = int(url.rsplit(":", 1)[1])
        rep = await connect_udp(dev, "127.0.0.1", port, link=PRESETS["lossy"], seed=3)
        assert fake.pending == ota.IMAGE
        return dev, rep, await task

    dev, rep, served = asyncio.run(run())
    assert dev.status == DeviceStatus.APPLIED
    assert served.completed == 1
    assert rep.report.lost > 0  # the seeded link did drop datagrams
    assert rep.report.link_time_s > 0
    assert rep.report.payload_bytes == 20_000


def test_emulated_electron_takes_a_256k_layout_update_over_udp() -> None:
    app = synthetic_user_app(200 * 1024, platform="electron", version=8, seed=4)

    async def run() -> Any:
        task, url = await _serve(app, 1)
        dev = Device.new("electron", "extended")
        res = await update_over_udp_async(
            dev, url, link=PRESETS["3g"], device_config=_device_cfg(1)
        )
        await task
        return dev, res

    dev, res = asyncio.run(run())
    assert res.result == "applied", res.error
    assert res.outcome is not None and res.outcome["boot"] == "application"
    assert res.outcome["running"]["module_version"] == 8
    assert dev.user_part_bytes()[: len(app)] == app
    if _rmem_max() >= 1024 * 1024:
        # 3g is lossless: with a receive buffer that holds the whole fast-OTA burst, nothing
        # is dropped on loopback, so nothing is resent (the default ~200 KB buffer lost half).
        assert res.to_json()["retransmissions"] == 0


def _rmem_max() -> int:
    try:
        return int(open("/proc/sys/net/core/rmem_max").read())
    except (OSError, ValueError):
        return 0


def test_stock_electron_refuses_200k_app_over_udp_and_keeps_running_app() -> None:
    app = synthetic_user_app(200 * 1024, platform="electron", version=8, seed=4)

    async def run() -> Any:
        task, url = await _serve(app, 1)
        dev = Device.new("electron", "stock")
        before = dev.running_module()
        res = await update_over_udp_async(dev, url, device_config=_device_cfg(2))
        await task
        return before, res

    before, res = asyncio.run(run())
    assert res.result == "rejected"
    assert res.error_code == -1300
    assert res.outcome is not None and res.outcome["boot"] == "application"
    assert before is not None
    assert res.outcome["running"]["sha256"] == before.sha256


def test_200_concurrent_devices_all_get_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    n = 200
    app = synthetic_user_app(8 * 1024, platform="electron", version=9, seed=2)
    base = Device.new("electron", "stock")
    snap = base.snapshot()
    devices = []
    for _ in range(n):
        d = Device(base.profile)
        d.restore(snap)
        devices.append(d)

    async def run() -> tuple[list[Any], ServeReport]:
        cfg = ServerConfig(tuning=CoapTuning(0.3), response_timeout_s=20)
        task, url = await _serve(app, n, cfg)
        results = await asyncio.gather(
            *[
                update_over_udp_async(
                    d,
                    url,
                    seed=i,
                    device_config=_device_cfg(i, tuning=CoapTuning(0.3)),
                    time_limit_s=120,
                )
                for i, d in enumerate(devices)
            ]
        )
        return list(results), await task

    results, served = asyncio.run(run())
    assert Counter(r.result for r in results) == {"applied": n}
    assert served.completed == n
    assert len({s.device_id for s in served.sessions}) == n
    digest = hashlib.sha256(app).digest()
    for d in devices:
        assert hashlib.sha256(d.user_part_bytes()[: len(app)]).digest() == digest
        running = d.running_module()
        assert running is not None and running.module_version == 9
    with capsys.disabled():
        print(
            f"\n[ota load] {n} devices over loopback: {served.completed} complete, "
            f"server throughput {served.throughput_bps / 1e6:.2f} Mbit/s of image data "
            f"({served.datagrams_out} datagrams out, {served.datagrams_in} in)"
        )


def test_udp_link_time_estimate_agrees_with_in_process_simulation(ota: Any) -> None:
    from flashroom.ota.simulate import simulate

    image = ota.make_image(64 * 1024, seed=8)
    link = PRESETS["3g"]
    sim = simulate(image, ota.FakeOtaDevice(), link=link, seed=1).report

    async def run() -> Any:
        task, url = await _serve(image, 1)
        dev = DeviceEnd(ota.FakeOtaDevice(), _device_cfg(1))
        rep = await connect_udp(dev, "127.0.0.1", int(url.rsplit(":", 1)[1]), link=link)
        await task
        return rep.report

    udp = asyncio.run(run())
    assert udp.payload_bytes == sim.payload_bytes
    # Both are simulated seconds (no wall time): the device-side estimate follows the model.
    assert 0.75 * sim.link_time_s <= udp.link_time_s <= 1.25 * sim.link_time_s


def test_lossless_loopback_update_does_not_wait_out_the_linger() -> None:
    """The device's 5 s linger after the finish made every loopback update take that long
    (issue 12 #7): on loopback with nothing lost, nothing can still come."""
    app = synthetic_user_app(64 * 1024, platform="electron", version=8, seed=4)

    async def run() -> Any:
        task, url = await _serve(app, 1)
        dev = DeviceEnd(Device.new("electron", "extended"), _device_cfg(5, linger_s=5.0))
        port = int(url.rsplit(":", 1)[1])
        await connect_udp(dev, "127.0.0.1", port)
        await task
        return dev

    dev = asyncio.run(run())
    assert dev.status == DeviceStatus.APPLIED
    assert dev.finished_at is not None and dev.done_lingering(dev.finished_at)


def test_a_streamed_update_on_a_lossless_link_reports_no_retransmission() -> None:
    """The streamed device asks (ChunkMissed) for the lowest chunks it lacks, some of which the
    server has not sent yet: their first arrival is not a resend. The device's count of
    retransmissions agrees with what the server resent (it once reported 220 of 259 chunks)."""
    from flashroom.ota.stream import OtaOffer

    app = synthetic_user_app(200 * 1024, platform="electron", version=8, seed=4)

    async def run() -> tuple[Any, ServeReport]:
        server = OtaServer(
            app,
            ServerConfig(tuning=FAST_TUNING, response_timeout_s=10),
            offer=OtaOffer(app, [], allow=frozenset({"compressed"})),
        )
        bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve_udp(server, "127.0.0.1", 0, max_sessions=1, on_bound=bound.set_result)
        )
        host, port = await bound
        dev = Device.new("electron", "extended")
        res = await update_over_udp_async(
            dev, f"coap://{host}:{port}", device_config=_device_cfg(3)
        )
        return res, await task

    res, served = asyncio.run(run())
    assert res.result == "applied", res.error
    assert res.report.encoding != "raw"
    session = served.sessions[0]
    assert session.resends == 0
    assert res.report.retransmissions == session.resends
