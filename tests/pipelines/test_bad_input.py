"""Bad input is rejected with its file, line and reason; the rest of the batch is still read."""

from __future__ import annotations

import gzip
import json

from support import AUDIT

from pipelines.ingest import ingest

GOOD = (AUDIT / "privileged_pod.jsonl").read_text().strip()
GOOD_EVENT = json.loads(GOOD)
EXEC = (AUDIT / "exec.jsonl").read_text().strip()


def _event(**changes) -> str:
    return json.dumps({**GOOD_EVENT, "auditID": changes.pop("auditID", "x-" + str(len(changes))), **changes})


def _read(tmp_path, text: str, name: str = "audit.log"):
    path = tmp_path / name
    path.write_text(text)
    return ingest([str(path)])


def test_each_kind_of_bad_line_is_located_and_the_rest_kept(tmp_path):
    no_user = {k: v for k, v in GOOD_EVENT.items() if k != "user"}
    no_time = {k: v for k, v in GOOD_EVENT.items() if "imestamp" not in k}
    lines = [
        GOOD,  # 1 kept
        "this is not json {",  # 2
        '{"kind": 0}',  # 3 FAL-01-003
        json.dumps({**no_user, "auditID": "no-user"}),  # 4
        json.dumps({**no_time, "auditID": "no-time"}),  # 5
        _event(auditID="bad-time", requestReceivedTimestamp="yesterday", stageTimestamp="soon"),
        "",  # 7 blank: ignored
        EXEC,  # 8 kept
        "[1, 2]",  # 9 array of non-events
    ]
    result = _read(tmp_path, "\n".join(lines) + "\n")
    found = {r.line: (r.kind, r.detail) for r in result.stats.rejects}
    assert sorted(r.line for r in result.stats.rejects) == [2, 3, 4, 5, 6, 9, 9]
    assert found[2][0] == "not JSON"
    assert found[3] == ("not an audit event", 'kind="0"')
    assert found[4] == ("missing field", "user.username")
    assert found[5] == ("missing field", "requestReceivedTimestamp (nor stageTimestamp, timestamp, requestTimestamp)")
    assert found[6] == ("bad timestamp", '"yesterday"')
    assert found[9][0] == "not an audit event"
    assert result.stats.n_events == 2
    assert all(r.source.endswith("audit.log") for r in result.stats.rejects)
    assert str(result.stats.rejects[0]).startswith(str(tmp_path / "audit.log") + ":")


def test_truncated_gzip_keeps_what_came_before(tmp_path):
    lines = [_event(auditID=f"id-{i}") for i in range(200)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    result = ingest([str(path)])
    kinds = result.stats.rejects_by_kind
    assert kinds["truncated gzip"] == 1
    assert 0 < result.stats.n_events < 200
    (problem,) = [r for r in result.stats.rejects if r.kind == "truncated gzip"]
    assert problem.line > result.stats.n_events  # reported after the last line read


def test_garbage_with_a_gz_name_is_a_reject_not_a_crash(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage-garbage-garbage")
    result = ingest([str(path)])
    assert result.stats.n_events == 0
    assert result.stats.rejects_by_kind["unreadable gzip"] == 1


def test_event_cut_at_the_cloudwatch_limit_is_kept_with_its_core_fields(tmp_path):
    """CloudWatch caps events at 256 KiB: the body and timestamps are lost, not who/what."""
    big = _event(auditID="big-1", requestObject={**GOOD_EVENT["requestObject"], "padding": "A" * 300_000})
    cut = big[:262_144]
    payload = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/eks/prod/cluster",
        "logEvents": [{"id": "1", "timestamp": 1773151331501, "message": cut}],
    }
    path = tmp_path / "firehose.gz"
    path.write_bytes(gzip.compress(json.dumps(payload).encode()))
    result = ingest([str(path)])
    assert result.stats.n_rejected == 0
    (row,) = result.events.to_dict("records")
    assert row["truncated"] is True
    assert (row["audit_id"], row["verb"], row["target_name"]) == ("big-1", "create", "debug-node")
    assert row["identity"] == "system:serviceaccount:payments:api"
    assert row["timestamp"].isoformat() == "2026-03-10T14:02:11.501000+00:00"  # CloudWatch's


def test_cut_line_without_a_timestamp_left_is_a_truncation_reject(tmp_path):
    cut = _event(auditID="cut-1")[:400]
    result = _read(tmp_path, GOOD + "\n" + cut + "\n")
    (reject,) = result.stats.rejects
    assert (reject.line, reject.kind) == (2, "truncated JSON")
    assert "requestReceivedTimestamp" in reject.detail
    assert result.stats.n_events == 1


def test_cut_export_line_takes_the_export_timestamp(tmp_path):
    cut = _event(auditID="cut-2")[:600]
    result = _read(tmp_path, f"2026-03-10T14:02:11.501Z {cut}\n")
    (row,) = result.events.to_dict("records")
    assert row["truncated"] and row["audit_id"] == "cut-2"


def test_invalid_utf8_does_not_stop_the_file(tmp_path):
    path = tmp_path / "latin1.log"
    path.write_bytes(b"\xff\xfe not text\n" + GOOD.encode() + b"\n")
    result = ingest([str(path)])
    assert result.stats.n_events == 1
    assert [r.line for r in result.stats.rejects] == [1]


def test_bad_line_inside_a_large_file_is_found_by_line(tmp_path, monkeypatch):
    """The bulk reader hands over to the line reader at the first fault, losing nothing."""
    import sources.files

    monkeypatch.setattr(sources.files, "BULK_MIN_BYTES", 0)
    lines = [_event(auditID=f"id-{i}") for i in range(3000)]
    lines[2500] = "{not json"
    lines[1000] = ""  # a blank line before the fault shifts line numbers
    result = _read(tmp_path, "\n".join(lines) + "\n")
    (reject,) = result.stats.rejects
    assert (reject.line, reject.kind) == (2501, "not JSON")
    assert result.stats.n_events == 2998
    assert result.events["audit_id"].is_unique


def test_failed_authentication_is_kept_as_unauthenticated(tmp_path):
    """The API server audits a 401 with an empty user; the attempt itself is the signal."""
    event = {
        **GOOD_EVENT,
        "auditID": "authn-1",
        "user": {},
        "responseStatus": {"code": 401},
        "requestURI": "/api/v1/secrets",
        "verb": "list",
    }
    result = _read(tmp_path, json.dumps(event) + "\n")
    assert result.events["identity"].tolist() == ["system:unauthenticated"]
