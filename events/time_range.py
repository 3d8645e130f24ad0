"""Keep the events of a time range from a stream of event batches (Arrow or pandas)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_TS = pa.timestamp("us", tz="UTC")


def _utc(when: datetime | date) -> pd.Timestamp:
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def in_time_range(
    batches: Iterable[pa.Table | pd.DataFrame], since: datetime | date | None, until: datetime | date | None
) -> Iterator[pa.Table | pd.DataFrame]:
    """Yield each batch with only the events at or after ``since`` and before ``until``.

    Naive times are UTC; a date means its midnight. Either bound may be None (open).
    """
    lo = None if since is None else _utc(since)
    hi = None if until is None else _utc(until)
    for batch in batches:
        if lo is None and hi is None:
            yield batch
        elif isinstance(batch, pd.DataFrame):
            keep = pd.Series(True, index=batch.index)
            if lo is not None:
                keep &= batch["timestamp"] >= lo
            if hi is not None:
                keep &= batch["timestamp"] < hi
            yield batch[keep.to_numpy()]
        else:
            ts = batch["timestamp"]
            mask = None
            if lo is not None:
                mask = pc.greater_equal(ts, pa.scalar(lo, _TS))
            if hi is not None:
                upper = pc.less(ts, pa.scalar(hi, _TS))
                mask = upper if mask is None else pc.and_(mask, upper)
            yield batch.filter(mask)


def one_day(batches: Iterable[pa.Table | pd.DataFrame], day: date) -> Iterator[pa.Table | pd.DataFrame]:
    """Yield each batch with only the events of UTC ``day``."""
    return in_time_range(batches, day, day + timedelta(days=1))
