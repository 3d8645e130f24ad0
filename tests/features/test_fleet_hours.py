"""A node's hours are its fleet's: a kubelet is at work whenever nodes are.

The story (50 nodes, seed 1): nodes renew their leases every ten seconds, every hour of every
day. One node joined on a Friday; the days the forest learned from gave it Friday, Saturday and
Sunday. On its first Thursday, each of its hours read "active on a Thursday, unusual for it",
and with a slightly busy hour of events that made its identity-day alert. Every other node was
at work that Thursday and every Thursday before: a node doing what nodes do. A person's week is
still her own.
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.baseline import IdentityBaseline

MONDAY = pd.Timestamp("2026-03-02", tz="UTC")
FLEET = [f"system:node:ip-10-0-3-{i}.us-west-2.compute.internal" for i in range(8)]
JOINED = "system:node:ip-10-0-53-210.us-west-2.compute.internal"
PERSON = "arn:aws:sts::111122223333:assumed-role/Dev/lena"


def windows(rows: list[tuple[str, pd.Timestamp]]) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(rows, names=["identity", "window_start"])
    starts = index.get_level_values("window_start")
    return pd.DataFrame(
        {"hour_of_day": starts.hour.astype(float), "weekday": starts.day_of_week.astype(float), "n_requests": 40.0},
        index=index,
    )


@pytest.fixture(scope="module")
def baseline() -> IdentityBaseline:
    """Two weeks of the fleet, every hour; the new node from the second Friday on; a person who
    works Monday to Wednesday, nine to five."""
    hours = pd.date_range(MONDAY, periods=14 * 24, freq="h")
    rows = [(node, t) for node in FLEET for t in hours]
    rows += [(JOINED, t) for t in hours if t >= MONDAY + pd.Timedelta(days=11)]
    rows += [(PERSON, t) for t in hours if t.day_of_week <= 2 and 9 <= t.hour < 17]
    return IdentityBaseline().fit(windows(rows))


def weekday_rarity(baseline: IdentityBaseline, who: str, when: pd.Timestamp) -> float:
    column = list(baseline.feature_names_in_).index("weekday")
    return float(baseline.transform(windows([(who, when)]))[0, column])


def test_a_new_node_s_first_thursday_is_as_usual_as_any_node_s(baseline):
    thursday = MONDAY + pd.Timedelta(days=17, hours=10)
    assert weekday_rarity(baseline, JOINED, thursday) == pytest.approx(weekday_rarity(baseline, FLEET[0], thursday))
    assert weekday_rarity(baseline, JOINED, thursday) < 0.1


def test_a_person_s_thursday_stays_unusual_for_her(baseline):
    """Nobody she is pooled with makes her week: she never worked a Thursday."""
    assert weekday_rarity(baseline, PERSON, MONDAY + pd.Timedelta(days=17, hours=10)) > 0.9
