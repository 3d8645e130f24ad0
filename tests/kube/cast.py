"""Who works on the multi-day cluster, with which rights, user agent and address, and what they do.

Every call here is a real request to a real kube-apiserver through the Python kubernetes
client (anonymous health checks through urllib). Each identity keeps one client, so its user
agent and address stay what a real client's would be.

Addresses: every client connects from 127.0.0.1, so each one sends the address it stands for
in ``X-Forwarded-For``, as a reverse proxy on the API server's host would. The API server
records it in ``sourceIPs`` before the TCP peer (``["73.92.4.7", "127.0.0.1"]``), and kaad
takes the rightmost address that is not a trusted proxy; its default trusted proxies are
loopback (``events/source_address.py``), so kaad sees 73.92.4.7. Addresses come from the
same pools the simulator uses (``scenarios/networks.py``). The replicaset controller sends
none: it runs on the control plane, as in a real cluster.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kube.apiserver import ADMIN_TOKEN
from tests.kube.workload import api

KUBECTL = "kubectl/v1.20.2 (linux/amd64) kubernetes/faecb19"
RS_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"
#: name -> (namespace, service account, user agent) of the service accounts at the start.
SERVICE_ACCOUNTS = {
    "app": ("team-a", "app", "app/v1.4.0 (linux/amd64) kubernetes/$Format"),
    "worker": ("team-b", "worker", "worker/v2.1.3 (linux/amd64) kubernetes/$Format"),
    "monitor": ("kube-system", "monitor", "Prometheus/2.26.0"),
    "deployer": ("ci", "deployer", "helm/v3.5.4 (linux/amd64) kubernetes/$Format"),
    "controller": (
        "kube-system",
        "replicaset-controller",
        f"kube-controller-manager/v1.20.2 (linux/amd64) kubernetes/faecb19/{RS_CONTROLLER}",
    ),
}
#: The new service's and the operator's accounts, created during the scenario.
LATER_ACCOUNTS = {
    "app-c": ("team-c", "app", "app/v1.4.0 (linux/amd64) kubernetes/$Format"),
    "operator": ("backup-operator", "operator", "backup-operator/v0.3.1 (linux/amd64) kubernetes/$Format"),
}
USER_TOKENS = {
    "admin": ADMIN_TOKEN,
    "alice": "kaad-alice-token",
    "bob": "kaad-bob-token",
    "carol": "kaad-carol-token",
    "node": "kaad-node-token",
}
#: The kubelet of the node the workloads run on: it requests (and every hour refreshes) their
#: service account tokens, as a real kubelet does for each pod's projected token.
NODE = "system:node:ip-10-0-1-17"
KUBELET = "kubelet/v1.20.2 (linux/amd64) kubernetes/faecb19"
NAMESPACES = ("team-a", "team-b", "kube-system", "payments", "ci")
RBAC_GROUP = "rbac.authorization.k8s.io"
CRD_GROUP = "ops.example.com"


def identity(name: str) -> str:
    """The ``user.username`` the API server records for one of the cast."""
    if name in USER_TOKENS:
        return NODE if name == "node" else name
    ns, sa, _ = (SERVICE_ACCOUNTS | LATER_ACCOUNTS)[name]
    return f"system:serviceaccount:{ns}:{sa}"


def rule(groups: list[str], resources: list[str], verbs: list[str]) -> client.V1PolicyRule:
    return client.V1PolicyRule(api_groups=groups, resources=resources, verbs=verbs)


READ = ["get", "list", "watch"]
ROLES = {
    "developer": [rule(["", "apps"], ["pods", "pods/log", "configmaps", "deployments", "services", "events"], READ)],
    "app": [rule([""], ["configmaps", "secrets"], ["get", "list"]), rule([""], ["pods"], ["get", "list"])],
}


def subject(kind: str, name: str, ns: str | None = None) -> client.RbacV1Subject:
    if kind in ("User", "Group"):
        return client.RbacV1Subject(kind=kind, name=name, api_group=RBAC_GROUP)
    return client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=ns)


def replica_set(app: str, image: str) -> str:
    """The ReplicaSet name a Deployment gives its pods' template (``app-<template hash>``)."""
    return f"{app}-{zlib.crc32(image.encode()):08x}"[:20]


