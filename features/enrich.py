"""Event-level facts: what kind of identity, what kind of action, and whether it is sensitive.

Pure, vectorised functions over the event table; each adds columns and keeps every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.first_seen import per_unique

IDENTITY_KINDS = ("service_account", "node", "system", "anonymous", "human")
UA_FAMILIES = ("kubectl", "client-go", "curl", "python", "browser", "helm", "other")
WORKLOADS = {"deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs",
             "replicationcontrollers"}
RBAC = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
HEALTH_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/.well-known/openid-configuration",
                "/openid/v1/jwks")
DANGEROUS_CAPS = {"SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "NET_ADMIN", "DAC_READ_SEARCH", "ALL",
                  "BPF", "PERFMON", "SYS_RAWIO"}
RISKY_ROLE_VERBS = {"*", "escalate", "bind", "impersonate"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def _s(events: pd.DataFrame, col: str) -> pd.Series:
    return events[col].astype("string").fillna("")


def identity_kind(events: pd.DataFrame) -> pd.Series:
    """Classify identities: service_account, node, system, anonymous or human."""
    out = per_unique(events["identity"], _identity_kind)
    return pd.Series(out.to_numpy(dtype=object), index=events.index, name="identity_kind")


def _identity_kind(ident: pd.Series) -> pd.Series:
    ident = ident.fillna("")
    kind = np.select(
        [ident.str.startswith("system:serviceaccount:"),
         ident.str.startswith("system:node:"),
         ident.isin(["system:anonymous", "system:unauthenticated"]),
         ident.str.startswith(("system:", "eks:", "aksService"))],
        ["service_account", "node", "anonymous", "system"], default="human")
    return pd.Series(kind, index=ident.index)


def user_agent_family(user_agent: pd.Series) -> pd.Series:
    """Reduce a user agent to the client family an analyst thinks in."""
    out = per_unique(user_agent.fillna(""), _ua_family)
    return pd.Series(out.to_numpy(dtype=object), index=user_agent.index, name="ua_family")


def _ua_family(user_agent: pd.Series) -> pd.Series:
    ua = user_agent.fillna("").str.lower()
    family = np.select(
        [ua.str.startswith("kubectl/"), ua.str.startswith("helm/"), ua.str.startswith("curl/"),
         ua.str.contains(r"python|^openapi-generator", regex=True),
         ua.str.startswith("mozilla/"),
         ua.str.contains(r"^[\w.-]+/v?[\d.]+[\w.+-]* \(\w+/\w+\) (?:kubernetes|[\w-]+)/", regex=True)
         | ua.str.startswith(("go-http-client", "kube-probe", "prometheus", "coredns"))],
        ["kubectl", "helm", "curl", "python", "browser", "client-go"], default="other")
    return pd.Series(family, index=user_agent.index)


def _list_any(values: pd.Series, wanted: set[str]) -> pd.Series:
    present = values[values.notna()]
    hit = pd.Series(False, index=values.index)
    if len(present):
        exploded = present.explode()
        hit.loc[present.index] = exploded.isin(wanted).groupby(level=0).any().reindex(
            present.index, fill_value=False).to_numpy(dtype=bool)
    return hit


def _verb_resource(verb: pd.Series, res: pd.Series, sub: pd.Series) -> pd.Series:
    """'list secrets', 'create pods/exec', 'get nonresource', built once per distinct triple."""
    (vc, vu), (rc, ru), (sc, su) = (pd.factorize(x) for x in (verb, res, sub))
    combined = (vc.astype(np.int64) * len(ru) + rc) * len(su) + sc  # one integer per triple
    codes, uniques = pd.factorize(combined)
    v, rest = np.divmod(uniques, len(ru) * len(su))
    r, c = np.divmod(rest, len(su))
    names = np.array([f"{vu[a]} {ru[b] or 'nonresource'}{'/' + su[d] if su[d] else ''}"
                      for a, b, d in zip(v, r, c, strict=True)], dtype=object)
    return pd.Series(names[codes], index=verb.index, dtype="string")


def own_namespace(identity: pd.Series) -> pd.Series:
    """A service account's namespace (``system:serviceaccount:<ns>:<name>``), else NA."""
    return per_unique(identity, lambda s: s.str.extract(r"^system:serviceaccount:([^:]+):", expand=False))


