"""The feature catalogue: every window feature, why it matters, what it catches, whom it mirrors.

``docs/features.md`` is generated from this list (``python -m features.catalog``) and a test
keeps the two in step; explanations use ``family`` and ``describe``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """One window feature."""

    name: str
    family: str        # volume, verbs, resources, outcomes, reach, sensitive, novelty, time
    definition: str
    why: str = ""
    catches: str = ""
    mirrors: str = ""
    unit: str = "count"  # count, fraction, log, hour, weekday, flag

    def describe(self, value: float) -> str:
        """A plain-words rendering of a value of this feature."""
        if self.unit == "fraction":
            return f"{100 * value:.0f}%"
        if self.unit == "log":
            return f"{max(0.0, math.expm1(value)):.0f} requests"
        if self.unit == "flag":
            return "yes" if value else "no"
        if self.unit == "hour":
            return f"{int(value):02d}:00 UTC"
        return f"{value:g}"


_V = "verbs"
_R = "resources"
_F = [
    Feature("log_requests", "volume", "log(1 + requests in the window)",
            "Bursts: scripted enumeration and scanners are loud.", "anonymous_probing, secret_enumeration",
            "Sigma 'Kubernetes API server burst', GuardDuty volume baselines", "log"),
    Feature("n_verbs", "volume", "distinct verbs used", "A service account has a fixed repertoire.",
            "permission_discovery, privileged_pod"),
    Feature("n_resources", "volume", "distinct resources touched", "Reconnaissance touches many kinds.",
            "secret_enumeration, stolen_token_external"),
    Feature("n_namespaces", "volume", "distinct namespaces touched", "Lateral reach across tenants.",
            "secret_enumeration, token_request"),
    Feature("n_names", "volume", "distinct object names touched", "Breadth of access within a kind.",
            "exec_into_pods"),
]
for _verb in ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"):
    _F.append(Feature(f"frac_{_verb}", _V, f"share of requests with verb {_verb}",
                      "The verb mix of an identity is stable; a reader that starts writing or "
                      "deleting is changing role.",
                      {"list": "secret_enumeration", "create": "privileged_pod, cluster_admin_binding",
                       "delete": "events_deleted", "deletecollection": "events_deleted",
                       "patch": "aws_auth_edit"}.get(_verb, ""),
                      "Falco k8s audit 'kmodify'/'kcreate' macros", "fraction"))
for _sub, _why, _att in (("exec", "Interactive shell in a container.", "exec_into_pods, privileged_pod"),
                         ("attach", "Attaching to a running container.", "exec_into_pods"),
                         ("portforward", "Tunnelling into the cluster network.", ""),
                         ("proxy", "Reaching kubelets or services through the API server.", "")):
    _F.append(Feature(f"frac_{_sub}", _V, f"share of requests to the pods/{_sub} subresource", _why,
                      _att, "Falco 'Attach/Exec Pod', Elastic 'Kubernetes Pod exec'", "fraction"))
for _res, _why, _att, _mir in (
        ("pods", "Workload control.", "privileged_pod", ""),
        ("secrets", "Credentials.", "secret_enumeration, token_request", "GuardDuty CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"),
        ("configmaps", "Configuration, including aws-auth and coredns.", "aws_auth_edit", ""),
        ("rbac", "Roles and bindings: privilege.", "cluster_admin_binding", "GuardDuty PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated"),
        ("serviceaccounts", "Service accounts and their tokens.", "token_request", ""),
        ("workloads", "Deployments, DaemonSets, Jobs, CronJobs.", "cronjob_persistence, daemonset_persistence", "GuardDuty Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed"),
        ("nodes", "Node inventory.", "night_session_new_country", ""),
        ("namespaces", "Namespace inventory.", "stolen_token_external", ""),
        ("crds", "Custom resource definitions.", "", ""),
        ("webhooks", "Admission webhooks.", "mutating_webhook", ""),
        ("csrs", "Certificate signing requests.", "csr_approval", ""),
        ("events", "Kubernetes events (the cluster's own diary).", "events_deleted", ""),
        ("self_reviews", "SelfSubjectAccess/RulesReviews: 'what may I do?'.", "permission_discovery", "GuardDuty Discovery:Kubernetes/AnomalousBehavior.PermissionChecked"),
        ("nonresource", "Non-resource URLs (/api, /version, /metrics).", "anonymous_probing", "")):
    _F.append(Feature(f"frac_res_{_res}", _R, f"share of requests on {_res.replace('_', ' ')}",
                      _why, _att, _mir, "fraction"))
_F += [
    Feature("frac_denied", "outcomes", "share of requests denied (403 or decision forbid)",
            "Probing collects denials; normal clients are configured to succeed.",
            "secret_enumeration, stolen_token_external, anonymous_probing, low_and_slow_probing",
            "Sigma 'Kubernetes unauthorized access', Elastic 'Forbidden request from unusual user agent'",
            "fraction"),
    Feature("n_denied", "outcomes", "requests denied", "Absolute denials (a share hides a burst in a busy window).",
            "secret_enumeration, anonymous_probing, low_and_slow_probing"),
    Feature("frac_unauthenticated", "outcomes", "share of 401 responses (failed authentication)",
            "Stolen, expired or guessed tokens.", "", "", "fraction"),
    Feature("frac_other_4xx", "outcomes", "share of other 4xx (404, 409, 422)", "Blind guessing of names.",
            "", "", "fraction"),
    Feature("frac_5xx", "outcomes", "share of 5xx responses", "Broken or abusive clients.", "", "", "fraction"),
    Feature("n_foreign_namespaces", "reach", "namespaces a service account touched outside its own",
            "A workload identity should stay home.", "secret_enumeration, token_request, events_deleted, low_and_slow_probing",
            "GuardDuty AnomalousBehavior namespace attribute"),
    Feature("n_secret_namespaces", "reach", "namespaces where secrets were read or listed",
            "Credential harvesting spreads over namespaces.", "secret_enumeration, night_session_new_country"),
    Feature("n_secret_names", "reach", "distinct secret names read",
            "Reading many different secrets is harvesting.", "secret_enumeration"),
]
for _name, _def, _att, _mir in (
        ("n_privileged", "pods or workload templates written with a privileged container", "privileged_pod, daemonset_persistence, cronjob_persistence", "Falco 'Create Privileged Pod', GuardDuty PrivilegeEscalation:Kubernetes/PrivilegedContainer"),
        ("n_hostpath", "pods or workloads written with any hostPath volume", "privileged_pod, daemonset_persistence, cronjob_persistence", "Falco 'Create Sensitive Mount Pod'"),
        ("n_hostpath_root", "pods or workloads written with hostPath /, /proc, /etc, /root, /etc/kubernetes, /var/lib/kubelet or a container runtime socket", "privileged_pod", "GuardDuty Persistence:Kubernetes/ContainerWithSensitiveMount"),
        ("n_hostpid", "pods or workloads sharing the host PID namespace", "privileged_pod", "Falco 'Create HostPid Pod'"),
        ("n_hostnetwork", "pods or workloads on the host network", "privileged_pod", "Falco 'Create HostNetwork Pod'"),
        ("n_hostipc", "pods or workloads sharing the host IPC namespace", "", "Sigma 'Kubernetes host IPC'"),
        ("n_dangerous_caps", "pods adding SYS_ADMIN, SYS_PTRACE, SYS_MODULE, NET_ADMIN, BPF or ALL", "", "Falco capability rules"),
        ("n_admin_bindings", "bindings written to cluster-admin, admin, system:masters or a control-plane role", "cluster_admin_binding", "Falco 'Attach to cluster-admin Role', GuardDuty RoleBindingCreated"),
        ("n_risky_roles", "roles written with '*', escalate, bind or impersonate", "", "Falco 'ClusterRole With Wildcard Created', GuardDuty RoleCreated"),
        ("n_token_requests_other", "TokenRequests for a service account other than the caller (kubelets excepted)", "token_request", "Elastic 'Kubernetes service account token requested'"),
        ("n_csr_creates", "client-certificate signing requests created", "csr_approval", ""),
        ("n_csr_approvals", "certificate signing requests approved", "csr_approval", "Sigma 'Kubernetes CSR approved'"),
        ("n_impersonations", "requests made while impersonating another user", "impersonation", "Elastic 'Kubernetes user impersonation'"),
        ("n_exec", "exec or attach into a pod", "exec_into_pods, privileged_pod", "GuardDuty Execution:Kubernetes/ExecInKubeSystemPod"),
        ("n_exec_kube_system", "exec or attach into a kube-system pod", "exec_into_pods", "GuardDuty Execution:Kubernetes/ExecInKubeSystemPod"),
        ("n_portforward_proxy", "port-forward or proxy calls", "", ""),
        ("n_webhook_writes", "admission webhook configurations written", "mutating_webhook", "Falco 'Create/Modify Configmap With Private Credentials' family; Sigma webhook rules"),
        ("n_webhook_external", "admission webhook configurations written that send requests out of the cluster (a public address or a host name that is not a cluster service)", "mutating_webhook", "Microsoft's Threat Matrix for Kubernetes 'Malicious admission controller'"),
        ("n_aws_auth_edits", "writes to kube-system/aws-auth or coredns", "aws_auth_edit", "Sigma 'AWS EKS aws-auth ConfigMap modified'"),
        ("n_events_deleted", "Kubernetes events deleted", "events_deleted", "Sigma 'Kubernetes events deleted'"),
        ("n_anonymous_allowed", "anonymous requests allowed outside health probes and issuer discovery (/version counts)", "anonymous_probing", "GuardDuty Policy:Kubernetes/AnonymousAccessGranted"),
        ("n_bare_pods", "pods without an owner created by a person or service account", "privileged_pod", "Elastic 'Kubernetes pod created with no owner'"),
        ("n_cluster_wide_secret_lists", "secrets listed or watched across all namespaces", "secret_enumeration, cluster_admin_binding", "GuardDuty Discovery:Kubernetes/SuccessfulAnonymousAccess family"),
        ("n_cluster_wide_pod_lists", "pods listed across all namespaces (kubelets excluded)", "stolen_token_external", ""),
        ("n_audit_id_reused", "requests that reuse another request's audit ID (clients set it with the Audit-ID header)", "", "no rule set checks this"),
        ("n_forwarded_unverified", "requests whose X-Forwarded-For chain no trusted proxy vouches for (a typed header hiding the client)", "", "no rule set checks this"),
        ("n_runs_as_root", "pods or workloads written to run as root (runAsUser 0, runAsNonRoot false, allowPrivilegeEscalation)", "", "Panther Kubernetes.Pod.Privileged.Created"),
        ("n_system_namespace_workloads", "pods or workloads created in kube-system, kube-public or kube-node-lease", "", "Falco 'Pod Created in Kube Namespace'"),
        ("n_system_namespace_serviceaccounts", "service accounts created in a system namespace", "", "Falco 'Service Account Created in Kube Namespace'"),
        ("n_role_grants", "roles written granting pods/exec, pods/attach, nodes/proxy or secrets", "", "Falco 'ClusterRole With Pod Exec Created', Panther Kubernetes.Role.NodeProxyPermissions"),
        ("n_system_role_changes", "system: roles or bindings updated, patched or deleted", "", "Falco 'System ClusterRole Modified/Deleted'"),
        ("n_configmap_credentials", "config maps written with credential-shaped data", "", "Falco 'Create/Modify Configmap With Private Credentials'"),
        ("n_exec_credentials", "exec commands naming token, SSH key or credential files", "", "Panther Kubernetes.Pod.StealServiceAccountToken"),
        ("n_persistent_workloads", "DaemonSets created, CronJobs written", "", "Panther Kubernetes.DaemonSet.Created, Kubernetes.CronJob.CreatedOrModified"),
        ("n_exposures", "Services written as NodePort or LoadBalancer, Ingresses without TLS", "", "Falco 'Create NodePort Service', Panther Kubernetes.Ingress.NoTLS"),
        ("n_public_source", "requests from a public address into system namespaces, by system principals or service accounts, or anonymous", "", "Panther Kubernetes.System.Principal.PublicIP"),
        ("n_attempted", "refused or failed requests that would have raised a flag (the flags in flags_attempted)", "", "")):
    _F.append(Feature(_name, "sensitive", _def, "A risky action, counted, so that its rarity for this identity is learned.",
                      _att, _mir))
for _attr, _def, _att, _mir in (
        ("source_ip", "source IPs this identity never used before", "stolen_token_external, night_session_new_country", "GuardDuty AnomalousBehavior remote IP (UNSEEN)"),
        ("ip_range", "source /16 networks never seen for any identity of the cluster", "stolen_token_external, anonymous_probing", "GuardDuty 'unusual location'"),
        ("user_agent", "user agents this identity never used before (by client line: a newer build of the same program on the same platform is not new)", "stolen_token_external, secret_enumeration", "Elastic 'new user agent for user' new-terms rule"),
        ("ua_family", "client families (kubectl, client-go, curl, python, browser, helm, other) new for this identity", "stolen_token_external, anonymous_probing", "GuardDuty user agent attribute"),
        ("principal", "IAM sessions or ARNs new for this (shared) username", "night_session_new_country", "GuardDuty IAM principal attribute"),
        ("verb_resource", "(verb, resource) pairs this identity never used before",
         "every attack that does something new: cronjob_persistence, daemonset_persistence, "
         "mutating_webhook, csr_approval, permission_discovery, token_request, events_deleted, "
         "aws_auth_edit, cluster_admin_binding", "GuardDuty 'API invoked' attribute"),
        ("namespace", "namespaces this identity never touched before (a kubelet: that no kubelet touched, since the scheduler decides which namespaces a node serves)", "secret_enumeration, token_request", "GuardDuty namespace attribute"),
        ("image", "container images this identity never deployed before", "privileged_pod, daemonset_persistence, cronjob_persistence", "GuardDuty Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed image attribute"),
        ("denied_target", "denied requests for a (verb, resource, namespace, name) this identity was never denied before: a probe, where a repeated denial is a retry",
         "permission_discovery, low_and_slow_probing, stolen_token_external", ""),
        ("refused_target", "refused flagged actions on a target this identity was never refused before (as new_denied_target)",
         "secret_enumeration, cluster_admin_binding", "")):
    _F.append(Feature(f"new_{_attr}", "novelty", _def, "Novelty against the identity's own past: the GuardDuty UNSEEN idea.",
                      _att, _mir))
_F += [
    Feature("new_identity", "novelty", "1 when the identity has never been seen before this window",
            "A brand-new account or a minted token acting.", "cluster_admin_binding, token_request",
            "GuardDuty 'new principal'", "flag"),
    Feature("hour_of_day", "time", "UTC hour of the window; the baseline turns it into rarity for this identity",
            "People work in their hours; 03:00 is not one of them.", "night_session_new_country, exec_into_pods",
            "GuardDuty AnomalousBehavior time attribute", "hour"),
    Feature("weekday", "time", "weekday of the window; the baseline turns it into rarity for this identity",
            "Weekly rhythm of people and CI.", "", "", "weekday"),
]
FEATURES: tuple[Feature, ...] = tuple(_F)
BY_NAME = {f.name: f for f in FEATURES}


def render_markdown() -> str:
    """The text of docs/features.md."""
    lines = ["# Features", "",
             "One row per (identity, window); default window one hour. Generated from",
             "`features/catalog.py` (`python -m features.catalog > docs/features.md`).", "",
             "The model does not read these values directly: `IdentityBaseline` turns each into a",
             "deviation from the identity's own history (median and IQR over its past windows); an",
             "identity with fewer than `min_history` windows is compared with its peer group (the",
             "nodes, its namespace's service accounts, its IAM role's sessions; else its kind, else",
             "everyone; its first window also with its peers' first windows), and its own-history",
             "novelty (`new_*` but `new_ip_range`) then counts 0, being new (`new_identity`) one",
             "scale unit. It turns hour and weekday into rarity for that identity.", "",
             "Novelty (`new_*`) is causal: a value is new in the first window it appears in, judged",
             "only against earlier windows, so training data holds the novelty rates it really had.",
             "",
             "The `sensitive` family counts the event table's flags ([flags.md](flags.md)) that were",
             "carried out; `n_attempted` counts the requests whose flagged action was refused or failed.",
             ""]
    family = None
    for f in FEATURES:
        if f.family != family:
            family = f.family
            lines += ["", f"## {family}", "", "| feature | definition | why | catches | mirrors |",
                      "|---|---|---|---|---|"]
        lines.append(f"| `{f.name}` | {f.definition} | {f.why} | {f.catches} | {f.mirrors} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