def pod(name: str, app: str, image: str) -> client.V1Pod:
    """A pod of ``app``'s current ReplicaSet, owned by it as the controller's pods are."""
    owner = client.V1OwnerReference(
        api_version="apps/v1",
        kind="ReplicaSet",
        name=replica_set(app, image),
        uid=str(uuid.uuid5(uuid.NAMESPACE_URL, image)),
        controller=True,
        block_owner_deletion=True,
    )
    meta = client.V1ObjectMeta(name=name, labels={"app": app}, owner_references=[owner])
    return client.V1Pod(metadata=meta, spec=client.V1PodSpec(containers=[client.V1Container(name=app, image=image)]))


def deployment(name: str, image: str) -> client.V1Deployment:
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": name}),
        spec=client.V1PodSpec(containers=[client.V1Container(name=name, image=image)]),
    )
    spec = client.V1DeploymentSpec(selector=client.V1LabelSelector(match_labels={"app": name}), template=template)
    return client.V1Deployment(metadata=client.V1ObjectMeta(name=name), spec=spec)


@dataclass
class Cast:
    """The cluster's people and programs: a client each, and what the cluster holds now."""

    url: str
    addresses: dict[str, str]  # name -> the address its X-Forwarded-For carries
    tokens: dict[str, str] = field(default_factory=dict)  # service account name -> token
    pods: dict[str, str] = field(default_factory=dict)  # namespace -> its app's current pod
    images: dict[str, str] = field(default_factory=dict)  # namespace -> its deployment's image
    running: list[str] = field(default_factory=lambda: ["app", "worker", "monitor"])  # in-cluster pods' accounts
    _clients: dict[tuple[str, str, str], client.ApiClient] = field(default_factory=dict)

    def api_client(self, name: str, *, token: str | None = None, ua: str | None = None, address: str | None = None):
        """An ApiClient for ``name`` (its own token, user agent and address unless given)."""
        token = token or USER_TOKENS.get(name) or self.tokens[name]
        if ua is None:
            ua = (
                KUBELET
                if name == "node"
                else KUBECTL
                if name in USER_TOKENS
                else (SERVICE_ACCOUNTS | LATER_ACCOUNTS)[name][2]
            )
        address = address if address is not None else self.addresses.get(name, "")
        key = (token, ua, address)
        if key not in self._clients:
            api_client = api(self.url, token, ua)
            if address:
                api_client.set_default_header("X-Forwarded-For", address)
            self._clients[key] = api_client
        return self._clients[key]

    def core(self, name: str, **kw) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client(name, **kw))

    def apps(self, name: str, **kw) -> client.AppsV1Api:
        return client.AppsV1Api(self.api_client(name, **kw))

    def rbac(self, name: str, **kw) -> client.RbacAuthorizationV1Api:
        return client.RbacAuthorizationV1Api(self.api_client(name, **kw))

    def service_account(self, name: str, who: str = "admin") -> None:
        """``who`` creates ``name``'s service account; the kubelet gets its pod a token."""
        ns, sa, _ = (SERVICE_ACCOUNTS | LATER_ACCOUNTS)[name]
        self.core(who).create_namespaced_service_account(
            ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=sa))
        )
        self.tokens[name] = self.token(name)

    def token(self, name: str) -> str:
        """The kubelet's TokenRequest for a pod running as ``name`` (long-lived: the harness
        keeps using the first one; the hourly refreshes are for the log)."""
        ns, sa, _ = (SERVICE_ACCOUNTS | LATER_ACCOUNTS)[name]
        spec = client.V1TokenRequestSpec(
            audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=30 * 86400
        )
        request = client.AuthenticationV1TokenRequest(spec=spec)
        return self.core("node").create_namespaced_service_account_token(sa, ns, request).status.token

    def bind_role(self, who: str, ns: str, role: str, kind: str, name: str, sa_ns: str | None = None) -> None:
        """``who`` creates Role ``role`` in ``ns`` (if absent) and binds it to a subject."""
        rbac = self.rbac(who)
        existing = {r.metadata.name for r in rbac.list_namespaced_role(ns).items}
        if role not in existing:
            rbac.create_namespaced_role(ns, client.V1Role(metadata=client.V1ObjectMeta(name=role), rules=ROLES[role]))
        ref = client.V1RoleRef(api_group=RBAC_GROUP, kind="Role", name=role)
        binding = client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=f"{role}-{name}"), subjects=[subject(kind, name, sa_ns)], role_ref=ref
        )
        rbac.create_namespaced_role_binding(ns, binding)

    def bind_cluster_role(self, who: str, role: str, name: str, subjects: list[client.RbacV1Subject]) -> None:
        ref = client.V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=role)
        body = client.V1ClusterRoleBinding(metadata=client.V1ObjectMeta(name=name), subjects=subjects, role_ref=ref)
        self.rbac(who).create_cluster_role_binding(body)

    def anonymous(self, path: str, address: str) -> None:
        """An unauthenticated health check, as a load balancer or kubelet probe makes."""
        key = ("", "kube-probe/1.20", "")
        if key not in self._clients:  # one connection pool, as a prober keeps its connections
            self._clients[key] = api(self.url, None, "kube-probe/1.20")
        rest = self._clients[key].rest_client
        headers = {"User-Agent": "kube-probe/1.20", "X-Forwarded-For": address}
        try:
            rest.GET(self.url + path, headers=headers)
        except ApiException as exc:
            if exc.status not in (401, 403):
                raise


