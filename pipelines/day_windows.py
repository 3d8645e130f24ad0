"""A day's events as windows for scoring: featurised chunk by chunk, spilled, read back for explaining."""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from events.schema import EVENT_SCHEMA, to_pandas
from features.featurise import WindowAccumulator, mark_novelty, prepare_events, window_chunks
from features.novelty_log import NoveltyLog
from features.precedent import POPULATED, populated_namespaces
from features.repeats import collapse_repeats
from features.windows import window_start
from models.persistence import ModelBundle

#: (identity, window_start) -> (user agents, namespaces) seen in that window.
Seen = dict[Hashable, tuple[list[str], list[str]]]


@dataclass
class DayWindows:
    """A day featurised for scoring: its windows, their values for the allowlist, and its events."""

    windows: pd.DataFrame
    values: Seen  # for the allowlist
    spill: Path | None  # the day's events as read (event table schema), for explanations


#: How a day's events become a :class:`DayWindows`: (batches, window, spill_dir, encoder).
DayFeaturiser = Callable[[Iterable, str, Path, object], DayWindows]


def featurise_day(
    batches: Iterable, window: str, spill_dir: Path | None, encoder, *, collapse: bool = True
) -> DayWindows:
    """Causal novelty within the day against the model's history, chunk by chunk (bounded memory).

    The events themselves go to a temporary Parquet file in ``spill_dir`` as they came (no
    conversion; none without ``spill_dir``), so the explained identities' calls can be read
    back later without holding the day in memory. ``collapse``: a batch's repeats are featurised
    as one row and a count (features/repeats.py; the same windows and values either way).
    """
    encoder = copy.deepcopy(encoder)  # learns the day as it goes; the bundle (or state) stays as it was
    accumulator = WindowAccumulator()
    values: Seen = {}
    spill = _Spill(None if spill_dir is None else spill_dir / "events.parquet")
    # Each batch is spilled as read, then collapsed before its last window is held back for the
    # next: splitting the collapsed rows costs a tenth of splitting the events. Readers of the
    # spill sort it by time (explained_events); the held rows were spilled one batch later.
    read = (spill.write(batch) for batch in batches)
    collapsed = (collapse_repeats(b, window) if collapse and isinstance(b, pa.Table) else b for b in read)
    for done, open_from in window_chunks(collapsed, window):
        marked = mark_novelty(done, encoder)
        encoder.partial_fit(done)
        accumulator.add(marked, open_from)
        grouped = marked.groupby(["identity", "window_start"], sort=False, observed=True)
        for key, uas in grouped["user_agent"].unique().items():
            old = values.get(key, ([], []))
            values[key] = (sorted(set(old[0]) | {str(u) for u in uas if pd.notna(u)}), old[1])
        for key, nss in grouped["target_namespace"].unique().items():
            values[key] = (
                values[key][0],
                sorted(set(values[key][1]) | {str(n) for n in nss if pd.notna(n) and str(n)}),
            )
    path = spill.close()
    return DayWindows(accumulator.windows(), values, path)


