"""The normalised event table: one row per API request, one typed column per fact we model.

Column names follow Falco's k8saudit field vocabulary without its punctuation
(``ka.user.name`` -> ``identity``, ``ka.target.resource`` -> ``target_resource``).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

_STR = pa.string()
_STRS = pa.list_(pa.string())

#: (column, arrow type, meaning). The order here is the order of the table.
EVENT_FIELDS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("audit_id", _STR, "auditID; 'md5:<hash of the line>' when the event has none"),
    ("stage", _STR, "stage as given (ResponseComplete, ResponseStarted, Panic, RequestReceived)"),
    ("level", _STR, "audit level as given (Metadata, Request, RequestResponse)"),
    (
        "timestamp",
        pa.timestamp("us", tz="UTC"),
        "requestReceivedTimestamp, else stageTimestamp, else the legacy top-level timestamp, "
        "else the CloudWatch ingestion time; UTC",
    ),
    ("verb", _STR, "API verb (get, list, watch, create, patch, ...)"),
    ("identity", _STR, "user.username; 'system:unauthenticated' for a 401 with no user"),
    ("user_groups", _STRS, "user.groups"),
    ("principal_arn", _STR, "EKS: user.extra.arn[0], the assumed-role session ARN"),
    ("principal_canonical_arn", _STR, "EKS: user.extra.canonicalArn[0], the IAM role or user"),
    ("principal_session", _STR, "EKS: user.extra.sessionName[0]"),
    ("principal_access_key", _STR, "EKS: user.extra.accessKeyId[0]"),
    ("impersonated_user", _STR, "impersonatedUser.username"),
    (
        "source_ip",
        _STR,
        "the client address: the rightmost of sourceIPs that is not a trusted "
        "proxy (the last one is the API server's TCP peer; the others are X-Forwarded-For)",
    ),
    ("source_ips", _STRS, "sourceIPs as logged; untrusted: the client can set all but the last"),
    (
        "forwarded_unverified",
        pa.bool_(),
        "sourceIPs names addresses beyond source_ip: a forwarded "
        "chain that no trusted proxy vouches for (someone typed an X-Forwarded-For header)",
    ),
    ("user_agent", _STR, "userAgent"),
    ("target_resource", _STR, "objectRef.resource"),
    ("target_subresource", _STR, "objectRef.subresource (exec, attach, token, approval, ...)"),
    ("api_group", _STR, "objectRef.apiGroup (absent for the core group)"),
    ("api_version", _STR, "objectRef.apiVersion"),
    ("target_namespace", _STR, "objectRef.namespace"),
    ("target_name", _STR, "objectRef.name"),
    ("request_uri", _STR, "requestURI, query string included"),
    ("response_code", pa.int32(), "responseStatus.code"),
    ("auth_decision", _STR, "annotation authorization.k8s.io/decision (allow, forbid)"),
    ("auth_reason", _STR, "annotation authorization.k8s.io/reason"),
    ("request_object_kind", _STR, "requestObject.kind, when the body was logged"),
    ("pod_privileged", pa.bool_(), "a container of the pod spec in the body is privileged"),
    (
        "pod_runs_as_root",
        pa.bool_(),
        "the pod spec sets runAsUser 0 or runAsNonRoot false (pod or "
        "container), or a container sets allowPrivilegeEscalation true",
    ),
    ("pod_host_paths", _STRS, "hostPath volume paths of the pod spec in the body"),
    ("pod_host_network", pa.bool_(), "pod spec sets hostNetwork"),
    ("pod_host_pid", pa.bool_(), "pod spec sets hostPID"),
    ("pod_host_ipc", pa.bool_(), "pod spec sets hostIPC"),
    ("pod_capabilities", _STRS, "capabilities added by any container"),
    ("pod_images", _STRS, "container images (containers, initContainers, ephemeralContainers)"),
    ("pod_has_owner", pa.bool_(), "a Pod body names an ownerReference (created by a controller)"),
    (
        "pod_owner",
        _STR,
        "a Pod body's owner as 'Kind/namespace/name' (the controller reference, else the first; a "
        "ReplicaSet without its pod-template-hash suffix); as claimed by whoever sent the request",
    ),
    ("role_ref_kind", _STR, "RoleBinding/ClusterRoleBinding roleRef.kind"),
    ("role_ref_name", _STR, "RoleBinding/ClusterRoleBinding roleRef.name"),
    ("subjects", _STRS, "binding subjects as 'Kind:namespace/name'"),
    ("rule_verbs", _STRS, "Role/ClusterRole: distinct verbs over all rules"),
    ("rule_resources", _STRS, "Role/ClusterRole: distinct resources over all rules"),
    ("service_type", _STR, "Service body: spec.type (ClusterIP, NodePort, LoadBalancer, ...)"),
    (
        "ingress_tls",
        pa.bool_(),
        "Ingress created or replaced: whether spec.tls names a certificate; NULL for other events and for patches",
    ),
    (
        "configmap_credentials",
        pa.bool_(),
        "ConfigMap body: a data key or value is shaped like a "
        "credential (password, AWS key, private key, token); the value itself is never kept",
    ),
    ("csr_signer", _STR, "CertificateSigningRequest body: spec.signerName"),
    ("webhook_urls", _STRS, "Mutating/ValidatingWebhookConfiguration body: each webhook's clientConfig.url"),
    ("exec_command", _STR, "pods/exec: the command from the URI query, joined by spaces"),
    ("truncated", pa.bool_(), "the line was cut off; the row holds the fields that survived"),
    (
        "audit_id_reused",
        pa.bool_(),
        "another request read before this one carries the same auditID (clients can set it with the Audit-ID header)",
    ),
    (
        "flags",
        _STRS,
        "sensitive-action flags the request raised and the API server carried out "
        "(features/flags.py, docs/flags.md); NULL when none",
    ),
    (
        "flags_attempted",
        _STRS,
        "the same flags, raised by a request that was refused or failed "
        "(a 4xx/5xx response or decision forbid); NULL when none",
    ),
    ("action_families", _STRS, "the action families of the flags in either column"),
    ("source_file", _STR, "file (or s3/cloudwatch URI) the event was read from"),
    ("source_line", pa.int64(), "1-based line of that file where the event (or its wrapper) starts"),
)

#: Columns added after event tables were first written: older tables read with these defaults.
LATER_COLUMNS: dict[str, object] = {
    "forwarded_unverified": False,
    "audit_id_reused": False,
    "pod_runs_as_root": False,
    "pod_owner": None,
    "service_type": None,
    "ingress_tls": None,
    "configmap_credentials": None,
    "csr_signer": None,
    "webhook_urls": None,
    "flags": None,
    "flags_attempted": None,
    "action_families": None,
}

EVENT_SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in EVENT_FIELDS])
EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)
_EVENT_NAMES = frozenset(EVENT_COLUMNS)

_PANDAS_TYPES = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _types_mapper(typ: pa.DataType):
    if pa.types.is_list(typ):
        return pd.ArrowDtype(typ)
    return _PANDAS_TYPES.get(typ)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Convert an event table in :data:`EVENT_SCHEMA` to its documented pandas dtypes.

    A table of some of its columns (repeats collapsed: features/repeats.py) keeps its columns,
    those of the event table typed as there, the others as they are.
    """
    if table.column_names == EVENT_SCHEMA.names:
        return table.cast(EVENT_SCHEMA).to_pandas(types_mapper=_types_mapper)
    fields = [EVENT_SCHEMA.field(n) if n in _EVENT_NAMES else table.schema.field(n) for n in table.column_names]
    return table.cast(pa.schema(fields)).to_pandas(types_mapper=_types_mapper)


def empty_events() -> pd.DataFrame:
    """Return an empty event frame with every column typed."""
    return to_pandas(EVENT_SCHEMA.empty_table())
