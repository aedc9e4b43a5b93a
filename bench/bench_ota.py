"""OTA goodput: stop-and-wait vs fast OTA on the 3g preset with 1 % loss (issue 5 section 7).

In-process transport, simulated link time (nothing waits), real emulated Electron (extended
layout, so 256 KB apps apply). Goodput = image bits / simulated link time (Hello to the device's
2.04), as a fraction of the 3g downlink bandwidth (384 kbit/s). Every figure is a ratio or a
count from this run; each is the mean over a few link seeds.

Also: the ceiling a 512-byte chunk allows (payload / wire bytes of one fast-OTA chunk datagram),
fast OTA with 1024-byte chunks for comparison, and a 200-device loopback load run (server
throughput relative to a single-device run in the same process).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from flashroom.emu.device import Device
from flashroom.ota.accounting import PER_DATAGRAM_OVERHEAD
from flashroom.ota.endpoint import CoapTuning
from flashroom.ota.link import PRESETS
from flashroom.ota.messages import Chunk, CoapType
from flashroom.ota.protocol import DeviceConfig, DeviceStatus, ServerConfig
from flashroom.ota.simulate import simulate
from flashroom.particle.build import synthetic_user_app

SEEDS = (1, 2, 3)
LINK = PRESETS["3g"].with_(loss=0.01, name="3g+1%loss")


def _one(app: bytes, base: Device, snap: Any, *, fast: bool, chunk: int, seed: int) -> Any:
    dev = Device(base.profile)
    dev.restore(snap)
    out = simulate(
        app,
        dev,
        server_config=ServerConfig(fast=fast, chunk_size=chunk),
        device_config=DeviceConfig(platform="electron", seed=seed),
        link=LINK,
        seed=seed,
    )
    if out.status != DeviceStatus.APPLIED:
        raise RuntimeError(f"update not applied: {out.device.error}")
    rep = out.report
    session = out.session
    data_time = rep.link_time_s - (session.ready_at or 0.0) if session else rep.link_time_s
    return rep, data_time


def _ceiling(chunk: int) -> float:
    wire = len(Chunk.of(bytes(chunk), 1).to_coap(1, b"\x01", CoapType.NON).encode())
    return chunk / (wire + PER_DATAGRAM_OVERHEAD)


def _load(n: int, app: bytes) -> tuple[int, float]:
    from flashroom.ota.device_end import update_over_udp_async
    from flashroom.ota.server import OtaServer
    from flashroom.ota.transport import serve_udp

    base = Device.new("electron", "stock")
    snap = base.snapshot()
    devices = []
    for _ in range(n):
        d = Device(base.profile)
        d.restore(snap)
        devices.append(d)
    tuning = CoapTuning(ack_timeout_s=0.3)

    async def main() -> tuple[int, float]:
        server = OtaServer(app, ServerConfig(tuning=tuning, response_timeout_s=20))
        fut: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve_udp(server, "127.0.0.1", 0, max_sessions=n, on_bound=fut.set_result, grace_s=0)
        )
        host, port = await fut
        t0 = time.perf_counter()
        await asyncio.gather(
            *[
                update_over_udp_async(
                    d,
                    f"coap://{host}:{port}",
                    seed=i,
                    device_config=DeviceConfig(
                        seed=i, device_id=i.to_bytes(12, "big"), tuning=tuning, linger_s=0.0
                    ),
                    time_limit_s=120,
                )
                for i, d in enumerate(devices)
            ]
        )
        wall = time.perf_counter() - t0
        rep = await task
        return rep.completed, rep.payload_bytes * 8 / wall

    return asyncio.run(main())


def run() -> dict[str, Any]:
    base = Device.new("electron", "extended")
    snap = base.snapshot()
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    for size_k in (128, 256):
        app = synthetic_user_app(size_k * 1024, platform="electron", version=9, seed=size_k)
        for label, fast, chunk in (
            ("stop-and-wait", False, 512),
            ("fast", True, 512),
            ("fast 1024-byte chunks", True, 1024),
        ):
            reps = [_one(app, base, snap, fast=fast, chunk=chunk, seed=s) for s in SEEDS]
            goodput = statistics.mean(r.goodput_ratio for r, _ in reps)
            data_phase = statistics.mean(len(app) * 8 / t / LINK.bandwidth_bps for _, t in reps)
            wire = statistics.mean(r.wire_bytes for r, _ in reps)
            retrans = statistics.mean(r.retransmissions for r, _ in reps)
            results[f"{size_k}K {label}"] = goodput
            target = ">= 0.90" if label == "fast" else ""
            rows.append(
                {
                    "metric": f"{size_k}K {label}: goodput / 3g bandwidth (1% loss)",
                    "value": round(goodput, 3),
                    "unit": "ratio",
                    "target": target,
                    "note": f"data phase only {data_phase:.3f}; link time "
                    f"{statistics.mean(r.link_time_s for r, _ in reps):.1f} s sim",
                }
            )
            rows.append(
                {
                    "metric": f"{size_k}K {label}: wire bytes per update",
                    "value": round(wire),
                    "unit": "bytes",
                    "target": "",
                    "note": f"{wire / len(app):.3f} x payload; {retrans:.1f} retransmissions",
                }
            )
        rows.append(
            {
                "metric": f"{size_k}K fast / stop-and-wait goodput",
                "value": round(results[f"{size_k}K fast"] / results[f"{size_k}K stop-and-wait"], 2),
                "unit": "x",
                "target": "",
                "note": "",
            }
        )
    rows.append(
        {
            "metric": "ceiling: payload / wire bytes of one 512-byte chunk datagram",
            "value": round(_ceiling(512), 3),
            "unit": "ratio",
            "target": "",
            "note": f"CoAP header+options 16 B, UDP+IPv4+DTLS {PER_DATAGRAM_OVERHEAD} B; "
            f"1024-byte chunks: {_ceiling(1024):.3f}",
        }
    )
    app8 = synthetic_user_app(8 * 1024, platform="electron", version=9, seed=8)
    done1, tput1 = _load(1, app8)
    done200, tput200 = _load(200, app8)
    rows.append(
        {
            "metric": "load: 200 concurrent devices over loopback, sessions complete",
            "value": done200,
            "unit": "count",
            "target": "== 200",
            "note": f"single-device run: {done1}",
        }
    )
    rows.append(
        {
            "metric": "load: server throughput, 200 devices / 1 device",
            "value": round(tput200 / tput1, 2),
            "unit": "x",
            "target": "",
            "note": f"{tput200 / 1e6:.2f} Mbit/s of image data with 200 devices (8 KB apps)",
        }
    )
    return {"name": "bench_ota", "rows": rows, "link": LINK.to_json()}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
