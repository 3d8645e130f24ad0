"""Every real audit-log file under ../shared/real-samples is read, and every event accounted for.

Accounted for means: kept, merged into another row of the same request (same auditID and the
same request content), or rejected with a file, a line and a reason. The expected totals are the event counts that
real-samples/SOURCES.md documents for each source.
"""

from __future__ import annotations

import json

import pytest

from events.parse import REQUEST_KEY_COLUMNS
from pipelines.ingest import ingest

# (source folder, inputs inside it, events documented in SOURCES.md, expected rejects by kind)
CASES = [
    ("falco", ["events.jsonl"], 51, {}),
    # 47 original trace files: 51 events plus fal_01_003.json, the malformed {"kind": 0}.
    ("falco", ["trace_files_k8s_audit"], 51, {"not an audit event": 1}),
    ("audit2rbac", ["demo.log"], 37, {}),
    ("audit2rbac", ["events.jsonl"], 37, {}),
    ("sysdig-aks-audit-log", ["events.jsonl"], 24, {}),
    # Event Hubs batch of 22 AKS records (log as a JSON string) + two BOM pretty-printed files.
    ("sysdig-aks-audit-log", ["samples"], 24, {}),
    ("elastic-integrations", ["events.jsonl"], 5, {}),
    # 3 plain events, 1 AKS record with log as an object, 1 with log as a string, and a GKE
    # protoPayload record that is not a Kubernetes audit event.
    ("elastic-integrations", ["test-audit.log", "test-kube-audit.log"], 5, {"unsupported format": 1}),
    ("kubernetes-event-dataset", ["events.jsonl"], 16563, {}),
]

#: Requests that carry the auditID of a different, earlier request, per source.
REUSED_IDS = {"falco": 1, "elastic-integrations": 2}


@pytest.mark.parametrize(
    ("source", "inputs", "n_documented", "rejects"), CASES, ids=[f"{c[0]}/{'+'.join(c[1])}" for c in CASES]
)
def test_every_event_is_accounted_for(real_samples, source, inputs, n_documented, rejects):
    result = ingest([str(real_samples / source / name) for name in inputs])
    stats = result.stats
    non_event_rejects = sum(rejects.values())
    assert stats.n_events + stats.n_merged + stats.n_rejected - non_event_rejects == n_documented
    assert dict(stats.rejects_by_kind) == rejects
    assert len(result.events) == stats.n_events
    requests = result.events[list(REQUEST_KEY_COLUMNS)].astype(str)
    assert not requests.duplicated().any()
    reused = result.events[result.events["audit_id_reused"]]
    # Hand-edited fixtures reuse auditIDs for different requests (see the tests below).
    assert len(reused) == stats.n_audit_id_reused == REUSED_IDS.get(source, 0)
    for reject in stats.rejects:
        assert reject.line >= 1 and reject.source.startswith(str(real_samples))


def test_falco_fixture_that_reuses_an_audit_id_keeps_both_requests(real_samples):
    """Falco's tests edited a copy of an event into another user's request without a new
    auditID: an anonymous and a named user both create namespace foo. Two requests, not one."""
    events = ingest([str(real_samples / "falco/events.jsonl")]).events
    same = events[events["audit_id"] == "841d3e6d-90d2-43df-8da4-684738bee3d5"]
    assert sorted(same["identity"]) == ["some-user", "system:anonymous"]
    assert same["audit_id_reused"].tolist() == [False, True]  # the first read is the original


def test_elastic_sanitised_audit_ids_stay_three_requests(real_samples):
    """Elastic's sanitised samples give three different requests the auditID `abcde12345`
    (and hold one of them twice): three rows, two flagged, one re-delivered copy merged."""
    result = ingest([str(real_samples / "elastic-integrations/events.jsonl")])
    same = result.events[result.events["audit_id"] == "abcde12345"]
    assert len(same) == 3 and same["audit_id_reused"].sum() == 2
    assert result.stats.n_redelivered == 1


def test_malformed_falco_fixture_is_a_located_reject(real_samples):
    stats = ingest([str(real_samples / "falco/trace_files_k8s_audit")]).stats
    (reject,) = stats.rejects
    assert reject.source.endswith("fal_01_003.json")
    assert (reject.line, reject.kind) == (1, "not an audit event")
    assert "kind" in reject.detail


def test_panther_fragments_without_timestamp_are_rejected_for_it(real_samples):
    """Panther's rule tests hold fragments; those with no timestamp at all are rejects."""
    path = real_samples / "panther-analysis/events.jsonl"
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    no_time = {
        i + 1
        for i, d in enumerate(docs)
        if not any(k in d for k in ("requestReceivedTimestamp", "stageTimestamp", "timestamp"))
    }
    result = ingest([str(path)])
    stats = result.stats
    rejected_for_time = {r.line for r in stats.rejects if "requestReceivedTimestamp" in r.detail}
    assert rejected_for_time == no_time
    assert stats.n_events + stats.n_merged + stats.n_rejected == 222


def test_legacy_top_level_timestamp_is_used(real_samples):
    """audit2rbac's 2017 events have only the v1alpha-era top-level `timestamp`."""
    events = ingest([str(real_samples / "audit2rbac/demo.log")]).events
    assert events["timestamp"].notna().all()
    assert events["timestamp"].min().year == 2017
    assert set(events["impersonated_user"].dropna()) >= {"bob", "alice"}


def test_bulk_reader_and_line_reader_agree(real_samples, monkeypatch):
    """DuckDB's bulk path and the per-line path give the same table (but for line numbers)."""
    import sources.files

    path = str(real_samples / "kubernetes-event-dataset/events.jsonl")
    monkeypatch.setattr(sources.files, "BULK_MIN_BYTES", 0)
    bulk = ingest([path]).events
    monkeypatch.setattr(sources.files, "BULK_MIN_BYTES", 1 << 62)
    lines = ingest([path]).events
    assert bulk["source_line"].isna().all() and lines["source_line"].notna().all()
    cols = [c for c in bulk.columns if c != "source_line"]
    assert bulk[cols].equals(lines[cols])
