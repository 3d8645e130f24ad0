"""A small narrated cluster for the flow tests: audit events and flow log lines written by hand.

Story: on 2026-03-22 ci:deployer creates CronJob team-b/log-rotate; the cronjob controller
makes Job log-rotate-2912, the job controller its pod log-rotate-2912-x7k2p, the scheduler binds
it to node ip-10-0-1-5 and the kubelet reports its address 10.0.1.77 at 10:00:05. The pod is
deleted at 11:00; at 11:02 pod team-a/web-1 (created by alice) gets the same address.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

DAY = datetime(2026, 3, 22, tzinfo=UTC)
NODE = "ip-10-0-1-5.us-west-2.compute.internal"
KCM = "system:serviceaccount:kube-system:"
V5 = (
    "version account-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol "
    "packets bytes start end action log-status"
)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY + timedelta(hours=hh, minutes=mm, seconds=ss)


def event(t, who, verb, resource, ns=None, name=None, sub=None, body=None, code=200) -> dict:
    ref = {"resource": resource, "name": name}
    if ns:
        ref["namespace"] = ns
    if sub:
        ref["subresource"] = sub
    e = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": f"{resource}-{name}-{verb}-{sub}-{t.timestamp()}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/{resource}",
        "verb": verb,
        "user": {"username": who},
        "sourceIPs": ["10.0.1.5"],
        "objectRef": ref,
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": t.isoformat().replace("+00:00", "Z"),
        "stageTimestamp": t.isoformat().replace("+00:00", "Z"),
    }
    if body is not None:
        e["requestObject"] = body
    return e


def owned(kind: str, name: str) -> dict:
    return {"metadata": {"ownerReferences": [{"kind": kind, "name": name}]}}


def cluster_events() -> list[dict]:
    pod = "log-rotate-2912-x7k2p"
    return [
        event(at(9, 0), "ci:deployer", "create", "cronjobs", "team-b", "log-rotate", body={"kind": "CronJob"}),
        event(
            at(10, 0),
            KCM + "cronjob-controller",
            "create",
            "jobs",
            "team-b",
            "log-rotate-2912",
            body={"kind": "Job", **owned("CronJob", "log-rotate")},
        ),
        event(
            at(10, 0, 1),
            KCM + "job-controller",
            "create",
            "pods",
            "team-b",
            pod,
            body={"kind": "Pod", **owned("Job", "log-rotate-2912"), "spec": {"serviceAccountName": "default"}},
        ),
        event(
            at(10, 0, 2),
            "system:kube-scheduler",
            "create",
            "pods",
            "team-b",
            pod,
            "binding",
            body={"kind": "Binding", "target": {"kind": "Node", "name": NODE}},
        ),
        event(
            at(10, 0, 5),
            f"system:node:{NODE}",
            "patch",
            "pods",
            "team-b",
            pod,
            "status",
            body={"status": {"podIP": "10.0.1.77", "podIPs": [{"ip": "10.0.1.77"}], "hostIP": "10.0.1.5"}},
        ),
        event(at(11, 0), KCM + "job-controller", "delete", "pods", "team-b", pod),
        event(at(11, 1), "alice", "create", "pods", "team-a", "web-1", body={"kind": "Pod", "spec": {}}),
        event(
            at(11, 1, 1),
            "system:kube-scheduler",
            "create",
            "pods",
            "team-a",
            "web-1",
            "binding",
            body={"target": {"name": NODE}},
        ),
        event(
            at(11, 2),
            f"system:node:{NODE}",
            "patch",
            "pods",
            "team-a",
            "web-1",
            "status",
            body={"status": {"podIP": "10.0.1.77", "hostIP": "10.0.1.5"}},
        ),
    ]


def flow(
    src, dst, psrc, pdst, dport, nbytes, start: datetime, minutes=1, action="ACCEPT", eni="eni-0a", packets=10
) -> str:
    s = int(start.timestamp())
    end = s + 60 * minutes
    return f"5 011122223333 {eni} {src} {dst} {psrc} {pdst} 43120 {dport} 6 {packets} {nbytes} {s} {end} {action} OK"


def cluster_flows() -> list[str]:
    return [
        # the miner pod talks to another pod inside the VPC: its own address in pkt-srcaddr
        flow("10.0.1.5", "10.0.2.9", "10.0.1.77", "10.0.2.9", 8080, 500, at(10, 5)),
        # ... and to a pool on the internet: SNATed to the node's address, pod unknown
        flow("10.0.1.5", "203.0.113.9", "10.0.1.5", "203.0.113.9", 3333, 41_000_000, at(10, 10)),
        # after the address was reused, the same address is web-1's
        flow("10.0.1.5", "10.0.2.9", "10.0.1.77", "10.0.2.9", 443, 900, at(11, 30)),
        # a flow between two addresses nobody leased
        flow("10.9.9.9", "10.9.9.8", "10.9.9.9", "10.9.9.8", 53, 100, at(12, 0)),
    ]


def write(tmp_path) -> tuple[str, str]:
    audit = tmp_path / "audit.jsonl"
    audit.write_text("".join(json.dumps(e) + "\n" for e in cluster_events()))
    flows = tmp_path / "flows.log"
    flows.write_text(V5 + "\n" + "\n".join(cluster_flows()) + "\n")
    return str(audit), str(flows)
