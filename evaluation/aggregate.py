"""Numbers over all seeds: means and ranges of the metrics, and each attack's ranks per seed."""

from __future__ import annotations

import numpy as np

from evaluation.protocol import METHODS


def _spread(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    if np.isnan(arr).all():  # e.g. no quiet attack in the run: nothing to average
        return {"mean": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"mean": float(np.nanmean(arr)), "min": float(np.nanmin(arr)), "max": float(np.nanmax(arr))}


def aggregate(seeds: list[dict]) -> dict:
    """Summarise the per-seed results of detection.json."""
    metrics = {}
    for method in METHODS:
        per = [s["metrics"][method] for s in seeds]
        metrics[method] = {
            "average_precision": _spread([m["average_precision"] for m in per]),
            "average_precision_quiet": _spread([m.get("average_precision_quiet", np.nan) for m in per]),
            "recall_at": {k: _spread([m["recall_at"][k] for m in per]) for k in per[0]["recall_at"]},
            "daily_recall_at": {k: _spread([m["daily_recall_at"][k] for m in per]) for k in per[0]["daily_recall_at"]},
            "median_identity_rank": _spread([m["median_identity_rank"] for m in per]),
        }
    attacks: dict[tuple[str, str], dict] = {}
    for s in seeds:
        for a in s["attacks"]:
            row = attacks.setdefault(
                (a["scenario"], a["variant"]),
                {"scenario": a["scenario"], "variant": a["variant"], "seeds": [], "missed": 0, "alerts": 0}
                | {method: {"identity_ranks": [], "best_window_ranks": []} for method in METHODS},
            )
            row["seeds"].append(s["seed"])
            if a["missed"]:
                row["missed"] += 1
                for method in METHODS:
                    row[method]["identity_ranks"].append(None)
                    row[method]["best_window_ranks"].append(None)
                continue
            row["alerts"] += int(a["detector"]["alert"])
            for method in METHODS:
                row[method]["identity_ranks"].append(a[method]["identity_rank"])
                row[method]["best_window_ranks"].append(a[method]["best_window_rank"])
    alerts = [n for s in seeds for n in s["alerts_per_attack_free_day"]]
    # Runs before open findings have no repeats counted apart (their alerts include them).
    repeats = [n for s in seeds for n in s.get("repeats_per_attack_free_day", [])]
    return {
        "metrics": metrics,
        "alerts_per_attack_free_day": _spread(alerts),
        **({"repeats_per_attack_free_day": _spread(repeats)} if repeats else {}),
        "attack_free_days": len(alerts),
        "budgets": _budgets(seeds),
        "attacks": list(attacks.values()),
    }


def _budgets(seeds: list[dict]) -> list[dict]:
    """Each alert budget over all seeds (runs before budgets were measured have none)."""
    rows = [b for s in seeds for b in s.get("budgets", [])]
    out = []
    for budget in dict.fromkeys(b["alerts_per_day"] for b in rows):
        same = [b for b in rows if b["alerts_per_day"] == budget]
        named: dict[str, int] = {}
        for b in same:
            for name, n in b["named"].items():
                named[name] = named.get(name, 0) + n
        out.append(
            {
                "alerts_per_day": budget,
                "identity_days_per_attack_free_day": _spread(
                    [n for b in same for n in b["identity_days_per_attack_free_day"]]
                ),
                "named": dict(sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))),
                "attacks_alerted": sum(b["attacks_alerted"] for b in same),
                "attacks": sum(b["attacks"] for b in same),
            }
        )
    return out
