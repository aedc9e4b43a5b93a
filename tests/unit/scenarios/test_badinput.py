"""The bad-input campaign (issue 6 section 2): every case refused, the app unchanged."""

from __future__ import annotations

import pytest

from flashroom.errors import TransportError, UsageError
from flashroom.scenarios.badinput import CATALOGUE, run_campaign


def test_catalogue_has_at_least_30_distinct_kinds_in_every_layer() -> None:
    names = [c.name for c in CATALOGUE]
    assert len(names) >= 30
    assert len(set(names)) == len(names)
    assert {c.layer for c in CATALOGUE} == {"device", "transfer", "stream", "host"}
    for required in (
        "wrong_platform_gen2",
        "wrong_function_system",
        "wrong_start_address",
        "end_beyond_region",
        "bad_crc",
        "bad_sha256",
        "truncated_half",
        "zero_length",
        "oversized",
        "system_unmet_dependency",
        "compressed_bad_header",
        "combined_broken_chain",
        "chunk_crc_mismatch",
        "chunk_index_out_of_range",
        "update_done_early",
        "second_update_begin",
    ):
        assert required in names


@pytest.mark.parametrize(
    ("platform", "profile"),
    [("electron", "extended"), ("electron", "stock"), ("photon", "stock")],
)
def test_every_case_is_refused_with_a_specific_error_and_the_app_unchanged(
    platform: str, profile: str
) -> None:
    res = run_campaign(platform=platform, profile=profile)
    hazards = {"zero_length_update"}  # documented, guarded
    if profile == "stock":  # the extended system refuses it (flashroom_in_ota_region)
        hazards.add("file_address_wraps_to_bootloader")
    bad = [c for c in res.cases if c.verdict != ("hazard" if c.name in hazards else "refused")]
    # without the streamed-OTA extension a device cannot claim a base in its Hello
    skipped = {c.name for c in bad if c.verdict == "skipped"}
    assert skipped == (set() if profile == "extended" else {"device_lies_about_base"})
    assert [c for c in bad if c.verdict != "skipped"] == []
    assert res.ok
    for c in res.cases:
        assert c.app_unchanged or c.name in hazards, c.name
        assert c.code is not None, c.name
        assert c.message, c.name


def test_device_error_codes_match_the_spec() -> None:
    res = run_campaign(
        only=[
            "wrong_platform_gen2",
            "bad_crc",
            "wrong_function_resource",
            "system_unmet_dependency",
            "oversized",
        ]
    )
    codes = {c.name: c.code for c in res.cases}
    assert codes["wrong_platform_gen2"] == -1360  # spec 3.1: PLATFORM
    assert codes["bad_crc"] == -1330  # INTEGRITY
    assert codes["wrong_function_resource"] == -1300  # no bounds
    assert codes["system_unmet_dependency"] == -1340  # DEPENDENCIES_FULL


def test_bad_sha256_is_refused_by_the_host_but_accepted_by_the_device() -> None:
    # spec 2.5 #7: Device OS never verifies the SHA-256. The campaign says so.
    (case,) = run_campaign(only=["bad_sha256"]).cases
    assert case.layer == "host"
    assert case.verdict == "refused"
    assert "sha256" in case.message
    assert case.device is not None
    assert case.device["accepted"] is True


def test_unknown_case_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no_such_case"):
        run_campaign(only=["no_such_case"])


def test_every_case_ends_with_the_error_its_catalogue_entry_names_on_extended() -> None:
    """The catalogue's ``expect`` is binding on the default device (Electron, extended): each
    case is refused for its own reason, not merely refused."""
    from flashroom.scenarios.badinput import CATALOGUE, run_campaign

    res = run_campaign("electron", "extended")
    expected = {c.name: c.expect for c in CATALOGUE}
    wrong = {
        c.name: (expected[c.name], c.code)
        for c in res.cases
        if expected[c.name] is not None and str(expected[c.name]) != str(c.code)
    }
    assert wrong == {}


def test_zero_length_update_is_a_documented_hazard_the_server_never_sends() -> None:
    """Stock Device OS rolls back to the stale copy in the OTA scratch (issue 12 #4)."""
    from flashroom.ota.server import OtaServer

    res = run_campaign(only=["zero_length_update"])
    case = res.cases[0]
    assert case.layer == "transfer" and case.verdict == "hazard"
    assert not case.app_unchanged and "user_part changed" in case.message
    assert "refuses it" in case.message and res.ok
    with pytest.raises(TransportError, match="empty"):
        OtaServer(b"")


def test_file_address_that_wraps_to_the_bootloader_is_refused_by_the_extended_system() -> None:
    """The extended profile models devos patch's flashroom_in_ota_region: -1350 at
    UpdateBegin, nothing erased (the real patched build: tests/unit/devos/test_ota_guard.py)."""
    res = run_campaign(only=["file_address_wraps_to_bootloader"], profile="extended")
    case = res.cases[0]
    assert case.verdict == "refused" and case.app_unchanged and case.boot == "application"
    assert "-1350" in case.message


def test_file_address_that_wraps_to_the_bootloader_is_reported_as_a_brick() -> None:
    """spec 11.2: 0x080c0000 + 0xfff40000 = 0x08000000 erases sector 0 (issue 12 #5)."""
    res = run_campaign(only=["file_address_wraps_to_bootloader"], profile="stock")
    case = res.cases[0]
    assert case.verdict == "hazard" and case.boot == "bricked"
    assert "bootloader changed" in case.message
    assert "file_address 0 in every UpdateBegin" in case.message


def test_stream_cases_end_with_their_documented_codes_on_the_extended_device() -> None:
    stream = [c for c in CATALOGUE if c.layer == "stream"]
    assert len(stream) >= 12
    res = run_campaign(only=[c.name for c in stream])
    want = {c.name: c.expect for c in stream}
    for c in res.cases:
        assert c.verdict == "refused", (c.name, c.message)
        assert c.code == want[c.name], (c.name, c.code, c.message)
    msgs = {c.name: c.message for c in res.cases}
    assert "stopped mid-stream" in msgs["delta_base_mismatch_midstream"]
    assert "0x080c0000" in msgs["stream_larger_than_scratch"]
    assert "before writing past it" in msgs["stream_zip_bomb"]
    assert "before writing past it" in msgs["stream_lzma_bomb"]
    assert "LZMA decode failed" in msgs["stream_lzma_corrupt"]
    assert "without its end marker" in msgs["stream_lzma_truncated"]


def test_on_stock_every_streamed_file_is_an_unknown_store() -> None:
    res = run_campaign(
        profile="stock", only=["delta_other_base", "stream_zip_bomb", "stream_lzma_bomb"]
    )
    assert [c.code for c in res.cases] == [-100, -100, -100]
    assert all(c.app_unchanged for c in res.cases)
