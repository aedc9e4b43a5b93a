"""manifest.json and ``devos package`` on the stock v2.3.1 binaries (no toolchain needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from flashroom.devos.manifest import Manifest, ModuleEntry, verified_module
from flashroom.devos.package import FLASHING_NAME, flashing_guide, package
from flashroom.errors import ManifestError
from flashroom.particle.dfu_inspect import inspect_dfu
from flashroom.particle.dfuse import DfuFile
from flashroom.particle.module_info import ModuleFunction

DFU_SUFFIX = shutil.which("dfu-suffix")


def test_manifest_records_the_module_each_file_really_holds(stock_out: Path) -> None:
    m = Manifest.from_dir(stock_out)
    idx = {e.name: (e.function_name, e.module_index) for e in m.modules}
    # spec 1.4: on Electron system-part1 holds idx 3, system-part2 idx 1, system-part3 idx 2
    assert idx == {
        "bootloader": ("BOOTLOADER", 0),
        "system-part1": ("SYSTEM_PART", 3),
        "system-part2": ("SYSTEM_PART", 1),
        "system-part3": ("SYSTEM_PART", 2),
        "user-part-tinker": ("USER_PART", 1),
    }
    s3 = m.module("system-part3")
    assert (s3.start_address, s3.end_address, s3.module_version) == (0x08040000, 0x0805F8B8, 2302)
    assert [d.describe() for d in s3.dependencies] == [
        "SYSTEM_PART idx 1 >= 2302",
        "BOOTLOADER idx 0 >= 1003",
    ]
    assert m.module("bootloader").sha256 == (
        "525ce47697dccf9434314a7e642b6476122cefffd2ad3ae0ea9ac1d5bffd4369"
    )
    assert [e.name for e in m.system_parts] == ["system-part1", "system-part2", "system-part3"]
    assert m.by_index(ModuleFunction.SYSTEM_PART, 2) == (s3,)


def test_manifest_json_round_trips(stock_out: Path) -> None:
    m = Manifest.from_dir(stock_out)
    assert Manifest.from_json(json.loads(m.dumps())) == m
    e = m.modules[0]
    assert ModuleEntry.from_json(e.to_json(), "x") == e
    keys = set(m.to_json()["modules"][0])
    assert {
        "file",
        "module_function",
        "module_index",
        "module_version",
        "start_address",
        "end_address",
        "size",
        "sha256",
        "dependencies",
        "elf",
    } <= keys


def test_manifest_errors_say_what_is_wrong(tmp_path: Path, stock_out: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        Manifest.from_dir(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ManifestError, match="not JSON"):
        Manifest.from_dir(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(ManifestError, match="format 'other'"):
        Manifest.from_dir(tmp_path)
    with pytest.raises(ManifestError, match="no module 'nope'"):
        Manifest.from_dir(stock_out).module("nope")


def test_verified_module_refuses_corrupt_or_misplaced_modules(stock_out: Path) -> None:
    data = bytearray((stock_out / "system-part3.bin").read_bytes())
    verified_module(bytes(data), "s3", (ModuleFunction.SYSTEM_PART, 2))
    with pytest.raises(ManifestError, match="expected SYSTEM_PART idx 3"):
        verified_module(bytes(data), "s3", (ModuleFunction.SYSTEM_PART, 3))
    data[1000] ^= 1
    with pytest.raises(ManifestError, match="does not verify: crc"):
        verified_module(bytes(data), "s3")
    with pytest.raises(ManifestError, match="not a valid module"):
        verified_module(b"\x01" * 30, "junk")


def test_package_writes_a_dfu_per_module_that_reads_back(stock_out: Path) -> None:
    result = package(stock_out)
    m = Manifest.from_dir(stock_out)
    assert [p.entry.name for p in result.modules] == [e.name for e in m.modules]
    for p in result.modules:
        data = (stock_out / p.dfu_file).read_bytes()
        dfu = DfuFile.from_bytes(data)
        (el,) = dfu.elements
        assert el.address == p.entry.start_address
        assert el.data == (stock_out / p.entry.file).read_bytes()
        assert dfu.targets[0].name == "Internal Flash" and dfu.targets[0].alternate_setting == 0
        assert (dfu.vendor, dfu.product) == (0x2B04, 0xD00A)
        assert inspect_dfu(data).ok
    assert (stock_out / FLASHING_NAME).is_file()


@pytest.mark.skipif(DFU_SUFFIX is None, reason="dfu-suffix not found (apt-get install dfu-util)")
def test_dfu_suffix_accepts_every_packaged_file(stock_out: Path) -> None:
    for p in package(stock_out).modules:
        r = subprocess.run(
            [str(DFU_SUFFIX), "--check", str(stock_out / p.dfu_file)],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0 and "Vendor ID:\t0x2B04" in r.stdout, r.stdout + r.stderr


def test_package_refuses_a_module_changed_since_the_build(stock_out: Path) -> None:
    f = stock_out / "system-part2.bin"
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="changed since the build"):
        package(stock_out)
    assert not (stock_out / "system-part1.dfu").exists()  # checked before writing any


def test_flashing_guide_gives_the_commands_in_order(stock_out: Path) -> None:
    text = flashing_guide(Manifest.from_dir(stock_out))
    order = [
        "dfu-util -d 2b04:d00a -a 0 -s 0x08060000 -D system-part1.bin",
        "dfu-util -d 2b04:d00a -a 0 -s 0x08020000 -D system-part2.bin",
        "dfu-util -d 2b04:d00a -a 0 -s 0x08040000 -D system-part3.bin",
        "dfu-util -d 2b04:d00a -a 0 -s 0x08080000:leave -D user-part-tinker.bin",
        "dfu-util -d 2b04:d00a -a 0 -s :leave -D user-part-tinker.dfu",
        "particle flash --usb system-part1.bin",
        "particle flash --usb user-part-tinker.bin",
        "particle flash --serial user-part-tinker.bin",
        "not power-loss safe",
        "dfu-util -d 2b04:d00a -a 0 -s 0x08000000:leave -D bootloader.bin",
    ]
    pos = [text.index(s) for s in order]
    assert pos == sorted(pos)
    assert "-s 0x08060000 -D system-part1.dfu" not in text  # dfu-util refuses an address + DfuSe
    assert "not determinable" in text or "unknown" in text
