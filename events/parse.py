"""Turn audit event JSON text into rows of the normalised event table.

This is the one place where audit JSON is read. It runs as a single DuckDB query over an
Arrow batch of lines: DuckDB's JSON reader (yyjson) parses each line once into a typed struct,
which is what lets ingest run faster than ``orjson.loads`` per line in Python. Lines that are
not plain events (wrappers, invalid JSON, arrays) come back marked ``route = 'python'`` for
the slower per-document path in :mod:`sources.wrappers`. The part of the query that reads
request bodies is in :mod:`events.request_body`.
"""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from events.request_body import body_columns, body_step
from events.schema import EVENT_SCHEMA

_EVENT = {
    "kind": "VARCHAR",
    "level": "VARCHAR",
    "auditID": "VARCHAR",
    "stage": "VARCHAR",
    "requestURI": "VARCHAR",
    "verb": "VARCHAR",
    "user": {
        "username": "VARCHAR",
        "groups": ["VARCHAR"],
        "extra": {
            "arn": ["VARCHAR"],
            "canonicalArn": ["VARCHAR"],
            "sessionName": ["VARCHAR"],
            "accessKeyId": ["VARCHAR"],
        },
    },
    "impersonatedUser": {"username": "VARCHAR"},
    "sourceIPs": ["VARCHAR"],
    "userAgent": "VARCHAR",
    "objectRef": {
        "resource": "VARCHAR",
        "subresource": "VARCHAR",
        "apiGroup": "VARCHAR",
        "apiVersion": "VARCHAR",
        "namespace": "VARCHAR",
        "name": "VARCHAR",
    },
    "responseStatus": {"code": "INTEGER"},
    "requestObject": "JSON",
    # Parsed as a struct: reading the two keys with ->> would parse the JSON twice per row.
    "annotations": {
        "authorization.k8s.io/decision": "VARCHAR",
        "authorization.k8s.io/reason": "VARCHAR",
        # The spelling in EKS blog posts and some webhook authorizers.
        "authorization.kubernetes.io/decision": "VARCHAR",
        "authorization.kubernetes.io/reason": "VARCHAR",
    },
    "requestReceivedTimestamp": "VARCHAR",
    "stageTimestamp": "VARCHAR",
    "timestamp": "VARCHAR",
    "requestTimestamp": "VARCHAR",
    # Wrapper keys: a line holding one of these is not an event but contains some.
    "records": "JSON",
    "logEvents": "JSON",
    "items": "JSON",
    "protoPayload": "JSON",
    "messageType": "VARCHAR",
    "properties": "JSON",
}

#: One request, whatever stage or copy of it was read: the auditID together with what the
#: request was. kube-apiserver takes the auditID from the client's Audit-ID header, so the ID
#: alone would let a client hide a second request behind the ID of its first. Computed from
#: event-table columns, so the lake and kaad's own Parquet compute the same key. The response
#: code is left out: the RequestReceived stage has none, and it must merge with the others.
REQUEST_KEY_COLUMNS = (
    "audit_id",
    "identity",
    "verb",
    "request_uri",
    "target_resource",
    "target_subresource",
    "api_group",
    "target_namespace",
    "target_name",
    "timestamp",
    "source_ips",
    "user_agent",
)
REQUEST_KEY_SQL = "hash(" + ", ".join(REQUEST_KEY_COLUMNS) + ")"
#: The auditID alone: two request keys that share it are a reused ID.
AUDIT_ID_HASH_SQL = "hash(audit_id)"

# CloudWatch Logs export-to-S3 lines: "<ISO timestamp> <event json>".
_EXPORT_LINE = r"^\d{4}-\d{2}-\d{2}T[^ ]+ \{"

