"""Loading real ARM firmware images: ``.bin`` at its module address or ``.elf`` by PT_LOAD segment.

An image is what goes into flash (bytes at an absolute address) plus what the runner needs to
start or call it: the ``module_info_t`` the device reads (spec 2.1-2.2) and, for an ELF, its
symbol table. A Device OS ``.elf`` holds placeholders where the build writes the module's
SHA-256 and CRC-32 into the ``.bin`` (spec 2.5): run the ``.bin`` and take symbols from the
``.elf`` beside it (``SystemParts.from_folder`` in :mod:`flashroom.firmware.ota` does).

Validation here is the bad-input contract of the runner: every refusal is a
:class:`FirmwareImageError` naming the file and the field, never a crash later in the emulator.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flashroom.errors import FirmwareImageError, FirmwareSymbolError, ModuleFormatError
from flashroom.firmware.flashport import FlashPrimitive
from flashroom.firmware.targets import ELECTRON, FirmwareTarget
from flashroom.particle.module_info import (
    ModuleFunction,
    ModuleInfo,
    module_info_offset,
)
from flashroom.ranges import fmt_addr
from flashroom.readfile import InputFileError, read_input

ELF_MAGIC = b"\x7fELF"
#: ``module_info_t`` offset in a module that starts with a vector table (spec 2.2).
VECTOR_TABLE_INFO_OFFSET = 0x184


@dataclass(frozen=True)
class FirmwareImage:
    """One module as it sits in flash, with its module_info and (ELF only) symbols.

    Attributes:
        name: the file name, for messages.
        address: absolute address of ``data[0]``.
        data: the flash bytes (ELF: PT_LOAD segments at their load address, gaps 0xFF).
        info: the ``module_info_t`` at ``info_address`` (read the way the device reads it).
        info_address: where ``info`` sits.
        symbols: symbol name -> address, from the ELF ``.symtab`` (empty for a ``.bin``).
        functions: (start, size, name) of every ``STT_FUNC`` symbol, sorted (for backtraces).
    """

    name: str
    address: int
    data: bytes
    info: ModuleInfo
    info_address: int
    symbols: Mapping[str, int] = field(default_factory=dict)
    functions: tuple[tuple[int, int, str], ...] = ()

    def function_at(self, addr: int) -> str | None:
        """The name of the function whose code holds ``addr`` (None: none does)."""
        import bisect

        i = bisect.bisect_right(self.functions, (addr, 1 << 32, "")) - 1
        if i >= 0:
            start, size, name = self.functions[i]
            if start <= addr < start + max(size, 2):
                return name
        return None

    @property
    def end(self) -> int:
        """One past the last byte of :attr:`data`."""
        return self.address + len(self.data)

    def word(self, addr: int) -> int:
        """The little-endian u32 of the image at absolute ``addr``."""
        off = addr - self.address
        if not 0 <= off <= len(self.data) - 4:
            raise FirmwareImageError(self.name, "address", f"{fmt_addr(addr)} is not in the image")
        return int(struct.unpack_from("<I", self.data, off)[0])

    def function(self, name: str) -> int:
        """The address to call function ``name`` at (Thumb bit set).

        Raises:
            FirmwareSymbolError: no such symbol (a ``.bin`` has none).
        """
        if not self.symbols:
            raise FirmwareSymbolError(
                self.name, name, "cannot be found: the image has no symbol table (give the .elf)"
            )
        addr = self.symbols.get(name)
        if addr is None:
            raise FirmwareSymbolError(self.name, name)
        return addr | 1

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        target: FirmwareTarget = ELECTRON,
        info_offset: int | None = None,
    ) -> FirmwareImage:
        """Load a ``.bin`` (at its ``module_start_address``) or an ``.elf`` (by PT_LOAD).

        ``info_offset`` overrides where module_info is read (default: the device's rule,
        spec 2.2); a bootloader's is at +0x184 whatever its first word holds (spec 1.6).

        Raises:
            FirmwareImageError: unreadable file, an ELF for another machine, no loadable
                segment, or a module_info that does not parse (see :meth:`from_bytes`).
        """
        p = Path(path)
        try:  # a regular file, bounded (an ELF with its symbols is far below this)
            data = read_input(p, limit=64 * 1024 * 1024, what="a firmware image (.bin or .elf)")
        except InputFileError as e:
            raise FirmwareImageError(str(p), "file", str(e).removeprefix(f"{p}: ")) from None
        return cls.from_bytes(data, name=str(p), target=target, info_offset=info_offset)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        name: str = "<image>",
        target: FirmwareTarget = ELECTRON,
        info_offset: int | None = None,
    ) -> FirmwareImage:
        """Parse an image (ELF when it starts with the ELF magic, else a raw ``.bin``).

        A raw image is placed at the ``module_start_address`` of its own module_info.

        Raises:
            FirmwareImageError: see :meth:`from_path`.
        """
        functions: tuple[tuple[int, int, str], ...] = ()
        if data[:4] == ELF_MAGIC:
            address, image, symbols, functions = _load_elf(data, name)
        else:
            address, image, symbols = _bin_address(data, name, target, info_offset), data, {}
        info, info_addr = _module_info(image, address, name, target, info_offset)
        return cls(name, address, image, info, info_addr, symbols, functions)


def _info_offset(image: bytes, name: str, info_offset: int | None) -> int:
    if len(image) < 4:
        raise FirmwareImageError(name, "module_info_t", f"{len(image)} bytes is not a module")
    if info_offset is not None:
        return info_offset
    (first,) = struct.unpack_from("<I", image, 0)
    return module_info_offset(first)


def _bin_address(data: bytes, name: str, target: FirmwareTarget, info_offset: int | None) -> int:
    off = _info_offset(data, name, info_offset)
    try:
        info = ModuleInfo.from_bytes(data, off)
    except ModuleFormatError as e:
        raise FirmwareImageError(name, "module_info_t", str(e), offset=off) from None
    start = info.module_start_address
    if start not in target.flash or start + len(data) > target.flash.end:
        raise FirmwareImageError(
            name,
            "module_start_address",
            f"module_start_address {fmt_addr(start)} with {len(data)} bytes is not inside "
            f"{target.name} flash {target.flash}: the module info does not parse",
            offset=off,
        )
    return start


def _module_info(
    image: bytes, address: int, name: str, target: FirmwareTarget, info_offset: int | None
) -> tuple[ModuleInfo, int]:
    """The module_info the device reads for a module starting at ``address`` (spec 2.2)."""
    off = _info_offset(image, name, info_offset)
    try:
        info = ModuleInfo.from_bytes(image, off)
    except ModuleFormatError as e:
        raise FirmwareImageError(name, "module_info_t", str(e), offset=off) from None
    where = f"module_info at {fmt_addr(address + off)}"
    if info.module_function not in ModuleFunction.__members__.values():
        raise FirmwareImageError(
            name,
            "module_function",
            f"{where}: module_function {info.module_function} is not a Device OS "
            "module_function_t value: the module info does not parse",
            offset=off + 14,
        )
    if info.module_start_address != address or info.module_end_address <= address:
        raise FirmwareImageError(
            name,
            "module_start_address",
            f"{where}: module_start_address {fmt_addr(info.module_start_address)} / "
            f"module_end_address {fmt_addr(info.module_end_address)} do not describe a module "
            f"loaded at {fmt_addr(address)}: the module info does not parse",
            offset=off,
        )
    if info.platform_id != target.platform_id:
        raise FirmwareImageError(
            name,
            "platform_id",
            f"{where}: platform_id {info.platform_id}, expected {target.platform_id} "
            f"({target.name})",
            offset=off + 12,
        )
    return info, address + off


def _load_elf(
    data: bytes, name: str
) -> tuple[int, bytes, dict[str, int], tuple[tuple[int, int, str], ...]]:
    """PT_LOAD segments with file bytes at their physical (load) address, as objcopy does."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        elf = ELFFile(io.BytesIO(data))
        machine = elf["e_machine"]
        if machine != "EM_ARM" or elf.elfclass != 32:
            raise FirmwareImageError(
                name,
                "e_machine",
                f"ELF is for {machine} ({elf.elfclass}-bit); expected 32-bit ARM (EM_ARM)",
                offset=0x12,
            )
        segs: list[tuple[int, bytes]] = []
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0:
                segs.append((int(seg["p_paddr"]), bytes(seg.data())))
        symbols: dict[str, int] = {}
        functions: list[tuple[int, int, str]] = []
        symtab = elf.get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for sym in symtab.iter_symbols():
                if sym.name and sym["st_shndx"] != "SHN_UNDEF":
                    # functions keep the Thumb bit in st_value; FirmwareImage.function sets it
                    symbols.setdefault(sym.name, int(sym["st_value"]) & ~1)
                    if sym["st_info"]["type"] == "STT_FUNC":
                        functions.append((int(sym["st_value"]) & ~1, int(sym["st_size"]), sym.name))
    except (ELFError, ValueError, OSError, struct.error) as e:
        raise FirmwareImageError(name, "elf", f"not a readable ELF file ({e})", offset=0) from None
    if not segs:
        raise FirmwareImageError(name, "PT_LOAD", "ELF has no loadable segment with file bytes")
    segs.sort()
    base = segs[0][0]
    end = max(a + len(d) for a, d in segs)
    if end - base > 0x01000000:
        raise FirmwareImageError(
            name,
            "PT_LOAD",
            f"loadable segments span {fmt_addr(base)}-{fmt_addr(end)}: not one flash image",
        )
    img = bytearray(b"\xff" * (end - base))
    for addr, seg_data in segs:
        img[addr - base : addr - base + len(seg_data)] = seg_data
    return base, bytes(img), symbols, tuple(sorted(functions))


