"""flashroom.ota: Particle's chunked OTA transfer (spec 6) over CoAP, with every byte counted.

Modules (import what you need; nothing is imported here so ``import flashroom`` stays light):

* :mod:`~flashroom.ota.messages`: byte-exact CoAP (RFC 7252) and the spec 6.1 messages.
* :mod:`~flashroom.ota.endpoint`: sans-I/O CoAP message layer (CON retransmission, dedup).
* :mod:`~flashroom.ota.protocol`: sans-I/O state machines: :class:`DeviceEnd`,
  :class:`ServerSession` (stop-and-wait and fast OTA, ChunkMissed, timeouts).
* :mod:`~flashroom.ota.server`: :class:`OtaServer`, one session per device address.
* :mod:`~flashroom.ota.link`: link presets (2g, 3g, lte-m, lossy) and the seeded link model.
* :mod:`~flashroom.ota.accounting`: payload/CoAP/UDP/IPv4/DTLS bytes, messages, link time.
* :mod:`~flashroom.ota.simulate`: the in-process transport (discrete-event clock).
* :mod:`~flashroom.ota.transport`: real CoAP over UDP (asyncio; the only module with sockets).
* :mod:`~flashroom.ota.device_end`: an emulated ``Device`` taking an update, then resetting.
"""