_FROM_LINES = f"""
WITH src AS (
    SELECT source_file, source_line, truncated, fallback_ts,
           CASE WHEN NOT starts_with(text, '{{') AND regexp_matches(text, '{_EXPORT_LINE}')
                THEN regexp_extract(text, '^([^ ]+) ', 1) END AS export_ts,
           CASE WHEN NOT starts_with(text, '{{') AND regexp_matches(text, '{_EXPORT_LINE}')
                THEN regexp_replace(text, '^[^ ]+ ', '') ELSE text END AS text
    FROM lines  -- blank lines fail to parse and are dropped on the python route
),
parsed AS (
    SELECT *, try(json_transform(text, '{json.dumps(_EVENT)}')) AS j FROM src
),"""


def _duckdb_type(spec) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, list):
        return _duckdb_type(spec[0]) + "[]"
    return "STRUCT(" + ", ".join(f'"{k}" {_duckdb_type(v)}' for k, v in spec.items()) + ")"


READ_JSON_COLUMNS = "{" + ", ".join(f"'{k}': '{_duckdb_type(v)}'" for k, v in _EVENT.items()) + "}"

# The bulk path: DuckDB reads a JSON-lines file itself, in parallel, with no per-line Python.
# It knows no line numbers, so source_line stays NULL on this path.
_FROM_FILE = f"""
WITH parsed AS (
    SELECT $source AS source_file, NULL::BIGINT AS source_line, false AS truncated,
           NULL::VARCHAR AS fallback_ts, NULL::VARCHAR AS export_ts, NULL::VARCHAR AS text,
           struct_pack({", ".join(f'"{k}" := "{k}"' for k in _EVENT)}) AS j
    FROM read_json($path, format = 'newline_delimited', compression = $compression,
                   columns = {READ_JSON_COLUMNS})
),"""

