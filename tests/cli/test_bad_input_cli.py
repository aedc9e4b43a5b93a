"""Every ``flashroom`` command fed bad input, as a hostile or confused user would.

Each case must end with exit 2 (or 1 where a check ran) and a precise message on stderr naming
the option or file, the value (addresses as 0x%08x) and what was expected; never a traceback,
never exit 70 (internal error), never a half-written output file, and with ``--format json``
stdout stays empty or valid JSON.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flashroom.emu.device import Device
from flashroom.emu.image import decode_image, encode_image
from flashroom.particle.build import synthetic_module, synthetic_user_app

K = 1024
PACK = ["--platform", "electron", "--function", "user", "--index", "1", "--version", "6"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace of good and bad inputs, built once (commands never modify these)."""
    d = tmp_path_factory.mktemp("bad-input")
    app = synthetic_user_app(20 * K, seed=1)
    (d / "app.bin").write_bytes(app)
    (d / "empty.bin").write_bytes(b"")
    (d / "garbage.bin").write_bytes(b"garbage\n")
    (d / "trunc.bin").write_bytes(app[:5000])
    bad = bytearray(app)
    bad[100] ^= 0x01
    (d / "badcrc.bin").write_bytes(bytes(bad))
    photon = synthetic_module(
        20 * K, platform_id=6, function=5, index=1, version=6, start_address=0x080A0000
    )
    (d / "photon-app.bin").write_bytes(photon)
    (d / "adir").mkdir()
    (d / "afile").write_text("a file where a directory is expected\n")

    dev = Device.new("electron", "stock")
    dev.boot()
    dev.save(d / "dev.img")
    img = (d / "dev.img").read_bytes()
    meta, flash = decode_image(img)
    (d / "dev-empty.img").write_bytes(b"")
    (d / "dev-trunc.img").write_bytes(img[:1000])
    (d / "dev-short.img").write_bytes(img[:-1])
    flipped = bytearray(img)
    flipped[-1] ^= 0xFF
    (d / "dev-crc.img").write_bytes(bytes(flipped))
    v2 = bytearray(img)
    struct.pack_into("<I", v2, 8, 2)
    (d / "dev-v2.img").write_bytes(bytes(v2))
    (d / "dev-argon.img").write_bytes(encode_image(dict(meta, platform="argon"), flash))
    (d / "dev-pid.img").write_bytes(encode_image(dict(meta, platform_id=6), flash))
    (d / "dev-flash.img").write_bytes(encode_image(meta, flash[:4096]))
    (d / "dev-gran.img").write_bytes(encode_image(dict(meta, granularity="byte"), flash))
    (d / "dev-nometa.img").write_bytes(encode_image({}, flash))
    regs = dict(meta, backup_registers=["x"] * 20)
    (d / "dev-regs.img").write_bytes(encode_image(regs, flash))
    return d


