"""The columns read from a logged request body (``requestObject``): pod specs, bindings, roles.

Computed on the rows that carry a body only, in a second small query per batch. Written as
columns of the main parsing query they cost every row, bodiless ones included: DuckDB builds
the deep pod-spec struct and runs each list function over NULLs (0.6 s of CPU per million
events, about a third of that query, on a log where few events have a body).
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_C = {"image": "VARCHAR", "securityContext": {"privileged": "BOOLEAN", "capabilities": {"add": ["VARCHAR"]}}}
_PODSPEC = {
    "hostNetwork": "BOOLEAN", "hostPID": "BOOLEAN", "hostIPC": "BOOLEAN",
    "containers": [_C], "initContainers": [_C], "ephemeralContainers": [_C],
    "volumes": [{"hostPath": {"path": "VARCHAR"}}],
}
_REQUEST_OBJECT = {
    "kind": "VARCHAR",
    "metadata": {"ownerReferences": [{"kind": "VARCHAR"}]},
    "spec": {
        **_PODSPEC,
        "template": {"spec": _PODSPEC},  # Deployment, DaemonSet, StatefulSet, ReplicaSet, Job
        "jobTemplate": {"spec": {"template": {"spec": _PODSPEC}}},  # CronJob
    },
    "roleRef": {"kind": "VARCHAR", "name": "VARCHAR"},
    "subjects": [{"kind": "VARCHAR", "name": "VARCHAR", "namespace": "VARCHAR"}],
    "rules": [{"verbs": ["VARCHAR"], "resources": ["VARCHAR"]}],
}

_STRS = pa.list_(pa.string())
#: Column -> (type, value for a row without a body). Order is the event table's.
BODY_COLUMNS: dict[str, tuple[pa.DataType, bool | None]] = {
    "request_object_kind": (pa.string(), None),
    "pod_privileged": (pa.bool_(), False),
    "pod_host_paths": (_STRS, None),
    "pod_host_network": (pa.bool_(), False),
    "pod_host_pid": (pa.bool_(), False),
    "pod_host_ipc": (pa.bool_(), False),
    "pod_capabilities": (_STRS, None),
    "pod_images": (_STRS, None),
    "pod_has_owner": (pa.bool_(), None),
    "role_ref_kind": (pa.string(), None),
    "role_ref_name": (pa.string(), None),
    "subjects": (_STRS, None),
    "rule_verbs": (_STRS, None),
    "rule_resources": (_STRS, None),
}

_SPECS = ("ro.spec", "ro.spec.template.spec", "ro.spec.jobTemplate.spec.template.spec")
_SQL = f"""
WITH parsed AS (
    -- json_transform is lenient (a JSON-patch array gives NULL fields); try() guards the rest.
    SELECT i, try(json_transform(body, '{json.dumps(_REQUEST_OBJECT)}')) AS ro FROM bodies
),
pods AS (
    SELECT *,
        list_concat({", ".join(f"{s}.{c}" for s in _SPECS
                               for c in ("containers", "initContainers", "ephemeralContainers"))})
            AS containers,
        list_concat({", ".join(f"{s}.volumes" for s in _SPECS)}) AS volumes
    FROM parsed
)
SELECT
    i,
    ro.kind AS request_object_kind,
    coalesce(list_bool_or(list_transform(containers,
        lambda c: coalesce(c.securityContext.privileged, false))), false) AS pod_privileged,
    nullif(list_filter(list_transform(volumes, lambda v: v.hostPath.path),
        lambda p: p IS NOT NULL), []) AS pod_host_paths,
    coalesce({", ".join(f"{s}.hostNetwork" for s in _SPECS)}, false) AS pod_host_network,
    coalesce({", ".join(f"{s}.hostPID" for s in _SPECS)}, false) AS pod_host_pid,
    coalesce({", ".join(f"{s}.hostIPC" for s in _SPECS)}, false) AS pod_host_ipc,
    nullif(flatten(list_transform(containers, lambda c: c.securityContext.capabilities.add)), [])
        AS pod_capabilities,
    nullif(list_filter(list_transform(containers, lambda c: c.image), lambda x: x IS NOT NULL), [])
        AS pod_images,
    CASE WHEN ro.kind = 'Pod' THEN coalesce(len(ro.metadata.ownerReferences), 0) > 0 END
        AS pod_has_owner,
    ro.roleRef.kind AS role_ref_kind,
    ro.roleRef.name AS role_ref_name,
    list_transform(ro.subjects,
        lambda s: s.kind || ':' || coalesce(s.namespace || '/', '') || coalesce(s.name, ''))
        AS subjects,
    list_distinct(flatten(list_transform(ro.rules, lambda r: r.verbs))) AS rule_verbs,
    list_distinct(flatten(list_transform(ro.rules, lambda r: r.resources))) AS rule_resources
FROM pods
"""


def _bodiless(n: int) -> list[pa.Array]:
    return [pa.array(np.zeros(n, dtype=bool)) if default is False else pa.nulls(n, typ)
            for typ, default in BODY_COLUMNS.values()]


def add_body_columns(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
    """Replace ``table``'s ``request_object`` (JSON text) with the :data:`BODY_COLUMNS`.

    ``con`` must not be streaming another result: use a cursor of its own.
    """
    bodies = table["request_object"]
    table = table.drop_columns(["request_object"])
    n = table.num_rows
    if bodies.null_count == n:  # the common batch: nothing logged at Request level or above
        arrays = _bodiless(n)
    else:
        rows = np.flatnonzero(pc.is_valid(bodies).to_numpy(zero_copy_only=False))
        con.register("bodies", pa.table({"i": rows, "body": bodies.take(rows)}))
        try:
            derived = con.sql(_SQL).to_arrow_table()
        finally:
            con.unregister("bodies")
        # Scatter: row r takes derived row at[r]; rows without a body point past the end,
        # at the bodiless value appended to each column.
        at = np.full(n, len(rows), dtype=np.int64)
        at[derived["i"].to_numpy()] = np.arange(derived.num_rows)
        at = pa.array(at)
        arrays = [pa.concat_arrays([derived[name].combine_chunks().cast(typ), empty])
                  .take(at) for (name, (typ, _)), empty in zip(BODY_COLUMNS.items(), _bodiless(1))]
    for name, array in zip(BODY_COLUMNS, arrays):
        table = table.append_column(name, array)
    return table
