"""``flashroom ota serve`` in a separate process and ``flashroom emu connect`` against it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flashroom.emu.device import Device
from flashroom.particle.build import synthetic_user_app

SERVER_DEADLINE_S = 60
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "json"


def _follows_schema(doc: Any, name: str) -> None:
    import jsonschema

    jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.json").read_text())).validate(
        doc
    )


class Server:
    """A ``python -m flashroom ota serve`` subprocess on an ephemeral loopback port."""

    def __init__(self, firmware: Path, *extra: str, bind: str = "127.0.0.1:0") -> None:
        args = [
            sys.executable,
            "-m",
            "flashroom",
            "ota",
            "serve",
            "--bind",
            bind,
            "--firmware",
            str(firmware),
            "--ack-timeout",
            "0.2",
            "--format",
            "json",
            *extra,
            *(() if "--psk-file" in extra else ("--insecure",)),
        ]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # "listening on coap://127.0.0.1:PORT"
        self.first_lines = line + self.proc.stderr.readline()  # + the security line
        m = re.search(r"coap://(\[[\da-f:]+\]|[\d.]+):\d+", line)
        if m is None:
            self.kill()
            raise AssertionError(f"server did not start: {line!r}")
        self.url = m.group(0)

    def wait_json(self) -> Any:
        out, _ = self.proc.communicate(timeout=SERVER_DEADLINE_S)
        return json.loads(out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def server_factory() -> Iterator[Any]:
    started: list[Server] = []

    def make(firmware: Path, *extra: str, bind: str = "127.0.0.1:0") -> Server:
        s = Server(firmware, *extra, bind=bind)
        started.append(s)
        return s

    yield make
    for s in started:
        s.kill()


@pytest.fixture
def device_image(tmp_path: Path) -> Path:
    path = tmp_path / "dev.img"
    Device.new("electron", "extended").save(path)
    return path


@pytest.fixture
def app_bin(tmp_path: Path) -> Path:
    path = tmp_path / "app.bin"
    path.write_bytes(synthetic_user_app(48 * 1024, platform="electron", version=11, seed=7))
    return path


def _connect_args(url: str, image: Path, *extra: str) -> list[str]:
    return ["emu", "connect", url, "--image", str(image), "--ack-timeout", "0.2", *extra]


def test_emu_connect_json_against_server_process(
    cli: Any, server_factory: Any, device_image: Path, app_bin: Path
) -> None:
    # raw bytes (--no-stream): an extended device would otherwise get a compressed file
    srv = server_factory(app_bin, "--max-sessions", "1", "--no-stream")
    res = cli(_connect_args(srv.url, device_image, "--link", "lossy", "--format", "json"))
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert data["result"] == "applied"
    assert data["payload_bytes"] == 48 * 1024
    assert data["encoding"] == "raw" and data["written_bytes"] == 48 * 1024
    assert data["wire_bytes"] > data["payload_bytes"]
    assert data["messages"] > 96
    assert data["retransmissions"] >= 0
    assert data["link_time_s"] > 0
    assert data["link"]["name"] == "lossy"
    assert data["boot"] == "application"
    assert data["running"]["module_version"] == 11
    assert set(data["outcome"]) >= {"result", "boot", "running", "flash_ops"}
    _follows_schema(data, "emu-connect")
    served = srv.wait_json()
    _follows_schema(served, "ota-serve")
    assert served["completed"] == 1 and served["failed"] == 0
    assert served["payload_bytes"] == 48 * 1024
    # The image was saved: the updated app runs after a reload.
    running = Device.load(device_image).running_module()
    assert running is not None and running.module_version == 11


def test_emu_connect_text_with_explicit_link_values(
    cli: Any, server_factory: Any, device_image: Path, app_bin: Path
) -> None:
    srv = server_factory(app_bin, "--max-sessions", "1")  # asks for fast OTA
    res = cli(
        _connect_args(
            srv.url,
            device_image,
            "--rtt-ms",
            "150",
            "--bandwidth-bps",
            "300000",
            "--loss",
            "0.02",
            "--seed",
            "4",
            "--no-fast-ota",
        )
    )
    assert res.exit_code == 0, res.stderr
    assert "applied" in res.stdout and "wire bytes" in res.stdout
    assert re.search(r"fast OTA\s+.\s+no", res.stdout)
    assert srv.wait_json()["completed"] == 1


@pytest.mark.parametrize("fast", [True, False])
def test_server_process_killed_mid_transfer_leaves_device_app_intact(
    server_factory: Any, tmp_path: Path, fast: bool
) -> None:
    from flashroom.ota.device_end import DeviceConfig
    from flashroom.ota.endpoint import CoapTuning
    from flashroom.scenarios.deliver import update_over_udp

    big = tmp_path / "big.bin"
    big.write_bytes(synthetic_user_app(200 * 1024, platform="electron", version=12, seed=1))
    dev = Device.new("electron", "extended")
    before = dev.running_module()
    # Paced at 2 Mbit/s, the 400 chunks take ~1 s to send, so the kill at chunk 20 always
    # lands mid-transfer (back to back, fast OTA could queue every chunk and even its early
    # UpdateDone before the kill).
    srv = server_factory(big, "--fast-ota" if fast else "--no-fast-ota", "--pace-kbps", "2000")
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 20 and srv.proc.poll() is None:
            os.kill(srv.proc.pid, signal.SIGKILL)  # the server is gone mid-transfer
            srv.proc.wait(timeout=10)

    cfg = DeviceConfig(
        platform="electron",
        inactivity_timeout_s=1.0,
        tuning=CoapTuning(ack_timeout_s=0.05),
        linger_s=0.2,
    )
    res = update_over_udp(dev, srv.url, device_config=cfg, progress=progress, time_limit_s=30)
    assert max(seen) < 400  # it really stopped part-way
    assert res.result in ("timeout", "aborted")
    assert res.error
    assert res.outcome is not None and res.outcome["boot"] == "application"
    after = dev.running_module()
    assert before is not None and after is not None
    assert after.sha256 == before.sha256


def test_emu_connect_rejects_bad_url(cli: Any, device_image: Path) -> None:
    res = cli(["emu", "connect", "http://x", "--image", str(device_image)])
    assert res.exit_code == 2
    assert "coap://HOST:PORT" in res.stderr


def test_emu_connect_rejects_bad_probability(cli: Any, device_image: Path) -> None:
    res = cli(["emu", "connect", "coap://127.0.0.1:9", "--image", str(device_image), "--loss", "2"])
    assert res.exit_code == 2
    assert "--loss" in res.stderr


def test_ota_serve_rejects_bad_bind(cli: Any, app_bin: Path) -> None:
    res = cli(["ota", "serve", "--bind", "localhost", "--firmware", str(app_bin)])
    assert res.exit_code == 2
    assert "HOST:PORT" in res.stderr


@pytest.mark.parametrize("args", [["ota", "--help"], ["ota", "serve", "--help"]])
def test_ota_help_teaches_with_an_example(cli: Any, args: list[str]) -> None:
    res = cli(args)
    assert res.exit_code == 0
    assert "Example" in res.stdout and "coap" in res.stdout.lower()


def test_ota_serve_refuses_a_corrupt_module(cli: Any, tmp_path: Path, app_bin: Path) -> None:
    bad = tmp_path / "bad.bin"
    data = bytearray(app_bin.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    res = cli(["ota", "serve", "--bind", "127.0.0.1:0", "--firmware", str(bad)])
    assert res.exit_code == 2
    assert "CRC-32 stored" in res.stderr and "--allow-invalid" in res.stderr


def test_corrupt_module_served_anyway_is_refused_by_the_device(
    cli: Any, server_factory: Any, device_image: Path, tmp_path: Path, app_bin: Path
) -> None:
    bad = tmp_path / "bad.bin"
    data = bytearray(app_bin.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    before = Device.load(device_image).running_module()
    srv = server_factory(bad, "--allow-invalid", "--max-sessions", "1")
    res = cli(_connect_args(srv.url, device_image, "--format", "json"))
    assert res.exit_code == 1
    out = res.json()
    assert out["result"] == "rejected" and out["error_code"] is not None
    assert out["boot"] == "application"
    after = Device.load(device_image).running_module()
    assert before is not None and after is not None and after.sha256 == before.sha256
    served = srv.wait_json()
    assert served["firmware"]["valid"] is False


def test_emu_connect_to_a_silent_port_says_no_answer_after_n_attempts(
    cli: Any, device_image: Path
) -> None:
    """Used to wait out --time-limit (900 s) and report no_update with exit 0/1."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but never read: nobody answers
        res = cli(
            ["emu", "connect", f"coap://127.0.0.1:{port}", "--image", str(device_image),
             "--ack-timeout", "0.02", "--format", "json"]
        )  # fmt: skip
    assert res.exit_code == 2, res.stderr
    assert f"no answer from coap://127.0.0.1:{port} after 3 attempts" in res.stderr
    assert res.json()["error"]["exit_code"] == 2  # the JSON error document (docs/json/error.json)


