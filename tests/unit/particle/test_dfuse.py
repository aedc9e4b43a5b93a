"""DfuSe files: byte layout (UM0391), round trips, dfu-util's own tools as oracles.

``dfu-suffix --check`` (Debian dfu-util) validates the suffix and its CRC and prints the IDs;
``dfuse-pack`` (same package) writes DfuSe files: for the same element, target name and
bcdDevice, flashroom's writer must give its bytes exactly. Both skip when dfu-util is absent.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashroom.errors import DfuFormatError, ModuleFormatError
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.dfu_inspect import inspect_dfu
from flashroom.particle.dfuse import (
    ANY_DEVICE,
    DFUSE_BCD,
    PARTICLE_DFU_PID,
    PARTICLE_VID,
    DfuElement,
    DfuFile,
    DfuPrefix,
    DfuSuffix,
    DfuTarget,
    DfuTargetPrefix,
    dfu_crc,
    dfuse_for_module,
    is_dfuse,
)

DFU_SUFFIX = shutil.which("dfu-suffix")
DFUSE_PACK = shutil.which("dfuse-pack")
needs_dfu_suffix = pytest.mark.skipif(
    DFU_SUFFIX is None, reason="dfu-suffix not found (apt-get install dfu-util)"
)
needs_dfuse_pack = pytest.mark.skipif(
    DFUSE_PACK is None, reason="dfuse-pack not found (apt-get install dfu-util)"
)


def _one(data: bytes, address: int = 0x08080000) -> bytes:
    return dfuse_for_module(data, address)


def test_layout_of_a_one_element_file_follows_um0391() -> None:
    payload = bytes(range(256)) * 3
    f = _one(payload)
    # prefix: "DfuSe", version 1, DFUImageSize (whole file), 1 target
    assert f[:5] == b"DfuSe" and f[5] == 1
    assert struct.unpack_from("<I", f, 6)[0] == len(f) and f[10] == 1
    # target prefix: 274 bytes, "Target", alt 0, named, "Internal Flash", sizes
    t = f[11 : 11 + 274]
    assert t[:6] == b"Target" and t[6] == 0 and struct.unpack_from("<I", t, 7)[0] == 1
    assert t[11:25] == b"Internal Flash" and t[25:266] == b"\0" * 241
    assert struct.unpack_from("<II", t, 266) == (8 + len(payload), 1)
    # element: address, size, data
    assert struct.unpack_from("<II", f, 285) == (0x08080000, len(payload))
    assert f[293 : 293 + len(payload)] == payload
    # suffix: bcdDevice, idProduct 0xd00a, idVendor 0x2b04, bcdDFU 0x011a, "UFD", 16, CRC
    s = f[-16:]
    assert struct.unpack_from("<HHHH3sB", s) == (0xFFFF, 0xD00A, 0x2B04, 0x011A, b"UFD", 16)
    assert struct.unpack_from("<I", s, 12)[0] == (zlib.crc32(f[:-4]) ^ 0xFFFFFFFF)
    assert len(f) == 11 + 274 + 8 + len(payload) + 16


def test_records_round_trip_through_their_structs() -> None:
    p = DfuPrefix(1234, 2)
    assert DfuPrefix.from_bytes(p.to_bytes()) == p and len(p.to_bytes()) == 11
    tp = DfuTargetPrefix(0, True, "Internal Flash", 100, 3)
    assert DfuTargetPrefix.from_bytes(tp.to_bytes()) == tp and len(tp.to_bytes()) == 274
    f = _one(b"abc")
    assert DfuSuffix.from_bytes(f) == DfuSuffix(
        ANY_DEVICE, PARTICLE_DFU_PID, PARTICLE_VID, DFUSE_BCD, dfu_crc(f[:-4])
    )


elements = st.builds(DfuElement, st.integers(0, 0xFFFFFFFF), st.binary(min_size=0, max_size=300))
targets = st.builds(
    DfuTarget,
    st.integers(0, 255),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
    st.lists(elements, min_size=0, max_size=4).map(tuple),
)
files = st.builds(
    DfuFile,
    st.lists(targets, min_size=1, max_size=3).map(tuple),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files)
def test_write_then_read_gives_the_same_file(f: DfuFile) -> None:
    data = f.to_bytes()
    assert DfuFile.from_bytes(data) == f
    assert DfuFile.from_bytes(data).to_bytes() == data
    assert is_dfuse(data)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 10_000))
def test_any_flipped_byte_is_caught(payload: bytes, where: int) -> None:
    data = bytearray(_one(payload))
    i = where % len(data)
    data[i] ^= 0x01
    with pytest.raises(DfuFormatError):
        DfuFile.from_bytes(bytes(data))


def test_older_image_size_without_the_suffix_is_accepted() -> None:
    data = bytearray(_one(b"xyz"))
    struct.pack_into("<I", data, 6, len(data) - 16)
    data[-4:] = struct.pack("<I", dfu_crc(bytes(data[:-4])))
    assert DfuFile.from_bytes(bytes(data)).elements[0].data == b"xyz"


def _refix(data: bytearray) -> bytes:
    data[-4:] = struct.pack("<I", dfu_crc(bytes(data[:-4])))
    return bytes(data)


@pytest.mark.parametrize(
    ("offset", "value", "field"),
    [
        (0, b"DfuSx", "szSignature"),
        (5, b"\x02", "bVersion"),
        (6, b"\x00\x00\x00\x00", "DFUImageSize"),
        (11, b"Tarxet", "szSignature"),
        (11 + 266, b"\xff\x00\x00\x00", "dwTargetSize"),
        (285 + 4, b"\xff\x00\x00\x00", "dwElementSize"),
    ],
)
def test_malformed_fields_are_named(offset: int, value: bytes, field: str) -> None:
    data = bytearray(_one(b"\x01" * 32))
    data[offset : offset + len(value)] = value
    with pytest.raises(DfuFormatError) as e:
        DfuFile.from_bytes(_refix(data))
    assert e.value.field == field and e.value.offset is not None


def test_suffix_problems_are_named() -> None:
    good = _one(b"\x02" * 20)
    with pytest.raises(DfuFormatError, match="dwCRC") as e:
        DfuFile.from_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert e.value.field == "dwCRC"
    bad = bytearray(good)
    bad[-8:-5] = b"XYZ"
    with pytest.raises(DfuFormatError) as e:
        DfuFile.from_bytes(_refix(bad))
    assert e.value.field == "ucDfuSignature"
    bad = bytearray(good)
    bad[-10:-8] = b"\x00\x01"  # bcdDFU 0x0100: a plain DFU file, not DfuSe
    with pytest.raises(DfuFormatError, match="not a DfuSe file"):
        DfuFile.from_bytes(_refix(bad))
    with pytest.raises(DfuFormatError, match="too short"):
        DfuFile.from_bytes(b"DfuSe")
    assert issubclass(DfuFormatError, ModuleFormatError)


def test_bytes_between_last_target_and_suffix_are_refused() -> None:
    good = _one(b"\x03" * 8)
    data = bytearray(good[:-16] + b"\0\0\0\0" + good[-16:])
    struct.pack_into("<I", data, 6, len(data))
    with pytest.raises(DfuFormatError, match="between the last target and the suffix"):
        DfuFile.from_bytes(_refix(data))


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(DfuFormatError, match=r"1\.\.255"):
        DfuFile(()).to_bytes()
    with pytest.raises(DfuFormatError, match="idVendor"):
        DfuFile((DfuTarget(0, "x", ()),), vendor=0x10000).to_bytes()
    with pytest.raises(DfuFormatError, match="254"):
        DfuTarget(0, "n" * 300, ()).to_bytes()


def test_from_path_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "x.dfu"
    p.write_bytes(b"not a dfu file at all, really not")
    with pytest.raises(DfuFormatError, match=str(p)):
        DfuFile.from_path(p)
    with pytest.raises(DfuFormatError, match="cannot read"):
        DfuFile.from_path(tmp_path / "missing.dfu")


@needs_dfu_suffix
def test_dfu_suffix_accepts_the_file_and_prints_particles_ids(tmp_path: Path) -> None:
    p = tmp_path / "app.dfu"
    p.write_bytes(_one(synthetic_user_app(3000)))
    r = subprocess.run([str(DFU_SUFFIX), "--check", str(p)], capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Vendor ID:\t0x2B04" in out and "Product ID:\t0xD00A" in out
    assert "BCD DFU:\t0x011A" in out


@needs_dfu_suffix
def test_dfu_suffix_refuses_a_file_whose_crc_is_wrong(tmp_path: Path) -> None:
    data = bytearray(_one(synthetic_user_app(3000)))
    data[400] ^= 0xFF  # inside the module
    p = tmp_path / "bad.dfu"
    p.write_bytes(bytes(data))
    r = subprocess.run([str(DFU_SUFFIX), "--check", str(p)], capture_output=True, text=True)
    assert "CRC does not match" in r.stdout + r.stderr
    with pytest.raises(DfuFormatError, match="dwCRC"):
        DfuFile.from_bytes(bytes(data))


@needs_dfuse_pack
def test_same_bytes_as_dfu_utils_dfuse_pack(tmp_path: Path) -> None:
    payload = synthetic_user_app(5000)
    binfile = tmp_path / "app.bin"
    binfile.write_bytes(payload)
    theirs = tmp_path / "theirs.dfu"
    subprocess.run(
        [str(DFUSE_PACK), "-b", f"0x08080000:{binfile}", "-D", "0x2b04:0xd00a", str(theirs)],
        check=True,
        capture_output=True,
    )
    # dfuse-pack names the target "ST..." and writes bcdDevice 0; with those, bytes must match
    target = DfuTarget(0, "ST...", (DfuElement(0x08080000, payload),))
    ours = DfuFile((target,), PARTICLE_VID, PARTICLE_DFU_PID, device=0).to_bytes()
    assert ours == theirs.read_bytes()
    # and dfuse-pack parses flashroom's own file without a CRC error
    mine = tmp_path / "mine.dfu"
    mine.write_bytes(_one(payload))
    r = subprocess.run([str(DFUSE_PACK), str(mine)], capture_output=True, text=True, check=True)
    assert "address: 0x08080000, size: 5000" in r.stdout and "CRC ERROR" not in r.stdout


def test_inspection_parses_the_module_in_each_element() -> None:
    app = synthetic_user_app(2000)
    info = inspect_dfu(_one(app), "app.dfu")
    assert info.ok and info.dfuse
    assert info.modules[0] is not None and info.modules[0].info.module_start_address == 0x08080000
    names = [c.name for c in info.checks()]
    assert names[0] == "element0.module" and "element0.address" in names
    j = info.to_json()
    assert j["format"] == "dfuse" and j["usb"]["vendor"] == PARTICLE_VID
    el = j["targets"][0]["elements"][0]
    assert el["address"] == 0x08080000 and el["size"] == len(app)
    assert el["module"]["prefix"]["module_function_name"] == "USER_PART"


def test_inspection_flags_a_wrong_address_and_a_non_module() -> None:
    app = synthetic_user_app(2000)
    info = inspect_dfu(dfuse_for_module(app, 0x080C0000))
    bad = [c for c in info.checks() if not c.ok]
    assert [c.name for c in bad] == ["element0.address"]
    info = inspect_dfu(dfuse_for_module(b"\x00" * 64, 0x08000000))
    assert not info.ok  # parses as the reference tool reads it, but no check passes
    info = inspect_dfu(dfuse_for_module(b"\x01" * 30, 0x08000000))
    assert not info.ok and info.modules == (None,) and info.module_errors[0]
    assert info.checks()[0].name == "element0.module" and not info.checks()[0].ok


def test_inspection_reads_a_plain_dfu_suffix_file() -> None:
    # what Device OS's own '%.dfu' make rule writes: the .bin, then dfu-suffix -v 2b04 -p d00a
    app = synthetic_user_app(1500)
    body = app + struct.pack("<HHHH3sB", 0xFFFF, 0xD00A, 0x2B04, 0x0100, b"UFD", 16)
    data = body + struct.pack("<I", dfu_crc(body))
    info = inspect_dfu(data, "user-part.dfu")
    assert not info.dfuse and info.ok and info.modules[0] is not None
    assert info.to_json()["format"] == "dfu-suffix"
