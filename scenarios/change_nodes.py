"""Benign change of the fleet: nodes joining and leaving, DaemonSet upgrades, API server restarts.

A joining node's kubelet registers itself (Node create, a serving-certificate CSR the cluster's
own certificate controller approves, its lease, its watches) and the daemon-set-controller puts
a pod of each DaemonSet on it (kube-proxy, the VPC CNI and the EBS CSI node privileged); a
leaving node is cordoned and drained, the cloud controller deletes it, and its daemon pods
are deleted after it. These are the calls EKS logs for managed node groups and the
cluster autoscaler.
"""

from __future__ import annotations

from dataclasses import replace

from scenarios import change_bodies as bodies
from scenarios.change import Day, Step, handler
from scenarios.cluster import REGION, Actor, _suffix
from scenarios.eks import K8S_VERSION, Call, Identity
from scenarios.networks import pod_address
from scenarios.normal import _watch, informers

KUBELET_UA = f"kubelet/{K8S_VERSION} (linux/amd64) kubernetes/7f9249a"
KCM = "system:kube-controller-manager"
SCHED = "system:kube-scheduler"


def _sa(day: Day, name: str) -> Identity:
    return day.who(f"system:serviceaccount:kube-system:{name}")


def _node_ip(day: Day) -> str:
    taken = {ip for a in day.actors if a.kind == "node" for ip in a.identity.ips}
    while True:
        ip = f"10.0.{16 * int(day.rng.integers(1, 4)) + int(day.rng.integers(0, 15))}.{int(day.rng.integers(10, 250))}"
        if ip not in taken:
            return ip


def join_node(day: Day, t: float, scenario: str) -> tuple[Actor, list[Step]]:
    """A new node's first minutes: its kubelet (active from ``t``) and the calls made."""
    ip = _node_ip(day)
    name = f"ip-{ip.replace('.', '-')}.{REGION}.compute.internal"
    kubelet = Identity(f"system:node:{name}", ("system:nodes", "system:authenticated"), (ip,), KUBELET_UA)
    zone = f"{REGION}{'abc'[int(ip.split('.')[2]) // 16 - 1]}"
    csr = f"csr-{_suffix(day.rng)}"
    steps: list[Step] = [
        (t, Call("get", "nodes", None, name, code=404, allowed=True), kubelet),
        (t + 0.2, Call("create", "nodes", body=bodies.node(name, zone)), kubelet),
        (
            t + 0.4,
            Call(
                "create",
                "certificatesigningrequests",
                query="timeout=10s",
                body=bodies.csr("kubernetes.io/kubelet-serving", ["digital signature", "server auth"]),
            ),
            kubelet,
        ),
        (t + 0.6, Call("get", "leases", "kube-node-lease", name, code=404), kubelet),
        (t + 0.7, Call("create", "leases", "kube-node-lease", name), kubelet),
        (t + 1.0, Call("patch", "nodes", None, name, "status", query="timeout=10s"), kubelet),
        (t + 1.5, _watch(day.rng, "nodes", None, name), kubelet),
        (t + 1.6, _watch(day.rng, "services"), kubelet),
        (
            t + 2.0,
            Call("update", "certificatesigningrequests", None, csr, "approval"),
            day.who("eks:certificate-controller"),
        ),
        (t + 2.3, Call("update", "certificatesigningrequests", None, csr, "status"), day.who(KCM)),
        (t + 4.0, Call("patch", "nodes", None, name), day.who("eks:cloud-controller-manager")),
    ]
    for i, (ds, (ns, *_)) in enumerate(bodies.DAEMONSETS.items()):
        # Every DaemonSet puts its pod on the node. (The names of the DaemonSets the simulator
        # came to keep later are drawn aside, so a seed's days keep their draws: Day.added.)
        pod = f"{ds}-{_suffix(day.rng if ds in ('kube-proxy', 'aws-node') else day.added)}"
        s = t + 6.0 + i
        day.add_pods(ns, [pod], s, node=name)
        steps += [
            (
                s,
                Call("create", "pods", ns, body=bodies.daemon_pod(pod, ds, name)),
                _sa(day, "daemon-set-controller"),
            ),
            (s + 0.1, Call("create", "pods", ns, pod, "binding"), day.who(SCHED)),
            (s + 0.5, Call("get", "pods", ns, pod), kubelet),
            (s + 3.0, Call("patch", "pods", ns, pod, "status"), kubelet),
        ]
    steps.append((t + 9.0, Call("get", "configmaps", "kube-system", "kube-proxy"), kubelet))
    # The kubelet's routines start once it has registered; its first hour is labelled.
    return day.join(Actor(kubelet, "node"), t + 10.0, f"benign_{scenario}"), steps


