"""The daily job: every loud attack near the top with a reason that names what it did."""

from __future__ import annotations

import pandas as pd
import pytest

from features.catalog import FEATURES
from models.rarity import CONTEXT, FAMILIES
from scenarios.attacks import ATTACKS


def documented(scenario: str) -> set[str]:
    return {f.name for f in FEATURES if scenario in f.catches}


def features_named(reason) -> set[str]:
    """The window features a reason stands for: its own, those its action family counts, or its context."""
    term = reason.feature.removeprefix("rarity_")
    if reason.family == "rarity" and term in FAMILIES:
        return set(FAMILIES[term][1])
    return {term} if reason.family == "rarity" and term in CONTEXT else {reason.feature}


@pytest.mark.parametrize("scenario", sorted(ATTACKS))
def test_each_attack_is_in_the_top_20_identity_days_with_a_reason_naming_it(all_attacks_scored, scenario):
    """Every loud attack of the day puts its identity among the top 20 identity-days, and one
    of the attack's windows is nested under that finding with a reason that names a feature
    the catalogue documents for the attack (directly, or as the action family counting it)."""
    scored = all_attacks_scored["scored"]
    labels = pd.read_csv(all_attacks_scored["labels"])
    attackers = set(labels.loc[labels["scenario"] == scenario, "identity"])
    top20 = list(scored.identities["identity"].head(20))
    assert attackers & set(top20), f"{scenario}: none of {attackers} in the top 20 identity-days"
    windows = set(
        labels.loc[labels["scenario"] == scenario]
        .assign(w=lambda t: pd.to_datetime(t["timestamp"], utc=True).dt.floor("1h"))[["identity", "w"]]
        .itertuples(index=False, name=None)
    )
    nested = [w for f in scored.findings for w in f.windows]
    reasons = [r for w in nested if (w.identity, w.window_start) in windows for r in w.reasons]
    assert reasons, f"{scenario}: its windows are not among the explained findings"
    named = set().union(*map(features_named, reasons)) & documented(scenario)
    assert named, f"{scenario}: reasons {[r.text for r in reasons]} name none of {documented(scenario)}"


def test_reasons_carry_values_usual_values_and_rarity(all_attacks_scored):
    """The top identity-day's reasons are largest first; each says what happened next to what
    is usual: the forest's inputs with the identity's usual value, the action families with
    how often this identity, its peers and the cluster did it before."""
    finding = all_attacks_scored["scored"].findings[0]
    assert finding.reasons and finding.is_anomaly and finding.windows
    # By term: the forest's share, said by its three inputs that moved most, counts whole.
    terms = [r.term for r in finding.reasons]
    totals = [sum(r.weight for r in finding.reasons if r.term == t) for t in dict.fromkeys(terms)]
    assert totals == sorted(totals, reverse=True) and totals[0] > 0
    assert terms == sorted(terms, key=list(dict.fromkeys(terms)).index)  # each term's reasons together
    for reason in finding.reasons + [r for w in finding.windows for r in w.reasons]:
        assert reason.rarity in {"UNSEEN", "RARE", "USUAL"}
        if reason.family == "rarity":
            assert "this identity" in reason.text and "the cluster" in reason.text
        else:
            assert "usual" in reason.text or reason.rarity == "UNSEEN" or reason.family == "time"
    assert not finding.calls.empty and "verb" in finding.calls.columns


def test_identity_days_add_up_the_windows_of_each_identity(all_attacks_scored):
    scored = all_attacks_scored["scored"]
    view = scored.identities
    assert view["identity"].is_unique  # one day scored
    assert view["n_windows"].sum() == len(scored.windows)
    assert view["n_unusual"].sum() == scored.windows["is_unusual"].sum()
    assert view["anomaly_score"].is_monotonic_decreasing


def test_every_alerting_identity_day_is_explained_not_only_the_top(trained):
    # top=1 asks for one row in a terminal; it must not decide what is explained.
    from pipelines.score import score_day

    scored = score_day(trained["files"][-1:], trained["result"].bundle, top=1, threshold_percentile=97)
    alerting = scored.identities[scored.identities["is_alert"]]
    assert len(alerting) > 1, "the planted day should put several identity-days above the 97th percentile"
    explained = {f.identity: f for f in scored.findings}
    assert set(alerting["identity"]) <= set(explained)
    assert all(explained[i].is_alert and not explained[i].calls.empty for i in alerting["identity"])
    alerting_windows = set(scored.windows.index[scored.windows["is_alert"]])
    nested = {(w.identity, w.window_start) for f in scored.findings for w in f.windows}
    assert alerting_windows and alerting_windows <= nested
    assert [f.rank for f in scored.findings] == list(range(1, len(scored.findings) + 1))
