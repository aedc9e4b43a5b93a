"""DTLS 1.2 with a pre-shared key per device (tinydtls through DTLSSocket): the association
``ota serve`` and ``emu connect`` put around their CoAP datagrams, and the PSK file format.

Sans-I/O like the protocol ends: :class:`DtlsEnd` is fed datagrams and hands what it would
send to a callback; :mod:`flashroom.ota.transport` moves the bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from flashroom.errors import TransportError

#: tinydtls keeps per-session address data that is unused here: one DTLS context per peer, as
#: aiocoap's tinydtls transports do (aiocoap/transports/tinydtls_server.py)
_DTLS_SENTINEL = ("::1", 1234)
_DTLS_EVENT_CONNECTED = 0x01DE  # tinydtls DTLS_EVENT_CONNECTED (aiocoap/transports/tinydtls.py)
_DTLS_LEVEL_FATAL = 2  # RFC 5246 7.2 alert level
DTLS_HANDSHAKE = 22  # RFC 6347 4.1 record content type
_DTLS_CLIENT_HELLO = 1  # RFC 6347 4.2.2 handshake type (byte 13 of the first record)
PSK_MIN_BYTES = 16  # a 128-bit key at least (AES-128-CCM-8 is the suite tinydtls offers)


def parse_psk_lines(text: str, what: str) -> dict[bytes, bytes]:
    """``IDENTITY KEYHEX`` lines (``#`` comments, blank lines) -> ``{identity: key}``.

    The identity is the device ID in hex (24 digits for a 12-byte ID); the server takes a
    device's Hello only when its device ID is the identity that authenticated.

    Raises:
        TransportError: a malformed line, a key that is not hex or shorter than 16 bytes, or
            no key at all.
    """
    keys: dict[bytes, bytes] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise TransportError(f"{what} line {n}: expected 'IDENTITY KEYHEX', got {line!r}")
        ident, key_hex = parts
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            raise TransportError(f"{what} line {n}: key {key_hex[:8]!r}... is not hex") from None
        if len(key) < PSK_MIN_BYTES:
            raise TransportError(
                f"{what} line {n}: key of {len(key)} bytes; expected at least {PSK_MIN_BYTES}"
            )
        keys[ident.lower().encode()] = key
    if not keys:
        raise TransportError(f"{what}: no 'IDENTITY KEYHEX' line")
    return keys


class RecordingStore:
    """The dict-like PSK store DTLSSocket reads, remembering which identity it handed a key
    for (the binding reports no identity otherwise; aiocoap's ``SecurityStore`` does the same)."""

    def __init__(self, keys: dict[bytes, bytes]) -> None:
        self._keys = keys
        self.identity: bytes | None = None

    def keys(self) -> RecordingStore:
        return self

    def __contains__(self, identity: object) -> bool:
        return isinstance(identity, bytes) and identity.lower() in self._keys

    def __getitem__(self, identity: bytes) -> bytes:
        self.identity = identity.lower()
        return self._keys[self.identity]


class DtlsEnd:
    """One DTLS 1.2 PSK association (tinydtls through DTLSSocket, ``TLS_PSK_WITH_AES_128_CCM_8``).

    ``feed`` takes a datagram from the peer and returns the plaintext records in it; ``write``
    encrypts one plaintext datagram; ``send`` is called with every datagram to put on the wire.
    """

    def __init__(
        self,
        send: Callable[[bytes], None],
        keys: dict[bytes, bytes],
        *,
        client_identity: bytes | None = None,
    ) -> None:
        from DTLSSocket import dtls  # DTLSSocket (tinydtls): deferred for start-up time

        self._send = send
        self._plain: list[bytes] = []
        self.connected = False
        self.fatal: int | None = None
        self.wire_datagrams = 0
        self.wire_bytes = 0
        self.handshake_datagrams = 0
        self.handshake_bytes = 0
        self.client_hellos = 0
        self.store = RecordingStore(keys)
        # the binding keeps a char* into pskId: hold the bytes object for the context's life
        self._psk_id = client_identity or b"flashroom-ota-server"
        self.ctx = dtls.DTLS(
            read=self._read,
            write=self._write,
            event=self._event,
            pskId=self._psk_id,
            pskStore=self.store,
        )
        if client_identity is not None:
            self.session = self.ctx.connect(*_DTLS_SENTINEL)
        else:
            self.session = dtls.Session(*_DTLS_SENTINEL)

    @property
    def identity(self) -> bytes | None:
        """The PSK identity the peer authenticated with (server side, once connected)."""
        return self.store.identity if self.connected else None

    def _read(self, _addr: Any, data: bytes) -> int:
        self._plain.append(bytes(data))
        return len(data)

    def _write(self, _addr: Any, data: bytes) -> int:
        data = bytes(data)
        self.wire_datagrams += 1
        self.wire_bytes += len(data)
        if not self.connected or data[:1] == bytes((DTLS_HANDSHAKE,)):
            self.handshake_datagrams += 1
            self.handshake_bytes += len(data)
            if len(data) > 13 and data[0] == DTLS_HANDSHAKE and data[13] == _DTLS_CLIENT_HELLO:
                self.client_hellos += 1
        self._send(data)
        return len(data)

    def _event(self, level: int, code: int) -> None:
        if code == _DTLS_EVENT_CONNECTED:
            self.connected = True
        elif level == _DTLS_LEVEL_FATAL:
            self.fatal = code

    def feed(self, data: bytes) -> list[bytes]:
        """A datagram from the peer -> the plaintext it carried (empty during the handshake,
        or when it does not authenticate)."""
        if not self.connected:
            self.handshake_datagrams += 1
            self.handshake_bytes += len(data)
        self.ctx.handleMessage(self.session, data)
        plain, self._plain = self._plain, []
        return plain

    def write(self, data: bytes) -> None:
        """Encrypt and send one plaintext datagram (one DTLS record)."""
        self.ctx.write(self.session, data)

    def retransmit(self) -> None:
        """Let tinydtls resend a handshake flight whose timer ran out."""
        self.ctx.checkRetransmit()

    def close(self) -> None:
        """Send close_notify (RFC 5246 7.2.1)."""
        if self.connected:
            with contextlib.suppress(Exception):
                self.ctx.close(self.session)


def dtls_available() -> str | None:
    """None when DTLSSocket (tinydtls) imports, else why not."""
    try:
        from DTLSSocket import dtls  # noqa: F401  # DTLSSocket: deferred for start-up time
    except ImportError as e:
        return f"DTLSSocket (tinydtls) is not installed: {e}"
    return None


__all__ = [
    "DTLS_HANDSHAKE",
    "PSK_MIN_BYTES",
    "DtlsEnd",
    "RecordingStore",
    "dtls_available",
    "parse_psk_lines",
]
