"""The sensitive action families :class:`models.rarity.ActionRarity` scores, and the context that raises them.

Each family is a kind of act an attacker needs and most identities never do (GuardDuty's
design: one anomaly per action family); each context is a novelty in the same window that
makes a rare act more suspicious. Kept apart from the estimator: what is counted is one
question, how rare it is another.
"""

from __future__ import annotations

#: Action family -> (plain words, the window features that count it). A family occurs in a
#: window when any of its features is above 0 (features/catalog.py, family "sensitive").
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    # A namespace's list returns every secret's data in it: a read of all of them, not reach alone.
    "secrets_read": ("secrets read", ("n_secret_names", "n_secret_namespaces", "n_cluster_wide_secret_lists")),
    "exec": ("exec or attach into a pod", ("n_exec", "n_exec_kube_system", "n_exec_credentials")),
    "port_forward": ("port-forward or proxy", ("n_portforward_proxy",)),
    "privileged_binding": ("binding to an admin role", ("n_admin_bindings", "n_system_role_changes")),
    "risky_role": ("role with wildcards, escalation or exec/secrets grants", ("n_risky_roles", "n_role_grants")),
    "host_workload": (
        "workload with privileged or host settings",
        ("n_privileged", "n_hostpath", "n_hostpath_root", "n_hostpid", "n_hostnetwork", "n_hostipc")
        + ("n_dangerous_caps", "n_runs_as_root"),
    ),
    "bare_pod": ("pod created by hand (no owner)", ("n_bare_pods",)),
    "system_namespace_write": (
        "workload or service account created in a system namespace",
        ("n_system_namespace_workloads", "n_system_namespace_serviceaccounts"),
    ),
    "persistence": ("DaemonSet created or CronJob written", ("n_persistent_workloads",)),
    "token_request": ("token requested for another service account", ("n_token_requests_other",)),
    "impersonation": ("request impersonating another user", ("n_impersonations",)),
    "csr_create": ("client certificate requested", ("n_csr_creates",)),
    "csr_approval": ("certificate request approved", ("n_csr_approvals",)),
    "webhook_write": ("admission webhook written", ("n_webhook_writes",)),
    # Where the webhook's requests go is a separate act: operators' webhooks are cluster services.
    "webhook_external": ("admission webhook sending requests out of the cluster", ("n_webhook_external",)),
    "aws_auth_edit": ("aws-auth or coredns written", ("n_aws_auth_edits",)),
    "events_deleted": ("Kubernetes events deleted", ("n_events_deleted",)),
    "permission_check": ("permission check (can-i)", ("frac_res_self_reviews",)),
    "anonymous": ("anonymous request allowed", ("n_anonymous_allowed",)),
    "public_source": ("request from a public address where none belongs", ("n_public_source",)),
    "exposure": ("service exposed or credentials written to a ConfigMap", ("n_exposures", "n_configmap_credentials")),
    "cluster_wide_pod_list": ("pods listed across all namespaces", ("n_cluster_wide_pod_lists",)),
    # On a target the identity was never denied before (features/refusals.py): a controller
    # denied the same call every reconcile is retrying, not probing. Their rates: RATE_OF.
    "denied": ("request denied", ("new_denied_target",)),
    "refused_sensitive": ("sensitive action refused", ("new_refused_target",)),
    "evasion": ("audit ID reused or forwarded address unverified", ("n_audit_id_reused", "n_forwarded_unverified")),
}
#: Families that occur on a new refusal target but whose rate is how often the identity is
#: denied at all. A denial's target is new mostly in the first days (every routine target is
#: learned then), so new targets alone fall to "never" on a long training, and a person's first
#: denial in a new namespace scored as a first-ever impersonation (50 nodes, seed 1: 21.7 nats
#: each, 51 nats in all, the top of every held-out reference; docs/method.md).
RATE_OF: dict[str, tuple[str, ...]] = {"denied": ("n_denied",), "refused_sensitive": ("n_attempted",)}
#: Novelty in the same window that makes an unusual action more suspicious. The per-identity
#: ones are trivially true in an identity's first window, so they are judged only for known
#: identities; a /16 new to the whole cluster is news whoever uses it.
CONTEXT: dict[str, tuple[str, bool]] = {
    "new_source_ip": ("from a new source address", True),
    "new_ip_range": ("from a network new to the cluster", False),
    "new_user_agent": ("with a new user agent", True),
    "new_ua_family": ("with a new kind of client", True),
    "new_principal": ("by a new IAM session", True),
    "new_namespace": ("in a namespace new to the identity", True),
    "new_image": ("with an image new to the identity", True),
}
NEW_IDENTITY = "new_identity"
