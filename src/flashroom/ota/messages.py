"""Byte-exact CoAP (RFC 7252) and the Particle OTA messages carried in it (spec 6.1-6.4).

Two layers:

* :class:`CoapMessage`: a CoAP message as it sits in a UDP datagram: 4-byte header (version 1,
  type, token length, code, message ID), token, options in ascending number with delta encoding
  (RFC 7252 3.1, extended deltas/lengths 13 and 14), then ``0xFF`` and the payload.
* The OTA messages of spec 6.1 (:class:`UpdateBegin`, :class:`Chunk`, :class:`UpdateDone`,
  :class:`UpdateReady`, :class:`ChunkReceived`, :class:`ChunkMissed`) plus :class:`Hello`, each
  with ``to_coap(...)`` and a ``from_coap(...)`` classmethod.

Wire facts (spec 6.1): a 1-byte token and a single 1-character Uri-Path, so the path character sits
at byte ``5 + token_len``. All payload fields are big-endian (spec 6.2). The chunk CRC-32 and the
fast-OTA chunk index are the 1st and 2nd option after the Uri-Path (spec 6.3 #1); Device OS parses
them positionally, skipping ``(byte & 0xF) + 1`` bytes per option, so it ignores their numbers but
needs option deltas below 13 (no extended delta bytes) and lengths of 12 or less.

Spec-silent choice, the option number: the Particle cloud's ``c?:crc`` message template carries
them as Uri-Query (15), but Uri-Query is a UTF-8 string option (RFC 7252 5.10.1) and a binary
CRC is rarely valid UTF-8, so strict stacks (aiocoap) reject such datagrams. flashroom numbers
both :data:`OPT_CHUNK` = 22, an unassigned *elective* option (IANA CoAP Option Numbers), which
every stack decodes as opaque: delta 11 from Uri-Path, then delta 0. Same byte count as
Uri-Query; the decoder accepts any numbers, positionally, as Device OS does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from flashroom.errors import TransportError
from flashroom.particle.crc import crc32

COAP_VERSION = 1
PAYLOAD_MARKER = 0xFF

OPT_URI_PATH = 11  # RFC 7252 5.10
OPT_URI_QUERY = 15  # RFC 7252 5.10
OPT_CHUNK = 22  # unassigned elective option: chunk CRC-32 and index (see module docstring)

# Codes as the single header byte (class << 5 | detail).
CODE_EMPTY = 0x00
CODE_GET = 0x01
CODE_POST = 0x02
CODE_PUT = 0x03
CODE_CHANGED = 0x44  # 2.04: UpdateReady, ChunkReceived OK, UpdateDone ACK (spec 6.1, 6.4 #3)
CODE_BAD_REQUEST = 0x80  # 4.00: ChunkReceived BAD, UpdateDone ACK with chunks missing
CODE_SERVICE_UNAVAILABLE = 0xA3  # 5.03: UpdateBegin refused (spec 6.2 #2)

# UpdateBegin flags (spec 6.2) and UpdateReady flags (spec 6.1).
FLAG_FAST_OTA = 0x01

# Destination store (spec 6.2, file_transfer.h).
STORE_FIRMWARE = 0
STORE_SYSTEM = 1
STORE_APPLICATION = 128

_UPDATE_BEGIN = struct.Struct(">BHIBI")  # flags, chunk_size, file_length, store, file_address
if _UPDATE_BEGIN.size != 12:  # pragma: no cover - import-time check
    raise ImportError("UpdateBegin payload must be 12 bytes (docs/device-os.md#protocol)")


class CoapType(IntEnum):
    """CoAP message type (RFC 7252 3)."""

    CON = 0
    NON = 1
    ACK = 2
    RST = 3


def code_str(code: int) -> str:
    """``0x44`` -> ``"2.04"``."""
    return f"{code >> 5}.{code & 0x1F:02d}"


@dataclass(frozen=True)
class CoapMessage:
    """One CoAP message (RFC 7252 3).

    Attributes:
        mtype: CON, NON, ACK or RST.
        code: the code byte (``0x02`` POST, ``0x44`` 2.04...).
        message_id: 16-bit message ID (deduplication and ACK matching).
        token: 0-8 bytes (Particle uses 1 byte, spec 6.1; Hello uses none).
        options: ``(number, value)`` pairs in ascending number order (stable for repeats).
        payload: bytes after the ``0xFF`` marker (the marker is absent when empty).
    """

    mtype: CoapType
    code: int
    message_id: int
    token: bytes = b""
    options: tuple[tuple[int, bytes], ...] = ()
    payload: bytes = b""

    def encode(self) -> bytes:
        """The datagram bytes.

        Raises:
            TransportError: a field does not fit its wire encoding.
        """
        if not 0 <= self.message_id <= 0xFFFF:
            raise TransportError(f"message_id {self.message_id} does not fit 16 bits")
        if len(self.token) > 8:
            raise TransportError(f"token of {len(self.token)} bytes; RFC 7252 allows 0-8")
        if not 0 <= self.code <= 0xFF:
            raise TransportError(f"code {self.code} does not fit 8 bits")
        out = bytearray(
            (
                (COAP_VERSION << 6) | (int(self.mtype) << 4) | len(self.token),
                self.code,
                self.message_id >> 8,
                self.message_id & 0xFF,
            )
        )
        out += self.token
        prev = 0
        for number, value in sorted(self.options, key=lambda o: o[0]):
            delta = number - prev
            prev = number
            d_nib, d_ext = _ext(delta)
            l_nib, l_ext = _ext(len(value))
            out.append((d_nib << 4) | l_nib)
            out += d_ext + l_ext + value
        if self.payload:
            out.append(PAYLOAD_MARKER)
            out += self.payload
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> CoapMessage:
        """Parse a datagram.

        Raises:
            TransportError: the datagram is not a well-formed CoAP message (RFC 7252 3).
        """
        if len(data) < 4:
            raise TransportError(f"CoAP datagram of {len(data)} bytes; the header needs 4")
        b0 = data[0]
        if b0 >> 6 != COAP_VERSION:
            raise TransportError(f"CoAP version {b0 >> 6} at byte 0; expected 1")
        tkl = b0 & 0x0F
        if tkl > 8:
            raise TransportError(f"token length {tkl} at byte 0; RFC 7252 allows 0-8")
        mtype = CoapType((b0 >> 4) & 0x03)
        code = data[1]
        mid = (data[2] << 8) | data[3]
        pos = 4 + tkl
        if pos > len(data):
            raise TransportError(f"token runs past the end of a {len(data)}-byte datagram")
        token = bytes(data[4:pos])
        options: list[tuple[int, bytes]] = []
        number = 0
        payload = b""
        while pos < len(data):
            byte = data[pos]
            if byte == PAYLOAD_MARKER:
                payload = bytes(data[pos + 1 :])
                if not payload:
                    raise TransportError(f"payload marker at byte {pos} with an empty payload")
                break
            pos += 1
            delta, pos = _read_ext(data, byte >> 4, pos, "option delta")
            length, pos = _read_ext(data, byte & 0x0F, pos, "option length")
            if pos + length > len(data):
                raise TransportError(f"option value at byte {pos} runs past the datagram end")
            number += delta
            options.append((number, bytes(data[pos : pos + length])))
            pos += length
        if code == CODE_EMPTY and (token or options or payload):
            raise TransportError("empty message (code 0.00) with token, options or payload")
        return cls(mtype, code, mid, token, tuple(options), payload)

    @property
    def uri_path(self) -> str:
        """The Uri-Path segments joined with ``/`` (``""`` when absent)."""
        return "/".join(v.decode("latin-1") for n, v in self.options if n == OPT_URI_PATH)

    def option_values(self, number: int) -> list[bytes]:
        """All values of option ``number``, in order."""
        return [v for n, v in self.options if n == number]

    @property
    def is_request(self) -> bool:
        """True for method codes 0.01-0.31."""
        return 1 <= self.code <= 0x1F

    @property
    def is_empty(self) -> bool:
        """True for the empty message (code 0.00): bare ACK, RST or CoAP ping."""
        return self.code == CODE_EMPTY


def _ext(value: int) -> tuple[int, bytes]:
    """RFC 7252 3.1 nibble and extension bytes for an option delta or length."""
    if value < 0:
        raise TransportError(f"negative option delta/length {value}")
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes((value - 13,))
    if value < 65805:
        return 14, (value - 269).to_bytes(2, "big")
    raise TransportError(f"option delta/length {value} exceeds 65804")


def _read_ext(data: bytes, nibble: int, pos: int, what: str) -> tuple[int, int]:
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos + 1 > len(data):
            raise TransportError(f"{what} extension at byte {pos} runs past the datagram end")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 2 > len(data):
            raise TransportError(f"{what} extension at byte {pos} runs past the datagram end")
        return int.from_bytes(data[pos : pos + 2], "big") + 269, pos + 2
    raise TransportError(f"reserved {what} nibble 15 at byte {pos - 1}")


def empty_ack(message_id: int) -> CoapMessage:
    """The empty ACK (code 0.00) for ``message_id``."""
    return CoapMessage(CoapType.ACK, CODE_EMPTY, message_id)


def reset_for(message_id: int) -> CoapMessage:
    """The RST for a message we cannot process (RFC 7252 4.2)."""
    return CoapMessage(CoapType.RST, CODE_EMPTY, message_id)


def _path(msg: CoapMessage) -> str:
    """The character Device OS dispatches on: byte ``5 + token_len`` of the datagram (spec
    6.1), i.e. the first character of a leading 1-character Uri-Path; ``""`` past the end."""
    raw = msg.encode()  # decode() is lossless, so this is the datagram as received
    at = 5 + len(msg.token)
    return chr(raw[at]) if at < len(raw) else ""


# --------------------------------------------------------------------------- OTA messages
@dataclass(frozen=True)
class Hello:
    """Device -> server ``POST h``: the device announces itself (spec 6.5 Hello payload).

    No token (as Device OS sends it). Payload: product_id u16, product_firmware_version u16,
    reserved u8, flags u8, platform_id u16, device-ID length u16, device ID (all big-endian).
    flashroom's server answers a Hello with an empty ACK and then drives the update towards the
    device (the cloud's direction, spec 6.1).

    ``reserved`` (always 0 in v2.3.1) and ``ext`` (bytes after the device ID, none in v2.3.1)
    carry flashroom's streamed-OTA extension (``deviceos.stream``, :mod:`flashroom.ota.stream`).
    """

    platform_id: int
    device_id: bytes
    product_id: int = 0xFFFF
    product_version: int = 0xFFFF
    flags: int = 0
    reserved: int = 0
    ext: bytes = b""

    def to_coap(self, message_id: int, mtype: CoapType = CoapType.CON) -> CoapMessage:
        """The CoAP request carrying this Hello."""
        payload = struct.pack(
            ">HHBBHH",
            self.product_id,
            self.product_version,
            self.reserved,
            self.flags,
            self.platform_id,
            len(self.device_id),
        )
        return CoapMessage(
            mtype,
            CODE_POST,
            message_id,
            b"",
            ((OPT_URI_PATH, b"h"),),
            payload + self.device_id + self.ext,
        )

    @classmethod
    def from_coap(cls, msg: CoapMessage) -> Hello:
        """Parse a ``POST h``.

        Raises:
            TransportError: wrong code/path or a short payload.
        """
        if msg.code != CODE_POST or _path(msg) != "h":
            raise TransportError(f"not a Hello: {code_str(msg.code)} {_path(msg)!r}")
        p = msg.payload
        if len(p) < 8:
            raise TransportError(f"Hello payload of {len(p)} bytes; expected at least 8")
        product_id, product_version, res, flags, platform_id = struct.unpack(">HHBBH", p[:8])
        device_id = b""
        ext = b""
        if len(p) >= 10:
            n = int.from_bytes(p[8:10], "big")
            device_id = bytes(p[10 : 10 + n])
            ext = bytes(p[10 + n :])
        return cls(platform_id, device_id, product_id, product_version, flags, res, ext)


@dataclass(frozen=True)
class UpdateBegin:
    """Server -> device ``POST u`` (spec 6.2): 12-byte big-endian payload at bytes 8-19.

    Attributes:
        flags: bit 0 requests fast OTA.
        chunk_size: 0 means 512 on the device (spec 4.1 #1).
        file_length: bytes in the file (0 means the OTA region size).
        store: 0 FIRMWARE, 1 SYSTEM, 128 APPLICATION.
        file_address: offset inside the OTA region (normally 0).
    """

    flags: int
    chunk_size: int
    file_length: int
    store: int = STORE_FIRMWARE
    file_address: int = 0

    @property
    def fast(self) -> bool:
        """Fast OTA requested (flag bit 0)."""
        return bool(self.flags & FLAG_FAST_OTA)

    def to_coap(self, message_id: int, token: bytes, *, short: bool = False) -> CoapMessage:
        """The CON ``POST u`` request; ``short`` leaves the payload out (the legacy form the
        device reads as chunk_size 0, file_length 0, FIRMWARE, offset 0; spec 6.2)."""
        payload = (
            b""
            if short
            else _UPDATE_BEGIN.pack(
                self.flags, self.chunk_size, self.file_length, self.store, self.file_address
            )
        )
        return CoapMessage(
            CoapType.CON, CODE_POST, message_id, token, ((OPT_URI_PATH, b"u"),), payload
        )

    @classmethod
    def from_coap(cls, msg: CoapMessage) -> UpdateBegin:
        """Parse as Device OS does (spec 6.2): the long form only when the datagram is at least
        20 bytes and byte 7 is the ``0xFF`` payload marker (1-byte token, 1-character path);
        the fields are then bytes 8-19. Anything else means the legacy defaults.

        Raises:
            TransportError: not a ``POST u``/``POST s``.
        """
        if msg.code != CODE_POST or _path(msg) not in ("u", "s"):
            raise TransportError(f"not an UpdateBegin: {code_str(msg.code)} {_path(msg)!r}")
        raw = msg.encode()  # decode() is lossless, so this is the datagram as received
        if len(raw) < 20 or raw[7] != PAYLOAD_MARKER:
            # spec 6.2: shorter message -> chunk_size 0, file_length 0, FIRMWARE, offset 0
            return cls(0, 0, 0, STORE_FIRMWARE, 0)
        flags, chunk_size, file_length, store, addr = _UPDATE_BEGIN.unpack(raw[8:20])
        return cls(flags, chunk_size, file_length, store, addr)


@dataclass(frozen=True)
class Chunk:
    """Server -> device ``POST c`` (spec 6.3): CRC-32 option, optional index option, data.

    Attributes:
        data: the chunk bytes.
        crc: the CRC-32 the server claims for ``data`` (normally ``crc32(data)``).
        index: the chunk index in fast OTA; ``None`` in stop-and-wait (implicit counter).
    """

    data: bytes
    crc: int
    index: int | None = None

    @classmethod
    def of(cls, data: bytes, index: int | None = None) -> Chunk:
        """A chunk with the correct CRC."""
        return cls(data, crc32(data), index)

    def to_coap(self, message_id: int, token: bytes, mtype: CoapType) -> CoapMessage:
        """The ``POST c`` request (CON in stop-and-wait, NON in fast OTA)."""
        opts: list[tuple[int, bytes]] = [
            (OPT_URI_PATH, b"c"),
            (OPT_CHUNK, self.crc.to_bytes(4, "big")),
        ]
        if self.index is not None:
            opts.append((OPT_CHUNK, self.index.to_bytes(2, "big")))
        return CoapMessage(mtype, CODE_POST, message_id, token, tuple(opts), self.data)

    @classmethod
    def from_coap(cls, msg: CoapMessage) -> Chunk:
        """Parse as Device OS's ``handle_chunk`` does (spec 6.3 #1), warts included: walk the
        datagram's option headers from byte 7 (it assumes a 1-byte token and the 1-byte
        Uri-Path) until the ``0xFF`` marker, stepping ``(header & 0xF) + 1`` bytes; the CRC-32
        is the 4 bytes after the 1st header and the index the 2 bytes after the 2nd, whatever
        those options' lengths; the CRC is 0 when there is no option. The data is everything
        after the marker.

        Raises:
            TransportError: not a ``POST c``, or the walk or a field read runs past the end of
                the datagram (Device OS would read past the message; spec-silent).
        """
        if msg.code != CODE_POST or _path(msg) != "c":
            raise TransportError(f"not a Chunk: {code_str(msg.code)} {_path(msg)!r}")
        raw = msg.encode()  # decode() is lossless, so this is the datagram as received
        crc, index, option, pos = 0, None, 0, 7
        while True:
            if pos >= len(raw):
                raise TransportError(
                    "Chunk options run past the datagram end (docs/device-os.md#protocol)"
                )
            header = raw[pos]
            if header == PAYLOAD_MARKER:
                break
            if option < 2:
                size = 4 if option == 0 else 2
                if pos + 1 + size > len(raw):
                    what = "CRC-32" if option == 0 else "index"
                    raise TransportError(f"Chunk {what} at byte {pos + 1} runs past the end")
                value = int.from_bytes(raw[pos + 1 : pos + 1 + size], "big")
                if option == 0:
                    crc = value
                else:
                    index = value
            option += 1
            pos += (header & 0x0F) + 1
        return cls(bytes(raw[pos + 1 :]), crc, index)


@dataclass(frozen=True)
class UpdateDone:
    """Server -> device ``PUT u`` (spec 6.4): no payload."""

    def to_coap(self, message_id: int, token: bytes) -> CoapMessage:
        """The CON ``PUT u`` request."""
        return CoapMessage(CoapType.CON, CODE_PUT, message_id, token, ((OPT_URI_PATH, b"u"),))

    @classmethod
    def from_coap(cls, msg: CoapMessage) -> UpdateDone:
        """Parse a ``PUT u``.

        Raises:
            TransportError: not a ``PUT u``.
        """
        if msg.code != CODE_PUT or _path(msg) != "u":
            raise TransportError(f"not an UpdateDone: {code_str(msg.code)} {_path(msg)!r}")
        return cls()


@dataclass(frozen=True)
class UpdateReady:
    """Device -> server separate response 2.04 with 1 flags byte (spec 6.1; bit 0 = fast OTA)."""

    flags: int

    def to_coap(self, message_id: int, token: bytes) -> CoapMessage:
        """The CON separate response carrying the UpdateBegin's token."""
        return CoapMessage(
            CoapType.CON, CODE_CHANGED, message_id, token, (), bytes((self.flags & 0xFF,))
        )

    @classmethod
    def from_coap(cls, msg: CoapMessage) -> UpdateReady:
        """Parse (flags 0 when the payload is absent).

        Raises:
            TransportError: not a 2.04 response.
        """
        if msg.code != CODE_CHANGED:
            raise TransportError(f"not an UpdateReady: {code_str(msg.code)}")
        return cls(msg.payload[0] if msg.payload else 0)


@dataclass(frozen=True)
class ChunkReceived:
    """Device -> server separate response, 2.04 OK or 4.00 BAD, no payload (spec 6.1, 6.3 #5)."""

    ok: bool

    def to_coap(self, message_id: int, token: bytes) -> CoapMessage:
        """The CON separate response carrying the chunk's token."""
        code = CODE_CHANGED if self.ok else CODE_BAD_REQUEST
        return CoapMessage(CoapType.CON, code, message_id, token)

    @classmethod
    def from_coap(cls, msg: CoapMessage) -> ChunkReceived:
        """Parse.

        Raises:
            TransportError: neither 2.04 nor 4.00.
        """
        if msg.code not in (CODE_CHANGED, CODE_BAD_REQUEST):
            raise TransportError(f"not a ChunkReceived: {code_str(msg.code)}")
        return cls(msg.code == CODE_CHANGED)


MAX_MISSED_PER_MESSAGE = 40  # spec 6.4 #5 (20 on Argon/A SoM)


@dataclass(frozen=True)
class ChunkMissed:
    """Device -> server CON ``GET c`` listing missing chunk indices as u16 BE (spec 6.1, 6.4 #5)."""

    indices: tuple[int, ...] = field(default_factory=tuple)

    def to_coap(self, message_id: int, token: bytes) -> CoapMessage:
        """The CON ``GET c`` request."""
        payload = b"".join(i.to_bytes(2, "big") for i in self.indices)
        return CoapMessage(
            CoapType.CON, CODE_GET, message_id, token, ((OPT_URI_PATH, b"c"),), payload
        )

    @classmethod
    def from_coap(cls, msg: CoapMessage) -> ChunkMissed:
        """Parse.

        Raises:
            TransportError: not a ``GET c`` or an odd payload length.
        """
        if msg.code != CODE_GET or _path(msg) != "c":
            raise TransportError(f"not a ChunkMissed: {code_str(msg.code)} {_path(msg)!r}")
        if len(msg.payload) % 2:
            raise TransportError(f"ChunkMissed payload of {len(msg.payload)} bytes is odd")
        p = msg.payload
        return cls(tuple(int.from_bytes(p[i : i + 2], "big") for i in range(0, len(p), 2)))


OtaRequest = Hello | UpdateBegin | Chunk | UpdateDone | ChunkMissed


def parse_request(msg: CoapMessage) -> OtaRequest | None:
    """Classify a request by code and 1-character path as Device OS dispatches (spec 6.1).

    Returns None for requests that are not part of the OTA protocol.

    Raises:
        TransportError: a known request whose content is malformed.
    """
    path = _path(msg)
    if msg.code == CODE_POST:
        if path == "h":
            return Hello.from_coap(msg)
        if path in ("u", "s"):
            return UpdateBegin.from_coap(msg)
        if path == "c":
            return Chunk.from_coap(msg)
    elif msg.code == CODE_PUT and path == "u":
        return UpdateDone.from_coap(msg)
    elif msg.code == CODE_GET and path == "c":
        return ChunkMissed.from_coap(msg)
    return None
