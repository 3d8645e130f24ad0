"""Network evidence on the narrated cluster (tests/flows/narrated.py), with one normal day first.

On 2026-03-20 alice's pod team-a/web-0 (10.0.1.50, on the same node) starts, and on that day
and the next calls its usual API, 192.0.2.10:443, SNATed to the node. On 2026-03-22 the CronJob's pod that ci:deployer's
CronJob made sends 41 MB to 203.0.113.9:3333: never seen in the cluster, a miner's port, and
far more than the node's usual egress. Only SNAT shows it, so it counts at node confidence,
for the creators of the pods new on that node at that time: ci:deployer, not alice, whose
web-0 ran there on the normal days and whose web-1 came an hour later.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import pytest

from flows.evidence import NODE_CONFIDENCE
from flows.source import NetworkEvidence
from tests.flows.narrated import NODE, V5, at, cluster_events, event, flow


def _normal_days() -> tuple[list[dict], list[str]]:
    d = -timedelta(days=2)
    events = [
        event(at(8, 0) + d, "alice", "create", "pods", "team-a", "web-0", body={"kind": "Pod", "spec": {}}),
        event(
            at(8, 0, 2) + d,
            "system:kube-scheduler",
            "create",
            "pods",
            "team-a",
            "web-0",
            "binding",
            body={"target": {"name": NODE}},
        ),
        event(
            at(8, 0, 5) + d,
            f"system:node:{NODE}",
            "patch",
            "pods",
            "team-a",
            "web-0",
            "status",
            body={"status": {"podIP": "10.0.1.50", "hostIP": "10.0.1.5"}},
        ),
    ]
    flows = [
        flow("10.0.1.5", "192.0.2.10", "10.0.1.5", "192.0.2.10", 443, 20_000, at(h, 15) - timedelta(days=n))
        for n in (2, 1)
        for h in range(9, 17)
    ]
    return events, flows


def _source(tmp_path, day_flows: list[str] | None = None) -> NetworkEvidence:
    """Two normal days, then the narrated cluster's day with ``day_flows`` (default: its own flows)."""
    before_events, before_flows = _normal_days()
    audit = tmp_path / "audit.jsonl"
    audit.write_text("".join(json.dumps(e) + "\n" for e in before_events + cluster_events()))
    if day_flows is None:
        from tests.flows.narrated import cluster_flows

        day_flows = cluster_flows()
    flows = tmp_path / "flows.log"
    flows.write_text(V5 + "\n" + "\n".join(before_flows + day_flows) + "\n")
    return NetworkEvidence([str(flows)], [str(audit)])


def test_the_cronjobs_creator_gets_network_evidence_and_alice_does_not(tmp_path):
    found = _source(tmp_path)(None, date(2026, 3, 22))
    rows = found.contributions.droplevel("day")
    assert list(rows.index) == ["ci:deployer"]
    terms = rows.loc["ci:deployer"]
    assert terms["network:new-destination"] > 0 and terms["network:egress-volume"] > 0
    # one history unit-day to be new on (the 21st, nothing new): -log((0 + 1) / (1 + 1)), halved for SNAT
    assert terms["network:new-destination"] == pytest.approx(NODE_CONFIDENCE * math.log(2))
    # two history unit-days, neither on a miner's port: log(3), halved for SNAT and again for a mere port
    assert terms["network:miner-port"] == pytest.approx(NODE_CONFIDENCE * 0.5 * math.log(3))
    reason = found.reasons[("ci:deployer", found.contributions.index[0][1], "network:new-destination")]
    assert reason == (
        f"node {NODE} (SNAT: one of 2 pods on it, among them team-b/log-rotate-2912-x7k2p created by ci:deployer) "
        "sent 41 MB to 203.0.113.9:3333, a destination never seen in the cluster"
    )


def test_a_normal_day_adds_nothing(tmp_path):
    found = _source(tmp_path)(None, date(2026, 3, 21))
    assert found.contributions.empty  # the same API, as many bytes as the day before
    assert "to a pod" in found.details["quality_text"]


def test_many_small_packets_to_a_known_destination_are_evidence_though_the_bytes_are_few(tmp_path):
    """A beacon or an interactive shell sends many small packets and few bytes.

    On the 22nd the node talks only to the API its pods always use, 192.0.2.10:443, and sends
    fewer bytes (60 kB) than on a normal day (160 kB), but in 5,000 packets where a normal day
    has 80. Nothing is new and the volume is low: only the packet count tells, and it counts for
    ci:deployer, whose CronJob pod is the one new on the node, at node confidence.
    """
    api = ("10.0.1.5", "192.0.2.10", "10.0.1.5", "192.0.2.10", 443)
    beacon = flow(*api, 60_000, at(10, 10), minutes=10, packets=5_000)
    found = _source(tmp_path, [beacon])(None, date(2026, 3, 22))
    rows = found.contributions.droplevel("day")
    assert list(rows.index) == ["ci:deployer"]
    assert {term for term, v in rows.loc["ci:deployer"].items() if v > 0} == {"network:egress-packets"}
    # two history unit-days, both with fewer packets: log(3), halved for SNAT
    assert rows.loc["ci:deployer", "network:egress-packets"] == pytest.approx(NODE_CONFIDENCE * math.log(3))
    reason = found.reasons[("ci:deployer", found.contributions.index[0][1], "network:egress-packets")]
    assert reason.endswith(
        "sent 5,000 packets out of the VPC, more than on normal days (most to 192.0.2.10:443: 5,000 packets of 60 kB)"
    )


def test_packets_add_nothing_when_the_bytes_already_said_it(tmp_path):
    """Bulk traffic raises bytes and packets together: that is one fact, counted once.

    On the 22nd the node sends its usual API three times its normal day (480 kB in 240
    packets, against 160 kB in 80): the volume is evidence, the packets add nothing to it.
    """
    api = ("10.0.1.5", "192.0.2.10", "10.0.1.5", "192.0.2.10", 443)
    bulk = flow(*api, 480_000, at(10, 10), minutes=10, packets=240)
    found = _source(tmp_path, [bulk])(None, date(2026, 3, 22))
    terms = found.contributions.droplevel("day").loc["ci:deployer"]
    assert terms["network:egress-volume"] == pytest.approx(NODE_CONFIDENCE * math.log(3))
    assert terms.get("network:egress-packets", 0.0) == 0.0
