"""Where an injected attack lands in its day, and who is behind each alert of a quiet day.

Ranks are 1-based and pessimistic: a tie counts against the attack (rank = how many scores
are at least as high), so a baseline that gives most windows the same score cannot look good
by the order in which ties happen to be listed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.enrich import kinds_of


def rank_of(scores: np.ndarray, score: float) -> int:
    """1-based rank of ``score`` among ``scores`` (itself included), ties counted above it."""
    return int(np.count_nonzero(np.asarray(scores, dtype=float) >= score))


def identity_scores(scores: pd.Series) -> pd.Series:
    """Each identity's score for the day: its best window."""
    return scores.groupby(level="identity", sort=False).max()


def attack_ranks(scores: pd.Series, positives: pd.MultiIndex, threshold: float | None = None) -> dict:
    """Ranks of one attack in its day's ``scores`` (index identity, window_start).

    ``positives`` are the windows that hold the attack's events. The attacker is the attack's
    identity ranked best among the day's identities (an attack may use several identities,
    as a minted token does); its best window is the attack's best-ranked positive window.
    """
    hit = scores.index.isin(positives)
    if not hit.any():
        raise ValueError("none of the attack's windows was scored")
    per_identity = identity_scores(scores)
    attackers = per_identity.loc[sorted(set(positives.get_level_values("identity")) & set(per_identity.index))]
    attacker = str(attackers.idxmax())
    best = float(scores[hit].max())
    out = {
        "identity": attacker,
        "identity_rank": rank_of(per_identity.to_numpy(), float(attackers.max())),
        "best_window_rank": rank_of(scores.to_numpy(), best),
        "best_score": best,
    }
    if threshold is not None:
        out["alert"] = bool(best > threshold)
    return out


def daily_recall(scores: pd.Series, positives: pd.MultiIndex, ks: tuple[int, ...]) -> dict[int, float]:
    """Share of the attack's windows among the day's ``k`` highest (ties counted against it)."""
    values = scores.to_numpy(dtype=float)
    hit = scores.index.isin(positives)
    ranks = np.array([rank_of(values, s) for s in values[hit]])
    return {k: float((ranks <= k).mean()) for k in ks}


def benign_windows(labels: pd.DataFrame, freq: str) -> pd.DataFrame:
    """The ``benign_*`` rows of a labels.csv as (identity, window_start, start, end, scenario)."""
    if labels.empty or "scenario" not in labels.columns:
        return pd.DataFrame(columns=["identity", "window_start", "start", "end", "scenario"])
    rows = labels[labels["scenario"].astype(str).str.startswith("benign_")]
    stamp = rows["timestamp"] if "timestamp" in rows.columns else rows["start"]
    return pd.DataFrame(
        {
            "identity": rows["identity"].astype(str),
            "window_start": pd.to_datetime(stamp, utc=True, format="ISO8601").dt.floor(freq),
            "start": pd.to_datetime(rows.get("start", stamp), utc=True, format="ISO8601"),
            "end": pd.to_datetime(rows.get("end", stamp), utc=True, format="ISO8601"),
            "scenario": rows["scenario"].astype(str),
        }
    ).reset_index(drop=True)


def name_alert(identity: str, window_start: pd.Timestamp, benign: pd.DataFrame, freq: str) -> str:
    """The benign scenario behind an alerting window, or ``normal <kind> <identity>``.

    A label in the same identity and window names it first; else a benign change of the same
    identity that was under way during the window (a new engineer's first day shows in every
    window of it, not only where a labelled event fell). Several changes in one window are all
    named (``a + b``): the CI deployer's operator install and its rollout share hours, and
    naming only the first label blamed the rollout for the install's first webhook.
    """
    own = benign[benign["identity"] == identity]
    same = own[own["window_start"] == window_start]
    if len(same):
        return " + ".join(dict.fromkeys(same["scenario"].astype(str)))
    end = window_start + pd.Timedelta(freq)
    during = own[(own["start"] < end) & (own["end"] >= window_start)]
    if len(during):
        return " + ".join(dict.fromkeys(during["scenario"].astype(str)))
    return f"normal {kinds_of([identity])[0]} {identity}"
