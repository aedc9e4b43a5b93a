"""The one exception tree of flashroom.

Every error a user can cause is a :class:`FlashroomError` subclass whose message says what was
found, where (addresses as ``0x%08x``), and what was expected. Verification *outcomes* are values
(enums, result dataclasses); exceptions are for input that cannot be processed.
"""

from __future__ import annotations


class FlashroomError(Exception):
    """Base class of every error flashroom raises on purpose."""


class UsageError(FlashroomError):
    """A request that is malformed before any domain rule applies (bad size string, etc.)."""


class ParamError(UsageError):
    """A request value is out of range or inconsistent with another.

    The message names the request's fields by their API names (``app_size``, ``first_op``);
    ``params`` lists them, so that the CLI can show its own option names (``--app-size``)
    instead. Library messages never name CLI flags.
    """

    def __init__(self, message: str, *params: str):
        super().__init__(message)
        self.params = params


class LayoutError(FlashroomError):
    """A flash layout is invalid or a requested layout cannot be planned."""


class ModuleFormatError(FlashroomError):
    """A Particle module cannot be parsed.

    Attributes:
        offset: file offset of the offending field (or None when not applicable).
        field: name of the offending field, as in the Device OS headers.
    """

    def __init__(self, message: str, *, offset: int | None = None, field: str | None = None):
        where = []
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset} (0x{offset:x})")
        full = f"{message} [{', '.join(where)}]" if where else message
        super().__init__(full)
        self.offset = offset
        self.field = field


class ChecksumError(FlashroomError):
    """A stored checksum does not match the computed one."""

    def __init__(self, message: str, *, stored: str, computed: str):
        super().__init__(f"{message}: stored {stored}, computed {computed}")
        self.stored = stored
        self.computed = computed


class ModuleTooLargeError(FlashroomError):
    """A module does not fit the region it is meant for."""


class EmulatorError(FlashroomError):
    """The emulator was asked to do something impossible (bad address, bad image file...)."""


class PlatformError(LayoutError, EmulatorError):
    """An unknown platform or profile, or a profile a platform cannot have.

    Raised by :mod:`flashroom.deviceos` (the one home of platform facts), which both the layout
    engine and the emulator read; it is therefore both a :class:`LayoutError` and an
    :class:`EmulatorError`, so that each caller's error contract holds.
    """


class PowerCut(EmulatorError):
    """Raised inside the emulator when the fault hook cuts power; the device is then off."""

    def __init__(self, op_index: int, torn: bool = False):
        kind = "torn operation" if torn else "power cut"
        super().__init__(f"{kind} at flash operation {op_index}")
        self.op_index = op_index
        self.torn = torn


class FlashOpError(EmulatorError):
    """A flash program or erase **failed** (the chip set an FLASH_SR error bit, as on a
    brown-out), raised by an armed ``fail`` fault. Unlike :class:`PowerCut` the device keeps
    running: Device OS sees the error and takes its own error path (spec 4.5, 8.1)."""

    def __init__(self, op_index: int, kind: str, addr: int):
        super().__init__(f"flash {kind} failed at operation {op_index} (address 0x{addr:08x})")
        self.op_index = op_index
        self.kind = kind
        self.addr = addr


class OtaError(FlashroomError):
    """An OTA transfer failed. ``code`` is the Device OS system_error_t value when there is one."""

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message if code is None else f"{message} (code {code})")
        self.code = code


class StreamError(OtaError):
    """A streamed (delta or compressed) update cannot be decoded: ``code`` is the Device OS
    ``system_error_t`` the device returns (flashroom.deviceos.stream)."""


class TransportError(OtaError):
    """The transport (CoAP/UDP) failed: peer gone, timeout, malformed datagram."""


class OutputError(FlashroomError, OSError):
    """An output file or directory cannot be written (missing or read-only directory, a file
    where a directory is needed, disk full...). Also an ``OSError``, so callers that caught the
    raw ``OSError`` before keep working."""
