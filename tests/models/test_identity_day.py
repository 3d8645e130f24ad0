"""Findings are identity-days: a pattern repeated through a day outranks one busy benign hour.

The low-and-slow story from the issue: an intruder with a developer's token makes one denied
call an hour through a working day. Each of those nine windows is only moderately unusual, and
the busiest benign window of the day (a CI deployer's release hour) is more unusual than any
one of them. Judged hour by hour the release wins; judged by the day, the intruder does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.calibration import TailCalibrator, alert_threshold
from models.identity_day import family_surprisal, identity_days
from models.rarity import ActionRarity

DAY = pd.Timestamp("2026-03-09", tz="UTC")
INTRUDER = "developer"
CI = "ci-deployer"


def _index(rows: list[tuple[str, int]]) -> pd.MultiIndex:
    return pd.MultiIndex.from_tuples(
        [(who, DAY + pd.Timedelta(hours=h)) for who, h in rows], names=["identity", "window_start"]
    )


def low_and_slow_day() -> pd.Series:
    """Window p-values of one day: the intruder's nine hours, the CI deployer's 24, one of them busy."""
    rows, p = [], []
    for h in range(24):
        rows.append((INTRUDER, h))
        p.append(0.004 if 9 <= h < 18 else 0.6)
        rows.append((CI, h))
        p.append(2e-4 if h == 14 else 0.3 + 0.02 * h)
    return pd.Series(p, index=_index(rows), name="p_value")


def test_nine_moderately_unusual_windows_outrank_one_busier_window():
    window_p = low_and_slow_day()
    assert window_p.idxmin()[0] == CI  # hour by hour, the release hour ranks first
    found = identity_days(window_p)
    ranked = found.days.index.get_level_values("identity").tolist()
    assert ranked == [INTRUDER, CI]
    intruder = found.days.loc[(INTRUDER, DAY)]
    assert intruder["n_unusual"] == 9 and intruder["n_windows"] == 24
    assert intruder["anomaly_score"] > 2 * found.days.loc[(CI, DAY), "anomaly_score"]


def test_ordinary_windows_add_nothing_however_many():
    """Forty-eight windows at p >= 5% (what a busy, ordinary identity has) score 0."""
    idx = pd.MultiIndex.from_product(
        [["system:serviceaccount:kube-system:replicaset-controller"], pd.date_range(DAY, periods=48, freq="30min")],
        names=["identity", "window_start"],
    )
    found = identity_days(pd.Series(np.linspace(0.05, 1.0, 48), index=idx))
    assert found.days["anomaly_score"].tolist() == [0.0]
    assert found.days["n_unusual"].tolist() == [0]


def _denied(window_p: pd.Series, who: str, rate: float) -> pd.DataFrame:
    """Rarity's family surprisal: ``who`` denied in each of its windows, at ``rate`` per window."""
    out = pd.DataFrame({"rarity_denied": 0.0, "rarity_secrets_read": 0.0}, index=window_p.index)
    out.loc[(who, slice(None)), "rarity_denied"] = -np.log(rate)
    return out


def test_a_family_recurring_in_windows_above_the_floor_adds_up_by_its_count():
    """A person is denied one call an hour, nine hours long; they are denied one hour in twenty.
    Among people, one denial in an hour is not rare (p = 0.125), so no single hour is below
    the floor and, window by window, none adds anything. Nine denied hours of nine, at one in
    twenty, happen with chance 0.05^9: that count is evidence, reasoned as denials and shared
    by the nine hours, and that day outranks a colleague's day with one clearly unusual hour."""
    rows = [(INTRUDER, h) for h in range(9, 18)] + [("alice", h) for h in range(9, 18)]
    window_p = pd.Series([0.125] * 9 + [0.001] + list(np.linspace(0.2, 0.95, 8)), index=_index(rows))
    found = identity_days(window_p, surprisal=_denied(window_p, INTRUDER, rate=0.05))
    assert found.days.index.get_level_values("identity").tolist() == [INTRUDER, "alice"]
    intruder = found.days.loc[(INTRUDER, DAY)]
    assert intruder["n_unusual"] == 9
    assert intruder["anomaly_score"] == pytest.approx(np.log(0.05 / 0.05**9))
    assert found.reasons(INTRUDER, DAY)[0][0] == "rarity_denied"
    assert found.days.loc[("alice", DAY), "n_unusual"] == 1  # her ordinary hours are not counted


def test_a_habit_recurs_as_often_as_it_should_and_once_is_no_pattern():
    """An application reads its secret in nine hours of ten (24 of 24 today: chance 0.08), and
    a person is denied once in a day, though one hour in a thousand: the habit's count is
    ordinary, and one occurrence is the window's own business, judged there (p = 0.2)."""
    habit = pd.Series([0.3] * 24, index=_index([(CI, h) for h in range(24)]))
    reads = pd.DataFrame({"rarity_secrets_read": -np.log(0.9)}, index=habit.index)
    once = pd.Series([0.2, 0.6, 0.7], index=_index([(INTRUDER, h) for h in (10, 11, 12)]))
    assert identity_days(habit, surprisal=reads).days["anomaly_score"].tolist() == [0.0]
    denied_once = _denied(once, INTRUDER, rate=0.001)
    denied_once.iloc[1:] = 0.0
    assert identity_days(once, surprisal=denied_once).days["anomaly_score"].tolist() == [0.0]