@dataclass
class Case:
    """One bad invocation: args ({ws} is the workspace), expected exit, stderr fragments."""

    args: list[str]
    code: int
    expect: list[str]
    no_output: str | None = None  # a path (relative to ws) that must not exist afterwards
    extra: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # ------------------------------------------------------------------ layout
    "layout-show-unknown-platform": Case(
        ["layout", "show", "--platform", "foo"], 2, ["--platform", "'foo'", "electron"]
    ),
    "layout-show-photon-extended": Case(
        ["layout", "show", "--platform", "photon", "--layout", "extended", "--format", "json"],
        2,
        ["photon has no 'extended' layout", "0x080a0000", "docs/device-os.md#photon-ota"],
    ),
    "layout-show-bad-format": Case(
        ["layout", "show", "--platform", "electron", "--format", "xml"],
        2,
        ["--format", "'xml'", "'json'"],
    ),
    "layout-check-size-zero": Case(
        ["layout", "check", "--platform", "electron", "--user-size", "0"],
        2,
        ["user-part size must be positive", "got 0"],
    ),
    "layout-check-size-negative": Case(
        ["layout", "check", "--platform", "electron", "--user-size", "-1"],
        2,
        ["--user-size", "'-1'"],
    ),
    "layout-check-size-bad-unit": Case(
        ["layout", "check", "--platform", "electron", "--user-size", "12Q"],
        2,
        ["--user-size", "'12Q'", "K or M suffix"],
    ),
    "layout-check-size-giga": Case(
        ["layout", "check", "--platform", "electron", "--user-size", "1G"],
        2,
        ["--user-size", "'1G'", "K or M suffix"],
    ),
    "layout-check-size-beyond-32-bit": Case(
        ["layout", "check", "--platform", "electron", "--user-size", "99999999999999"],
        2,
        ["--user-size", "99999999999999", "32-bit address space"],
    ),
    "layout-check-ota-zero": Case(
        ["layout", "check", "--platform", "electron", "--ota-size", "0"],
        2,
        ["OTA scratch size must be positive", "got 0"],
    ),
    "layout-check-layout-and-sizes": Case(
        ["layout", "check", "--platform", "electron", "--layout", "extended", "--user-size", "1K"],
        2,
        ["--layout", "--user-size"],
    ),
    "layout-check-192k-sector-shared": Case(
        [
            "layout",
            "check",
            "--platform",
            "electron",
            "--user-size",
            "192K",
            "--ota-size",
            "192K",
        ],
        1,
        [],
        extra={"stdout": ["sector 9", "0x080a0000"]},
    ),
    "layout-plan-app-zero": Case(
        ["layout", "plan", "--platform", "electron", "--app-size", "0", "--format", "json"],
        2,
        ["app size must be positive", "got 0"],
    ),
    "layout-plan-missing-app-size": Case(
        ["layout", "plan", "--platform", "electron"], 2, ["Missing option '--app-size'"]
    ),
    "layout-export-out-is-file": Case(
        ["layout", "export", "--platform", "electron", "--out", "{ws}/afile"],
        2,
        ["--out", "afile", "is a file"],
    ),
    "layout-export-out-under-file": Case(
        ["layout", "export", "--platform", "electron", "--out", "{ws}/afile/sub"],
        2,
        ["afile/sub", "afile is a file, not a directory"],
    ),
    "layout-export-photon-extended-writes-nothing": Case(
        ["layout", "export", "--platform", "photon", "--layout", "extended", "--out", "{ws}/px"],
        2,
        ["photon has no 'extended' layout"],
        no_output="px",
    ),
    # ------------------------------------------------------------------ module inspect/verify
    "inspect-missing-file": Case(
        ["module", "inspect", "{ws}/nope.bin"], 2, ["nope.bin", "cannot read file", "No such file"]
    ),
    "inspect-directory": Case(["module", "inspect", "{ws}/adir"], 2, ["adir", "is a directory"]),
    "inspect-empty-json": Case(
        ["module", "inspect", "{ws}/empty.bin", "--format", "json"],
        2,
        ["empty.bin", "empty", "offset 0"],
        extra={"json": True},
    ),
    "inspect-garbage": Case(
        ["module", "inspect", "{ws}/garbage.bin"],
        2,
        ["garbage.bin", "module_info_t needs 24", "offset 0"],
    ),
    "inspect-bad-crc-is-a-failed-check": Case(
        ["module", "verify", "{ws}/badcrc.bin"], 1, [], extra={"stdout": ["FAIL crc"]}
    ),
    "verify-missing-json": Case(
        ["module", "verify", "{ws}/app.bin", "{ws}/nope.bin", "--format", "json"],
        2,
        ["nope.bin", "cannot read file", "1 of 2 file(s)"],
        extra={"json": True},
    ),
    # ------------------------------------------------------------------ module pack
    "pack-neither-input-nor-synthetic": Case(
        ["module", "pack", *PACK, "-o", "{ws}/o.bin"], 2, ["--synthetic SIZE"], no_output="o.bin"
    ),
    "pack-both-input-and-synthetic": Case(
        ["module", "pack", "{ws}/app.bin", "--synthetic", "10K", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["not both"],
        no_output="o.bin",
    ),
    "pack-missing-input": Case(
        ["module", "pack", "{ws}/nope.bin", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["nope.bin", "cannot read"],
        no_output="o.bin",
    ),
    "pack-empty-input": Case(
        ["module", "pack", "{ws}/empty.bin", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["empty.bin is empty", "raw image or an ELF"],
        no_output="o.bin",
    ),
    "pack-linked-image-other-version": Case(
        ["module", "pack", "{ws}/app.bin", *PACK[:-1], "9", "-o", "{ws}/o.bin"],
        2,
        ["already carries module_info_t", "module_version 6", "--version 9"],
        no_output="o.bin",
    ),
    "pack-linked-image-truncated": Case(
        ["module", "pack", "{ws}/trunc.bin", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["module_end_address", "5000"],
        no_output="o.bin",
    ),
    "pack-synthetic-zero": Case(
        ["module", "pack", "--synthetic", "0", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["0 bytes is too small", "68 bytes"],
        no_output="o.bin",
    ),
    "pack-synthetic-odd": Case(
        ["module", "pack", "--synthetic", "10001", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["always even", "10001"],
        no_output="o.bin",
    ),
    "pack-synthetic-bad-unit": Case(
        ["module", "pack", "--synthetic", "12Q", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["--synthetic", "'12Q'"],
        no_output="o.bin",
    ),
    "pack-synthetic-beyond-32-bit": Case(
        ["module", "pack", "--synthetic", "99999999998", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["--synthetic", "32-bit address space"],
        no_output="o.bin",
    ),
    "pack-too-large-for-stock": Case(
        ["module", "pack", "--synthetic", "129K", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["user_part", "0x08080000", "0x080a0000", "1024 bytes past"],
        no_output="o.bin",
    ),
    "pack-start-outside-region": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "--start", "0x08000000", "-o", "{ws}/o"],
        2,
        ["0x08000000", "outside region user_part", "0x08080000"],
        no_output="o",
    ),
    "pack-start-unaligned": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "--start", "0x08080001", "-o", "{ws}/o"],
        2,
        ["0x08080001", "4-byte"],
        no_output="o",
    ),
    "pack-start-not-a-number": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "--start", "zz", "-o", "{ws}/o.bin"],
        2,
        ["--start", "'zz'", "0x08080000"],
        no_output="o.bin",
    ),
    "pack-start-negative": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "--start", "-1", "-o", "{ws}/o.bin"],
        2,
        ["--start", "'-1'", "0x00000000..0xffffffff"],
        no_output="o.bin",
    ),
    "pack-start-beyond-32-bit": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "--start", "0x1ffffffff", "-o", "{ws}/o"],
        2,
        ["--start", "0x1ffffffff", "32-bit"],
        no_output="o",
    ),
    "pack-unknown-function": Case(
        [
            "module",
            "pack",
            "--synthetic",
            "10K",
            "--platform",
            "electron",
            "--function",
            "bogus",
            "--index",
            "1",
            "--version",
            "6",
            "-o",
            "{ws}/o.bin",
        ],
        2,
        ["'bogus'", "user"],
        no_output="o.bin",
    ),
    "pack-version-out-of-range": Case(
        [
            "module",
            "pack",
            "--synthetic",
            "10K",
            "--platform",
            "electron",
            "--function",
            "user",
            "--index",
            "1",
            "--version",
            "70000",
            "-o",
            "{ws}/o.bin",
        ],
        2,
        ["--version", "70000", "65535"],
        no_output="o.bin",
    ),
    "pack-bad-depends": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "--depends", "system:2", "-o", "{ws}/o"],
        2,
        ["'system:2'", "FUNCTION:INDEX:VERSION"],
        no_output="o",
    ),
    "pack-three-depends": Case(
        [
            "module",
            "pack",
            "--synthetic",
            "10K",
            *PACK,
            "--depends",
            "system:1:1",
            "--depends",
            "system:2:1",
            "--depends",
            "system:3:1",
            "-o",
            "{ws}/o.bin",
        ],
        2,
        ["two dependency slots", "3"],
        no_output="o.bin",
    ),
    "pack-x86-elf": Case(
        ["module", "pack", "{x86_elf}", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["EM_ARM", "e_machine"],
        no_output="o.bin",
    ),
    "pack-truncated-elf": Case(
        ["module", "pack", "{ws}/trunc.elf", *PACK, "-o", "{ws}/o.bin"],
        2,
        ["trunc.elf", "ELF", "offset 0"],
        no_output="o.bin",
    ),
    "pack-output-is-directory": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "-o", "{ws}/adir"],
        2,
        ["--output", "adir", "is a directory"],
    ),
    "pack-output-under-a-file": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "-o", "{ws}/afile/o.bin"],
        2,
        ["afile/o.bin", "afile is a file, not a directory"],
    ),
    "pack-output-unwritable": Case(
        ["module", "pack", "--synthetic", "10K", *PACK, "-o", "/proc/flashroom-o.bin"],
        2,
        ["cannot write /proc/flashroom-o.bin"],
    ),
    # ------------------------------------------------------------------ compress etc.
    "compress-empty": Case(
        ["module", "compress", "{ws}/empty.bin", "-o", "{ws}/o.bin"],
        2,
        ["empty.bin", "offset 0"],
        no_output="o.bin",
    ),
    "compress-garbage-names-the-file": Case(
        ["module", "compress", "{ws}/garbage.bin", "-o", "{ws}/o.bin"],
        2,
        ["garbage.bin:", "module_info_t", "offset 0"],
        no_output="o.bin",
    ),
    "compress-refuses-bad-crc": Case(
        ["module", "compress", "{ws}/badcrc.bin", "-o", "{ws}/o.bin"],
        2,
        ["badcrc.bin", "corrupt", "CRC-32", "stored 0x"],
        no_output="o.bin",
    ),
    "compress-bad-window-bits": Case(
        ["module", "compress", "{ws}/app.bin", "-o", "{ws}/o.bin", "--window-bits", "8"],
        2,
        ["window bits 8", "9..15"],
        no_output="o.bin",
    ),
    "decompress-uncompressed": Case(
        ["module", "decompress", "{ws}/app.bin", "-o", "{ws}/o.bin"],
        2,
        ["app.bin:", "not compressed", "field flags"],
        no_output="o.bin",
    ),
    "combine-refuses-bad-crc-part": Case(
        ["module", "combine", "{ws}/app.bin", "{ws}/badcrc.bin", "-o", "{ws}/o.bin"],
        2,
        ["badcrc.bin", "corrupt", "CRC-32"],
        no_output="o.bin",
    ),
    "combine-empty-part": Case(
        ["module", "combine", "{ws}/app.bin", "{ws}/empty.bin", "-o", "{ws}/o.bin"],
        2,
        ["empty.bin", "empty"],
        no_output="o.bin",
    ),
    "split-empty": Case(
        ["module", "split", "{ws}/empty.bin", "--out", "{ws}/parts"],
        2,
        ["empty.bin", "empty"],
        no_output="parts",
    ),
    "split-output-under-a-file": Case(
        ["module", "split", "{ws}/app.bin", "--out", "{ws}/afile/parts"],
        2,
        ["afile is a file, not a directory"],
    ),
    "deps-garbage-names-the-file": Case(
        ["module", "deps", "{ws}/app.bin", "--against", "{ws}/garbage.bin", "--format", "json"],
        2,
        ["garbage.bin:", "module_info_t"],
    ),
    "deps-missing-against": Case(
        ["module", "deps", "{ws}/app.bin"], 2, ["Missing option '--against'"]
    ),
    # ------------------------------------------------------------------ emu images
    "emu-show-missing-image": Case(
        ["emu", "show", "--image", "{ws}/nope.img"], 2, ["nope.img does not exist", "emu new"]
    ),
    "emu-show-image-is-directory": Case(
        ["emu", "show", "--image", "{ws}/adir"], 2, ["--image", "adir", "is a directory"]
    ),
    "emu-show-empty-image": Case(
        ["emu", "show", "--image", "{ws}/dev-empty.img", "--format", "json"],
        2,
        ["dev-empty.img", "0 bytes is too short", "emu new"],
    ),
    "emu-show-truncated-image": Case(
        ["emu", "show", "--image", "{ws}/dev-trunc.img"],
        2,
        ["dev-trunc.img", "1000 bytes", "truncated"],
    ),
    "emu-show-one-byte-short-image": Case(
        ["emu", "show", "--image", "{ws}/dev-short.img"], 2, ["dev-short.img", "truncated"]
    ),
    "emu-show-corrupt-image": Case(
        ["emu", "show", "--image", "{ws}/dev-crc.img"],
        2,
        ["dev-crc.img", "corrupt", "stored CRC-32 0x"],
    ),
    "emu-show-wrong-version-image": Case(
        ["emu", "show", "--image", "{ws}/dev-v2.img"],
        2,
        ["dev-v2.img", "version 2", "expected 1"],
    ),
    "emu-show-module-as-image": Case(
        ["emu", "show", "--image", "{ws}/app.bin"],
        2,
        ["app.bin", "not a flashroom device image", "offset 0"],
    ),
    "emu-show-image-of-unknown-platform": Case(
        ["emu", "show", "--image", "{ws}/dev-argon.img"],
        2,
        ["dev-argon.img", "platform", "'argon'", "electron"],
    ),
    "emu-show-image-platform-id-mismatch": Case(
        ["emu", "show", "--image", "{ws}/dev-pid.img"],
        2,
        ["dev-pid.img", "platform_id 6", "electron", "10"],
    ),
    "emu-show-image-wrong-flash-size": Case(
        ["emu", "show", "--image", "{ws}/dev-flash.img"],
        2,
        ["dev-flash.img", "4096 bytes", "1048576"],
    ),
    "emu-show-image-bad-granularity": Case(
        ["emu", "show", "--image", "{ws}/dev-gran.img"],
        2,
        ["dev-gran.img", "'byte'", "word"],
    ),
    "emu-show-image-without-metadata": Case(
        ["emu", "show", "--image", "{ws}/dev-nometa.img"],
        2,
        ["dev-nometa.img", "missing field 'platform'"],
    ),
    "emu-show-image-bad-registers": Case(
        ["emu", "show", "--image", "{ws}/dev-regs.img"],
        2,
        ["dev-regs.img", "backup_registers"],
    ),
    "emu-new-existing-image": Case(
        ["emu", "new", "--image", "{ws}/dev.img"], 2, ["dev.img already exists", "--force"]
    ),
    "emu-new-photon-extended": Case(
        ["emu", "new", "--platform", "photon", "--profile", "extended", "--image", "{ws}/p.img"],
        2,
        ["'extended' is Electron only", "docs/device-os.md#factory-reset"],
        no_output="p.img",
    ),
    "emu-new-image-under-a-file": Case(
        ["emu", "new", "--image", "{ws}/afile/dev.img"],
        2,
        ["afile is a file, not a directory"],
    ),
    "emu-new-image-unwritable": Case(
        ["emu", "new", "--image", "/proc/flashroom-dev.img"],
        2,
        ["cannot write /proc/flashroom-dev.img"],
    ),
    # ------------------------------------------------------------------ emu ota/install/boot
    "emu-ota-missing-module": Case(
        ["emu", "ota", "--image", "{ws}/dev.img", "{ws}/nope.bin"],
        2,
        ["nope.bin", "does not exist"],
    ),
    "emu-ota-empty-module": Case(
        ["emu", "ota", "--image", "{ws}/dev.img", "{ws}/empty.bin", "--format", "json"],
        2,
        ["empty.bin is empty", "Particle module"],
    ),
    "emu-ota-torn-without-cut": Case(
        ["emu", "ota", "--image", "{ws}/dev.img", "{ws}/app.bin", "--torn"],
        2,
        ["--torn needs --cut-at-op"],
    ),
    "emu-ota-negative-cut": Case(
        ["emu", "ota", "--image", "{ws}/dev.img", "{ws}/app.bin", "--cut-at-op", "-1"],
        2,
        ["--cut-at-op", "-1"],
    ),
    "emu-ota-cut-never-reached": Case(
        ["emu", "ota", "--image", "{ws}/dev.img", "{ws}/app.bin", "--cut-at-op", "99999999"],
        2,
        ["--cut-at-op 99999999", "flash operations", "image is unchanged"],
    ),
    "emu-install-address-outside-flash": Case(
        ["emu", "install", "--image", "{ws}/dev.img", "{ws}/app.bin", "--address", "0x20000000"],
        2,
        ["0x20000000", "outside internal flash", "0x08000000-0x08100000"],
    ),
    "emu-install-address-at-top-of-32-bit": Case(
        ["emu", "install", "--image", "{ws}/dev.img", "{ws}/app.bin", "--address", "0xffffffff"],
        2,
        ["0xffffffff", "outside internal flash"],
    ),
    "emu-install-garbage-without-address": Case(
        ["emu", "install", "--image", "{ws}/dev.img", "{ws}/garbage.bin"],
        2,
        ["garbage.bin", "module_info_t", "--address"],
    ),
    "emu-install-address-with-two-modules": Case(
        [
            "emu",
            "install",
            "--image",
            "{ws}/dev.img",
            "{ws}/app.bin",
            "{ws}/app.bin",
            "--address",
            "0x08080000",
        ],
        2,
        ["--address", "single module", "2"],
    ),
    "emu-boot-nan-button": Case(
        ["emu", "boot", "--image", "{ws}/dev.img", "--button", "nan"],
        2,
        ["--button", "nan", "finite"],
    ),
    "emu-boot-factory-reset-with-cut": Case(
        ["emu", "boot", "--image", "{ws}/dev.img", "--factory-reset", "--cut-at-op", "1"],
        2,
        ["--cut-at-op", "--factory-reset"],
    ),
    "emu-boot-factory-reset-with-button": Case(
        ["emu", "boot", "--image", "{ws}/dev.img", "--factory-reset", "--button", "3"],
        2,
        ["--button 3", "--factory-reset"],
    ),
    # ------------------------------------------------------------------ sweep / badinput
    "sweep-unknown-platform": Case(
        ["emu", "sweep", "--platform", "argon", "--last-op", "2"],
        2,
        ["--platform", "'argon'", "electron"],
    ),
    "sweep-app-size-zero": Case(
        ["emu", "sweep", "--app-size", "0", "--last-op", "2"], 2, ["--app-size", "got 0"]
    ),
    "sweep-app-size-odd": Case(
        ["emu", "sweep", "--app-size", "10001", "--last-op", "2"], 2, ["--app-size", "10001"]
    ),
    "sweep-app-size-larger-than-flash": Case(
        ["emu", "sweep", "--app-size", "1M", "--last-op", "2"],
        2,
        ["--app-size", "1048576", "0x08080000", "past the end of flash"],
    ),
    "sweep-stride-zero": Case(
        ["emu", "sweep", "--stride", "0", "--last-op", "2"], 2, ["--stride", "got 0"]
    ),
    "sweep-workers-zero": Case(
        ["emu", "sweep", "--workers", "0", "--last-op", "2"], 2, ["--workers", "got 0"]
    ),
    "sweep-empty-range": Case(
        ["emu", "sweep", "--first-op", "10", "--last-op", "5"],
        2,
        ["--first-op 10", "--last-op 5"],
    ),
    "sweep-first-op-past-the-end": Case(
        ["emu", "sweep", "--scenario", "install", "--app-size", "8K", "--first-op", "99999999"],
        2,
        ["--first-op 99999999", "flash operations"],
    ),
    "sweep-save-failing-under-a-file": Case(
        ["emu", "sweep", "--last-op", "2", "--save-failing", "{ws}/afile/sub"],
        2,
        ["afile is a file, not a directory"],
    ),
    "badinput-unknown-case": Case(
        ["emu", "badinput", "--case", "no_such_case", "--format", "json"],
        2,
        ["no_such_case", "known:", "bad_crc"],
    ),
    "badinput-photon-extended": Case(
        ["emu", "badinput", "--platform", "photon", "--profile", "extended"],
        2,
        ["'extended' is Electron only"],
    ),
    # ------------------------------------------------------------------ ota serve / connect
    "serve-empty-firmware": Case(
        ["ota", "serve", "--firmware", "{ws}/empty.bin", "--max-sessions", "1"],
        2,
        ["--firmware", "empty.bin", "the file is empty"],
    ),
    "serve-corrupt-firmware": Case(
        ["ota", "serve", "--firmware", "{ws}/badcrc.bin", "--max-sessions", "1"],
        2,
        ["--firmware", "badcrc.bin", "CRC-32 stored 0x", "--allow-invalid"],
    ),
    "serve-bad-bind": Case(
        ["ota", "serve", "--firmware", "{ws}/app.bin", "--bind", "nonsense"],
        2,
        ["'nonsense'", "HOST:PORT"],
    ),
    "serve-bind-port-out-of-range": Case(
        ["ota", "serve", "--firmware", "{ws}/app.bin", "--bind", "127.0.0.1:99999"],
        2,
        ["99999", "0..65535"],
    ),
    "serve-nan-ack-timeout": Case(
        ["ota", "serve", "--firmware", "{ws}/app.bin", "--ack-timeout", "nan"],
        2,
        ["--ack-timeout", "nan", "finite"],
    ),
    "connect-not-coap": Case(
        ["emu", "connect", "http://127.0.0.1:5683", "--image", "{ws}/dev.img"],
        2,
        ["'http://127.0.0.1:5683'", "coap://HOST:PORT"],
    ),
    "connect-empty-image": Case(
        ["emu", "connect", "coap://127.0.0.1:9", "--image", "{ws}/dev-empty.img"],
        2,
        ["dev-empty.img", "too short"],
    ),
    "connect-loss-out-of-range": Case(
        ["emu", "connect", "coap://127.0.0.1:9", "--image", "{ws}/dev.img", "--loss", "1.5"],
        2,
        ["--loss", "1.5"],
    ),
    "connect-nan-rtt": Case(
        ["emu", "connect", "coap://127.0.0.1:9", "--image", "{ws}/dev.img", "--rtt-ms", "nan"],
        2,
        ["--rtt-ms", "nan", "finite"],
    ),
    "connect-infinite-time-limit": Case(
        [
            "emu",
            "connect",
            "coap://127.0.0.1:9",
            "--image",
            "{ws}/dev.img",
            "--time-limit",
            "inf",
        ],
        2,
        ["--time-limit", "inf", "finite"],
    ),
    # ------------------------------------------------------------------ demo
    "demo-out-under-a-file": Case(
        ["demo", "--quick", "--out", "{ws}/afile/out"], 2, ["afile is a file, not a directory"]
    ),
    "demo-out-unwritable": Case(
        ["demo", "--quick", "--out", "/proc/flashroom-out"], 2, ["/proc/flashroom-out"]
    ),
}