def test_emu_connect_where_nothing_listens_says_so(cli: Any, device_image: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # closed: the kernel answers the Hello with ICMP port unreachable
    res = cli(["emu", "connect", f"coap://127.0.0.1:{port}", "--image", str(device_image)])
    assert res.exit_code == 2, res.stderr
    assert f"no answer from coap://127.0.0.1:{port}" in res.stderr
    assert "nothing listens there" in res.stderr


@pytest.mark.parametrize(
    ("mode", "words"), [("--no-fast-ota", "stop-and-wait"), ("--fast-ota", "fast OTA")]
)
def test_ota_serve_prints_one_line_per_session_event(
    cli: Any, server_factory: Any, device_image: Path, app_bin: Path, mode: str, words: str
) -> None:
    """Fast OTA confirms no chunk until the end: its progress lines count chunks sent (they
    jumped from 'begun' to 'done')."""
    # --no-stream: the raw module (an extended device would get a smaller compressed file)
    srv = server_factory(app_bin, "--max-sessions", "1", mode, "--no-stream")
    res = cli(_connect_args(srv.url, device_image, "--format", "json"))
    assert res.exit_code == 0, res.stderr
    out, err = srv.proc.communicate(timeout=SERVER_DEADLINE_S)
    assert "warning: --insecure" in srv.first_lines + err
    lines = err.splitlines()
    assert any("connected (Hello)" in line for line in lines)
    begun = [
        i
        for i, line in enumerate(lines)
        if f"update begun: 96 chunks of 512 bytes, {words}" in line
    ]
    percent = [i for i, line in enumerate(lines) if re.search(r" \d0 % \(", line)]
    assert begun and percent and begun[0] < percent[0]  # in order
    assert sum(1 for line in lines if re.search(r" \d0 % \(\d+/96 chunks\)", line)) == 9
    assert any(f"done: {48 * 1024} bytes delivered" in line for line in lines)
    assert json.loads(out)["completed"] == 1  # the summary is still printed on exit


def test_ota_serve_wants_keys_or_insecure(cli: Any, app_bin: Path) -> None:
    res = cli(["ota", "serve", "--bind", "127.0.0.1:0", "--firmware", str(app_bin)])
    assert res.exit_code == 2
    assert "--psk-file" in res.stderr and "--insecure" in res.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--bind", "[::1]:0", "--chunk-size", "65535"], ["65535", "PROTOCOL_BUFFER_SIZE"]),
        (["--bind", "a" * 64 + ":0"], ["64 characters", "at most 63"]),
    ],
)
def test_ota_serve_refuses_precisely(
    cli: Any, app_bin: Path, args: list[str], words: list[str]
) -> None:
    res = cli(["ota", "serve", "--firmware", str(app_bin), "--insecure", *args])
    assert res.exit_code == 2, res.stderr
    assert all(w in res.stderr for w in words), res.stderr
    assert "internal error" not in res.stderr