def test_a_habit_of_few_days_is_counted_against_the_identity_s_own_share():
    """The autoscaler lists pods across all namespaces every hour; two days are all the rarity
    has seen, and it shrinks the autoscaler's rate towards its peers (the scheduler's service
    account, which never does): about two windows in three. Twenty-four of twenty-four today
    would be a pattern at that rate. Counted against its own share (every window), it is what
    the autoscaler always does: nothing."""
    autoscaler, scheduler = (
        "system:serviceaccount:kube-system:cluster-autoscaler",
        "system:serviceaccount:kube-system:scheduler",
    )
    past = pd.MultiIndex.from_product(
        [[autoscaler, scheduler], pd.date_range(DAY - pd.Timedelta(days=2), periods=48, freq="h")],
        names=["identity", "window_start"],
    )
    history = pd.DataFrame({"n_cluster_wide_pod_lists": 0.0, "n_denied": 0.0}, index=past)
    history.loc[autoscaler, "n_cluster_wide_pod_lists"] = 1.0
    rarity = ActionRarity().fit(history)
    today = pd.MultiIndex.from_product([[autoscaler], pd.date_range(DAY, periods=24, freq="h")], names=past.names)
    windows = pd.DataFrame({"n_cluster_wide_pod_lists": 1.0, "n_denied": 0.0}, index=today)
    assert np.exp(-rarity.transform(windows)[0, 0]) < 0.7  # the shrunk estimate
    found = identity_days(pd.Series(0.3, index=today), surprisal=family_surprisal(rarity, windows))
    assert found.days["anomaly_score"].tolist() == [0.0]


def test_a_habit_s_busy_day_is_no_pattern_a_rare_family_s_is():
    """A kubelet reads secrets in three hours of four; today it read them in every hour, which at
    that rate, hour by hour, has chance 0.75^24 = 0.001. A busy day of what it does most hours
    is only a busier day: nothing. (At 50 nodes a kubelet's held-out days ranged 11-23 hours of
    24 at 74%: with 50 of them, such a day came once a week.) An exec in every hour of today,
    by one who execs one hour in five, is a pattern."""
    node, other = "system:node:ip-10-0-1-1.ec2.internal", "system:node:ip-10-0-1-2.ec2.internal"
    past = pd.MultiIndex.from_product(
        [[node, other], pd.date_range(DAY - pd.Timedelta(days=4), periods=96, freq="h")],
        names=["identity", "window_start"],
    )
    history = pd.DataFrame(
        {"n_secret_names": np.tile([1.0, 1.0, 1.0, 0.0], 48), "n_exec": np.tile([1.0, 0, 0, 0, 0], 40)[:192]},
        index=past,
    )
    rarity = ActionRarity().fit(history)
    today = pd.MultiIndex.from_product([[node], pd.date_range(DAY, periods=24, freq="h")], names=past.names)

    def busy_day(column: str) -> float:
        windows = pd.DataFrame({"n_secret_names": 0.0, "n_exec": 0.0}, index=today)
        windows[column] = 1.0
        found = identity_days(pd.Series(0.3, index=today), surprisal=family_surprisal(rarity, windows))
        return float(found.days["anomaly_score"].iloc[0])

    assert busy_day("n_secret_names") == 0.0
    assert busy_day("n_exec") > 5.0


def test_a_new_identity_s_habit_is_not_a_pattern_until_it_has_a_past():
    """A new service account reads its namespace's secrets every hour of its first day. It has
    no rate of its own, only its kind's (the shop's cart reads secrets one hour in three), and
    against that rate twenty-four reads in twenty-four hours would be an improbable pattern,
    every day until someone accepts it. Its habits are still forming: nothing. The cart doing
    the same, against its own past, is a pattern."""
    cart, web = "system:serviceaccount:shop:cart", "system:serviceaccount:shop:web"
    newcomer = "system:serviceaccount:analytics:analytics-api"
    past = pd.MultiIndex.from_product(
        [[cart, web], pd.date_range(DAY - pd.Timedelta(days=2), periods=48, freq="h")],
        names=["identity", "window_start"],
    )
    history = pd.DataFrame({"n_secret_names": 0.0, "n_denied": 0.0}, index=past)
    history.loc[cart, "n_secret_names"] = np.tile([1.0, 0.0, 0.0], 16)
    rarity = ActionRarity().fit(history)

    def day_of(identity: str) -> float:
        today = pd.MultiIndex.from_product([[identity], pd.date_range(DAY, periods=24, freq="h")], names=past.names)
        windows = pd.DataFrame({"n_secret_names": 1.0, "n_denied": 0.0}, index=today)
        # Each hour just above the floor: alone, no window adds evidence.
        found = identity_days(pd.Series(0.06, index=today), surprisal=family_surprisal(rarity, windows))
        return float(found.days["anomaly_score"].iloc[0])

    assert day_of(newcomer) == 0.0
    assert day_of(cart) > 0.0


