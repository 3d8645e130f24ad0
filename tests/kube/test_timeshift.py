"""How a log written in seconds becomes days: each event moves with the burst it was part of."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime

from tests.kube.timeshift import Label, Mark, spread


def _event(audit_id: str, who: str, received: str, stage_ms: int = 3) -> str:
    stage = received[:-7] + f"{int(received[-7:-1]) + stage_ms * 1000:06d}Z"
    return json.dumps(
        {
            "auditID": audit_id,
            "stage": "ResponseComplete",
            "user": {"username": who},
            "requestReceivedTimestamp": received,
            "stageTimestamp": stage,
        }
    )


def _real(stamp: str) -> float:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


def test_events_move_with_their_burst_and_only_the_bursts_identity_is_labelled(tmp_path):
    log = tmp_path / "audit.log"
    # Real time: setup at 12:00:00, alice's burst from 12:00:01, the app's from 12:00:02.
    log.write_text(
        "\n".join(
            [
                _event("setup", "admin", "2026-12-01T12:00:00.500000Z"),
                _event("a1", "alice", "2026-12-01T12:00:01.100000Z"),
                _event("bg", "system:apiserver", "2026-12-01T12:00:01.200000Z"),
                _event("p1", "system:serviceaccount:team-a:app", "2026-12-01T12:00:02.050000Z"),
                _event("late", "alice", "2026-12-01T12:00:09.000000Z"),
            ]
        )
        + "\n"
    )
    probe = Label("slow_namespace_probing", "T1613", "quiet")
    marks = [
        Mark(_real("2026-12-01T12:00:00"), None),  # setup: before the first day
        Mark(_real("2026-12-01T12:00:01"), datetime(2026, 2, 3, 10, 30), "alice"),
        Mark(_real("2026-12-01T12:00:02"), datetime(2026, 2, 4, 9, 15), "system:serviceaccount:team-a:app", probe),
        Mark(_real("2026-12-01T12:00:03"), None),  # the end
    ]
    files, labels = spread(log, marks, tmp_path / "days")
    assert [f.name for f in files] == ["audit-2026-02-03.jsonl", "audit-2026-02-04.jsonl"]
    first = [json.loads(line) for line in files[0].read_text().splitlines()]
    # alice's call and the API server's own request in the same burst both move to 10:30,
    # keeping their 0.1 s offsets and their 3 ms durations.
    assert [(e["auditID"], e["requestReceivedTimestamp"], e["stageTimestamp"]) for e in first] == [
        ("a1", "2026-02-03T10:30:00.100000Z", "2026-02-03T10:30:00.103000Z"),
        ("bg", "2026-02-03T10:30:00.200000Z", "2026-02-03T10:30:00.203000Z"),
    ]
    rows = list(csv.DictReader(labels.read_text().splitlines()))
    assert [(r["auditID"], r["scenario"], r["identity"], r["day"], r["timestamp"]) for r in rows] == [
        (
            "p1",
            "slow_namespace_probing",
            "system:serviceaccount:team-a:app",
            "2026-02-04",
            "2026-02-04T09:15:00.050000Z",
        )
    ]
    assert (rows[0]["technique"], rows[0]["variant"], rows[0]["start"], rows[0]["end"]) == (
        "T1613",
        "quiet",
        "2026-02-04T09:15:00.050000Z",
        "2026-02-04T09:15:00.050000Z",
    )
    # Setup before the first day and the request after the end mark are not written.
    written = {json.loads(line)["auditID"] for f in files for line in f.read_text().splitlines()}
    assert written == {"a1", "bg", "p1"}
