"""Score a day of a lake: each cluster's partition of the day featurised by an engine.

``kaad score LAKE --day D`` featurises the partitions ``cluster=*/date=D`` (one task each,
``--engine dask`` on a cluster, ``local`` here) against the state before the day, then ranks
and explains the day in this process as :func:`pipelines.score.score_batches` does for a
stream. The state before the day (the model's, or the day state's, first-seen sets) travels
to the workers as a small table of 64-bit keys (:class:`StateTable`), sent once per run; each
task returns its windows, the values the allowlist looks at, and what its day introduced (the
novelty log the day state learns from). Both engines run the same task function, so they give
the same result, value for value.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from engine.history import FEATURISED_COLUMNS, Options, _all_keys, _events, gather_partitions, one_line_failures
from engine.lake import Partition, is_lake_input, lake_partitions
from engine.train import SEVERAL_CLUSTERS, EngineConfig
from errors import KaadError
from events.schema import EVENT_SCHEMA
from features.featurise import _combine
from features.first_seen import FirstSeenEncoder
from features.novelty_log import NoveltyLog
from pipelines.ingest import IngestStats
from pipelines.score import DayFeaturiser, DayWindows, featurise_day


@dataclass(frozen=True)
class StateTable:
    """A first-seen state as a table: one row (encoder set, 64-bit key) per value learned.

    What a task needs of history, whatever its length: a few bytes a (identity, value) pair.

    Examples
    --------
    >>> from features.featurise import new_encoder
    >>> import pandas as pd
    >>> identities = len(new_encoder().attributes)  # the set after the attributes
    >>> state = StateTable.of(new_encoder().fold(pd.DataFrame({"column": [0, identities], "key": [5, 9]})))
    >>> len(state), state.nbytes
    (2, 18)
    >>> state.encoder().identities_.contains(np.array([9, 5], dtype=np.uint64)).tolist()
    [True, False]
    """

    columns: np.ndarray  # int8: which set (FirstSeenEncoder.key_sets: attributes, identities, IP ranges, namespaces)
    keys: np.ndarray  # uint64
    params: dict = field(default_factory=dict)  # the encoder's parameters

    @classmethod
    def of(cls, encoder: FirstSeenEncoder) -> StateTable:
        rows = _all_keys(encoder)
        # Whether it keeps the cluster's namespaces, whatever its parameter says: the encoder
        # made from the table must hold the same sets, or the day state cannot fold its log.
        params = {**encoder.get_params(), "namespace_births": encoder.births_column() is not None}
        return cls(rows["column"].to_numpy(dtype=np.int8), rows["key"].to_numpy(dtype=np.uint64), params)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return int(self.columns.nbytes + self.keys.nbytes)

    def encoder(self) -> FirstSeenEncoder:
        """An encoder that has learned exactly these keys."""
        encoder = FirstSeenEncoder(**self.params)
        empty = pd.DataFrame({encoder.identity_column: pd.Series([], dtype="string")})
        empty["source_ip"] = pd.Series([], dtype="string")
        return encoder.fit(empty).fold(pd.DataFrame({"column": self.columns.astype(np.int64), "key": self.keys}))


@dataclass
class PartitionWindows:
    """What one task returns: a partition's windows, their values, and what the day introduced."""

    windows: pd.DataFrame
    values: dict
    novelty: pd.DataFrame  # NoveltyLog rows (identity, window_start, column, key)
    n_events: int


def partition_windows(partition: Partition, state: StateTable, options: Options) -> PartitionWindows:
    """Featurise one (cluster, day) partition for scoring, novelty judged against ``state``."""
    tables, counts = _events(partition, options, FEATURISED_COLUMNS)
    log = NoveltyLog()
    day = featurise_day(tables, options.window, None, state.encoder().log_novelty(log))
    return PartitionWindows(day.windows, day.values, log.frame(), counts.kept + counts.before + counts.after)


@dataclass
class LakeDay:
    """The partitions of the day to score, and how to read them."""

    day: date
    partitions: list[Partition]
    qualify: bool

    @classmethod
    def find(cls, inputs: list[str], day: date | None) -> LakeDay | None:
        """The lake's partitions of ``day`` (default: its last day); None when ``inputs`` are no lake.

        Identities are named ``IDENTITY@CLUSTER`` when the lake holds several clusters, as
        training from it names them (engine/train.py).
        """
        if not inputs or not all(is_lake_input(str(i)) for i in inputs):
            return None
        partitions = lake_partitions([str(i) for i in inputs])
        day = day or max(p.day for p in partitions)
        chosen = [p for p in partitions if p.day == day]
        if not chosen:
            days = sorted({p.day for p in partitions})
            raise KaadError(f"no partition of {day} in the lake (it holds {days[0]} to {days[-1]})")
        return cls(day, chosen, qualify=len({p.cluster for p in partitions}) > 1)


def lake_days(inputs: list[str]) -> list[date] | None:
    """Every day the lake holds a partition of (any cluster), oldest first; None when
    ``inputs`` are no lake."""
    if not inputs or not all(is_lake_input(str(i)) for i in inputs):
        return None
    return sorted({p.day for p in lake_partitions([str(i) for i in inputs])})


