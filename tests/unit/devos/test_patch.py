"""flashroom's patch on copies of the real Device OS 2.3.1 tree: every change applies, twice is
once, --check reports, --emit-patch gives what git apply takes, and bad trees are refused with
nothing written anywhere."""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flashroom.devos.changes import BY_NAME, CHANGES, PARTS, changes_of_part
from flashroom.devos.patch import (
    ChangeState,
    HunkState,
    PatchMode,
    PatchRequest,
    plan_patch,
    run_patch,
    select_changes,
    status,
    unified_diff,
)
from flashroom.devos.tree import DeviceOsTree, tree_digest
from flashroom.errors import PatchConflictError, SourceTreeError, UsageError

Snap = Callable[[Path], dict[str, tuple[bytes, int, int]]]
GIT = shutil.which("git")


def _states(root: Path) -> dict[str, ChangeState]:
    return {s.change.name: s.state for s in status(DeviceOsTree.open(root))}


def test_every_hunk_matches_the_pristine_tree_once_at_its_line(device_os_source: Path) -> None:
    for c in CHANGES:
        for e in c.edits:
            text = (device_os_source / e.path).read_text()
            assert text.count(e.old) == 1, (c.name, e.path)
            assert e.new not in text, (c.name, e.path)
            line = text[: text.index(e.old)].count("\n") + 1
            assert line == e.line, (c.name, e.path, line)


def test_every_hunk_cites_the_spec_section_it_implements() -> None:
    for c in CHANGES:
        assert c.spec.startswith("spec ")
        for e in c.edits:
            assert "flashroom: spec" in e.new


def test_pristine_tree_has_every_change_missing(mini_tree: Path) -> None:
    assert set(_states(mini_tree).values()) == {ChangeState.MISSING}


def test_patch_applies_every_change(mini_tree: Path) -> None:
    report = run_patch(PatchRequest(mini_tree))
    assert all(s.state is ChangeState.MISSING for s in report.statuses)  # states before
    assert set(_states(mini_tree).values()) == {ChangeState.APPLIED}
    written = set(report.written)
    assert written == {e.path for c in CHANGES for e in c.edits}
    for c in CHANGES:
        for e in c.edits:
            text = (mini_tree / e.path).read_text()
            assert e.new in text and text.count(e.old) == (1 if e.old in e.new else 0)


@pytest.mark.parametrize("name", [c.name for c in CHANGES])
def test_each_change_applies_alone(mini_tree: Path, name: str) -> None:
    wanted = {name, *BY_NAME[name].requires}
    run_patch(PatchRequest(mini_tree, only=tuple(wanted)))
    states = _states(mini_tree)
    for n, st in states.items():
        assert st is (ChangeState.APPLIED if n in wanted else ChangeState.MISSING), n


def test_the_layout_changes_write_what_spec_9_and_10_ask(mini_tree: Path) -> None:
    run_patch(PatchRequest(mini_tree, parts=("layout",)))
    r = mini_tree.joinpath
    assert "USER_FIRMWARE_IMAGE_SIZE=0x40000" in r("modules/electron/modular.mk").read_text()
    assert "LENGTH = 256K" in r("modules/electron/user-part/linker.ld").read_text()
    bounds = r("hal/src/electron/ota_module_bounds.c").read_text()
    assert "module_user = { 0x40000, 0x8080000, 0x80C0000," in bounds
    assert "module_ota = { 0x40000, 0x80C0000, 0x8100000," in bounds
    assert "&module_user };" in bounds and "&module_factory }" not in bounds
    assert "module_factory = {" in bounds  # still defined: the bootloader reads it
    mal = r("platform/MCU/STM32F2xx/SPARK_Firmware_Driver/inc/flash_mal.h").read_text()
    assert "#define INTERNAL_FLASH_OTA_ADDRESS (0x80C0000)" in mal
    assert (
        "endAddress <= 0x8100000" in r("hal/src/stm32f2xx/ota_flash_hal_stm32f2xx.cpp").read_text()
    )
    core = r("hal/src/stm32f2xx/core_hal_stm32f2xx.c").read_text()
    assert "FLASH_ClearFactoryResetModuleSlot();" in core
    assert "#if PLATFORM_ID != 10\n        else if(FLASH_isUserModuleInfoValid" in core
    cloud = r("system/src/system_cloud_internal.cpp").read_text()
    assert (
        "#if PLATFORM_ID!=PLATFORM_ELECTRON_PRODUCTION || !defined(MODULAR_FIRMWARE)" not in cloud
    )
    assert (
        "COMMON_MODULE_VERSION ?= 2350" in r("modules/shared/system_module_version.mk").read_text()
    )
    update = r("system/src/system_update.cpp").read_text()
    assert update.count("flashroom_in_ota_region(") == 3  # the helper, Prepare, Save
    # the toolchain part is separate
    assert "-fcommon" not in r("build/arm-tools.mk").read_text()
    assert _states(mini_tree)["gcc12-flags"] is ChangeState.MISSING


