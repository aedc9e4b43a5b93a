"""DfuSe files: the STM32 ``.dfu`` format that ``dfu-util`` flashes (ST UM0391, DFU 1.1a).

Layout, little-endian throughout::

    prefix   11 bytes   "DfuSe", bVersion 1, DFUImageSize (u32), bTargets (u8)
    target   274 bytes  "Target", bAlternateSetting, bTargetNamed (u32), szTargetName[255],
                        dwTargetSize (u32: bytes of its elements), dwNbElements (u32)
      element  8 bytes  dwElementAddress, dwElementSize, then the element's bytes
    suffix   16 bytes   bcdDevice, idProduct, idVendor, bcdDFU (0x011a), "UFD", bLength 16,
                        dwCRC

``dwCRC`` is the CRC-32 of every byte before it without the final inversion, as dfu-util
computes it (``dfu_file.c``; ``dfuse-pack``'s ``compute_crc``): ``zlib.crc32(data) ^
0xFFFFFFFF``. ``DFUImageSize`` is the whole file's length, suffix included, as Debian's
dfu-util 0.11 ``dfuse-pack`` writes it; older writers left the suffix out, and dfu-util does
not read the field, so the reader accepts both.

Particle devices in DFU mode are ``2b04:d00a`` (Device OS ``USBD_VID_SPARK``/``USBD_PID_DFU``,
``build/platform-id.mk``); alternate setting 0 is the internal flash.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from flashroom.errors import DfuFormatError
from flashroom.particle.parser import MAX_MODULE_FILE_SIZE
from flashroom.readfile import InputFileError, read_input

#: Particle's USB vendor ID and the product ID of a Particle device in DFU mode.
PARTICLE_VID = 0x2B04
PARTICLE_DFU_PID = 0xD00A
#: bcdDFU of a DfuSe file (DFU 1.1a).
DFUSE_BCD = 0x011A
#: bcdDevice "any device release" (dfu-util does not compare it then).
ANY_DEVICE = 0xFFFF
#: Alternate setting 0 of Gen2 DFU mode: the STM32F205's internal flash.
INTERNAL_FLASH_ALT = 0
INTERNAL_FLASH_NAME = "Internal Flash"


@dataclass(frozen=True)
class DfuPrefix:
    """The 11-byte DfuSe file prefix."""

    image_size: int  # DFUImageSize: the whole file's length (see the module docstring)
    targets: int  # bTargets

    STRUCT = struct.Struct("<5sBIB")  # szSignature "DfuSe", bVersion, DFUImageSize, bTargets
    SIGNATURE = b"DfuSe"
    VERSION = 1

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> DfuPrefix:
        if len(data) - offset < cls.STRUCT.size:
            raise DfuFormatError(
                "file too short for the DfuSe prefix", offset=offset, field="prefix"
            )
        sig, ver, size, targets = cls.STRUCT.unpack_from(data, offset)
        if sig != cls.SIGNATURE:
            raise DfuFormatError(
                f"not a DfuSe file: signature {sig!r}, expected {cls.SIGNATURE!r}",
                offset=offset,
                field="szSignature",
            )
        if ver != cls.VERSION:
            raise DfuFormatError(
                f"DfuSe format version {ver}, expected {cls.VERSION}",
                offset=offset + 5,
                field="bVersion",
            )
        return cls(size, targets)

    def to_bytes(self) -> bytes:
        return self.STRUCT.pack(self.SIGNATURE, self.VERSION, self.image_size, self.targets)


@dataclass(frozen=True)
class DfuTargetPrefix:
    """The 274-byte prefix of one target (image) of a DfuSe file."""

    alternate_setting: int  # bAlternateSetting
    named: bool  # bTargetNamed (u32, non-zero: szTargetName is meaningful)
    name: str  # szTargetName, NUL-padded to 255 bytes
    target_size: int  # dwTargetSize: bytes of the elements (headers + data)
    elements: int  # dwNbElements

    STRUCT = struct.Struct("<6sBI255sII")
    SIGNATURE = b"Target"

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> DfuTargetPrefix:
        if len(data) - offset < cls.STRUCT.size:
            raise DfuFormatError(
                f"file too short for a target prefix ({cls.STRUCT.size} bytes)",
                offset=offset,
                field="target",
            )
        sig, alt, named, raw_name, size, n = cls.STRUCT.unpack_from(data, offset)
        if sig != cls.SIGNATURE:
            raise DfuFormatError(
                f"target signature {sig!r}, expected {cls.SIGNATURE!r}",
                offset=offset,
                field="szSignature",
            )
        name = raw_name.split(b"\0", 1)[0].decode("latin-1") if named else ""
        return cls(alt, bool(named), name, size, n)

    def to_bytes(self) -> bytes:
        raw = self.name.encode("latin-1")
        if len(raw) > 254:
            raise DfuFormatError(
                f"target name of {len(raw)} bytes, at most 254 fit", field="szTargetName"
            )
        return self.STRUCT.pack(
            self.SIGNATURE,
            self.alternate_setting,
            1 if self.named else 0,
            raw,
            self.target_size,
            self.elements,
        )


@dataclass(frozen=True)
class DfuElement:
    """One image element: ``data`` to be written at ``address``."""

    address: int  # dwElementAddress
    data: bytes  # dwElementSize bytes follow the 8-byte header

    HEADER = struct.Struct("<II")  # dwElementAddress, dwElementSize

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end(self) -> int:
        """One past the last byte written (half-open)."""
        return self.address + len(self.data)

    def to_bytes(self) -> bytes:
        return self.HEADER.pack(self.address, len(self.data)) + self.data


@dataclass(frozen=True)
class DfuSuffix:
    """The 16-byte DFU suffix (DFU 1.1 appendix B; bcdDFU 0x011a for DfuSe)."""

    device: int  # bcdDevice
    product: int  # idProduct
    vendor: int  # idVendor
    bcd_dfu: int  # bcdDFU
    crc: int  # dwCRC over every byte before it (dfu-util's CRC: no final inversion)

    STRUCT = struct.Struct("<HHHH3sBI")
    SIZE = 16
    SIGNATURE = b"UFD"

    @classmethod
    def from_bytes(cls, data: bytes) -> DfuSuffix:
        """Read and check the suffix at the end of ``data`` (signature, length, CRC)."""
        if len(data) < cls.SIZE:
            raise DfuFormatError("file too short for a DFU suffix", offset=0, field="suffix")
        off = len(data) - cls.SIZE
        dev, prod, vend, bcd, sig, length, crc = cls.STRUCT.unpack_from(data, off)
        if sig != cls.SIGNATURE:
            raise DfuFormatError(
                f"no DFU suffix: signature {sig!r}, expected {cls.SIGNATURE!r}",
                offset=off + 8,
                field="ucDfuSignature",
            )
        if length != cls.SIZE:
            raise DfuFormatError(
                f"DFU suffix length {length}, expected {cls.SIZE}",
                offset=off + 11,
                field="bLength",
            )
        computed = dfu_crc(data[:-4])
        if crc != computed:
            raise DfuFormatError(
                f"DFU suffix CRC 0x{crc:08x}, computed 0x{computed:08x}",
                offset=off + 12,
                field="dwCRC",
            )
        return cls(dev, prod, vend, bcd, crc)


if DfuPrefix.STRUCT.size != 11 or DfuTargetPrefix.STRUCT.size != 274:
    raise RuntimeError("DfuSe prefix structs have the wrong size")
if DfuSuffix.STRUCT.size != DfuSuffix.SIZE or DfuElement.HEADER.size != 8:
    raise RuntimeError("DFU suffix/element structs have the wrong size")


def dfu_crc(data: bytes | bytearray | memoryview) -> int:
    """The DFU suffix CRC: CRC-32 without its final inversion, as dfu-util computes it."""
    return (zlib.crc32(data) ^ 0xFFFFFFFF) & 0xFFFFFFFF


@dataclass(frozen=True)
class DfuTarget:
    """One target (image): its alternate setting, name and elements."""

    alternate_setting: int
    name: str
    elements: tuple[DfuElement, ...]

    def to_bytes(self) -> bytes:
        body = b"".join(e.to_bytes() for e in self.elements)
        prefix = DfuTargetPrefix(
            self.alternate_setting, bool(self.name), self.name, len(body), len(self.elements)
        )
        return prefix.to_bytes() + body


@dataclass(frozen=True)
class DfuFile:
    """A whole DfuSe file. Sizes, counts and the CRC are computed by :meth:`to_bytes`.

    Attributes:
        targets: the images, usually one (alternate setting 0, "Internal Flash").
        vendor, product, device: the suffix's USB IDs and device release.
    """

    targets: tuple[DfuTarget, ...]
    vendor: int = PARTICLE_VID
    product: int = PARTICLE_DFU_PID
    device: int = ANY_DEVICE

    @property
    def elements(self) -> tuple[DfuElement, ...]:
        """Every element of every target, in file order."""
        return tuple(e for t in self.targets for e in t.elements)

    def to_bytes(self) -> bytes:
        """The file's bytes: prefix, targets, suffix with its CRC.

        Raises:
            DfuFormatError: a value does not fit its field (more than 255 targets...).
        """
        if not 0 < len(self.targets) <= 0xFF:
            raise DfuFormatError(
                f"{len(self.targets)} targets: a DfuSe file holds 1..255", field="bTargets"
            )
        ids = (("idVendor", self.vendor), ("idProduct", self.product), ("bcdDevice", self.device))
        for name, v in ids:
            if not 0 <= v <= 0xFFFF:
                raise DfuFormatError(f"{name} 0x{v:x} does not fit 16 bits", field=name)
        body = b"".join(t.to_bytes() for t in self.targets)
        size = DfuPrefix.STRUCT.size + len(body) + DfuSuffix.SIZE
        data = DfuPrefix(size, len(self.targets)).to_bytes() + body
        # the suffix up to dwCRC, then the CRC of everything before dwCRC
        suffix = DfuSuffix.STRUCT.pack(
            self.device,
            self.product,
            self.vendor,
            DFUSE_BCD,
            DfuSuffix.SIGNATURE,
            DfuSuffix.SIZE,
            0,
        )
        data += suffix[: DfuSuffix.SIZE - 4]
        return data + struct.pack("<I", dfu_crc(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> DfuFile:
        """Parse and check a DfuSe file: signatures, sizes, element bounds, suffix and CRC.

        Raises:
            DfuFormatError: naming the field and its file offset.
        """
        suffix = DfuSuffix.from_bytes(data)
        if suffix.bcd_dfu != DFUSE_BCD:
            raise DfuFormatError(
                f"bcdDFU 0x{suffix.bcd_dfu:04x}: not a DfuSe file (expected 0x{DFUSE_BCD:04x})",
                offset=len(data) - DfuSuffix.SIZE + 6,
                field="bcdDFU",
            )
        body_end = len(data) - DfuSuffix.SIZE
        prefix = DfuPrefix.from_bytes(data)
        if prefix.image_size not in (len(data), body_end):
            raise DfuFormatError(
                f"DFUImageSize {prefix.image_size}, but the file is {len(data)} bytes "
                f"({body_end} without the suffix)",
                offset=6,
                field="DFUImageSize",
            )
        off = DfuPrefix.STRUCT.size
        targets = []
        for _ in range(prefix.targets):
            tp = DfuTargetPrefix.from_bytes(data[:body_end], off)
            off += DfuTargetPrefix.STRUCT.size
            t_end = off + tp.target_size
            if t_end > body_end:
                raise DfuFormatError(
                    f"target of {tp.target_size} bytes runs past the suffix",
                    offset=off - 8,
                    field="dwTargetSize",
                )
            elements = []
            for _ in range(tp.elements):
                if t_end - off < DfuElement.HEADER.size:
                    raise DfuFormatError(
                        "element header runs past its target", offset=off, field="dwElementAddress"
                    )
                addr, size = DfuElement.HEADER.unpack_from(data, off)
                if size > t_end - off - DfuElement.HEADER.size:
                    raise DfuFormatError(
                        f"element of {size} bytes at 0x{addr:08x} runs past its target",
                        offset=off + 4,
                        field="dwElementSize",
                    )
                start = off + DfuElement.HEADER.size
                elements.append(DfuElement(addr, bytes(data[start : start + size])))
                off = start + size
            if off != t_end:
                raise DfuFormatError(
                    f"target declares {tp.target_size} bytes, its elements use "
                    f"{tp.target_size - (t_end - off)}",
                    offset=off,
                    field="dwTargetSize",
                )
            targets.append(DfuTarget(tp.alternate_setting, tp.name, tuple(elements)))
        if off != body_end:
            raise DfuFormatError(
                f"{body_end - off} bytes between the last target and the suffix",
                offset=off,
                field="bTargets",
            )
        return cls(tuple(targets), suffix.vendor, suffix.product, suffix.device)

    @classmethod
    def from_path(cls, path: str | Path) -> DfuFile:
        """Read and parse ``path`` (the only place a path is opened).

        Raises:
            DfuFormatError: unreadable or malformed; the message names the file.
        """
        try:
            # a package of every module of a device: bounded by the largest modules it holds
            data = read_input(path, limit=MAX_MODULE_FILE_SIZE, what="a DfuSe file")
        except InputFileError as e:
            raise DfuFormatError(str(e), field="file") from None
        try:
            return cls.from_bytes(data)
        except DfuFormatError as e:
            err = DfuFormatError(f"{path}: {e}")
            err.offset, err.field = e.offset, e.field
            raise err from None


def dfuse_for_module(
    module: bytes,
    address: int,
    *,
    vendor: int = PARTICLE_VID,
    product: int = PARTICLE_DFU_PID,
    device: int = ANY_DEVICE,
) -> bytes:
    """A DfuSe file that writes ``module`` at ``address`` through alternate setting 0.

    Args:
        module: the module's bytes (a ``.bin`` as Device OS builds it).
        address: where it goes: its ``module_start_address``.
    """
    element = DfuElement(address, bytes(module))
    target = DfuTarget(INTERNAL_FLASH_ALT, INTERNAL_FLASH_NAME, (element,))
    return DfuFile((target,), vendor, product, device).to_bytes()


def is_dfuse(data: bytes) -> bool:
    """True when ``data`` starts like a DfuSe file (used to tell ``.dfu`` from modules)."""
    return data[:5] == DfuPrefix.SIGNATURE


__all__ = [
    "ANY_DEVICE",
    "DFUSE_BCD",
    "INTERNAL_FLASH_ALT",
    "INTERNAL_FLASH_NAME",
    "PARTICLE_DFU_PID",
    "PARTICLE_VID",
    "DfuElement",
    "DfuFile",
    "DfuPrefix",
    "DfuSuffix",
    "DfuTarget",
    "DfuTargetPrefix",
    "dfu_crc",
    "dfuse_for_module",
    "is_dfuse",
]
