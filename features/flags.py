"""Sensitive-action flags: what each is, in one catalogue; written into the event table at ingest.

Each :class:`Flag` is a condition on one event's columns (computed in
:mod:`features.flag_rules`) and belongs to an action family. A request that raises a flag
and was carried out lists it in ``flags``; one that was refused or failed (a 4xx/5xx
response, or decision forbid) lists it in ``flags_attempted`` instead: a denied
cluster-admin binding is evidence of a different thing than a granted one. Hunters query
these columns, the window features count them (:mod:`features.enrich`), and
``docs/flags.md`` lists them (``python -m features.flags``).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Flag:
    """One sensitive action an event can show."""

    name: str
    family: str
    definition: str
    feature: str | None = None  # the window feature that counts it (carried out only)
    mirrors: str = ""


_F = Flag
FLAGS: tuple[Flag, ...] = (
    _F(
        "privileged_container",
        "host_access",
        "a pod spec written with a privileged container",
        "n_privileged",
        "Falco 'Create Privileged Pod'; Panther Kubernetes.Pod.Privileged.Created",
    ),
    _F(
        "host_path",
        "host_access",
        "a pod spec written with a hostPath volume",
        "n_hostpath",
        "Panther Kubernetes.Pod.HostPath.Volume",
    ),
    _F(
        "sensitive_host_path",
        "host_access",
        "a pod spec written with hostPath /, /proc, /etc, /root, /etc/kubernetes, "
        "/var/lib/kubelet or a container runtime socket",
        "n_hostpath_root",
        "Falco 'Create Sensitive Mount Pod'",
    ),
    _F(
        "host_pid",
        "host_access",
        "a pod spec sharing the host PID namespace",
        "n_hostpid",
        "Panther Kubernetes.Pod.Host.PID",
    ),
    _F(
        "host_network",
        "host_access",
        "a pod spec on the host network",
        "n_hostnetwork",
        "Falco 'Create HostNetwork Pod'; Panther Kubernetes.Pod.Host.Network",
    ),
    _F(
        "host_ipc",
        "host_access",
        "a pod spec sharing the host IPC namespace",
        "n_hostipc",
        "Panther Kubernetes.Pod.Host.IPC",
    ),
    _F(
        "dangerous_capabilities",
        "host_access",
        "a container adding SYS_ADMIN, SYS_PTRACE, SYS_MODULE, NET_ADMIN, BPF, ALL or similar",
        "n_dangerous_caps",
        "Panther Kubernetes.Pod.Dangerous.Capabilities",
    ),
    _F(
        "runs_as_root",
        "host_access",
        "runAsUser 0, runAsNonRoot false or allowPrivilegeEscalation true",
        "n_runs_as_root",
        "Panther Kubernetes.Pod.Privileged.Created (run-as-root tests)",
    ),
    _F(
        "system_namespace_workload",
        "system_namespace",
        "a pod or workload created in kube-system, kube-public or kube-node-lease (kubelet mirror pods excepted)",
        "n_system_namespace_workloads",
        "Falco 'Pod Created in Kube Namespace'; Panther Kubernetes.Pod.SystemNamespace",
    ),
    _F(
        "system_namespace_serviceaccount",
        "system_namespace",
        "a service account created in a system namespace",
        "n_system_namespace_serviceaccounts",
        "Falco 'Service Account Created in Kube Namespace'",
    ),
    _F(
        "privileged_binding",
        "rbac",
        "a binding written to cluster-admin, admin, system:masters or a "
        "control-plane role (system:kube-*, system:node, system:controller:*)",
        "n_admin_bindings",
        "Falco 'Attach to cluster-admin Role'; Panther Kubernetes.ClusterRoleBinding.Privileged",
    ),
    _F(
        "role_wildcard",
        "rbac",
        "a role written with '*' verbs or resources",
        "n_risky_roles",
        "Falco 'ClusterRole With Wildcard Created'; Panther Kubernetes.Role.Wildcard",
    ),
    _F("role_escalation_verbs", "rbac", "a role written with escalate, bind or impersonate", "n_risky_roles"),
    _F(
        "role_grants_exec",
        "rbac",
        "a role written granting pods/exec, pods/attach or pods/*",
        "n_role_grants",
        "Falco 'ClusterRole With Pod Exec Created'; Panther Kubernetes.Role.PodExec",
    ),
    _F(
        "role_grants_node_proxy",
        "rbac",
        "a role written granting nodes/proxy or nodes/*",
        "n_role_grants",
        "Panther Kubernetes.Role.NodeProxyPermissions",
    ),
    _F("role_grants_secrets", "rbac", "a role written granting access to secrets", "n_role_grants"),
    _F(
        "role_grants_write",
        "rbac",
        "a role written granting create, update, patch or delete (flag "
        "only: operators install such roles all the time)",
        None,
        "Falco 'ClusterRole With Write Privileges Created'; Panther Kubernetes.Role.WritePermissions",
    ),
    _F(
        "system_role_changed",
        "rbac",
        "a system: role or binding updated, patched or deleted",
        "n_system_role_changes",
        "Falco 'System ClusterRole Modified/Deleted'; Panther Kubernetes.SystemRole.Modified",
    ),
    _F("impersonation", "identity", "a request made while impersonating another user", "n_impersonations"),
    _F(
        "token_request_other",
        "identity",
        "a token requested for a service account other than the "
        "caller's own (kubelets, and the control plane in system namespaces, excepted)",
        "n_token_requests_other",
        "Panther Kubernetes.ServiceAccount.TokenCreated",
    ),
    _F(
        "csr_created",
        "identity",
        "a client-certificate signing request created (signer kube-apiserver-client or not logged; nodes excepted)",
        "n_csr_creates",
        "Panther Kubernetes.ClientCertificate.Created",
    ),
    _F("csr_approved", "identity", "a certificate signing request approved", "n_csr_approvals"),
    _F(
        "secret_read",
        "credentials",
        "secrets read, listed or watched by a person or anonymously (or by anyone, when refused)",
        None,
        "Panther Kubernetes.BulkSecretAccess, Kubernetes.Secret.AccessDenied",
    ),
    _F(
        "secrets_listed_cluster_wide",
        "credentials",
        "secrets listed or watched across all namespaces",
        "n_cluster_wide_secret_lists",
        "Panther Kubernetes.Secrets.DumpAllNamespaces",
    ),
    _F(
        "configmap_credentials",
        "credentials",
        "a ConfigMap written whose data looks like a credential",
        "n_configmap_credentials",
        "Falco 'Create/Modify Configmap With Private Credentials'",
    ),
    _F(
        "exec",
        "execution",
        "exec or attach into a pod",
        "n_exec",
        "Falco 'Attach/Exec Pod'; Panther Kubernetes.Pod.Exec, Kubernetes.Kubectl.CP.Operation",
    ),
    _F(
        "exec_reads_credentials",
        "execution",
        "an exec command naming a service-account token, SSH key or credentials file",
        "n_exec_credentials",
        "Panther Kubernetes.Pod.StealServiceAccountToken",
    ),
    _F("portforward_proxy", "execution", "port-forward or proxy through the API server", "n_portforward_proxy"),
    _F("bare_pod", "execution", "a pod without an owner created by a person or service account", "n_bare_pods"),
    _F(
        "daemonset_created",
        "persistence",
        "a DaemonSet created",
        "n_persistent_workloads",
        "Panther Kubernetes.DaemonSet.Created",
    ),
    _F(
        "cronjob_written",
        "persistence",
        "a CronJob created, updated or patched",
        "n_persistent_workloads",
        "Panther Kubernetes.CronJob.CreatedOrModified",
    ),
    _F(
        "webhook_written",
        "persistence",
        "an admission webhook configuration written or deleted",
        "n_webhook_writes",
        "Panther Kubernetes.AdmissionController.Created",
    ),
    _F(
        "webhook_calls_out",
        "persistence",
        "an admission webhook written that sends its requests to a URL outside the cluster (a public "
        "address, or a host name that is not a cluster service): every object it matches goes there",
        "n_webhook_external",
        "Microsoft's Threat Matrix for Kubernetes 'Malicious admission controller'",
    ),
    _F("aws_auth_edited", "persistence", "kube-system/aws-auth or coredns written", "n_aws_auth_edits"),
    _F(
        "service_exposed",
        "exposure",
        "a Service written as NodePort or LoadBalancer",
        "n_exposures",
        "Falco 'Create NodePort Service'; Panther Kubernetes.Service.NodePort.Deployed",
    ),
    _F(
        "ingress_without_tls",
        "exposure",
        "an Ingress created or replaced without TLS",
        "n_exposures",
        "Panther Kubernetes.Ingress.NoTLS",
    ),
    _F(
        "pods_listed_cluster_wide",
        "discovery",
        "pods listed across all namespaces (kubelets excepted; not a list of one node's pods, "
        "fieldSelector=spec.nodeName, as a drain makes)",
        "n_cluster_wide_pod_lists",
    ),
    _F(
        "anonymous_request",
        "anonymous",
        "an anonymous request outside the health probes (/healthz, "
        "/livez, /readyz) and service-account issuer discovery (/version counts)",
        "n_anonymous_allowed",
        "Falco 'Anonymous Request Allowed'; Panther Kubernetes.API.AnonymousAccess",
    ),
    _F(
        "public_system_namespace",
        "public_source",
        "a request into a system namespace from a public address",
        "n_public_source",
        "Panther Amazon.EKS.Audit.SystemNamespaceFromPublicIP",
    ),
    _F(
        "public_system_principal",
        "public_source",
        "a request by a system principal (control plane, node, system service account) from a public address",
        "n_public_source",
        "Panther Kubernetes.System.Principal.PublicIP",
    ),
    _F(
        "public_service_account",
        "public_source",
        "a service account's token used from a public address: pods reach the API server from "
        "private addresses (EKS, GKE and kubeadm pod and node networks), a token read from a leaked "
        "manifest, image or log is used from outside",
        "n_public_source",
        "MITRE T1528 / T1550.001; GuardDuty and Elastic: a service-account token used from outside",
    ),
    _F(
        "public_anonymous",
        "public_source",
        "an anonymous request from a public address, any path",
        "n_public_source",
        "Panther Amazon.EKS.AnonymousAPIAccess",
    ),
    _F(
        "public_refused",
        "public_source",
        "a request from a public address that was refused (only ever in flags_attempted)",
        None,
        "Panther Kubernetes.API.Multiple403.PublicIP",
    ),
    _F("events_deleted", "evasion", "Kubernetes events deleted", "n_events_deleted"),
    _F("audit_id_reused", "evasion", "a request reusing an earlier request's auditID", "n_audit_id_reused"),
    _F(
        "forwarded_unverified",
        "evasion",
        "an X-Forwarded-For chain no trusted proxy vouches for",
        "n_forwarded_unverified",
    ),
)
BY_NAME = {f.name: f for f in FLAGS}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(f.family for f in FLAGS))
FLAG_COLUMNS = ("flags", "flags_attempted", "action_families")
WORKLOADS = ("deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicationcontrollers")
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
#: Paths anonymous clients are meant to use: load-balancer health probes and service-account
#: issuer discovery. /version is not one: scanners ask it first.
ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz", "/.well-known/openid-configuration", "/openid/v1/jwks")
SENSITIVE_PATHS = (
    "/",
    "/proc",
    "/etc",
    "/root",
    "/home/admin",
    "/etc/kubernetes",
    "/etc/kubernetes/manifests",
    "/var/lib/kubelet",
    "/var/lib/kubelet/pki",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
)
DANGEROUS_CAPS = (
    "SYS_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "NET_ADMIN",
    "DAC_READ_SEARCH",
    "ALL",
    "BPF",
    "PERFMON",
    "SYS_RAWIO",
)
PRIVILEGED_ROLES = (
    "cluster-admin",
    "admin",
    "system:masters",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:node",
)
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
#: Addresses that are not the internet: RFC 1918, carrier-grade NAT (EKS pod ranges use it),
#: loopback, link-local and IPv6 unique-local. Python's is_private also counts the
#: documentation ranges, which sample logs use to stand for public addresses.
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "0.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def _kind(identity) -> str:
    if not isinstance(identity, str):
        return "human"
    if identity.startswith("system:serviceaccount:"):
        return "service_account"
    if identity.startswith("system:node:"):
        return "node"
    if identity in ("system:anonymous", "system:unauthenticated"):
        return "anonymous"
    if identity.startswith(("system:", "eks:", "aksService")):
        return "system"
    return "human"


def identity_kinds(identities) -> np.ndarray:
    """Classify identities: service_account, node, system, anonymous or human."""
    return np.array([_kind(i) for i in identities], dtype=object)


@functools.lru_cache(maxsize=4096)
def is_external_url(url: str | None) -> bool:
    """Whether an admission webhook's ``clientConfig.url`` leaves the cluster.

    Operators' webhooks name a cluster service (``clientConfig.service``); EKS's own send to
    the control plane's loopback. A public address, or a host name that is not a service's
    (``*.svc``, ``*.cluster.local``), is outside: what an intruder's webhook server is.
    """
    try:
        host = urlsplit(str(url).strip()).hostname
    except ValueError:
        return True  # the API server would not call it; whoever wrote it meant something else
    if not host:
        return True
    if host == "localhost" or host.endswith((".svc", ".cluster.local")) or ".svc." in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True  # a name outside the cluster's domain
    return is_public(host)


@functools.lru_cache(maxsize=65536)  # a pure function of the address; clusters reuse few
def is_public(address: str | None) -> bool:
    """Whether an address is on the internet (not internal, and parseable)."""
    try:
        ip = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not any(ip in net for net in INTERNAL_NETWORKS if net.version == ip.version)


FLAG_NAMES = np.array([f.name for f in FLAGS], dtype=object)


def listed(lists: pa.Array | pa.ChunkedArray, n: int, column_of: np.ndarray) -> np.ndarray:
    """A boolean ``(n, k)`` array, column-major: row ``i`` has column ``column_of[f]`` set when
    its list names flag ``FLAGS[f]``. Names outside the catalogue set nothing.

    Flags are rare (a few rows in a hundred), so only the listed names are read: their few
    distinct values are looked up once (a table of every row and flag cost ~10 ms a group).
    """
    out = np.zeros((n, int(column_of.max(initial=-1)) + 1), dtype=bool, order="F")
    lists = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
    flat = pc.list_flatten(lists)
    if len(flat) == 0:
        return out
    named = pc.dictionary_encode(flat)
    flag_of = pd.Index(FLAG_NAMES).get_indexer(named.dictionary.to_numpy(zero_copy_only=False))
    column = np.append(np.where(flag_of >= 0, column_of[flag_of], -1), -1)  # the last: a NULL name
    at = column[pc.fill_null(named.indices, -1).to_numpy(zero_copy_only=False)]
    rows = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    kept = at >= 0
    out[rows[kept], at[kept]] = True
    return out


def flag_table(events: pd.DataFrame, column: str = "flags") -> pd.DataFrame:
    """One boolean column per flag: whether each event lists it in ``column``."""
    if column in events.columns and len(events):
        out = listed(pa.array(events[column], pa.list_(pa.string())), len(events), np.arange(len(FLAGS)))
    else:
        out = np.zeros((len(events), len(FLAGS)), dtype=bool)
    return pd.DataFrame(out, index=events.index, columns=list(FLAG_NAMES))


def render_markdown() -> str:
    """The flag table of docs/flags.md."""
    lines = ["| flag | family | raised by | window feature | mirrors |", "|---|---|---|---|---|"]
    for f in FLAGS:
        lines.append(
            f"| `{f.name}` | {f.family} | {f.definition} | "
            f"{f'`{f.feature}`' if f.feature else '(flag only)'} | {f.mirrors} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