# ---------------------------------------------------------------------------- installing
def install_image(flash: FlashPrimitive, image: FirmwareImage) -> None:
    """Write ``image`` where it belongs: erase every sector it touches, then program 32-bit
    words with a 0xFF-padded tail (what DFU does, spec 3.4).

    These are ordinary NorFlash operations (counted, fault-injectable) made by the host.
    """
    first = flash.sector_index(image.address)
    last = flash.sector_index(image.end - 1)
    for i in range(first, last + 1):
        flash.erase_sector(i)
    flash.program(image.address, image.data + b"\xff" * (-len(image.data) % 4))


# ---------------------------------------------------------------------------- role checks
def check_bootloader(image: FirmwareImage, target: FirmwareTarget = ELECTRON) -> None:
    """Refuse what cannot be a bootloader for ``target`` (the runner's bad-input verdicts).

    Raises:
        FirmwareImageError: larger than sector 0 (``size``), not linked for sector 0
            (``module_start_address``), not a BOOTLOADER module (``module_function``), or no
            vector table (``initial_sp`` not in SRAM, ``reset_vector`` not a Thumb address
            inside the image).
    """
    region = target.bootloader
    if len(image.data) > region.size:
        raise FirmwareImageError(
            image.name,
            "size",
            f"{len(image.data)} bytes do not fit the {region.size}-byte bootloader region "
            f"{region} (sector 0)",
        )
    if image.address != region.start:
        raise FirmwareImageError(
            image.name,
            "module_start_address",
            f"linked at {fmt_addr(image.address)}, a bootloader starts at {fmt_addr(region.start)}",
        )
    if image.info.module_function != ModuleFunction.BOOTLOADER:
        raise FirmwareImageError(
            image.name,
            "module_function",
            f"module_function {image.info.module_function}, expected "
            f"{int(ModuleFunction.BOOTLOADER)} (BOOTLOADER)",
            offset=image.info_address - image.address + 14,
        )
    check_vector_table(image, target)


