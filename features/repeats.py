"""Repeated requests as one row and a count: what the featurisation cannot tell apart, read once.

An hour of audit log is mostly the same requests over and over: each kubelet renews its lease
every ten seconds, controllers re-list and re-watch the same kinds. Every window feature is a
count, a share or a distinct count of what an event's columns say, and novelty is judged per
distinct row (:func:`features.featurise.novelty_input`), so events of one window that agree on
every column the featurisation reads are one row standing for ``n_events`` events. On the
benchmark's million events (docs/performance.md, session 24) that is 32k rows: 30x fewer to
convert, enrich, mark and count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.flags import FLAG_COLUMNS

#: Every event-table column the featurisation reads (enrichment, precedent, refusal targets,
#: the encoder's attributes, windows, profiles), besides ``timestamp``, which only places an
#: event in its window. A repeat differs only in columns outside this list (auditID, stage,
#: requestURI, source line, the timestamp within the window). A column read later and missing
#: here is not in the collapsed table: reading it fails loudly, and the equality tests with it
#: (tests/features/test_repeats.py).
READ_COLUMNS = (
    "identity",
    "verb",
    "target_resource",
    "target_subresource",
    "target_namespace",
    "target_name",
    "response_code",
    "auth_decision",
    "user_agent",
    "source_ip",
    "principal_arn",
    "principal_session",
    "pod_images",
    "pod_has_owner",
    "pod_owner",
    *FLAG_COLUMNS,
)
#: How many events a collapsed row stands for; a frame without it has one event a row.
WEIGHT = "n_events"
_SEPARATOR = "\x1f"


def collapse_repeats(table: pa.Table, freq: str) -> pa.Table:
    """One row for each distinct (window, :data:`READ_COLUMNS`) of ``table``, in order of first
    occurrence, with the first event's ``timestamp`` and the count in :data:`WEIGHT`.

    A table without every column (older tables, hand-made frames) or already collapsed is
    returned unchanged.
    """
    names = table.column_names
    if WEIGHT in names or "timestamp" not in names or any(c not in names for c in READ_COLUMNS):
        return table
    keys: dict[str, pa.ChunkedArray | pa.Array | np.ndarray] = {}
    alone = np.zeros(table.num_rows, dtype=bool)  # rows kept apart: see below
    for name in READ_COLUMNS:
        column = table[name]
        if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
            keys[name] = column
            continue
        # Arrow groups by no list type: a list is keyed as its items joined, and its length
        # ([] and [""] join alike). Two lists could still join alike, and such rows are never
        # merged: items that hold the separator (attacker-written image names), and a missing
        # item, which makes the whole join missing (a container spec without an image).
        joined = pc.binary_join(column, _SEPARATOR)
        length = pc.fill_null(pc.list_value_length(column), -1)
        keys[name] = joined
        keys[f"{name} length"] = length
        seps = pc.fill_null(pc.count_substring(joined, _SEPARATOR), 0).to_numpy(zero_copy_only=False)
        alone |= seps > np.maximum(length.to_numpy(zero_copy_only=False) - 1, 0)
        alone |= pc.and_(pc.is_null(joined), pc.is_valid(column)).to_numpy(zero_copy_only=False)
    keys["window"] = _window_numbers(table["timestamp"], freq)
    rows = np.arange(table.num_rows, dtype=np.int64)
    keys["alone"] = np.where(alone, rows, -1)
    keys["row"] = rows
    grouped = (
        pa.table(keys)
        .group_by([k for k in keys if k != "row"], use_threads=False)
        .aggregate([("row", "min"), ("row", "count")])
    )
    order = np.argsort(grouped["row_min"].to_numpy())
    first = grouped["row_min"].to_numpy()[order]
    out = table.select(["timestamp", *READ_COLUMNS]).take(pa.array(first))
    return out.append_column(WEIGHT, pa.array(grouped["row_count"].to_numpy()[order], pa.int64()))


def weights(frame: pd.DataFrame) -> np.ndarray | None:
    """How many events each row of ``frame`` stands for; None when one each."""
    return frame[WEIGHT].to_numpy(dtype=np.int64) if WEIGHT in frame.columns else None


def _window_numbers(timestamps: pa.ChunkedArray, freq: str) -> np.ndarray:
    """Each timestamp's window as a number: its time since the epoch floored by ``freq``, as
    :func:`features.windows.window_start` floors UTC times (two numbers, two windows)."""
    unit = pd.Timedelta(1, unit=timestamps.type.unit).value  # nanoseconds in one unit
    step = max(pd.Timedelta(freq).value // unit, 1)
    stamps = pc.fill_null(timestamps.cast(pa.int64()), np.iinfo(np.int64).min)
    return np.floor_divide(stamps.to_numpy(), step)
