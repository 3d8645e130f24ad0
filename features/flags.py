"""Sensitive-action flags: one definition, written into the event table at ingest.

Each :class:`Flag` is a condition on one event's columns, and belongs to an action family.
A request that raises a flag and was carried out lists it in ``flags``; one that was refused
or failed (a 4xx/5xx response, or decision forbid) lists it in ``flags_attempted`` instead: a
denied cluster-admin binding is evidence of a different thing than a granted one. Hunters
query these columns, the window features count them (:mod:`features.enrich`), and
``docs/flags.md`` lists them (``python -m features.flags``).

Computed on Arrow batches without a Python loop over rows: string conditions are evaluated
once per distinct value of a column (a batch has few verbs, identities and addresses).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

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
    feature: str | None = None   # the window feature that counts it (carried out only)
    mirrors: str = ""


_F = Flag
FLAGS: tuple[Flag, ...] = (
    _F("privileged_container", "host_access", "a pod spec written with a privileged container", "n_privileged",
       "Falco 'Create Privileged Pod'; Panther Kubernetes.Pod.Privileged.Created"),
    _F("host_path", "host_access", "a pod spec written with a hostPath volume", "n_hostpath",
       "Panther Kubernetes.Pod.HostPath.Volume"),
    _F("sensitive_host_path", "host_access", "a pod spec written with hostPath /, /proc, /etc, /root, /etc/kubernetes, "
       "/var/lib/kubelet or a container runtime socket", "n_hostpath_root", "Falco 'Create Sensitive Mount Pod'"),
    _F("host_pid", "host_access", "a pod spec sharing the host PID namespace", "n_hostpid", "Panther Kubernetes.Pod.Host.PID"),
    _F("host_network", "host_access", "a pod spec on the host network", "n_hostnetwork",
       "Falco 'Create HostNetwork Pod'; Panther Kubernetes.Pod.Host.Network"),
    _F("host_ipc", "host_access", "a pod spec sharing the host IPC namespace", "n_hostipc", "Panther Kubernetes.Pod.Host.IPC"),
    _F("dangerous_capabilities", "host_access", "a container adding SYS_ADMIN, SYS_PTRACE, SYS_MODULE, "
       "NET_ADMIN, BPF, ALL or similar", "n_dangerous_caps", "Panther Kubernetes.Pod.Dangerous.Capabilities"),
    _F("runs_as_root", "host_access", "runAsUser 0, runAsNonRoot false or allowPrivilegeEscalation true",
       "n_runs_as_root", "Panther Kubernetes.Pod.Privileged.Created (run-as-root tests)"),
    _F("system_namespace_workload", "system_namespace", "a pod or workload created in kube-system, "
       "kube-public or kube-node-lease (kubelet mirror pods excepted)", "n_system_namespace_workloads",
       "Falco 'Pod Created in Kube Namespace'; Panther Kubernetes.Pod.SystemNamespace"),
    _F("system_namespace_serviceaccount", "system_namespace", "a service account created in a system "
       "namespace", "n_system_namespace_serviceaccounts", "Falco 'Service Account Created in Kube Namespace'"),
    _F("privileged_binding", "rbac", "a binding written to cluster-admin, admin, system:masters or a "
       "control-plane role (system:kube-*, system:node, system:controller:*)", "n_admin_bindings",
       "Falco 'Attach to cluster-admin Role'; Panther Kubernetes.ClusterRoleBinding.Privileged"),
    _F("role_wildcard", "rbac", "a role written with '*' verbs or resources", "n_risky_roles",
       "Falco 'ClusterRole With Wildcard Created'; Panther Kubernetes.Role.Wildcard"),
    _F("role_escalation_verbs", "rbac", "a role written with escalate, bind or impersonate", "n_risky_roles"),
    _F("role_grants_exec", "rbac", "a role written granting pods/exec, pods/attach or pods/*", "n_role_grants",
       "Falco 'ClusterRole With Pod Exec Created'; Panther Kubernetes.Role.PodExec"),
    _F("role_grants_node_proxy", "rbac", "a role written granting nodes/proxy or nodes/*", "n_role_grants",
       "Panther Kubernetes.Role.NodeProxyPermissions"),
    _F("role_grants_secrets", "rbac", "a role written granting access to secrets", "n_role_grants"),
    _F("role_grants_write", "rbac", "a role written granting create, update, patch or delete (flag "
       "only: operators install such roles all the time)", None,
       "Falco 'ClusterRole With Write Privileges Created'; Panther Kubernetes.Role.WritePermissions"),
    _F("system_role_changed", "rbac", "a system: role or binding updated, patched or deleted",
       "n_system_role_changes", "Falco 'System ClusterRole Modified/Deleted'; Panther Kubernetes.SystemRole.Modified"),
    _F("impersonation", "identity", "a request made while impersonating another user", "n_impersonations"),
    _F("token_request_other", "identity", "a token requested for a service account other than the "
       "caller's own (kubelets, and the control plane in system namespaces, excepted)",
       "n_token_requests_other",
       "Panther Kubernetes.ServiceAccount.TokenCreated"),
    _F("csr_created", "identity", "a client-certificate signing request created (signer "
       "kube-apiserver-client or not logged; nodes excepted)",
       "n_csr_creates", "Panther Kubernetes.ClientCertificate.Created"),
    _F("csr_approved", "identity", "a certificate signing request approved", "n_csr_approvals"),
    _F("secret_read", "credentials", "secrets read, listed or watched by a person or anonymously "
       "(or by anyone, when refused)", None, "Panther Kubernetes.BulkSecretAccess, Kubernetes.Secret.AccessDenied"),
    _F("secrets_listed_cluster_wide", "credentials", "secrets listed or watched across all namespaces",
       "n_cluster_wide_secret_lists", "Panther Kubernetes.Secrets.DumpAllNamespaces"),
    _F("configmap_credentials", "credentials", "a ConfigMap written whose data looks like a credential",
       "n_configmap_credentials", "Falco 'Create/Modify Configmap With Private Credentials'"),
    _F("exec", "execution", "exec or attach into a pod", "n_exec",
       "Falco 'Attach/Exec Pod'; Panther Kubernetes.Pod.Exec, Kubernetes.Kubectl.CP.Operation"),
    _F("exec_reads_credentials", "execution", "an exec command naming a service-account token, SSH "
       "key or credentials file", "n_exec_credentials", "Panther Kubernetes.Pod.StealServiceAccountToken"),
    _F("portforward_proxy", "execution", "port-forward or proxy through the API server", "n_portforward_proxy"),
    _F("bare_pod", "execution", "a pod without an owner created by a person or service account", "n_bare_pods"),
    _F("daemonset_created", "persistence", "a DaemonSet created", "n_persistent_workloads",
       "Panther Kubernetes.DaemonSet.Created"),
    _F("cronjob_written", "persistence", "a CronJob created, updated or patched", "n_persistent_workloads",
       "Panther Kubernetes.CronJob.CreatedOrModified"),
    _F("webhook_written", "persistence", "an admission webhook configuration written or deleted",
       "n_webhook_writes", "Panther Kubernetes.AdmissionController.Created"),
    _F("aws_auth_edited", "persistence", "kube-system/aws-auth or coredns written", "n_aws_auth_edits"),
    _F("service_exposed", "exposure", "a Service written as NodePort or LoadBalancer", "n_exposures",
       "Falco 'Create NodePort Service'; Panther Kubernetes.Service.NodePort.Deployed"),
    _F("ingress_without_tls", "exposure", "an Ingress created or replaced without TLS", "n_exposures",
       "Panther Kubernetes.Ingress.NoTLS"),
    _F("pods_listed_cluster_wide", "discovery", "pods listed across all namespaces (kubelets excepted)",
       "n_cluster_wide_pod_lists"),
    _F("anonymous_request", "anonymous", "an anonymous request outside /healthz, /livez and /readyz",
       "n_anonymous_allowed", "Falco 'Anonymous Request Allowed'; Panther Kubernetes.API.AnonymousAccess"),
    _F("public_system_namespace", "public_source", "a request into a system namespace from a public address",
       "n_public_source", "Panther Amazon.EKS.Audit.SystemNamespaceFromPublicIP"),
    _F("public_system_principal", "public_source", "a request by a system principal (control plane, "
       "node, system service account) from a public address", "n_public_source",
       "Panther Kubernetes.System.Principal.PublicIP"),
    _F("public_anonymous", "public_source", "an anonymous request from a public address, any path",
       "n_public_source", "Panther Amazon.EKS.AnonymousAPIAccess"),
    _F("public_refused", "public_source", "a request from a public address that was refused (only ever "
       "in flags_attempted)", None, "Panther Kubernetes.API.Multiple403.PublicIP"),
    _F("events_deleted", "evasion", "Kubernetes events deleted", "n_events_deleted"),
    _F("audit_id_reused", "evasion", "a request reusing an earlier request's auditID", "n_audit_id_reused"),
    _F("forwarded_unverified", "evasion", "an X-Forwarded-For chain no trusted proxy vouches for",
       "n_forwarded_unverified"),
)
BY_NAME = {f.name: f for f in FLAGS}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(f.family for f in FLAGS))
FLAG_COLUMNS = ("flags", "flags_attempted", "action_families")
#: The event-table columns the flags are computed from.
INPUT_COLUMNS = ("verb", "identity", "target_resource", "target_subresource", "target_namespace",
                 "target_name", "request_uri", "response_code", "auth_decision", "impersonated_user",
                 "source_ip", "pod_privileged", "pod_runs_as_root", "pod_host_paths", "pod_host_network",
                 "pod_host_pid", "pod_host_ipc", "pod_capabilities", "pod_has_owner", "role_ref_name",
                 "rule_verbs", "rule_resources", "service_type", "ingress_tls", "configmap_credentials",
                 "csr_signer", "exec_command", "audit_id_reused", "forwarded_unverified")

WORKLOADS = ("deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs",
             "replicationcontrollers")
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
SENSITIVE_PATHS = ("/", "/proc", "/etc", "/root", "/home/admin", "/etc/kubernetes",
                   "/etc/kubernetes/manifests", "/var/lib/kubelet", "/var/lib/kubelet/pki",
                   "/var/run/docker.sock", "/run/containerd/containerd.sock",
                   "/var/run/containerd/containerd.sock", "/var/run/crio/crio.sock")
DANGEROUS_CAPS = ("SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "NET_ADMIN", "DAC_READ_SEARCH", "ALL",
                  "BPF", "PERFMON", "SYS_RAWIO")
PRIVILEGED_ROLES = ("cluster-admin", "admin", "system:masters", "system:kube-controller-manager",
                    "system:kube-scheduler", "system:node")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
#: Addresses that are not the internet: RFC 1918, carrier-grade NAT (EKS pod ranges use it),
#: loopback, link-local and IPv6 unique-local. Python's is_private also counts the
#: documentation ranges, which sample logs use to stand for public addresses.
INTERNAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
    "169.254.0.0/16", "0.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10"))
_CREDENTIAL_PATHS = re.compile(r"/var/run/secrets/|serviceaccount|/\.ssh/|id_rsa|id_ed25519|/etc/shadow"
                               r"|\.kube/config|\.aws/credentials|credentials|token", re.IGNORECASE)
_SYSTEM_SA = re.compile(r"^system:serviceaccount:(kube-system|kube-public|kube-node-lease):")


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


class _Batch:
    """Row masks of one table, each string condition evaluated on distinct values only."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = table.num_rows
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._kinds: np.ndarray | None = None

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(row -> index into values, -1 for null or ''; distinct values)."""
        if column not in self._codes:
            encoded = pc.dictionary_encode(self.table[column].combine_chunks(), null_encoding="encode")
            values = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
            missing = np.array([v is None or v == "" for v in values], dtype=bool)
            remap = np.where(missing, -1, np.arange(len(values)))
            idx = remap[encoded.indices.to_numpy(zero_copy_only=False)] if len(values) else \
                np.full(self.n, -1)
            self._codes[column] = (idx, np.where(missing, "", values))
        return self._codes[column]

    def where(self, column: str, test) -> np.ndarray:
        """Rows whose value passes ``test``, a function of one value, called once per value."""
        idx, values = self.codes(column)
        hit = np.fromiter((bool(test(v)) for v in values), dtype=bool, count=len(values))
        return np.append(hit, False)[idx]

    def isin(self, column: str, wanted) -> np.ndarray:
        idx, values = self.codes(column)
        wanted = set(wanted)
        hit = np.fromiter((v in wanted for v in values), dtype=bool, count=len(values))
        return np.append(hit, False)[idx]

    def subset(self, rows: np.ndarray) -> _Batch:
        """The same masks for ``rows`` only, reusing the distinct values found so far."""
        part = _Batch(self.table.take(pa.array(rows)))
        part._codes = {c: (idx[rows], values) for c, (idx, values) in self._codes.items()}
        part._kinds = None if self._kinds is None else self._kinds[rows]
        return part

    def eq(self, column: str, value: str) -> np.ndarray:
        return self.isin(column, (value,))

    def empty(self, column: str) -> np.ndarray:
        return self.codes(column)[0] < 0

    def true(self, column: str) -> np.ndarray:
        values = self.table[column].combine_chunks()
        if values.null_count:
            values = pc.fill_null(values, False)
        return values.to_numpy(zero_copy_only=False)

    def kinds(self) -> np.ndarray:
        if self._kinds is None:
            idx, values = self.codes("identity")
            self._kinds = np.append(identity_kinds(values), "")[idx]
        return self._kinds

    def list_any(self, column: str, wanted) -> np.ndarray:
        """Rows whose list column holds any of ``wanted``."""
        lists = self.table[column].combine_chunks()
        flat = pc.list_flatten(lists)
        if len(flat) == 0:
            return np.zeros(self.n, dtype=bool)
        hit = pc.fill_null(pc.is_in(flat, value_set=pa.array(list(wanted), pa.string())), False)
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        return np.bincount(parents[hit.to_numpy(zero_copy_only=False)], minlength=self.n) > 0


#: Resources and subresources some flag is about; the rest can raise only the flags about who
#: asked and from where, so most rows (lease renewals) are settled without the full test.
_RESOURCES = ("pods", *WORKLOADS, "roles", "clusterroles", "rolebindings", "clusterrolebindings",
              "serviceaccounts", "certificatesigningrequests", "secrets", "configmaps", "services",
              "ingresses", "events", "mutatingwebhookconfigurations", "validatingwebhookconfigurations")
_SUBRESOURCES = ("exec", "attach", "portforward", "proxy")
_RESOURCE_SET, _SUBRESOURCE_SET = pa.array(_RESOURCES), pa.array(_SUBRESOURCES)
_ANONYMOUS = pa.array(["system:anonymous", "system:unauthenticated"])


def _candidates(b: _Batch) -> np.ndarray:
    """Rows that may raise a flag (Arrow kernels over the whole batch; codes only for addresses)."""
    t = b.table
    maybe = pc.or_(pc.is_in(t["target_resource"], value_set=_RESOURCE_SET),
                   pc.is_in(t["target_subresource"], value_set=_SUBRESOURCE_SET))
    maybe = pc.or_(maybe, pc.is_valid(t["impersonated_user"]))
    maybe = pc.or_(maybe, pc.is_in(t["identity"], value_set=_ANONYMOUS))
    maybe = pc.or_(pc.or_(maybe, t["audit_id_reused"]), t["forwarded_unverified"])
    return pc.fill_null(maybe, False).to_numpy(zero_copy_only=False) | b.where("source_ip", is_public)


def _conditions(b: _Batch) -> dict[str, np.ndarray]:
    """Every flag's condition, whatever the outcome of the request."""
    verb, res, sub, ns = "verb", "target_resource", "target_subresource", "target_namespace"
    kinds = b.kinds()
    person = np.isin(kinds, ["human", "anonymous"])
    anonymous = kinds == "anonymous"
    write = b.isin(verb, ("create", "update", "patch"))
    create = b.eq(verb, "create")
    no_sub = b.empty(sub)
    pod_spec = write & b.isin(res, ("pods", *WORKLOADS)) & (no_sub | b.eq(sub, "ephemeralcontainers"))
    role = write & b.isin(res, ("roles", "clusterroles"))
    system_ns = b.isin(ns, SYSTEM_NAMESPACES)
    c: dict[str, np.ndarray] = {}
    c["privileged_container"] = pod_spec & b.true("pod_privileged")
    c["host_path"] = pod_spec & ~np.asarray(pc.is_null(b.table["pod_host_paths"]).to_numpy(zero_copy_only=False), dtype=bool)
    c["sensitive_host_path"] = pod_spec & b.list_any("pod_host_paths", SENSITIVE_PATHS)
    c["host_pid"] = pod_spec & b.true("pod_host_pid")
    c["host_network"] = pod_spec & b.true("pod_host_network")
    c["host_ipc"] = pod_spec & b.true("pod_host_ipc")
    c["dangerous_capabilities"] = pod_spec & b.list_any("pod_capabilities", DANGEROUS_CAPS)
    c["runs_as_root"] = pod_spec & b.true("pod_runs_as_root")
    c["system_namespace_workload"] = (create & no_sub & b.isin(res, ("pods", *WORKLOADS)) & system_ns
                                      & (kinds != "node"))
    c["system_namespace_serviceaccount"] = create & no_sub & b.eq(res, "serviceaccounts") & system_ns
    c["privileged_binding"] = (write & b.isin(res, ("rolebindings", "clusterrolebindings"))
                               & b.where("role_ref_name", lambda v: v in PRIVILEGED_ROLES
                                         or v.startswith("system:controller:")))
    c["role_wildcard"] = role & (b.list_any("rule_verbs", ["*"]) | b.list_any("rule_resources", ["*"]))
    c["role_escalation_verbs"] = role & b.list_any("rule_verbs", ["escalate", "bind", "impersonate"])
    c["role_grants_exec"] = role & b.list_any("rule_resources", ["pods/exec", "pods/attach", "pods/*"])
    c["role_grants_node_proxy"] = role & b.list_any("rule_resources", ["nodes/proxy", "nodes/*"])
    c["role_grants_secrets"] = role & b.list_any("rule_resources", ["secrets"])
    c["role_grants_write"] = role & b.list_any("rule_verbs", WRITE_VERBS)
    c["system_role_changed"] = (b.isin(verb, ("update", "patch", "delete"))
                                & b.isin(res, ("roles", "clusterroles", "rolebindings", "clusterrolebindings"))
                                & b.where("target_name", lambda v: v.startswith("system:")))
    c["impersonation"] = ~b.empty("impersonated_user")
    # Kubelets fetch their pods' tokens, and the controller manager its controllers' ones.
    c["token_request_other"] = _token_for_another(b, create & b.eq(res, "serviceaccounts") & b.eq(sub, "token")
                                                  & (kinds != "node") & ~((kinds == "system") & system_ns))
    csr = b.eq(res, "certificatesigningrequests")
    # A client certificate is a credential for any name it asks for; serving and kubelet
    # certificates are not. Without a logged body the signer is unknown: flagged.
    client_cert = b.empty("csr_signer") | b.eq("csr_signer", "kubernetes.io/kube-apiserver-client")
    c["csr_created"] = create & csr & no_sub & (kinds != "node") & client_cert
    c["csr_approved"] = csr & b.eq(sub, "approval") & b.isin(verb, ("update", "patch"))
    code = pc.fill_null(b.table["response_code"], 0).to_numpy(zero_copy_only=False)
    denied = np.isin(code, [401, 403]) | b.eq("auth_decision", "forbid")
    secret = b.eq(res, "secrets") & b.isin(verb, ("get", "list", "watch"))
    c["secret_read"] = secret & (person | denied)
    c["secrets_listed_cluster_wide"] = secret & b.isin(verb, ("list", "watch")) & b.empty(ns)
    c["configmap_credentials"] = write & b.true("configmap_credentials")
    c["exec"] = b.eq(res, "pods") & b.isin(sub, ("exec", "attach"))
    c["exec_reads_credentials"] = c["exec"] & b.where("exec_command", _CREDENTIAL_PATHS.search)
    c["portforward_proxy"] = b.isin(sub, ("portforward", "proxy"))
    owned = pc.fill_null(b.table["pod_has_owner"], True).to_numpy(zero_copy_only=False).astype(bool)
    c["bare_pod"] = create & b.eq(res, "pods") & no_sub & ~owned & np.isin(kinds, ["human", "service_account"])
    c["daemonset_created"] = create & no_sub & b.eq(res, "daemonsets")
    c["cronjob_written"] = write & no_sub & b.eq(res, "cronjobs")
    c["webhook_written"] = (b.isin(verb, WRITE_VERBS) & b.isin(
        res, ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")))
    c["aws_auth_edited"] = (b.isin(verb, WRITE_VERBS) & b.eq(res, "configmaps") & b.eq(ns, "kube-system")
                            & b.isin("target_name", ("aws-auth", "coredns")))
    c["service_exposed"] = write & no_sub & b.eq(res, "services") & b.isin(
        "service_type", ("NodePort", "LoadBalancer"))
    c["ingress_without_tls"] = ~pc.fill_null(b.table["ingress_tls"], True).to_numpy(zero_copy_only=False).astype(bool)
    c["pods_listed_cluster_wide"] = (b.isin(verb, ("list", "watch")) & b.eq(res, "pods") & b.empty(ns)
                                     & (kinds != "node"))
    # The health path itself or below it, with or without a query.
    health = pc.match_substring_regex(b.table["request_uri"], f"^({'|'.join(HEALTH_PATHS)})([/?]|$)")
    c["anonymous_request"] = anonymous & ~pc.fill_null(health, False).to_numpy(zero_copy_only=False)
    public = b.where("source_ip", is_public)
    system_principal = np.isin(kinds, ["system", "node"]) | b.where("identity", _SYSTEM_SA.match)
    refused = (code >= 400) | b.eq("auth_decision", "forbid")
    c["public_system_namespace"] = public & system_ns
    c["public_system_principal"] = public & system_principal
    c["public_anonymous"] = public & anonymous
    c["public_refused"] = public & refused
    c["events_deleted"] = b.eq(res, "events") & b.isin(verb, ("delete", "deletecollection"))
    c["audit_id_reused"] = b.true("audit_id_reused")
    c["forwarded_unverified"] = b.true("forwarded_unverified")
    c["_refused"] = refused
    return c


def _token_for_another(b: _Batch, rows: np.ndarray) -> np.ndarray:
    """Of ``rows`` (token requests), those for a service account other than the caller."""
    out = np.zeros(b.n, dtype=bool)
    picked = np.flatnonzero(rows)
    if len(picked):
        take = pa.array(picked)
        callers = b.table["identity"].take(take).to_pylist()
        targets = zip(b.table["target_namespace"].take(take).to_pylist(),
                      b.table["target_name"].take(take).to_pylist())
        mine = [caller == f"system:serviceaccount:{ns}:{name}" for caller, (ns, name) in zip(callers, targets)]
        out[picked] = ~np.asarray(mine, dtype=bool)
    return out


def _lists(n: int, rows: np.ndarray, mask: np.ndarray, names: np.ndarray) -> pa.Array:
    """A list<string> column of ``n`` rows: row ``rows[i]`` holds ``names[j]`` for each set
    ``mask[i, j]``; the others, and rows with none set, are NULL."""
    sub_rows, cols = np.nonzero(mask)  # row-major: each row's names in catalogue order
    if len(sub_rows) == 0:
        return pa.nulls(n, pa.list_(pa.string()))
    counts = np.zeros(n, dtype=np.int32)
    counts[rows] = np.bincount(sub_rows, minlength=len(rows))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = pa.array(names, pa.string()).take(pa.array(cols))
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))


