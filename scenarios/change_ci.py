"""Benign change of workloads and delivery: rollouts, team onboarding and retirement, add-on
upgrades, hosted CI runners, new pipelines, operator installs, certificate renewals, bad deploys.
"""

from __future__ import annotations

from dataclasses import replace

from scenarios import change_bodies as bodies
from scenarios.change import Day, Step, handler
from scenarios.cluster import ACCOUNT, CI_NAT_IPS, DAY_S, Actor, _suffix, client_go_ua, iam_extra, sa_identity
from scenarios.eks import Call, Identity
from scenarios.networks import address, pod_address
from scenarios.normal import helm_release

REPO = f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com"
NEW_APPS = (
    "ledger",
    "fraud",
    "loyalty",
    "recommendations",
    "media",
    "tax",
    "fulfilment",
    "returns",
    "support",
    "analytics",
    "gateway",
    "identity",
)
PIPELINES = (
    "data-platform",
    "mobile-backend",
    "infra-terraform",
    "ml-serving",
    "web-frontend",
    "payments-batch",
    "search-indexer",
    "edge-proxy",
    "reporting",
    "partner-api",
    "growth-experiments",
    "docs-site",
)


def _sa(day: Day, name: str) -> Identity:
    return day.who(f"system:serviceaccount:kube-system:{name}")


def new_pods(
    day: Day, ns: str, sa: str, n: int, t: float, owner: str = "replicaset-controller"
) -> tuple[list[str], list[Step]]:
    """``n`` pods of one new ReplicaSet of a workload, created by ``owner`` and bound by the scheduler.

    The pods share the ReplicaSet's name (its template's hash) and so its one image: a rollout
    runs one build on all its pods.
    """
    # The random draws are those of each pod's own hash, name and build, as before one
    # ReplicaSet was modelled: a seed's days stay the days they were, and evaluations compare.
    draws = [(_suffix(day.rng, 9), _suffix(day.rng)) for _ in range(n)]
    day.rng.integers(1000, 9999, size=n)
    replicaset = f"{sa}-{draws[0][0]}"
    image = bodies.app_image(ns, replicaset)
    names = [f"{replicaset}-{suffix}" for _, suffix in draws]
    steps: list[Step] = []
    for i, pod in enumerate(names):
        steps.append(
            (
                t + 2.0 * i,
                Call("create", "pods", ns, body=bodies.app_pod(pod, ns, sa, image)),
                _sa(day, owner),
            )
        )
        steps.append((t + 2.0 * i + 0.1, Call("create", "pods", ns, pod, "binding"), day.who("system:kube-scheduler")))
        day.add_pods(ns, [pod], t + 2.0 * i)
    return names, steps


@handler("rollout")
def rollout(day: Day) -> None:
    """A deploy replaces every pod of an app: the app calls from new pod addresses."""
    app = day.pick("app")
    if app is None or app.namespace is None:
        return
    ns = app.namespace
    t = day.at(9, 17)
    ci = day.who("ci-deployer")
    steps: list[Step] = [(t + dt, c, ci) for dt, c in helm_release(ns, REPO, day.rng)]
    s = t + 12.0
    steps.append(
        (
            s,
            Call("create", "replicasets", ns, body={"kind": "ReplicaSet", "apiVersion": "apps/v1"}),
            _sa(day, "deployment-controller"),
        )
    )
    names, created = new_pods(day, ns, f"{ns}-api", max(1, len(app.pod_names)), s + 1.0)
    steps += created
    for i, pod in enumerate(app.pod_names):
        steps.append((s + 40.0 + 3 * i, Call("delete", "pods", ns, pod), _sa(day, "replicaset-controller")))
        day.drop_pods(ns, [pod], s + 40.0 + 3 * i)
    ips = tuple(pod_address(day.rng) for _ in names)
    day.switch(app, replace(app.identity, ips=ips), s + 45.0, "benign_rollout")
    app.pod_names = tuple(names)
    day.record("rollout", app.identity.username, steps)


