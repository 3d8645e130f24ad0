"""VPC flow logs consistent with a simulated cluster's pods, and what attacks do on the network.

Pods hold VPC addresses (Amazon VPC CNI): the kubelet reports each one in a ``patch
pods/status`` logged with its body, which this module adds to the audit log. Traffic between
pods shows the pod's address in ``pkt-srcaddr`` (``srcaddr`` is the interface's primary
address); traffic to the internet is SNATed to the node's address. Normal pods talk to other
pods, to AWS services and to a few external APIs of their own, and now and then to a new one.
Attacks' workloads do what they would: a miner's pool connection (3333/4444), a CronJob that
fetches a script and mines, a reverse shell and an exfiltration from a pod someone exec'd into.

Written in the S3 text layout (header line, gzip, ``AWSLogs/<account>/vpcflowlogs/...``), in a
version 5 custom format (``flowlogs/``) and in the default version 2 format (``flowlogs-v2/``,
the degraded path: no packet-level addresses).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from scenarios import networks
from scenarios.cluster import ACCOUNT, REGION, Cluster, day_start
from scenarios.eks import Call, Identity, build_events

V5_FORMAT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id "
    "pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"
)
V2_FORMAT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)
VPC = "vpc-0a1b2c3d4e5f60718"
#: AWS service endpoints pods reach (S3, ECR, STS), by the service name flow logs give them.
AWS_SERVICES = {"52.218.152.10": "S3", "52.94.236.248": "AMAZON", "3.5.76.22": "S3", "52.119.160.5": "AMAZON"}
#: External APIs (documentation range 192.0.2.0/24): each workload uses a few of them.
EXTERNAL_APIS = tuple(f"192.0.2.{i}" for i in range(10, 40))
KUBELET_UA = "kubelet/v1.29.3 (linux/amd64) kubernetes/7f9249a"
KCM_UA = "kube-controller-manager/v1.29.3 (linux/amd64) kubernetes/7f9249a"


@dataclass
class Pod:
    namespace: str
    name: str
    address: str
    node: int
    host_network: bool = False
    workload: str = ""  # the normal destinations' key
    behaviour: str = ""  # miner, fetch-and-mine, reverse-shell...
    peer: str = ""  # the attacker's server
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class FlowPlan:
    """The network side of a simulation: pods' addresses, kept across days."""

    cluster: Cluster
    seed: int
    pods: dict[tuple, Pod] = field(default_factory=dict)
    reported: set = field(default_factory=set)

    def _node_ip(self, view: Cluster, i: int) -> str:
        return view.node_ips[i % len(view.node_ips)]

    def _eni(self, view: Cluster, i: int) -> str:
        return "eni-0" + hashlib.sha1(view.node_names[i % len(view.node_names)].encode()).hexdigest()[:16]

    def day(
        self, day: int, events: list[tuple[datetime, dict]], injected: Sequence[tuple[datetime, dict]] = ()
    ) -> tuple[list[tuple[datetime, dict]], list[dict]]:
        """The audit events to add for ``day`` (status patches, controllers' pods) and its flow records.

        ``injected`` are the attacks' events: their pods and exec sessions get attack traffic.
        """
        view = self.cluster.on(day)
        start = day_start(self.cluster.spec, day)
        rng = np.random.default_rng([self.seed, 19, day])
        added: list[tuple[datetime, dict]] = []
        for actor in view.actors:
            for i, name in enumerate(actor.pod_names):
                key = (actor.namespace or "", name)
                if key not in self.pods and actor.identity.ips:
                    node = int(hashlib.sha1(name.encode()).hexdigest(), 16) % len(view.node_ips)
                    self.pods[key] = Pod(
                        key[0], name, actor.identity.ips[i % len(actor.identity.ips)], node, workload=key[0]
                    )
                if key in self.pods and key not in self.reported:
                    added += self._report(view, self.pods[key], start + timedelta(seconds=30 + i), rng)
        added += self._churn(view, events, injected, rng)
        added += self._attack_pods(view, injected, rng)
        records = self._normal_flows(view, start, rng) + self._attack_flows(view, injected, start, rng)
        return added, records

    def _churn(self, view: Cluster, events, injected, rng) -> list[tuple[datetime, dict]]:
        """Pods the day's ordinary change binds (new address) or deletes (no more traffic)."""
        theirs = {
            (str((e.get("objectRef") or {}).get("namespace") or ""), str((e.get("objectRef") or {}).get("name") or ""))
            for _, e in injected
        }
        out: list[tuple[datetime, dict]] = []
        for t, e in sorted(events, key=lambda pair: pair[0]):
            ref = e.get("objectRef") or {}
            key = (str(ref.get("namespace") or ""), str(ref.get("name") or ""))
            if ref.get("resource") != "pods" or e.get("stage") != "ResponseComplete" or key in theirs:
                continue
            if e.get("verb") == "delete" and not ref.get("subresource") and key in self.pods:
                self.pods[key].end = self.pods[key].end or t
            elif ref.get("subresource") == "binding" and key not in self.pods:
                node = int(hashlib.sha1(key[1].encode()).hexdigest(), 16) % len(view.node_ips)
                pod = Pod(key[0], key[1], networks.pod_address(rng), node, workload=key[0], start=t)
                self.pods[key] = pod
                out += self._report(view, pod, t + timedelta(seconds=3), rng)
        return out

    def _report(self, view: Cluster, pod: Pod, t: datetime, rng) -> list[tuple[datetime, dict]]:
        """The kubelet's status patch that gives the pod its address (logged at Request level)."""
        self.reported.add((pod.namespace, pod.name))
        node = view.node_names[pod.node % len(view.node_names)]
        kubelet = Identity(
            f"system:node:{node}",
            ("system:nodes", "system:authenticated"),
            (self._node_ip(view, pod.node),),
            KUBELET_UA,
        )
        body = {
            "status": {"podIP": pod.address, "podIPs": [{"ip": pod.address}], "hostIP": self._node_ip(view, pod.node)}
        }
        return build_events(Call("patch", "pods", pod.namespace, pod.name, "status", body=body), kubelet, t, rng)

    def _controller(self, name: str) -> Identity:
        return Identity(
            f"system:serviceaccount:kube-system:{name}",
            ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
            ("127.0.0.1",),
            f"{KCM_UA}/system:serviceaccount:kube-system:{name}",
        )

    def _new_pod(self, view, ns, name, spec, t, owner, creator: Identity | None, behaviour, peer, rng, run_for):
        host = bool(spec.get("hostNetwork"))
        node = int(rng.integers(len(view.node_ips)))
        pod = Pod(
            ns,
            name,
            self._node_ip(view, node) if host else networks.pod_address(rng),
            node,
            host,
            f"{ns}/{name}",
            behaviour,
            peer,
            t,
            t + run_for,
        )
        self.pods[(ns, name)] = pod
        out = []
        if owner is not None and creator is not None:  # a controller made it: its create is logged too
            body = {
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "ownerReferences": [{"kind": owner[0], "name": owner[1], "controller": True}],
                },
                "spec": spec,
            }
            out += build_events(Call("create", "pods", ns, name, body=body), creator, t, rng)
        scheduler = Identity(
            "system:kube-scheduler",
            ("system:authenticated",),
            ("127.0.0.1",),
            "kube-scheduler/v1.29.3 (linux/amd64) kubernetes/7f9249a/scheduler",
        )
        binding = {
            "kind": "Binding",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns},
            "target": {"kind": "Node", "name": view.node_names[node]},
        }
        out += build_events(
            Call("create", "pods", ns, name, "binding", body=binding), scheduler, t + timedelta(seconds=1), rng
        )
        out += self._report(view, pod, t + timedelta(seconds=4), rng)
        return out

    def _attack_pods(self, view: Cluster, events, rng) -> list[tuple[datetime, dict]]:
        """Pods the day's attacks make: created directly, or by the controllers of their CronJob/DaemonSet."""
        out: list[tuple[datetime, dict]] = []
        for t, e in events:
            ref, body = e.get("objectRef") or {}, e.get("requestObject")
            if (
                e.get("verb") != "create"
                or e.get("stage") != "ResponseComplete"
                or not isinstance(body, dict)
                or ref.get("subresource")
            ):
                continue
            ns, name = ref.get("namespace"), ref.get("name")
            peer = networks.address(rng, "cloud")
            if ref.get("resource") == "pods" and body.get("kind") == "Pod" and (ns, name) not in self.pods:
                out += self._new_pod(
                    view, ns, name, body["spec"], t, None, None, "miner", peer, rng, timedelta(hours=6)
                )
            elif ref.get("resource") == "cronjobs":
                spec = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                server = _server_in(spec) or peer
                for run in range(3):  # */5 * * * *: the next three runs
                    at = t.replace(second=0, microsecond=0) + timedelta(minutes=5 * (run + 1) - t.minute % 5)
                    job = f"{name}-{int(at.timestamp()) // 60}"
                    jbody = {
                        "kind": "Job",
                        "apiVersion": "batch/v1",
                        "metadata": {
                            "name": job,
                            "namespace": ns,
                            "ownerReferences": [{"kind": "CronJob", "name": name, "controller": True}],
                        },
                        "spec": body["spec"]["jobTemplate"]["spec"],
                    }
                    out += build_events(
                        Call("create", "jobs", ns, job, body=jbody), self._controller("cronjob-controller"), at, rng
                    )
                    pod = f"{job}-{''.join(rng.choice(list('bcdfghjklmnpqrstvwxz2456789'), 5))}"
                    out += self._new_pod(
                        view,
                        ns,
                        pod,
                        spec,
                        at + timedelta(seconds=1),
                        ("Job", job),
                        self._controller("job-controller"),
                        "fetch-and-mine",
                        server,
                        rng,
                        timedelta(minutes=4),
                    )
            elif ref.get("resource") == "daemonsets":
                spec = body["spec"]["template"]["spec"]
                image = " ".join(c.get("image", "") for c in spec.get("containers", []))
                for i in range(len(view.node_names)):
                    pod = f"{name}-{''.join(rng.choice(list('bcdfghjklmnpqrstvwxz2456789'), 5))}"
                    made = self._new_pod(
                        view,
                        ns,
                        pod,
                        spec,
                        t + timedelta(seconds=2 + i),
                        ("DaemonSet", name),
                        self._controller("daemon-set-controller"),
                        "miner" if "xmrig" in image else "",
                        peer,
                        rng,
                        timedelta(hours=12),
                    )
                    self.pods[(ns, pod)].node = i
                    out += made
        return out

    def _attack_flows(self, view: Cluster, events, start: datetime, rng) -> list[dict]:
        records: list[dict] = []
        for pod in self.pods.values():
            if pod.behaviour and pod.start is not None and start <= pod.start < start + timedelta(days=1):
                records += self._behave(view, pod, pod.start + timedelta(seconds=10), pod.end or pod.start, rng)
        for t, e in events:  # exec into a running pod: a reverse shell, then data out
            ref = e.get("objectRef") or {}
            if ref.get("subresource") != "exec" or e.get("stage") != "ResponseComplete":
                continue
            target = self.pods.get((ref.get("namespace"), ref.get("name")))
            if target is None or target.host_network or target.namespace == "kube-system" or "-api-" not in target.name:
                continue
            peer = networks.address(np.random.default_rng([self.seed, 23, int(t.timestamp())]), "cloud")
            records += self._conversation(
                view, target, peer, 4444, t + timedelta(seconds=3), timedelta(minutes=45), 40_000, rng
            )
            records += self._conversation(
                view, target, peer, 443, t + timedelta(minutes=5), timedelta(minutes=3), 60_000_000, rng
            )
        return records

    def _behave(self, view, pod: Pod, t: datetime, end: datetime, rng) -> list[dict]:
        if pod.behaviour == "fetch-and-mine":
            return self._conversation(
                view, pod, pod.peer, 80, t, timedelta(seconds=20), 30_000, rng
            ) + self._conversation(
                view,
                pod,
                networks.address(np.random.default_rng([self.seed, 29]), "cloud"),
                4444,
                t + timedelta(seconds=30),
                end - t,
                600_000,
                rng,
            )
        if pod.behaviour == "miner":
            pool = networks.address(np.random.default_rng([self.seed, 31]), "cloud")
            return self._conversation(view, pod, pool, 3333, t, end - t, 2_000_000, rng)
        return []

    def _conversation(
        self, view, pod: Pod, remote: str, port: int, t: datetime, length: timedelta, total: int, rng
    ) -> list[dict]:
        """One outbound TCP conversation, in one record per minute of aggregation."""
        minutes = max(1, int(length.total_seconds() // 60))
        out = []
        for m in range(minutes):
            b = max(60, int(total / minutes * rng.uniform(0.7, 1.3)))
            out.append(self._record(view, pod, remote, port, t + timedelta(minutes=m), b, rng))
        return out

    def _record(self, view, pod: Pod, remote: str, port: int, t: datetime, nbytes: int, rng, action="ACCEPT") -> dict:
        node_ip = self._node_ip(view, pod.node)
        internal = remote.startswith("10.")
        source = pod.address if internal else node_ip  # SNAT to the node's primary address
        aws = AWS_SERVICES.get(remote, "-")
        s = int(t.timestamp())
        return {
            "version": 5,
            "account-id": ACCOUNT,
            "interface-id": self._eni(view, pod.node),
            "srcaddr": node_ip,
            "dstaddr": remote,
            "srcport": int(rng.integers(32768, 61000)),
            "dstport": port,
            "protocol": 6,
            "packets": max(1, nbytes // 900),
            "bytes": nbytes,
            "start": s,
            "end": s + 60,
            "action": action,
            "log-status": "OK",
            "vpc-id": VPC,
            "subnet-id": f"subnet-0{pod.node % 3:016x}",
            "instance-id": "i-0" + self._eni(view, pod.node).removeprefix("eni-0"),
            "tcp-flags": 19,
            "type": "IPv4",
            "pkt-srcaddr": source,
            "pkt-dstaddr": remote,
            "region": REGION,
            "az-id": f"usw2-az{pod.node % 3 + 1}",
            "pkt-src-aws-service": "-",
            "pkt-dst-aws-service": aws,
            "flow-direction": "egress",
            "traffic-path": 1 if internal else (7 if aws != "-" else 8),
        }

    def _normal_flows(self, view: Cluster, start: datetime, rng) -> list[dict]:
        records: list[dict] = []
        end = start + timedelta(days=1)
        steady = [
            p for p in self.pods.values() if not p.behaviour and (p.start or start) < end and (p.end or end) > start
        ]
        addresses = [p.address for p in steady]
        for pod in steady:
            own = np.random.default_rng([self.seed, 37, int(hashlib.sha1(pod.workload.encode()).hexdigest()[:8], 16)])
            apis = list(own.choice(EXTERNAL_APIS, 2, replace=False))
            if rng.random() < 0.03:  # a new integration now and then: benign newness
                apis.append(f"198.51.100.{int(rng.integers(1, 255))}")
            for hour in range(24):
                t = start + timedelta(hours=hour, minutes=float(rng.uniform(0, 50)))
                if not (pod.start or start) <= t < (pod.end or end) - timedelta(minutes=6):
                    continue  # not running yet, or gone
                records.append(
                    self._record(
                        view, pod, addresses[int(rng.integers(len(addresses)))], 8080, t, int(rng.lognormal(9, 1)), rng
                    )
                )
                if rng.random() < 0.5:
                    service = list(AWS_SERVICES)[int(rng.integers(len(AWS_SERVICES)))]
                    records.append(
                        self._record(view, pod, service, 443, t + timedelta(minutes=3), int(rng.lognormal(11, 1)), rng)
                    )
                if rng.random() < 0.4:
                    records.append(
                        self._record(
                            view,
                            pod,
                            apis[int(rng.integers(len(apis)))],
                            443,
                            t + timedelta(minutes=5),
                            int(rng.lognormal(10, 1)),
                            rng,
                        )
                    )
        return records


def _server_in(spec: dict) -> str | None:
    """The host a container's command fetches from (``wget http://HOST/...``), if any."""
    for c in spec.get("containers", []):
        for word in " ".join(c.get("command", [])).split():
            if "://" in word:
                return word.split("://", 1)[1].split("/", 1)[0]
    return None


def _lines(records: list[dict], names: str) -> bytes:
    fields = names.split()
    return ("\n".join([names] + [" ".join(str(r.get(f, "-")) for f in fields) for r in records]) + "\n").encode()


def write_day(out_dir: Path, day: datetime, records: list[dict]) -> list[Path]:
    """Write a day's records in the S3 text layout: v5 under flowlogs/, v2 under flowlogs-v2/."""
    records = sorted(records, key=lambda r: (r["start"], r["interface-id"]))
    written = []
    for folder, names in (("flowlogs", V5_FORMAT), ("flowlogs-v2", V2_FORMAT)):
        name = f"{ACCOUNT}_vpcflowlogs_{REGION}_fl-0sim_{day:%Y%m%dT0000Z}_0.log.gz"
        key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{day:%Y/%m/%d}/{name}"
        path = out_dir / folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(_lines(records, names))
        written.append(path)
    return written
