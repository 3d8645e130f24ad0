"""How an attack's place in its day is counted: identities by their best window, ties against it."""

from __future__ import annotations

import pandas as pd
import pytest

from evaluation.ranks import attack_ranks, daily_recall, rank_of

T = pd.Timestamp("2026-03-10 00:00", tz="UTC")


def _day(rows: list[tuple[str, int, float]]) -> pd.Series:
    """A day's window scores from (identity, hour, score) rows."""
    index = pd.MultiIndex.from_tuples(
        [(who, T + pd.Timedelta(hours=h)) for who, h, _ in rows], names=["identity", "window_start"]
    )
    return pd.Series([s for _, _, s in rows], index=index, name="anomaly_score")


def test_a_tie_counts_against_the_attack():
    # Three windows score 0.5: the attack's one among them is third, not first.
    assert rank_of([0.9, 0.5, 0.5, 0.5, 0.1], 0.5) == 4
    assert rank_of([0.9, 0.5, 0.1], 0.9) == 1


def test_the_attacker_is_ranked_by_its_best_window_among_the_days_identities():
    # The node's busy hour scores highest; the stolen token (ci-bot at 03:00) comes next,
    # though ci-bot's ordinary 10:00 window is quiet; alice is last.
    day = _day(
        [
            ("system:node:a", 9, 0.80),
            ("ci-bot", 3, 0.70),
            ("ci-bot", 10, 0.30),
            ("alice", 9, 0.40),
            ("system:node:a", 10, 0.75),
        ]
    )
    attack = pd.MultiIndex.from_tuples([("ci-bot", T + pd.Timedelta(hours=3))], names=["identity", "window_start"])
    ranks = attack_ranks(day, attack, threshold=0.6)
    assert ranks == {
        "identity": "ci-bot",
        "identity_rank": 2,  # behind the node, ahead of alice
        "best_window_rank": 3,  # both node windows score higher
        "best_score": 0.70,
        "alert": True,  # 0.70 > 0.6
    }
    assert attack_ranks(day, attack, threshold=0.7)["alert"] is False  # not above: equal


def test_an_attack_using_two_identities_counts_the_better_placed_one():
    # token_request: the app mints a token for a powerful service account and uses it.
    day = _day([("app", 1, 0.2), ("admin-sa", 2, 0.9), ("other", 1, 0.5)])
    attack = pd.MultiIndex.from_tuples(
        [("app", T + pd.Timedelta(hours=1)), ("admin-sa", T + pd.Timedelta(hours=2))],
        names=["identity", "window_start"],
    )
    ranks = attack_ranks(day, attack)
    assert (ranks["identity"], ranks["identity_rank"], ranks["best_window_rank"]) == ("admin-sa", 1, 1)
    assert "alert" not in ranks  # baselines have no threshold


def test_an_attack_with_no_scored_window_is_an_error_not_a_rank():
    day = _day([("alice", 1, 0.2)])
    elsewhere = pd.MultiIndex.from_tuples([("mallory", T)], names=["identity", "window_start"])
    with pytest.raises(ValueError, match="none of the attack's windows"):
        attack_ranks(day, elsewhere)


def test_daily_recall_is_the_share_of_the_attacks_windows_in_the_days_top_k():
    day = _day([("a", 0, 0.9), ("x", 0, 0.8), ("a", 1, 0.7), ("y", 0, 0.6), ("a", 2, 0.1)])
    attack = pd.MultiIndex.from_tuples(
        [("a", T), ("a", T + pd.Timedelta(hours=1)), ("a", T + pd.Timedelta(hours=2))],
        names=["identity", "window_start"],
    )
    assert daily_recall(day, attack, (1, 3, 5)) == {1: pytest.approx(1 / 3), 3: pytest.approx(2 / 3), 5: 1.0}


def test_the_detector_ranks_and_alerts_the_attackers_identity_day():
    """Under detector v2 an identity-day, not a window, is ranked and alerts: the attacker
    (three quiet windows that add up) ranks first among the day's identities and alerts,
    although another identity has the single highest window."""
    from types import SimpleNamespace

    from evaluation.protocol import _identity_day_ranks

    day = pd.Timestamp("2026-03-23", tz="UTC")
    identities = pd.DataFrame(
        {"anomaly_score": [9.0, 4.0, 0.0], "is_anomaly": [True, False, False], "finding": ["new", "", ""]},
        index=pd.MultiIndex.from_tuples(
            [("attacker", day), ("busy-benign", day), ("kubelet", day)], names=["identity", "day"]
        ),
    ).reset_index()  # as ScoreResult.identities holds them: identity and day are columns
    positives = pd.MultiIndex.from_tuples(
        [("attacker", day + pd.Timedelta(hours=h)) for h in (9, 12, 15)], names=["identity", "window_start"]
    )
    ranks = _identity_day_ranks(SimpleNamespace(identities=identities), positives)
    assert ranks == {"identity": "attacker", "identity_rank": 1, "identity_day_score": 9.0, "alert": True}
    # Were the attacker's day only a repeat of its open finding, it would page nobody: not alerted.
    identities["finding"] = ["repeat", "", ""]
    ranks = _identity_day_ranks(SimpleNamespace(identities=identities), positives)
    assert ranks == {"identity": "attacker", "identity_rank": 1, "identity_day_score": 9.0, "alert": False}
