"""Evidence about identity-days from outside the hourly windows: rule hits, network flows.

Such evidence joins the ranking on the windows' scale: nats, ``-log p`` of a calibrated
p-value of that evidence on normal days, so a rule that fires on the dashboard every day adds
little and one that never fires on normal days adds a lot. It adds to the identity-day's score
and is named among its reasons; nothing else about the windows changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from models.calibration import log_tail_p_values
from models.identity_day import FLOOR

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


def calibrated_nats(totals, reference) -> np.ndarray:
    """Each identity-day's evidence from a source, as ``log(FLOOR / p)`` of its rank among normal
    identity-days' (``reference``: the same source's evidence of each, judged as a new day is).

    A source's own nats assume its terms independent and its model of normal right; ranked among
    normal identity-days, a total that one normal day in twenty reaches adds nothing, and one
    beyond them all adds what the normal days can vouch for, ``log(FLOOR * (n + 1))``. There is
    no exponential tail beyond that, unlike windows': most normal days have no evidence at all,
    and a tail fitted on a top that is mostly zeros has a scale near 0 and turns a small excess
    into tens of nats. A total of 0 adds 0.

    Examples
    --------
    >>> calibrated_nats([0.0, 2.0, 9.0], [0.0] * 97 + [1.0, 3.0, 5.0]).round(2).tolist()
    [0.0, 0.52, 1.62]
    """
    values = np.asarray(totals, dtype=np.float64)
    log_p = log_tail_p_values(np.asarray(reference, dtype=np.float64), values)
    return np.where(values > 0, np.maximum(0.0, math.log(FLOOR) - log_p), 0.0)


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
