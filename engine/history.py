"""Window features of a lake, one (cluster, day) partition per task, history as a small state.

The only thing a day's features need from the days before is the novelty state: which
(identity, value) keys each identity has used (:class:`features.first_seen.FirstSeenEncoder`,
the same state the daily job carries in :class:`models.day_state.DayState`). So a day is
featurised in two independent steps:

1. :func:`prepared_keys`: the keys the day uses (a few thousand integers), from the day alone;
2. :func:`prepared_features`: the day's windows, marked against the state before the day.

The state before day *d* is the state before day *d-1* plus day *d-1*'s keys, a cheap fold.
Both steps read one partition, prepared once by :func:`prepare_partition` (on a Dask cluster,
a task whose result stays on its worker for the two steps); the days of a cluster run in
parallel once the keys of the days before are known. :func:`featurise_lake` runs it in this
process (``client=None``, the ``local`` engine: one pass a day, the state learned in passing)
or on a Dask cluster, with the same functions, so the results are the same.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.lake import Partition, read_partition
from engine.prepared import PreparedDay, day_windows, learn_day, prepare_day
from errors import KaadError
from events.time_range import RangeCounts, in_time_range
from features.featurise import DEFAULT_WINDOW, _combine, featurise_history, new_encoder
from features.first_seen import FirstSeenEncoder
from features.profiles import ProfileBuilder
from features.repeats import READ_COLUMNS
from pipelines.ingest import IngestStats


@dataclass(frozen=True)
class Options:
    """How every partition is read and featurised."""

    window: str = DEFAULT_WINDOW
    since: datetime | None = None
    until: datetime | None = None
    #: Name identities ``<identity>@<cluster>`` (a lake of several clusters): features are per
    #: (cluster, identity), and one model learns every cluster's identities apart.
    qualify: bool = False


@dataclass
class DayFeatures:
    """What one partition gives: its windows, value counts for profiles, and its counts."""

    windows: pd.DataFrame
    profiles: ProfileBuilder
    n_events: int
    in_range: RangeCounts


def _events(
    partition: Partition, options: Options, columns: list[str] | None = None
) -> tuple[list[pa.Table], RangeCounts]:
    table = read_partition(partition, columns)
    if options.qualify:
        named = pc.binary_join_element_wise(table["identity"], pa.scalar(partition.cluster), "@")
        table = table.set_column(table.column_names.index("identity"), "identity", named)
    counts = RangeCounts()
    kept = [t for t in in_time_range([table], options.since, options.until, counts) if len(t)]
    return kept, counts


#: The columns featurising a partition reads (features/repeats.py). The lake's others (auditIDs,
#: request URIs, groups, reasons) are not decoded: reading every column of a 280k-event day cost
#: 0.21-0.36 CPU s, these 0.08 (docs/performance.md, session 24).
FEATURISED_COLUMNS = ["timestamp", *READ_COLUMNS]


def prepare_partition(partition: Partition, options: Options) -> PreparedDay:
    """Read and prepare a partition once, for :func:`prepared_keys` and :func:`prepared_features`."""
    return prepare_day(*_events(partition, options, FEATURISED_COLUMNS), options.window)


def prepared_keys(day: PreparedDay) -> pd.DataFrame:
    """The novelty keys a prepared day uses: rows (column, key) of a NoveltyLog."""
    return _all_keys(learn_day(day)).astype({"column": np.int64, "key": np.uint64})


def prepared_features(day: PreparedDay, state: FirstSeenEncoder) -> DayFeatures:
    """:func:`day_features` of a prepared day."""
    return DayFeatures(day_windows(day, state), day.profiles, day.n_events, day.in_range)


def advance(state: FirstSeenEncoder, keys: pd.DataFrame) -> FirstSeenEncoder:
    """The state after a day: the state before it, plus the day's keys (a copy; ``state`` stays)."""
    return copy.deepcopy(state).fold(keys)


def day_features(partition: Partition, state: FirstSeenEncoder, options: Options) -> DayFeatures:
    """The partition's window features, novelty judged against ``state`` (the days before)."""
    return _day(partition, state, options)[0]