@pytest.fixture(scope="module")
def extra_files(ws: Path) -> dict[str, str]:
    """Files some cases need that are built from others: a foreign ELF, a truncated ELF."""
    x86 = Path("/bin/true")
    elf = x86.read_bytes() if x86.exists() else b""
    (ws / "trunc.elf").write_bytes(b"\x7fELF\x01\x01\x01" + b"\x00" * 9)
    return {"x86_elf": str(x86) if elf[:4] == b"\x7fELF" else ""}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_precisely_without_traceback_or_partial_output(
    name: str, cli: Any, ws: Path, extra_files: dict[str, str]
) -> None:
    case = CASES[name]
    subs = {"ws": str(ws), **extra_files}
    if any("{x86_elf}" in a for a in case.args) and not subs["x86_elf"]:
        pytest.skip("no x86 ELF (/bin/true) on this machine")
    before = sorted(p.name for p in ws.iterdir())
    dev_img = (ws / "dev.img").read_bytes()
    r = cli([a.format(**subs) for a in case.args])
    assert r.exit_code == case.code, (r.exit_code, r.stderr, r.stdout[-2000:])
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    for frag in case.expect:
        assert frag in r.stderr, (frag, r.stderr)
    for frag in case.extra.get("stdout", []):
        assert frag in r.stdout, (frag, r.stdout[-2000:])
    if "--format" in case.args and "json" in case.args and r.stdout.strip():
        json.loads(r.stdout)  # stdout stays valid JSON (errors go to stderr)
    elif case.code == 2 and not case.extra.get("json"):
        assert r.stdout.strip() == "", r.stdout
    if case.no_output is not None:
        assert not (ws / case.no_output).exists()
    # nothing half-written: no temp files, no new files, the device image untouched
    after = sorted(p.name for p in ws.iterdir())
    assert after == before
    assert (ws / "dev.img").read_bytes() == dev_img


