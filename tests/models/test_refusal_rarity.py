"""A new refusal target is as rare as a denial is for the identity, not as rare as a first-ever action.

The story (the 50-node evaluation's seed 1, made small): a developer's misconfigured
RoleBinding denies him `list secrets` in the other teams' namespaces, one hour in two. He tried
every namespace in his first days, so for the three weeks the rarity learns from, each denial
is a retry of a target he was denied before: nobody in the cluster is denied anything new.
Then a new team's namespace appears and he is denied there too: a new refusal target. That is
news, but news of the kind his days are full of. Counted by new targets alone, the rarity
had never seen one anywhere and scored it as a first-ever impersonation, twice (a refused
`list secrets` is both a denial and a refused sensitive action): 51 nats for one benign hour,
which then topped every held-out reference the calibration judges the attacks against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.identity_day import family_surprisal, identity_days
from models.rarity import ActionRarity
from tests.models.test_rarity import windows  # windows from (identity, hour, values), hour 0 = 2026-03-02

DEVELOPER = "developer"
COLLEAGUES = [f"arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev/{n}" for n in ("ana", "bo", "cy")]
KUBELET = "system:node:ip-10-0-1-7.eu-west-1.compute.internal"
HOURS = 21 * 24
DENIED = {"n_denied": 1.0, "n_attempted": 1.0}  # a denied `list secrets` is also a refused sensitive action


def three_weeks() -> pd.DataFrame:
    """The developer is denied every other hour, always a target he was denied before (a retry);
    his colleagues and a kubelet are never denied anything."""
    rows: list[tuple[str, int, dict[str, float]]] = []
    for h in range(HOURS):
        rows.append((DEVELOPER, h, DENIED if h % 2 else {}))
        rows += [(who, h, {}) for who in COLLEAGUES]
        rows.append((KUBELET, h, {"n_secret_names": 3.0}))
    return windows(rows)


def surprisal(rarity: ActionRarity, values: dict[str, float]) -> pd.Series:
    """Each term's nats in one window of the developer's, the hour after the three weeks."""
    return pd.Series(rarity.transform(windows([(DEVELOPER, HOURS, values)]))[0], index=rarity.terms_)


def test_a_first_denial_in_a_new_namespace_costs_what_a_denial_costs_him_and_a_retry_nothing():
    rarity = ActionRarity().fit(three_weeks())

    new_target = surprisal(rarity, DENIED | {"new_denied_target": 1.0, "new_refused_target": 1.0})
    retry = surprisal(rarity, DENIED)
    impersonating = surprisal(rarity, {"n_impersonations": 1.0})

    # Denied one hour in two: a denial on a new target tells about as much as a coin toss.
    assert new_target["denied"] == new_target["refused_sensitive"] < 1.0
    assert new_target["denied"] == -np.log(rarity.rates([DEVELOPER]).loc[DEVELOPER, "denied"])
    # What nobody in the cluster has ever done is still what stands out.
    assert impersonating["impersonation"] > 10 * new_target[["denied", "refused_sensitive"]].sum()
    # A retry of a target he was denied before adds nothing at all.
    assert retry.sum() == 0.0


def test_an_identity_never_denied_is_surprised_by_its_first_denial():
    """The kubelet reads its pods' secrets and is never denied: its first denied request, on a
    target it was never refused, is as rare as a denial is for it, never in three weeks."""
    rarity = ActionRarity().fit(three_weeks())
    row = windows([(KUBELET, HOURS, DENIED | {"new_denied_target": 1.0, "n_secret_names": 3.0})])
    kubelet = pd.Series(rarity.transform(row)[0], index=rarity.terms_)
    developer = surprisal(rarity, DENIED | {"new_denied_target": 1.0})

    assert kubelet["denied"] > 5 * developer["denied"]


def test_his_habit_of_denials_does_not_hide_a_day_of_new_targets():
    """Denied one hour in two, he is habitually denied, but always on targets he was denied
    before. A stolen copy of his token probes a new target every hour for nine hours: each
    hour alone is a coin toss, nine in a row is the low-and-slow pattern. The habit that a
    busy day may repeat (models/identity_day.HABIT_RATE) is his denials, not new targets."""
    rarity = ActionRarity().fit(three_weeks())
    today = windows([(DEVELOPER, HOURS + h, DENIED | {"new_denied_target": 1.0}) for h in range(9)])
    found = identity_days(pd.Series(0.3, index=today.index), surprisal=family_surprisal(rarity, today))
    assert found.reasons(DEVELOPER, found.days.index[0][1])[0][0] == "rarity_denied"
    assert found.days["anomaly_score"].iloc[0] > 2.0