def _day(partition: Partition, state: FirstSeenEncoder, options: Options) -> tuple[DayFeatures, FirstSeenEncoder]:
    """:func:`day_features`, and the state after the day (what :func:`advance` with the day's
    keys gives: the same sets, learned in passing)."""
    tables, counts = _events(partition, options, FEATURISED_COLUMNS)
    profiles = ProfileBuilder()
    # Training history: a controller's copies count as the host work they are (pipelines/train.py).
    windows, after = featurise_history(
        tables, freq=options.window, encoder=copy.deepcopy(state), observe=profiles.observe, excuse_copies=False
    )
    # Read, as ingest counts them: kept or not by --since/--until.
    return DayFeatures(windows, profiles, counts.kept + counts.before + counts.after, counts), after


@dataclass
class LakeHistory:
    """The window features of a lake and the state after its last day."""

    windows: pd.DataFrame
    encoder: FirstSeenEncoder
    profiles: ProfileBuilder
    n_events: int
    in_range: RangeCounts
    partitions: list[Partition] = field(default_factory=list)
    #: Per partition (in partition order): its windows, as the engine returned them.
    per_partition: list[pd.DataFrame] = field(default_factory=list)
    #: How the partitions were read (identities named, time range).
    options: Options = field(default_factory=Options)

    def events(self) -> Iterator[pa.Table]:
        """The events featurised, a partition at a time, as the tasks read them (in this process)."""
        for partition in self.partitions:
            yield from _events(partition, self.options)[0]

    def stats(self) -> IngestStats:
        """What was read, as training reports it (a lake holds no rejects: ingest took them)."""
        return IngestStats(n_files=sum(len(p.files) for p in self.partitions), n_events=self.n_events)


Progress = Callable[[int, int, Partition], None]


def _stderr_progress(done: int, total: int, partition: Partition) -> None:
    print(f"kaad: {done}/{total} partitions featurised ({partition})", file=sys.stderr, flush=True)


def featurise_lake(
    partitions: list[Partition],
    options: Options,
    *,
    client=None,
    on_progress: Progress | None = _stderr_progress,
    retries: int = 2,
) -> LakeHistory:
    """Featurise every partition; in this process when ``client`` is None, else on its cluster.

    Days of a cluster are taken in date order; clusters are independent. The final state has
    learned every partition (each cluster's keys; with ``qualify`` they cannot collide).
    """
    clusters = sorted({p.cluster for p in partitions})
    chains = {c: sorted((p for p in partitions if p.cluster == c), key=lambda p: p.day) for c in clusters}
    order = [p for c in clusters for p in chains[c]]
    if client is None:
        results, final_states = _run_local(chains, options, on_progress, len(order))
    else:
        results, final_states = _run_dask(client, chains, options, on_progress, len(order), retries)
    encoder = new_encoder()
    profiles = ProfileBuilder()
    in_range = RangeCounts()
    parts = []
    for partition in order:
        day = results[partition]
        parts.append(day.windows)
        profiles.merge(day.profiles)
        in_range.kept += day.in_range.kept
        in_range.before += day.in_range.before
        in_range.after += day.in_range.after
    if len(final_states) == 1:
        encoder = final_states[0]
    for state in final_states if len(final_states) > 1 else []:
        encoder = advance(encoder, _all_keys(state))
    windows = _combine([w for w in parts if len(w)])
    n_events = sum(results[p].n_events for p in order)
    return LakeHistory(windows, encoder, profiles, n_events, in_range, order, parts, options)


def _all_keys(state: FirstSeenEncoder) -> pd.DataFrame:
    """Every key a state holds, as NoveltyLog rows (column, key), to fold into another."""
    sets = state.key_sets()
    frames = []
    for column, hashes in enumerate(sets):
        keys = np.concatenate(hashes._runs) if hashes._runs else np.zeros(0, dtype=np.uint64)
        frames.append(pd.DataFrame({"column": np.full(len(keys), column, dtype=np.int64), "key": keys}))
    return pd.concat(frames, ignore_index=True)


def _run_local(chains, options: Options, on_progress, total: int):
    results: dict[Partition, DayFeatures] = {}
    finals = []
    done = 0
    for chain in chains.values():
        state = new_encoder()
        for partition in chain:
            results[partition], state = _day(partition, state, options)
            done += 1
            if on_progress is not None:
                on_progress(done, total, partition)
        finals.append(state)
    return results, finals


