"""The network baseline kept with the model and carried forward by the day state.

The narrated cluster (tests/flows/narrated.py and test_evidence.py's normal days): on the
training days, 2026-03-20 and 21, alice's web-0 calls 192.0.2.10:443 through its node. The
model keeps that as its network baseline. On the 22nd ci:deployer's CronJob pod sends 41 MB
to 203.0.113.9:3333, and the scorer is given only that day's flow logs: the earlier days'
traffic is not among its inputs, the model's baseline is what makes the pool new.
Then the baseline moves with the day state: a destination learned on the 22nd is not new on
the 23rd, unless the identity-day that brought it alerted and is held back; once that
finding is accepted, the destination is learned too.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace

import pandas as pd

from features.first_seen import FirstSeenEncoder
from features.novelty_log import NoveltyLog
from flows.baseline import NetworkBaseline
from flows.source import STATE_ATTRIBUTE, NetworkEvidence, learn_baseline
from models.day_state import DayState, Held
from tests.flows.narrated import V5, at, cluster_events, cluster_flows, flow
from tests.flows.test_evidence import _normal_days

TRAINING_END = date(2026, 3, 21)
POOL = flow("10.0.1.5", "203.0.113.9", "10.0.1.5", "203.0.113.9", 3333, 41_000_000, at(10, 10) + timedelta(days=1))


def _write(tmp_path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text(V5 + "\n" + "\n".join(lines) + "\n")
    return str(path)


def _model(tmp_path):
    """A bundle stand-in holding what kaad train --flow-logs keeps: the training days' baseline."""
    events, before = _normal_days()
    audit = tmp_path / "audit.jsonl"
    audit.write_text("".join(json.dumps(e) + "\n" for e in events + cluster_events()))
    baseline, _ = learn_baseline([_write(tmp_path, "training.log", before)], [str(audit)], until=TRAINING_END)
    return SimpleNamespace(network_baseline=baseline.as_dict()), str(audit)


def _terms(found) -> dict:
    return {(who, term) for (who, _), row in found.contributions.iterrows() for term, v in row.items() if v > 0}


def test_training_keeps_the_destinations_each_unit_used_and_their_unit_days(tmp_path):
    bundle, _ = _model(tmp_path)
    base = NetworkBaseline.from_dict(bundle.network_baseline)
    node = "node ip-10-0-1-5.us-west-2.compute.internal"
    assert base.destinations[["unit", "remote", "port"]].values.tolist() == [[node, "192.0.2.10", 443]]
    assert [str(d.date()) for d in base.days()] == ["2026-03-20", "2026-03-21"]
    assert base.summary() == (
        "network baseline: 1 external destinations (address or AWS service, and port) of 1 units over 2 days"
    )


def test_the_models_baseline_makes_the_pool_new_when_only_the_scored_days_flow_logs_are_given(tmp_path):
    bundle, audit = _model(tmp_path)
    today = _write(tmp_path, "day-22.log", cluster_flows())
    alone = NetworkEvidence([today], [audit])(None, date(2026, 3, 22))
    # without a baseline the day has no past: nothing can be new
    assert ("ci:deployer", "network:new-destination") not in _terms(alone)
    source = NetworkEvidence([today], [audit])
    source.bind(bundle)
    found = source(None, date(2026, 3, 22))
    assert ("ci:deployer", "network:new-destination") in _terms(found)
    rows = found.details["rows"]
    assert rows[rows["remote"] == "203.0.113.9"]["new_in_cluster"].all()


def _state() -> DayState:
    # the model's first-seen values of one quiet identity; the network baseline rides beside them
    encoder = FirstSeenEncoder().fit(pd.DataFrame({"identity": ["alice"], "source_ip": ["10.0.1.5"]}))
    return DayState(encoder, None, model="m", cluster="c", training_end=TRAINING_END)


def _two_days(tmp_path, audit: str) -> NetworkEvidence:
    return NetworkEvidence([_write(tmp_path, "days.log", [*cluster_flows(), POOL])], [audit])


def test_a_destination_learned_on_a_quiet_day_is_not_new_the_next_morning(tmp_path):
    bundle, audit = _model(tmp_path)
    state = _state()
    source = _two_days(tmp_path, audit)
    source.bind(bundle, state)
    first = source(None, date(2026, 3, 22))
    assert ("ci:deployer", "network:new-destination") in _terms(first)
    source.learn_day(state, date(2026, 3, 22), first)  # nobody alerted: nothing held
    assert getattr(state, STATE_ATTRIBUTE) is not None
    again = _two_days(tmp_path, audit)
    again.bind(bundle, state)
    rows = again(None, date(2026, 3, 23)).details["rows"]
    assert not rows[rows["remote"] == "203.0.113.9"]["new_in_cluster"].any()