_BODY = f"""
routed AS (
    SELECT *,
        CASE WHEN j IS NULL OR starts_with(ltrim(text), '[')
                  OR j.records IS NOT NULL OR j.logEvents IS NOT NULL OR j.items IS NOT NULL
                  OR j.protoPayload IS NOT NULL OR j.messageType IS NOT NULL
                  OR (j.properties IS NOT NULL AND j.auditID IS NULL)
             THEN 'python' ELSE 'event' END AS route,
        coalesce(try_cast(j.requestReceivedTimestamp AS TIMESTAMPTZ),
                 try_cast(j.stageTimestamp AS TIMESTAMPTZ),
                 try_cast(j.timestamp AS TIMESTAMPTZ),
                 try_cast(j.requestTimestamp AS TIMESTAMPTZ),
                 try_cast(export_ts AS TIMESTAMPTZ),
                 try_cast(fallback_ts AS TIMESTAMPTZ)) AS ts,
        coalesce(j.requestReceivedTimestamp, j.stageTimestamp, j.timestamp, j.requestTimestamp) AS raw_ts,
        -- Events written by hand or by other tools (EKS guides) carry the HTTP method.
        CASE WHEN j.verb IN ('POST', 'post') THEN 'create'
             WHEN j.verb IN ('PUT', 'put') THEN 'update'
             WHEN j.verb IN ('PATCH', 'DELETE', 'HEAD') THEN lower(j.verb)
             WHEN j.verb = 'GET' THEN CASE WHEN j.objectRef.name IS NULL
                                                AND j.objectRef.resource IS NOT NULL
                                           THEN 'list' ELSE 'get' END
             ELSE j.verb END AS api_verb,
        -- A failed authentication (401) is audited with an empty user: who is unknown, but
        -- the attempt is exactly what a token-guessing attacker leaves behind.
        coalesce(nullif(j.user.username, ''),
                 CASE WHEN j.responseStatus.code = 401 THEN 'system:unauthenticated' END) AS identity
    FROM parsed
),
checked AS (
    SELECT *,
        CASE WHEN route = 'python' THEN NULL
             WHEN j.kind IS NOT NULL AND j.kind <> 'Event'
                  THEN 'not an audit event: kind=' || to_json(j.kind)::VARCHAR
             WHEN j.verb IS NULL AND j.user IS NULL AND j.auditID IS NULL AND j.requestURI IS NULL
                  THEN 'not an audit event: no audit fields'
             WHEN coalesce(j.verb, '') = '' OR identity IS NULL
                  OR (ts IS NULL AND raw_ts IS NULL)
                  THEN 'missing field: ' || concat_ws(', ',
                      CASE WHEN coalesce(j.verb, '') = '' THEN 'verb' END,
                      CASE WHEN identity IS NULL THEN 'user.username' END,
                      CASE WHEN ts IS NULL AND raw_ts IS NULL THEN
                          'requestReceivedTimestamp (nor stageTimestamp, timestamp, requestTimestamp)' END)
             WHEN ts IS NULL THEN 'bad timestamp: ' || to_json(raw_ts)::VARCHAR
        END AS reject_reason
    FROM routed
),
{body_step("j.requestObject", "j.requestObject::VARCHAR", "checked", "j.objectRef.resource", "api_verb")},
rows AS (
SELECT
    route, reject_reason,
    route = 'event' AND reject_reason IS NULL AND j.auditID IS NOT NULL AS clean,
    CASE WHEN route = 'python' THEN coalesce(export_ts || ' ', '') || text END AS text,
    CASE WHEN route = 'python' THEN fallback_ts END AS fallback_ts,
    coalesce(j.auditID, 'md5:' || md5(text)) AS audit_id,
    CASE j.stage WHEN 'ResponseComplete' THEN 0 WHEN 'ResponseStarted' THEN 1
                 WHEN 'Panic' THEN 2 WHEN 'RequestReceived' THEN 3 ELSE 4 END::TINYINT AS stage_rank,
    j.stage AS stage,
    -- Canonical case (Metadata, Request, RequestResponse): guides write "metadata".
    CASE lower(j.level) WHEN 'none' THEN 'None' WHEN 'metadata' THEN 'Metadata'
         WHEN 'request' THEN 'Request' WHEN 'requestresponse' THEN 'RequestResponse'
         ELSE j.level END AS level,
    ts AS timestamp,
    api_verb AS verb,
    identity,
    j.user.groups AS user_groups,
    j.user.extra.arn[1] AS principal_arn,
    j.user.extra.canonicalArn[1] AS principal_canonical_arn,
    j.user.extra.sessionName[1] AS principal_session,
    j.user.extra.accessKeyId[1] AS principal_access_key,
    j.impersonatedUser.username AS impersonated_user,
    -- The last address is the API server's TCP peer; earlier ones come from X-Forwarded-For,
    -- which the client can set. events.source_address picks past trusted proxies.
    j.sourceIPs[-1] AS source_ip,
    j.sourceIPs AS source_ips,
    false AS forwarded_unverified,
    j.userAgent AS user_agent,
    j.objectRef.resource AS target_resource,
    j.objectRef.subresource AS target_subresource,
    j.objectRef.apiGroup AS api_group,
    j.objectRef.apiVersion AS api_version,
    j.objectRef.namespace AS target_namespace,
    j.objectRef.name AS target_name,
    j.requestURI AS request_uri,
    j.responseStatus.code AS response_code,
    coalesce(j.annotations."authorization.k8s.io/decision",
             j.annotations."authorization.kubernetes.io/decision") AS auth_decision,
    coalesce(j.annotations."authorization.k8s.io/reason",
             j.annotations."authorization.kubernetes.io/reason") AS auth_reason,
{body_columns("j.requestObject", "j.objectRef.namespace")}
    -- The command is in the URI; some shippers (AKS samples) log it as a request body too.
    CASE WHEN j.objectRef.subresource = 'exec' THEN coalesce(nullif(array_to_string(list_transform(
        regexp_extract_all(j.requestURI, '[?&]command=([^&]*)', 1),
        lambda x: url_decode(replace(x, '+', ' '))), ' '), ''),
        CASE WHEN starts_with(j.requestObject::VARCHAR, '{{') THEN nullif(array_to_string(
            json_extract_string(j.requestObject, '$.command[*]'), ' '), '') END) END AS exec_command,
    coalesce(truncated, false) AS truncated,
    false AS audit_id_reused,
    -- Set from the other columns once the trusted source address is known (features.flags).
    NULL::VARCHAR[] AS flags, NULL::VARCHAR[] AS flags_attempted, NULL::VARCHAR[] AS action_families,
    source_file,
    source_line
FROM bodies
)
SELECT *, {REQUEST_KEY_SQL} AS audit_hash, {AUDIT_ID_HASH_SQL} AS id_hash FROM rows
"""
_SQL = _FROM_LINES + _BODY

LINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("text", pa.large_string()),
        ("truncated", pa.bool_()),
        ("fallback_ts", pa.string()),
    ]
)


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB connection set up for event parsing (UTC, bounded threads)."""
    # DuckDB draws its own progress bar on stdout for queries over 2 s, even into a file or
    # pipe: kaad's results go to stdout and its progress to stderr, so DuckDB's is off.
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    # Timestamps without an offset (Panther's, some shippers') are read as UTC, whatever the
    # machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def normalise_lines(con: duckdb.DuckDBPyConnection, lines: pa.Table) -> pa.Table:
    """Parse a batch of lines (:data:`LINE_SCHEMA`) into routed, checked event rows.

    Returns a table with ``route`` ('event' or 'python'), ``reject_reason`` (NULL when the
    event is usable), ``text`` (only for python-routed lines) and every column of
    :data:`events.schema.EVENT_SCHEMA`.
    """
    con.register("lines", lines)
    try:
        return con.sql(_SQL).to_arrow_table()
    finally:
        con.unregister("lines")


def normalise_file(
    con: duckdb.DuckDBPyConnection, path: str, *, gzip: bool, rows_per_batch: int = 65536
) -> pa.RecordBatchReader:
    """Stream a JSON-lines file through the same normalisation, parsed by DuckDB itself.

    Batches carry ``clean`` (the row needs no reject, unwrap or line number), the dedupe
    columns and the event columns but for ``source_file``, ``source_line`` and ``truncated``,
    which are the same on every row of this path and are added by the caller: exporting
    constant columns row by row costs as much as parsing them. Raises ``duckdb.Error``
    (possibly mid-stream) when the file is not clean JSON lines.
    """
    params = {"source": path, "path": path, "compression": "gzip" if gzip else "none"}
    cols = ", ".join(c for c in EVENT_SCHEMA.names if c not in BULK_CONSTANT)
    query = f"SELECT clean, audit_hash, id_hash, stage_rank, {cols} FROM ({_FROM_FILE + _BODY})"
    return con.sql(query, params=params).to_arrow_reader(rows_per_batch)


BULK_CONSTANT = ("source_file", "source_line", "truncated")
#: Internal columns the deduplicator reads: the request key, the auditID's hash, the stage rank.
DEDUPE_COLUMNS = ("audit_hash", "id_hash", "stage_rank")


def split_result(result: pa.Table) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Split :func:`normalise_lines` output into (events, rejects, python-routed lines).

    Events keep the internal ``audit_hash``, ``id_hash`` and ``stage_rank`` columns for
    deduplication.
    """
    is_event = pc.equal(result["route"], "event")
    rejected = pc.is_valid(result["reject_reason"])
    good = pc.and_(is_event, pc.invert(rejected))
    events = result.select([*EVENT_SCHEMA.names, *DEDUPE_COLUMNS])
    if pc.all(good).as_py():  # the common case: skip copying the batch through filters
        empty = result.slice(0, 0)
        return (
            events,
            empty.select(["source_file", "source_line", "reject_reason", "truncated"]),
            empty.select(["source_file", "source_line", "text", "fallback_ts"]),
        )
    rejects = result.filter(pc.and_(is_event, rejected)).select(
        ["source_file", "source_line", "reject_reason", "truncated"]
    )
    routed = result.filter(pc.invert(is_event)).select(["source_file", "source_line", "text", "fallback_ts"])
    return events.filter(good), rejects, routed
