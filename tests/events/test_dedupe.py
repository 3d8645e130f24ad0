"""One row per request: the best stage wins, re-deliveries collapse, across batch boundaries."""

from __future__ import annotations

import pytest
from support import AUDIT

from pipelines.ingest import ingest


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 1500, 64])
def test_stages_merge_into_one_row_per_request(chunk_bytes):
    """stages.jsonl: a watch at three stages, a get read twice, an attach that never completed."""
    result = ingest([str(AUDIT / "stages.jsonl")], chunk_bytes=chunk_bytes)
    events = result.events.set_index("audit_id")
    assert len(events) == 3
    assert events.loc["11111111-aaaa-4bbb-8ccc-000000000001", "stage"] == "ResponseComplete"
    assert events.loc["11111111-aaaa-4bbb-8ccc-000000000001", "source_line"] == 4
    assert events.loc["33333333-aaaa-4bbb-8ccc-000000000003", "stage"] == "ResponseStarted"
    assert (result.stats.n_stage_merged, result.stats.n_redelivered) == (2, 1)


def test_the_same_file_read_twice_collapses_to_one_copy():
    path = str(AUDIT / "stages.jsonl")
    once = ingest([path]).stats
    twice = ingest([path, path]).stats
    assert twice.n_events == once.n_events
    # Every line of the second copy (six) is merged; the three ResponseComplete rows are
    # exact re-deliveries.
    assert twice.n_merged == once.n_merged + 6
    assert twice.n_redelivered >= once.n_redelivered + 3


def test_panic_loses_to_response_started_but_beats_request_received(tmp_path):
    base = (
        '{"kind":"Event","auditID":"a-1","verb":"get","user":{"username":"u"},'
        '"requestReceivedTimestamp":"2026-01-01T00:00:00Z","stage":"%s"}\n'
    )
    path = tmp_path / "stages.jsonl"
    path.write_text(base % "RequestReceived" + base % "Panic")
    assert ingest([str(path)]).events["stage"].tolist() == ["Panic"]
    path.write_text(base % "Panic" + base % "ResponseStarted" + base % "RequestReceived")
    assert ingest([str(path)]).events["stage"].tolist() == ["ResponseStarted"]


def test_waiting_rows_from_the_bulk_and_the_line_path_merge(monkeypatch):
    """A watch still open in one file (read by DuckDB) and an exec in another (read by lines)."""
    import sources.files

    monkeypatch.setattr(sources.files, "BULK_MIN_BYTES", 2000)  # stages.jsonl bulk, exec.jsonl lines
    result = ingest([str(AUDIT / "stages.jsonl"), str(AUDIT / "exec.jsonl")])
    assert result.events["audit_id"].is_unique and len(result.events) == 4
