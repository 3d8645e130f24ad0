"""A real kube-apiserver's week, benign change and attacks included, measured as `make eval` does.

These tests check the harness, not the detector: that every labelled scenario really is in
the log, at the synthetic time and from the address the story says, that kaad reads every
day without a reject, and that the measurement names every attacker with its ranks. How well
the detector ranks them is the measurement's output, not a test's assertion.
"""

from __future__ import annotations

import csv
import ipaddress
import json
from collections import defaultdict

import pytest

from pipelines.ingest import ingest
from tests.kube.apiserver import missing
from tests.kube.cast import identity
from tests.kube.multiday import ATTACKS, BENIGN, DAYS


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    reason = missing()
    if reason is not None:
        pytest.skip(reason)  # a failure under CI=true (tests/conftest.py)
    from tests.kube.eval_real import main

    work = tmp_path_factory.mktemp("real-week")
    result = main(work / "real.json", workdir=work)
    assert result["error"] is None, result["error"]
    days = sorted((work / "days").glob("audit-*.jsonl"))
    labels = list(csv.DictReader((work / "days" / "labels.csv").read_text().splitlines()))
    return {"json": json.loads((work / "real.json").read_text()), "days": days, "labels": labels}


def _events(days) -> dict[tuple[str, str], dict]:
    """Every event of the week by (auditID, stage)."""
    out = {}
    for path in days:
        for line in path.read_text().splitlines():
            event = json.loads(line)
            out[(event["auditID"], event["stage"])] = event
    return out


def test_every_planned_scenario_is_labelled_on_real_events(measured):
    labels, events = measured["labels"], _events(measured["days"])
    assert {row["scenario"] for row in labels} == {label.scenario for label in ATTACKS + BENIGN}
    for row in labels:
        event = events[(row["auditID"], row["stage"])]  # the labelled request is in the log
        assert event["user"]["username"] == row["identity"]
        assert event["requestReceivedTimestamp"] == row["timestamp"]
        assert row["day"] == row["timestamp"][:10]
        assert row["start"] <= row["timestamp"] <= row["end"]
        if row["scenario"].startswith("benign_"):
            assert (row["variant"], row["technique"]) == ("benign", "")
        else:
            assert row["variant"] in {"loud", "quiet"} and row["technique"].startswith("T")


def test_the_week_is_spread_over_its_days_and_the_attacks_come_on_the_last(measured):
    days, labels = measured["days"], measured["labels"]
    assert len(days) == DAYS
    for path in days:
        stamps = [json.loads(line)["stageTimestamp"] for line in path.read_text().splitlines()]
        assert stamps == sorted(stamps), f"{path.name} is not in the order an API server writes"
        assert {s[:10] for s in stamps} == {path.name[len("audit-") : -len(".jsonl")]}
    last = days[-1].name[len("audit-") : -len(".jsonl")]
    hours = defaultdict(set)
    for row in labels:
        hours[row["scenario"]].add((row["day"], int(row["timestamp"][11:13])))
    assert all(day == last for scenario in (a.scenario for a in ATTACKS) for day, _ in hours[scenario])
    # Low and slow: one denied call an hour through the working day.
    assert sorted(hour for _, hour in hours["slow_namespace_probing"]) == list(range(9, 18))
    probes = [r for r in labels if r["scenario"] == "slow_namespace_probing"]
    assert len(probes) == 9
    events = _events(days)
    assert {events[(r["auditID"], r["stage"])]["responseStatus"]["code"] for r in probes} == {403}
    # The on-call nights are at night, on two different days.
    assert {hour for _, hour in hours["benign_oncall_night"]} == {3}
    assert len({day for day, _ in hours["benign_oncall_night"]}) == 2


def test_kaad_reads_every_day_and_sees_each_client_at_its_own_address(measured):
    days = measured["days"]
    result = ingest([str(p) for p in days])
    assert result.stats.n_rejected == 0
    events = result.events
    assert events is not None
    events["day"] = events["timestamp"].dt.strftime("%Y-%m-%d")
    last = events["day"].max()

    def addresses(who: str, on_last: bool) -> set[str]:
        mine = events[(events["identity"] == identity(who)) & ((events["day"] == last) == on_last)]
        return set(mine["source_ip"])

    # People, pods and CI are seen at the X-Forwarded-For address the proxy passed on, not at loopback.
    for who in ("alice", "bob", "app", "monitor", "deployer"):
        assert all(not ipaddress.ip_address(a).is_loopback for a in addresses(who, False)), who
    # The CI runner moved on the last day: a new address, and only the new one.
    before, after = addresses("deployer", False), addresses("deployer", True)
    assert len(before) == 1 and len(after) == 1 and before != after
    # bob's stolen token came from an address bob never used.
    stolen = {r["auditID"] for r in measured["labels"] if r["scenario"] == "stolen_token_new_address"}
    theft = events[events["audit_id"].isin(stolen)]
    assert len(set(theft["source_ip"])) == 1 and not set(theft["source_ip"]) & addresses("bob", False)
    # ... with the kubectl bob uses: the user agent gives nothing away.
    own = events[(events["identity"] == "bob") & ~events["audit_id"].isin(stolen)]
    assert set(theft["user_agent"]) <= set(own["user_agent"])


def test_the_measurement_names_every_attacker_with_its_ranks(measured):
    out, labels = measured["json"], measured["labels"]
    assert set(out) == {"attackers", "benign_alerts", "n_identities", "days", "error"}
    assert out["error"] is None and out["days"] == DAYS
    last_day = {json.loads(line)["user"]["username"] for line in measured["days"][-1].read_text().splitlines()}
    assert out["n_identities"] == len(last_day)
    attacks = {(r["scenario"], r["identity"]) for r in labels if not r["scenario"].startswith("benign_")}
    assert {(a["scenario"], a["identity"]) for a in out["attackers"]} == attacks
    for attacker in out["attackers"]:
        assert set(attacker) == {"identity", "scenario", "identity_rank", "best_window_rank", "alert"}
        assert 1 <= attacker["identity_rank"] <= out["n_identities"]
        assert isinstance(attacker["alert"], bool)
    benign = {r["scenario"] for r in labels if r["scenario"].startswith("benign_")}
    for alert in out["benign_alerts"]:
        assert set(alert) == {"identity", "scenario", "day", "anomaly_score", "n_unusual"}
        assert alert["identity"] in last_day
        assert alert["scenario"] == "normal" or set(alert["scenario"].split("+")) <= benign
