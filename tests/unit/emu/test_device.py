"""Fidelity tests a)-g) of issue 4: each reproduces a documented Device OS behaviour.

Every test names the spec section it reproduces (``/work/shared/spec/particle-gen2.md``).
"""

from __future__ import annotations

import struct

import pytest

from flashroom.deviceos.gen2 import EXTENDED_SYSTEM_VERSION
from flashroom.emu.bootloader import Bootloader
from flashroom.emu.device import Device
from flashroom.particle.build import synthetic_module, synthetic_user_app
from flashroom.particle.crc import crc32_be_bytes
from flashroom.particle.module_info import ModuleDependency, ModuleFunction

K = 1024
SP = ModuleFunction.SYSTEM_PART


def app(size: int, seed: int, platform: str = "electron") -> bytes:
    return synthetic_user_app(size, platform=platform, seed=seed)


def _copy_start_op(dev: Device, module: bytes, dest_sector: int) -> int:
    """Ops from the start of reset() to the bootloader's erase of ``dest_sector`` (clean run)."""
    snap = dev.snapshot()
    dev.ota_begin(len(module))
    for off in range(0, len(module), 512):
        dev.ota_write(off, module[off : off + 512])
    assert dev.ota_finish() == 1
    base = dev.flash.op_count
    dev.reset()
    erase = next(
        e
        for e in dev.flash.log
        if e.kind == "erase"
        and e.first_op >= base
        and dev.flash.sector_index(e.addr) == dest_sector
    )
    dev.restore(snap)
    return erase.first_op - base


# --------------------------------------------------------------------------------------- a)
def test_a_stock_ota_of_200k_user_part_is_rejected_with_1300_and_old_app_runs() -> None:
    """a) spec 3.5 #20 and 3.3: fetch_module's range check on module_user.end_address
    (0x080A0000) refuses a 200 KB user part with -1300; no slot is written, the old app runs."""
    dev = Device.new("electron", "stock")
    before = dev.running_module()
    old_user = dev.user_part_bytes()
    out = dev.ota(app(200 * K, 1))
    assert out.result == "rejected"
    assert out.error is not None and out.error.code == -1300
    assert "0x080a0000" in out.error.message and "module_end_address" in out.error.message
    assert out.boot == "application"
    assert out.running == before
    assert dev.user_part_bytes() == old_user
    slots = dev.hw.dct.read_slots()
    assert all(s.magicNumber != 0xABCD for s in slots[1:])


# --------------------------------------------------------------------------------------- b)
def test_b_stock_256k_user_part_installed_by_dfu_boots_and_runs() -> None:
    """b) spec 3.2 (boot-time acceptance ignores module_user.end_address) and 3.5 #9-13:
    DFU checks only the address range, FLASH_isUserModuleInfoValid accepts end <= 0x08100000."""
    dev = Device.new("electron", "stock")
    big = app(256 * K, 2)
    out = dev.install(big)
    assert out.result == "applied" and out.boot == "application"
    assert out.running is not None and out.running.size == 256 * K
    assert out.running.sha256 == big[-38:-6].hex()
    # the factory sector was overwritten by the DFU write (spec 5.4 #3)
    assert out.sector_erases == {8: 1, 9: 1}


def test_b_gated_256k_app_goes_to_safe_mode_on_stock_firmware() -> None:
    """b') spec 9 change 5: a 256K app depending on the extended system version is refused at
    boot by stock firmware (user dependency check, spec 3.2 #3.4) -> safe mode, not run."""
    gated = synthetic_module(
        256 * K,
        platform_id=10,
        function=ModuleFunction.USER_PART,
        index=1,
        version=6,
        start_address=0x08080000,
        dependency=ModuleDependency(SP, 2, EXTENDED_SYSTEM_VERSION),
        seed=3,
    )
    stock = Device.new("electron", "stock")
    assert stock.install(gated).boot == "safe_mode"
    ext = Device.new("electron", "extended")
    out = ext.ota(gated)
    assert out.result == "applied" and out.boot == "application"


# --------------------------------------------------------------------------------------- c)
@pytest.mark.parametrize("size", [200 * K, 256 * K])
def test_c_extended_ota_of_large_user_part_applies_and_runs(size: int) -> None:
    """c) spec 9 change 1: widened module_user/module_ota bounds let a 200/256 KB user part pass
    fetch_module; the v2.x bootloader copies sectors 8 then 9 (spec 3.5 #21-22)."""
    dev = Device.new("electron", "extended")
    big = app(size, 4)
    out = dev.ota(big)
    assert out.result == "applied", out.error
    assert out.running is not None and out.running.size == size
    assert dev.user_part_bytes() == big
    assert out.sector_erases[10] == 1 and out.sector_erases[11] == 1  # 256K scratch
    assert out.sector_erases[8] == 1 and out.sector_erases[9] == 1


