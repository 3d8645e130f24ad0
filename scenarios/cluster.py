"""The cast of a simulated EKS cluster: who exists, from where they call, and when.

A :class:`Cluster` is built once from a :class:`ClusterSpec` and a seed. Its actors carry
routines; :mod:`scenarios.normal` turns routines into a day of API calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from scenarios.change_bodies import DAEMONSETS
from scenarios.change_rates import ChangeRates
from scenarios.eks import K8S_VERSION, Call, Identity

#: Seconds in a simulated day; an actor's ``active`` span is measured in them.
DAY_S = 86400.0

ACCOUNT = "111122223333"
REGION = "us-west-2"
#: Documentation and benchmark ranges only (RFC 5737, RFC 2544): offices, VPN and CI NAT.
OFFICE_NETS = {"berlin": "198.51.100", "austin": "198.51.100", "remote": "203.0.113"}
CI_NAT_IPS = ("198.18.0.10", "198.18.0.11", "198.18.0.12")
APP_NAMES = (
    "payments",
    "orders",
    "catalog",
    "checkout",
    "search",
    "accounts",
    "shipping",
    "inventory",
    "pricing",
    "reviews",
    "notifications",
    "billing",
)
PEOPLE = (
    "maria.lopez",
    "jonas.weber",
    "aiko.tanaka",
    "samuel.okafor",
    "priya.nair",
    "lucas.martin",
    "fatima.haddad",
    "tom.becker",
    "elena.rossi",
    "david.kim",
    "nora.berg",
    "ivan.petrov",
)


@dataclass(frozen=True)
class ClusterSpec:
    """Size and shape of a simulated cluster.

    ``rate_scale`` thins the periodic control-plane traffic (lease renewals every 2-10 s,
    health probes) that dominates a real cluster's volume; 1.0 is the real rate. ``change``
    sets how often the cluster changes for benign reasons (:mod:`scenarios.change`);
    ``ChangeRates.none()`` freezes the cast as built.
    """

    name: str = "prod"
    nodes: int = 4
    app_namespaces: int = 6
    humans: int = 6
    start: date = date(2026, 3, 2)  # a Monday
    rate_scale: float = 0.1
    change: ChangeRates = field(default_factory=ChangeRates)


Episode = Callable[[np.random.Generator, datetime], list[tuple[float, Call]]]


@dataclass
class Routine:
    """Something an actor does ``rate`` times an hour, shaped by ``profile`` over the day.

    ``timer``: done again as soon as the last episode ends (its calls' ``duration_s``), all
    day, instead of at random times: a reflector re-opening its watch when it times out.
    ``rate`` is then the mean count an hour, which only sets where in the day the timer starts.
    """

    rate: float
    episode: Episode
    profile: str = "flat"  # flat, business, nightly, deploy
    hour: int = 0  # for nightly
    timer: bool = False


@dataclass(frozen=True)
class Novelty:
    """Routine calls made between ``since`` and ``until`` (seconds into the day) by an actor
    that a benign change just created or altered; they are labelled ``scenario``."""

    scenario: str
    since: float
    until: float


@dataclass
class Actor:
    """One identity and its routines. ``kind`` is only a label for documentation.

    The fields after ``pod_names`` describe one day of a changing cluster (see
    :meth:`Cluster.on`): the span of the day the actor exists in, the identity it had
    before a change at ``switch_at``, and ``share``, the part of its routines' rate it
    carries (a node daemon on one node of many).
    """

    identity: Identity
    kind: str
    routines: list[Routine] = field(default_factory=list)
    tz_offset: int = 0  # hours from UTC, for people
    namespace: str | None = None  # a service account's own namespace
    pod_names: tuple[str, ...] = ()
    active: tuple[float, float] = (0.0, DAY_S)
    was: Identity | None = None
    switch_at: float = 0.0
    novel: Novelty | None = None
    share: float = 1.0

    @property
    def whole_day(self) -> bool:
        """Present from midnight to midnight, unchanged."""
        return self.active == (0.0, DAY_S) and self.was is None and self.novel is None


@dataclass
class Cluster:
    """The actors of one simulated cluster plus the facts attacks need to look native."""

    spec: ClusterSpec
    actors: list[Actor]
    namespaces: list[str]
    app_namespaces: list[str]
    node_names: list[str]
    node_ips: list[str]
    pods: dict[str, list[str]]  # namespace -> pod names
    seed: int = 0
    gone: frozenset[str] = frozenset()  # retired namespaces: never reused for a new team
    #: (namespace, pod) -> the node a DaemonSet's pod runs on (one pod of each DaemonSet a node).
    pod_nodes: dict[tuple[str, str], str] = field(default_factory=dict)
    world: Any = field(default=None, repr=False, compare=False)  # scenarios.change.World, lazily
    #: In a day's view, the span of the day (seconds) of each namespace created or deleted that
    #: day; any other namespace exists all day.
    namespace_spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: The same for the pods created or deleted that day, by (namespace, pod).
    pod_spans: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    day_start: datetime | None = None  # of a day's view: an episode begun before midnight ends after it

    def exists(self, namespace: str, s: float) -> bool:
        """Whether ``namespace`` exists ``s`` seconds into the view's day."""
        return within_span(self.namespace_spans.get(namespace, (0.0, DAY_S)), s)

    def seconds(self, t: datetime) -> float:
        """Seconds from the start of the view's day to ``t`` (past 86400 after its midnight).

        A time before the day (:func:`scenarios.normal.informers` samples routines at a fixed
        date) counts as its first second.
        """
        if self.day_start is None:
            return seconds_into_day(t)
        return max(0.0, (t - self.day_start).total_seconds())

    def app_namespaces_at(self, t: datetime, lasting: float = 0.0) -> list[str]:
        """The application namespaces that exist from ``t`` for ``lasting`` seconds (an episode's
        calls): none before its create, none after its delete."""
        if not self.namespace_spans:
            return self.app_namespaces
        s = self.seconds(t)
        return [ns for ns in self.app_namespaces if self.exists(ns, s) and self.exists(ns, s + lasting)]

    def pods_at(self, namespace: str, t: datetime) -> list[str]:
        """The pods of ``namespace`` that exist at ``t``: none before its create, none after its delete."""
        if not self.namespace_spans and not self.pod_spans:
            return self.pods.get(namespace, [])
        s = self.seconds(t)
        if not self.exists(namespace, s):
            return []
        return [
            p for p in self.pods.get(namespace, []) if within_span(self.pod_spans.get((namespace, p), (0.0, DAY_S)), s)
        ]

    def on(self, day: int) -> Cluster:
        """The cluster as it lives on ``day``: every actor that acts that day, with routines.

        Benign change (nodes replaced, teams onboarded, people hired...) happens in the order
        of the days, deterministic for the cluster's seed; see :mod:`scenarios.change`.
        """
        from scenarios.change import World

        if self.world is None:
            self.world = World(self)
        return self.world.plan(day).view

    def changes_on(self, day: int) -> list[Any]:
        """The benign changes (``scenarios.change.Change``) made on ``day``."""
        self.on(day)
        return self.world.plan(day).changes

    def actors_on(self, day: int) -> list[Actor]:
        """Actors present all of ``day`` (perhaps with a new address or key): an attack's victims."""
        return [a for a in self.on(day).actors if a.active == (0.0, DAY_S)]

    def as_of(self, day: int) -> Cluster:
        """``on(day)`` with only :meth:`actors_on` as its cast, and the day's namespace and pod lives."""
        view = self.on(day)
        return Cluster(
            view.spec,
            self.actors_on(day),
            view.namespaces,
            view.app_namespaces,
            view.node_names,
            view.node_ips,
            view.pods,
            self.seed,
            namespace_spans=view.namespace_spans,
            pod_spans=view.pod_spans,
            day_start=view.day_start,
        )

    def actor(self, username: str) -> Actor:
        for a in self.actors:
            if a.identity.username == username:
                return a
        raise KeyError(username)

    def actors_of(self, kind: str) -> list[Actor]:
        return [a for a in self.actors if a.kind == kind]


def within_span(span: tuple[float, float], s: float) -> bool:
    """Whether second ``s`` of a day falls in ``span``; one that lasts to midnight lasts past it."""
    lo, hi = span
    return lo <= s < hi or (hi == DAY_S and s >= DAY_S)


def seconds_into_day(t: datetime) -> float:
    """Seconds from the UTC midnight that starts ``t``'s day (a simulated day starts at midnight)."""
    return (t - datetime.combine(t.date(), time())).total_seconds()


def _suffix(rng: np.random.Generator, n: int = 5) -> str:
    return "".join(rng.choice(list("bcdfghjklmnpqrstvwxz2456789"), n))


def sa_identity(namespace: str, name: str, ips: tuple[str, ...], ua: str, rng: np.random.Generator) -> Identity:
    from scenarios.eks import audit_id

    return Identity(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        ips,
        ua,
        uid=audit_id(rng),
    )


def iam_extra(role: str, session: str, rng: np.random.Generator) -> dict[str, list[str]]:
    key = "ASIA" + "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 16))
    principal = "AROA" + "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 17))
    return {
        "accessKeyId": [key],
        "arn": [f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"],
        "canonicalArn": [f"arn:aws:iam::{ACCOUNT}:role/{role}"],
        "principalId": [principal],
        "sessionName": [session],
        "sigs.k8s.io/aws-iam-authenticator/principalId": [principal],
    }


def client_go_ua(binary: str, version: str = "v0.0.0", commit: str = "$Format") -> str:
    return f"{binary}/{version} (linux/amd64) kubernetes/{commit}"


def build_cluster(spec: ClusterSpec, seed: int) -> Cluster:
    """Create the cast of a cluster, deterministic for ``seed``."""
    from scenarios.normal import add_routines

    rng = np.random.default_rng([seed, 1])
    apps = list(APP_NAMES[: spec.app_namespaces])
    system_ns = [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "argocd",
        "monitoring",
        "cert-manager",
        "ingress-nginx",
        "ops",
    ]
    namespaces = system_ns + apps
    subnets = [1 + i % 3 for i in range(spec.nodes)]
    node_ips = [f"10.0.{16 * s + int(rng.integers(0, 15))}.{int(rng.integers(10, 250))}" for s in subnets]
    node_names = [f"ip-{ip.replace('.', '-')}.{REGION}.compute.internal" for ip in node_ips]

    def pod_ip() -> str:
        return f"10.0.{16 * int(rng.integers(1, 4)) + int(rng.integers(0, 15))}.{int(rng.integers(2, 254))}"

    pods: dict[str, list[str]] = {}
    pod_nodes: dict[tuple[str, str], str] = {}
    actors: list[Actor] = []
    kubelet_ua = f"kubelet/{K8S_VERSION} (linux/amd64) kubernetes/7f9249a"
    for name, ip in zip(node_names, node_ips, strict=True):
        actors.append(
            Actor(Identity(f"system:node:{name}", ("system:nodes", "system:authenticated"), (ip,), kubelet_ua), "node")
        )
    cp = ("127.0.0.1",)
    kcm_ua = f"kube-controller-manager/{K8S_VERSION} (linux/amd64) kubernetes/7f9249a"
    actors += [
        Actor(
            Identity("system:kube-controller-manager", ("system:authenticated",), cp, kcm_ua + "/leader-election"),
            "control-plane",
        ),
        Actor(
            Identity(
                "system:kube-scheduler",
                ("system:authenticated",),
                cp,
                f"kube-scheduler/{K8S_VERSION} (linux/amd64) kubernetes/7f9249a/leader-election",
            ),
            "control-plane",
        ),
        Actor(
            Identity(
                "system:apiserver",
                ("system:authenticated", "system:masters"),
                ("::1",),
                f"kube-apiserver/{K8S_VERSION} (linux/amd64) kubernetes/7f9249a",
                uid="2f1c3a4e-9b1d-4f43-a1b0-4cdd9ab0e6b1",
            ),
            "control-plane",
        ),
    ]
    for controller in (
        "replicaset-controller",
        "deployment-controller",
        "endpointslice-controller",
        "generic-garbage-collector",
        "job-controller",
        "cronjob-controller",
        "daemon-set-controller",
        "namespace-controller",
    ):
        actors.append(
            Actor(
                sa_identity(
                    "kube-system", controller, cp, f"{kcm_ua}/system:serviceaccount:kube-system:{controller}", rng
                ),
                "controller",
                namespace="kube-system",
            )
        )
    eks_ips = tuple(f"10.0.{int(rng.integers(100, 120))}.{int(rng.integers(2, 250))}" for _ in range(2))
    for eks_user, ua in (
        ("eks:certificate-controller", client_go_ua("eks-certificates-controller")),
        ("eks:node-manager", client_go_ua("eks-node-manager")),
        (
            "eks:cloud-controller-manager",
            f"aws-cloud-controller-manager/{K8S_VERSION} (linux/amd64) kubernetes/7f9249a",
        ),
        ("eks:addon-manager", client_go_ua("eks-addon-manager")),
        ("eks:k8s-metrics", "eks-k8s-metrics/v0.0.0"),
    ):
        actors.append(Actor(Identity(eks_user, ("system:authenticated",), eks_ips, ua), "eks"))
    # Node daemons: one pod per node, calling from the node's IP (hostNetwork).
    for ns, sa, ua in (
        ("kube-system", "kube-proxy", f"kube-proxy/{K8S_VERSION} (linux/amd64) kubernetes/7f9249a"),
        ("kube-system", "aws-node", client_go_ua("aws-vpc-cni", "v1.18.1")),
    ):
        daemons = [f"{sa}-{_suffix(rng)}" for _ in node_names]
        pods.setdefault(ns, []).extend(daemons)
        pod_nodes.update(((ns, pod), node) for pod, node in zip(daemons, node_names, strict=True))
        actors.append(Actor(sa_identity(ns, sa, tuple(node_ips), ua, rng), "node-daemon", namespace=ns))
    addons = [
        ("kube-system", "coredns", "coredns/1.11.1 (linux/amd64) kubernetes/$Format"),
        (
            "argocd",
            "argocd-application-controller",
            client_go_ua("argocd-application-controller", "v2.10.4", "f5d0a5a"),
        ),
        ("argocd", "argocd-server", client_go_ua("argocd-server", "v2.10.4", "f5d0a5a")),
        ("monitoring", "prometheus-k8s", "Prometheus/2.51.1"),
        ("cert-manager", "cert-manager", client_go_ua("cert-manager-controller", "v1.14.4", "7f83a5a")),
        ("kube-system", "cluster-autoscaler", client_go_ua("cluster-autoscaler", "v1.29.0")),
        ("ingress-nginx", "ingress-nginx", client_go_ua("nginx-ingress-controller", "v1.10.0", "71f78d4")),
        ("ops", "db-backup", "python-kubernetes/29.0.0"),
    ]
    for ns, sa, ua in addons:
        ips = tuple(pod_ip() for _ in range(2))
        names = tuple(f"{sa}-{_suffix(rng, 9)}-{_suffix(rng)}" for _ in range(2))
        pods.setdefault(ns, []).extend(names)
        actors.append(Actor(sa_identity(ns, sa, ips, ua, rng), "addon", namespace=ns, pod_names=names))
    for app in apps:
        ips = tuple(pod_ip() for _ in range(3))
        names = tuple(f"{app}-api-{_suffix(rng, 9)}-{_suffix(rng)}" for _ in range(3))
        pods.setdefault(app, []).extend(names)
        actors.append(
            Actor(
                sa_identity(app, f"{app}-api", ips, client_go_ua(f"{app}-api"), rng),
                "app",
                namespace=app,
                pod_names=names,
            )
        )
    # People: developers share the aws-auth-mapped username "developer"; platform admins come
    # in through EKS access entries, whose username is the assumed-role session ARN.
    people = list(PEOPLE[: spec.humans])
    offices = list(OFFICE_NETS)
    for i, person in enumerate(people):
        office = offices[i % len(offices)]
        tz = {"berlin": 1, "austin": -6, "remote": 0}[office]
        ips = (f"{OFFICE_NETS[office]}.{20 + 7 * i}", f"203.0.113.{40 + i}")
        ua = KUBECTL_UAS[i % len(KUBECTL_UAS)]
        if i % 3 == 2:
            role = "AWSReservedSSO_PlatformAdmin_5c2a8e1f0b9d7a64"
            username = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{person}"
            who = Identity(
                username,
                ("platform-admins", "system:authenticated"),
                ips,
                ua,
                uid=f"aws-iam-authenticator:{ACCOUNT}:AROA{i:017d}",
                extra=iam_extra(role, person, rng),
            )
            actors.append(Actor(who, "admin", tz_offset=tz))
        else:
            role = "AWSReservedSSO_Developer_8d41b0c2e7f5a913"
            who = Identity(
                "developer",
                ("developers", "system:authenticated"),
                ips,
                ua,
                uid=f"aws-iam-authenticator:{ACCOUNT}:AROA{i:017d}",
                extra=iam_extra(role, person, rng),
            )
            actors.append(Actor(who, "developer", tz_offset=tz, namespace=apps[i % len(apps)]))
    ci_role = "github-actions-deploy"
    actors.append(
        Actor(
            Identity(
                "ci-deployer",
                ("ci-deployers", "system:authenticated"),
                CI_NAT_IPS,
                "Helm/3.14.2",
                uid=f"aws-iam-authenticator:{ACCOUNT}:AROACIDEPLOY0000001",
                extra=iam_extra(ci_role, "GitHubActions", rng),
            ),
            "ci",
        )
    )
    actors.append(
        Actor(
            Identity(
                "system:anonymous",
                ("system:unauthenticated",),
                tuple(f"10.0.{16 * s}.{5 + s}" for s in (1, 2, 3)),
                "kube-probe/1.29",
            ),
            "anonymous",
        )
    )
    # The other DaemonSets' pods, one on each node. (Drawn last: the draws before them, and so
    # a seed's cluster, stay as they were before the simulator kept these pods.)
    for ds, (ns, *_) in DAEMONSETS.items():
        if ds in ("kube-proxy", "aws-node"):
            continue
        daemons = [f"{ds}-{_suffix(rng)}" for _ in node_names]
        pods.setdefault(ns, []).extend(daemons)
        pod_nodes.update(((ns, pod), node) for pod, node in zip(daemons, node_names, strict=True))
    cluster = Cluster(spec, actors, namespaces, apps, node_names, node_ips, pods, seed, pod_nodes=pod_nodes)
    add_routines(cluster, rng)
    return cluster


KUBECTL_UAS = (
    "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625",
    "kubectl/v1.30.2 (linux/amd64) kubernetes/39683505",
    "kubectl/v1.29.3 (darwin/amd64) kubernetes/6813625",
)


def day_start(spec: ClusterSpec, day: int) -> datetime:
    """UTC midnight of simulated day ``day`` (0-based)."""
    d = spec.start + timedelta(days=day)
    return datetime(d.year, d.month, d.day)
