"""The normalised row of a few narrated events, pinned in tests/golden/."""

from __future__ import annotations

import pytest
from support import AUDIT, frame_records

from events.schema import EVENT_COLUMNS, empty_events
from pipelines.ingest import ingest


@pytest.mark.parametrize("name", ["privileged_pod", "exec", "eks_iam", "stages"])
def test_normalised_rows_match_golden(golden, name):
    events = ingest([str(AUDIT / f"{name}.jsonl")]).events
    golden(f"events_{name}", frame_records(events))


def test_privileged_pod_spec_is_read_from_the_request_body():
    (row,) = frame_records(ingest([str(AUDIT / "privileged_pod.jsonl")]).events)
    assert row["pod_privileged"] and row["pod_host_pid"] and row["pod_host_network"]
    assert row["pod_host_paths"] == ["/"]
    assert row["pod_capabilities"] == ["SYS_ADMIN", "NET_ADMIN"]
    assert row["pod_images"] == ["alpine:3.19"]
    assert row["pod_has_owner"] is False  # a bare pod: nothing owns it
    assert row["level"] == "RequestResponse"


def test_exec_command_comes_from_the_uri_query():
    (row,) = frame_records(ingest([str(AUDIT / "exec.jsonl")]).events)
    assert row["exec_command"] == "sh -c cat /etc/shadow"
    assert (row["stage"], row["response_code"]) == ("ResponseStarted", 101)
    assert row["target_namespace"] == "kube-system"


def test_eks_iam_principal_is_taken_from_user_extra():
    (row,) = frame_records(ingest([str(AUDIT / "eks_iam.jsonl")]).events)
    assert row["principal_session"] == "maria.lopez"
    assert row["principal_canonical_arn"].endswith(":role/AWSReservedSSO_PlatformAdmin_0a1b2c3d4e5f6a7b")
    assert row["principal_access_key"] == "ASIAEXAMPLEKEY00001"
    assert (row["auth_decision"], row["response_code"]) == ("forbid", 403)
    assert row["timestamp"] == "2026-03-11T03:12:09.004512+00:00"


def test_empty_input_gives_an_empty_typed_table(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    result = ingest([str(path)])
    assert list(result.events.columns) == list(EVENT_COLUMNS)
    assert result.events.dtypes.equals(empty_events().dtypes)
    assert (result.stats.n_events, result.stats.n_rejected) == (0, 0)


def test_duckdb_draws_no_progress_bar_of_its_own():
    """DuckDB prints a bar on stdout for queries over 2 s, even into a pipe or file; kaad's
    results go to stdout and its own progress to stderr, so the parsing connection has it off."""
    from events.parse import connect

    assert connect().sql("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