@contextmanager
def one_cluster(engine: EngineConfig | None) -> Iterator[EngineConfig | None]:
    """``engine`` for several days in a row: a LocalCluster it would start for each day is
    started once, here, and each day's client connects to it."""
    if engine is None or engine.name != "dask" or engine.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"):
        yield engine
        return
    from engine.cluster import local_cluster

    with local_cluster(engine.workers) as cluster:
        yield replace(engine, scheduler=cluster.scheduler_address)


def _stderr_progress(done: int, total: int, partition: Partition) -> None:
    print(f"kaad: {done}/{total} partitions of the day featurised ({partition})", file=sys.stderr, flush=True)


def _record(log: NoveltyLog, novelty: pd.DataFrame) -> None:
    """Add a task's novelty rows to the day state's log (the state learns from it after scoring)."""
    columns = novelty["column"].to_numpy(dtype=np.int64)
    for column in np.unique(columns):
        rows = novelty[columns == column]
        log.record(
            rows["identity"].reset_index(drop=True),
            rows["window_start"].to_numpy(dtype=np.int64),
            int(column),
            rows["key"].to_numpy(dtype=np.uint64),
            np.arange(len(rows)),
        )


def _spill(lake: LakeDay, options: Options, spill_dir: Path) -> Path | None:
    """The day's events, as the tasks read them, in one local Parquet file (for explanations
    and evidence), one partition at a time."""
    path, writer = spill_dir / "events.parquet", None
    for partition in lake.partitions:
        tables, _ = _events(partition, options)
        for table in tables:
            if writer is None:
                writer = pq.ParquetWriter(str(path), EVENT_SCHEMA)
            writer.write_table(table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA))
    if writer is None:
        return None
    writer.close()
    return path


class LakeScoring:
    """The featuriser :func:`pipelines.score.score_batches` calls for a lake day, and what it read."""

    def __init__(self, lake: LakeDay, client=None, on_progress=_stderr_progress, retries: int = 2) -> None:
        self.lake = lake
        self.client = client
        self.on_progress = on_progress
        self.retries = retries
        self.stats = IngestStats()
        #: The state sent to the tasks, kept to say how large it was.
        self.state: StateTable | None = None

    def featuriser(self) -> DayFeaturiser:
        return self._featurise

    def check_evidence(self, evidence) -> None:
        """Refuse outside evidence (rules, flow logs) where its identities and the lake's differ."""
        if evidence and self.lake.qualify:
            raise KaadError(SEVERAL_CLUSTERS.format(what="--rules or --flow-logs"))

    def _featurise(self, batches: Iterable, window: str, spill_dir: Path, encoder) -> DayWindows:
        options = Options(window=window, qualify=self.lake.qualify)
        self.state = state = StateTable.of(encoder)
        results = self._run(state, options)
        log = getattr(encoder, "novelty_log_", None)  # the day state's log, when scoring with one
        values: dict = {}
        parts = []
        for partition in self.lake.partitions:
            got = results[partition]
            if log is not None:
                _record(log, got.novelty)
            values.update(got.values)  # per (identity, window): identities differ between clusters
            if len(got.windows):
                parts.append(got.windows)
            self.stats.n_events += got.n_events
            self.stats.n_files += len(partition.files)
        return DayWindows(_combine(parts), values, _spill(self.lake, options, spill_dir))

    def _run(self, state: StateTable, options: Options) -> dict[Partition, PartitionWindows]:
        partitions, total = self.lake.partitions, len(self.lake.partitions)
        if self.client is None:
            results = {}
            for done, partition in enumerate(partitions, start=1):
                results[partition] = partition_windows(partition, state, options)
                if self.on_progress is not None:
                    self.on_progress(done, total, partition)
            return results
        import uuid

        run = uuid.uuid4().hex[:8]
        # Sent once to every worker, not once a task: the state is the largest argument.
        sent = self.client.scatter(state, broadcast=True, hash=False)
        futures = {
            self.client.submit(partition_windows, p, sent, options, retries=self.retries, key=f"score-{p}-{run}"): p
            for p in partitions
        }
        with one_line_failures():
            return gather_partitions(futures, self.on_progress, total)


@contextmanager
def lake_scoring(inputs: list[str], day: date | None, engine: EngineConfig | None) -> Iterator[LakeScoring | None]:
    """A :class:`LakeScoring` of ``inputs`` on ``engine`` (a Dask client open meanwhile), or None
    when the inputs are not a lake (they are then read as a stream, by this process only)."""
    engine = engine or EngineConfig()
    lake = LakeDay.find(inputs, day)
    if lake is None:
        if engine.name == "dask":
            raise KaadError(
                "--engine dask reads a lake (kaad ingest ... --out DIR; cluster=NAME/date=DAY/*.parquet), "
                "on disk or s3://; these inputs are not one"
            )
        yield None
        return
    if engine.name == "local":
        yield LakeScoring(lake)
        return
    from engine.cluster import dask_client

    with dask_client(engine.scheduler, workers=engine.workers) as client:
        yield LakeScoring(lake, client)
