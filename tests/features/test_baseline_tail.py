"""An identity's occasional habit is unusual, not unheard of.

Most of a controller's features are 0 in most of its windows, so their interquartile range is
0 and any non-zero value used to land at the clip, 50 scale units, beside first-ever actions.
The narrated history, 300 hourly windows of kube-system's garbage collector:
- every hour it reads API discovery (``frac_res_nonresource`` near 1, ``log_requests`` about 2);
- in 10 of those hours (3%: nodes were replaced) half of its requests deleted the removed
  nodes' dependents (``frac_delete`` 0.5);
- once it was denied a call (``frac_denied`` 0.2): one occurrence in 300 windows;
- it never binds anything to an admin role (``n_admin_bindings`` 0).

Observed on 50 nodes (seed 1): the collector's hours after a node removal, "55% of 11 requests
with verb delete; usual 0%", scored at the clip and alerted on an attack-free day, and so did
reviews-api's new pod addresses after a rollout (new source addresses in 14 of its 456 windows).
A history shorter than 300 windows is too short to tell a 1% habit from chance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.baseline import CLIP, IdentityBaseline
from features.summary import DeviationSummary

UNUSUAL = DeviationSummary().unusual
GC = "system:serviceaccount:kube-system:generic-garbage-collector"
COLUMNS = ["log_requests", "frac_res_nonresource", "frac_delete", "frac_denied", "n_admin_bindings"]


def _history(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    starts = pd.date_range("2026-03-01", periods=n, freq="h", tz="UTC")
    frame = pd.DataFrame(
        {
            "log_requests": 2.0 + rng.normal(0, 0.1, n),
            "frac_res_nonresource": np.ones(n),
            "frac_delete": np.zeros(n),
            "frac_denied": np.zeros(n),
            "n_admin_bindings": np.zeros(n),
        },
        index=pd.MultiIndex.from_product([[GC], starts], names=["identity", "window_start"]),
    )
    replaced = np.arange(15, n, 30)[:10]  # ten hours after a node left
    frame.iloc[replaced, COLUMNS.index("frac_delete")] = 0.5
    frame.iloc[replaced, COLUMNS.index("frac_res_nonresource")] = 0.5
    frame.iloc[100, COLUMNS.index("frac_denied")] = 0.2
    return frame


def _today(**values: float) -> pd.DataFrame:
    row = {"log_requests": 2.0, "frac_res_nonresource": 1.0, "frac_delete": 0.0, "frac_denied": 0.0}
    row |= {"n_admin_bindings": 0.0} | values
    index = pd.MultiIndex.from_tuples(
        [(GC, pd.Timestamp("2026-03-20 02:00", tz="UTC"))], names=["identity", "window_start"]
    )
    return pd.DataFrame([row], index=index)[COLUMNS]


def _deviation(baseline: IdentityBaseline, column: str, **values: float) -> float:
    return float(baseline.transform(_today(**values))[0, COLUMNS.index(column)])


def test_a_habit_seen_in_3_percent_of_its_windows_is_at_most_unusual():
    baseline = IdentityBaseline().fit(_history())
    after_removal = {"frac_delete": 0.5, "frac_res_nonresource": 0.5}
    assert _deviation(baseline, "frac_delete", **after_removal) <= UNUSUAL + 1e-9
    assert abs(_deviation(baseline, "frac_res_nonresource", **after_removal)) <= UNUSUAL + 1e-9


def test_more_than_its_habit_still_grows_with_the_excess():
    baseline = IdentityBaseline().fit(_history())
    assert _deviation(baseline, "frac_delete", frac_delete=1.0) > 1.5 * UNUSUAL


def test_one_occurrence_does_not_make_it_usual_and_a_first_ever_action_stays_at_the_clip():
    baseline = IdentityBaseline().fit(_history())
    assert _deviation(baseline, "frac_denied", frac_denied=0.2) >= 10 * UNUSUAL
    assert _deviation(baseline, "n_admin_bindings", n_admin_bindings=1.0) == CLIP


def test_a_short_history_cannot_tell_a_habit_from_chance():
    short = _history(200)  # 7 of its windows after node removals: 3.5%, but only 200 windows
    baseline = IdentityBaseline().fit(short)
    assert _deviation(baseline, "frac_delete", frac_delete=0.5) >= 5 * UNUSUAL