@handler("team_onboarded")
def team_onboarded(day: Day) -> None:
    """A new team's namespace and service account, created by CI; the app then lives like its peers."""
    fresh = [a for a in NEW_APPS if a not in day.namespaces and a not in day.gone]
    if not fresh:
        return
    ns = fresh[int(day.rng.integers(len(fresh)))]
    sa = f"{ns}-api"
    ci = day.who("ci-deployer")
    t = day.at(9, 16)
    meta = {"name": ns, "labels": {"team": ns, "pod-security.kubernetes.io/enforce": "restricted"}}
    calls = [
        Call("create", "namespaces", body={"kind": "Namespace", "apiVersion": "v1", "metadata": meta}),
        Call(
            "create",
            "serviceaccounts",
            ns,
            body={"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": sa}},
        ),
        Call(
            "create",
            "rolebindings",
            ns,
            body=bodies.binding("RoleBinding", f"{ns}-developers", "edit", "Group", "developers", ns),
        ),
        Call(
            "create",
            "configmaps",
            ns,
            body={"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": f"{ns}-config"}},
        ),
        Call("create", "secrets", ns, "db-credentials"),
        Call("create", "secrets", ns, f"{ns}-tls"),
        Call("create", "services", ns, body={"kind": "Service", "apiVersion": "v1", "metadata": {"name": sa}}),
        Call(
            "create", "deployments", ns, body={"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": sa}}
        ),
    ]
    steps: list[Step] = [(t + 1.5 * i, c, ci) for i, c in enumerate(calls)]
    names, created = new_pods(day, ns, sa, 3, t + 15.0)
    steps += created
    day.record("team_onboarded", f"system:serviceaccount:{ns}:{sa}", steps)
    day.create_namespace(ns, t, app=True)
    ident = sa_identity(ns, sa, tuple(pod_address(day.rng) for _ in names), client_go_ua(sa), day.rng)
    day.join(Actor(ident, "app", namespace=ns, pod_names=tuple(names)), t + 30.0, "benign_team_onboarded", DAY_S)


@handler("sa_retired")
def sa_retired(day: Day) -> None:
    """A service is decommissioned: its namespace and service account are deleted."""
    apps = [a for a in day.actors if a.kind == "app" and a.active == (0.0, DAY_S)]
    if len(apps) <= 3:
        return  # keep a few services running
    app = day.pick("app")
    if app is None or app.namespace is None:
        return
    ns, sa = app.namespace, app.identity.username.rsplit(":", 1)[1]
    ci, nsc = day.who("ci-deployer"), _sa(day, "namespace-controller")
    t = day.at(9, 17)
    steps: list[Step] = [
        (t, Call("delete", "deployments", ns, sa), ci),
        (t + 1, Call("delete", "services", ns, sa), ci),
        (t + 2, Call("delete", "serviceaccounts", ns, sa), ci),
        (t + 3, Call("delete", "namespaces", None, ns), ci),
    ]
    for i, r in enumerate(("pods", "configmaps", "secrets", "leases", "replicasets", "deployments")):
        steps.append((t + 5 + 0.5 * i, Call("deletecollection", r, ns), nsc))
    day.record("sa_retired", app.identity.username, steps)
    day.leave(app, t)
    day.delete_namespace(ns, t + 3)
    others = [a for a in day.app_namespaces if a != ns]
    for person in day.actors:
        if person.kind == "developer" and person.namespace == ns and others:
            person.namespace = others[int(day.rng.integers(len(others)))]


@handler("client_upgrade")
def client_upgrade(day: Day) -> None:
    """An add-on or operator moves to a new release: new pods, new addresses, a new user agent."""
    from scenarios.change_nodes import bump

    addon = day.pick("addon", "operator")
    if addon is None or addon.namespace is None:
        return
    ns, sa = addon.namespace, addon.identity.username.rsplit(":", 1)[1]
    t = day.at(9, 17)
    by = day.who("eks:addon-manager") if sa == "coredns" else day.who("ci-deployer")
    new_ua = bump(addon.identity.user_agent, day)
    steps: list[Step] = [
        (t, Call("patch", "deployments", ns, sa, body={"kind": "Deployment", "apiVersion": "apps/v1"}), by)
    ]
    names, created = new_pods(day, ns, sa, max(1, len(addon.pod_names)), t + 3.0)
    steps += created
    # The old pods go when the new ones have taken over (no delete calls are written).
    day.drop_pods(ns, list(addon.pod_names), t + 30.0)
    ident = replace(addon.identity, user_agent=new_ua, ips=tuple(pod_address(day.rng) for _ in names))
    day.switch(addon, ident, t + 30.0, "benign_client_upgrade")
    addon.pod_names = tuple(names)
    day.record("client_upgrade", addon.identity.username, steps)


