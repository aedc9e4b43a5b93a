"""Cellular link emulation: RTT, bandwidth, loss, duplication, reordering; seeded; simulated time.

Nothing here waits. :class:`LinkModel` decides, per datagram, whether it is lost, duplicated or
delayed past later datagrams, and *when* each copy would arrive on the modelled link (a FIFO per
direction: serialisation at the direction's bandwidth, then half the RTT of propagation). The
in-process transport runs on those times (a discrete-event clock); the UDP transport moves the
datagrams immediately and keeps the simulated clock alongside (:class:`LinkClock`).

Presets (figures are the *device's* radio; the server side is assumed fast):

* ``2g``: GPRS multislot class 10 as on the Electron G350: 85.6 kbit/s down, 42.8 kbit/s up
  (u-blox SARA-G350 data sheet, UBX-13000995, "GPRS multi-slot class 10"); RTT 700 ms
  (GPRS RTTs of 600-1000 ms: Chakravorty & Pratt, "Practical experience with TCP over GPRS",
  IEEE GLOBECOM 2002).
* ``3g``: a UMTS Release 99 PS 64/384 kbit/s radio bearer (3GPP TS 34.108 6.10 reference RAB:
  384 kbit/s down, 64 kbit/s up), the sustained rate an Electron U260/U270 (u-blox SARA-U2,
  HSPA-capable) can rely on; RTT 200 ms (UMTS R99 RTT of 150-200 ms, Holma & Toskala, "WCDMA for
  UMTS", 5th ed., ch. 10).
* ``lte-m``: LTE Cat-M1 on u-blox SARA-R410M (E Series LTE, Boron LTE): 300 kbit/s down,
  375 kbit/s up (SARA-R4 data sheet UBX-16024152); RTT 150 ms (GSMA "LTE-M Deployment Guide to
  Basic Feature Set Requirements" v3, 2019: latency 10-15 ms in good coverage, hundreds of ms in
  extended coverage; 150 ms is a middle figure).
* ``lossy``: ``3g`` with 5 % loss, 1 % duplication and 2 % reordering: a stress profile. For
  scale, 3GPP TS 23.203 table 6.1.7 gives a packet error loss rate of 1e-6 for best-effort
  bearers (QCI 9) after link-layer retransmission, so real residual loss is far lower.

Loss is independent per datagram (Bernoulli); a duplicate arrives 1 ms after the original; a
reordered datagram is held back by half an RTT plus 2 ms so that later ones overtake it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from flashroom.errors import UsageError
from flashroom.ota.accounting import PER_DATAGRAM_OVERHEAD

DUPLICATE_DELAY_S = 0.001


@dataclass(frozen=True)
class LinkProfile:
    """A link's figures.

    Attributes:
        name: preset name or "custom".
        rtt_s: round-trip propagation time (no serialisation).
        bandwidth_bps: downlink (server -> device) bits per second on the wire; 0 = unlimited.
        uplink_bps: device -> server bits per second; None = same as the downlink.
        loss: probability that a datagram is lost (each direction, each datagram).
        duplicate: probability that a datagram arrives twice.
        reorder: probability that a datagram is overtaken by later ones.
        source: where the figures come from.
    """

    name: str
    rtt_s: float
    bandwidth_bps: float
    uplink_bps: float | None = None
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        for attr in ("loss", "duplicate", "reorder"):
            v = getattr(self, attr)
            if not 0.0 <= v < 1.0:
                raise UsageError(f"link {attr} {v}: expected a probability in [0, 1)")
        if self.rtt_s < 0 or self.bandwidth_bps < 0 or (self.uplink_bps or 0) < 0:
            raise UsageError("link rtt and bandwidth must not be negative")

    @property
    def up_bps(self) -> float:
        """Uplink bits per second."""
        return self.bandwidth_bps if self.uplink_bps is None else self.uplink_bps

    def with_(self, **changes: Any) -> LinkProfile:
        """A copy with some figures changed (the name becomes ``<name>+custom``)."""
        name = changes.pop("name", f"{self.name}+custom" if changes else self.name)
        return replace(self, name=name, **changes)

    def to_json(self) -> dict[str, Any]:
        """Stable keys."""
        return {
            "name": self.name,
            "rtt_ms": round(self.rtt_s * 1000, 3),
            "bandwidth_bps": self.bandwidth_bps,
            "uplink_bps": self.up_bps,
            "loss": self.loss,
            "duplicate": self.duplicate,
            "reorder": self.reorder,
        }


PRESETS: dict[str, LinkProfile] = {
    "2g": LinkProfile(
        "2g", 0.700, 85_600, 42_800, source="u-blox SARA-G350 GPRS class 10; GPRS RTT 600-1000 ms"
    ),
    "3g": LinkProfile(
        "3g", 0.200, 384_000, 64_000, source="3GPP TS 34.108 PS 64/384 RAB; UMTS R99 RTT"
    ),
    "lte-m": LinkProfile(
        "lte-m", 0.150, 300_000, 375_000, source="u-blox SARA-R410M Cat-M1; GSMA LTE-M guide"
    ),
    "lossy": LinkProfile(
        "lossy",
        0.200,
        384_000,
        64_000,
        loss=0.05,
        duplicate=0.01,
        reorder=0.02,
        source="3g with 5% loss, 1% duplication, 2% reordering (stress profile)",
    ),
}

#: A perfect link: no delay, unlimited bandwidth (loopback).
IDEAL = LinkProfile("ideal", 0.0, 0.0, source="no emulation")


def get_link(name: str) -> LinkProfile:
    """A preset by name.

    Raises:
        UsageError: unknown name (the message lists the presets).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(
            f"unknown link preset {name!r}; expected one of {sorted(PRESETS)}"
        ) from None


