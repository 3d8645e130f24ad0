"""Issue 20's structural candidate, measured: enrichment's event-level columns as one DuckDB query.

``features.enrich.enrich_events`` adds ~50 event-level columns to each chunk group (~33k
events) in pandas: the code, resource and verb tests, the flag features read from the
``flags`` lists, ``verb_resource``. The candidate computes the same columns as DuckDB
expressions over the group's Arrow table (written out below: a candidate, not a second
definition in use), so that the work could run on a worker thread while the main thread
featurises the group before. For each group of the N-event file this times, on this thread
(DuckDB with one thread runs the query on the caller's thread): the pandas enrichment as
featurisation runs it (the floor: ratios are against it), the query's planning alone
(``LIMIT 0``), and the query with its result turned into frame columns; and it checks that
the query's columns equal the pandas ones value for value.
Usage: python benchmarks/event_sql.py [N_EVENTS [ROUNDS]]   (default 200000, 3)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb
import numpy as np
import pyarrow as pa

from events.schema import to_pandas
from features.chunk_groups import GROUP_ROWS
from features.enrich import FLAG_FEATURES, RBAC, WORKLOADS, enrich_events
from features.featurise import ready_parts
from features.flags import FLAG_NAMES
from pipelines.ingest import Ingestor


def _texts(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + "]"


# Missing text as '' and a missing code as 0, as the pandas tests read them.
_CODE, _VERB = "coalesce(response_code, 0)", "coalesce(verb, '')"
_RES, _SUB, _NS = "coalesce(target_resource, '')", "coalesce(target_subresource, '')", "coalesce(target_namespace, '')"
WEBHOOKS = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
SELF_REVIEWS = ("selfsubjectaccessreviews", "selfsubjectrulesreviews")
CANDIDATE: dict[str, str] = {
    "is_denied": f"{_CODE} = 403 OR coalesce(auth_decision, '') = 'forbid'",
    "is_unauthenticated": f"{_CODE} = 401",
    "is_other_4xx": f"{_CODE} >= 400 AND {_CODE} < 500 AND {_CODE} NOT IN (401, 403)",
    "is_5xx": f"{_CODE} >= 500",
    "is_nonresource": f"{_RES} = ''",
    "is_rbac": f"list_contains({_texts(RBAC)}, {_RES})",
    "is_workload": f"list_contains({_texts(WORKLOADS)}, {_RES})",
    "is_sa_or_token": f"{_RES} = 'serviceaccounts'",
    "is_crd": f"{_RES} = 'customresourcedefinitions'",
    "is_webhook": f"list_contains({_texts(WEBHOOKS)}, {_RES})",
    "is_csr": f"{_RES} = 'certificatesigningrequests'",
    "is_self_review": f"list_contains({_texts(SELF_REVIEWS)}, {_RES})",
}
for _feature, _names in FLAG_FEATURES.items():
    CANDIDATE[_feature] = f"coalesce(list_has_any(flags, {_texts(_names)}), false)"
CANDIDATE["n_exec_kube_system"] = f"({CANDIDATE['n_exec']}) AND {_NS} = 'kube-system'"
CANDIDATE["n_attempted"] = f"coalesce(list_has_any(flags_attempted, {_texts(FLAG_NAMES)}), false)"
CANDIDATE["is_secret_read"] = f"list_contains(['get', 'list', 'watch'], {_VERB}) AND {_RES} = 'secrets'"
CANDIDATE["verb_resource"] = (
    f"{_VERB} || ' ' || CASE WHEN {_RES} = '' THEN 'nonresource' ELSE {_RES} END"
    f" || CASE WHEN {_SUB} = '' THEN '' ELSE '/' || {_SUB} END"
)
QUERY = "SELECT " + ", ".join(f"{sql} AS {name}" for name, sql in CANDIDATE.items()) + " FROM events"
INPUTS = ["verb", "target_resource", "target_subresource", "target_namespace", "response_code", "auth_decision"]


def groups(path: str) -> list[pa.Table]:
    """The chunk groups featurisation prepares (features.chunk_groups), as Arrow tables."""
    out, pending, size = [], [], 0
    for ready, _ in ready_parts(Ingestor().iter_batches([path]), "1h"):
        pending.append(ready)
        size += ready.num_rows
        if size >= GROUP_ROWS:
            out.append(pa.concat_tables(pending))
            pending, size = [], 0
    if pending:
        out.append(pa.concat_tables(pending))
    return out


def run_query(con: duckdb.DuckDBPyConnection, table: pa.Table, sql: str) -> pa.Table:
    con.register("events", table.select([*INPUTS, "flags", "flags_attempted"]))
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("events")


def as_columns(result: pa.Table) -> dict[str, np.ndarray]:
    """The query's result as the frame would hold it (booleans as numpy, text as objects)."""
    return {name: result[name].to_numpy(zero_copy_only=False) for name in result.column_names}


def check_equal(result: pa.Table, enriched) -> None:
    for name in CANDIDATE:
        want = enriched[name].to_numpy(dtype=object if name == "verb_resource" else bool)
        got = result[name].to_numpy(zero_copy_only=False)
        if not np.array_equal(want, got.astype(want.dtype)):
            raise AssertionError(f"{name}: the query's column differs from enrich_events'")


def main(n_events: int, rounds: int) -> None:
    from benchmarks.data import events_file

    tables = groups(str(events_file(n_events)))
    frames = [to_pandas(t) for t in tables]
    con = duckdb.connect()
    con.execute("SET threads = 1")  # the query runs on this thread: its CPU is thread CPU
    for table, frame in zip(tables, frames, strict=True):
        check_equal(run_query(con, table, QUERY), enrich_events(frame))
    steps = {
        "pandas: enrich_events (floor)": lambda t, f: enrich_events(f, {}),
        "DuckDB: planning alone (LIMIT 0)": lambda t, f: run_query(con, t, QUERY + " LIMIT 0"),
        "DuckDB: query + result as columns": lambda t, f: as_columns(run_query(con, t, QUERY)),
    }
    best = {name: float("inf") for name in steps}
    for _ in range(rounds):  # interleaved rounds, lowest kept: the machine is shared
        for name, step in steps.items():
            start = time.thread_time()
            for table, frame in zip(tables, frames, strict=True):
                step(table, frame)
            best[name] = min(best[name], time.thread_time() - start)
    floor = best["pandas: enrich_events (floor)"]
    print(f"{n_events:,} events, {len(tables)} chunk groups, {len(CANDIDATE)} columns; all equal to enrich_events'")
    print("| step | CPU s (this thread) | ms a group | ratio to floor |")
    print("|---|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.3f} | {1000 * seconds / len(tables):.1f} | {seconds / floor:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
