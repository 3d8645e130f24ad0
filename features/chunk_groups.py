"""Consecutive chunks of history featurised together, each keeping its own boundaries.

:func:`features.featurise.featurise_history` replays history chunk by chunk: the ready rows of
each batch are prepared, marked against what earlier chunks taught the encoder, and counted
into windows that close at the chunk's end. Ingest hands over batches of about 18k events,
and each chunk costs about 90 ms of pandas calls whatever its size: two thirds of the
featurisation's time on a million events (docs/performance.md, session 9). Here the chunks of
consecutive batches, up to :data:`GROUP_ROWS` rows (each batch's repeats collapsed first:
features/repeats.py), go through each step once, and each chunk (a *part* of the group) keeps
what made it a chunk:

- preparing is row by row: the group's frame is its parts' frames, stacked;
- novelty: a value is new in the first part it occurs in (earlier parts taught the encoder), in
  that part's first window, so the encoder is shown (part, window) as the window;
- windows: each part's windows close at the part's end, so a window that late events put in
  two parts is two rows, merged by :func:`features.featurise._combine` as before. The windows
  are counted per (identity, window, part), the part carried as nanoseconds of a window start
  that has none.

Where a step cannot keep the parts apart it runs part by part, as before. Either way the
features are those of the chunks one by one, value for value (tests/engine/).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from events.schema import to_pandas
from features.featurise import (
    NoveltyInput,
    WindowAccumulator,
    mark_novelty,
    novelty_input,
    prepare_events,
    ready_parts,
)
from features.first_seen import FirstSeenEncoder
from features.repeats import collapse_repeats
from features.windows import INDEX, Factorised, finalize, partial_windows

#: Chunks are grouped up to this many rows (events, or repeats collapsed: features/repeats.py).
#: Before the collapse, two of ingest's batches; measured then on 1M events
#: (docs/performance.md, session 9): 32k, 64k and 128k took the same CPU within the noise
#: (12.2-13.2 s against 15.9 s one chunk at a time) and peaked at 625, 753 and 969 MB.
GROUP_ROWS = 32_768
#: Windows counted together carry their part in the nanoseconds of the window start (a
#: microsecond or coarser unit leaves 1000 of them free): at most this many parts at once.
_PART_ROOM = 1000


@dataclass
class ChunkGroup:
    """The prepared events of consecutive chunks (parts), stacked, and where each part ends."""

    frame: pd.DataFrame
    stops: np.ndarray  # the row of ``frame`` after each part's last
    open_from: list[pd.Timestamp | None]  # each part's, as window_chunks yields it
    #: Columns of ``frame`` factorised while preparing it (:func:`features.featurise.prepare_events`).
    codes: dict[str, Factorised] = field(default_factory=dict)

    def parts(self) -> Iterator[tuple[pd.DataFrame, pd.Timestamp | None]]:
        """Each part's rows and the start of its first window that may still grow."""
        start = 0
        for stop, open_from in zip(self.stops, self.open_from, strict=True):
            yield self.frame.iloc[start:stop], open_from
            start = stop

    def part_of_rows(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.stops)), np.diff(self.stops, prepend=0))


def chunk_groups(
    batches: Iterable[pd.DataFrame | pa.Table], freq: str, rows: int | None = None, *, collapse: bool = True
) -> Iterator[ChunkGroup]:
    """The chunks of :func:`features.featurise.window_chunks`, grouped (up to ``rows`` rows,
    default :data:`GROUP_ROWS`) and prepared once a group.

    Arrow chunks are grouped; a pandas chunk keeps its batch's index, so it is a group alone.
    ``collapse``: each Arrow chunk's repeats become one row with their count first
    (:func:`features.repeats.collapse_repeats`), and groups are sized by those rows.
    """
    rows = GROUP_ROWS if rows is None else rows
    pending: list[tuple[pa.Table, pd.Timestamp | None]] = []
    size = 0
    if collapse:  # before the held window is split off: splitting fewer rows costs less
        batches = (collapse_repeats(b, freq) if isinstance(b, pa.Table) else b for b in batches)
    for ready, open_from in ready_parts(batches, freq):
        if pending and (not isinstance(ready, pa.Table) or ready.schema != pending[0][0].schema):
            yield _group(pending, freq)
            pending, size = [], 0
        if not isinstance(ready, pa.Table):
            yield ChunkGroup(prepare_events(ready, freq), np.array([len(ready)]), [open_from])
            continue
        pending.append((ready, open_from))
        size += ready.num_rows
        # Parts counted together are told apart in the nanoseconds of a window start.
        if size >= rows or len(pending) >= _PART_ROOM - 1:
            yield _group(pending, freq)
            pending, size = [], 0
    if pending:
        yield _group(pending, freq)


def _group(parts: list[tuple[pa.Table, pd.Timestamp | None]], freq: str) -> ChunkGroup:
    tables = [table for table, _ in parts]
    raw = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    stops = np.cumsum([table.num_rows for table in tables])
    codes: dict[str, Factorised] = {}
    frame = prepare_events(to_pandas(raw), freq, codes)
    return ChunkGroup(frame, stops, [open_from for _, open_from in parts], codes)


@dataclass
class GroupNovelty:
    """What marking a group reads (:func:`features.featurise.novelty_input`): one input for the
    whole group, its parts told apart in the window column, or one input per part."""

    inputs: list[NoveltyInput]
    together: bool


