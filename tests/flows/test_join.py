"""The join on a narrated cluster (tests/flows/narrated.py): pod-level, SNAT node-level,
address reuse, and the creator found up the CronJob's owner chain."""

from __future__ import annotations

from flows.audit_facts import read_facts
from flows.join import join_flows, quality_text
from flows.leases import build_leases
from flows.read import spill_flows
from tests.flows.narrated import NODE, write


def _attributed(tmp_path):
    audit, flows = write(tmp_path)
    facts, _ = read_facts([audit])
    leases = build_leases(facts)
    spill = tmp_path / "flows.parquet"
    stats = spill_flows([flows], spill)
    return leases, join_flows(spill, leases), stats


def test_the_cronjobs_pod_is_answered_for_by_whoever_created_the_cronjob(tmp_path):
    leases, _, _ = _attributed(tmp_path)
    miner = leases.pods.set_index("pod").loc["log-rotate-2912-x7k2p"]
    assert miner["creator"] == "ci:deployer"
    assert miner["workload"] == "CronJob team-b/log-rotate"
    assert (miner["address"], miner["node"]) == ("10.0.1.77", NODE)
    # the address is freed when the pod is deleted and reused by web-1 two minutes later
    web = leases.pods.set_index("pod").loc["web-1"]
    assert web["address"] == "10.0.1.77" and web["creator"] == "alice"
    assert miner["end"] <= web["start"]


def test_flows_go_to_the_pod_by_packet_address_to_the_node_when_snated_and_nowhere_otherwise(tmp_path):
    _, attribution, stats = _attributed(tmp_path)
    rows = attribution.conversations.sort_values("first")
    got = [(r.attribution, r.direction, r.pod, r.remote, r.port) for r in rows.itertuples()]
    assert got == [
        ("pod", "egress", "log-rotate-2912-x7k2p", "10.0.2.9", 8080),
        ("node", "egress", None, "203.0.113.9", 3333),
        ("pod", "egress", "web-1", "10.0.2.9", 443),
        ("none", None, None, "10.9.9.8", 53),
    ]
    snat = rows[rows.attribution == "node"].iloc[0]
    assert snat["node"] == NODE and list(snat["candidates"]) == ["team-b/log-rotate-2912-x7k2p"]
    q = attribution.quality
    assert (q["share_pod"], q["share_node"], q["share_none"]) == (0.5, 0.25, 0.25)
    assert "50.0% of 4 flows to a pod, 25.0% to a node only" in quality_text(q, stats.version)