@handler("hosted_ci_run")
def hosted_ci_run(day: Day) -> None:
    """A job on a hosted runner: the pipeline's usual calls from a leased cloud address."""
    if not day.app_namespaces:
        return
    ci = day.who("ci-deployer")
    runner = address(day.rng, "cloud")
    drawn = int(day.rng.integers(len(day.app_namespaces)))
    app = day.app_namespaces[drawn]
    t = day.at(9, 18)
    if not day.exists(app, t):  # a team onboarded later today: the job deploys one that exists
        here = day.app_namespaces_at(t)
        app = here[drawn % len(here)]  # the same draw: the day's later changes draw what they would have
    steps = [(t + dt, replace(c, source_ip=runner), ci) for dt, c in helm_release(app, REPO, day.rng)]
    day.record("hosted_ci_run", ci.username, steps)


@handler("new_pipeline")
def new_pipeline(day: Day) -> None:
    """A new repository gets its own deploy role; it then deploys like the old pipeline, less often."""
    known = {a.identity.username for a in day.actors if a.kind == "ci"}
    fresh = [p for p in PIPELINES if f"ci-{p}" not in known]
    if not fresh or not day.app_namespaces:
        return
    repo = fresh[int(day.rng.integers(len(fresh)))]
    extra = iam_extra(f"github-actions-{repo}", "GitHubActions", day.rng)
    who = Identity(
        f"ci-{repo}",
        ("ci-deployers", "system:authenticated"),
        CI_NAT_IPS,
        "Helm/3.15.1",
        f"aws-iam-authenticator:{ACCOUNT}:{extra['principalId'][0]}",
        extra,
    )
    t = day.at(10, 17)
    here = day.app_namespaces_at(t)
    app = here[int(day.rng.integers(len(here)))]
    day.record("new_pipeline", who.username, [(t + dt, c, who) for dt, c in helm_release(app, REPO, day.rng)])
    actor = day.join(Actor(who, "ci"), t + 60.0, "benign_new_pipeline", DAY_S)
    actor.share = 0.3


@handler("cert_rotation", weekends=True)
def cert_rotation(day: Day) -> None:
    """cert-manager renews a batch of certificates: CertificateRequests and rewritten TLS secrets."""
    cm = next((a.identity for a in day.actors if a.identity.username.endswith(":cert-manager:cert-manager")), None)
    if cm is None or not day.app_namespaces:
        return
    t = day.at(0, 22)
    here = day.app_namespaces_at(t)
    k = int(day.rng.integers(1, len(here) + 1))
    steps: list[Step] = []
    for i, ns in enumerate(day.rng.choice(here, size=k, replace=False)):
        ns = str(ns)
        s = t + 4.0 * i
        req = {
            "kind": "CertificateRequest",
            "apiVersion": "cert-manager.io/v1",
            "metadata": {"generateName": f"{ns}-tls-"},
        }
        steps += [
            (s, Call("create", "certificaterequests", ns, body=req), cm),
            (s + 1.0, Call("get", "secrets", ns, f"{ns}-tls"), cm),
            (s + 1.2, Call("update", "secrets", ns, f"{ns}-tls"), cm),
            (s + 1.5, Call("update", "certificates", ns, f"{ns}-tls", "status"), cm),
        ]
    day.record("cert_rotation", cm.username, steps)


@handler("bad_deploy")
def bad_deploy(day: Day) -> None:
    """A deploy with a wrong config name: the app's pods retry with backoff, 404s and 409s."""
    app = day.pick("app", untouched=False)
    if app is None or app.namespace is None or app.active[1] < DAY_S:
        return
    ns = app.namespace
    t = day.at(9, 17)
    who = app.was if app.was is not None and t < app.switch_at else app.identity
    steps: list[Step] = []
    s, backoff = t, 1.0
    for _ in range(int(day.rng.integers(20, 60))):
        r = day.rng.random()
        if r < 0.6:
            call = Call("get", "configmaps", ns, f"{ns}-config-v2", code=404)
        elif r < 0.85:
            call = Call("update", "leases", ns, f"{ns}-api-leader", code=409)
        else:
            call = Call(
                "create",
                "configmaps",
                ns,
                body={"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": f"{ns}-state"}},
                code=409,
            )
        steps.append((s, call, who))
        s += backoff * float(day.rng.uniform(0.5, 1.5))
        backoff = min(backoff * 2, 60.0)
    day.record("bad_deploy", who.username, steps)
