"""CLI tests for ``flashroom devos patch|build|package`` and ``module inspect FILE.dfu``:
help that teaches, JSON contracts, exit codes, one-line errors for every bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from flashroom.devos.changes import CHANGE_NAMES, CHANGES
from flashroom.devos.tree import tree_digest
from flashroom.particle.build import synthetic_user_app
from flashroom.particle.dfuse import dfuse_for_module

Cli = Any
APPS = Path(__file__).resolve().parents[1] / "data" / "apps"
MINI = sorted(
    {"build/version.mk", "modules/electron/modular.mk", "bootloader/makefile"}
    | {e.path for c in CHANGES for e in c.edits}
)


@pytest.fixture
def tree(device_os_source: Path, tmp_path: Path) -> Path:
    root = tmp_path / "dos"
    for rel in MINI:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(device_os_source / rel, root / rel)
    return root


def _one_error_line(stderr: str) -> str:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# --- help ---------------------------------------------------------------------------------------


def test_devos_help_teaches_the_session(cli: Cli) -> None:
    r = cli(["devos", "--help"])
    assert r.exit_code == 0
    for word in ("patch", "build", "package", "flashroom devos build", "0x080C0000"):
        assert word in r.stdout
    assert "devos" in cli(["--help"]).stdout


def test_patch_help_lists_every_change_and_the_exit_codes(cli: Cli) -> None:
    r = cli(["devos", "patch", "--help"])
    assert r.exit_code == 0
    for name in CHANGE_NAMES:
        assert name in r.stdout
    assert "Exit codes: 0" in r.stdout and "--emit-patch" in r.stdout
    assert "flashroom devos patch /tmp/dos --check" in r.stdout


def test_build_and_package_help_say_what_they_write(cli: Cli) -> None:
    b = cli(["devos", "build", "--help"]).stdout
    assert "manifest.json" in b and "system-part1 holds idx 3" in b.replace("\n  ", " ")
    assert "--jobs" in b and "--force" in b and "Exit codes" in b
    p = cli(["devos", "package", "--help"]).stdout
    assert "FLASHING.md" in p and "2b04:d00a" in p and "power-loss" in p


# --- patch --------------------------------------------------------------------------------------


def test_patch_then_patch_again_says_already_applied(cli: Cli, tree: Path) -> None:
    r = cli(["devos", "patch", str(tree)])
    assert r.exit_code == 0, r.stderr
    assert "applied" in r.stdout and "wrote 12 files" in r.stdout
    digest = tree_digest(tree)
    r = cli(["devos", "patch", str(tree)])
    assert r.exit_code == 0
    assert r.stdout.count("already applied") == len(CHANGES) + 1
    assert "nothing written" in r.stdout and tree_digest(tree) == digest


def test_patch_json_contract(cli: Cli, tree: Path) -> None:
    r = cli(["devos", "patch", str(tree), "--part", "toolchain", "--format", "json"])
    assert r.exit_code == 0
    j = r.json()
    assert j["mode"] == "apply" and j["version"] == "2.3.1"
    assert [c["name"] for c in j["changes"]] == ["gcc12-flags", "parallel-make"]
    assert all(c["result"] == "applied" for c in j["changes"])
    assert sorted(j["written"]) == ["build/arm-tools.mk", "build/module.mk", "modules/makefile"]


def test_check_exits_1_until_everything_is_applied(cli: Cli, tree: Path) -> None:
    r = cli(["devos", "patch", str(tree), "--check"])
    assert r.exit_code == 1
    assert "0 of 10 changes applied" in r.stdout and "missing: user-256k" in r.stderr
    r = cli(["devos", "patch", str(tree), "--check", "--format", "json"])
    assert r.exit_code == 1
    j = r.json()
    assert j["all_applied"] is False and len(j["missing"]) == len(CHANGES)
    assert {c["state"] for c in j["changes"]} == {"missing"}
    cli(["devos", "patch", str(tree), "--skip", "ota-guard"])
    r = cli(["devos", "patch", str(tree), "--check", "--format", "json"])
    assert r.exit_code == 1 and r.json()["missing"] == ["ota-guard"]
    cli(["devos", "patch", str(tree)])
    r = cli(["devos", "patch", str(tree), "--check"])
    assert r.exit_code == 0 and "10 of 10 changes applied" in r.stdout


def test_emit_patch_writes_a_diff_and_leaves_the_tree_alone(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    digest = tree_digest(tree)
    out = tmp_path / "flashroom.patch"
    r = cli(["devos", "patch", str(tree), "--emit-patch", str(out)])
    assert r.exit_code == 0, r.stderr
    assert "git apply" in r.stdout and "left untouched" in r.stdout
    text = out.read_text()
    assert text.startswith("diff --git a/") and "+++ b/system/src/system_update.cpp" in text
    assert tree_digest(tree) == digest
    r = cli(["devos", "patch", str(tree), "--emit-patch", str(out), "--format", "json"])
    assert r.json()["size"] == out.stat().st_size


@pytest.mark.parametrize(
    ("setup", "expect"),
    [
        ("missing", "no such directory"),
        ("file", "not a directory"),
        ("empty", "not a Device OS source tree"),
        ("version", "is Device OS 2.2.0 (VERSION_STRING in"),
        ("read-only", "is read-only"),
        ("local-change", "hunk 1 of change max-binary"),
    ],
)
def test_patch_bad_trees_exit_2_with_one_error_line(
    cli: Cli, tree: Path, tmp_path: Path, setup: str, expect: str
) -> None:
    target = tree
    if setup == "missing":
        target = tmp_path / "nope"
    elif setup == "file":
        target = tmp_path / "f"
        target.write_text("x")
    elif setup == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif setup == "version":
        v = tree / "build/version.mk"
        v.write_text(v.read_text().replace("2.3.1", "2.2.0"))
    elif setup == "local-change":
        p = tree / "system/src/system_cloud_internal.cpp"
        p.write_text(p.read_text().replace("spark/hardware/max_binary", "x/max_binary"))
    elif setup == "read-only":
        for p in [tree, *tree.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
    try:
        before = tree_digest(tree)
        r = cli(["devos", "patch", str(target)])
        assert r.exit_code == 2, (r.stdout, r.stderr)
        line = _one_error_line(r.stderr)
        assert expect in line
        assert tree_digest(tree) == before
        if setup == "version":
            assert "build/version.mk" in line
        if setup == "local-change":
            assert "system/src/system_cloud_internal.cpp" in line and "nothing was written" in line
    finally:
        for p in [tree, *tree.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def test_patch_usage_errors_exit_2(cli: Cli, tree: Path, tmp_path: Path) -> None:
    r = cli(["devos", "patch", str(tree), "--only", "nope"])
    assert r.exit_code == 2 and "nope" in _one_error_line(r.stderr)
    r = cli(["devos", "patch", str(tree), "--check", "--emit-patch", str(tmp_path / "p")])
    assert r.exit_code == 2 and "do not go together" in _one_error_line(r.stderr)
    r = cli(["devos", "patch", str(tree), "--only", "user-256k"])
    assert r.exit_code == 2 and "needs change flash-addresses" in _one_error_line(r.stderr)
    r = cli(["devos", "patch", str(tree), "--part", "toolchain", "--only", "ota-guard"])
    assert r.exit_code == 2 and "no change selected" in r.stderr


# --- build (refusals: no compiler run) ----------------------------------------------------------


def test_build_refuses_an_out_folder_that_is_not_empty(
    cli: Cli, tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep")
    r = cli(["devos", "build", str(tree), "--out", str(out)])
    assert r.exit_code == 2 and "--force" in _one_error_line(r.stderr)
    assert (out / "x").read_text() == "keep"


def test_build_without_toolchain_names_the_debian_packages(
    cli: Cli, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(["devos", "patch", str(tree)])
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    r = cli(["devos", "build", str(tree), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    line = _one_error_line(r.stderr)
    assert "gcc-arm-none-eabi libnewlib-arm-none-eabi libarchive-zip-perl xxd" in line
    assert not (tmp_path / "out").exists()


def test_build_bad_arguments_exit_2(cli: Cli, tree: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    r = cli(["devos", "build", str(tmp_path / "nope"), "--out", out])
    assert r.exit_code == 2 and "no such directory" in _one_error_line(r.stderr)
    r = cli(["devos", "build", str(tree), "--out", out, "--jobs", "0"])
    assert r.exit_code == 2
    r = cli(["devos", "build", str(tree), "--out", out, "--app", str(tmp_path / "noapp")])
    assert r.exit_code == 2 and "not a directory" in _one_error_line(r.stderr)
    r = cli(["devos", "build", str(tree)])
    assert r.exit_code == 2 and "--out" in r.stderr


# --- build, package, inspect on the real build -----------------------------------------------


def test_build_an_app_against_the_built_tree_json(
    cli: Cli, devos_build: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    r = cli(
        [
            "devos",
            "build",
            str(devos_build.patched_tree),
            "--out",
            str(out),
            "--app",
            str(APPS / "tiny"),
            "--jobs",
            "2",
            "--format",
            "json",
        ]
    )
    assert r.exit_code == 0, r.stderr
    j = r.json()
    assert j["jobs"] == 2 and j["out"] == str(out)
    names = [m["name"] for m in j["manifest"]["modules"]]
    assert names == ["bootloader", "system-part1", "system-part2", "system-part3", "user-part-tiny"]
    assert (out / "manifest.json").is_file() and (out / "user-part-tiny.elf").is_file()
    tiny = j["manifest"]["modules"][-1]
    assert tiny["sha256"] == devos_build.manifest.module("user-part-tiny").sha256
    assert [s["step"] for s in j["timings"]] == ["bootloader", "system", "app tiny"]


def test_build_text_then_package_then_inspect_the_dfu(
    cli: Cli, devos_build: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    r = cli(
        [
            "devos",
            "build",
            str(devos_build.patched_tree),
            "--out",
            str(out),
            "--app",
            str(APPS / "big200k"),
            "--no-bootloader",
        ]
    )
    assert r.exit_code == 0, r.stderr
    assert "SYSTEM_PART idx 3" in r.stdout and "0x08080000..0x080b" in r.stdout
    assert "flashroom devos package" in r.stdout
    r = cli(["devos", "package", str(out), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    j = r.json()
    assert [m["dfu"] for m in j["modules"]] == [
        "system-part1.dfu",
        "system-part2.dfu",
        "system-part3.dfu",
        "user-part-big200k.dfu",
    ]
    assert j["modules"][-1]["address"] == 0x08080000
    assert (out / "FLASHING.md").is_file()
    r = cli(["module", "inspect", str(out / "user-part-big200k.dfu"), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    el = r.json()[0]["targets"][0]["elements"][0]
    assert el["address"] == 0x08080000 and el["size"] > 200 * 1024
    assert el["module"]["prefix"]["dependencies"][0]["module_version"] == 2350
    r = cli(["module", "inspect", str(out / "system-part3.dfu")])
    assert r.exit_code == 0 and "element 0" in r.stdout and "0x08040000" in r.stdout
    assert "SYSTEM_PART (4) idx 2" in r.stdout


def test_a_failed_build_leaves_out_as_it_was(cli: Cli, devos_build: Any, tmp_path: Path) -> None:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "broken.cpp").write_text('#include "application.h"\nvoid setup() { oops }\n')
    out = tmp_path / "out"
    r = cli(["devos", "build", str(devos_build.patched_tree), "--out", str(out), "--app", str(app)])
    assert r.exit_code == 2
    assert "broken.cpp" in r.stderr and "error:" in r.stderr  # the compiler's own line
    assert "app broken: make failed" in _one_error_line(r.stderr)
    assert not out.exists()
    out.mkdir()
    (out / "old.txt").write_text("old")
    r = cli(
        [
            "devos",
            "build",
            str(devos_build.patched_tree),
            "--out",
            str(out),
            "--app",
            str(app),
            "--force",
        ]
    )
    assert r.exit_code == 2 and [p.name for p in out.iterdir()] == ["old.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp left


def test_package_refuses_a_folder_without_manifest(cli: Cli, tmp_path: Path) -> None:
    r = cli(["devos", "package", str(tmp_path)])
    assert r.exit_code == 2 and "manifest.json" in _one_error_line(r.stderr)


# --- module inspect FILE.dfu (no toolchain) -----------------------------------------------------


def test_inspect_dfu_text_and_json(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "app.dfu"
    f.write_bytes(dfuse_for_module(synthetic_user_app(6000), 0x08080000))
    r = cli(["module", "inspect", str(f)])
    assert r.exit_code == 0, r.stderr
    assert "2b04:d00a" in r.stdout and "Internal Flash" in r.stdout
    assert "0x08080000..0x08081770" in r.stdout and "USER_PART (5) idx 1" in r.stdout
    j = cli(["module", "inspect", str(f), "--format", "json"]).json()[0]
    assert j["format"] == "dfuse" and j["ok"] is True and j["file"] == str(f)
    assert j["targets"][0]["elements"][0]["size"] == 6000
    r = cli(["module", "verify", str(f)])
    assert r.exit_code == 0 and "ok" in r.stdout


def test_inspect_dfu_exit_codes(cli: Cli, tmp_path: Path) -> None:
    good = dfuse_for_module(synthetic_user_app(3000), 0x08080000)
    bad_crc = tmp_path / "crc.dfu"
    bad_crc.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    r = cli(["module", "inspect", str(bad_crc)])
    assert r.exit_code == 2 and "dwCRC" in r.stderr and str(bad_crc) in r.stderr
    # a good DfuSe file around a damaged module: the module check fails (exit 1)
    app = bytearray(synthetic_user_app(3000))
    app[500] ^= 1
    damaged = tmp_path / "damaged.dfu"
    damaged.write_bytes(dfuse_for_module(bytes(app), 0x08080000))
    r = cli(["module", "inspect", str(damaged), "--format", "json"])
    assert r.exit_code == 1
    assert {c["name"] for c in r.json()[0]["checks"] if not c["ok"]} >= {"element0.crc"}
    # a .dfu name without a DFU suffix at all
    junk = tmp_path / "junk.dfu"
    junk.write_bytes(b"\x01" * 64)
    r = cli(["module", "inspect", str(junk)])
    assert r.exit_code == 2 and "suffix" in r.stderr


# --- progress bar on a terminal -----------------------------------------------------------------


def test_build_shows_a_progress_bar_on_a_terminal(
    devos_build: Any, tmp_path: Path, run_on_tty: Any
) -> None:
    app = tmp_path / "counter"
    app.mkdir()
    # a fresh app (new sources) so that something is compiled while the bar is up
    (app / "counter.cpp").write_text(
        '#include "application.h"\nstatic int n;\n'
        "void setup() {}\nvoid loop() { ++n; delay(10); }\n"
    )
    code, _out, tty = run_on_tty(
        [
            "devos",
            "build",
            str(devos_build.patched_tree),
            "--out",
            str(tmp_path / "out"),
            "--app",
            str(app),
        ],
        tmp_path,
    )
    assert code == 0, tty[-2000:]
    assert "building Device OS" in tty and "━" in tty, tty[-500:]
