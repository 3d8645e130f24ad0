"""A retry is not a probe: what each denied request asked for tells a controller from an intruder.

A controller whose role lacks a grant asks for the same thing every reconcile and is denied
each time; an intruder mapping a token asks for something new each time. Hour by hour both
are one denied request, so the counts alone cannot tell them apart.
"""

from __future__ import annotations

import json

import pandas as pd

from features.featurise import featurise_history
from pipelines.ingest import ingest

OPERATOR = "system:serviceaccount:backup-operator:operator"
PROBER = "system:serviceaccount:team-a:app"
NAMESPACES = ["team-b", "team-c", "kube-system", "monitoring", "ci", "default"]


def denied(who: str, hour: int, uri: str, ns: str | None) -> dict:
    """One request refused by RBAC (403), as the API server audits it."""
    when = f"2026-02-10T{hour:02d}:20:00.000000Z"
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"{who}-{hour}",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": "list",
        "user": {"username": who, "groups": ["system:serviceaccounts", "system:authenticated"]},
        "sourceIPs": ["10.0.40.7"],
        "userAgent": "app/v1.4.0 (linux/amd64) kubernetes/$Format",
        "objectRef": {"resource": "secrets", "apiVersion": "v1", **({"namespace": ns} if ns else {})},
        "responseStatus": {"code": 403},
        "requestReceivedTimestamp": when,
        "stageTimestamp": when,
        "annotations": {"authorization.k8s.io/decision": "forbid"},
    }


def test_a_denied_request_retried_every_hour_is_new_once_and_a_probe_is_new_every_hour(tmp_path):
    """The operator lists secrets cluster-wide each hour and is denied each time; the prober
    lists another namespace's secrets each hour. Both have one denied request an hour; only
    the operator's first hour asked for something it was not denied before."""
    hours = range(9, 15)
    events = [denied(OPERATOR, h, "/api/v1/secrets", None) for h in hours]
    events += [
        denied(PROBER, h, f"/api/v1/namespaces/{ns}/secrets", ns) for h, ns in zip(hours, NAMESPACES, strict=True)
    ]
    path = tmp_path / "day.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    windows, _ = featurise_history([ingest([str(path)]).events])

    operator = windows.xs(OPERATOR, level="identity")
    prober = windows.xs(PROBER, level="identity")
    assert operator["n_denied"].tolist() == prober["n_denied"].tolist() == [1.0] * 6
    assert operator["new_denied_target"].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert prober["new_denied_target"].tolist() == [1.0] * 6
    assert (operator.index == pd.DatetimeIndex([f"2026-02-10 {h:02d}:00" for h in hours], tz="UTC")).all()
