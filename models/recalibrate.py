"""The calibration reference: held-out windows judged as a new day is judged.

A new day's windows are judged with the action counts of every other day the model has
learned, not their own. The held-out windows that calibrate them are judged the same way, each
day with the counts of every other day (the held-out days and what the day state learned
since; an identity whose first day it is, with none of its own: :meth:`ActionRarity.without`),
so the same actions get the same surprisal in the reference and today. Judged only with
the days before them, as training did at first, the reference's later days had fewer counts
than any scored day: an identity whose share is below its peers' has a rate that falls with
every day counted, and its routine action drifted past all of its own held-out windows
(ingress-nginx's secret reads, 346 of 504 windows: 0.3911 nats against at most 0.39 held out,
``p = e^-15`` from its own reference; cert-manager alerted at 10 nats on an ordinary day; 50
nodes, seeds 1 and 2). Judged with counts that include themselves, a held-out one-off would
lose its tail (a second admin binding then lies beyond the whole reference).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from models.calibration import TailCalibrator


def held_out_rarity(rarity, windows: pd.DataFrame) -> np.ndarray:
    """Each held-out window's rarity score, its UTC day judged by ``rarity`` without that day's windows."""
    out = np.zeros(len(windows))
    if not len(windows):
        return out
    days = pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize()
    for day in days.unique():
        rows = np.flatnonzero(days == day)
        day_windows = windows.iloc[rows]
        out[rows] = -rarity.without(day_windows).score_samples_shared(day_windows)
    return out


def recalibrated(calibrator: TailCalibrator, forest: np.ndarray, windows: pd.DataFrame, rarity) -> TailCalibrator:
    """A copy of ``calibrator`` fitted on the held-out ``windows`` (forest scores ``forest``: the
    forest does not move after training) with their rarity judged by :func:`held_out_rarity`."""
    return clone(calibrator).fit(reference_sources(forest, windows, rarity))


def reference_sources(forest: np.ndarray, windows: pd.DataFrame, rarity) -> pd.DataFrame:
    """The two sources of the held-out ``windows``, as calibration ranks them."""
    return pd.DataFrame(
        {"forest": np.asarray(forest, dtype=np.float64), "rarity": held_out_rarity(rarity, windows)},
        index=windows.index,
    )