def drain_node(day: Day, node: Actor, t: float, scenario: str, by: Identity) -> list[Step]:
    """Cordon, evict, stop, delete: a node leaving the cluster, from ``t``."""
    name = node.identity.username.removeprefix("system:node:")
    steps: list[Step] = [
        (t, Call("patch", "nodes", None, name, body={"spec": {"unschedulable": True}}), by),
        (t + 0.5, Call("list", "pods", None, query=f"fieldSelector=spec.nodeName%3D{name}&limit=500"), by),
    ]
    s = t + 1.0
    for app in [a for a in day.actors if a.kind == "app" and a.whole_day][: int(day.rng.integers(1, 4))]:
        # The evicted pod is recreated elsewhere with a new address: the app calls from it.
        ns = app.namespace or "default"
        old = app.pod_names[0] if app.pod_names else f"{ns}-api"
        # Its ReplicaSet recreates it, from the same template: the same name stem and image. (The
        # draws of a hash and a build, now unused, keep a seed's days as they were.)
        drawn, suffix, _ = _suffix(day.rng, 9), _suffix(day.rng), day.rng.integers(1000, 9999)
        replicaset = old.rsplit("-", 1)[0] if app.pod_names else f"{ns}-api-{drawn}"
        new = f"{replicaset}-{suffix}"
        steps += [
            (s, Call("create", "pods", ns, old, "eviction", body={"kind": "Eviction", "apiVersion": "policy/v1"}), by),
            (
                s + 0.3,
                Call("create", "pods", ns, body=bodies.app_pod(new, ns, f"{ns}-api", bodies.app_image(ns, replicaset))),
                _sa(day, "replicaset-controller"),
            ),
            (s + 0.5, Call("create", "pods", ns, new, "binding"), day.who(SCHED)),
        ]
        day.add_pods(ns, [new], s + 0.3)
        day.drop_pods(ns, [old], s)  # evicted
        ident = replace(app.identity, ips=(pod_address(day.rng), *app.identity.ips[1:]))
        day.switch(app, ident, s + 20.0, f"benign_{scenario}")
        app.pod_names = (new, *app.pod_names[1:])
        s += float(day.rng.uniform(2, 20))
    gone = s + float(day.rng.uniform(60, 240))
    day.leave(node, gone)
    doomed = day.daemon_pods(name, gone)  # the node's own, one of each DaemonSet
    steps += [
        (gone + 30.0, Call("delete", "nodes", None, name), day.who("eks:cloud-controller-manager")),
        (gone + 31.0, Call("delete", "leases", "kube-node-lease", name), _sa(day, "generic-garbage-collector")),
    ]
    # Its daemon pods live on in the API until they are deleted. (Kubernetes' pod garbage
    # collector deletes them; the cast has no pod-garbage-collector, and adding one would move
    # every later draw of the cluster's build.)
    for i, (ns, p) in enumerate(doomed):
        day.drop_pods(ns, [p], gone + 40.0 + i)
        steps.append((gone + 40.0 + i, Call("delete", "pods", ns, p), _sa(day, "generic-garbage-collector")))
    return steps


def _fleet(day: Day) -> list[Actor]:
    return [a for a in day.actors if a.kind == "node" and a.active[1] == 86400.0]


@handler("node_replaced", weekends=True)
def node_replaced(day: Day) -> None:
    old = day.pick("node")
    if old is None:
        return
    t = day.at(0, 22)
    new, steps = join_node(day, t, "node_replaced")
    # Managed node groups bring the new node up first, then drain the old one.
    steps += drain_node(day, old, t + float(day.rng.uniform(120, 600)), "node_replaced", day.who("eks:node-manager"))
    day.record("node_replaced", new.identity.username, steps)