def test_c_extended_128k_system_part_ota_still_works() -> None:
    """c) spec 9: system modules are unchanged; a 128 KB system-part OTA (idx 1) is validated
    with full dependencies (spec 3.3) and copied to 0x08020000 (spec 4.5)."""
    dev = Device.new("electron", "extended")
    part = synthetic_module(
        128 * K,
        platform_id=10,
        function=SP,
        index=1,
        version=EXTENDED_SYSTEM_VERSION,
        start_address=0x08020000,
        dependency=ModuleDependency(SP, 3, 2302),
        seed=5,
    )
    out = dev.ota(part)
    assert out.result == "applied", out.error
    assert out.boot == "application"
    assert dev.flash.read(0x08020000, len(part)) == part
    assert out.sector_erases[5] == 1


def test_c_extended_100k_after_256k_runs_and_stale_upper_half_is_harmless() -> None:
    """c) spec 5.4 #3: a 100 KB OTA copies only length + 4 and leaves the upper half of the old
    256 KB app in sector 9; nothing reads it (factory retired), the new app runs."""
    dev = Device.new("electron", "extended")
    big = app(256 * K, 6)
    assert dev.ota(big).result == "applied"
    small = app(100 * K, 7)
    out = dev.ota(small)
    assert out.result == "applied" and out.boot == "application"
    assert out.running is not None and out.running.size == 100 * K
    assert 9 not in out.sector_erases
    assert dev.flash.read(0x080A0000, 128 * K) == big[128 * K :]  # stale, untouched
    # still harmless after a power cycle and a factory-reset request
    assert dev.boot().running == out.running
    assert dev.factory_reset().running == out.running


# --------------------------------------------------------------------------------------- d)
def test_d_legacy_bootloader_does_not_retry_an_interrupted_copy_and_ends_in_safe_mode() -> None:
    """d) spec 4.5 v1.5.2 difference: bootloaders <= 1002 clear the slot BEFORE copying, so a
    power cut mid-copy is not retried; the half-written user part fails its CRC -> safe mode."""
    dev = Device.new("electron", "extended", "legacy")
    assert dev.bootloader_version() == 1002
    new = app(256 * K, 8)
    op = _copy_start_op(dev, new, 8)
    dev.ota_begin(len(new))
    for off in range(0, len(new), 512):
        dev.ota_write(off, new[off : off + 512])
    assert dev.ota_finish() == 1
    dev.flash.arm_fault(op + 20_000)  # mid sector 8
    out = dev.reset()
    assert out.result == "interrupted" and out.boot == "off"
    erases_before = dev.flash.erase_counts[8]
    after = dev.boot()
    assert after.boot == "safe_mode"
    assert after.running is None
    assert dev.flash.erase_counts[8] == erases_before  # no retry
    assert all(s.magicNumber != 0xABCD for s in dev.hw.dct.read_slots()[1:])


def test_d_resumable_bootloader_retries_an_interrupted_copy_and_new_app_runs() -> None:
    """d) spec 4.5: bootloaders >= 1003 clear the slot after the copy, so after a power cut the
    slot is still 0xABCD and the copy is repeated from the start at the next boot."""
    dev = Device.new("electron", "extended", "resumable")
    new = app(256 * K, 9)
    op = _copy_start_op(dev, new, 8)
    recv = _ota_receive_ops(dev, new)
    out = dev.ota(new, cut_at_op=recv + op + 40_000)  # sector 9 of the copy
    assert out.result == "interrupted"
    assert any(s.magicNumber == 0xABCD for s in dev.hw.dct.read_slots()[1:])
    after = dev.boot()
    assert after.boot == "application"
    assert after.running is not None and after.running.sha256 == new[-38:-6].hex()
    assert dev.user_part_bytes() == new


def _ota_receive_ops(dev: Device, module: bytes) -> int:
    snap = dev.snapshot()
    base = dev.flash.op_count
    dev.ota_begin(len(module))
    for off in range(0, len(module), 512):
        dev.ota_write(off, module[off : off + 512])
    dev.ota_finish()
    n = dev.flash.op_count - base
    dev.restore(snap)
    return n


def test_d_stock_legacy_cut_before_the_header_is_written_falls_back_to_factory() -> None:
    """d') spec 3.2 #3.5: when the interrupted copy left no valid user header, stock firmware
    finds the factory header (no CRC) and factory-resets: the factory app runs."""
    dev = Device.new("electron", "stock", "legacy")
    new = app(100 * K, 10)
    op = _copy_start_op(dev, new, 8)
    recv = _ota_receive_ops(dev, new)
    out = dev.ota(new, cut_at_op=recv + op + 1)  # sector 8 erased, nothing programmed yet
    assert out.result == "interrupted"
    after = dev.boot()
    assert after.boot == "factory"
    assert after.running is not None and after.running.module_version == 1