def test_second_run_says_already_applied_and_writes_nothing(
    mini_tree: Path, snapshot: Snap
) -> None:
    run_patch(PatchRequest(mini_tree))
    before = snapshot(mini_tree)
    report = run_patch(PatchRequest(mini_tree))
    assert report.written == ()
    assert all(s.state is ChangeState.APPLIED for s in report.statuses)
    assert report.to_json()["changes"][0]["result"] == "already applied"  # type: ignore[index]
    assert snapshot(mini_tree) == before


def test_patch_keeps_file_modes(mini_tree: Path) -> None:
    f = mini_tree / "modules/electron/modular.mk"
    f.chmod(0o640)
    run_patch(PatchRequest(mini_tree, only=("user-256k", "flash-addresses")))
    assert stat.S_IMODE(f.stat().st_mode) == 0o640


def test_check_reports_each_change_and_writes_nothing(mini_tree: Path, snapshot: Snap) -> None:
    before = snapshot(mini_tree)
    report = run_patch(PatchRequest(mini_tree, mode=PatchMode.CHECK))
    assert not report.all_applied
    j = report.to_json()
    assert j["missing"] == [c.name for c in CHANGES] and j["all_applied"] is False
    assert snapshot(mini_tree) == before
    run_patch(PatchRequest(mini_tree, parts=("toolchain",)))
    report = run_patch(PatchRequest(mini_tree, parts=("toolchain",), mode=PatchMode.CHECK))
    assert report.all_applied


def test_partly_applied_change_is_reported_partial_and_completed(mini_tree: Path) -> None:
    c = BY_NAME["parallel-make"]
    e = c.edits[0]
    p = mini_tree / e.path
    p.write_text(p.read_text().replace(e.old, e.new))
    st = {s.change.name: s for s in status(DeviceOsTree.open(mini_tree))}["parallel-make"]
    assert st.state is ChangeState.PARTIAL
    assert [h.state for h in st.hunks] == [HunkState.APPLIED, HunkState.PENDING]
    run_patch(PatchRequest(mini_tree, only=("parallel-make",)))
    assert _states(mini_tree)["parallel-make"] is ChangeState.APPLIED


