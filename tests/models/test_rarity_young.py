"""An identity is young on its first day, not until it has a day's worth of windows.

A person works a few hours a day: after a working week of three hours a day, fifteen windows,
they are no newcomer, and a permission check from an address they never used is the stolen
token's tell. Counted in windows (24, a service account's day), they were still young, and
the new address said nothing.
"""

from __future__ import annotations

import pandas as pd

from models.rarity import ActionRarity

BOB = "bob"


def _windows(starts, *, check: float = 0.0, new_ip: float = 0.0) -> pd.DataFrame:
    index = pd.MultiIndex.from_product([[BOB], starts], names=["identity", "window_start"])
    return pd.DataFrame({"frac_res_self_reviews": check, "new_source_ip": new_ip, "new_identity": 0.0}, index=index)


def test_a_person_with_a_week_of_few_hours_is_judged_by_their_own_addresses():
    week = [
        pd.Timestamp("2026-02-02 09:00", tz="UTC") + pd.Timedelta(days=d, hours=h) for d in range(5) for h in range(3)
    ]
    rarity = ActionRarity().fit(_windows(week))
    assert rarity.trials_.loc[BOB].iloc[0] == 15  # fewer than min_history = 24 windows
    stolen = _windows([pd.Timestamp("2026-02-09 14:00", tz="UTC")], check=0.2, new_ip=1.0)
    surprisal = pd.Series(rarity.transform(stolen)[0], index=rarity.terms_)
    assert surprisal["permission_check"] > 0
    assert surprisal["new_source_ip"] > 0  # the new address adds to the rare action


def test_on_its_first_day_an_identity_is_still_young():
    """A replaced node's pods arrive hour by hour: on its first day every address is new."""
    first_day = [pd.Timestamp("2026-02-09 09:00", tz="UTC") + pd.Timedelta(hours=h) for h in range(3)]
    rarity = ActionRarity().fit(_windows(first_day))
    later = _windows([pd.Timestamp("2026-02-09 14:00", tz="UTC")], check=0.2, new_ip=1.0)
    surprisal = pd.Series(rarity.transform(later)[0], index=rarity.terms_)
    assert surprisal["permission_check"] > 0 and surprisal["new_source_ip"] == 0


def test_an_identity_whose_first_day_is_left_out_is_new_on_it_again():
    """The calibration reference judges each held-out day without it (``without``): a node that
    joined on a held-out day must be new there, as the morning of that day would judge it, not
    an old hand (judged by its later days) whose new addresses are a stolen token's tell."""
    month = [
        pd.Timestamp("2026-02-02 00:00", tz="UTC") + pd.Timedelta(days=d, hours=h) for d in range(5) for h in range(24)
    ]
    rarity = ActionRarity().fit(_windows(month))
    first_day, last_day = _windows(month[:24]), _windows(month[-24:])
    assert not rarity.young(first_day).any()  # four more days counted: 96 windows
    assert rarity.without(first_day).young(first_day).all()  # left out: it joins that day
    assert BOB not in rarity.without(first_day).trials_.index  # and knows nothing of its later days
    assert not rarity.without(last_day).young(last_day).any()  # an old hand on a later day


def test_leaving_out_a_day_forgets_only_the_identities_that_joined_on_it():
    """Node a runs all week; node b joins on Wednesday. Without Wednesday, b is unknown (its
    peers' rates stand for it, as for a node never seen), while a keeps its first day and counts."""
    days = [pd.Timestamp("2026-02-02", tz="UTC") + pd.Timedelta(days=d) for d in range(5)]

    def hours(who, day_list, check):
        starts = [d + pd.Timedelta(hours=h) for d in day_list for h in range(24)]
        index = pd.MultiIndex.from_product([[who], starts], names=["identity", "window_start"])
        return pd.DataFrame({"frac_res_self_reviews": check, "new_source_ip": 0.0, "new_identity": 0.0}, index=index)

    a, b = "system:node:ip-10-0-1-1", "system:node:ip-10-0-1-2"
    week = pd.concat([hours(a, days, 0.0), hours(b, days[2:], 0.2)])
    wednesday = week[week.index.get_level_values("window_start").normalize() == days[2]]
    rarity = ActionRarity().fit(week)
    left = rarity.without(wednesday)
    assert b not in left.trials_.index and b not in left.first_day_.index
    assert left.first_day_[a] == rarity.first_day_[a] and left.trials_.loc[a].iloc[0] == 4 * 24
    fresh = ActionRarity().fit(week[week.index.get_level_values("window_start").normalize() != days[2]].drop(b))
    pd.testing.assert_frame_equal(left.rates([a, b]), fresh.rates([a, b]))
