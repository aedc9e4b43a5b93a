"""What an update costs on the wire: payload, CoAP, UDP/IP and DTLS bytes, messages, link time.

Per-datagram overhead below CoAP (spec-silent; documented constants):

* IPv4 header: 20 bytes (RFC 791, no options).
* UDP header: 8 bytes (RFC 768).
* DTLS 1.2 record overhead: 29 bytes = 13-byte record header (type 1, version 2, epoch 2,
  sequence number 6, length 2; RFC 6347 4.1) + 8-byte explicit nonce + 8-byte authentication tag.
  Particle's Electron runs its UDP cloud session over DTLS 1.2 with an AES-128-CCM-8 suite
  (RFC 6655/7251: ``TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8``; CCM carries an 8-byte explicit nonce
  and CCM-8 an 8-byte tag). The DTLS handshake itself is not counted: the session exists
  before the update starts.

Cellular link-layer overhead (PDCP/RLC headers, ROHC) is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IPV4_HEADER = 20  # RFC 791
UDP_HEADER = 8  # RFC 768
DTLS_RECORD_HEADER = 13  # RFC 6347 4.1
DTLS_EXPLICIT_NONCE = 8  # RFC 6655 3 (AES-CCM nonce_explicit)
DTLS_CCM8_TAG = 8  # RFC 6655 (CCM_8)
DTLS_RECORD_OVERHEAD = DTLS_RECORD_HEADER + DTLS_EXPLICIT_NONCE + DTLS_CCM8_TAG  # 29
PER_DATAGRAM_OVERHEAD = IPV4_HEADER + UDP_HEADER + DTLS_RECORD_OVERHEAD  # 57


@dataclass
class Meter:
    """Counts datagrams as they are sent, in both directions.

    Attributes:
        messages: datagrams sent by either end (each retransmission counts again).
        coap_bytes: CoAP bytes of those datagrams.
        retransmissions: CoAP retransmissions (same message ID) plus protocol resends of chunks.
        lost, duplicated, reordered: what the link did to them.
    """

    messages: int = 0
    coap_bytes: int = 0
    up_messages: int = 0
    up_coap_bytes: int = 0
    retransmissions: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0

    def count(self, size: int, *, up: bool) -> None:
        """One datagram of ``size`` CoAP bytes sent (``up``: device to server)."""
        self.messages += 1
        self.coap_bytes += size
        if up:
            self.up_messages += 1
            self.up_coap_bytes += size

    @property
    def wire_bytes(self) -> int:
        """CoAP bytes plus the per-datagram UDP/IPv4/DTLS overhead."""
        return self.coap_bytes + self.messages * PER_DATAGRAM_OVERHEAD


@dataclass
class TransferReport:
    """The cost of one update, as the CLI and the benchmark report it.

    Attributes:
        payload_bytes: file bytes the device received and handed to its system (the file
            length when complete): for a delta or compressed update, the encoded bytes.
        wire_bytes: every datagram both ways, CoAP + UDP + IPv4 + DTLS (see module docstring).
        coap_bytes: the same without the UDP/IP/DTLS overhead.
        messages: datagrams sent by both ends.
        retransmissions: CoAP retransmissions plus chunk resends.
        link_time_s: simulated time on the link from the Hello to the end.
        bandwidth_bps: the link's downlink bandwidth (0 when unknown).
        encoding: what the server sent: ``raw``, or a streamed encoding (``delta_deflate``,
            ``deflate``... ota/stream.py).
        written_bytes: bytes the device wrote into its OTA scratch (the rebuilt module of a
            streamed update; equal to the received bytes for a raw one). None when unknown.
        module_bytes: the size of the module the update delivers (None when unknown).
    """

    payload_bytes: int
    wire_bytes: int
    coap_bytes: int
    messages: int
    retransmissions: int
    link_time_s: float
    bandwidth_bps: float
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    encoding: str = "raw"
    written_bytes: int | None = None
    module_bytes: int | None = None

    @property
    def goodput_bps(self) -> float:
        """Payload bits per simulated second."""
        return self.payload_bytes * 8 / self.link_time_s if self.link_time_s > 0 else 0.0

    @property
    def goodput_ratio(self) -> float:
        """Goodput as a fraction of the downlink bandwidth."""
        return self.goodput_bps / self.bandwidth_bps if self.bandwidth_bps > 0 else 0.0

    @property
    def overhead_ratio(self) -> float:
        """Wire bytes per payload byte."""
        return self.wire_bytes / self.payload_bytes if self.payload_bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        """Stable snake_case keys."""
        return {
            "payload_bytes": self.payload_bytes,
            "wire_bytes": self.wire_bytes,
            "coap_bytes": self.coap_bytes,
            "messages": self.messages,
            "retransmissions": self.retransmissions,
            "link_time_s": round(self.link_time_s, 3),
            "goodput_bps": round(self.goodput_bps, 1),
            "goodput_ratio": round(self.goodput_ratio, 4),
            "wire_overhead_ratio": round(self.overhead_ratio, 4),
            "datagrams_lost": self.lost,
            "datagrams_duplicated": self.duplicated,
            "datagrams_reordered": self.reordered,
            "per_datagram_overhead": PER_DATAGRAM_OVERHEAD,
            "encoding": self.encoding,
            # the device side of a streamed update is a modelled Device OS change
            # (docs/delta-ota.md): the real firmware applies raw bytes only
            "delta": "modelled" if self.encoding != "raw" else "none",
            "received_bytes": self.payload_bytes,
            "written_bytes": self.written_bytes,
            "module_bytes": self.module_bytes,
        }

    @classmethod
    def from_meter(
        cls, meter: Meter, *, payload_bytes: int, link_time_s: float, bandwidth_bps: float
    ) -> TransferReport:
        """Freeze a :class:`Meter`."""
        return cls(
            payload_bytes=payload_bytes,
            wire_bytes=meter.wire_bytes,
            coap_bytes=meter.coap_bytes,
            messages=meter.messages,
            retransmissions=meter.retransmissions,
            link_time_s=link_time_s,
            bandwidth_bps=bandwidth_bps,
            lost=meter.lost,
            duplicated=meter.duplicated,
            reordered=meter.reordered,
        )
