"""Other alert budgets: what the attack-free days and the attacks give at other ``--alerts-per-day``.

The threshold is set so that held-out normal days give ``alerts_per_day`` alerts, and whatever
is most unusual on a normal day fills that budget: at one a day, a node removal's garbage
collector does when nothing stranger happened. Read at several budgets from one run (each
threshold from the same held-out identity-days, as training sets the default one), the report
shows what an on-call engineer buys with each: which benign identity-days alert, and whether
the attacks still do. Counts are identity-days above each threshold, repeats of an open
finding included; the day state is the one the default threshold left.
"""

from __future__ import annotations

import pandas as pd

from evaluation.ranks import name_alert
from features.enrich import kinds_of
from models.persistence import ModelBundle
from models.threshold import alert_threshold

__all__ = ["BUDGETS", "above", "at_budgets", "thresholds"]

#: Alerts per normal day asked of the threshold (the detector's default is 1).
BUDGETS = (0.2, 0.5, 1.0, 2.0)


def thresholds(bundle: ModelBundle) -> dict[float, float]:
    """Each budget's threshold, from the held-out identity-days the bundle's was set on."""
    n_days = bundle.alert.n_days if bundle.alert is not None else 1
    return {b: alert_threshold(bundle.train_scores, n_days, alerts_per_day=b).threshold for b in BUDGETS}


def above(result, benign: pd.DataFrame, freq: str, floor: float) -> list[dict]:
    """The day's identity-days scoring above ``floor``, named by their best window's scenario."""
    days = result.identities
    days = days[days["anomaly_score"] > floor]
    if days.empty:
        return []
    scores = result.windows["anomaly_score"]
    best = scores.groupby(level="identity").idxmax()
    out = []
    for who, score in zip(days["identity"], days["anomaly_score"], strict=True):
        if who in best.index:
            named = name_alert(who, pd.Timestamp(best[who][1]), benign, freq)
        else:  # outside evidence alone (a rule's hit), no window to name it by
            named = f"normal {kinds_of([who])[0]} {who}"
        # Unrounded: compared with each budget's threshold as the alerts compare with theirs.
        out.append({"identity": str(who), "anomaly_score": float(score), "named_by": named})
    return sorted(out, key=lambda d: -d["anomaly_score"])


def at_budgets(cuts: dict[float, float], quiet_days: list[dict], attacks: list[dict]) -> list[dict]:
    """Per budget: its threshold, identity-days above it on each attack-free day, what they were
    (``named_by`` counts), and the attacks whose identity-day is above it (a repeat of an open
    finding included, which the per-attack ``alert`` does not count)."""
    scored = [a["detector"]["identity_day_score"] for a in attacks if a.get("detector")]
    out = []
    for budget, cut in cuts.items():
        named: dict[str, int] = {}
        per_day = []
        for day in quiet_days:
            hits = [d for d in day["identity_days"] if d["anomaly_score"] > cut]
            per_day.append(len(hits))
            for d in hits:
                named[d["named_by"]] = named.get(d["named_by"], 0) + 1
        out.append(
            {
                "alerts_per_day": budget,
                "threshold": float(cut),
                "identity_days_per_attack_free_day": per_day,
                "named": dict(sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))),
                "attacks_alerted": sum(s > cut for s in scored),
                "attacks": len(scored),
            }
        )
    return out