def setup(cast: Cast) -> None:
    """The cluster before the first day: namespaces, workloads, roles, service accounts."""
    core, rbac = cast.core("admin"), cast.rbac("admin")
    for ns in sorted(set(NAMESPACES) - {n.metadata.name for n in core.list_namespace().items}):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    tokens = [rule([""], ["serviceaccounts/token"], ["create"]), rule([""], ["serviceaccounts"], ["get"])]
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name="kubelet-tokens"), rules=tokens))
    cast.bind_cluster_role("admin", "kubelet-tokens", "kubelet-tokens", [subject("Group", "system:nodes")])
    for name in SERVICE_ACCOUNTS:
        cast.service_account(name)
    cast.bind_role("admin", "team-a", "developer", "User", "alice")
    cast.bind_role("admin", "team-b", "developer", "User", "bob")
    cast.bind_role("admin", "team-a", "app", "ServiceAccount", "app", "team-a")
    cast.bind_role("admin", "team-b", "app", "ServiceAccount", "worker", "team-b")
    cluster_roles = {
        "pod-reader": [rule([""], ["pods", "nodes", "services"], READ)],
        "pod-controller": [rule([""], ["pods"], ["get", "list", "watch", "create", "delete"])],
    }
    for name, rules in cluster_roles.items():
        rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name), rules=rules))
    cast.bind_cluster_role(
        "admin", "pod-reader", "monitor-pod-reader", [subject("ServiceAccount", "monitor", "kube-system")]
    )
    controller = [subject("ServiceAccount", "replicaset-controller", "kube-system")]
    cast.bind_cluster_role("admin", "pod-controller", "replicaset-controller", controller)
    # CI deploys everything, operators included: cluster-admin, as many clusters grant it.
    cast.bind_cluster_role("admin", "cluster-admin", "ci-deployer", [subject("ServiceAccount", "deployer", "ci")])
    apps = cast.apps("admin")
    for ns, name, image in (("team-a", "app", "registry.local/app:1.4.0"), ("team-b", "worker", "registry.local/w:2")):
        apps.create_namespaced_deployment(ns, deployment(name, image))
        data = {"LOG_LEVEL": "info"}
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data))
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name=f"{name}-db"), string_data={"password": "x"})
        core.create_namespaced_secret(ns, secret)
        cast.images[ns], cast.pods[ns] = image, f"{replica_set(name, image)}-0"
        cast.core("controller").create_namespaced_pod(ns, pod(cast.pods[ns], name, image))
