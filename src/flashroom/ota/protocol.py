"""Sans-I/O state machines for both ends of Particle's OTA transfer (spec 6).

The device end lives in :mod:`~flashroom.ota.device_proto`, the server end in
:mod:`~flashroom.ota.server_proto`, shared Device OS facts in :mod:`~flashroom.ota.device_os`;
this module re-exports them.

Datagrams in, datagrams out; time is a parameter. Neither end opens a socket or reads a clock.

Who drives (spec-silent in the device-side spec, documented choice): the device opens the
exchange with a CON ``POST h`` Hello (spec 6.5 payload), as Device OS does when it connects. The
server ACKs it and then drives the update *towards the device* over the same UDP association, as
the Particle cloud does: ``POST u`` UpdateBegin, ``POST c`` Chunk, ``PUT u`` UpdateDone; the
device answers with separate CON responses (UpdateReady, ChunkReceived) and its own CON
``GET c`` ChunkMissed (spec 6.1). Both ends are therefore CoAP clients *and* servers, and every
spec 6.1 code and URI is real on the wire.

Confirmability (spec 6.1: CON on UDP/DTLS): UpdateBegin, stop-and-wait Chunks and UpdateDone are
CON; UpdateReady, ChunkReceived and ChunkMissed are CON. Fast-OTA Chunks are sent NON: spec 6.3
#5 says the device stays silent on them, so a CON would be retransmitted for nothing
(spec-silent choice; losses are recovered through ChunkMissed, spec 6.4 #5).
"""

from __future__ import annotations

from flashroom.ota.device_os import (
    DEFAULT_CHUNK_SIZE,
    FLASH_END,
    INACTIVITY_TIMEOUT_S,
    MAX_CHUNKS,
    OTA_FLASH_LENGTH,
    OTA_REGION_START,
    PLATFORM_IDS,
    OtaTarget,
    ProgressFn,
    missed_request_count,
)
from flashroom.ota.device_proto import TERMINAL_DEVICE, DeviceConfig, DeviceEnd, DeviceStatus
from flashroom.ota.server_proto import ServerConfig, ServerFaults, ServerSession, SessionStatus

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FLASH_END",
    "INACTIVITY_TIMEOUT_S",
    "MAX_CHUNKS",
    "OTA_FLASH_LENGTH",
    "OTA_REGION_START",
    "PLATFORM_IDS",
    "TERMINAL_DEVICE",
    "DeviceConfig",
    "DeviceEnd",
    "DeviceStatus",
    "OtaTarget",
    "ProgressFn",
    "ServerConfig",
    "ServerFaults",
    "ServerSession",
    "SessionStatus",
    "missed_request_count",
]
