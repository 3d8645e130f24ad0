"""What nobody ever did is as rare as the cluster's history can show, and no rarer.

The story (the real API server's week, made small): over a week, a monitoring service account
works every hour and a person a few hours a day; nobody in the cluster ever asked "can I?".
Never in all the cluster's windows is a rate of about one in twice their number (Jeffreys'
prior). The rarity shrinks an identity's rate towards its peers', theirs towards their kind's
and that towards the cluster's; when every level has no hits, each step multiplied the rate
down again, so the busy service account's first permission check scored twice the nats the
week could vouch for (14.2 where never in 678 windows is 7.2), and more than the same first
check by a person who works a few hours a day.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.rarity import ActionRarity
from tests.models.test_rarity import windows  # windows from (identity, hour, values), hour 0 = 2026-03-02

MONITOR = "system:serviceaccount:kube-system:monitor"
WORKER = "system:serviceaccount:team-b:worker"
PERSON = "alice"
WEEK = 7 * 24


def a_week():
    rows = [(who, h, {"n_secret_names": 1.0}) for h in range(WEEK) for who in (MONITOR, WORKER)]
    rows += [(PERSON, h, {}) for h in range(WEEK) if 9 <= h % 24 < 13]
    return windows(rows)


def test_a_first_ever_act_is_as_rare_as_never_in_all_the_cluster_s_windows_for_everyone():
    rarity = ActionRarity().fit(a_week())
    never = np.log(2.0 * (rarity.n_windows_ + 1.0))

    def first_check(who: str) -> float:
        row = windows([(who, WEEK + 10, {"frac_res_self_reviews": 0.5})])
        return float(rarity.transform(row)[0][list(rarity.terms_).index("permission_check")])

    assert first_check(MONITOR) == pytest.approx(never)
    assert first_check(PERSON) == pytest.approx(never)
    # What some did is rarer for those who never did it, down to the same bound, not below it.
    assert (rarity.rates([MONITOR, PERSON]).to_numpy() >= 0.5 / (rarity.n_windows_ + 1.0) - 1e-15).all()
