"""One read of a partition for both of the Dask engine's steps: its keys, then its windows.

The Dask engine needs two things of each day: the novelty keys it uses (to fold into the
state of the days after it, without waiting for them) and its windows marked against the
state before it. Both come from the same prepared events (enriched, windowed, their distinct
novelty rows), and preparing is most of a day's work, so a task prepares the day once and the
two steps read that result on the worker that holds it. What the steps do is what
:func:`features.featurise.featurise_history` does, in the same groups of chunks
(:mod:`features.chunk_groups`), so the windows are the local engine's, value for value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from events.time_range import RangeCounts
from features.chunk_groups import (
    ChunkGroup,
    GroupNovelty,
    chunk_groups,
    count_group,
    group_novelty,
    learn_group,
    mark_group,
)
from features.featurise import WindowAccumulator, new_encoder
from features.first_seen import FirstSeenEncoder
from features.profiles import ProfileBuilder
from features.repeats import WEIGHT
from features.windows import _DISTINCT_OF, _FLAGS, INDEX, RESOURCE_MIX

#: The prepared columns windows are counted from (:func:`features.windows.partial_windows`;
#: the novelty marks join them later). A prepared day waits on its worker for the state before
#: it, so only these are kept: 64 of 111 columns, a third of the memory (10 of 29 MB for a
#: 30k-event day of the benchmark lake). A column the windows start to read and this misses
#: fails loudly (KeyError), and the engines' equality tests with it.
WINDOW_COLUMNS = frozenset(
    {*INDEX, WEIGHT, "verb", "target_subresource", "target_resource", *_FLAGS}
    | {column for column, _ in RESOURCE_MIX.values()}
    | {column for column, _ in _DISTINCT_OF.values()}
    | {mask for _, mask in _DISTINCT_OF.values() if mask is not None}
)


@dataclass
class PreparedDay:
    """A partition's prepared groups of chunks (events, where each chunk ends and the start of
    its first window still open; distinct novelty rows), its value counts for profiles and what
    was read."""

    groups: list[tuple[ChunkGroup, GroupNovelty]]
    profiles: ProfileBuilder
    n_events: int
    in_range: RangeCounts

    def __sizeof__(self) -> int:
        """Bytes held by the day's frames and arrays.

        Dask weighs a result by ``sys.getsizeof`` when it has no rule for its type: without
        this, a 12 MB day counted as 48 bytes, so the scheduler moved the day's two steps to an
        idle worker as if the day cost nothing to send (and under-counted worker memory).
        """
        size = object.__sizeof__(self)
        for group, novelty in self.groups:
            size += int(group.frame.memory_usage(index=True).sum()) + group.stops.nbytes
            for part in novelty.inputs:
                size += int(part.rows.memory_usage(index=True).sum())
                size += 0 if part.inverse is None else part.inverse.nbytes
        return size


def prepare_day(tables: list[pa.Table], counts: RangeCounts, window: str) -> PreparedDay:
    """Prepare a partition's events (``tables``, as read; ``counts``: how many were read) once."""
    profiles = ProfileBuilder()
    columns = new_encoder()  # group_novelty reads only the encoder's column names
    groups = []
    for group in chunk_groups(tables, window):
        for part, _ in group.parts():
            profiles.observe(part)
        kept = group.frame[[c for c in group.frame.columns if c in WINDOW_COLUMNS]]
        groups.append((ChunkGroup(kept, group.stops, group.open_from), group_novelty(group, columns)))
    return PreparedDay(groups, profiles, counts.kept + counts.before + counts.after, counts)


def learn_day(day: PreparedDay) -> FirstSeenEncoder:
    """An encoder that has seen the day alone: its keys are the day's (what a pass teaches)."""
    encoder = new_encoder()
    for _, novelty in day.groups:
        learn_group(novelty, encoder)
    return encoder


def day_windows(day: PreparedDay, state: FirstSeenEncoder) -> pd.DataFrame:
    """The day's windows, novelty judged against ``state`` (the days before; not changed)."""
    encoder = copy.deepcopy(state)
    windows = WindowAccumulator(excuse_copies=False)  # training history, as engine/history.py's
    last = len(day.groups) - 1
    for k, (group, novelty) in enumerate(day.groups):  # featurise_history's loop, with its inputs made
        # The copy is dropped after the day: what the day teaches it after its last marks is unused.
        count_group(windows, mark_group(group, encoder, novelty, learn=k < last), group)
    return windows.windows()
