"""A cluster's normal life: what each actor does, how often, and at what time of day.

Rates are per hour at ``rate_scale = 1`` and come from how the components behave: a kubelet
renews its node lease every 10 s, leader-elected controllers every 2 s, Prometheus scrapes
every 30 s, people work business hours in their own time zone with a weekly rhythm.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from scenarios.cluster import Actor, Cluster, Routine
from scenarios.eks import Call

WATCH_Q = "allowWatchBookmarks=true&resourceVersion={rv}&timeout={t}m{s}s&timeoutSeconds={ts}&watch=true"
#: People's and CI's working hours, local time (start inclusive, end exclusive); attacks that
#: blend in use the same hours.
WORKING_HOURS = (9, 18)
#: Seconds from the first to the last call of a ``helm upgrade`` (:func:`helm_release`: six calls 1.5 s apart).
HELM_S = 7.5
DISCOVERY = [Call("get", path="/api", query="timeout=32s"), Call("get", path="/apis", query="timeout=32s")]


def _watch(rng: np.random.Generator, resource: str, namespace: str | None = None, name: str | None = None) -> Call:
    # client-go's reflector asks for a timeout of minWatchTimeout (5 min) times 1 to 2, at random.
    ts = int(rng.integers(300, 600))
    query = WATCH_Q.format(rv=int(rng.integers(1_000_000, 9_000_000)), t=ts // 60, s=ts % 60, ts=ts)
    if name:
        query = f"fieldSelector=metadata.name%3D{name}&" + query
    return Call("watch", resource, namespace, query=query, duration_s=float(ts))


def _one(*calls: Call):
    """An episode of fixed calls issued together (a few ms apart)."""

    def episode(rng, t):
        return [(i * 0.004, c) for i, c in enumerate(calls)]

    return episode


def _pick(options):
    """An episode that issues one of ``options`` (each a call factory of the episode's ``rng`` and time)."""

    def episode(rng, t):
        return [(0.0, options[int(rng.integers(len(options)))](rng, t))]

    return episode


def _choose(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _lease(ns: str, name: str, reason: str = ""):
    return _one(Call("update", "leases", ns, name, reason=reason))


def _binding(cluster: Cluster, t: datetime) -> Call:
    """The scheduler binds a pod of the first application namespace that exists at ``t``."""
    ns = cluster.app_namespaces_at(t)[0]
    pods = cluster.pods_at(ns, t)
    return Call("create", "pods", ns, pods[0] if pods else f"{ns}-api", "binding")


def _rbac(kind: str, name: str, subject: str) -> str:
    return f'RBAC: allowed by {kind} "{name}" of ClusterRole "{name}" to {subject}'


def _node_routines(cluster: Cluster, actor: Actor, node: str) -> list[Routine]:
    # The Node authorizer, not RBAC, allows kubelets: the reason annotation stays empty.

    def pods_here(t: datetime) -> list[str]:
        return [p for ns in cluster.pods for p in cluster.pods_at(ns, t)]

    def secrets_here(t: datetime) -> list[str]:
        # A kubelet reads the secrets its pods mount: only where there are pods.
        apps = cluster.app_namespaces_at(t)
        return [ns for ns in apps if cluster.pods_at(ns, t)] or apps

    def get_pod(rng: np.random.Generator, t: datetime) -> Call:
        pods = pods_here(t)
        return Call("get", "pods", "kube-system", _choose(rng, pods) if pods else "coredns")

    def watch_own_pods(rng, t):
        query = f"fieldSelector=spec.nodeName%3D{node}&" + WATCH_Q.format(
            rv=int(rng.integers(1_000_000, 9_000_000)), t=8, s=2, ts=482
        )
        return [(0.0, Call("watch", "pods", None, query=query, duration_s=482.0))]

    return [
        Routine(360, _lease("kube-node-lease", node)),
        Routine(12, _one(Call("patch", "nodes", None, node, "status", query="timeout=10s"))),
        Routine(6, watch_own_pods),
        Routine(
            4,
            _pick(
                [
                    lambda rng, t: Call("get", "configmaps", "kube-system", "kube-root-ca.crt"),
                    lambda rng, t: Call("get", "secrets", _choose(rng, secrets_here(t)), "db-credentials"),
                    get_pod,
                ]
            ),
        ),
        Routine(2, _one(Call("create", "events", "default"))),
        Routine(
            0.5,
            _one(
                Call(
                    "create",
                    "certificatesigningrequests",
                    query="timeout=10s",
                    body={
                        "kind": "CertificateSigningRequest",
                        "apiVersion": "certificates.k8s.io/v1",
                        "metadata": {"generateName": "csr-"},
                        "spec": {
                            "signerName": "kubernetes.io/kubelet-serving",
                            "usages": ["digital signature", "server auth"],
                        },
                    },
                )
            ),
        ),
    ]


#: The kinds kube-controller-manager's shared informers list and watch. They run under the
#: controller manager's own credentials with the user agent suffix ``/shared-informers``; its
#: per-controller service accounts write and discover but keep no informers of their own. The
#: kubeadm dataset in ../shared/real-samples shows exactly this: after a start,
#: system:kube-controller-manager lists and watches every kind, the controllers' accounts none.
KCM_INFORMERS = (
    "pods",
    "nodes",
    "services",
    "endpoints",
    "endpointslices",
    "replicasets",
    "deployments",
    "daemonsets",
    "statefulsets",
    "jobs",
    "cronjobs",
    "namespaces",
    "serviceaccounts",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "leases",
    "networkpolicies",
    "ingresses",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
    "certificatesigningrequests",
)


def informers(actor: Actor) -> list[Call]:
    """The watches ``actor`` keeps open, one per informer, found by sampling its routines.

    An informer lists its kind once, then watches it, re-opening the watch every 5-10 minutes;
    when its API server goes away it lists again (scenarios.change_nodes.apiserver_restart).
    A private generator keeps the sampling from moving the simulation's own random stream.
    """
    rng = np.random.default_rng(0)
    at = datetime(2026, 1, 1)
    found: dict[tuple, Call] = {}
    for routine in actor.routines:
        for _ in range(128):
            for _, call in routine.episode(rng, at):
                if call.verb == "watch":
                    selector = [p for p in call.query.split("&") if p.startswith("fieldSelector=")]
                    found.setdefault((call.resource, call.namespace, tuple(selector), call.user_agent), call)
    return list(found.values())


def _informer(kind: str, user_agent: str):
    """An episode of one reflector: a watch of ``kind``, open until the API server times it out."""
    return lambda rng, t: [(0.0, replace(_watch(rng, kind), user_agent=user_agent))]


def _control_plane(cluster: Cluster) -> None:
    kcm = cluster.actor("system:kube-controller-manager")
    shared = kcm.identity.user_agent.rsplit("/", 1)[0] + "/shared-informers"
    kcm.routines = [
        # One reflector per kind, re-opening its watch when it times out after 5-10 minutes
        # (_watch): every hour holds every kind 6-12 times. Below simulate.PERIODIC_RATE, as a kubelet's
        # watch of its pods, rate_scale leaves it whole: thinned, an hour would miss some kinds.
        *(Routine(8, _informer(kind, shared), timer=True) for kind in KCM_INFORMERS),
        Routine(
            1800,
            _lease(
                "kube-system",
                "kube-controller-manager",
                _rbac("ClusterRoleBinding", "system:kube-controller-manager", 'User "system:kube-controller-manager"'),
            ),
        ),
        Routine(6, _one(*DISCOVERY)),
    ]
    sched = cluster.actor("system:kube-scheduler")
    sched.routines = [
        Routine(
            1800,
            _lease(
                "kube-system",
                "kube-scheduler",
                _rbac("ClusterRoleBinding", "system:kube-scheduler", 'User "system:kube-scheduler"'),
            ),
        ),
        Routine(3, lambda rng, t: [(0.0, _watch(rng, "pods"))]),
        Routine(2, lambda rng, t: [(0.0, _binding(cluster, t))]),
    ]
    api = cluster.actor("system:apiserver")
    api.routines = [
        Routine(
            360, lambda rng, t: [(0.0, Call("update", "leases", "kube-system", "apiserver-kx3vbx5fbhk4oelk6t3xqrw5ai"))]
        ),
        Routine(60, _one(Call("get", path="/apis/metrics.k8s.io/v1beta1", query="timeout=32s"))),
    ]

    def ns_pick(rng: np.random.Generator, t: datetime) -> str:
        return _choose(rng, cluster.app_namespaces_at(t))

    for ctl in cluster.actors_of("controller"):
        name = ctl.identity.username.rsplit(":", 1)[1]
        verbs = {
            "replicaset-controller": [
                lambda rng, t: Call("create", "pods", ns_pick(rng, t)),
                lambda rng, t: Call("update", "replicasets", ns_pick(rng, t), "app", "status"),
            ],
            "deployment-controller": [lambda rng, t: Call("update", "deployments", ns_pick(rng, t), "app", "status")],
            "endpointslice-controller": [lambda rng, t: Call("update", "endpointslices", ns_pick(rng, t), "app-x7k2p")],
            "generic-garbage-collector": [
                lambda rng, t: Call("get", path="/apis", query="timeout=32s"),
                lambda rng, t: Call(
                    "get",
                    path="/apis/metrics.k8s.io/v1beta1",
                    query="timeout=32s",
                    code=503 if rng.random() < 0.05 else 0,
                ),
            ],
            "job-controller": [lambda rng, t: Call("update", "jobs", "ops", "db-backup-28512000", "status")],
            "cronjob-controller": [lambda rng, t: Call("list", "jobs", None, query="limit=500")],
            "daemon-set-controller": [lambda rng, t: Call("update", "daemonsets", "kube-system", "aws-node", "status")],
            "namespace-controller": [lambda rng, t: Call("get", path="/apis", query="timeout=32s")],
        }[name]
        rate = {
            "endpointslice-controller": 120,
            "generic-garbage-collector": 60,
            "replicaset-controller": 20,
            "deployment-controller": 10,
        }.get(name, 4)
        ctl.routines = [Routine(rate, _pick(verbs))]
    for eks in cluster.actors_of("eks"):
        user = eks.identity.username
        if user == "eks:certificate-controller":
            eks.routines = [
                Routine(360, _lease("kube-system", "eks-certificates-controller")),
                Routine(
                    0.5 * len(cluster.node_names),
                    _one(Call("update", "certificatesigningrequests", None, "csr-x8k2d", "approval")),
                ),
            ]
        elif user == "eks:cloud-controller-manager":
            eks.routines = [
                Routine(360, _lease("kube-system", "cloud-controller-manager")),
                Routine(12, _one(Call("list", "nodes", query="limit=500"))),
            ]
        elif user == "eks:node-manager":
            eks.routines = [Routine(6, _one(Call("get", "configmaps", "kube-system", "aws-auth")))]
        elif user == "eks:addon-manager":
            eks.routines = [
                Routine(
                    1,
                    _pick(
                        [
                            lambda rng, t: Call("get", "daemonsets", "kube-system", "aws-node"),
                            lambda rng, t: Call(
                                "patch", "deployments", "kube-system", "coredns", query="fieldManager=eks"
                            ),
                        ]
                    ),
                )
            ]
        else:
            eks.routines = [Routine(60, _one(Call("get", path="/metrics")))]


def _addon_routines(cluster: Cluster, actor: Actor) -> list[Routine]:
    sa = actor.identity.username.rsplit(":", 1)[1]
    ns = actor.namespace
    assert ns is not None, "add-ons are service accounts, each in its namespace"
    apps = cluster.app_namespaces_at
    if sa == "kube-proxy":
        return [
            Routine(
                12, lambda rng, t: [(0.0, _watch(rng, ["endpointslices", "services", "nodes"][int(rng.integers(3))]))]
            )
        ]
    if sa == "aws-node":
        return [
            Routine(
                60,
                _pick(
                    [
                        lambda rng, t: Call("get", "pods", ns, _choose(rng, cluster.pods_at(ns, t))),
                        lambda rng, t: Call("list", "nodes", query="limit=500"),
                        lambda rng, t: Call("get", "eniconfigs", None, "us-west-2a"),
                    ]
                ),
            )
        ]
    if sa == "coredns":
        return [
            Routine(
                18,
                lambda rng, t: [(0.0, _watch(rng, ["endpointslices", "services", "namespaces"][int(rng.integers(3))]))],
            )
        ]
    if sa == "argocd-application-controller":
        kinds = ["deployments", "services", "configmaps", "ingresses", "statefulsets", "applications"]
        return [
            Routine(20, lambda rng, t: [(0.0, Call("list", kinds[int(rng.integers(len(kinds)))], query="limit=500"))]),
            Routine(10, lambda rng, t: [(0.0, _watch(rng, kinds[int(rng.integers(len(kinds)))]))]),
            Routine(
                2,
                _pick(
                    [
                        lambda rng, t: Call("get", "secrets", "argocd", "repo-creds-github"),
                        lambda rng, t: Call("get", "configmaps", "argocd", "argocd-cm"),
                    ]
                ),
            ),
            Routine(
                0.4,
                lambda rng, t: [
                    (
                        0.0,
                        Call(
                            "patch",
                            "deployments",
                            _choose(rng, apps(t)),
                            f"{_choose(rng, apps(t))}-api",
                            query="fieldManager=argocd-controller",
                        ),
                    )
                ],
                profile="deploy",
            ),
        ]
    if sa == "argocd-server":
        return [
            Routine(
                6,
                _pick(
                    [
                        lambda rng, t: Call("get", "applications", "argocd", _choose(rng, apps(t))),
                        lambda rng, t: Call("list", "applications", "argocd"),
                    ]
                ),
                profile="business",
            )
        ]
    if sa == "prometheus-k8s":
        return [
            Routine(120, _one(Call("get", path="/metrics"))),
            Routine(
                8,
                lambda rng, t: [
                    (
                        0.0,
                        _watch(rng, ["pods", "services", "endpoints", "endpointslices", "nodes"][int(rng.integers(5))]),
                    )
                ],
            ),
            Routine(4, _one(Call("list", "nodes", query="limit=500"))),
        ]
    if sa == "cert-manager":
        return [
            Routine(180, _lease("kube-system", "cert-manager-controller")),
            Routine(4, lambda rng, t: [(0.0, _watch(rng, "certificates"))]),
            Routine(
                0.25,
                lambda rng, t: (
                    lambda app: [
                        (0.0, Call("get", "secrets", app, f"{app}-tls")),
                        (0.05, Call("update", "secrets", app, f"{app}-tls")),
                    ]
                )(_choose(rng, apps(t))),
            ),
        ]
    if sa == "cluster-autoscaler":
        return [
            Routine(360, _one(Call("list", "pods", query="limit=500"))),
            Routine(360, _one(Call("update", "configmaps", "kube-system", "cluster-autoscaler-status"))),
            Routine(180, _lease("kube-system", "cluster-autoscaler")),
        ]
    if sa == "ingress-nginx":
        return [
            Routine(120, _lease("ingress-nginx", "ingress-nginx-leader")),
            Routine(
                6,
                lambda rng, t: [
                    (
                        0.0,
                        _watch(
                            rng,
                            ["ingresses", "services", "endpointslices", "secrets", "configmaps"][int(rng.integers(5))],
                        ),
                    )
                ],
            ),
        ]
    if sa == "db-backup":
        return [
            Routine(
                1,
                _one(
                    Call("get", "secrets", "ops", "db-credentials"),
                    Call("get", "configmaps", "ops", "backup-config"),
                    Call(
                        "create",
                        "configmaps",
                        "ops",
                        body={"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"generateName": "backup-report-"}},
                    ),
                ),
                profile="nightly",
                hour=2,
            )
        ]
    return []


def _app_routines(cluster: Cluster, actor: Actor) -> list[Routine]:
    ns = actor.namespace
    assert ns is not None, "apps are service accounts, each in its namespace"
    app = ns
    return [
        Routine(
            4,
            _pick(
                [
                    lambda rng, t: Call("get", "configmaps", ns, f"{app}-config"),
                    lambda rng, t: Call("get", "secrets", ns, "db-credentials"),
                    lambda rng, t: Call("get", "secrets", ns, f"{app}-tls"),
                ]
            ),
        ),
        Routine(60, _lease(ns, f"{app}-api-leader")),
        Routine(1, lambda rng, t: [(0.0, _watch(rng, "configmaps", ns, f"{app}-config"))]),
    ]


def _operator_routines(actor: Actor) -> list[Routine]:
    """An operator installed by Helm: its leader lease, watches on its own kinds, status updates."""
    ns = actor.namespace
    assert ns is not None, "operators are service accounts, each in its namespace"
    name = actor.identity.username.rsplit(":", 1)[1]
    kinds = list(OPERATOR_KINDS.get(name, ("configmaps",)))
    return [
        Routine(120, _lease(ns, f"{name}-leader")),
        Routine(6, lambda rng, t: [(0.0, _watch(rng, kinds[int(rng.integers(len(kinds)))]))]),
        Routine(2, lambda rng, t: [(0.0, Call("list", "pods", ns, query="limit=500"))]),
        Routine(
            3,
            _one(Call("update", kinds[0], ns, f"{name}-default", "status")),
        ),
    ]


#: The custom resources each operator that CI may install watches (scenarios.change_ci).
OPERATOR_KINDS: dict[str, tuple[str, ...]] = {
    "external-secrets": ("externalsecrets", "secretstores", "clustersecretstores"),
    "keda-operator": ("scaledobjects", "scaledjobs", "triggerauthentications"),
    "kyverno": ("policies", "clusterpolicies", "policyreports"),
    "aws-load-balancer-controller": ("targetgroupbindings", "ingressclassparams"),
    "velero": ("backups", "schedules", "backupstoragelocations"),
    "strimzi-cluster-operator": ("kafkas", "kafkatopics", "kafkausers"),
}


def _kubectl_session(cluster: Cluster, actor: Actor):
    """A person runs a few kubectl commands in a row: discovery first, then the commands."""
    admin = actor.kind == "admin"
    home = actor.namespace or "default"

    def command(rng: np.random.Generator, t: datetime) -> list[Call]:
        apps = cluster.app_namespaces_at(t)
        # A home created later today (a new hire's team) or already deleted: work elsewhere for now.
        ns = home if not admin and cluster.exists(home, cluster.seconds(t)) else _choose(rng, apps)
        pods = cluster.pods_at(ns, t) or ["x"]
        pod = pods[int(rng.integers(len(pods)))]
        r = rng.random()
        if r < 0.30:
            return [Call("list", "pods", ns, query="limit=500")]
        if r < 0.45:
            return [
                Call("get", "pods", ns, pod),
                Call("list", "events", ns, query=f"fieldSelector=involvedObject.name%3D{pod}"),
            ]
        if r < 0.60:
            return [Call("get", "pods", ns, pod, "log", query="container=api&follow=false")]
        if r < 0.70:
            return [Call("list", "deployments", ns, query="limit=500")]
        if r < 0.76:
            return [Call("patch", "deployments", ns, f"{ns}-api", query="fieldManager=kubectl-rollout")]
        if r < 0.80:
            return [
                Call(
                    "create",
                    "selfsubjectaccessreviews",
                    body={
                        "kind": "SelfSubjectAccessReview",
                        "apiVersion": "authorization.k8s.io/v1",
                        "spec": {"resourceAttributes": {"namespace": ns, "verb": "get", "resource": "pods"}},
                    },
                )
            ]
        if r < 0.84 and not admin:  # a misconfigured RoleBinding: benign, recurring 403s
            other = _choose(rng, apps)
            return [Call("list", "secrets", other, query="limit=500", allowed=(other == home))]
        if r < 0.86:
            return [Call("create", "pods", ns, pod, "portforward", duration_s=float(rng.integers(60, 900)))]
        if r < 0.88 and admin:
            return [Call("list", "nodes", query="limit=500")]
        if r < 0.895:
            # on call: a shell in the team's own pod, now and then
            return [
                Call(
                    "create",
                    "pods",
                    ns,
                    pod,
                    "exec",
                    query="command=sh&container=api&stdin=true&stdout=true&tty=true",
                    duration_s=float(rng.integers(30, 600)),
                )
            ]
        if r < 0.93:
            return [Call("get", "configmaps", ns, f"{ns}-config")]
        return [Call("list", "services", ns, query="limit=500")]

    def episode(rng, t):
        calls: list[tuple[float, Call]] = []
        offset = 0.0
        if rng.random() < 0.5:
            calls += [(offset + 0.01 * i, c) for i, c in enumerate(DISCOVERY)]
        for _ in range(int(rng.integers(1, 6))):
            offset += float(rng.gamma(2.0, 20.0))
            calls += [(offset + 0.02 * i, c) for i, c in enumerate(command(rng, t + timedelta(seconds=offset)))]
        return calls

    return episode


def helm_release(app: str, image_repo: str, rng: np.random.Generator) -> list[tuple[float, Call]]:
    """The calls of one ``helm upgrade`` of an application's chart, as CI runs it."""
    image = f"{image_repo}/{app}-api:{int(rng.integers(1000, 9999))}"
    deploy_body = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": f"{app}-api", "namespace": app},
        "spec": {
            "replicas": 3,
            "template": {
                "metadata": {"labels": {"app": f"{app}-api"}},
                "spec": {
                    "serviceAccountName": f"{app}-api",
                    "containers": [{"name": "api", "image": image, "securityContext": {"runAsNonRoot": True}}],
                },
            },
        },
    }
    calls = [
        Call("get", "secrets", app, f"sh.helm.release.v1.{app}.v{int(rng.integers(10, 99))}"),
        Call("list", "secrets", app, query="labelSelector=name%3D" + app + "%2Cowner%3Dhelm"),
        Call(
            "patch",
            "configmaps",
            app,
            f"{app}-config",
            body={"kind": "ConfigMap", "apiVersion": "v1", "data": {"LOG_LEVEL": "info"}},
        ),
        Call("patch", "deployments", app, f"{app}-api", body=deploy_body),
        Call("patch", "services", app, f"{app}-api", body={"kind": "Service", "apiVersion": "v1"}),
        Call("create", "secrets", app, f"sh.helm.release.v1.{app}.v{int(rng.integers(100, 999))}"),
    ]
    return [(1.5 * i, c) for i, c in enumerate(calls)]


def _ci_episode(cluster: Cluster):
    repo = f"{cluster.spec.name}.dkr.ecr.us-west-2.amazonaws.com"

    def episode(rng, t):
        return helm_release(_choose(rng, cluster.app_namespaces_at(t, lasting=HELM_S)), repo, rng)

    return episode


def add_routines(cluster: Cluster, rng: np.random.Generator) -> None:
    """Give every actor of ``cluster`` its routines."""
    _control_plane(cluster)
    for actor in cluster.actors_of("node"):
        actor.routines = _node_routines(cluster, actor, actor.identity.username.removeprefix("system:node:"))
    for actor in cluster.actors_of("node-daemon") + cluster.actors_of("addon"):
        actor.routines = _addon_routines(cluster, actor)
    for actor in cluster.actors_of("operator"):
        actor.routines = _operator_routines(actor)
    for actor in cluster.actors_of("app"):
        actor.routines = _app_routines(cluster, actor)
    for actor in cluster.actors_of("developer") + cluster.actors_of("admin"):
        actor.routines = [
            Routine(2.0 if actor.kind == "developer" else 1.5, _kubectl_session(cluster, actor), profile="business")
        ]
    for actor in cluster.actors_of("ci"):
        actor.routines = [Routine(1.2, _ci_episode(cluster), profile="deploy")]
    for actor in cluster.actors_of("anonymous"):
        actor.routines = [
            Routine(
                240,
                _pick(
                    [
                        lambda rng, t: Call("get", path="/readyz"),
                        lambda rng, t: Call("get", path="/livez"),
                        lambda rng, t: Call("get", path="/version", user_agent="Go-http-client/1.1"),
                    ]
                ),
            ),
            Routine(0.2, _one(Call("get", path="/api/v1/namespaces/default/pods", allowed=False))),
        ]


def hourly_weights(actor: Actor, routine: Routine, day: datetime) -> np.ndarray:
    """Relative activity of a routine in each UTC hour of ``day`` (1.0 = its full rate)."""
    hours = np.arange(24)
    if routine.profile == "flat":
        return np.ones(24)
    if routine.profile == "nightly":
        return (hours == routine.hour).astype(float)
    local = (hours + actor.tz_offset) % 24
    weekday = (day + timedelta(hours=int(actor.tz_offset))).weekday()
    if routine.profile == "deploy":
        # Deploys cluster on Tuesdays and Thursdays, in working hours, never at weekends.
        base = np.where((local >= WORKING_HOURS[0]) & (local < WORKING_HOURS[1]), 1.0, 0.0)
        return base * ({1: 2.5, 3: 2.5, 5: 0.0, 6: 0.0}.get(weekday, 0.6))
    if weekday >= 5:
        return np.where((local >= 10) & (local < 16), 0.05, 0.0)
    w = np.where((local >= WORKING_HOURS[0]) & (local < WORKING_HOURS[1]), 1.0, 0.02)
    w[(local == 12)] = 0.4
    return w
