"""What each part of ingest's normalising query costs, and what the deduplication copy costs.

The normalising query (events/parse.py, bulk path) is timed against variants of itself, each
leaving one part out, all in one process, in interleaved rounds (the machine is shared: a
round of every variant at a time keeps them under the same load); the lowest CPU of the rounds
is kept. A variant that leaves out a part the event table needs is not a candidate change; it
says what that part costs. The second table times the deduplicator's copy of each batch: an
Arrow filter, a take of the same rows, and zero-copy slices of the kept runs followed by the
rest of the main thread's work (the slices are cheap; what comes after them is not).
Usage: python benchmarks/query_parts.py [N_EVENTS [ROUNDS]]   (default 200000, 3)
"""

from __future__ import annotations

import io
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import events.parse as parse
from events.schema import EVENT_SCHEMA

#: The parsing query's columns that it always sets to the same value on the bulk path: the
#: flags (filled in later by features.flag_rules) and the two marks set later by ingest.
ALWAYS_SAME = ("flags", "flags_attempted", "action_families", "audit_id_reused", "forwarded_unverified")
WRAPPER_KEYS = ("records", "logEvents", "items", "protoPayload", "messageType", "properties")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread: DuckDB parses on its own
    return usage.ru_utime + usage.ru_stime


def _query(drop_fields=(), drop_columns=(), no_request_key=False) -> str:
    """The bulk normalising query, without some event fields read or some columns exported."""
    spec = {k: v for k, v in parse._EVENT.items() if k not in drop_fields}
    columns = "{" + ", ".join(f"'{k}': '{parse._duckdb_type(v)}'" for k, v in spec.items()) + "}"
    source = parse._FROM_FILE.replace(parse.READ_JSON_COLUMNS, columns)
    for k in drop_fields:  # the field stays in the struct, as NULL: the rest of the query is unchanged
        source = source.replace(f'"{k}" := "{k}"', f'"{k}" := NULL::{parse._duckdb_type(parse._EVENT[k])}')
    body = parse._BODY
    if no_request_key:
        body = body.replace(f"{parse.REQUEST_KEY_SQL} AS audit_hash", "0::UBIGINT AS audit_hash")
    skip = (*parse.BULK_CONSTANT, *drop_columns)
    cols = ", ".join(c for c in EVENT_SCHEMA.names if c not in skip)
    return f"SELECT clean, audit_hash, id_hash, stage_rank, {cols} FROM ({source + body})"


PEER = (
    "SELECT auditID AS audit_id, stage, verb, user.username AS identity, sourceIPs[1] AS source_ip, "
    "userAgent AS user_agent, objectRef.resource AS target_resource, objectRef.subresource AS "
    "target_subresource, objectRef.namespace AS target_namespace, objectRef.name AS target_name, "
    "responseStatus.code AS response_code, requestReceivedTimestamp::TIMESTAMPTZ AS timestamp "
    f"FROM read_json($path, format = 'newline_delimited', columns = {parse.READ_JSON_COLUMNS})"
)

VARIANTS = {
    "the normalising query (as ingest runs it)": _query(),
    "  without the request key hash": _query(no_request_key=True),
    "  without the 5 columns it always sets alike": _query(drop_columns=ALWAYS_SAME),
    "  without reading the 6 wrapper keys": _query(drop_fields=WRAPPER_KEYS),
    "  without reading annotations": _query(drop_fields=("annotations",)),
    "read_json of every field the query reads, no expressions": (
        f"SELECT * FROM read_json($path, format = 'newline_delimited', columns = {parse.READ_JSON_COLUMNS})"
    ),
    "peer: 12 columns (benchmarks/process.py)": PEER,
}


def _drain(con, query: str, path: str) -> int:
    params = {k: v for k, v in {"source": path, "path": path, "compression": "none"}.items() if f"${k}" in query}
    return sum(b.num_rows for b in con.sql(query, params=params).to_arrow_reader(65536))


def query_parts(path: str, rounds: int) -> list[dict]:
    best = {name: float("inf") for name in VARIANTS}
    for _ in range(rounds):
        for name, query in VARIANTS.items():
            con = parse.connect()
            start = _cpu()
            _drain(con, query, path)
            best[name] = min(best[name], _cpu() - start)
            con.close()
    full = best[next(iter(VARIANTS))]
    return [{"query": n, "CPU s": round(s, 2), "of the full query": f"{s / full:.2f}"} for n, s in best.items()]


def _runs(table: pa.Table, keep: np.ndarray) -> pa.Table:
    """The kept rows as zero-copy slices, one a run of consecutive kept rows."""
    rows = np.flatnonzero(keep)
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate([[rows[0]], rows[breaks + 1]])
    ends = np.concatenate([rows[breaks], [rows[-1]]]) + 1
    return pa.concat_tables([table.slice(s, e - s) for s, e in zip(starts, ends, strict=True)])


def dedupe_copy(path: str, rounds: int) -> list[dict]:
    from pipelines.ingest import DEDUPE_SCHEMA, Ingestor, _FileConstants

    constants = _FileConstants(path)
    con = parse.connect()
    batches = [
        constants.add_to(pa.Table.from_batches([b]).drop_columns(["clean"]))
        .select(DEDUPE_SCHEMA.names)
        .cast(DEDUPE_SCHEMA)
        for b in parse.normalise_file(con, path, gzip=False)
    ]
    # What the deduplicator keeps of a batch of this file: its ResponseComplete rows (the rest
    # wait for theirs); about 1% of rows are ResponseStarted, spread through every batch.
    keeps = [b["stage_rank"].to_numpy() == 0 for b in batches]
    ways = {
        "filter (as ingest does)": lambda b, k: b.filter(k),
        "take of the same rows": lambda b, k: b.take(pa.array(np.flatnonzero(k))),
        "slices of the kept runs": _runs,
    }
    best = {f"{name}{part}": float("inf") for name in ways for part in ("", ", then emit and write")}
    for r in range(rounds):
        for name, way in ways.items() if r % 2 == 0 else reversed(ways.items()):
            start = time.thread_time()
            kept = [way(b, k) for b, k in zip(batches, keeps, strict=True)]
            copied = time.thread_time()
            ingestor, sink = Ingestor(), io.BytesIO()
            with pq.ParquetWriter(sink, EVENT_SCHEMA) as writer:
                for table in kept:
                    writer.write_table(ingestor._emit(table))
            best[name] = min(best[name], copied - start)
            best[f"{name}, then emit and write"] = min(best[f"{name}, then emit and write"], time.thread_time() - start)
    return [{"deduplication copy": n, "main-thread CPU s": round(s, 2)} for n, s in best.items()]


if __name__ == "__main__":
    from benchmarks.data import events_file
    from benchmarks.ingest import print_table

    args = sys.argv[1:]
    n_events, rounds = (int(args[0]) if args else 200_000), (int(args[1]) if len(args) > 1 else 3)
    path = str(events_file(n_events))
    print(f"{n_events:,} events, lowest of {rounds} interleaved rounds")
    print_table(query_parts(path, rounds))
    print()
    print_table(dedupe_copy(path, rounds))
