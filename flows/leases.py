"""Pod address leases: which pod held which address when, and who is answerable for it.

A lease starts when the kubelet reports the pod's address (``patch pods/status`` with
``status.podIP``) and ends when the pod is deleted, plus the grace period before its address
is freed; an address reported for another pod closes the old lease first (the VPC CNI reuses
a freed address after a 30 s cooldown). hostNetwork pods hold no address of their own: they
share their node's. The creator is followed up the owner chain (pod -> ReplicaSet ->
Deployment, pod -> Job -> CronJob) past the controllers to the identity that asked for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd

from flows.audit_facts import Fact

#: The pod's address stays in use while it terminates: default grace period 30 s.
GRACE = timedelta(seconds=30)
_NODE_NAME_IP = re.compile(r"^ip-(\d+)-(\d+)-(\d+)-(\d+)(\.|$)")
LEASE_COLUMNS = (
    "address",
    "host_network",
    "namespace",
    "pod",
    "workload",
    "service_account",
    "node",
    "creator",
    "start",
    "end",
)


def is_controller(identity: str) -> bool:
    """A control-plane identity acting for an owner object (not answerable itself)."""
    return identity == "system:kube-controller-manager" or (
        identity.startswith("system:serviceaccount:kube-system:") and identity.endswith("-controller")
    )


def node_address_from_name(node: str | None) -> str | None:
    """EKS names nodes by their private DNS name, ``ip-10-0-1-2.<region>.compute.internal``."""
    m = _NODE_NAME_IP.match(node or "")
    return ".".join(m.groups()[:4]) if m else None


NAMED_COLUMNS = ["day", "address", "what"]


@dataclass
class Leases:
    """Pod leases, node addresses and exec sessions read from the audit log."""

    pods: pd.DataFrame
    nodes: pd.DataFrame  # node, address, instance_id
    execs: pd.DataFrame  # namespace, pod, identity, time
    n_pods_without_address: int = 0
    warnings: list[str] = field(default_factory=list)
    #: Addresses the audit log named, by UTC day: day, address, what named it (in words).
    named: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NAMED_COLUMNS))


def _resolve(identity: str, ns: str | None, owner, workloads: dict) -> tuple[str | None, str | None]:
    """(creator, workload) of an object created by ``identity`` and owned by ``owner``."""
    workload = None if owner is None else f"{owner[0]} {ns}/{owner[1]}"
    seen = set()
    while is_controller(identity) and owner is not None and (ns, *owner) not in seen:
        seen.add((ns, *owner))
        found = workloads.get((ns, *owner))
        if found is None:
            return None, workload  # created before the log starts: nobody to answer for it
        identity, owner = found
        if owner is not None:
            workload = f"{owner[0]} {ns}/{owner[1]}"
    return (None if is_controller(identity) else identity), workload


def build_leases(facts: list[Fact]) -> Leases:
    """Turn facts (in time order) into leases.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 3, 22, tzinfo=UTC)
    >>> facts = [Fact("pod-create", t, "web", "web-1", "alice", {"owner": None, "service_account": "web",
    ...                "node": None, "host_network": False}),
    ...          Fact("pod-ip", t, "web", "web-1", "system:node:n1", {"ips": ["10.0.1.7"], "host_ip": "10.0.1.5"})]
    >>> build_leases(facts).pods[["address", "pod", "creator"]].values.tolist()
    [['10.0.1.7', 'web-1', 'alice']]
    """
    workloads: dict = {}
    pods: dict = {}
    nodes: dict[str, dict] = {}
    leases: list[dict] = []
    open_by_address: dict[str, dict] = {}
    execs: list[dict] = []
    named: list[dict] = []
    for f in facts:
        key = (f.namespace, f.name)
        named += _named(f)
        if f.kind == "workload":
            workloads[(f.namespace, f.data["kind"], f.name)] = (f.identity, f.data["owner"])
        elif f.kind == "node":
            entry = nodes.setdefault(str(f.name), {"node": f.name, "address": None, "instance_id": None})
            entry["address"] = (f.data["addresses"] or [entry["address"]])[0]
            entry["instance_id"] = f.data["instance_id"] or entry["instance_id"]
        elif f.kind == "pod-create":
            creator, workload = _resolve(f.identity, f.namespace, f.data["owner"], workloads)
            pods[key] = {**pods.get(key, {}), **f.data, "creator": creator, "workload": workload}
        elif f.kind == "pod-binding":
            pods.setdefault(key, {})["node"] = f.data["node"]
        elif f.kind == "pod-exec":
            execs.append({"namespace": f.namespace, "pod": f.name, "identity": f.identity, "time": f.time})
        elif f.kind == "pod-delete":
            for address, lease in list(open_by_address.items()):
                if (lease["namespace"], lease["pod"]) == key:
                    lease["end"] = f.time + GRACE
                    del open_by_address[address]
        elif f.kind == "pod-ip":
            pod = pods.setdefault(key, {})
            node = pod.get("node") or (
                f.identity.removeprefix("system:node:") if f.identity.startswith("system:node:") else None
            )
            pod["node"] = node
            if node and f.data["host_ip"]:
                nodes.setdefault(node, {"node": node, "address": None, "instance_id": None})
                nodes[node]["address"] = nodes[node]["address"] or f.data["host_ip"]
            addresses = [f.data["host_ip"]] if pod.get("host_network") else f.data["ips"]
            for address in addresses:
                if not address:
                    continue
                held = open_by_address.get(address)
                if held is not None and (held["namespace"], held["pod"]) == key:
                    continue  # the same address reported again
                if held is not None and not held["host_network"]:
                    held["end"] = f.time  # reused: the old pod is gone
                lease = {
                    "address": address,
                    "host_network": bool(pod.get("host_network")),
                    "namespace": f.namespace,
                    "pod": f.name,
                    "workload": pod.get("workload"),
                    "service_account": pod.get("service_account"),
                    "node": node,
                    "creator": pod.get("creator"),
                    "start": f.time,
                    "end": pd.NaT,
                }
                leases.append(lease)
                if not lease["host_network"]:
                    open_by_address[address] = lease
    leased = {(lease["namespace"], lease["pod"]) for lease in leases}
    for name in {p.get("node") for p in pods.values()} | {lease["node"] for lease in leases}:
        if name and name not in nodes and (guessed := node_address_from_name(name)):
            nodes[name] = {"node": name, "address": guessed, "instance_id": None}
    frame = pd.DataFrame(leases, columns=list(LEASE_COLUMNS))
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return Leases(
        pods=frame,
        nodes=pd.DataFrame(list(nodes.values()), columns=["node", "address", "instance_id"]),
        execs=pd.DataFrame(execs, columns=["namespace", "pod", "identity", "time"]),
        n_pods_without_address=len(set(pods) - leased),
        named=_named_frame(named),
    )


def _named(f: Fact) -> list[dict]:
    """The addresses one fact names (public ones only), with what named them."""
    day = pd.Timestamp(f.time).tz_convert("UTC").normalize()
    if f.kind == "caller":
        return [{"day": day, "address": f.name, "what": f"API requests by {f.identity} came from it"}]
    addresses = f.data.get("addresses") or []
    if f.kind == "pod-exec":
        what = f"in the command {f.identity} ran in pod {f.namespace}/{f.name}"
    elif f.kind == "pod-create":
        what = f"in the spec of pod {f.namespace}/{f.name} created by {f.identity}"
    elif f.kind == "workload":
        what = f"in the spec of {f.data['kind']} {f.namespace}/{f.name} created by {f.identity}"
    else:
        return []
    return [{"day": day, "address": a, "what": what} for a in addresses]


def _named_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=NAMED_COLUMNS).drop_duplicates()
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    return frame.reset_index(drop=True)
