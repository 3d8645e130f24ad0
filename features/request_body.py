"""The columns read from a logged request body (``requestObject``): pod specs, bindings, roles.

SQL expressions for the parsing query in :mod:`features.events`. They are written to cost
little on the many events without a body: DuckDB evaluates every expression on every row,
and transforming each body into the full pod-spec struct (three pod-spec levels, each with
three lists of containers) and walking those lists with lambdas cost 0.6 s of CPU per
million events even when almost none has a body. Instead, the container and volume lists
are read with JSON path wildcards, which return flat lists of strings, and only for bodies
that mention them; the rest comes from one transform into a small struct.
"""

from __future__ import annotations

import json

_HOST = {"hostNetwork": "BOOLEAN", "hostPID": "BOOLEAN", "hostIPC": "BOOLEAN"}
#: What is read from a body by transform: everything but the container and volume lists.
_SMALL = {
    "kind": "VARCHAR",
    "metadata": {"ownerReferences": [{"kind": "VARCHAR"}]},
    "spec": {**_HOST, "template": {"spec": _HOST}, "jobTemplate": {"spec": {"template": {"spec": _HOST}}}},
    "roleRef": {"kind": "VARCHAR", "name": "VARCHAR"},
    "subjects": [{"kind": "VARCHAR", "name": "VARCHAR", "namespace": "VARCHAR"}],
    "rules": [{"verbs": ["VARCHAR"], "resources": ["VARCHAR"]}],
}
#: Pod specs: a Pod's own, a workload's template (Deployment, DaemonSet, StatefulSet,
#: ReplicaSet, Job) and a CronJob's job template.
_SPECS = ("$.spec", "$.spec.template.spec", "$.spec.jobTemplate.spec.template.spec")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_SPEC_FIELDS = ("spec", "spec.template.spec", "spec.jobTemplate.spec.template.spec")


def _containers(body: str, path: str) -> str:
    """Every container's value at ``path``, as one list of strings, in spec order."""
    parts = ", ".join(f"json_extract_string({body}, '{spec}.{lst}[*].{path}')"
                      for spec in _SPECS for lst in _CONTAINER_LISTS)
    return f"list_concat({parts})"


def body_columns(body: str, text: str) -> str:
    """Return the SELECT-list expressions of the body columns.

    ``body`` is the JSON column, ``text`` the same as VARCHAR, ``ro`` must be bound to
    :func:`small_struct` of the body.
    """
    has = {key: f"contains({text}, '\"{key}\"')" for key in ("containers", "volumes")}
    host = {flag: "coalesce(" + ", ".join(f"ro.{s}.{flag}" for s in _SPEC_FIELDS) + ", false)"
            for flag in _HOST}
    volumes = ", ".join(f"json_extract_string({body}, '{spec}.volumes[*].hostPath.path')"
                        for spec in _SPECS)
    return f"""
    ro.kind AS request_object_kind,
    CASE WHEN {has['containers']} THEN list_contains(
        {_containers(body, 'securityContext.privileged')}, 'true') ELSE false END AS pod_privileged,
    CASE WHEN {has['volumes']} THEN nullif(list_filter(list_concat({volumes}),
        lambda p: p IS NOT NULL), []) END AS pod_host_paths,
    {host['hostNetwork']} AS pod_host_network,
    {host['hostPID']} AS pod_host_pid,
    {host['hostIPC']} AS pod_host_ipc,
    CASE WHEN {has['containers']} THEN nullif(list_filter(
        {_containers(body, 'securityContext.capabilities.add[*]')}, lambda c: c IS NOT NULL), [])
        END AS pod_capabilities,
    CASE WHEN {has['containers']} THEN nullif(list_filter(
        {_containers(body, 'image')}, lambda i: i IS NOT NULL), []) END AS pod_images,
    CASE WHEN ro.kind = 'Pod' THEN coalesce(len(ro.metadata.ownerReferences), 0) > 0 END
        AS pod_has_owner,
    ro.roleRef.kind AS role_ref_kind,
    ro.roleRef.name AS role_ref_name,
    list_transform(ro.subjects,
        lambda s: s.kind || ':' || coalesce(s.namespace || '/', '') || coalesce(s.name, ''))
        AS subjects,
    list_distinct(flatten(list_transform(ro.rules, lambda r: r.verbs))) AS rule_verbs,
    list_distinct(flatten(list_transform(ro.rules, lambda r: r.resources))) AS rule_resources,"""


def small_struct(body: str) -> str:
    """The transform of a body into the small struct the body columns read as ``ro``."""
    # json_transform is lenient (a JSON-patch array gives NULL fields); try() guards the rest.
    return f"try(json_transform({body}, '{json.dumps(_SMALL)}'))"