@pytest.mark.parametrize(
    "url, words",
    [
        ("coap://127.0.0.1:0", ["port 0", "1..65535"]),
        ("coap://" + "b" * 70 + ":5683", ["70 characters", "at most 63"]),
    ],
)
def test_emu_connect_refuses_precisely(
    cli: Any, device_image: Path, url: str, words: list[str]
) -> None:
    res = cli(["emu", "connect", url, "--image", str(device_image)])
    assert res.exit_code == 2, res.stderr
    assert all(w in res.stderr for w in words), res.stderr


def test_ota_serve_on_ipv6_loopback_prints_a_url_emu_connect_takes(
    server_factory: Any, cli: Any, device_image: Path, app_bin: Path
) -> None:
    srv = server_factory(app_bin, "--max-sessions", "1", bind="[::1]:0")
    assert srv.url.startswith("coap://[::1]:")
    res = cli(_connect_args(srv.url, device_image, "--format", "json"))
    assert res.exit_code == 0, res.stderr
    assert srv.wait_json()["address"] == srv.url


def test_dtls_psk_serve_and_connect(
    cli: Any, server_factory: Any, device_image: Path, app_bin: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# device key\n" + "ab" * 12 + " " + "5a" * 16 + "\n")
    srv = server_factory(app_bin, "--max-sessions", "1", "--psk-file", str(keys))
    res = cli(_connect_args(srv.url, device_image, "--psk-file", str(keys), "--format", "json"))
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert data["result"] == "applied" and data["dtls"]["handshake_bytes"] > 0
    served = srv.wait_json()
    assert served["secure"] is True and served["completed"] == 1
    assert served["session_records"][0]["device_id"] == "ab" * 12


def test_dtls_server_ignores_a_device_without_the_key(
    cli: Any, server_factory: Any, device_image: Path, app_bin: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("ab" * 12 + " " + "5a" * 16 + "\n")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("ab" * 12 + " " + "a5" * 16 + "\n")
    srv = server_factory(app_bin, "--psk-file", str(keys))
    plain = cli(_connect_args(srv.url, device_image, "--ack-timeout", "0.02"))
    assert plain.exit_code == 2 and "no answer from" in plain.stderr
    bad = cli(_connect_args(srv.url, device_image, "--ack-timeout", "0.02", "--psk-file",
                            str(wrong)))  # fmt: skip
    assert bad.exit_code == 2, bad.stderr
    assert "does not accept this device's key" in bad.stderr


@pytest.mark.parametrize("value", ["0", "nan", "-5"])
def test_ota_serve_rejects_a_pace_that_is_not_a_positive_rate(
    cli: Any, app_bin: Path, value: str
) -> None:
    res = cli(["ota", "serve", "--firmware", str(app_bin), "--pace-kbps", value])
    assert res.exit_code == 2
    assert "--pace-kbps" in res.stderr


def _unmet_app(tmp_path: Path) -> Path:
    from flashroom.particle.build import synthetic_module
    from flashroom.particle.module_info import ModuleDependency, ModuleFunction

    path = tmp_path / "unmet.bin"
    path.write_bytes(
        synthetic_module(
            16 * 1024,
            platform_id=10,
            function=ModuleFunction.USER_PART,
            index=1,
            version=13,
            start_address=0x08080000,
            dependency=ModuleDependency(ModuleFunction.SYSTEM_PART, 2, 9999),
            seed=5,
        )
    )
    return path


def test_ota_serve_refuses_an_app_whose_dependency_is_unmet(tmp_path: Path) -> None:
    """It used to check parse and CRC only and served it (issue 12 #2)."""
    res = subprocess.run(
        [sys.executable, "-m", "flashroom", "ota", "serve", "--bind", "127.0.0.1:0",
         "--insecure", "--firmware", str(_unmet_app(tmp_path)), "--max-sessions", "1"],
        capture_output=True, text=True, timeout=SERVER_DEADLINE_S,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "dependency check (docs/device-os.md#boot-check)" in res.stderr
    assert "--allow-invalid" in res.stderr


def test_ota_serve_checks_dependencies_against_the_profile_the_devices_run(
    cli: Any, server_factory: Any, tmp_path: Path
) -> None:
    """The README's extended app (``pack --layout extended`` depends on the extended system)
    was refused because the server checked it against a stock install; --profile names the
    Device OS of the fleet (default: the platform's largest layout, as everywhere)."""
    app = tmp_path / "app200.bin"
    packed = cli(
        ["module", "pack", "--synthetic", "200K", "--platform", "electron", "--function",
         "user", "--index", "1", "--version", "7", "--start", "0x08080000", "--layout",
         "extended", "-o", str(app)]
    )  # fmt: skip
    assert packed.exit_code == 0, packed.output
    stock = subprocess.run(
        [sys.executable, "-m", "flashroom", "ota", "serve", "--bind", "127.0.0.1:0",
         "--insecure", "--firmware", str(app), "--profile", "stock", "--max-sessions", "1"],
        capture_output=True, text=True, timeout=SERVER_DEADLINE_S,
    )  # fmt: skip
    assert stock.returncode == 2, stock.stderr
    assert "checked against a fresh stock install" in stock.stderr
    image = tmp_path / "ext.img"
    Device.new("electron", "extended").save(image)
    srv = server_factory(app, "--max-sessions", "1")  # default: extended on Electron
    res = cli(_connect_args(srv.url, image, "--format", "json"))
    assert res.exit_code == 0, res.output
    assert res.json()["result"] == "applied"
    assert srv.wait_json()["firmware"]["checked_against"] == "extended"


def test_connect_and_emu_ota_agree_on_an_app_whose_dependency_is_unmet(
    cli: Any, server_factory: Any, tmp_path: Path
) -> None:
    """emu connect said applied (exit 0) while the device boots safe mode (issue 12 #2)."""
    app = _unmet_app(tmp_path)
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    for p in (a, b):
        Device.new("electron", "extended").save(p)
    srv = server_factory(app, "--allow-invalid", "--max-sessions", "1")
    res = cli(_connect_args(srv.url, a, "--format", "json"))
    direct = cli(["emu", "ota", "--image", str(b), str(app), "--format", "json"])
    assert res.exit_code == 1 and direct.exit_code == 1
    data = res.json()
    assert data["result"] == "installed_not_running"  # the emu/outcome.py class
    assert data["device_status"] == "applied" and data["boot"] == direct.json()["boot"]
    assert "dependency check (docs/device-os.md#boot-check)" in data["error"]
    assert data["host_check"]["ok"] is False
    srv.wait_json()
