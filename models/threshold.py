"""The alert threshold: the identity-day score that held-out normal days cross ``alerts_per_day`` times.

The threshold is an order statistic of the held-out identity-day scores, and a small held-out
sample leaves it uncertain: the real kube-apiserver harness holds out 3 days of 21
identity-days, 16 of them at 0, and asking one alert a day puts the threshold between the 3rd
and 4th largest. So the threshold comes with what the sample can say about it (see
docs/method.md, "The threshold"): the range of alerts per normal day it may give, and whether
the sample could bound the asked rate at all.

Saved bundles unpickle :class:`AlertThreshold` by the path ``models.calibration.AlertThreshold``,
where it lived first: that module re-exports it, and must keep doing so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Confidence of the ranges reported with the threshold: the usual 95%. It only qualifies the
#: threshold; the threshold itself stays the estimate of the asked rate (see :func:`alert_threshold`).
CONFIDENCE = 0.95


@dataclass(frozen=True)
class AlertThreshold:
    """A score threshold, the alert rate it gave on held-out normal days, and how sure that is.

    ``alerts_per_day_range`` is the 95% (Clopper-Pearson) range of the alerts per normal day
    the threshold gives, from its held-out count; ``identity_days_needed`` is how many
    held-out identity-days a 95% bound on the asked rate needs, and ``bound_threshold`` the
    threshold that bound gives (infinite where the sample is too small for one). Bundles
    saved before these were recorded read the defaults: nothing known.
    """

    threshold: float
    alerts_per_day: float  # asked for
    expected_alerts_per_day: float  # measured on the held-out days at ``threshold``
    n_days: int
    n_identity_days: int = 0
    alerts_per_day_range: tuple[float, float] = (math.nan, math.nan)
    identity_days_needed: int = 0
    bound_threshold: float = math.nan

    @property
    def too_small(self) -> bool:
        """The held-out sample cannot bound the asked rate: fewer identity-days than it needs."""
        return self.n_identity_days < self.identity_days_needed

    def warning(self) -> str | None:
        """What to tell the user when the held-out sample is too small for the asked rate."""
        if not self.too_small:
            return None
        low, high = self.alerts_per_day_range
        return (
            f"the held-out sample is too small for {self.alerts_per_day:g} alert(s) per day: "
            f"{self.n_identity_days} identity-days on {self.n_days} day(s), where a 95% bound on that rate "
            f"needs {self.identity_days_needed}; the threshold {self.threshold:.4f} may give "
            f"{low:.1f} to {high:.1f} alerts per normal day. Hold out more days (--calibration-days) "
            f"or train on a longer history."
        )


def alert_threshold(scores, days, *, alerts_per_day: float) -> AlertThreshold:
    """The score above which a finding alerts, so that held-out normal days give ``alerts_per_day``.

    ``days`` labels each score's day (or is the number of days, for days without any score).
    The threshold sits halfway between the last score that alerts and the first that does
    not, so it does not hinge on one held-out value. It is the estimate of the asked rate (as
    likely to give more alerts as fewer on new normal days); the sample's uncertainty is
    reported beside it, not added to it (:func:`rate_range`, :func:`rate_bound`).

    Examples
    --------
    >>> alert_threshold([5.0, 1.0, 4.0, 2.0, 0.5, 0.1], [1, 1, 1, 2, 2, 2], alerts_per_day=1).threshold
    3.0
    """
    values = np.sort(np.asarray(scores, dtype=np.float64).ravel())[::-1]
    n_days = max(1, int(days) if isinstance(days, int | np.integer) else int(pd.Series(np.asarray(days)).nunique()))
    n_alerts = min(int(round(alerts_per_day * n_days)), len(values))
    threshold = _order_threshold(values, n_alerts)
    above = int((values > threshold).sum())
    needed, bound = rate_bound(values, n_days, alerts_per_day)
    return AlertThreshold(
        threshold,
        alerts_per_day,
        above / n_days,
        n_days,
        n_identity_days=len(values),
        alerts_per_day_range=rate_range(above, len(values), n_days),
        identity_days_needed=needed,
        bound_threshold=bound,
    )


def _order_threshold(values: np.ndarray, n_alerts: int) -> float:
    """Halfway between the ``n_alerts``-th largest of ``values`` (sorted descending) and the next."""
    if len(values) == 0:
        return math.inf
    if n_alerts == 0:
        return float(values[0])
    if n_alerts == len(values):
        return float(values[-1]) - 1.0
    return float(values[n_alerts - 1] + values[n_alerts]) / 2.0


def rate_range(above: int, n: int, n_days: int) -> tuple[float, float]:
    """The 95% range of alerts per normal day, from ``above`` of ``n`` held-out identity-days alerting.

    Each identity-day alerts with an unknown chance; ``above`` of ``n`` bounds it (Clopper and
    Pearson's exact binomial interval), and a day has ``n / n_days`` identity-days.

    Examples
    --------
    >>> [round(x, 1) for x in rate_range(3, 21, 3)]  # the real harness: 3 of 21 over 3 days
    [0.2, 2.5]
    """
    if n == 0:
        return (math.nan, math.nan)
    tail = (1.0 - CONFIDENCE) / 2.0
    low = 0.0 if above == 0 else float(stats.beta.ppf(tail, above, n - above + 1))
    high = 1.0 if above == n else float(stats.beta.ppf(1.0 - tail, above + 1, n - above))
    per_day = n / n_days
    return (low * per_day, high * per_day)


def rate_bound(values, n_days: int, alerts_per_day: float) -> tuple[int, float]:
    """How many identity-days a 95% bound on the asked rate needs, and the threshold it gives.

    The chance that a new normal identity-day lies above the ``k``-th largest of ``n`` held-out
    ones is below the asked ``a`` with probability ``P(Bin(n, a) >= k)`` (Wilks's tolerance
    limits; no assumption on the scores' law). Even the largest one (``k = 1``) needs
    ``1 - (1 - a)^n >= 0.95``: ``n >= log(0.05) / log(1 - a)``, about ``3 / a`` (the rule of
    three), i.e. about three held-out days at one alert a day. The bound threshold lets the
    fewest held-out identity-days alert that keep the bound; infinite when even the largest
    does not.

    Examples
    --------
    >>> rate_bound([4.737, 4.253, 1.176, 0.881, 0.716] + [0.0] * 16, 3, 1.0)  # the real harness
    (20, 4.737)
    >>> rate_bound([4.0, 3.0, 2.0, 1.0, 0.0, 0.0], 2, 1.0)  # 6 identity-days, 1 in 3 asked: 8 needed
    (8, inf)
    """
    values = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
    n = len(values)
    if n == 0 or alerts_per_day <= 0:
        return (0, float(values[0]) if n else math.inf)
    rate = alerts_per_day * n_days / n  # per identity-day
    if rate >= 1.0:
        return (1, _order_threshold(values, n))
    needed = math.ceil(math.log(1.0 - CONFIDENCE) / math.log1p(-rate))
    if n < needed:
        return (needed, math.inf)
    # The most held-out alerts j whose (j + 1)-th largest still bounds the rate: P(Bin >= j + 1).
    j = int((stats.binom.sf(np.arange(n), n, rate) >= CONFIDENCE).sum()) - 1
    return (needed, _order_threshold(values, max(j, 0)))
