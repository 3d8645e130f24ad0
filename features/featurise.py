"""Events -> window features, causally and in chunks, with novelty state carried between them.

History is replayed in time order: each chunk is marked against what earlier chunks taught the
:class:`FirstSeenEncoder`, then taught to it. The last window of a chunk is held back until the
next chunk, so a window split across chunks is still aggregated in one piece.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from events.rows import filter_rows
from events.schema import to_pandas
from features.enrich import enrich_events
from features.first_seen import FirstSeenEncoder, ip_range
from features.precedent import POPULATED, authored_images, populated_namespaces, template_owners
from features.refusals import COLUMNS as REFUSAL_COLUMNS
from features.refusals import refusal_targets
from features.windows import (
    FEATURE_NAMES,
    INDEX,
    Factorised,
    PartialWindows,
    aggregate_windows,
    finalize,
    merge_partials,
    partial_windows,
    split_partial,
    window_start,
)

DEFAULT_WINDOW = "1h"
_DISTINCT = {
    "n_verbs",
    "n_resources",
    "n_namespaces",
    "n_names",
    "n_foreign_namespaces",
    "n_secret_namespaces",
    "n_secret_names",
    "new_identity",
    "hour_of_day",
    "weekday",
}


def prepare_events(
    events: pd.DataFrame, freq: str = DEFAULT_WINDOW, codes: dict[str, Factorised] | None = None
) -> pd.DataFrame:
    """Enrich events and add the window and novelty attribute columns (rows kept).
    ``codes``: filled with the columns enrichment factorised (:func:`features.enrich.enrich_events`)."""
    out = enrich_events(events, codes)
    out["window_start"] = window_start(out["timestamp"], freq)
    out["principal"] = out["principal_session"].astype("string").fillna(out["principal_arn"].astype("string"))
    images = out["pod_images"]
    out["image"] = pd.Series(pd.NA, index=out.index, dtype="string")
    has = images.notna().to_numpy()
    if has.any():
        out.loc[has, "image"] = [",".join(sorted(v)) for v in images[has]]
    if "pod_has_owner" in out.columns:
        out["image"] = authored_images(out["image"], out["pod_has_owner"], out["identity"])
    if "pod_owner" in out.columns:
        out["template_owner"] = template_owners(out["pod_owner"], out["identity"])
    out["ip_range"] = ip_range(out["source_ip"])
    out[POPULATED] = populated_namespaces(out)
    out[list(REFUSAL_COLUMNS)] = refusal_targets(out)
    return out


@dataclass
class NoveltyInput:
    """The distinct rows of what the encoder reads, and for each event its distinct row.

    An event's novelty flags depend only on its identity, its values and its window (new: a
    pair not seen before, in the first window it occurs in), so the encoder marks each
    distinct row once: an hour of a controller's calls is a few distinct rows, not thousands.
    """

    rows: pd.DataFrame
    inverse: np.ndarray | None  # event -> row of ``rows``; None: one row per event


def novelty_input(
    prepared: pd.DataFrame, encoder: FirstSeenEncoder, share: dict[str, Factorised] | None = None
) -> NoveltyInput:
    """The columns ``encoder`` reads, one row per distinct combination (every row, text as
    categories, without a window column). ``share``: each column's factorisation, taken from it
    when there (made by :func:`prepare_events` of the same rows) and added to it when not, for
    :func:`features.windows.partial_windows` of the same rows."""
    wanted = dict.fromkeys(encoder.input_columns())
    present = [column for column in wanted if column in prepared.columns]
    if not (encoder.window_column and encoder.window_column in prepared.columns):
        # Without windows, row order is time order: keep every row.
        every = prepared[present]
        return NoveltyInput(every.astype(_categories(every)), None)
    window = prepared[encoder.window_column]
    # One integer per distinct row, column by column. Only the distinct rows become
    # categories, from the same codes: building a categorical costs ~1 ms a column whatever its
    # length, factorising as much again. The key is refactorised only when the next column could
    # overflow it, and once at the end: then it numbers the distinct rows in order of first
    # appearance, as refactorising after every column did (11 factorisations a group fewer).
    key = np.zeros(len(prepared), dtype=np.int64)
    bound = 1  # every key is below this
    factorised = {}
    for column in present:
        if share is not None and column in share:
            codes, uniques = share[column]
        else:
            codes, uniques = pd.factorize(prepared[column], use_na_sentinel=True)
        factorised[column] = (codes, uniques)
        if share is not None:
            share[column] = (codes, uniques)
        if bound * (len(uniques) + 1) >= _KEY_ROOM:
            key, distinct = pd.factorize(key)
            bound = len(distinct)
        key = key * (len(uniques) + 1) + (codes.astype(np.int64) + 1)  # NA (-1): a value of its own
        bound *= len(uniques) + 1
    key, _ = pd.factorize(key)
    window_codes, window_uniques = pd.factorize(window)
    inverse, firsts = pd.factorize(key * (len(window_uniques) + 1) + window_codes)
    first_rows = np.empty(len(firsts), dtype=np.int64)
    first_rows[inverse[::-1]] = np.arange(len(inverse) - 1, -1, -1)  # each distinct row's first event
    rows: dict[Hashable, object] = {
        column: pd.Categorical.from_codes(codes[first_rows], dtype=pd.CategoricalDtype(uniques), validate=False)
        for column, (codes, uniques) in factorised.items()
    }
    rows[encoder.window_column] = window.array.take(first_rows)
    return NoveltyInput(pd.DataFrame(rows, index=prepared.index[first_rows]), inverse)


#: Keys combined in int64 stay below this (products of column widths, checked in Python ints).
_KEY_ROOM = 2**62


def _categories(frame: pd.DataFrame) -> dict[Hashable, str]:
    """Text columns as categories (the encoder's input), those already categorical kept."""
    return {c: "category" for c, dtype in frame.dtypes.items() if not isinstance(dtype, pd.CategoricalDtype)}


def mark_novelty(
    prepared: pd.DataFrame, encoder: FirstSeenEncoder, narrow: NoveltyInput | None = None, *, learn: bool = False
) -> pd.DataFrame:
    """Add the encoder's ``is_new_*`` flags to prepared events (causal within ``prepared``).

    ``narrow``: :func:`novelty_input` of ``prepared``, when the caller made it already.
    ``learn``: then teach ``encoder`` these events (``partial_fit`` of ``narrow.rows``).
    """
    narrow = narrow if narrow is not None else novelty_input(prepared, encoder)
    flags = encoder.transform_then_learn(narrow.rows) if learn else encoder.transform(narrow.rows)
    if narrow.inverse is not None:
        flags = flags[narrow.inverse]
    names = encoder.get_feature_names_out()
    marks = pd.DataFrame(flags.astype(bool), columns=list(names), index=prepared.index)  # one block
    # Joined, not copied: copy-on-write keeps ``prepared`` as it was.
    return pd.concat([prepared.drop(columns=[n for n in names if n in prepared.columns]), marks], axis=1)


def new_encoder() -> FirstSeenEncoder:
    """An encoder that has seen nothing yet (the start of history)."""
    encoder = FirstSeenEncoder()
    return encoder.fit(
        pd.DataFrame({"identity": pd.Series([], dtype="string"), "source_ip": pd.Series([], dtype="string")})
    )


def _combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate window frames; merge the rare rows of one window split by late events."""
    frame = pd.concat(parts) if parts else aggregate_windows(pd.DataFrame())
    if not frame.index.has_duplicates:
        return frame.sort_index()
    # A window seen twice (events more than a window late): add what adds up, keep the
    # larger distinct counts (a lower bound), weight shares by requests.
    weights = np.expm1(frame["log_requests"])
    shares = [c for c in frame.columns if c.startswith("frac_")]
    weighted = frame[shares].mul(weights, axis=0)
    grouped = frame.groupby(level=INDEX, sort=True)
    out = grouped.sum()
    out[list(_DISTINCT & set(frame.columns))] = grouped[list(_DISTINCT & set(frame.columns))].max()
    total = weights.groupby(level=INDEX, sort=True).sum()
    out[shares] = weighted.groupby(level=INDEX, sort=True).sum().div(total, axis=0)
    out["log_requests"] = np.log1p(total)
    return out.loc[:, list(FEATURE_NAMES)]


def featurise_history(
    batches: Iterable[pd.DataFrame | pa.Table],
    *,
    freq: str = DEFAULT_WINDOW,
    encoder: FirstSeenEncoder | None = None,
    observe: Callable[[pd.DataFrame], None] | None = None,
    excuse_copies: bool = True,
    collapse: bool = True,
) -> tuple[pd.DataFrame, FirstSeenEncoder]:
    """Causal window features over history given in time-ordered batches of events.

    Returns the windows and the encoder that has learned all of history (for scoring later).
    ``observe`` sees each prepared chunk (to learn profiles alongside; a chunk's repeats may be
    one row, counted in ``n_events``). ``excuse_copies``: as in
    :func:`features.windows.partial_windows` (a model's training history counts the copies).
    ``collapse``: as in :func:`features.chunk_groups.chunk_groups` (the same windows either way).
    """
    # The chunks of window_chunks, grouped: the same steps, each paid once a group.
    from features.chunk_groups import chunk_groups, count_group, group_novelty, mark_group  # builds on this module

    encoder = encoder if encoder is not None else new_encoder()
    windows = WindowAccumulator(excuse_copies=excuse_copies)
    for group in chunk_groups(batches, freq, collapse=collapse):
        if observe is not None:
            for part, _ in group.parts():
                observe(part)
        # The group's columns, factorised once for enrichment, novelty and windows.
        shared: dict[str, Factorised] = dict(group.codes)
        novelty = group_novelty(group, encoder, shared)
        count_group(windows, mark_group(group, encoder, novelty), group, shared)
    return windows.windows(), encoder


def featurise(
    events: pd.DataFrame | pa.Table, encoder: FirstSeenEncoder, *, freq: str = DEFAULT_WINDOW
) -> pd.DataFrame:
    """Window features of new activity, novelty judged against a fitted encoder (not updated)."""
    frame = to_pandas(events) if isinstance(events, pa.Table) else events
    return _combine([aggregate_windows(mark_novelty(prepare_events(frame, freq), encoder))])


#: The last window of a batch waits for the next batch, up to this many rows; beyond that the
#: window is processed in parts, merged exactly (a busy hour on a large cluster has 170k+ events).
MAX_HELD_ROWS = 65_536


def window_chunks(
    batches: Iterable[pd.DataFrame | pa.Table], freq: str
) -> Iterator[tuple[pd.DataFrame, pd.Timestamp | None]]:
    """Prepared events in time order, with the start of the first window that may still grow.

    The split happens on the batch as it came (Arrow, where it came as Arrow), so only what is
    ready is converted and enriched, once.
    """
    for ready, open_from in ready_parts(batches, freq):
        yield prepare_events(to_pandas(ready) if isinstance(ready, pa.Table) else ready, freq), open_from


def ready_parts(
    batches: Iterable[pd.DataFrame | pa.Table], freq: str
) -> Iterator[tuple[pa.Table | pd.DataFrame, pd.Timestamp | None]]:
    """:func:`window_chunks`'s chunks before they are prepared: the rows of each batch that are
    ready (the batch's last window is held for the next one), with that last window's start."""
    carry = None
    for batch in batches:
        if len(batch) == 0:
            continue
        if carry is not None:
            batch = (
                pa.concat_tables([carry, batch])
                if isinstance(batch, pa.Table)
                else pd.concat([carry, batch], ignore_index=True)
            )
        stamps = batch["timestamp"].to_pandas() if isinstance(batch, pa.Table) else batch["timestamp"]
        starts = window_start(stamps, freq)
        last = starts.max()
        held = (starts == last).to_numpy()
        if held.sum() > MAX_HELD_ROWS:
            held = np.zeros(len(held), dtype=bool)  # process the busy window now, in part; it stays open
        if isinstance(batch, pa.Table):
            carry, ready = _split_held(batch, held)
        else:
            carry, ready = batch[held], batch[~held]
        if len(ready):
            yield ready, last
    if carry is not None and len(carry):
        yield carry, None


def _split_held(batch: pa.Table, held: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """(held rows, the rest), in order. Events come nearly in time order, so the held last
    window is usually the batch's tail: two zero-copy slices instead of two filtered copies."""
    first = int(np.argmax(held)) if held.any() else len(held)
    if held[first:].all():
        return batch.slice(first), batch.slice(0, first)
    # Only the tail from the first held row on is filtered; the head is ready as it is.
    tail, mask = batch.slice(first), held[first:]
    return filter_rows(tail, mask), pa.concat_tables([batch.slice(0, first), filter_rows(tail, ~mask)])


class WindowAccumulator:
    """Collect marked chunks; finish each window once no later chunk can add to it."""

    def __init__(self, *, excuse_copies: bool = True) -> None:
        self.excuse_copies = excuse_copies  # features.windows.partial_windows
        self._open: PartialWindows | None = None
        self._done: list[pd.DataFrame] = []

    def add(self, marked: pd.DataFrame, open_from: pd.Timestamp | None) -> None:
        part = partial_windows(marked, excuse_copies=self.excuse_copies)
        # Usually nothing is open: the chunker holds the last window back, so only a busy
        # window processed in parts, or events later than a window, need merging.
        if self._open is not None and len(self._open.sums):
            part = merge_partials([self._open, part])
        self._open = part
        if open_from is not None:
            closed, self._open = split_partial(self._open, open_from)
            if len(closed.sums):
                self._done.append(finalize(closed))

    def has_open(self) -> bool:
        """Whether some window is still open (a later chunk may add to it)."""
        return self._open is not None and len(self._open.sums) > 0

    def add_finished(self, windows: pd.DataFrame) -> None:
        """Add windows finished elsewhere, as :meth:`add` finishes a chunk's closed windows."""
        self._done.append(windows)

    def windows(self) -> pd.DataFrame:
        if self._open is not None and len(self._open.sums):
            self._done.append(finalize(self._open))
            self._open = None
        return _combine(self._done)
