"""The columns read from a logged request body (``requestObject``): pod specs, bindings, roles.

SQL for the parsing query in :mod:`events.parse`. DuckDB evaluates every expression on
every row, so it is written to cost little on events without a body and on bodies of other
kinds (lease renewals, config maps, events: most bodies in a real log). JSON path extraction
returns flat strings and lists and is cheap; transforming a body into a struct is not: the
full pod-spec struct (three spec levels, each with three container lists) walked with
lambdas cost 0.6 s of CPU per million events even when almost none had a body, and a small
struct 0.3 s more on a log where a quarter of the events have one. Testing the body text
for keys cost as much (0.07 s a key). So fields are read by path, only from bodies whose
kind can hold them, and each pod body is parsed three times, not once a field and level.
"""

from __future__ import annotations

_SPECS = ("$.spec", "$.spec.template.spec", "$.spec.jobTemplate.spec.template.spec")
_CONTAINER_LISTS = [f"{s}.{lst}" for s in _SPECS for lst in ("containers", "initContainers", "ephemeralContainers")]
_HOST_FLAGS = ("hostNetwork", "hostPID", "hostIPC")
#: Pod-level securityContext settings that run containers as root, read at every spec level.
_POD_ROOT = ("securityContext.runAsUser", "securityContext.runAsNonRoot")
#: A container's securityContext, read in one parse: privileged, then the three root settings.
_CONTAINER_SETTINGS = ("$.privileged", "$.runAsUser", "$.runAsNonRoot", "$.allowPrivilegeEscalation")
#: What a credential looks like in a ConfigMap's data, by key or value (case ignored): Falco's
#: list (AWS key IDs, password, passphrase) plus secret keys, API keys and tokens, PEM private
#: keys and AWS access key IDs. Only whether it matches is kept; the text goes nowhere.
CREDENTIAL_SHAPE = (
    r"(?i)(aws[_-]?(s3[_-]?)?access[_-]?key[_-]?id|secret[_-]?access[_-]?key"
    r"|passw(or)?d|passphrase|api[_-]?key|client[_-]?secret"
    r"|(access|auth|bearer|refresh)[_-]?token|BEGIN [A-Z ]*PRIVATE KEY"
    r"|\b(AKIA|ASIA)[0-9A-Z]{16}\b)"
)
_SUBJECTS = '[{"kind": "VARCHAR", "name": "VARCHAR", "namespace": "VARCHAR"}]'