def test_an_alerting_identity_days_destination_stays_new_until_the_finding_is_accepted(tmp_path):
    bundle, audit = _model(tmp_path)
    state = _state()
    source = _two_days(tmp_path, audit)
    source.bind(bundle, state)
    first = source(None, date(2026, 3, 22))
    # ci:deployer's day alerted: the state holds it back (as DayState.advance does)
    state.held[("ci:deployer", date(2026, 3, 22))] = Held(pd.DataFrame(), NoveltyLog().frame())
    source.learn_day(state, date(2026, 3, 22), first)
    held = _two_days(tmp_path, audit)
    held.bind(bundle, state)
    rows = held(None, date(2026, 3, 23)).details["rows"]
    assert rows[rows["remote"] == "203.0.113.9"]["new_in_cluster"].all()
    state.accept("ci:deployer", date(2026, 3, 22))
    accepted = _two_days(tmp_path, audit)
    accepted.bind(bundle, state)
    rows = accepted(None, date(2026, 3, 23)).details["rows"]
    assert not rows[rows["remote"] == "203.0.113.9"]["new_in_cluster"].any()


def test_a_destination_new_for_a_workload_but_known_in_the_cluster_is_weaker_news_of_its_own(tmp_path):
    # bob's pod team-a/api-0 (10.0.1.60) calls 198.51.100.99:443 every day; alice's web-0
    # (10.0.1.50) calls only 192.0.2.10:443, both without SNAT (pkt-srcaddr is the pod). On the
    # 22nd web-0 calls 198.51.100.99:443 as well: not new for the cluster, new for web-0, which
    # is its own term (calibrated on the unit-days of units with a past), not "never seen".
    from tests.flows.narrated import NODE, event

    events, _ = _normal_days()
    d = -timedelta(days=2)
    events += [
        event(at(8, 1) + d, "bob", "create", "pods", "team-a", "api-0", body={"kind": "Pod", "spec": {}}),
        event(
            at(8, 1, 5) + d,
            f"system:node:{NODE}",
            "patch",
            "pods",
            "team-a",
            "api-0",
            "status",
            body={"status": {"podIP": "10.0.1.60", "hostIP": "10.0.1.5"}},
        ),
    ]
    audit = tmp_path / "audit.jsonl"
    audit.write_text("".join(json.dumps(e) + "\n" for e in events))

    def call(pod_ip: str, remote: str, n: int, nbytes: int = 20_000, packets: int = 10) -> str:
        return flow(pod_ip, remote, pod_ip, remote, 443, nbytes, at(9, 15) - timedelta(days=n), packets=packets)

    lines = [call("10.0.1.60", "198.51.100.99", n) for n in (2, 1, 0)]
    lines += [call("10.0.1.50", "192.0.2.10", n) for n in (2, 1)]
    # on the 22nd web-0 splits its usual 20 kB (10 packets) between the two: its volume is as usual
    lines += [call("10.0.1.50", "192.0.2.10", 0, 10_000, 5), call("10.0.1.50", "198.51.100.99", 0, 10_000, 5)]
    found = NetworkEvidence([_write(tmp_path, "pods.log", lines)], [str(audit)])(None, date(2026, 3, 22))
    assert _terms(found) == {("alice", "network:new-for-unit")}
    day = found.contributions.index[0][1]
    assert found.reasons[("alice", day, "network:new-for-unit")] == (
        "pod team-a/web-0 created by alice sent 10 kB to 198.51.100.99:443, "
        "a destination it had not used before (known elsewhere in the cluster)"
    )
    rows = found.details["rows"]
    assert rows[rows["remote"] == "198.51.100.99"].set_index("pod")["new_for_unit"].to_dict() == {
        "api-0": False,
        "web-0": True,
    }


def test_a_destination_unused_for_longer_than_a_month_is_forgotten(tmp_path):
    # The training days last used 192.0.2.10:443 on 21 March. A monthly job's next call comes
    # at most 31 days later (plus a day's slip): on 22 April the API is still known; on the
    # 23rd it is forgotten, new again, and learning that day drops it from the table (which
    # would otherwise keep every address ever contacted).
    from flows.baseline import FORGET_AFTER

    bundle, _ = _model(tmp_path)
    base = NetworkBaseline.from_dict(bundle.network_baseline)
    api = ("192.0.2.10", 443)
    node = "node ip-10-0-1-5.us-west-2.compute.internal"
    last = pd.Timestamp("2026-03-21", tz="UTC")
    assert FORGET_AFTER == timedelta(days=32)
    assert api in base.known(last + FORGET_AFTER) and api in base.used(last + FORGET_AFTER)[node]
    later = last + FORGET_AFTER + timedelta(days=1)
    assert api not in base.known(later) and node not in base.used(later)
    nothing = pd.DataFrame({"day": pd.Series([], dtype="datetime64[ns, UTC]")})
    base.add_day(later, nothing, {})
    assert base.destinations.empty
