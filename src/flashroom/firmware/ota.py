"""The real system OTA receive/finish path, called at function level (spec 11.2, 4.1-4.2).

The three real system modules and the bootloader sit in the device's flash; nothing boots (no
RTOS, no modem). After the static-RAM initialisation of spec 11.2 the runner calls the functions
the protocol layer itself calls, exported by system module idx 2 (``system_dynalib.h``
entries 16-18):

* ``Spark_Prepare_For_Firmware_Update(FileTransfer::Descriptor&, uint32_t flags, void*)``
* ``Spark_Save_Firmware_Chunk(FileTransfer::Descriptor&, const uint8_t*, void*)``
* ``Spark_Finish_Firmware_Update(FileTransfer::Descriptor&, uint32_t flags, void*)``

:class:`RealSystemOta` implements :class:`flashroom.deviceos.ota.SystemUpdateCallbacks`, the
contract the protocol's device end drives and the emulator's system model implements too, and
has the shape of an OTA target (``prepare``/``save_chunk``/``finish``), so the same transfer can
be driven into the model (``Device.ota_begin/ota_write/ota_finish``) and into the real code and
the flash compared byte for byte.

Runner choices (not Device OS facts): the descriptor and the chunk buffer live in the target's
``call_scratch`` SRAM (on Electron the top of the user-part RAM, unused since no application
runs), the stack at the top of SRAM (the system stack region, spec 1.7), and each call returns to
the machine's trap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from flashroom.deviceos.enums import FileTransferStore, UpdateFlag
from flashroom.deviceos.ota import (
    OTA_ENTRY_POINTS,
    SYSTEM_FLAG_OTA_UPDATE_ENABLED,
    FileTransferDescriptor,
)
from flashroom.errors import EmulatorError, FirmwareCallError
from flashroom.firmware import stm32f2 as st
from flashroom.firmware.flashport import FlashPrimitive, FlashRecorder
from flashroom.firmware.image import (
    FirmwareImage,
    FirmwareImageError,
    FirmwareSymbolError,
    install_image,
)
from flashroom.firmware.machine import (
    DEFAULT_BUDGET,
    Backup,
    FirmwareOutcome,
    FirmwareRun,
    Machine,
)
from flashroom.firmware.targets import ELECTRON, FirmwareTarget
from flashroom.particle.module_info import ModuleFunction

#: Offset of the chunk buffer after the descriptor in ``call_scratch``.
CHUNK_BUFFER_OFFSET = 0x100
#: The largest chunk :meth:`RealSystemOta.save_chunk` passes.
MAX_CHUNK = 0x1000
#: The entry points (their one home is :mod:`flashroom.deviceos.ota`).
ENTRY_POINTS = OTA_ENTRY_POINTS


@dataclass(frozen=True)
class SystemParts:
    """The three system modules of one Device OS release (module index -> image)."""

    parts: tuple[FirmwareImage, ...]
    source: str

    def part(self, index: int) -> FirmwareImage:
        """The system module with ``module_index == index``.

        Raises:
            FirmwareImageError: there is none.
        """
        for p in self.parts:
            if p.info.module_index == index:
                return p
        raise FirmwareImageError(
            self.source, "module_index", f"no SYSTEM_PART module with index {index}"
        )

    def function_at(self, addr: int) -> str | None:
        """The function (by the symbols of whichever part holds ``addr``) at ``addr``."""
        for p in self.parts:
            if p.address <= addr < p.end:
                return p.function_at(addr)
        return None

    def function(self, name: str, index: int) -> int:
        """Address (Thumb bit set) of ``name`` in system module ``index``.

        Raises:
            FirmwareSymbolError: the module has no such symbol (or no symbol table).
        """
        return self.part(index).function(name)

    @classmethod
    def from_folder(cls, folder: str | Path, *, target: FirmwareTarget = ELECTRON) -> SystemParts:
        """Find the system modules in ``folder`` by their module info (SYSTEM_PART, index 1-3,
        the target's platform); other files are ignored. An ``.elf`` beside a ``.bin`` (same
        stem) supplies the symbols; an ``.elf`` alone is used as the image.

        Raises:
            FirmwareImageError: a module index is missing or given twice.
        """
        d = Path(folder)
        found: dict[int, FirmwareImage] = {}
        paths = sorted(p for p in d.iterdir() if p.suffix in (".bin", ".elf") and p.is_file())
        bins = {p.stem for p in paths if p.suffix == ".bin"}
        for p in paths:
            if p.suffix == ".elf" and p.stem in bins:
                continue  # read with its .bin
            try:
                image = FirmwareImage.from_path(p, target=target)
            except FirmwareImageError:
                continue  # not a module for this platform: ignored
            info = image.info
            if (
                info.module_function != ModuleFunction.SYSTEM_PART
                or not 1 <= info.module_index <= 3
            ):
                continue
            elf = p.with_suffix(".elf")
            if p.suffix == ".bin" and elf.is_file():
                try:
                    symbols = FirmwareImage.from_path(elf, target=target)
                except FirmwareImageError:
                    symbols = None
                if symbols is not None and symbols.address == image.address:
                    image = FirmwareImage(
                        image.name,
                        image.address,
                        image.data,
                        image.info,
                        image.info_address,
                        symbols.symbols,
                        symbols.functions,
                    )
            ix = info.module_index
            if ix in found:
                raise FirmwareImageError(
                    str(p),
                    "module_index",
                    f"a second SYSTEM_PART with index {ix} (the first is {found[ix].name})",
                )
            found[ix] = image
        missing = [ix for ix in (1, 2, 3) if ix not in found]
        if missing:
            raise FirmwareImageError(
                str(d),
                "module_index",
                f"no SYSTEM_PART module with index {', '.join(map(str, missing))} for platform "
                f"{target.platform_id} among the .bin/.elf files",
            )
        return cls(tuple(found[ix] for ix in (1, 2, 3)), str(d))


class RealSystemOta:
    """The real system OTA path of one device, as an OTA target.

    On construction the system parts (and ``bootloader``, if given) are written into ``flash``
    where they are not already (erase + program, like DFU), static RAM is initialised and
    updates are enabled (spec 11.2). Every call is then a real function call in the emulator.

    Args:
        flash: the device's NorFlash.
        backup: the device's backup registers.
        parts: the real system modules (with symbols).
        bootloader: a bootloader image to install in sector 0 too.
        target: Particle facts.
        budget: instructions per call before it is a hang.
        recorder: records every NorFlash call of the real code.
        write_protected: sectors write-protected in the option bytes.

    Raises:
        FirmwareSymbolError: a function the path needs is missing (named, with its module).
        FirmwareCallError: the initialisation did not return.
    """

    def __init__(
        self,
        flash: FlashPrimitive,
        backup: Backup,
        parts: SystemParts,
        *,
        bootloader: FirmwareImage | None = None,
        target: FirmwareTarget = ELECTRON,
        budget: int = DEFAULT_BUDGET,
        recorder: FlashRecorder | None = None,
        write_protected: frozenset[int] = frozenset(),
        fail_bits: st.FlashErrorBits = st.DEFAULT_FAIL_BITS,
    ) -> None:
        self.parts = parts
        self.budget = budget
        self.target = target
        self.args = target.call_scratch.start
        self.buffer = self.args + CHUNK_BUFFER_OFFSET
        if self.buffer + MAX_CHUNK > target.call_scratch.end:
            raise EmulatorError(f"{target.name}: call_scratch {target.call_scratch} is too small")
        self._fn = {name: parts.function(name, ix) for name, ix in ENTRY_POINTS}
        for image in (*parts.parts, *([bootloader] if bootloader is not None else [])):
            if flash.read(image.address, len(image.data)) != image.data:
                install_image(flash, image)
        self.machine = Machine(
            flash,
            backup,
            target=target,
            recorder=recorder,
            write_protected=write_protected,
            fail_bits=fail_bits,
        )
        #: the transfer :meth:`prepare` started (the OTA-target API)
        self.transfer = FileTransferDescriptor()
        self.last: FirmwareRun | None = None
        self._last_error = ""
        self._call("module_system_part1_pre_init", ())
        # HAL_Core_Config loads the system flags from the backup registers at every start
        # (core_hal_stm32f2xx.c:371-373, DFU_BUILD_ENABLE); without it the RAM copy has no
        # header and FLASH_Begin's Save_SystemFlags is refused (system_flags_impl.c:55-58).
        self._call("Load_SystemFlags", ())
        self._call("system_set_flag", (SYSTEM_FLAG_OTA_UPDATE_ENABLED, 1, 0))

    # ------------------------------------------------------------------ SystemUpdateCallbacks
    def prepare_for_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Prepare_For_Firmware_Update(file, flags, NULL)``: 0 ok, 1 updates disabled.

        ``file`` is updated in place from what the code left (``file_address``, the defaults).

        Raises:
            PowerCut: an armed cut fired (the device is off).
            FirmwareCallError: the function did not return.
        """
        self._write_descriptor(file)
        rc = self._call("Spark_Prepare_For_Firmware_Update", (self.args, flags, 0))
        self._read_back(file)
        return rc

    def save_firmware_chunk(self, file: FileTransferDescriptor, chunk: bytes) -> int:
        """``Spark_Save_Firmware_Chunk(file, chunk, NULL)``; ``file.chunk_address`` is the
        chunk's absolute address and ``file.chunk_size`` its length (the device end sets both).

        Raises:
            EmulatorError: the chunk is larger than :data:`MAX_CHUNK`.
            PowerCut: an armed cut fired.
            FirmwareCallError: the function did not return.
        """
        if len(chunk) > MAX_CHUNK:
            raise EmulatorError(f"chunk of {len(chunk)} bytes is over the {MAX_CHUNK}-byte buffer")
        self._write_descriptor(file)
        self.machine.write(self.buffer, chunk)
        rc = self._call("Spark_Save_Firmware_Chunk", (self.args, self.buffer, 0))
        self._read_back(file)
        return rc

    def finish_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Finish_Firmware_Update(file, flags, NULL)``: 1 = applied at the next restart,
        2 = bootloader applied, negative = ``system_error_t`` (-1300 ...).

        Raises:
            PowerCut: an armed cut fired.
            FirmwareCallError: the function did not return.
        """
        self._write_descriptor(file)
        rc = self._call("Spark_Finish_Firmware_Update", (self.args, flags, 0))
        self._last_error = "" if rc > 0 else f"Spark_Finish_Firmware_Update returned {rc}"
        return rc

    @property
    def last_ota_error(self) -> str:
        """The real code gives no words: the return code of a failed finish, else empty."""
        return self._last_error

    # ------------------------------------------------------------------ an OTA target
    def prepare(
        self,
        file_length: int,
        chunk_size: int = 512,
        chunk_address: int = 0,
        store: int = FileTransferStore.FIRMWARE,
        flags: int = 0,
    ) -> tuple[int, FileTransferDescriptor]:
        """UpdateBegin with these fields: returns (rc, the descriptor Prepare left)."""
        self.transfer = FileTransferDescriptor(
            file_length, chunk_size, chunk_address & 0xFFFFFFFF, 0, store
        )
        rc = self.prepare_for_firmware_update(self.transfer, flags)
        return rc, replace(self.transfer)

    def save_chunk(self, address: int, data: bytes) -> int:
        """A chunk at absolute ``address`` of the prepared transfer: returns rc."""
        file = replace(self.transfer, chunk_address=address & 0xFFFFFFFF, chunk_size=len(data))
        return self.save_firmware_chunk(file, data)

    def finish(self, flags: int = UpdateFlag.SUCCESS) -> int:
        """UpdateDone: returns rc (see :meth:`finish_firmware_update`)."""
        return self.finish_firmware_update(self.transfer, flags)

    # ------------------------------------------------------------------ internals
    def _write_descriptor(self, file: FileTransferDescriptor) -> None:
        self.machine.write(self.args, file.to_bytes())

    def _read_back(self, file: FileTransferDescriptor) -> None:
        got = FileTransferDescriptor.from_bytes(
            self.machine.read(self.args, FileTransferDescriptor.SIZE)
        )
        file.file_length = got.file_length
        file.chunk_size = got.chunk_size
        file.chunk_address = got.chunk_address
        file.file_address = got.file_address
        file.store = got.store

    def _call(self, name: str, args: tuple[int, ...]) -> int:
        res = self.machine.call(self._fn[name], args, budget=self.budget)
        self.last = res
        if res.outcome is FirmwareOutcome.RETURN and res.r0 is not None:
            return res.r0
        if res.outcome is FirmwareOutcome.OFF and res.power_cut is not None:
            raise res.power_cut
        raise FirmwareCallError(name, res, self.backtrace(res, name))

    def backtrace(self, res: FirmwareRun, called: str, depth: int = 0x400) -> tuple[str, ...]:
        """Where the code was when it stopped: the function at the PC, then every return
        address on the stack (words with the Thumb bit inside the system modules), innermost
        first, up to ``called`` (the entry point), named by the symbols (a heuristic stack scan:
        the modules keep no frame pointers)."""
        from unicorn.arm_const import UC_ARM_REG_SP  # the runner already imported Unicorn

        names: list[str] = []
        first = self.parts.function_at(res.pc)
        if first:
            names.append(first)
        sp = int(self.machine.uc.reg_read(UC_ARM_REG_SP))
        top = min(sp + depth, self.target.sram.end)
        if sp < self.target.sram.start or sp >= top:
            return tuple(names)
        data = self.machine.read(sp, top - sp)
        system = self.target.system
        for off in range(0, len(data) - 3, 4):
            v = int.from_bytes(data[off : off + 4], "little")
            if v & 1 and system.start <= v < system.end:
                n = self.parts.function_at((v & ~1) - 2)
                if n and (not names or names[-1] != n):
                    names.append(n)
                if n == called:
                    break
        return tuple(names)


__all__ = [
    "CHUNK_BUFFER_OFFSET",
    "ENTRY_POINTS",
    "MAX_CHUNK",
    "FirmwareCallError",
    "FirmwareSymbolError",
    "RealSystemOta",
    "SystemParts",
]