def _run_dask(client, chains, options: Options, on_progress, total: int, retries: int):
    import uuid

    from distributed import as_completed

    run = uuid.uuid4().hex[:8]  # task names are unique to this run, readable on the dashboard
    steps: dict = {}  # future -> (its step, its partition)
    prepared: dict[Partition, object] = {}  # prepared days whose steps are not submitted yet
    where: dict[Partition, list[str]] = {}
    pending = as_completed()  # yields futures, never their results: a prepared day stays put
    for chain in chains.values():
        for partition in chain:
            key = f"prepare-{partition}-{run}"
            day = client.submit(prepare_partition, partition, options, retries=retries, key=key)
            steps[day], prepared[partition] = ("prepare", partition), day
            pending.add(day)
    states = {cluster: client.submit(new_encoder, pure=False) for cluster in chains}
    submitted = dict.fromkeys(chains, 0)
    results: dict[Partition, DayFeatures] = {}
    # A day's steps go before any day still to prepare (submitted earlier, so otherwise first):
    # prepared days wait in memory only until their steps run.
    first = {"retries": retries, "priority": 1}
    with one_line_failures():
        for future in pending:
            step, partition = steps.pop(future)
            if step == "features":
                results[partition] = _result(future, partition)
                if on_progress is not None:
                    on_progress(len(results), total, partition)
                continue
            if future.status == "error":
                _result(future, partition)  # raises, naming the partition
            where[partition] = list(client.who_has([future]).get(future.key, ()))
            # A day's steps go to the worker holding it, in day order (each needs the state
            # of the day before). Left to choose, the scheduler sent a third of the days to
            # the idle worker: ~100 MB pickled each way for a 0.3 s step. The pin is loose,
            # so a day whose worker died is prepared again elsewhere and its steps follow.
            cluster, chain = partition.cluster, chains[partition.cluster]
            while submitted[cluster] < len(chain) and chain[submitted[cluster]] in where:
                next_day = chain[submitted[cluster]]
                day, key = prepared.pop(next_day), f"{next_day}-{run}"
                pin = {"workers": where.pop(next_day) or None, "allow_other_workers": True, **first}
                features = client.submit(prepared_features, day, states[cluster], key=f"features-{key}", **pin)
                keys = client.submit(prepared_keys, day, key=f"keys-{key}", **pin)
                states[cluster] = client.submit(advance, states[cluster], keys, key=f"state-{key}", **first)
                steps[features] = ("features", next_day)
                pending.add(features)
                submitted[cluster] += 1
        return results, client.gather(list(states.values()))


def gather_partitions(futures: dict, on_progress: Progress | None, total: int) -> dict:
    """Each future's result by its partition, as they finish; a task's exception is re-raised
    as a one-line :class:`errors.KaadError` naming the partition (a worker death as well,
    when called inside :func:`one_line_failures`)."""
    from distributed import as_completed

    results = {}
    for done, future in enumerate(as_completed(futures), start=1):
        partition = futures[future]
        results[partition] = _result(future, partition)
        if on_progress is not None:
            on_progress(done, total, partition)
    return results


def _result(future, partition: Partition):
    """The future's result; what its task raised as a one-line KaadError naming ``partition``."""
    from distributed import KilledWorker

    try:
        return future.result()
    except (KaadError, KilledWorker):
        raise
    except Exception as exc:  # noqa: BLE001  (anything a task raised, re-raised here: name its partition)
        raise KaadError(f"partition {partition}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


@contextmanager
def one_line_failures() -> Iterator[None]:
    """Turn the scheduler's KilledWorker (every try of a task lost its worker) into one line."""
    from distributed import KilledWorker

    try:
        yield
    except KilledWorker as exc:
        raise KaadError(
            f"partition {_partition_of(str(exc.task))}: the workers running it died every time it was "
            "tried (out of memory? give the workers more memory, or fewer threads each)"
        ) from None


def _partition_of(task: str) -> str:
    """'cluster=prod/date=2026-03-02' out of a task name such as 'keys-cluster=prod/date=...-run'."""
    start = task.find("cluster=")
    return task[start:].rsplit("-", 1)[0] if start >= 0 else task
