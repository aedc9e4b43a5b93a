"""Device OS ``flash_mal.c`` primitives over :class:`NorFlash`, warts included (spec 3.1, 4.5).

These are the checks the device itself runs: module_info is read from flash with the spec 2.2
stack-pointer rule (``read_module_info_at``) and CRCs are computed over flash with ``crc32``,
never through the reference-tool parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashroom.deviceos.gen2 import (
    BOOTLOADER_ADDRESS,
    FLASH_INTERNAL,
    INTERNAL_FLASH_END,
    INTERNAL_FLASH_PAGE_SIZE,
    INTERNAL_FLASH_START,
    MODULE_VERIFY_CRC,
    MODULE_VERIFY_DESTINATION_IS_START_ADDRESS,
    MODULE_VERIFY_FUNCTION,
)
from flashroom.emu.flash import NorFlash, program_units
from flashroom.errors import FlashOpError, ModuleFormatError
from flashroom.particle.crc import crc32
from flashroom.particle.module_info import (
    APP_START_MASK,
    VECTOR_TABLE_SIZE,
    ModuleFunction,
    ModuleInfo,
    read_module_info_at,
)
from flashroom.ranges import fmt_addr

_VERIFY_MASK = 0x0E  # CRC | DEST_IS_START | FUNCTION (spec 3.1)


def check_valid_address_range(start: int, length: int, device: int = FLASH_INTERNAL) -> bool:
    """``FLASH_CheckValidAddressRange`` (spec 3.1): ``start+len-1 <= 0x08100000`` (off by one).

    Any other device (the serial flash, or an unknown id) is false on Gen2 (spec 3.1).
    """
    if device != FLASH_INTERNAL:
        return False
    return start >= INTERNAL_FLASH_START and start + length - 1 <= INTERNAL_FLASH_END


def module_info_at(flash: NorFlash, addr: int) -> ModuleInfo | None:
    """``FLASH_ModuleInfo``: the info block at ``addr`` by the spec 2.2 rule (None if off-chip)."""
    span = VECTOR_TABLE_SIZE + ModuleInfo.SIZE
    if addr < flash.base or addr + 4 > flash.base + flash.size:
        return None
    avail = min(span, flash.base + flash.size - addr)
    try:
        return read_module_info_at(flash.read(addr, avail), 0)
    except ModuleFormatError:
        return None


def is_user_module_info_valid(
    flash: NorFlash, addr: int, expected_start: int, platform_id: int
) -> bool:
    """``FLASH_isUserModuleInfoValid`` (spec 3.1): start, end <= 0x08100000, platform. No CRC."""
    info = module_info_at(flash, addr)
    return (
        info is not None
        and info.module_start_address == expected_start
        and info.module_end_address <= INTERNAL_FLASH_END
        and info.platform_id == platform_id
    )


def verify_crc32(flash: NorFlash, start: int, length: int) -> bool:
    """``FLASH_VerifyCRC32`` (spec 3.1, 2.5 #5): stored big-endian CRC at ``start+length``.

    A length that would read past the chip is treated as a failed check (the real MCU would read
    unmapped memory; spec-silent).
    """
    if length <= 0 or start < flash.base or start + length + 4 > flash.base + flash.size:
        return False
    stored = int.from_bytes(flash.read(start + length, 4), "big")
    return stored == crc32(flash.view(start, length))


#: (platform id, module start, stored CRC, length) -> where its embedded bootloader image is.
_EMBEDDED_CACHE: dict[tuple[int, int, int, int], tuple[int, int] | None] = {}


def embedded_bootloader(
    flash: NorFlash, module_start: int, platform_id: int
) -> tuple[int, int] | None:
    """``HAL_Bootloader_Image`` (spec 4.7): (address, length) of the bootloader image compiled
    into the module installed at ``module_start`` (Electron's index 3, bootloader_hal.c), or
    None when it carries none.

    The real system knows the array's address from its link; the model finds the image by its
    shape, as a module-info-bearing bootloader for this platform at a word inside the module
    (vector table, module_info at +0x184 with function BOOTLOADER, start 0x08000000, end inside
    sector 0). Results are cached by the module's stored CRC, which names its content.
    """
    info = module_info_at(flash, module_start)
    if info is None or not 0 < info.module_length <= flash.base + flash.size - module_start - 4:
        return None
    length = info.module_length
    stored = int.from_bytes(flash.read(module_start + length, 4), "big")
    key = (platform_id, module_start, stored, length)
    if key not in _EMBEDDED_CACHE:
        _EMBEDDED_CACHE[key] = _scan_for_bootloader(flash.read(module_start, length), platform_id)
    found = _EMBEDDED_CACHE[key]
    return None if found is None else (module_start + found[0], found[1])


def _scan_for_bootloader(image: bytes, platform_id: int) -> tuple[int, int] | None:
    span = VECTOR_TABLE_SIZE + ModuleInfo.SIZE
    for off in range(0, len(image) - span, 4):
        word = int.from_bytes(image[off : off + 4], "little")
        if (word & APP_START_MASK) != 0x20000000:
            continue
        info = ModuleInfo.from_bytes(image, off + VECTOR_TABLE_SIZE)
        if (
            info.module_function == ModuleFunction.BOOTLOADER
            and info.module_start_address == BOOTLOADER_ADDRESS
            and info.platform_id == platform_id
            and BOOTLOADER_ADDRESS < info.module_end_address <= BOOTLOADER_ADDRESS + 0x4000 - 4
            and off + info.module_length + 4 <= len(image)
        ):
            return off, info.module_length + 4
    return None


def stored_sha256(flash: NorFlash, start: int, length: int) -> bytes | None:
    """The suffix SHA-256 of the module ``[start, start+length)`` (spec 2.5: at ``L - 34``)."""
    if length < 38 or start + length > flash.base + flash.size:
        return None
    return flash.read(start + length - 34, 32)


def check_copy_memory(
    flash: NorFlash,
    src: int,
    dst: int,
    length: int,
    function: int,
    flags: int,
    platform_id: int,
    *,
    src_device: int = FLASH_INTERNAL,
    dst_device: int = FLASH_INTERNAL,
) -> str | None:
    """``FLASH_CheckCopyMemory`` (spec 3.1): None when the copy may go ahead, else the reason.

    ``src_device``/``dst_device`` are the slot's ``sourceDeviceID``/``destinationDeviceID``:
    only the internal flash passes the range check on Gen2 (spec 3.1).
    """
    if not check_valid_address_range(src, length, src_device):
        return f"source device {src_device} {fmt_addr(src)}+{length} is outside internal flash"
    if not check_valid_address_range(dst, length, dst_device):
        return f"destination device {dst_device} {fmt_addr(dst)}+{length} is outside internal flash"
    if flags & _VERIFY_MASK:
        info = module_info_at(flash, src)
        if info is None:
            return f"no module_info_t readable at {fmt_addr(src)}"
        mlen = (info.module_end_address - info.module_start_address) & 0xFFFFFFFF
        if flags & (MODULE_VERIFY_CRC | MODULE_VERIFY_FUNCTION) and length < mlen + 4:
            return f"length {length} < module_length + 4 = {mlen + 4}"
        if info.module_function != ModuleFunction.RESOURCE and info.platform_id != platform_id:
            return f"platform_id {info.platform_id} at {fmt_addr(src)}, expected {platform_id}"
        if flags & MODULE_VERIFY_DESTINATION_IS_START_ADDRESS and info.module_start_address != dst:
            return (
                f"module_start_address {fmt_addr(info.module_start_address)} is not the "
                f"destination {fmt_addr(dst)}"
            )
        if flags & MODULE_VERIFY_FUNCTION and info.module_function != function:
            return f"module_function {info.module_function}, expected {function}"
        if flags & MODULE_VERIFY_CRC and not verify_crc32(flash, src, mlen):
            return f"CRC-32 of the module at {fmt_addr(src)} does not match"
    return None


#: ``flash_access_result`` (platform/MCU/shared/STM32/inc/flash_access.h:11-14).
FLASH_ACCESS_RESULT_OK = 0
FLASH_ACCESS_RESULT_BADARG = 1
FLASH_ACCESS_RESULT_ERROR = 2


@dataclass(frozen=True)
class CopyResult:
    """Outcome of ``FLASH_CopyMemory``: OK, BADARG (a check refused it: the destination is
    untouched) or ERROR (an erase or a word program failed part-way), with the reason."""

    ok: bool
    reason: str | None = None
    code: int = FLASH_ACCESS_RESULT_OK


def copy_memory(
    flash: NorFlash,
    src: int,
    dst: int,
    length: int,
    function: int,
    flags: int,
    platform_id: int,
    *,
    src_device: int = FLASH_INTERNAL,
    dst_device: int = FLASH_INTERNAL,
) -> CopyResult:
    """``FLASH_CopyMemory`` (spec 4.5 #2.2): check, then sector-wise ``CopyFlashBlock``.

    Each block runs to the end of the destination's sector; the **whole** sector is erased, then
    32-bit words are programmed from the source (length rounded up to 4). No read-back.

    Raises:
        PowerCut: the armed fault fired (the destination is then partly erased/written).
    """
    reason = check_copy_memory(
        flash,
        src,
        dst,
        length,
        function,
        flags,
        platform_id,
        src_device=src_device,
        dst_device=dst_device,
    )
    if reason is not None:
        return CopyResult(False, reason, FLASH_ACCESS_RESULT_BADARG)
    remaining = length
    while remaining > 0:
        idx = flash.sector_index(dst)
        sector_end = flash.chip.sectors[idx].end
        block = min(remaining, sector_end - dst)
        nbytes = -(-block // 4) * 4
        nbytes = min(nbytes, flash.base + flash.size - src)  # never read past the chip
        try:  # CopyFlashBlock (flash_mal.c:314-399): erase, then words; stop at an error
            flash.erase_sector(idx)
            flash.program(dst, flash.read(src, nbytes))
        except FlashOpError as e:
            return CopyResult(
                False, f"CopyFlashBlock: {e} (FLASH_CopyMemory: ERROR)", FLASH_ACCESS_RESULT_ERROR
            )
        src += block
        dst += block
        remaining -= block
    return CopyResult(True)


def erase_memory(flash: NorFlash, addr: int, length: int) -> bool:
    """``FLASH_EraseMemory`` (spec 4.1 #2.3, 8.6): ``ceil(len/128K)`` sectors from ``addr``'s.

    Returns False (nothing erased) when the range check fails. Running off the last sector stops
    there and returns False (the StdPeriph sector number would be invalid; spec-silent).
    """
    if not check_valid_address_range(addr, length):
        return False
    count = -(-length // INTERNAL_FLASH_PAGE_SIZE)
    first = flash.sector_index(addr)
    n_sectors = len(flash.chip.sectors)
    for i in range(first, first + count):
        if i >= n_sectors:
            return False
        try:
            flash.erase_sector(i)
        except FlashOpError:  # FLASH_EraseSector error: "return Failure" (flash_mal.c:227-231)
            return False
    return True


def flash_update(flash: NorFlash, addr: int, data: bytes) -> None:
    """``FLASH_Update`` (spec 4.1 #3): words then a byte-wise tail; no bounds, no read-back.

    It ignores each program's status (flash_mal.c:942-955): a unit that failed stays unwritten
    and the rest is programmed.
    """
    done = 0
    while done < len(data):
        try:
            flash.program(addr + done, data[done:])
            return
        except FlashOpError as e:
            failed = e.addr - addr
            done = failed + program_units(e.addr, len(data) - failed)[0]


__all__ = [
    "CopyResult",
    "check_copy_memory",
    "check_valid_address_range",
    "copy_memory",
    "embedded_bootloader",
    "erase_memory",
    "flash_update",
    "is_user_module_info_valid",
    "module_info_at",
    "stored_sha256",
    "verify_crc32",
]
