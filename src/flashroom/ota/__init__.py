"""flashroom.ota: Particle's chunked OTA transfer (spec 6) over CoAP, with every byte counted.

The protocol, peer of the device model (:mod:`flashroom.emu`): neither imports the other. The
device end drives the system's OTA entry points through
:class:`flashroom.deviceos.ota.SystemUpdateCallbacks`, which the emulated device and the real
system code (:mod:`flashroom.firmware`) implement; what delivers an update to an emulated device
lives above both, in :mod:`flashroom.scenarios.deliver`.

Modules (import what you need; nothing is imported here so ``import flashroom`` stays light):

* :mod:`~flashroom.ota.messages`: byte-exact CoAP (RFC 7252) and the spec 6.1 messages.
* :mod:`~flashroom.ota.endpoint`: sans-I/O CoAP message layer (CON retransmission, dedup).
* :mod:`~flashroom.ota.device_end`: the device end, :class:`DeviceEnd` (``ChunkedTransfer``).
* :mod:`~flashroom.ota.server_end`: the server end for one device, :class:`ServerSession`
  (stop-and-wait and fast OTA, ChunkMissed, timeouts).
* :mod:`~flashroom.ota.server`: :class:`OtaServer`, one session per device address.
* :mod:`~flashroom.ota.stream`: delta and compressed updates (docs/delta-ota.md): the Hello
  extension, the server's per-device pick (``OtaOffer``), the receive window, ``ota diff``.
* :mod:`~flashroom.ota.link`: link presets (2g, 3g, lte-m, lossy) and the seeded link model.
* :mod:`~flashroom.ota.accounting`: payload/CoAP/UDP/IPv4/DTLS bytes, messages, link time.
* :mod:`~flashroom.ota.simulate`: the in-process transport (discrete-event clock).
* :mod:`~flashroom.ota.transport`: real CoAP over UDP (asyncio; the only module with sockets).

Both ends are sans-I/O state machines: datagrams in, datagrams out; time is a parameter.
Neither opens a socket or reads a clock.

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