@pytest.mark.skipif(GIT is None, reason="git not found (apt-get install git)")
def test_emitted_patch_is_accepted_by_git_apply_on_a_pristine_copy(
    full_tree: Path, tmp_path: Path, device_os_source: Path
) -> None:
    digest = tree_digest(full_tree)
    patch_file = tmp_path / "flashroom.patch"
    report = run_patch(PatchRequest(full_tree, mode=PatchMode.EMIT, patch_file=patch_file))
    assert tree_digest(full_tree) == digest  # the tree is left untouched
    assert report.diff_size == patch_file.stat().st_size > 0
    git = [str(GIT), "-c", "core.autocrlf=false"]
    r = subprocess.run(
        [*git, "apply", "--check", "-v", str(patch_file)],
        cwd=full_tree,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    subprocess.run([*git, "apply", str(patch_file)], cwd=full_tree, check=True)
    # git's result is byte for byte what flashroom's own patch writes
    other = tmp_path / "other"
    shutil.copytree(device_os_source, other)
    for p in other.rglob("*"):
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    run_patch(PatchRequest(other))
    for c in CHANGES:
        for path in c.paths:
            assert (full_tree / path).read_bytes() == (other / path).read_bytes(), path


@pytest.mark.skipif(GIT is None, reason="git not found (apt-get install git)")
def test_git_apply_refuses_the_patch_on_an_already_patched_tree(
    full_tree: Path, tmp_path: Path
) -> None:
    patch_file = tmp_path / "p.diff"
    run_patch(PatchRequest(full_tree, mode=PatchMode.EMIT, patch_file=patch_file))
    run_patch(PatchRequest(full_tree))
    r = subprocess.run(
        [str(GIT), "apply", "--check", str(patch_file)],
        cwd=full_tree,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0  # the diff really changes the tree


def test_emitted_patch_is_the_same_from_a_patched_tree(mini_tree: Path) -> None:
    tree = DeviceOsTree.open(mini_tree)
    pristine = unified_diff(tree)
    run_patch(PatchRequest(mini_tree, parts=("layout",)))
    assert unified_diff(DeviceOsTree.open(mini_tree)) == pristine


def test_emitted_patch_covers_only_the_selected_part(mini_tree: Path) -> None:
    tree = DeviceOsTree.open(mini_tree)
    diff = unified_diff(tree, changes_of_part("toolchain"))
    assert "+++ b/build/arm-tools.mk" in diff and "+++ b/build/module.mk" in diff
    assert "ota_module_bounds.c" not in diff
    assert diff.count("flashroom: spec 10") >= 3


def test_refuses_another_version_naming_it_and_the_file(mini_tree: Path, snapshot: Snap) -> None:
    vf = mini_tree / "build/version.mk"
    vf.write_text(vf.read_text().replace("VERSION_STRING = 2.3.1", "VERSION_STRING = 2.2.0"))
    before = snapshot(mini_tree)
    with pytest.raises(SourceTreeError) as e:
        run_patch(PatchRequest(mini_tree))
    assert (
        "2.2.0" in str(e.value) and "build/version.mk" in str(e.value) and "2.3.1" in str(e.value)
    )
    assert snapshot(mini_tree) == before


def test_refuses_what_is_not_a_tree(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SourceTreeError, match="not a directory"):
        DeviceOsTree.open(f)
    with pytest.raises(SourceTreeError, match="no such directory"):
        DeviceOsTree.open(tmp_path / "missing")
    with pytest.raises(SourceTreeError, match="not a Device OS source tree"):
        DeviceOsTree.open(tmp_path)


def test_local_changes_are_refused_naming_file_and_hunk_with_nothing_written(
    mini_tree: Path, snapshot: Snap
) -> None:
    # a local edit where a late hunk goes: the early files must not be written either
    p = mini_tree / "system/src/system_update.cpp"
    p.write_text(p.read_text().replace("file.chunk_size, NULL);", "file.chunk_size, nullptr);"))
    before = snapshot(mini_tree)
    with pytest.raises(PatchConflictError) as e:
        run_patch(PatchRequest(mini_tree))
    err = e.value
    assert err.path == "system/src/system_update.cpp" and err.change == "ota-guard"
    assert err.hunk == 2
    assert "system/src/system_update.cpp" in str(err) and "hunk 2 of change ota-guard" in str(err)
    assert "nothing was written" in str(err)
    assert snapshot(mini_tree) == before
    # the same tree still takes the changes that do not touch the edited block
    run_patch(PatchRequest(mini_tree, skip=("ota-guard",)))
    assert _states(mini_tree)["ota-guard"] is ChangeState.CONFLICT


def test_a_changed_value_is_a_conflict_not_a_second_copy(mini_tree: Path) -> None:
    p = mini_tree / "modules/electron/modular.mk"
    p.write_text(
        p.read_text().replace(
            "USER_FIRMWARE_IMAGE_SIZE=0x20000", "USER_FIRMWARE_IMAGE_SIZE=0x30000"
        )
    )
    with pytest.raises(PatchConflictError, match=r"modular\.mk.*hunk 1 of change user-256k"):
        run_patch(PatchRequest(mini_tree))
    with pytest.raises(PatchConflictError):
        unified_diff(DeviceOsTree.open(mini_tree))


def test_read_only_tree_is_refused_naming_it(mini_tree: Path, snapshot: Snap) -> None:
    for p in [mini_tree, *mini_tree.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        before = snapshot(mini_tree)
        with pytest.raises(SourceTreeError) as e:
            run_patch(PatchRequest(mini_tree))
        assert "read-only" in str(e.value) and str(mini_tree) in str(e.value)
        assert snapshot(mini_tree) == before
        # --check and --emit-patch still work on a read-only tree
        assert not run_patch(PatchRequest(mini_tree, mode=PatchMode.CHECK)).all_applied
    finally:
        for p in [mini_tree, *mini_tree.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def test_the_shared_tree_itself_is_never_patched(device_os_source: Path) -> None:
    # the shared tree is 0555/0444: refused even when the tests run as root
    with pytest.raises(SourceTreeError, match="read-only"):
        run_patch(PatchRequest(device_os_source))


def test_a_change_without_its_requirement_is_refused(mini_tree: Path, snapshot: Snap) -> None:
    before = snapshot(mini_tree)
    with pytest.raises(UsageError, match="user-256k needs change flash-addresses"):
        run_patch(PatchRequest(mini_tree, only=("user-256k",)))
    assert snapshot(mini_tree) == before
    run_patch(PatchRequest(mini_tree, only=("flash-addresses",)))
    run_patch(PatchRequest(mini_tree, only=("user-256k",)))  # now it is applied first
    assert _states(mini_tree)["user-256k"] is ChangeState.APPLIED


def test_selection_names_and_parts() -> None:
    assert [c.part for c in select_changes(parts=("toolchain",))] == ["toolchain"] * 2
    assert len(select_changes()) == len(CHANGES)
    assert "ota-guard" not in [c.name for c in select_changes(skip=("ota-guard",))]
    assert set(PARTS) == {c.part for c in CHANGES}
    with pytest.raises(UsageError, match="unknown change"):
        select_changes(only=("nope",))
    with pytest.raises(UsageError, match="no change selected"):
        select_changes(parts=("toolchain",), only=("ota-guard",))


def test_plan_writes_nothing_and_lists_new_texts(mini_tree: Path, snapshot: Snap) -> None:
    before = snapshot(mini_tree)
    plan = plan_patch(DeviceOsTree.open(mini_tree))
    assert snapshot(mini_tree) == before
    assert set(plan.to_apply) == {c.name for c in CHANGES}
    assert "hal/src/stm32f2xx/core_hal_stm32f2xx.c" in plan.new_texts


def test_report_json_is_stable(mini_tree: Path) -> None:
    j: Any = run_patch(PatchRequest(mini_tree)).to_json()
    assert set(j) == {"tree", "version", "mode", "changes", "written"}
    c = j["changes"][0]
    assert set(c) == {"name", "part", "spec", "summary", "state", "files", "hunks", "result"}
    assert c["hunks"][0] == {
        "number": 1,
        "path": "modules/electron/modular.mk",
        "line": 8,
        "state": "pending",
    }