def check_vector_table(image: FirmwareImage, target: FirmwareTarget = ELECTRON) -> None:
    """The image starts with a Cortex-M vector table: SP in SRAM, a Thumb reset vector inside.

    Raises:
        FirmwareImageError: ``initial_sp`` or ``reset_vector`` is not plausible.
    """
    if len(image.data) < 8:
        raise FirmwareImageError(image.name, "initial_sp", "no vector table: under 8 bytes")
    sp, reset = struct.unpack_from("<II", image.data, 0)
    sram = target.sram
    if not sram.start < sp <= sram.end:
        raise FirmwareImageError(
            image.name,
            "initial_sp",
            f"no vector table: initial SP {fmt_addr(sp)} is not in SRAM {sram}",
            offset=0,
        )
    if not reset & 1 or not image.address <= (reset & ~1) < image.end:
        raise FirmwareImageError(
            image.name,
            "reset_vector",
            f"no vector table: reset vector {fmt_addr(reset)} is not a Thumb address inside "
            f"the image {fmt_addr(image.address)}-{fmt_addr(image.end)}",
            offset=4,
        )


__all__ = [
    "FirmwareImage",
    "FirmwareImageError",
    "FirmwareSymbolError",
    "check_bootloader",
    "check_vector_table",
    "install_image",
]
