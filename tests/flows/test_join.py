"""The join on a narrated cluster (tests/flows/narrated.py): pod-level, SNAT node-level,
address reuse, and the creator found up the CronJob's owner chain."""

from __future__ import annotations

from flows.audit_facts import read_facts
from flows.join import join_flows, quality_text
from flows.leases import build_leases
from flows.read import spill_flows
from tests.flows.narrated import NODE, V5, at, flow, write


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


def test_a_flow_between_two_pods_is_logged_by_both_interfaces_and_counted_once(tmp_path):
    # The miner pod (10.0.1.77, node ip-10-0-1-5) sends 500 bytes to a pod on another node
    # (10.0.2.9). Its node's interface eni-0a logs the flow, and so does eni-0b, the
    # receiving node's, with the same five-tuple and overlapping times (a little later).
    audit, _ = write(tmp_path)
    both = [
        flow("10.0.1.77", "10.0.2.9", "10.0.1.77", "10.0.2.9", 8080, 500, at(10, 5), eni="eni-0a"),
        flow("10.0.1.77", "10.0.2.9", "10.0.1.77", "10.0.2.9", 8080, 500, at(10, 5, 20), eni="eni-0b"),
        # a second connection to the internet is logged once, and stays
        flow("10.0.1.5", "203.0.113.9", "10.0.1.5", "203.0.113.9", 3333, 9_000, at(10, 10)),
    ]
    flows = tmp_path / "both-ends.log"
    flows.write_text(V5 + "\n" + "\n".join(both) + "\n")
    leases = build_leases(read_facts([audit])[0])
    spill_flows([str(flows)], tmp_path / "both.parquet")
    attribution = join_flows(tmp_path / "both.parquet", leases)
    to_pod = attribution.conversations.set_index("remote").loc["10.0.2.9"]
    assert (to_pod["flows"], to_pod["bytes"]) == (1, 500)
    assert attribution.quality["flows"] == 2 and attribution.quality["duplicates"] == 1
    assert "1 records of flows logged at both ends counted once" in quality_text(attribution.quality, 5)


def test_with_flow_direction_the_senders_copy_is_the_one_kept(tmp_path):
    # Version 5's flow-direction says which interface sent: its record is kept, whatever the ids.
    audit, _ = write(tmp_path)
    header = V5 + " flow-direction"
    lines = [
        flow("10.0.1.77", "10.0.2.9", "10.0.1.77", "10.0.2.9", 8080, 500, at(10, 5), eni="eni-0b") + " egress",
        flow("10.0.1.77", "10.0.2.9", "10.0.1.77", "10.0.2.9", 8080, 480, at(10, 5), eni="eni-0a") + " ingress",
    ]
    flows = tmp_path / "directed.log"
    flows.write_text(header + "\n" + "\n".join(lines) + "\n")
    leases = build_leases(read_facts([audit])[0])
    spill_flows([str(flows)], tmp_path / "directed.parquet")
    kept = join_flows(tmp_path / "directed.parquet", leases).conversations
    assert kept["bytes"].tolist() == [500]