#: Kinds whose bodies hold a pod spec (the Pod's own, or a template) or RBAC fields. Bodies
#: without a kind (strategic merge patches) may hold either.
POD_KINDS = (
    "Pod",
    "PodTemplate",
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def _quoted(paths) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def _each(lists: str, path: str, name: str) -> str:
    """``path`` read in every element of every JSON list in ``lists``, flattened, no NULLs."""
    return (
        f"nullif(list_filter(flatten(list_transform({lists}, lambda l: "
        f"json_extract_string(l, '$[*].{path}'))), lambda {name}: {name} IS NOT NULL), [])"
    )


def body_step(body: str, text: str, source: str, resource: str, verb: str) -> str:
    """A query step (``bodies AS (...)``) over ``source`` reading the body's kind, and its pod
    and RBAC fields as two structs, only from objects of kinds that can hold them; services,
    ingresses, config maps and CSRs are read by ``resource`` (their patches carry no kind)."""

    def may_hold(kinds) -> str:
        listed = ", ".join(f"'{k}'" for k in kinds)
        # JSON patches (arrays) are not read: they hold operations, not objects.
        return f"(starts_with({text}, '{{') AND coalesce(body_kind IN ({listed}), true))"

    # One parse of the body finds the container and volume lists and the host flags of all
    # three spec levels; fields are then read from those small lists.
    flags = [f"{s}.{flag}" for flag in (*_HOST_FLAGS, *_POD_ROOT) for s in _SPECS]
    lists = {
        "body_containers": f"json_extract({body}, {_quoted(_CONTAINER_LISTS)})",
        "body_volumes": f"json_extract({body}, {_quoted(f'{s}.volumes' for s in _SPECS)})",
        "body_flags": f"json_extract_string({body}, {_quoted(flags)})",
    }
    read_lists = ", ".join(f"CASE WHEN pod_body THEN {expr} END AS {name}" for name, expr in lists.items())
    # Each container's securityContext once, as [privileged, runAsUser, runAsNonRoot,
    # allowPrivilegeEscalation]: one small parse a container, not one a setting.
    settings = "[" + ", ".join(f"'{p}'" for p in _CONTAINER_SETTINGS) + "]"
    read_settings = (
        f"CASE WHEN pod_body THEN list_transform(flatten(list_transform(body_containers, "
        f"lambda l: json_extract(l, '$[*].securityContext'))), "
        f"lambda c: json_extract_string(c, {settings})) END AS body_settings"
    )
    # A flag is taken from the first spec level that sets it.
    first_set = {
        flag: f"coalesce(list_filter(body_flags[{3 * i + 1}:{3 * i + 3}], lambda v: v IS NOT NULL)[1] = 'true', false)"
        for i, flag in enumerate(_HOST_FLAGS)
    }
    pod_root = (
        "(list_contains(body_flags[10:12], '0') OR list_contains(body_flags[13:15], 'false') "
        "OR list_contains(list_transform(body_settings, lambda c: c[2] = '0' OR c[3] = 'false' "
        "OR c[4] = 'true'), true))"
    )
    pod = f"""{{
            'privileged': list_contains(list_transform(body_settings, lambda c: c[1]), 'true'),
            'runs_as_root': coalesce({pod_root}, false),
            'host_paths': {_each("body_volumes", "hostPath.path", "p")},
            'host_network': {first_set["hostNetwork"]},
            'host_pid': {first_set["hostPID"]},
            'host_ipc': {first_set["hostIPC"]},
            'capabilities': {_each("body_containers", "securityContext.capabilities.add[*]", "c")},
            'images': {_each("body_containers", "image", "i")}}}"""
    rbac = f"""{{
            'role_ref_kind': json_extract_string({body}, '$.roleRef.kind'),
            'role_ref_name': json_extract_string({body}, '$.roleRef.name'),
            'subjects': list_transform(json_transform({body}->'$.subjects', '{_SUBJECTS}'),
                lambda s: s.kind || ':' || coalesce(s.namespace || '/', '') || coalesce(s.name, '')),
            'verbs': nullif(list_distinct(json_extract_string({body}, '$.rules[*].verbs[*]')), []),
            'resources': nullif(list_distinct(json_extract_string({body}, '$.rules[*].resources[*]')), [])}}"""
    is_object = f"starts_with({text}, '{{')"
    # Whole objects only for TLS: a patch that leaves spec.tls out does not remove it.
    other = f"""CASE WHEN {resource} IN ('services', 'ingresses', 'configmaps',
                                     'certificatesigningrequests') AND {is_object} THEN {{
            'service_type': CASE WHEN {resource} = 'services' THEN json_extract_string({body}, '$.spec.type') END,
            'ingress_tls': CASE WHEN {resource} = 'ingresses' AND {verb} IN ('create', 'update')
                                THEN coalesce(json_array_length({body}, '$.spec.tls'), 0) > 0 END,
            'configmap_credentials': CASE WHEN {resource} = 'configmaps' THEN coalesce(regexp_matches(
                json_extract({body}, '$.data')::VARCHAR, '{CREDENTIAL_SHAPE}'), false) END,
            'csr_signer': CASE WHEN {resource} = 'certificatesigningrequests'
                               THEN json_extract_string({body}, '$.spec.signerName') END}} END"""
    return f"""bodies AS (
    SELECT *, CASE WHEN pod_body THEN {pod} END AS pod,
              CASE WHEN {may_hold(RBAC_KINDS)} THEN {rbac} END AS rbac,
              {other} AS other
    FROM (SELECT *, {read_settings}
    FROM (SELECT *, {read_lists}
          FROM (SELECT *, {may_hold(POD_KINDS)} AS pod_body
                FROM (SELECT *, json_extract_string({body}, '$.kind') AS body_kind FROM {source}))))
)"""


def pod_owner(body: str, namespace: str) -> str:
    """The owner a Pod body names, as ``Kind/namespace/name`` (NULL when it names none).

    The reference marked ``controller`` (the one a controller set), else the first. An owner is
    in its pod's namespace (``namespace``: the request's, where the API server created the pod).
    A ReplicaSet is named without the ``pod-template-hash`` suffix its Deployment gives each
    rollout's ReplicaSet (the pod carries the hash as a label), so one Deployment is one owner.
    """
    refs = f"json_extract({body}, '$.metadata.ownerReferences[*]')"
    ref = (
        f"coalesce(list_filter({refs}, lambda r: json_extract_string(r, '$.controller') = 'true')[1], "
        f"json_extract({body}, '$.metadata.ownerReferences[0]'))"
    )
    kind = f"coalesce(json_extract_string({ref}, '$.kind'), '')"
    name = f"coalesce(json_extract_string({ref}, '$.name'), '')"
    rollout = f"""json_extract_string({body}, '$.metadata.labels."pod-template-hash"')"""
    unhashed = (
        f"CASE WHEN {kind} = 'ReplicaSet' AND {rollout} <> '' AND ends_with({name}, '-' || {rollout}) "
        f"THEN {name}[1:length({name}) - length({rollout}) - 1] ELSE {name} END"
    )
    return (
        f"CASE WHEN body_kind = 'Pod' AND {ref} IS NOT NULL "
        f"THEN {kind} || '/' || coalesce({namespace}, json_extract_string({body}, '$.metadata.namespace'), '') "
        f"|| '/' || {unhashed} END"
    )


def body_columns(body: str, namespace: str = "NULL") -> str:
    """Return the SELECT-list expressions of the body columns, over :func:`body_step`
    (``namespace``: the request's namespace, an owner's namespace)."""
    return f"""
    body_kind AS request_object_kind,
    coalesce(pod.privileged, false) AS pod_privileged,
    coalesce(pod.runs_as_root, false) AS pod_runs_as_root,
    pod.host_paths AS pod_host_paths,
    coalesce(pod.host_network, false) AS pod_host_network,
    coalesce(pod.host_pid, false) AS pod_host_pid,
    coalesce(pod.host_ipc, false) AS pod_host_ipc,
    pod.capabilities AS pod_capabilities,
    pod.images AS pod_images,
    CASE WHEN body_kind = 'Pod'
         THEN coalesce(json_array_length({body}, '$.metadata.ownerReferences'), 0) > 0 END AS pod_has_owner,
    {pod_owner(body, namespace)} AS pod_owner,
    rbac.role_ref_kind AS role_ref_kind,
    rbac.role_ref_name AS role_ref_name,
    rbac.subjects AS subjects,
    rbac.verbs AS rule_verbs,
    rbac.resources AS rule_resources,
    other.service_type AS service_type,
    other.ingress_tls AS ingress_tls,
    other.configmap_credentials AS configmap_credentials,
    other.csr_signer AS csr_signer,
    -- Where an admission webhook sends its requests; a patch (no kind) may move it too.
    CASE WHEN coalesce(body_kind IN ('MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'), true)
         THEN nullif(json_extract_string({body}, '$.webhooks[*].clientConfig.url'), []) END AS webhook_urls,"""
