"""A time range keeps its events and counts the ones it leaves out, for Arrow and pandas batches alike."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pyarrow as pa

from events.time_range import RangeCounts, in_time_range, one_day

STAMPS = pd.to_datetime(
    ["2026-03-01T23:59:59Z", "2026-03-02T00:00:00Z", "2026-03-02T12:00:00Z", "2026-03-03T00:00:00Z"], utc=True
)


def _batches():
    frame = pd.DataFrame({"timestamp": STAMPS})
    return [frame, pa.table({"timestamp": pa.array(STAMPS.tolist(), pa.timestamp("us", tz="UTC"))})]


def test_one_day_counts_the_events_before_and_after_it():
    counts = RangeCounts()
    kept = list(one_day(_batches(), date(2026, 3, 2), counts))
    assert [len(b) for b in kept] == [2, 2]  # midnight belongs to the day that starts there
    assert (counts.kept, counts.before, counts.after, counts.left_out) == (4, 2, 2, 4)


def test_an_open_bound_leaves_nothing_out_on_its_side():
    counts = RangeCounts()
    kept = list(in_time_range(_batches(), None, datetime(2026, 3, 2, 12), counts))
    assert [len(b) for b in kept] == [2, 2]
    assert (counts.kept, counts.before, counts.after) == (4, 0, 4)
