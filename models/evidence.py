"""Evidence about identity-days from outside the hourly windows: rule hits, network flows.

Such evidence joins the ranking on the windows' scale: nats, ``-log p`` of a calibrated
p-value of that evidence on normal days, so a rule that fires on the dashboard every day adds
little and one that never fires on normal days adds a lot. It adds to the identity-day's score
and is named among its reasons; nothing else about the windows changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

DAY_INDEX = ["identity", "day"]


@dataclass(frozen=True)
class DayEvidence:
    """One source's evidence about a day's identities.

    Parameters
    ----------
    source : what produced it, e.g. ``"rules"`` or ``"network"``.
    contributions : indexed by (identity, day: UTC midnight), one column per term named
        ``<source>:<id>``, values in nats (non-negative).
    reasons : ``(identity, day, term)`` -> the term's reason in plain words. Attacker-controlled
        text stays raw here; every renderer escapes it.
    details : anything the source's report section needs (hits, flows), by the source's own keys.
    """

    source: str
    contributions: pd.DataFrame
    reasons: dict[tuple[str, pd.Timestamp, str], str] = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        frame = self.contributions
        if list(frame.index.names) != DAY_INDEX:
            raise ValueError(f"{self.source} evidence must be indexed by {DAY_INDEX}, got {list(frame.index.names)!r}")
        values = frame.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"{self.source} evidence must be finite nats >= 0")


#: A source of evidence: the day's events (a Parquet file in ``events.schema.EVENT_SCHEMA``, or
#: None when the day has none) and the day -> its evidence.
EvidenceSource = Callable[[Path | None, date], DayEvidence]


def utc_day(day) -> pd.Timestamp:
    """The identity-day key for ``day``: UTC midnight, as :mod:`models.identity_day` uses."""
    ts = pd.Timestamp(day)
    return (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).normalize()


def combined(found: Iterable[DayEvidence]) -> pd.DataFrame:
    """All sources' contributions side by side, one row per identity-day (absent terms are 0)."""
    frames = [e.contributions for e in found if not e.contributions.empty]
    if not frames:
        return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], []], names=DAY_INDEX))
    both = pd.concat(frames, axis=1).fillna(0.0)
    both = both.T.groupby(level=0, sort=False).sum().T  # a term named twice adds up
    both.index = pd.MultiIndex.from_arrays(
        [both.index.get_level_values(0).astype(str), [utc_day(d) for d in both.index.get_level_values(1)]],
        names=DAY_INDEX,
    )
    return both.groupby(level=DAY_INDEX, sort=True).sum()