@handler("node_added", weekends=True)
def node_added(day: Day) -> None:
    if len(_fleet(day)) >= day.spec.nodes + max(3, day.spec.nodes // 4):
        return  # the node group's maximum size
    new, steps = join_node(day, day.at(6, 18), "node_added")
    day.record("node_added", new.identity.username, steps)


@handler("node_removed", weekends=True)
def node_removed(day: Day) -> None:
    if len(_fleet(day)) <= max(1, day.spec.nodes - max(2, day.spec.nodes // 5)):
        return  # the node group's minimum size
    node = day.pick("node")
    if node is not None:
        steps = drain_node(day, node, day.at(19, 29), "node_removed", _sa(day, "cluster-autoscaler"))
        day.record("node_removed", node.identity.username, steps)


@handler("daemonset_upgrade")
def daemonset_upgrade(day: Day) -> None:
    """An add-on upgrade rolls a privileged DaemonSet over every node, one node at a time."""
    ds = list(bodies.DAEMONSETS)[int(day.rng.integers(len(bodies.DAEMONSETS)))]
    ns, image, _, _ = bodies.DAEMONSETS[ds]
    upgrades = [c for ch in day.changes if ch.scenario == "benign_daemonset_upgrade" for _, c, _ in ch.steps]
    if any((c.resource, c.name) == ("daemonsets", ds) for c in upgrades):
        return  # an add-on is upgraded once a day at most: each pod is replaced once
    version = f"{image}-{int(day.rng.integers(2, 9))}"
    by = day.who("ci-deployer") if ds == "fluent-bit" else day.who("eks:addon-manager")
    t = day.at(9, 16)
    steps: list[Step] = [
        (t, Call("get", "daemonsets", ns, ds), by),
        (
            t + 0.5,
            Call("patch", "daemonsets", ns, ds, query="fieldManager=eks", body=bodies.daemonset(ds, version)),
            by,
        ),
    ]
    s = t + 2.0
    dsc = _sa(day, "daemon-set-controller")
    # The nodes up as the upgrade starts: a node that joins later today gets the pod its join
    # makes, and a node drained later today keeps its pod for the drain to delete.
    fleet = [node for node in _fleet(day) if node.active[0] <= s]
    for node in fleet:
        name = node.identity.username.removeprefix("system:node:")
        pod = f"{ds}-{_suffix(day.rng)}"
        # The node's own pod as it is replaced (a node without one gets only the new pod).
        olds = [p for where, p in day.daemon_pods(name, s) if where == ns and p.startswith(f"{ds}-")]
        day.drop_pods(ns, olds, s)
        day.add_pods(ns, [pod], s + 5.0, node=name)
        steps += [(s, Call("delete", "pods", ns, old), dsc) for old in olds]
        steps += [
            (s + 5.0, Call("create", "pods", ns, body=bodies.daemon_pod(pod, ds, name, version)), dsc),
            (s + 5.1, Call("create", "pods", ns, pod, "binding"), day.who(SCHED)),
            (s + 6.0, Call("update", "daemonsets", ns, ds, "status"), dsc),
        ]
        s += float(day.rng.uniform(15, 40))
    day.record("daemonset_upgrade", by.username, steps)
    sa = next((a for a in day.actors if a.kind == "node-daemon" and a.identity.username.endswith(f":{ds}")), None)
    if sa is not None and sa.whole_day:
        day.switch(
            sa, replace(sa.identity, user_agent=bump(sa.identity.user_agent, day)), s, "benign_daemonset_upgrade"
        )


@handler("apiserver_restart", weekends=True)
def apiserver_restart(day: Day) -> None:
    """Every informer lists its kind again and re-opens its watch when its API server goes away.

    Who relists is who keeps informers: kube-controller-manager's shared informers (not its
    controllers' service accounts), the scheduler, kubelets, node daemons, add-ons and
    operators, each for the kinds it watches (:func:`scenarios.normal.informers`).
    """
    t = day.at(0, 22)
    steps: list[Step] = []
    for actor in day.view().actors:
        if actor.active != (0.0, 86400.0) or actor.identity.username == "system:apiserver":
            continue
        if actor.kind not in {"node", "node-daemon", "controller", "control-plane", "addon", "operator"}:
            continue
        s = t + float(day.rng.exponential(8.0))
        for watch in informers(actor):
            selector = "&".join(p for p in watch.query.split("&") if p.startswith("fieldSelector="))
            query = (selector + "&" if selector else "") + "limit=500&resourceVersion=0"
            ua = watch.user_agent
            steps.append((s, Call("list", watch.resource, watch.namespace, query=query, user_agent=ua), actor.identity))
            steps.append((s + 0.3, replace(watch, user_agent=ua), actor.identity))
            s += float(day.rng.uniform(0.01, 0.2))
        if actor.kind in {"controller", "control-plane"} and day.rng.random() < 0.5:
            # Discovery of aggregated APIs answers 503 until their endpoints are back.
            steps.append(
                (s, Call("get", path="/apis/metrics.k8s.io/v1beta1", query="timeout=32s", code=503), actor.identity)
            )
    day.record("apiserver_restart", "system:apiserver", steps)


def bump(ua: str, day: Day) -> str:
    """The user agent of the next release: the first version's last number goes up."""
    import re

    match = re.search(r"(\d+)\.(\d+)\.(\d+)", ua)
    if match is None:
        return ua + f" rev{int(day.rng.integers(2, 9))}"
    major, minor, patch = (int(x) for x in match.groups())
    new = f"{major}.{minor}.{patch + int(day.rng.integers(1, 3))}"
    return ua[: match.start()] + new + ua[match.end() :]
