"""The alert threshold: the identity-day score that held-out normal days cross ``alerts_per_day`` times.

Saved bundles unpickle :class:`AlertThreshold` by the path ``models.calibration.AlertThreshold``,
where it lived first: that module re-exports it, and must keep doing so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class AlertThreshold:
    """A score threshold and the alert rate it gave on held-out normal days."""

    threshold: float
    alerts_per_day: float  # asked for
    expected_alerts_per_day: float  # measured on the held-out days at ``threshold``
    n_days: int


def alert_threshold(scores, days, *, alerts_per_day: float) -> AlertThreshold:
    """The score above which a finding alerts, so that held-out normal days give ``alerts_per_day``.

    ``days`` labels each score's day (or is the number of days, for days without any score).
    The threshold sits halfway between the last score that alerts and the first that does
    not, so it does not hinge on one held-out value.

    Examples
    --------
    >>> alert_threshold([5.0, 1.0, 4.0, 2.0, 0.5, 0.1], [1, 1, 1, 2, 2, 2], alerts_per_day=1)
    AlertThreshold(threshold=3.0, alerts_per_day=1, expected_alerts_per_day=1.0, n_days=2)
    """
    values = np.sort(np.asarray(scores, dtype=np.float64).ravel())[::-1]
    n_days = max(1, int(days) if isinstance(days, int | np.integer) else int(pd.Series(np.asarray(days)).nunique()))
    n_alerts = min(int(round(alerts_per_day * n_days)), len(values))
    if len(values) == 0:
        threshold = math.inf
    elif n_alerts == 0:
        threshold = float(values[0])
    elif n_alerts == len(values):
        threshold = float(values[-1]) - 1.0
    else:
        threshold = float(values[n_alerts - 1] + values[n_alerts]) / 2.0
    measured = float((values > threshold).sum()) / n_days
    return AlertThreshold(threshold, alerts_per_day, measured, n_days)