class _Spill:
    """A day's events, written to ``path`` batch by batch as read (in :data:`EVENT_SCHEMA`)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, batch):
        """Write ``batch`` (Arrow or pandas) and hand it on unchanged."""
        if self.path is not None and len(batch):
            table = (
                batch
                if isinstance(batch, pa.Table)
                else pa.Table.from_pandas(batch, schema=EVENT_SCHEMA, preserve_index=False)
            )
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self.path), EVENT_SCHEMA)
            self._writer.write_table(table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA))
        return batch

    def close(self) -> Path | None:
        """The file written, or None when nothing was."""
        if self._writer is None:
            return None
        self._writer.close()
        return self.path


def explained_events(path: Path | None, identities: list[str], bundle: ModelBundle, encoder) -> pd.DataFrame:
    """The explained identities' events, marked again as in the first pass.

    Novelty is per identity, so replaying only these identities' events in time order against
    the model's history gives the same flags (the cluster-wide new-network flag can differ
    when another identity used the network earlier that day; the model's input did not).
    A namespace's birth is the cluster's, so the replay is shown where each of their
    namespaces first appeared that day, and whether something was created in it then.
    """
    if path is None or not identities:
        return pd.DataFrame(columns=["identity", "window_start"])
    wanted = pa.array(identities, pa.string())
    parts, firsts = [], []
    for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=65_536):  # a batch at a time
        firsts.append(_namespace_firsts(batch))
        keep = pc.is_in(batch.column("identity"), value_set=wanted)
        if pc.any(keep).as_py():
            parts.append(pa.Table.from_batches([batch]).filter(keep))
    events = to_pandas(pa.concat_tables(parts) if parts else EVENT_SCHEMA.empty_table())
    events = events.sort_values("timestamp", kind="stable")
    prepared = prepare_events(events, bundle.window)
    state_log = getattr(encoder, "novelty_log_", None)  # the day state's, when scoring with one
    own = None if state_log is None else NoveltyLog()
    replay = copy.deepcopy(encoder).log_novelty(own)
    births = _births(pd.concat(firsts), prepared, bundle.window)
    if births.empty:
        out = mark_novelty(prepared, replay)
    else:
        read = [c for c in dict.fromkeys([*replay.input_columns(), "window_start"]) if c in prepared.columns]
        marked = mark_novelty(pd.concat([prepared[read], births.reindex(columns=read)], ignore_index=True), replay)
        names = list(replay.get_feature_names_out())
        flags = marked[names].iloc[: len(prepared)].set_axis(prepared.index)
        out = pd.concat([prepared.drop(columns=[n for n in names if n in prepared.columns]), flags], axis=1)
    if state_log is not None and own is not None:
        # The replay tells the day state what it flags, as the first pass does. Mostly the same
        # rows; not a key no identity owns alone (a network, a fleet's namespace) that another
        # identity brought earlier that day: new to an explained identity here, it is held back
        # with that identity's alerting day until a person accepts it (models/day_state.py).
        # The births shown to the replay are no identity's: not logged.
        logged = own.frame()
        state_log.extend(logged[logged["identity"] != _BIRTH])
    return out


#: The identity of the rows that show a replay a namespace's birth: no audit username.
_BIRTH = "\x00birth of a namespace"


def _namespace_firsts(batch: pa.RecordBatch) -> pd.DataFrame:
    """Each namespace's first event in ``batch``, and its first allowed create of an object
    (:func:`features.precedent.populated_namespaces`: a Namespace's is under its name)."""
    read = ["target_namespace", "timestamp", "verb", "response_code", "target_resource", "target_subresource"]
    events = pa.Table.from_batches([batch]).select([*read, "target_name"]).to_pandas()
    first = events.groupby("target_namespace", observed=True, dropna=True)["timestamp"].min()
    created = events.groupby(populated_namespaces(events), observed=True, dropna=True)["timestamp"].min()
    return pd.DataFrame({"first": first, "created": created})


def _births(firsts: pd.DataFrame, prepared: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Rows as the encoder reads them, one per namespace ``prepared`` touches: its first window of
    the day, a create in it where one came in that window (:func:`features.precedent.populated_namespaces`)."""
    if firsts.empty or prepared.empty:
        return pd.DataFrame()
    day = firsts.groupby(level=0).min()
    day = day[day.index.isin(prepared["target_namespace"].dropna().unique())]
    if day.empty:
        return pd.DataFrame()
    first = window_start(day["first"], freq)
    born = window_start(day["created"], freq) == first
    namespaces = pd.Series(day.index, dtype="string")
    return pd.DataFrame(
        {
            "identity": pd.Series(_BIRTH, index=namespaces.index, dtype="string"),
            "target_namespace": namespaces,
            POPULATED: namespaces.where(born.to_numpy()),
            "window_start": first.reset_index(drop=True).astype(prepared["window_start"].dtype),
        }
    )


def main_day(windows: pd.DataFrame) -> date | None:
    if windows.empty:
        return None
    per_day = (
        np.expm1(windows["log_requests"])
        .groupby(pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize())
        .sum()
    )
    return per_day.idxmax().date()