# --------------------------------------------------------------------------------------- e)
def test_e_photon_256k_system_ota_destroys_factory_image_and_factory_reset_is_gone() -> None:
    """e) spec 4.6: on Photon module_ota is 256K (0x080C0000-0x08100000); a 256K system-part
    transfer erases sectors 10 and 11, destroying the factory image at 0x080E0000. HAL_Core_Config
    re-registers slot 0 anyway; the restore's checks then fail: factory reset unavailable."""
    dev = Device.new("photon", "stock")
    assert Bootloader(dev.hw).factory_reset_available()
    part1 = synthetic_module(
        256 * K,
        platform_id=6,
        function=SP,
        index=1,
        version=2302,
        start_address=0x08020000,
        dependency=ModuleDependency(SP, 2, 207),
        seed=11,
    )
    before = dev.running_module()
    out = dev.ota(part1)
    assert out.result == "applied", out.error
    assert out.sector_erases[10] == 1 and out.sector_erases[11] == 1
    assert dev.running_module() == before
    slot0 = dev.hw.dct.read_slots()[0]
    assert slot0.magicNumber == 0x0FAC and slot0.sourceAddress == 0x080E0000
    assert not Bootloader(dev.hw).factory_reset_available()
    held = dev.boot(button_s=7.0)  # > 6.5 s: no green, stays at the DFU level
    assert held.boot == "dfu"


def test_e_photon_128k_user_ota_keeps_the_factory_image() -> None:
    """e') spec 4.6: a transfer of 128K or less erases only sector 10; the factory image stays."""
    dev = Device.new("photon", "stock")
    out = dev.ota(app(100 * K, 12, "photon"))
    assert out.result == "applied"
    assert 11 not in out.sector_erases
    assert Bootloader(dev.hw).factory_reset_available()


# --------------------------------------------------------------------------------------- f)
def test_f_extended_factory_reset_request_neither_bricks_nor_runs_garbage() -> None:
    """f) spec 5.4 #1 and 9 change 2: slot 0 is retired and the bootloader's default source
    0x080A0000 holds the middle of the app; the restore fails its checks (BADARG), only the
    0xAAAA flag is cleared and the device reboots into the same app."""
    dev = Device.new("electron", "extended")
    big = app(256 * K, 13)
    assert dev.ota(big).result == "applied"
    assert dev.hw.dct.read_slots()[0].magicNumber == 0xFFFF
    out = dev.factory_reset()
    assert out.boot == "application"
    assert out.running is not None and out.running.sha256 == big[-38:-6].hex()
    assert dev.user_part_bytes() == big
    assert dev.regs.load_flags().Factory_Reset_SysFlag == 0xFFFF
    held = dev.boot(button_s=7.0)  # factory unavailable -> DFU level, never green
    assert held.boot == "dfu"
    assert dev.boot().boot == "application"


def test_f_extended_invalid_user_part_goes_to_safe_mode_not_factory() -> None:
    """f') spec 9 change 2: the 'user invalid -> factory reset' fallback is dropped: a device
    whose user part is corrupt sits in safe mode (stock would look at 0x080A0000)."""
    dev = Device.new("electron", "extended")
    dev.install(b"\x00" * 64, address=0x08080000, reset=False)
    assert dev.boot().boot == "safe_mode"


# --------------------------------------------------------------------------------------- g)
def _bad_crc(m: bytes) -> bytes:
    return m[:-4] + bytes(b ^ 0xFF for b in m[-4:])


def _truncated(m: bytes) -> bytes:
    return m[: len(m) // 2]


def _wrong_platform(m: bytes) -> bytes:
    b = bytearray(m)
    struct.pack_into("<H", b, 12, 6)  # module_info at +0 for a user part
    b[-4:] = crc32_be_bytes(bytes(b[:-4]))
    return bytes(b)


@pytest.mark.parametrize(
    ("profile", "make", "code", "needle"),
    [
        ("stock", lambda: _wrong_platform(app(40 * K, 14)), -1360, "platform_id 6"),
        ("stock", lambda: app(40 * K, 15, "photon"), -1300, "module_end_address"),
        ("stock", lambda: _bad_crc(app(40 * K, 16)), -1330, "CRC-32"),
        ("stock", lambda: _truncated(app(40 * K, 17)), -1330, "CRC-32"),
        ("stock", lambda: app(200 * K, 18), -1300, "0x080a0000"),
        ("stock", lambda: app(300 * K, 20), None, "past the end of internal flash"),
        # the patched system's flashroom_in_ota_region refuses it at UpdateBegin
        ("extended", lambda: app(300 * K, 19), -1350, "not inside the OTA scratch"),
    ],
    ids=[
        "wrong-platform",
        "wrong-start",
        "bad-crc",
        "truncated",
        "too-large",
        "past-flash-end",
        "too-large-ext",
    ],
)
def test_g_bad_ota_input_is_refused_with_its_own_error_and_app_unchanged(
    profile: str, make: object, code: int | None, needle: str
) -> None:
    """g) spec 3.3 / 3.1 error table (-1300 range, -1330 integrity, -1360 platform) and spec
    4.1 #3 (FLASH_Update has no bounds check: a file running past 0x08100000 faults the MCU);
    in every case no slot is written and the running app is unchanged byte for byte."""
    dev = Device.new("electron", profile)
    before = dev.running_module()
    user = dev.user_part_bytes()
    system = dev.flash.read(0x08020000, 0x60000)
    data = make()  # type: ignore[operator]
    out = dev.ota(data)
    assert out.result == "rejected"
    assert out.error is not None and out.error.code == code
    assert needle in out.error.message
    assert out.boot == "application" and out.running == before
    assert dev.user_part_bytes() == user
    assert dev.flash.read(0x08020000, 0x60000) == system