def test_error_message_is_one_line_for_flashroom_errors(cli: Any, ws: Path) -> None:
    r = cli(["module", "pack", "--synthetic", "129K", *PACK, "-o", str(ws / "o.bin")])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr


def test_unreadable_input_is_exit_2_naming_the_file(
    cli: Any, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod 000 does not stop root (CI runs as root), so the open itself is made to fail."""
    import os

    real = os.open

    def deny(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("app.bin"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    for args in (
        ["module", "inspect", str(ws / "app.bin")],
        ["module", "compress", str(ws / "app.bin"), "-o", str(ws / "o.bin")],
        ["emu", "ota", "--image", str(ws / "dev.img"), str(ws / "app.bin")],
        ["ota", "serve", "--firmware", str(ws / "app.bin"), "--max-sessions", "1"],
    ):
        r = cli(args)
        assert r.exit_code == 2, (args, r.stderr)
        assert "app.bin" in r.stderr and "Permission denied" in r.stderr, (args, r.stderr)
        assert "internal error" not in r.stderr
    assert not (ws / "o.bin").exists()


def test_unwritable_device_image_keeps_the_old_image(
    cli: Any, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that fails (disk full, read-only) is exit 2 and leaves the old image intact."""
    import os

    img = tmp_path / "dev.img"
    img.write_bytes((ws / "dev.img").read_bytes())

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    r = cli(["emu", "boot", "--image", str(img)])
    assert r.exit_code == 2, r.stderr
    assert f"cannot write {img}" in r.stderr and "No space left" in r.stderr
    assert img.read_bytes() == (ws / "dev.img").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.img"]
