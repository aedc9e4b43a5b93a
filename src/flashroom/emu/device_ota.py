"""The system OTA entry points of :class:`flashroom.emu.device.Device` (spec 6.2-6.4): the
:class:`~flashroom.deviceos.ota.SystemUpdateCallbacks` the protocol's device end calls, the
same path by offsets for scripts and tests, and the streamed-OTA accessors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from flashroom.deviceos import Profile, UpdateFlag
from flashroom.deviceos.gen2 import DEFAULT_CHUNK_SIZE
from flashroom.deviceos.ota import FileTransferDescriptor, SystemUpdateCallbacks
from flashroom.deviceos.stream import StreamReport
from flashroom.emu.hardware import Hardware
from flashroom.emu.outcome import BootMode
from flashroom.emu.stream import StreamStats, stream_report
from flashroom.emu.system import SystemFirmware
from flashroom.errors import PowerCut


class OtaEntryMixin:
    """The OTA entry points (see the module docstring)."""

    profile: Profile
    hw: Hardware
    state: BootMode
    _system: SystemFirmware
    _real_ota: Any
    _transfer: FileTransferDescriptor | None
    # provided by Device and RealCodeMixin (annotations only: nothing here shadows them)
    _require_running: Callable[[str], None]
    _ota_path: Callable[[], SystemUpdateCallbacks]

    @property
    def powered(self) -> bool:  # pragma: no cover - Device defines it (first in its MRO)
        raise NotImplementedError

    # deviceos.ota.SystemUpdateCallbacks: what the protocol's device end calls (spec 6.2-6.4).

    def prepare_for_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Prepare_For_Firmware_Update`` (spec 4.1, 6.2): fills in ``file``'s defaults
        and absolute address; erases unless ``flags`` bit 0 (the dry run) is set.

        Raises:
            EmulatorError: the device is not running firmware.
            PowerCut: an armed fault fired (the device is then off).
        """
        self._require_running("an OTA update")
        path = self._ota_path()
        return self._guard(lambda: path.prepare_for_firmware_update(file, flags))

    def save_firmware_chunk(self, file: FileTransferDescriptor, chunk: bytes) -> int:
        """``Spark_Save_Firmware_Chunk``: ``chunk`` at ``file.chunk_address`` (spec 4.1 #3).

        Raises:
            EmulatorError: the device is not running firmware.
            OtaError: the write ran past the end of flash (the MCU bus-faults).
            PowerCut: an armed fault fired (the device is then off).
        """
        self._require_running("an OTA chunk")
        path = self._ota_path()
        return self._guard(lambda: path.save_firmware_chunk(file, chunk))

    def finish_firmware_update(self, file: FileTransferDescriptor, flags: int) -> int:
        """``Spark_Finish_Firmware_Update`` (spec 4.2, 6.4): 1 pending restart, 2 bootloader
        applied, or the negative ``system_error_t`` (-1300 ...). After a successful-transfer
        finish call :meth:`reset`: Device OS always schedules it (spec 4.2 #4).

        Raises:
            EmulatorError: the device is not running firmware.
            PowerCut: an armed fault fired (the device is then off).
        """
        self._require_running("an OTA finish")
        path = self._ota_path()
        return self._guard(lambda: path.finish_firmware_update(file, flags))

    @property
    def last_ota_error(self) -> str:
        """Why the last finish failed (empty when it did not)."""
        if self._real_ota is not None:
            return str(self._real_ota.last_ota_error)
        return self._system.last_ota_error

    @property
    def updates_enabled(self) -> bool:
        """``System.updatesEnabled()``: when False, UpdateBegin's dry run fails (spec 6.2 #2)."""
        return self._system.updates_enabled

    @updates_enabled.setter
    def updates_enabled(self, value: bool) -> None:
        self._system.updates_enabled = value

    # ---------------------------------------------------------------- streamed OTA (modelled)
    def stream_report(self) -> StreamReport | None:
        """What the device's Hello says about streamed OTA (``deviceos.stream``): None when the
        profile (or this device, :attr:`ota_stream_enabled`) applies raw bytes only."""
        return stream_report(self.hw) if self.powered else None

    @property
    def ota_stream_enabled(self) -> bool:
        """False models the extended layout without the streamed-OTA change: raw bytes only."""
        return self.hw.ota_stream_enabled

    @ota_stream_enabled.setter
    def ota_stream_enabled(self, value: bool) -> None:
        self.hw.ota_stream_enabled = value

    @property
    def last_stream_stats(self) -> StreamStats | None:
        """The last streamed transfer's figures (received, written, RAM), or None."""
        return self.hw.last_stream

    def _guard(self, call: Callable[[], int]) -> int:
        try:
            return call()
        except PowerCut:
            self.state = BootMode.OFF
            raise

    # The same path by offsets, for scripts and tests: one transfer at a time.
    def ota_begin(
        self, file_length: int, chunk_size: int = DEFAULT_CHUNK_SIZE, file_address: int = 0
    ) -> int:
        """UpdateBegin with these fields (FIRMWARE store): :meth:`prepare_for_firmware_update`
        without the dry run. Returns 0, as Device OS does once updates are enabled."""
        file = FileTransferDescriptor(file_length, chunk_size, file_address)
        rc = self.prepare_for_firmware_update(file, 0)
        self._transfer = file
        return rc

    def ota_write(self, offset: int, data: bytes) -> None:
        """A chunk at ``offset`` past the file start of the last :meth:`ota_begin` (the OTA
        region's start without one); no bounds check (spec 4.1 #3)."""
        base = self._transfer or FileTransferDescriptor(file_address=self.profile.ota_flash_address)
        chunk = replace(
            base, chunk_address=(base.file_address + offset) & 0xFFFFFFFF, chunk_size=len(data)
        )
        self.save_firmware_chunk(chunk, data)

    def ota_finish(self) -> int:
        """UpdateDone: :meth:`finish_firmware_update` with SUCCESS (``HAL_FLASH_End``)."""
        file = self._transfer or FileTransferDescriptor()
        self._transfer = None
        return self.finish_firmware_update(file, UpdateFlag.SUCCESS)


__all__ = ["OtaEntryMixin"]