_NAMES = np.array([f.name for f in FLAGS], dtype=object)
_FAMILY_OF = np.array([FAMILIES.index(f.family) for f in FLAGS])


def add_flags(table: pa.Table) -> pa.Table:
    """Set ``flags``, ``flags_attempted`` and ``action_families`` of an event table."""
    n = table.num_rows
    if n == 0:
        return table
    batch = _Batch(table.select(list(INPUT_COLUMNS)))
    rows = np.flatnonzero(_candidates(batch))
    cond = _conditions(batch if len(rows) == n else batch.subset(rows)) if len(rows) else {}
    refused = cond.pop("_refused", np.zeros(0, dtype=bool))
    raised = np.column_stack([cond[f.name] for f in FLAGS]) if len(rows) else np.zeros((0, len(FLAGS)), bool)
    families = np.column_stack([raised[:, _FAMILY_OF == k].any(axis=1) for k in range(len(FAMILIES))])
    columns = {"flags": _lists(n, rows, raised & ~refused[:, None], _NAMES),
               "flags_attempted": _lists(n, rows, raised & refused[:, None], _NAMES),
               "action_families": _lists(n, rows, families, np.array(FAMILIES, dtype=object))}
    for name, column in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    return table


def flag_table(events: pd.DataFrame, column: str = "flags") -> pd.DataFrame:
    """One boolean column per flag: whether each event lists it in ``column``."""
    out = np.zeros((len(events), len(FLAGS)), dtype=bool)
    if column in events.columns and len(events):
        lists = pa.array(events[column], pa.list_(pa.string()))
        flat = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
        if len(flat):
            parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
            cols = pd.Index(_NAMES).get_indexer(flat)
            known = cols >= 0
            out[parents[known], cols[known]] = True
    return pd.DataFrame(out, index=events.index, columns=list(_NAMES))


def render_markdown() -> str:
    """The flag table of docs/flags.md."""
    lines = ["| flag | family | raised by | window feature | mirrors |", "|---|---|---|---|---|"]
    for f in FLAGS:
        lines.append(f"| `{f.name}` | {f.family} | {f.definition} | "
                     f"{f'`{f.feature}`' if f.feature else '(flag only)'} | {f.mirrors} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