def _ser(size: int, bps: float) -> float:
    """Serialisation time of one datagram (CoAP + UDP/IP/DTLS overhead) at ``bps``."""
    return (size + PER_DATAGRAM_OVERHEAD) * 8 / bps if bps > 0 else 0.0


@dataclass
class Fate:
    """What the link does to one datagram: arrival times of each copy (empty: lost)."""

    arrivals: list[float]
    lost: bool = False
    duplicated: bool = False
    reordered: bool = False


class LinkModel:
    """Per-datagram decisions and simulated arrival times, one FIFO per direction."""

    def __init__(self, profile: LinkProfile, seed: int = 0) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self._free = {True: 0.0, False: 0.0}  # up -> time the radio is free again

    def send(self, now: float, size: int, *, up: bool) -> Fate:
        """A datagram of ``size`` CoAP bytes handed to the link at ``now``."""
        p = self.profile
        bps = p.up_bps if up else p.bandwidth_bps
        start = max(now, self._free[up])
        done = start + _ser(size, bps)
        self._free[up] = done  # a lost datagram still used the radio
        arrival = done + p.rtt_s / 2
        rng = self.rng
        if p.loss and rng.random() < p.loss:
            return Fate([], lost=True)
        fate = Fate([arrival])
        if p.reorder and rng.random() < p.reorder:
            fate.arrivals[0] += p.rtt_s / 2 + 0.002
            fate.reordered = True
        if p.duplicate and rng.random() < p.duplicate:
            fate.arrivals.append(fate.arrivals[0] + DUPLICATE_DELAY_S)
            fate.duplicated = True
        return fate


class LinkClock:
    """Simulated link time for the UDP transport, estimated at the device from what it sees.

    Real datagrams move at loopback speed; the estimate follows the same FIFO model as
    :class:`LinkModel`, with one assumption: the server answers instantly. A datagram the
    device receives right after sending is a reply and arrives one RTT after that send; further
    datagrams queue behind it on the downlink. A lost CON costs the sender's ACK timeout
    (simulated at the RFC 7252 value), a device retransmission costs its own doubled timeout.
    """

    def __init__(self, profile: LinkProfile, ack_timeout_s: float = 2.0) -> None:
        self.profile = profile
        self.ack_timeout_s = ack_timeout_s
        self.now = 0.0
        self._last_send = 0.0
        self._replied = True
        self._down_free = 0.0
        self._up_free = 0.0

    def on_send(self, size: int) -> None:
        """The device sent a datagram."""
        start = max(self.now, self._up_free)
        self._up_free = start + _ser(size, self.profile.up_bps)
        self._last_send = self._up_free
        self._replied = False

    def on_receive(self, size: int) -> None:
        """The device received a datagram."""
        if not self._replied:
            earliest = self._last_send + self.profile.rtt_s
            self._replied = True
        else:
            earliest = self.now
        start = max(earliest, self._down_free)
        self._down_free = start + _ser(size, self.profile.bandwidth_bps)
        self.now = max(self.now, self._down_free)

    def on_loss_of_con(self) -> None:
        """A CON was lost: its sender waits one ACK timeout before retransmitting."""
        self.now += self.ack_timeout_s

    def on_retransmit(self, attempt: int) -> None:
        """The device retransmitted (attempt 1, 2...): the timeout before it doubled each time."""
        self.now += self.ack_timeout_s * (2 ** (attempt - 1))
