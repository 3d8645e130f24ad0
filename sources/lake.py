"""A local lake of events: Parquet partitioned by cluster and date, appended without duplicates.

``data/cluster=prod/date=2026-03-22/part-<id>.parquet``. Appending a batch drops the requests
its date partition already holds (the same auditID and request content, as in ingest), so a
daily job that overlaps yesterday's read, or reruns after an interruption, adds nothing twice.
A different request that reuses an auditID the partition holds is kept and flagged. ``train``
and ``score`` read the lake like any other input (the directory, or a partition of it).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from events.hashset import HashSet
from events.parse import AUDIT_ID_HASH_SQL, REQUEST_KEY_SQL
from events.schema import EVENT_SCHEMA

_KEYS = f"SELECT {REQUEST_KEY_SQL} AS request, {AUDIT_ID_HASH_SQL} AS id"


def _add_new(known: HashSet, keys: np.ndarray) -> None:
    distinct = np.unique(keys)
    known.add(distinct[~known.contains(distinct, is_sorted=True)], is_sorted=True)


def _keys(con: duckdb.DuckDBPyConnection, relation: str, **params) -> tuple[np.ndarray, np.ndarray]:
    table = con.sql(f"{_KEYS} FROM {relation}", params=params or None).to_arrow_table()
    return (table["request"].to_numpy().astype(np.uint64), table["id"].to_numpy().astype(np.uint64))


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def lake_partition(root: Path, cluster: str, day: str) -> Path:
    return root / f"cluster={_SAFE.sub('_', cluster) or 'default'}" / f"date={day}"


class LakeWriter:
    """Append event batches to a partitioned lake; count what was new and what was there."""

    def __init__(self, root: Path, cluster: str) -> None:
        self.root = Path(root)
        self.cluster = cluster
        self._known: dict[str, tuple[HashSet, HashSet]] = {}  # day -> (requests, auditIDs)
        self._con = duckdb.connect()
        self._con.execute("SET enable_progress_bar = false")  # stdout is for results
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.n_written = 0
        self.n_already_there = 0
        self.n_audit_id_reused = 0  # flagged here: the auditID was in the partition already
        self.partitions: set[Path] = set()

    def _existing(self, day: str) -> tuple[HashSet, HashSet]:
        if day not in self._known:
            part = lake_partition(self.root, self.cluster, day)
            requests, ids = HashSet(), HashSet()
            for path in sorted(part.glob("*.parquet")):
                got_requests, got_ids = _keys(self._con, "read_parquet($path)", path=str(path))
                _add_new(requests, got_requests)
                _add_new(ids, got_ids)
            self._known[day] = (requests, ids)
        return self._known[day]

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        days = pc.strftime(table["timestamp"], format="%Y-%m-%d").to_numpy(zero_copy_only=False)
        self._con.register("batch", table)
        try:
            requests, ids = _keys(self._con, "batch")
        finally:
            self._con.unregister("batch")
        reused = table["audit_id_reused"].to_numpy(zero_copy_only=False).astype(bool)
        for day in np.unique(days):
            rows = np.flatnonzero(days == day)
            known_requests, known_ids = self._existing(day)
            fresh = rows[~known_requests.contains(requests[rows])]
            self.n_already_there += len(rows) - len(fresh)
            if len(fresh) == 0:
                continue
            # A new request under an auditID this partition already holds: flag it here too.
            flags = reused[fresh] | known_ids.contains(ids[fresh])
            self.n_audit_id_reused += int(flags.sum() - reused[fresh].sum())
            part = table.take(fresh).cast(EVENT_SCHEMA)
            part = part.set_column(part.column_names.index("audit_id_reused"), "audit_id_reused", pa.array(flags))
            _add_new(known_requests, requests[fresh])
            _add_new(known_ids, ids[fresh])
            writer = self._writers.get(day)
            if writer is None:
                target = lake_partition(self.root, self.cluster, day)
                target.mkdir(parents=True, exist_ok=True)
                self.partitions.add(target)
                # Names sort in write order, so a partition reads back in the order it was
                # appended (the first request under a reused auditID stays the unflagged one).
                name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet.tmp"
                writer = pq.ParquetWriter(str(target / name), EVENT_SCHEMA)
                self._writers[day] = writer
            writer.write_table(part)
            self.n_written += part.num_rows

    def close(self, commit: bool = True) -> None:
        """Finish the files; without ``commit`` (an interrupted read) they are removed."""
        for writer in self._writers.values():
            writer.close()
            tmp = Path(writer.where) if hasattr(writer, "where") else None
            if tmp is None:
                continue
            if commit:
                tmp.rename(tmp.with_suffix(""))  # .parquet.tmp -> .parquet: visible only when whole
            else:
                tmp.unlink(missing_ok=True)
        self._writers.clear()
        self._con.close()
