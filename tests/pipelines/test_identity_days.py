"""Detector v2 end to end: what an identity does, judged per identity and day, outranks volume.

The ordinary day in these stories is the model's last held-out day replayed a day later: every
identity as it was, nothing new. Onto it one thing is written at a time.
"""

from __future__ import annotations

import copy
from datetime import date

import numpy as np
import pandas as pd
import pytest
from support import AUDIT

from errors import KaadError
from features.novelty_log import NoveltyLog
from models.identity_day import family_surprisal, identity_days
from pipelines.score import score_day, window_scores

ARGOCD = "system:serviceaccount:argocd:argocd-application-controller"
CATALOG = "system:serviceaccount:catalog:catalog-api"


def _ordinary_day(result) -> tuple[pd.DataFrame, pd.Timestamp]:
    windows = result.windows
    days = pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize()
    day = windows[days == days.max()].copy()
    starts = day.index.get_level_values("window_start") + pd.Timedelta("1D")
    day.index = pd.MultiIndex.from_arrays([day.index.get_level_values("identity"), starts], names=day.index.names)
    return day, days.max() + pd.Timedelta("1D")


def _judge(windows: pd.DataFrame, bundle):
    scored, terms = window_scores(windows, bundle)
    return scored, identity_days(scored["p_value"], terms, surprisal=family_surprisal(bundle.rarity, windows))


def test_a_first_ever_cluster_admin_binding_outranks_a_busy_benign_hour(trained):
    """Argo CD's 10:00 hour carries a hundred times its requests; at 14:00 the catalog
    service account, which never bound anything, binds a subject to cluster-admin. The
    binding's window is more unusual than the busy hour and than every other window of the
    day, its identity-day ranks first, and the first reason says what it did and how often
    it, its peers and the cluster did that before."""
    result = trained["result"]
    day, start = _ordinary_day(result)
    busy, binding = (ARGOCD, start + pd.Timedelta(hours=10)), (CATALOG, start + pd.Timedelta(hours=14))
    day.loc[busy, "log_requests"] += np.log(100)
    day.loc[binding, "n_admin_bindings"] = 1.0
    scored, found = _judge(day, result.bundle)
    assert scored.loc[binding, "anomaly_score"] > scored.loc[busy, "anomaly_score"]
    assert scored["anomaly_score"].idxmax() == binding
    assert found.days.index[0] == (CATALOG, start)
    term, _ = found.reasons(CATALOG, start)[0]
    assert term == "rarity_privileged_binding"
    said = result.bundle.rarity.usual(CATALOG, "privileged_binding")
    assert said.startswith("binding to an admin role: this identity 0 of")


def test_low_and_slow_outranks_the_most_unusual_benign_window_as_an_identity_day(trained):
    """The developer works 09:00-17:00 as in its least ordinary hour of the day and is denied
    one call an hour. People are judged against people, among whom one denial in an hour is
    not rare: each of those nine windows is less unusual than the day's most unusual benign
    window, and not even below the identity-day floor, so on its own none adds anything.
    Nine of them in one day are what no ordinary day of a person has: counted, the
    developer's day ranks first, each of its nine hours nested below as unusual."""
    result = trained["result"]
    day, start = _ordinary_day(result)
    benign_peak = _judge(day, result.bundle)[0]["anomaly_score"].max()
    noon = day.loc[("developer", start + pd.Timedelta(hours=12))]
    hours = [start + pd.Timedelta(hours=h) for h in range(9, 18)]
    probing = pd.DataFrame([noon] * 9, index=pd.MultiIndex.from_product([["developer"], hours], names=day.index.names))
    probing["n_denied"] += 1
    probing["frac_denied"] = probing["n_denied"] / np.expm1(probing["log_requests"])
    day = pd.concat([day.drop(index="developer", level="identity"), probing])
    scored, found = _judge(day, result.bundle)
    slow = scored.xs("developer", level="identity")["anomaly_score"]
    assert len(slow) == 9 and (slow < benign_peak).all() and (slow < -np.log(0.05)).all()
    assert found.days.index[0] == ("developer", start)
    assert found.days["n_unusual"].iloc[0] == 9


class _State:
    """The smallest thing with DayState's interface (models/day_state.py implements the real one)."""

    def __init__(self, bundle, last_day: date | None):
        self.encoder = copy.deepcopy(bundle.encoder)
        self.rarity = copy.deepcopy(bundle.rarity)
        self.last_day = last_day
        self.advanced: list[tuple[date, pd.DataFrame, pd.Series, dict]] = []
        self.held: dict = {}  # (identity, day) -> held identity-day: none, so every alert is new

    def day_novelty(self) -> pd.DataFrame:
        return NoveltyLog().frame()

    def check_day(self, day: date) -> None:
        if self.last_day is not None and day <= self.last_day:
            raise KaadError(f"{day} is on or before the state's last day {self.last_day}")

    def advance(self, day: date, windows: pd.DataFrame, alerted: pd.Series, verdicts: dict) -> None:
        self.advanced.append((day, windows, alerted, verdicts))
        self.last_day = day


@pytest.fixture(scope="module")
def narrated_bundle():
    from models.detector import DetectorParams
    from pipelines.train import TrainConfig, train

    return train([str(AUDIT / "normal_3days.jsonl")], TrainConfig(params=DetectorParams(seed=0))).bundle


def test_with_a_state_the_day_is_checked_first_and_handed_back_with_what_alerted(narrated_bundle):
    """Scoring the attack day with a state: the state is asked whether the day may be scored,
    then told the day's windows and which of them belong to alerting identity-days (cart's
    02:00 intrusion), so that it can learn the rest and keep the intrusion new."""
    state = _State(narrated_bundle, last_day=date(2026, 3, 4))
    result = score_day([str(AUDIT / "attack_day.jsonl")], narrated_bundle, state=state)
    ((day, windows, alerted, verdicts),) = state.advanced
    assert day == date(2026, 3, 5) and state.last_day == day
    assert list(windows.columns) == narrated_bundle.feature_names
    assert windows.index.equals(result.windows.index) and alerted.index.equals(windows.index)
    cart = "system:serviceaccount:shop:cart"
    alerting = set(result.identities.loc[result.identities["is_alert"], "identity"])
    assert cart in alerting
    assert set(alerted[alerted].index.get_level_values("identity")) == alerting
    # With nothing held, each alerting identity-day is a new finding, its score kept for tomorrow.
    assert set(verdicts) == alerting and verdicts[cart].status == "new"
    assert verdicts[cart].score == pytest.approx(result.identities.set_index("identity").loc[cart, "anomaly_score"])


def test_with_a_state_a_day_already_scored_is_refused_before_anything_is_scored(narrated_bundle):
    state = _State(narrated_bundle, last_day=date(2026, 3, 5))
    with pytest.raises(KaadError, match="on or before the state's last day"):
        score_day([str(AUDIT / "attack_day.jsonl")], narrated_bundle, day=date(2026, 3, 5), state=state)
    assert state.advanced == []
