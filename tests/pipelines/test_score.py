"""The daily job: every loud attack near the top with a reason that names what it did."""

from __future__ import annotations

import pandas as pd
import pytest

from features.catalog import FEATURES
from scenarios.attacks import ATTACKS


def documented(scenario: str) -> set[str]:
    return {f.name for f in FEATURES if scenario in f.catches}


@pytest.mark.parametrize("scenario", sorted(ATTACKS))
def test_each_attack_is_in_the_top_20_identities_with_a_reason_naming_it(all_attacks_scored, scenario):
    scored = all_attacks_scored["scored"]
    labels = pd.read_csv(all_attacks_scored["labels"])
    attackers = set(labels.loc[labels["scenario"] == scenario, "identity"])
    top20 = list(scored.identities["identity"].head(20))
    assert attackers & set(top20), f"{scenario}: none of {attackers} in the top 20 of the day view"
    windows = set(
        labels.loc[labels["scenario"] == scenario]
        .assign(w=lambda t: pd.to_datetime(t["timestamp"], utc=True).dt.floor("1h"))[["identity", "w"]]
        .itertuples(index=False, name=None)
    )
    reasons = [r for f in scored.findings if (f.identity, f.window_start) in windows for r in f.reasons]
    assert reasons, f"{scenario}: its windows are not among the explained findings"
    named = {r.feature for r in reasons} & documented(scenario)
    assert named, f"{scenario}: reasons {[r.text for r in reasons]} name none of {documented(scenario)}"


def test_reasons_carry_values_usual_values_and_rarity(all_attacks_scored):
    finding = all_attacks_scored["scored"].findings[0]
    assert finding.reasons and finding.is_anomaly
    for reason in finding.reasons:
        assert reason.rarity in {"UNSEEN", "RARE", "USUAL"}
        assert "usual" in reason.text or reason.rarity == "UNSEEN" or reason.family == "time"
    assert not finding.calls.empty and "verb" in finding.calls.columns


def test_day_view_groups_windows_by_identity(all_attacks_scored):
    scored = all_attacks_scored["scored"]
    view = scored.identities
    assert view["identity"].is_unique
    assert view["windows"].sum() == len(scored.windows)
    assert view["peak_score"].is_monotonic_decreasing


def test_every_window_above_the_threshold_is_explained_not_only_the_top(trained):
    # top=1 asks for one row in a terminal; it must not decide what is explained.
    from pipelines.score import score_day

    scored = score_day(trained["files"][-1:], trained["result"].bundle, top=1, threshold_percentile=97)
    above = set(scored.windows.index[scored.windows["is_anomaly"]])
    assert len(above) > 1, "the planted day should put several windows above the 97th percentile"
    explained = {(f.identity, f.window_start): f for f in scored.findings}
    assert above <= set(explained)
    assert all(explained[key].is_alert and not explained[key].calls.empty for key in above)
    assert [f.rank for f in scored.findings] == list(range(1, len(scored.findings) + 1))
