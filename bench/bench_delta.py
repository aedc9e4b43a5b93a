"""Fewer cellular bytes: raw vs compressed vs delta OTA on the extended Electron (issue 13).

Every figure is measured in this run: each update goes through the in-process transport
(simulated link time, nothing waits) into the emulated extended Electron, whose modelled
streamed OTA (docs/delta-ota.md) decodes it into the scratch; the rebuilt bytes are compared
with the new module. Wire bytes are every datagram both ways (CoAP + UDP + IPv4 + DTLS, 57 B per
datagram); link time is Hello to the server's receipt of the device's 2.04 (3g preset:
384/64 kbit/s, 200 ms RTT, no loss). Ratios are against the raw update of the same module in
the same run.

Pairs:

* ``synthetic``: a 256 KB synthetic app (code-like bytes) and its next build: 64 bytes of new
  code inserted mid-image and every pointer past it relinked (particle/evolve.py).
* ``040->043 <part>``: the real Device OS 0.4.0 -> 0.4.3 Photon modules of the shared fixtures
  (``$FLASHROOM_FIXTURES`` or /work/shared/fixtures/particle-modules). They are Photon modules:
  the base is placed raw in the emulated Electron's user part and the device's Hello is told its
  SHA-256 (the device still hashes the user part against the patch header); the rebuilt bytes
  are checked, and HAL_FLASH_End then refuses them for the wrong platform and address, as it
  should (the transfer figures are unaffected: the 2.04 precedes the finish, spec 6.4 #4).
* ``real app``: two builds of one real Electron app with a small code change (big200k v1 and
  v2 of tests/data/apps, from the shared Device OS reference build), or
  ``$FLASHROOM_DELTA_APPS=OLD.bin:NEW.bin``; skipped with the reason when neither is there.

The compressed row is what the extended device gets: the smallest compressed file its
encodings allow (LZMA with a 4 KB dictionary since encoding 5); its note gives Deflate's figure
from a second run on the same device with the LZMA bit cleared.

Also shown: detools' own patch sizes (its default LZMA, which the device does not apply, and
the C library's heatshrink 8/7), the handshake floor (a one-chunk update: the round trips any
update pays), the device's peak decoder RAM against its budget, and the synthetic pair on the
lossy preset (5 seeds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import statistics
from pathlib import Path
from typing import Any

from flashroom.deviceos.stream import EncodingMask, StreamEncoding, lzma_param
from flashroom.emu.device import Device
from flashroom.ota.device_end import DeviceConfig
from flashroom.ota.link import PRESETS, LinkProfile
from flashroom.ota.simulate import simulate
from flashroom.ota.stream import STREAM_MARGIN, OtaOffer, detools_patch_lzma
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.evolve import small_change
from flashroom.particle.stream import DEFAULT_LZMA, detools_patch, split_stream

LINK = PRESETS["3g"]
LOSSY = PRESETS["lossy"]
LOSSY_SEEDS = (1, 2, 3, 4, 5)
ENV_PAIR = "FLASHROOM_DELTA_APPS"


def _fixtures() -> Path:
    """$FLASHROOM_FIXTURES, else ../shared beside the checkout (as tests/conftest.py), else the
    shared directory of the main checkout."""
    env = os.environ.get("FLASHROOM_FIXTURES")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parent.parent.parent / "shared/fixtures/particle-modules"
    return beside if beside.is_dir() else Path("/work/shared/fixtures/particle-modules")


def _device(base: bytes, *, electron_app: bool) -> tuple[Device, Any]:
    dev = Device.new("electron", "extended")
    if electron_app:
        dev.install(base)
    else:  # a Photon module: its bytes in the user part, as a base only
        dev.install(base, address=dev.profile.user_loc)
    return dev, dev.snapshot()


def _one(
    kind: str,
    old: bytes,
    new: bytes,
    base: tuple[Device, Any],
    *,
    electron_app: bool,
    link: LinkProfile = LINK,
    seed: int = 1,
) -> dict[str, Any]:
    """One update of ``new`` as ``kind`` (raw, compressed, deflate: compressed to the same device
    without the LZMA bit, delta); its measured figures."""
    profile = base[0].profile
    if kind == "deflate" and profile.ota_stream is not None:
        cap = profile.ota_stream
        no_lzma = dataclasses.replace(cap, encodings=cap.encodings & ~EncodingMask.LZMA)
        profile = dataclasses.replace(profile, ota_stream=no_lzma)
    dev = Device(profile)
    dev.restore(base[1])
    offer = None
    cfg = DeviceConfig(platform="electron", seed=seed + 1)
    if kind in ("compressed", "deflate"):
        offer = OtaOffer(new, [], allow=frozenset({"compressed"}))
    elif kind == "delta":
        offer = OtaOffer(new, [old], allow=frozenset({"delta"}))
        if not electron_app:
            cfg = DeviceConfig(
                platform="electron", seed=seed + 1, claim_base_sha256=hashlib.sha256(old).digest()
            )
    dev.hw.last_stream = None
    out = simulate(new, dev, device_config=cfg, link=link, seed=seed, offer=offer)
    sess = out.session
    if sess is None or sess.finished_at is None or out.device.finished_at is None:
        raise RuntimeError(f"{kind}: the transfer did not finish: {out.device.error}")
    enc = sess.choice.encoding if sess.choice else "raw"
    # a compressed file that saves less than STREAM_MARGIN is not sent: the server's raw choice
    # is then the compressed row's honest figure (the real app's LCG blob)
    if (kind == "raw" and enc != "raw") or (kind == "delta" and enc == "raw"):
        raise RuntimeError(f"{kind}: the server chose {enc}")
    rebuilt = dev.flash.read(dev.profile.ota_flash_address, len(new))
    if rebuilt != new:
        raise RuntimeError(f"{kind}: the scratch does not hold the new module after the transfer")
    if electron_app and out.status != "applied":
        raise RuntimeError(f"{kind}: not applied: {out.device.error}")
    stats = dev.last_stream_stats
    return {
        "encoding": enc,
        "payload": len(sess.image),
        "wire": out.report.wire_bytes,
        "link_s": max(out.device.finished_at, sess.finished_at),
        "peak_ram": stats.peak_ram if stats else 0,
        "budget": stats.ram_budget if stats else 0,
        "deferred": stats.deferred if stats else 0,
    }


def _floor() -> float:
    """Link time of the smallest update (one 512-byte chunk): the handshake round trips."""
    app = synthetic_user_app(512, version=9, seed=3)
    dev, snap = _device(synthetic_user_app(32 * 1024, version=5, seed=3), electron_app=True)
    d = Device(dev.profile)
    d.restore(snap)
    out = simulate(app, d, device_config=DeviceConfig(seed=2), link=LINK, seed=1)
    sess = out.session
    if sess is None or sess.finished_at is None:
        raise RuntimeError("floor transfer did not finish")
    return float(sess.finished_at)


def _rows_for(name: str, old: bytes, new: bytes, *, electron_app: bool, floor: float) -> list[Any]:
    base = _device(old, electron_app=electron_app)
    runs = {k: _one(k, old, new, base, electron_app=electron_app) for k in
            ("raw", "compressed", "deflate", "delta")}  # fmt: skip
    raw, comp, delta = runs["raw"], runs["compressed"], runs["delta"]
    defl = runs["deflate"]
    n = len(new)
    comp_note = (
        f"{comp['encoding']} (the smallest the extended device applies), file "
        f"{comp['payload'] / n:.3f} of the module; link time "
        f"{comp['link_s'] / raw['link_s']:.3f} of raw; {defl['encoding']} "
        f"{defl['wire'] / raw['wire']:.4f} of raw's wire (file {defl['payload'] / n:.3f})"
    )
    if comp["encoding"] == "raw":  # no compressed file saves STREAM_MARGIN: the server sends raw
        lzf = OtaOffer(new, []).compressed(StreamEncoding.LZMA, lzma_param(*DEFAULT_LZMA))
        comp_note = (
            f"raw: no compressed file saves {STREAM_MARGIN:.0%} (lzma file {len(lzf) / n:.3f} of "
            "the module), so the server sends the module as is"
        )
    lz = len(detools_patch_lzma(old, new))
    hs = len(detools_patch(old, new, "heatshrink"))
    _h, ours = split_stream(OtaOffer(new, [old]).delta_for(hashlib.sha256(old).hexdigest()) or b"")
    rows = [
        {"metric": f"{name}: module bytes (new)", "value": n, "unit": "B"},
        {
            "metric": f"{name}: raw wire bytes / link time",
            "value": raw["wire"],
            "unit": "B",
            "note": f"{raw['link_s']:.3f} s on 3g; {raw['wire'] / n:.3f} wire bytes per byte",
        },
        {
            "metric": f"{name}: compressed wire / raw",
            "value": round(comp["wire"] / raw["wire"], 4),
            "unit": "x",
            "target": "<= 0.70",
            "note": comp_note,
        },
        {
            "metric": f"{name}: delta wire / raw",
            "value": round(delta["wire"] / raw["wire"], 4),
            "unit": "x",
            "target": "<= 0.03",
            "note": f"{delta['encoding']}: {delta['payload']} B file ({len(ours)} B patch + "
            f"{delta['payload'] - len(ours)} B header/CRC table), {delta['wire']} B on the wire",
        },
        {
            "metric": f"{name}: delta link time / raw (3g)",
            "value": round(delta["link_s"] / raw["link_s"], 4),
            "unit": "x",
            "target": "<= 0.25",
            "note": f"{delta['link_s']:.3f} s vs {raw['link_s']:.3f} s; the handshake floor "
            f"alone is {floor / raw['link_s']:.3f} of raw",
        },
        {
            "metric": f"{name}: patch / new, ours vs detools' own",
            "value": round(len(ours) / n, 4),
            "unit": "x",
            "note": f"detools lzma {lz / n:.4f} (not applied on the device), detools "
            f"heatshrink 8/7 {hs / n:.4f} (the C library's default)",
        },
        {
            "metric": f"{name}: decoder peak RAM (compressed, delta)",
            "value": max(comp["peak_ram"], delta["peak_ram"]),
            "unit": "B",
            "target": f"<= {max(comp['budget'], delta['budget'])}",
            "note": f"compressed {comp['peak_ram']}, delta {delta['peak_ram']}; "
            f"{comp['deferred'] + delta['deferred']} chunks deferred",
        },
    ]
    return rows


def _built_pair() -> tuple[bytes, bytes] | str:
    """Two builds of one real Electron app with a small code change (tests/data/apps big200k
    and big200k-v2), from the shared reference build (``flashroom devos build``, cached in
    build/devos-cache; built here if needed), or why not."""
    from flashroom.devos.reference import reference_build
    from flashroom.devos.tree import find_shared_dir
    from flashroom.errors import FlashroomError
    from flashroom.scenarios.story_real import DEMO_APPS, DEMO_STOCK_APPS

    repo = Path(__file__).resolve().parent.parent
    shared = find_shared_dir(repo)
    if shared is None:
        return "app pair: no Device OS source beside the checkout (shared/device-os)"
    apps = repo / "tests" / "data" / "apps"
    try:
        ref = reference_build(
            shared / "device-os" / "v2.3.1",
            repo / "build" / "devos-cache",
            apps=[apps / n for n in DEMO_APPS],
            stock_apps=[apps / n for n in DEMO_STOCK_APPS],
        )
    except FlashroomError as e:
        return f"app pair: the Device OS build is not available ({e})"
    out = Path(ref.out)
    return (out / "user-part-big200k.bin").read_bytes(), (
        out / "user-part-big200k-v2.bin"
    ).read_bytes()


def _pairs() -> tuple[list[tuple[str, bytes, bytes, bool]], list[str]]:
    pairs: list[tuple[str, bytes, bytes, bool]] = []
    skipped: list[str] = []
    old = synthetic_user_app(256 * 1024 - 64, version=5, seed=13)
    pairs.append(("synthetic 256K", old, small_change(old, insert=64, seed=13), True))
    fx = _fixtures()
    for part in ("system-part1", "system-part2", "user-part"):
        a, b = fx / f"040_{part}.bin", fx / f"043_{part}.bin"
        if a.is_file() and b.is_file():
            pairs.append((f"040->043 {part}", a.read_bytes(), b.read_bytes(), False))
        else:
            skipped.append(f"040->043 {part}: fixtures not found at {fx} (set FLASHROOM_FIXTURES)")
    env = os.environ.get(ENV_PAIR, "")
    if env:
        olds, _, news = env.partition(":")
        try:
            pairs.append(("app pair", Path(olds).read_bytes(), Path(news).read_bytes(), True))
        except OSError as e:
            skipped.append(f"app pair: ${ENV_PAIR}={env!r}: {e}")
    else:
        got = _built_pair()
        if isinstance(got, str):
            skipped.append(got)
        else:
            pairs.append(("real app big200k v1->v2", got[0], got[1], True))
    return pairs, skipped


def run() -> dict[str, Any]:
    floor = _floor()
    pairs, skipped = _pairs()
    rows: list[dict[str, Any]] = [
        {
            "metric": "handshake floor: one-chunk update link time (3g)",
            "value": round(floor, 3),
            "unit": "s",
            "note": "Hello -> UpdateBegin -> UpdateReady, one chunk, UpdateDone -> 2.04: ~2.5 "
            "RTT plus serialisation; no delta can go below it",
        }
    ]
    for name, old, new, electron_app in pairs:
        rows += _rows_for(name, old, new, electron_app=electron_app, floor=floor)
    # the synthetic pair on the lossy stress link
    name, old, new, _e = pairs[0]
    base = _device(old, electron_app=True)
    lossy: dict[str, list[dict[str, Any]]] = {k: [] for k in ("raw", "compressed", "delta")}
    for seed in LOSSY_SEEDS:
        for k in lossy:
            lossy[k].append(_one(k, old, new, base, electron_app=True, link=LOSSY, seed=seed))
    raw_w = statistics.mean(r["wire"] for r in lossy["raw"])
    raw_t = statistics.mean(r["link_s"] for r in lossy["raw"])
    for k in ("compressed", "delta"):
        w = statistics.mean(r["wire"] for r in lossy[k])
        t = statistics.mean(r["link_s"] for r in lossy[k])
        rows.append(
            {
                "metric": f"{name}, lossy preset: {k} wire / raw",
                "value": round(w / raw_w, 4),
                "unit": "x",
                "note": f"link time {t / raw_t:.3f} of raw (mean of {len(LOSSY_SEEDS)} seeds; "
                f"{sum(r['deferred'] for r in lossy[k])} chunks deferred in all)",
            }
        )
    for why in skipped:
        rows.append({"metric": "skipped", "value": 0, "unit": "", "note": why})
    return {"name": "bench_delta", "rows": rows, "skipped": skipped}


if __name__ == "__main__":  # pragma: no cover - manual run
    for r in run()["rows"]:
        print(r)
