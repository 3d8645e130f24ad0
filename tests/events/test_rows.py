"""filter_rows: the deduplicator's and the chunker's row filter, equal to Arrow's own filter.

It skips filtering the columns that are NULL on every row (rebuilt as NULLs of the kept
length), so these cases check that such a column comes out with the right length and type
next to columns that are filtered, across chunk boundaries, and when nothing or everything is kept.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from events.rows import filter_rows
from events.schema import EVENT_SCHEMA


def _batch() -> pa.Table:
    """Six events in two chunks: identities and source addresses set, request-body lists
    (pod_host_paths) NULL on every row, flags set on one row only."""
    first = pa.table(
        {
            "identity": ["alice", "bob", None],
            "source_ips": [["10.0.0.1"], ["10.0.0.2", "10.0.0.3"], None],
            "pod_host_paths": pa.nulls(3, pa.list_(pa.string())),
            "flags": pa.array([None, ["exec"], None], pa.list_(pa.string())),
            "response_code": pa.array([200, 403, None], pa.int32()),
        }
    )
    second = pa.table(
        {
            "identity": ["carol", "dave", "erin"],
            "source_ips": [None, ["10.0.0.4"], ["10.0.0.5"]],
            "pod_host_paths": pa.nulls(3, pa.list_(pa.string())),
            "flags": pa.nulls(3, pa.list_(pa.string())),
            "response_code": pa.array([201, None, 500], pa.int32()),
        }
    ).cast(first.schema)
    return pa.concat_tables([first, second])


@pytest.mark.parametrize(
    "keep",
    [
        [True, False, True, True, False, True],  # a watch's ResponseStarted rows dropped
        [False] * 6,
        [True] * 6,
        [False, True, False, False, False, False],  # the one flagged row
    ],
)
def test_filter_rows_equals_arrow_filter(keep):
    table = _batch()
    mask = np.array(keep)
    got = filter_rows(table, mask)
    assert got.schema.equals(table.schema)
    assert got.num_rows == int(mask.sum())
    assert got.equals(table.filter(pa.array(mask)))
    # The all-NULL column keeps its type and is NULL on every kept row.
    assert got["pod_host_paths"].type == pa.list_(pa.string())
    assert got["pod_host_paths"].null_count == got.num_rows


def test_an_empty_event_table_stays_empty():
    empty = EVENT_SCHEMA.empty_table()
    got = filter_rows(empty, np.zeros(0, dtype=bool))
    assert got.schema.equals(EVENT_SCHEMA) and got.num_rows == 0
