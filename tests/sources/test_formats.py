"""The same event reads to the same row whatever envelope it arrives in.

Each test wraps the narrated privileged-pod event (tests/data/audit/privileged_pod.jsonl) the
way a real shipper does and checks the row against the golden one.
"""

from __future__ import annotations

import gzip
import io
import json
import sys

import pytest
from support import AUDIT, frame_records

from pipelines.ingest import ingest

EVENT_LINE = (AUDIT / "privileged_pod.jsonl").read_text().strip()
EVENT = json.loads(EVENT_LINE)


def _row(paths):
    result = ingest([str(p) for p in paths])
    assert result.stats.n_rejected == 0, [str(r) for r in result.stats.rejects]
    (row,) = frame_records(result.events, drop=("source_file", "source_line"))
    return row


@pytest.fixture(scope="module")
def expected():
    return _row([AUDIT / "privileged_pod.jsonl"])


def _subscription_payload(messages, message_type="DATA_MESSAGE"):
    """A CloudWatch Logs subscription payload, as Firehose delivers it to S3."""
    return {
        "messageType": message_type,
        "owner": "111122223333",
        "logGroup": "/aws/eks/prod/cluster",
        "logStream": "kube-apiserver-audit-0a1b2c",
        "subscriptionFilters": ["kaad"],
        "logEvents": [
            {"id": str(36000000000000000000 + i), "timestamp": 1773151331501, "message": m}
            for i, m in enumerate(messages)
        ],
    }


WRAPPERS = {
    "jsonl": lambda: EVENT_LINE + "\n",
    "crlf_and_blank_lines": lambda: "\r\n" + EVENT_LINE + "\r\n\r\n",
    "bom": lambda: "\ufeff" + EVENT_LINE + "\n",
    "pretty_printed_bom": lambda: "\ufeff" + json.dumps(EVENT, indent=2) + "\n",
    "event_list": lambda: json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [EVENT]}),
    "json_array": lambda: json.dumps([EVENT]),
    "v1beta1": lambda: json.dumps({**EVENT, "apiVersion": "audit.k8s.io/v1beta1"}) + "\n",
    "no_api_version": lambda: json.dumps({k: v for k, v in EVENT.items() if k != "apiVersion"}),
    "cloudwatch_export": lambda: f"2026-03-10T14:02:11.501Z {EVENT_LINE}\n",
    # Firehose concatenates subscription payloads with no separator; a CONTROL_MESSAGE is
    # CloudWatch checking the destination and holds no data.
    "firehose_concatenated": lambda: (
        json.dumps(_subscription_payload(["CWL CONTROL MESSAGE: Checking health of destination"], "CONTROL_MESSAGE"))
        + json.dumps(_subscription_payload([EVENT_LINE]))
    ),
    "aks_log_as_string": lambda: json.dumps(
        {
            "records": [
                {
                    "time": "2026-03-10T14:02:11.5012000Z",
                    "category": "kube-audit",
                    "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
                    "properties": {"log": EVENT_LINE, "stream": "stdout", "pod": "kube-apiserver-7d9"},
                }
            ]
        }
    ),
    "aks_log_as_object": lambda: (
        json.dumps(
            {
                "category": "kube-audit-admin",
                "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
                "properties": {"log": EVENT, "containerID": "c0ffee"},
            }
        )
        + "\n"
    ),
}


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_each_wrapper_gives_the_same_row(tmp_path, expected, wrapper, compress):
    data = WRAPPERS[wrapper]().encode("utf-8")
    path = tmp_path / ("events.gz" if compress else "events.log")
    path.write_bytes(gzip.compress(data) if compress else data)
    assert _row([path]) == expected


def test_cloudwatch_control_messages_are_counted_not_rejected(tmp_path):
    path = tmp_path / "firehose"
    path.write_bytes(gzip.compress(WRAPPERS["firehose_concatenated"]().encode()))
    stats = ingest([str(path)]).stats
    assert (stats.n_events, stats.n_control_messages, stats.n_rejected) == (1, 1, 0)


def test_directories_and_globs_read_only_log_files(tmp_path, expected):
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "audit.jsonl").write_text(EVENT_LINE + "\n")
    (tmp_path / "day1" / "labels.csv").write_text("auditID,label\nx,y\n")
    assert _row([tmp_path]) == expected
    assert _row([str(tmp_path / "*" / "*.jsonl")]) == expected


def test_stdin_is_read_with_a_dash(monkeypatch, expected):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EVENT_LINE.encode())))
    assert _row(["-"]) == expected


def test_wrapped_events_keep_the_line_of_their_envelope(tmp_path):
    path = tmp_path / "mixed.log"
    path.write_text(EVENT_LINE + "\n" + WRAPPERS["aks_log_as_string"]() + "\n")
    events = ingest([str(path)]).events
    assert events["source_line"].tolist() == [1]  # same auditID twice: one row, line 1 kept
    assert ingest([str(path)]).stats.n_redelivered == 1
