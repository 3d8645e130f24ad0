"""A local lake of events: Parquet partitioned by cluster and date, appended without duplicates.

``data/cluster=prod/date=2026-03-22/part-<id>.parquet``. Appending a batch drops the requests
(auditIDs) its date partition already holds, so a daily job that overlaps yesterday's read, or
reruns after an interruption, adds nothing twice. ``train`` and ``score`` read the lake like
any other input (the directory, or a partition of it).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.schema import EVENT_SCHEMA

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def lake_partition(root: Path, cluster: str, day: str) -> Path:
    return root / f"cluster={_SAFE.sub('_', cluster) or 'default'}" / f"date={day}"


class LakeWriter:
    """Append event batches to a partitioned lake; count what was new and what was there."""

    def __init__(self, root: Path, cluster: str) -> None:
        self.root = Path(root)
        self.cluster = cluster
        self._known: dict[str, set[str]] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.n_written = 0
        self.n_already_there = 0
        self.partitions: set[Path] = set()

    def _existing(self, day: str) -> set[str]:
        if day not in self._known:
            part = lake_partition(self.root, self.cluster, day)
            known: set[str] = set()
            for path in sorted(part.glob("*.parquet")):
                known.update(pq.read_table(path, columns=["audit_id"])["audit_id"].to_pylist())
            self._known[day] = known
        return self._known[day]

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        days = pc.strftime(table["timestamp"], format="%Y-%m-%d").to_numpy(zero_copy_only=False)
        ids = table["audit_id"].to_numpy(zero_copy_only=False)
        for day in np.unique(days):
            rows = np.flatnonzero(days == day)
            known = self._existing(day)
            fresh = np.array([i for i in rows if ids[i] not in known], dtype=np.int64)
            self.n_already_there += len(rows) - len(fresh)
            if len(fresh) == 0:
                continue
            part = table.take(fresh).cast(EVENT_SCHEMA)
            known.update(ids[fresh].tolist())
            writer = self._writers.get(day)
            if writer is None:
                target = lake_partition(self.root, self.cluster, day)
                target.mkdir(parents=True, exist_ok=True)
                self.partitions.add(target)
                writer = pq.ParquetWriter(str(target / f"part-{uuid.uuid4().hex[:12]}.parquet.tmp"),
                                          EVENT_SCHEMA)
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