def enrich_events(events: pd.DataFrame) -> pd.DataFrame:
    """Return ``events`` with the event-level columns the window features are built from.

    The input is not modified. Boolean flags are plain ``bool``; NA counts as False.
    """
    # New columns are collected and joined once: adding ~45 columns one by one to a wide frame
    # costs more than computing them. The caller's frame is never written.
    new: dict[str, Any] = {}  # Series and arrays; some are read back below
    out = events
    verb = _s(out, "verb")
    res = _s(out, "target_resource")
    sub = _s(out, "target_subresource")
    ns = _s(out, "target_namespace")
    name = _s(out, "target_name")
    uri = _s(out, "request_uri")
    code = out["response_code"].astype("Int64").fillna(0).to_numpy()
    decision = _s(out, "auth_decision")
    kind = identity_kind(out)
    new["identity_kind"] = kind
    new["ua_family"] = user_agent_family(out["user_agent"])
    new["own_namespace"] = own_namespace(out["identity"])
    write = verb.isin(WRITE_VERBS)
    create = verb == "create"
    new["is_denied"] = (code == 403) | (decision == "forbid")
    new["is_unauthenticated"] = code == 401
    new["is_other_4xx"] = (code >= 400) & (code < 500) & (code != 401) & (code != 403)
    new["is_5xx"] = code >= 500
    new["is_nonresource"] = res == ""
    new["is_rbac"] = res.isin(RBAC)
    new["is_workload"] = res.isin(WORKLOADS)
    new["is_sa_or_token"] = res == "serviceaccounts"
    new["is_crd"] = res == "customresourcedefinitions"
    new["is_webhook"] = res.isin({"mutatingwebhookconfigurations", "validatingwebhookconfigurations"})
    new["is_csr"] = res == "certificatesigningrequests"
    new["is_self_review"] = res.isin({"selfsubjectaccessreviews", "selfsubjectrulesreviews"})
    pod_create = create & (res.isin({"pods"} | WORKLOADS)) & (sub == "")
    flag = lambda col: out[col].astype("boolean").fillna(False).to_numpy(dtype=bool)  # noqa: E731
    has_paths = out["pod_host_paths"].notna().to_numpy()
    new["n_privileged"] = pod_create & flag("pod_privileged")
    new["n_hostpath"] = pod_create & has_paths
    root_paths = {"/", "/etc", "/root", "/var/run/docker.sock", "/run/containerd/containerd.sock", "/var/lib/kubelet"}
    new["n_hostpath_root"] = pod_create & _list_any(out["pod_host_paths"], root_paths).to_numpy()
    new["n_hostpid"] = pod_create & flag("pod_host_pid")
    new["n_hostnetwork"] = pod_create & flag("pod_host_network")
    new["n_hostipc"] = pod_create & flag("pod_host_ipc")
    new["n_dangerous_caps"] = pod_create & _list_any(out["pod_capabilities"], DANGEROUS_CAPS).to_numpy()
    role_ref = _s(out, "role_ref_name")
    binding_write = verb.isin({"create", "update", "patch"}) & res.isin({"rolebindings", "clusterrolebindings"})
    new["n_admin_bindings"] = binding_write & role_ref.isin({"cluster-admin", "admin", "system:masters"})
    role_write = verb.isin({"create", "update", "patch"}) & res.isin({"roles", "clusterroles"})
    risky_rules = _list_any(out["rule_verbs"], RISKY_ROLE_VERBS) | _list_any(out["rule_resources"], {"*"})
    new["n_risky_roles"] = role_write & risky_rules.to_numpy()
    own_sa = per_unique(out["identity"], lambda u: u.str.rsplit(":", n=1).str[-1]).fillna("")
    new["n_token_requests_other"] = (create & (res == "serviceaccounts") & (sub == "token")
                                     & ((name != own_sa) | (ns != new["own_namespace"].fillna(""))))
    new["n_csr_creates"] = create & (res == "certificatesigningrequests") & (sub == "")
    new["n_csr_approvals"] = ((res == "certificatesigningrequests") & (sub == "approval")
                              & verb.isin({"update", "patch"}))
    new["n_impersonations"] = out["impersonated_user"].notna()
    new["n_exec"] = (res == "pods") & sub.isin({"exec", "attach"})
    new["n_exec_kube_system"] = new["n_exec"] & (ns == "kube-system")
    new["n_portforward_proxy"] = sub.isin({"portforward", "proxy"})
    new["n_webhook_writes"] = new["is_webhook"] & write
    new["n_aws_auth_edits"] = write & (res == "configmaps") & (ns == "kube-system") & name.isin({"aws-auth", "coredns"})
    new["n_events_deleted"] = (res == "events") & verb.isin({"delete", "deletecollection"})
    health = uri.str.startswith(HEALTH_PATHS)
    new["n_anonymous_allowed"] = (kind == "anonymous") & ~new["is_denied"] & (code < 400) & ~health
    owned = out["pod_has_owner"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    new["n_bare_pods"] = create & (res == "pods") & (sub == "") & ~owned & kind.isin({"human", "service_account"})
    new["n_cluster_wide_secret_lists"] = verb.isin({"list", "watch"}) & (res == "secrets") & (ns == "")
    new["n_cluster_wide_pod_lists"] = verb.isin({"list", "watch"}) & (res == "pods") & (ns == "") & (kind != "node")
    # Evidence about the request itself: a client that sets the Audit-ID or X-Forwarded-For
    # header is shaping what the log says about it. Tables from before these columns: False.
    for column, feature in (("audit_id_reused", "n_audit_id_reused"),
                            ("forwarded_unverified", "n_forwarded_unverified")):
        new[feature] = flag(column) if column in out.columns else np.zeros(len(out), dtype=bool)
    new["is_secret_read"] = verb.isin({"get", "list", "watch"}) & (res == "secrets")
    new["is_foreign_namespace"] = (kind == "service_account") & (ns != "") & (ns != new["own_namespace"].fillna(""))
    new["verb_resource"] = _verb_resource(verb, res, sub)
    return pd.concat([events, pd.DataFrame(new, index=events.index)], axis=1)
