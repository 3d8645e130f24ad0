"""A weekday (or hour) an identity's own history never reached is judged by its peers' habits.

The story, from the 50-node simulation (seed 1, issue #16): three kubelets joined on Sunday
2026-03-15 and training ended on Tuesday, so their own weekday counts were [24, 24, 0, 0, 0, 0, 8]
(Monday first). Against those three days they were "active on a Saturday, unusual for it" (0.96)
in every window from Wednesday to Saturday, the forest's largest input on three attack-free
kubelet alerts. Every other kubelet is active every hour of every day: a node's first Saturday
says nothing about an intruder.

A first fix (branch s14-kubelet) let a weekday never reached say nothing at all. That also
silences a new developer's first Saturday, though every developer of the team is idle on
weekends: here a weekday the identity has not seen is judged by its peer group's (else its
kind's, else everyone's) activity there, weighted as one pass through that day against the
passes its own history made. Only a day nobody was ever observed on says nothing.
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.baseline import IdentityBaseline

NAMES = ["identity", "window_start"]
NODES = [f"system:node:ip-10-0-7-{i}.us-west-2.compute.internal" for i in range(10)]
YOUNG_NODE = "system:node:ip-10-0-51-63.us-west-2.compute.internal"
TEAM = [f"arn:aws:sts::111122223333:assumed-role/Developer/{who}" for who in ("ana", "ben", "eva")]
NEW_DEVELOPER = "arn:aws:sts::111122223333:assumed-role/Developer/cleo"


def _hours(first: str, last: str, *, working: bool = False) -> pd.DatetimeIndex:
    hours = pd.date_range(pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC"), freq="h")
    return hours[(hours.day_of_week < 5) & (hours.hour >= 9) & (hours.hour < 17)] if working else hours


def _history(spans: dict[str, pd.DatetimeIndex]) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame(
                {"hour_of_day": s.hour, "weekday": s.day_of_week},
                index=pd.MultiIndex.from_product([[who], s], names=NAMES),
            )
            for who, s in spans.items()
        ]
    ).astype(float)


def _cluster() -> IdentityBaseline:
    """Two weeks (Monday 03-02 to Sunday 03-15): ten nodes active every hour; a node that joined
    on Sunday 03-08 at 16:00 and whose history ends on Tuesday 03-10 (56 windows: Sunday, Monday
    and Tuesday only); three developers who worked nine to five, Monday to Friday, both weeks;
    and Cleo, who started on Wednesday 03-11 (24 windows, Wednesday to Friday)."""
    spans = {node: _hours("2026-03-02", "2026-03-15 23:00") for node in NODES}
    spans[YOUNG_NODE] = _hours("2026-03-08 16:00", "2026-03-10 23:00")
    spans |= {person: _hours("2026-03-02", "2026-03-15 23:00", working=True) for person in TEAM}
    spans[NEW_DEVELOPER] = _hours("2026-03-11", "2026-03-13 23:00", working=True)
    return IdentityBaseline(min_history=24).fit(_history(spans))


def _rarity(baseline: IdentityBaseline, identity: str, at: str) -> tuple[float, float]:
    """(hour rarity, weekday rarity) of one window of ``identity`` starting ``at``."""
    start = pd.Timestamp(at, tz="UTC")
    index = pd.MultiIndex.from_tuples([(identity, start)], names=NAMES)
    window = pd.DataFrame({"hour_of_day": [float(start.hour)], "weekday": [float(start.day_of_week)]}, index=index)
    hour, weekday = baseline.transform(window)[0]
    return float(hour), float(weekday)


def test_a_young_node_s_first_saturday_is_as_ordinary_as_its_peers_saturdays():
    """Before: 0.96, "active on a Saturday, unusual for it", in every window of the day."""
    baseline = _cluster()
    assert _rarity(baseline, YOUNG_NODE, "2026-03-14 03:00")[1] < 0.05
    # and so is an old node's Saturday, which its own history holds
    assert _rarity(baseline, NODES[0], "2026-03-14 03:00")[1] < 0.05


def test_a_new_developer_on_a_saturday_is_unusual_because_the_team_never_works_weekends():
    """Cleo's history holds no weekend, but her team's two weekends were idle: a Saturday at 10:00
    is as unusual for her as for them. With "a day never reached says nothing" it was 0."""
    baseline = _cluster()
    assert _rarity(baseline, NEW_DEVELOPER, "2026-03-14 10:00")[1] > 0.85
    assert _rarity(baseline, TEAM[0], "2026-03-14 10:00")[1] > 0.85
    # A Monday she has not seen either, but the team works Mondays: ordinary.
    assert _rarity(baseline, NEW_DEVELOPER, "2026-03-16 10:00")[1] < 0.05
    # And a night is unusual for her whatever the day: her own three nights were idle.
    assert _rarity(baseline, NEW_DEVELOPER, "2026-03-16 03:00")[0] > 0.5


def test_her_own_habit_outweighs_the_team_s_once_she_has_shown_it():
    """A developer who worked both Saturdays (nine to five) is not unusual on a third one, though
    the rest of her team never does: two passes of her own against one of the prior. (A guard:
    it passes before the change too, and keeps the peers' prior from overruling her.)"""
    spans = {person: _hours("2026-03-02", "2026-03-15 23:00", working=True) for person in TEAM}
    weekends = _hours("2026-03-02", "2026-03-15 23:00")
    weekends = weekends[(weekends.day_of_week == 5) & (weekends.hour >= 9) & (weekends.hour < 17)]
    spans[NEW_DEVELOPER] = spans[TEAM[0]].append(weekends).sort_values()
    baseline = IdentityBaseline(min_history=24).fit(_history(spans))
    assert _rarity(baseline, NEW_DEVELOPER, "2026-03-21 10:00")[1] < 0.4
    assert _rarity(baseline, TEAM[0], "2026-03-21 10:00")[1] > 0.85


def test_a_day_nobody_was_ever_observed_on_says_nothing():
    """The quick evaluation fits on three weekdays (Wednesday to Friday) of a seven-day history:
    nobody's history holds a Saturday, so nobody's Saturday is measured, not everyone's rare."""
    spans = {node: _hours("2026-03-04", "2026-03-06 23:00") for node in NODES}
    spans |= {person: _hours("2026-03-04", "2026-03-06 23:00", working=True) for person in TEAM}
    baseline = IdentityBaseline(min_history=24).fit(_history(spans))
    assert _rarity(baseline, NODES[0], "2026-03-07 03:00")[1] == 0.0
    assert _rarity(baseline, TEAM[0], "2026-03-07 10:00")[1] == 0.0
    assert _rarity(baseline, TEAM[0], "2026-03-06 10:00")[1] == pytest.approx(0.0)