def test_reasons_are_the_terms_that_contributed_largest_first_and_add_up():
    """Each window's contribution is shared among its evidence terms in proportion; the day's
    reasons are those shares summed, largest first, and together they are the day's score."""
    window_p = low_and_slow_day()
    terms = pd.DataFrame(0.0, index=window_p.index, columns=["rarity_denied", "rarity_secrets_read", "forest"])
    terms.loc[(INTRUDER, slice(None)), "rarity_denied"] = 4.0
    terms.loc[(INTRUDER, slice(None)), "forest"] = 1.0
    terms.loc[(CI, slice(None)), "forest"] = 2.0
    found = identity_days(window_p, terms)
    reasons = found.reasons(INTRUDER, DAY)
    assert [name for name, _ in reasons] == ["rarity_denied", "forest"]  # secrets read added nothing
    assert reasons[0][1] == pytest.approx(4 * reasons[1][1])
    assert sum(v for _, v in reasons) == pytest.approx(found.days.loc[(INTRUDER, DAY), "anomaly_score"])


def test_windows_stay_available_below_their_day_with_their_contributions():
    found = identity_days(low_and_slow_day())
    below = found.windows_of(INTRUDER, DAY)
    assert len(below) == 24
    assert below["contribution"].is_monotonic_decreasing
    assert set(below.index.get_level_values("window_start")[:9].hour) == set(range(9, 18))
    assert below["contribution"].sum() == pytest.approx(found.days.loc[(INTRUDER, DAY), "anomaly_score"])


def test_a_window_with_evidence_but_no_named_term_is_not_dropped():
    window_p = low_and_slow_day()
    found = identity_days(window_p, pd.DataFrame({"forest": 0.0}, index=window_p.index))
    assert found.reasons(CI, DAY)[0][0] == "unattributed"


def test_rarity_calibration_and_identity_days_together_rank_the_low_and_slow_intruder_first():
    """The three pieces as the lead will wire them: rarity learned on a fit slice, calibrated on
    held-out days, then an attack day. The developer reads in its namespace every working
    hour and is almost never denied; a service-account controller is denied now and then and
    once has a burst of denials. On the attack day the developer's token is denied once an
    hour, nine hours long; the controller has its burst hour. The threshold, set for one alert
    every other held-out day, lets the intruder's day through."""
    ctrl = "system:serviceaccount:kube-system:job-controller"
    rng = np.random.default_rng(11)

    def day(d: int, attack: bool = False) -> pd.DataFrame:
        rows, denied = [], []
        for h in range(24):
            rows.append((INTRUDER, 24 * d + h))
            denied.append(float(attack and 9 <= h < 18) or float(rng.uniform() < 0.005))
            rows.append((ctrl, 24 * d + h))
            denied.append(float(rng.uniform() < 0.1) + (40.0 if attack and h == 3 else 0.0))
        idx = pd.MultiIndex.from_tuples(
            [(w, DAY + pd.Timedelta(hours=h)) for w, h in rows], names=["identity", "window_start"]
        )
        return pd.DataFrame({"n_denied": denied, "frac_denied": np.array(denied) / 50.0}, index=idx)

    fit_slice = pd.concat([day(d) for d in range(14)])
    held_out = [day(d) for d in range(14, 28)]
    rarity = ActionRarity().fit(fit_slice)
    # Held-out days are scored as the daily job will: each against what the days before taught.
    held_scores = []
    for d in held_out:
        held_scores.append(-rarity.score_samples(d))
        rarity.partial_fit(d)
    # A second source standing in for the forest: how many denials (the busy hour is loud).
    held = pd.concat(held_out)
    sources = np.column_stack([np.concatenate(held_scores), held["n_denied"].to_numpy()])
    calibrator = TailCalibrator().fit(sources)
    held_days = identity_days(pd.Series(calibrator.combined_p_values(sources), index=held.index)).days
    threshold = alert_threshold(
        held_days["anomaly_score"], held_days.index.get_level_values("day"), alerts_per_day=0.5
    ).threshold
    attack = day(28, attack=True)
    window_p = pd.Series(
        calibrator.combined_p_values(np.column_stack([-rarity.score_samples(attack), attack["n_denied"]])),
        index=attack.index,
    )
    assert window_p.idxmin()[0] == ctrl  # the burst hour is the most unusual window
    found = identity_days(window_p)
    assert found.days.index.get_level_values("identity")[0] == INTRUDER
    assert found.days.loc[(INTRUDER, DAY + pd.Timedelta(days=28)), "anomaly_score"] > threshold