def group_novelty(
    group: ChunkGroup, encoder: FirstSeenEncoder, share: dict[str, Factorised] | None = None
) -> GroupNovelty:
    """The novelty input of ``group`` for an encoder with ``encoder``'s columns (it reads only
    their names and whether a novelty log is kept): made once, marked against any state later.
    ``share``: filled with the group's columns factorised, when they are made for the whole group."""
    frame, window = group.frame, encoder.window_column
    together = (
        len(group.stops) > 1
        and window is not None
        and window in frame.columns
        # A novelty log records windows: it must see real ones.
        and getattr(encoder, "novelty_log_", None) is None
        # A missing identity is hashed as the first identity of its input: of its part, not group.
        and not frame[encoder.identity_column].isna().any()
    )
    codes = pd.factorize(frame[window], sort=True)[0] if together else None  # windows in time order
    if codes is None or (codes < 0).any():
        return GroupNovelty([novelty_input(part, encoder) for part, _ in group.parts()], together=False)
    # (part, window) as one integer in their order: a value's first is in its first part.
    tagged = group.part_of_rows() * (int(codes.max()) + 1) + codes
    narrow_frame = frame[[c for c in dict.fromkeys(encoder.input_columns()) if c in frame.columns]]
    narrow_frame[str(window)] = tagged  # a new frame of the columns the encoder reads
    return GroupNovelty([novelty_input(narrow_frame, encoder, share)], together=True)


def learn_group(novelty: GroupNovelty, encoder: FirstSeenEncoder) -> None:
    """Teach ``encoder`` a group's events, as :func:`mark_group` does after marking them."""
    for narrow in novelty.inputs:
        encoder.partial_fit(narrow.rows)


def mark_group(
    group: ChunkGroup, encoder: FirstSeenEncoder, novelty: GroupNovelty | None = None, *, learn: bool = True
) -> pd.DataFrame:
    """The group's events with novelty flags, and ``encoder`` taught them: as marking each part
    and then teaching it, part after part. ``novelty``: :func:`group_novelty` of the group, made
    before (for an encoder with the same columns). ``learn=False``: the last part is not taught
    (the encoder is dropped after it)."""
    novelty = group_novelty(group, encoder) if novelty is None else novelty
    if novelty.together:
        if getattr(encoder, "novelty_log_", None) is not None:
            raise ValueError("a novelty log records real windows: make the group's novelty with its encoder")
        return mark_novelty(group.frame, encoder, novelty.inputs[0], learn=learn)
    parts = []
    last = len(novelty.inputs) - 1
    for k, ((part, _), narrow) in enumerate(zip(group.parts(), novelty.inputs, strict=True)):
        parts.append(mark_novelty(part, encoder, narrow, learn=learn or k < last))
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def count_group(
    windows: WindowAccumulator, marked: pd.DataFrame, group: ChunkGroup, codes: dict[str, Factorised] | None = None
) -> None:
    """Add the group's marked events to ``windows`` as adding each part in turn would.
    ``codes``: columns of the group factorised already (:func:`group_novelty`)."""
    starts = marked["window_start"]
    # The leading parts whose windows all close at their end (none is left open for the next
    # part: no busy window) are counted together; the rest one by one. The last part of
    # history (``open_from`` None) closes all its windows too: nothing comes after it.
    together = 0
    if not windows.has_open() and starts.dt.unit in ("s", "ms", "us"):  # room for parts in the ns
        ns = pd.DatetimeIndex(starts).as_unit("ns").asi8
        latest = np.maximum.reduceat(ns, np.concatenate([[0], group.stops[:-1]]))
        for k, open_from in enumerate(group.open_from[: _PART_ROOM - 1]):
            if open_from is not None and latest[k] >= pd.Timestamp(open_from).as_unit("ns").value:
                break
            together = k + 1
    if together > 1:
        end = group.stops[together - 1]
        head = {column: (column_codes[:end], uniques) for column, (column_codes, uniques) in (codes or {}).items()}
        _count_closed(windows, marked.iloc[:end], group.part_of_rows()[:end], head)
    else:
        together = 0
    for k in range(together, len(group.stops)):
        windows.add(marked.iloc[group.stops[k - 1] if k else 0 : group.stops[k]], group.open_from[k])


def _count_closed(
    windows: WindowAccumulator, marked: pd.DataFrame, part: np.ndarray, codes: dict[str, Factorised]
) -> None:
    """Finish the windows of parts that each close all theirs, counted per (identity, window, part)."""
    starts = marked["window_start"]
    tagged = starts.dt.as_unit("ns") + pd.to_timedelta(part, unit="ns")
    counts = partial_windows(marked.assign(window_start=tagged), excuse_copies=windows.excuse_copies, codes=codes)
    done = finalize(counts)
    ns = pd.DatetimeIndex(done.index.get_level_values("window_start")).asi8
    which = ns % _PART_ROOM
    untagged = pd.DatetimeIndex(ns - which).tz_localize("UTC").tz_convert(starts.dt.tz).as_unit(starts.dt.unit)
    done.index = pd.MultiIndex.from_arrays([done.index.get_level_values("identity"), untagged], names=INDEX)
    for k in range(int(part[-1]) + 1):
        rows = which == k
        if rows.any():
            windows.add_finished(done[rows])
