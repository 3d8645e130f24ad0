"""How each flag of :mod:`features.flags` is computed from an event table's columns.

Run on Arrow batches at ingest without a Python loop over rows: string conditions are
evaluated once per distinct value of a column (a batch has few verbs, identities and
addresses), and only rows whose resource or caller can raise a flag are tested in full.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.flags import (
    ANONYMOUS_PATHS,
    DANGEROUS_CAPS,
    FAMILIES,
    FLAG_NAMES,
    FLAGS,
    PRIVILEGED_ROLES,
    SENSITIVE_PATHS,
    SYSTEM_NAMESPACES,
    WORKLOADS,
    WRITE_VERBS,
    identity_kinds,
    is_external_url,
    is_public,
)

#: The event-table columns the flags are computed from.
INPUT_COLUMNS = (
    "verb",
    "identity",
    "target_resource",
    "target_subresource",
    "target_namespace",
    "target_name",
    "request_uri",
    "response_code",
    "auth_decision",
    "impersonated_user",
    "source_ip",
    "pod_privileged",
    "pod_runs_as_root",
    "pod_host_paths",
    "pod_host_network",
    "pod_host_pid",
    "pod_host_ipc",
    "pod_capabilities",
    "pod_has_owner",
    "role_ref_name",
    "rule_verbs",
    "rule_resources",
    "service_type",
    "ingress_tls",
    "configmap_credentials",
    "csr_signer",
    "webhook_urls",
    "exec_command",
    "audit_id_reused",
    "forwarded_unverified",
)

_CREDENTIAL_PATHS = re.compile(
    r"/var/run/secrets/|serviceaccount|/\.ssh/|id_rsa|id_ed25519|/etc/shadow"
    r"|\.kube/config|\.aws/credentials|credentials|token",
    re.IGNORECASE,
)
_ANONYMOUS_PATHS = f"^({'|'.join(re.escape(p) for p in ANONYMOUS_PATHS)})([/?]|$)"
#: A list of the pods bound to one node (kubectl drain, a node group's replacement, the
#: autoscaler's scale-down): its field selector names the node, so it reads one node's pods.
_ONE_NODE = r"[?&]fieldSelector=([^&]*,)?spec\.nodeName(%3D|=)[^&,]+"
_SYSTEM_SA = re.compile(r"^system:serviceaccount:(kube-system|kube-public|kube-node-lease):")


class _Batch:
    """Row masks of one table, each string condition evaluated on distinct values only."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = table.num_rows
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._at: dict[str, dict] = {}
        self._kinds: np.ndarray | None = None

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(row -> index into values, -1 for null or ''; distinct values)."""
        if column not in self._codes:
            encoded = pc.dictionary_encode(self.table[column].combine_chunks(), null_encoding="encode")
            values = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
            missing = np.array([v is None or v == "" for v in values], dtype=bool)
            remap = np.where(missing, -1, np.arange(len(values)))
            idx = remap[encoded.indices.to_numpy(zero_copy_only=False)] if len(values) else np.full(self.n, -1)
            self._codes[column] = (idx, np.where(missing, "", values))
        return self._codes[column]

    def where(self, column: str, test) -> np.ndarray:
        """Rows whose value passes ``test``, a function of one value, called once per value."""
        idx, values = self.codes(column)
        hit = np.fromiter((bool(test(v)) for v in values), dtype=bool, count=len(values))
        return np.append(hit, False)[idx]

    def isin(self, column: str, wanted) -> np.ndarray:
        idx, values = self.codes(column)
        if column not in self._at:
            # Each distinct value's position: a test looks up its few wanted values instead of
            # comparing every distinct value (names and addresses run to thousands a batch).
            # Missing values (NULL and '', both '' here) are left out: their rows' code is -1.
            self._at[column] = {v: i for i, v in enumerate(values) if v != ""}
        hit = np.zeros(len(values) + 1, dtype=bool)  # the last: rows whose value is missing
        for value in wanted:
            at = self._at[column].get(value)
            if at is not None:
                hit[at] = True
        return hit[idx]

    def list_where(self, column: str, test) -> np.ndarray:
        """Rows whose list column holds a value passing ``test`` (called once per distinct value)."""
        lists = self.table[column].combine_chunks()
        flat = pc.list_flatten(lists)
        if len(flat) == 0:
            return np.zeros(self.n, dtype=bool)
        encoded = pc.dictionary_encode(flat)
        values = encoded.dictionary.to_pylist()
        passed = np.fromiter((v is not None and bool(test(v)) for v in values), dtype=bool, count=len(values))
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        hit = np.append(passed, False)[codes]  # a NULL element (-1) passes nothing
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        return np.bincount(parents[hit], minlength=self.n) > 0

    def subset(self, rows: np.ndarray) -> _Batch:
        """The same masks for ``rows`` only, reusing the distinct values found so far."""
        part = _Batch(self.table.take(pa.array(rows)))
        part._codes = {c: (idx[rows], values) for c, (idx, values) in self._codes.items()}
        part._at = dict(self._at)  # the same distinct values, so the same positions
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
_RESOURCES = (
    "pods",
    *WORKLOADS,
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
    "serviceaccounts",
    "certificatesigningrequests",
    "secrets",
    "configmaps",
    "services",
    "ingresses",
    "events",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
)
_SUBRESOURCES = ("exec", "attach", "portforward", "proxy")
_RESOURCE_SET, _SUBRESOURCE_SET = pa.array(_RESOURCES), pa.array(_SUBRESOURCES)
_ANONYMOUS = pa.array(["system:anonymous", "system:unauthenticated"])


def _candidates(b: _Batch) -> np.ndarray:
    """Rows that may raise a flag (Arrow kernels over the whole batch; codes only for addresses)."""
    t = b.table
    maybe = pc.or_(
        pc.is_in(t["target_resource"], value_set=_RESOURCE_SET),
        pc.is_in(t["target_subresource"], value_set=_SUBRESOURCE_SET),
    )
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
    paths_null = pc.is_null(b.table["pod_host_paths"]).to_numpy(zero_copy_only=False)
    c["host_path"] = pod_spec & ~np.asarray(paths_null, dtype=bool)
    c["sensitive_host_path"] = pod_spec & b.list_any("pod_host_paths", SENSITIVE_PATHS)
    c["host_pid"] = pod_spec & b.true("pod_host_pid")
    c["host_network"] = pod_spec & b.true("pod_host_network")
    c["host_ipc"] = pod_spec & b.true("pod_host_ipc")
    c["dangerous_capabilities"] = pod_spec & b.list_any("pod_capabilities", DANGEROUS_CAPS)
    c["runs_as_root"] = pod_spec & b.true("pod_runs_as_root")
    c["system_namespace_workload"] = create & no_sub & b.isin(res, ("pods", *WORKLOADS)) & system_ns & (kinds != "node")
    c["system_namespace_serviceaccount"] = create & no_sub & b.eq(res, "serviceaccounts") & system_ns
    c["privileged_binding"] = (
        write
        & b.isin(res, ("rolebindings", "clusterrolebindings"))
        & b.where("role_ref_name", lambda v: v in PRIVILEGED_ROLES or v.startswith("system:controller:"))
    )
    c["role_wildcard"] = role & (b.list_any("rule_verbs", ["*"]) | b.list_any("rule_resources", ["*"]))
    c["role_escalation_verbs"] = role & b.list_any("rule_verbs", ["escalate", "bind", "impersonate"])
    c["role_grants_exec"] = role & b.list_any("rule_resources", ["pods/exec", "pods/attach", "pods/*"])
    c["role_grants_node_proxy"] = role & b.list_any("rule_resources", ["nodes/proxy", "nodes/*"])
    c["role_grants_secrets"] = role & b.list_any("rule_resources", ["secrets"])
    c["role_grants_write"] = role & b.list_any("rule_verbs", WRITE_VERBS)
    c["system_role_changed"] = (
        b.isin(verb, ("update", "patch", "delete"))
        & b.isin(res, ("roles", "clusterroles", "rolebindings", "clusterrolebindings"))
        & b.where("target_name", lambda v: v.startswith("system:"))
    )
    c["impersonation"] = ~b.empty("impersonated_user")
    # Kubelets fetch their pods' tokens, and the controller manager its controllers' ones.
    c["token_request_other"] = _token_for_another(
        b,
        create
        & b.eq(res, "serviceaccounts")
        & b.eq(sub, "token")
        & (kinds != "node")
        & ~((kinds == "system") & system_ns),
    )
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
    c["webhook_written"] = b.isin(verb, WRITE_VERBS) & b.isin(
        res, ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
    )
    c["webhook_calls_out"] = (
        write
        & b.isin(res, ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"))
        & b.list_where("webhook_urls", is_external_url)
    )
    c["aws_auth_edited"] = (
        b.isin(verb, WRITE_VERBS)
        & b.eq(res, "configmaps")
        & b.eq(ns, "kube-system")
        & b.isin("target_name", ("aws-auth", "coredns"))
    )
    c["service_exposed"] = write & no_sub & b.eq(res, "services") & b.isin("service_type", ("NodePort", "LoadBalancer"))
    c["ingress_without_tls"] = ~pc.fill_null(b.table["ingress_tls"], True).to_numpy(zero_copy_only=False).astype(bool)
    one_node = pc.fill_null(pc.match_substring_regex(b.table["request_uri"], _ONE_NODE), False)
    c["pods_listed_cluster_wide"] = (
        b.isin(verb, ("list", "watch"))
        & b.eq(res, "pods")
        & b.empty(ns)
        & (kinds != "node")
        & ~one_node.to_numpy(zero_copy_only=False)
    )
    # The path itself or below it, with or without a query.
    health = pc.match_substring_regex(b.table["request_uri"], _ANONYMOUS_PATHS)
    c["anonymous_request"] = anonymous & ~pc.fill_null(health, False).to_numpy(zero_copy_only=False)
    public = b.where("source_ip", is_public)
    system_principal = np.isin(kinds, ["system", "node"]) | b.where("identity", _SYSTEM_SA.match)
    refused = (code >= 400) | b.eq("auth_decision", "forbid")
    c["public_system_namespace"] = public & system_ns
    c["public_system_principal"] = public & system_principal
    # Any service account, not only the system ones: an application's token is what leaks (a
    # manifest, an image layer, a log). Where a cluster's own pods reach a public endpoint
    # through NAT, all its accounts raise it, and their rarity learns that it is routine there.
    c["public_service_account"] = public & (kinds == "service_account")
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
        targets = zip(
            b.table["target_namespace"].take(take).to_pylist(),
            b.table["target_name"].take(take).to_pylist(),
            strict=True,
        )
        mine = [
            caller == f"system:serviceaccount:{ns}:{name}" for caller, (ns, name) in zip(callers, targets, strict=True)
        ]
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
    columns = {
        "flags": _lists(n, rows, raised & ~refused[:, None], FLAG_NAMES),
        "flags_attempted": _lists(n, rows, raised & refused[:, None], FLAG_NAMES),
        "action_families": _lists(n, rows, families, np.array(FAMILIES, dtype=object)),
    }
    for name, column in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    return table
