"""Keep the events of a time range from a stream of event batches (Arrow or pandas)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_TS = pa.timestamp("us", tz="UTC")


def _utc(when: datetime | date) -> pd.Timestamp:
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclass
class RangeCounts:
    """What a time-range filter kept and left out, filled in as the stream is read."""

    kept: int = 0
    before: int = 0  # before the start of the range
    after: int = 0  # at or after its end

    @property
    def left_out(self) -> int:
        return self.before + self.after


def _n_false(mask) -> int:
    """Rows a boolean mask (Arrow or numpy) leaves out."""
    if isinstance(mask, np.ndarray):
        return int(len(mask) - mask.sum())
    return len(mask) - int(pc.sum(mask).as_py() or 0)


def in_time_range(
    batches: Iterable[pa.Table | pd.DataFrame],
    since: datetime | date | None,
    until: datetime | date | None,
    counts: RangeCounts | None = None,
) -> Iterator[pa.Table | pd.DataFrame]:
    """Yield each batch with only the events at or after ``since`` and before ``until``.

    Naive times are UTC; a date means its midnight. Either bound may be None (open).
    ``counts``, when given, is updated batch by batch with the events kept and left out.
    """
    counts = RangeCounts() if counts is None else counts
    lo = None if since is None else _utc(since)
    hi = None if until is None else _utc(until)
    for batch in batches:
        if lo is None and hi is None:
            counts.kept += len(batch)
            yield batch
            continue
        lower = upper = None
        if isinstance(batch, pd.DataFrame):
            if lo is not None:
                lower = (batch["timestamp"] >= lo).to_numpy()
            if hi is not None:
                upper = (batch["timestamp"] < hi).to_numpy()
        else:
            ts = batch["timestamp"]
            if lo is not None:
                lower = pc.greater_equal(ts, pa.scalar(lo, _TS))
            if hi is not None:
                upper = pc.less(ts, pa.scalar(hi, _TS))
        # A range is not empty, so no event is both before its start and after its end.
        counts.before += 0 if lower is None else _n_false(lower)
        counts.after += 0 if upper is None else _n_false(upper)
        if isinstance(batch, pd.DataFrame):
            keep = lower if upper is None else upper if lower is None else lower & upper
            kept = batch[keep]
        else:
            mask = lower if upper is None else upper if lower is None else pc.and_(lower, upper)
            kept = batch.filter(mask)
        counts.kept += len(kept)
        yield kept


def one_day(
    batches: Iterable[pa.Table | pd.DataFrame], day: date, counts: RangeCounts | None = None
) -> Iterator[pa.Table | pd.DataFrame]:
    """Yield each batch with only the events of UTC ``day`` (``counts`` as in :func:`in_time_range`)."""
    return in_time_range(batches, day, day + timedelta(days=1), counts)
