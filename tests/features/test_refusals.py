"""A retry is not a probe: what each denied request asked for tells a controller from an intruder.

A controller whose role lacks a grant asks for the same thing every reconcile and is denied
each time; an intruder mapping a token asks for something new each time. Hour by hour both
are one denied request, so the counts alone cannot tell them apart.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from features.featurise import featurise_history
from models.day_state import DayState
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


def on(day: str, ip: str, event: dict) -> dict:
    """``event`` moved to ``day`` (same hour), from ``ip``."""
    when = event["stageTimestamp"].replace("2026-02-10", day)
    moved = {"auditID": event["auditID"] + day, "sourceIPs": [ip], "requestReceivedTimestamp": when}
    return event | moved | {"stageTimestamp": when}


def test_a_denial_that_alerted_is_a_retry_the_next_morning_while_its_other_news_stays_new(tmp_path):
    """Trained on the 10th, when the operator read its configmaps. On the 11th, from an address
    it never used, it is denied a cluster-wide list of secrets, and its day alerts; nobody
    accepts the finding. On the 12th it asks again from the same address: the address is still
    new (an alert is not learned by waiting), but the denied list is a retry of what already
    alerted, not a fresh probe."""
    home, hotel = "10.0.40.7", "10.0.99.1"
    read = denied(OPERATOR, 9, "/api/v1/namespaces/backup/configmaps", "backup")
    read |= {"responseStatus": {"code": 200}, "annotations": {"authorization.k8s.io/decision": "allow"}}
    read["objectRef"] = read["objectRef"] | {"resource": "configmaps"}
    denial = denied(OPERATOR, 10, "/api/v1/secrets", None)

    def windows(events: list[dict], encoder) -> pd.DataFrame:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
        return featurise_history([ingest([str(path)]).events], encoder=encoder)

    _, trained = windows([on("2026-02-10", home, read)], None)
    state = DayState(trained, model="m", cluster="c", training_end=date(2026, 2, 10))
    first, _ = windows([on("2026-02-11", hotel, denial)], state.encoder)
    assert first[["new_denied_target", "new_source_ip"]].sum().tolist() == [1.0, 1.0]
    state.advance(date(2026, 2, 11), first, pd.Series(True, index=first.index))
    assert list(state.held) == [(OPERATOR, date(2026, 2, 11))]

    again, _ = windows([on("2026-02-12", hotel, denial)], state.encoder)
    assert again["new_source_ip"].sum() == 1.0  # held: the alert is not learned by waiting
    assert again["new_denied_target"].sum() == 0.0  # a retry of what already alerted


def test_a_typo_from_home_is_a_failed_attempt_but_no_refusal_to_remember(tmp_path):
    """A developer at home mistypes a pod's name twice a day. Each 404 comes from a public address,
    so it counts as an attempt at a flagged action (public_refused), but the API server checked
    her permissions before it looked the pod up: nothing was refused, and the misspelt name, new
    every time, is not a probe."""
    typos = []
    for hour, name in ((9, "shop-api-7f9c"), (10, "shop-api-8d2e")):
        typo = denied("alice", hour, f"/api/v1/namespaces/shop/pods/{name}", "shop")
        typo |= {"sourceIPs": ["81.173.217.250"], "responseStatus": {"code": 404}}
        typo |= {"annotations": {"authorization.k8s.io/decision": "allow"}}
        typo["objectRef"] = typo["objectRef"] | {"resource": "pods", "name": name}
        typo["verb"] = "get"
        typos.append(typo)
    path = tmp_path / "day.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in typos) + "\n")
    windows, _ = featurise_history([ingest([str(path)]).events])

    assert windows["n_attempted"].tolist() == [1.0, 1.0]
    assert windows["new_refused_target"].tolist() == [0.0, 0.0]
    assert windows["new_denied_target"].tolist() == [0.0, 0.0]
