"""The one exception tree of flashroom.

Every error a user can cause is a :class:`FlashroomError` subclass whose message says what was
found, where (addresses as ``0x%08x``), and what was expected. Verification *outcomes* are values
(enums, result dataclasses); exceptions are for input that cannot be processed.
"""

from __future__ import annotations

from typing import Any


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


class FirmwareImageError(ModuleFormatError):
    """A firmware file the runner refuses (the CLI's exit 2).

    Attributes:
        path: the file (or the name the bytes were given).
        field: the offending field (``platform_id``, ``initial_sp``, ``e_machine``...).
        offset: file offset of the field when known.
    """

    def __init__(self, path: str, field: str, message: str, *, offset: int | None = None):
        super().__init__(f"{path}: {message}", offset=offset, field=field)
        self.path = path


class FirmwareSymbolError(FirmwareImageError):
    """A function the runner must call is not in the symbol table of the module that holds it."""

    def __init__(self, path: str, symbol: str, why: str = "not in the ELF symbol table"):
        super().__init__(path, "symbol", f"function {symbol!r} {why}")
        self.symbol = symbol


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


class FirmwareCallError(EmulatorError):
    """A real-firmware function did not return: it crashed, hung, reset or entered DFU.

    Attributes:
        function: the function called.
        result: how the run ended (a ``flashroom.firmware.FirmwareRun``: outcome, PC, address).
        backtrace: the functions on the call chain, innermost first (from the symbols).
    """

    def __init__(self, function: str, result: Any, backtrace: tuple[str, ...] = ()):
        pc = f"0x{result.pc:08x}"
        addr = f", address 0x{result.address:08x}" if result.address is not None else ""
        why = f" ({result.reason})" if result.reason else ""
        chain = f"; in {' <- '.join(backtrace)}" if backtrace else ""
        super().__init__(
            f"{function} did not return: {result.outcome} at PC {pc}{addr}{why}{chain}"
        )
        self.function = function
        self.result = result
        self.backtrace = backtrace


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


class Interrupted(FlashroomError):
    """The user interrupted a long run (Ctrl-C); the message says what was left unfinished."""


class OutputError(FlashroomError, OSError):
    """An output file or directory cannot be written (missing or read-only directory, a file
    where a directory is needed, disk full...). Also an ``OSError``, so callers that caught the
    raw ``OSError`` before keep working."""


class DfuFormatError(ModuleFormatError):
    """A DfuSe file (STM32 UM0391 format, the ``.dfu`` files dfu-util flashes) cannot be read.

    A :class:`ModuleFormatError`, so commands that read modules report it the same way (field
    and file offset named)."""


class SourceTreeError(FlashroomError):
    """A Device OS source tree cannot be used as asked: not a directory, not a Device OS tree,
    another version, read-only, or local changes where flashroom's patch goes."""


class PatchConflictError(SourceTreeError):
    """A file of the tree does not hold the text one of flashroom's hunks replaces (nor the text
    it writes): the tree has local changes there. Nothing is written.

    Attributes:
        path: the file, relative to the tree.
        change: the change's name (``factory-retired``...).
        hunk: the hunk's number within the change, from 1.
    """

    def __init__(self, message: str, *, path: str, change: str, hunk: int):
        super().__init__(message)
        self.path = path
        self.change = change
        self.hunk = hunk


class ToolchainError(FlashroomError):
    """A tool the Device OS build needs (arm-none-eabi-gcc, newlib, crc32, xxd, make) is
    missing; the message names the Debian packages that provide it."""


class BuildError(FlashroomError):
    """A Device OS build step failed (compile error, link overflow, a module that does not
    verify...).

    Attributes:
        step: what was being built (``bootloader``, ``system``, ``app tiny``...).
        excerpt: the tool's own first error lines, verbatim.
        log_path: the full build log, when one was kept.
    """

    def __init__(
        self,
        message: str,
        *,
        step: str,
        excerpt: tuple[str, ...] = (),
        log_path: str | None = None,
    ):
        super().__init__(message)
        self.step = step
        self.excerpt = excerpt
        self.log_path = log_path


class ManifestError(FlashroomError):
    """A build output's ``manifest.json`` is missing, malformed, or disagrees with the module
    files beside it."""
