"""The fields of docs/detection.json, documented once; the CI test checks the committed file.

A string is a field's description; a dict is an object with these fields (or null where it
does not apply: the ranks of an attack that could not be ranked); a one-element list is a list
whose every item has the fields of that element.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_RANKS = {
    "identity": "the attacker identity ranked best among the day's identities",
    "identity_rank": "its 1-based rank among the day's identities (the detector: its identity-day score; the "
    "baselines: its best window; ties against it)",
    "best_window_rank": "the 1-based rank of the attack's best window among the day's windows",
    "best_score": "that window's score",
    "daily_recall_at": "k -> share of the attack's windows among the day's k highest",
}
_METRICS = {
    "average_precision": "over every attack day's windows, positives = windows holding attack events",
    "average_precision_quiet": "the same over the quiet attacks' days only",
    "roc_auc": "same pool",
    "recall_at": "k -> share of the positive windows in the pool's k highest",
    "daily_recall_at": "k -> mean over the attacks of daily_recall_at",
    "positives": "positive windows in the pool",
    "windows": "windows in the pool",
    "median_identity_rank": "median over the attacks of identity_rank",
    "attacks_top1_identity": "attacks whose identity ranked first in its day",
    "attacks_top10_identity": "attacks whose identity ranked in the top 10 of its day",
}
_SPREAD = {"mean": "mean over the seeds", "min": "lowest seed", "max": "highest seed"}
_BUDGET = {
    "alerts_per_day": "alerts per normal day asked (evaluation.budgets.BUDGETS)",
    "threshold": "the threshold that budget gives, from the held-out identity-days the default was set on",
    "identity_days_per_attack_free_day": "identity-days above it on each attack-free day, repeats included",
    "named": "named_by -> identity-days above it on the attack-free days",
    "attacks_alerted": "attacks whose identity-day score is above it (a repeat of an open finding included)",
    "attacks": "attacks ranked",
}

SCHEMA: dict = {
    "schema_version": "version of this layout",
    "generated_by": "the command that wrote the file",
    "generated_at": "UTC time of the run",
    "git_commit": "commit of the code measured",
    "parameters": {
        "size": "quick or full",
        "seeds": "cluster seeds (also the detector's random seed)",
        "train_days": "first simulated days, trained on",
        "heldout_days": "days after them, scored one by one",
        "spec": "the simulated cluster (scenarios.cluster.ClusterSpec)",
        "attacks": "attacks injected (null: all of scenarios.attacks.ATTACKS)",
        "variants": "variants of each attack, each alone in its own day",
        "protocol": "the protocol in words",
    },
    "seeds": [
        {
            "seed": "cluster seed",
            "training": {
                "days": "days trained on",
                "first_day": "first training day",
                "events": "events trained on",
                "windows": "training windows",
                "threshold": "the model's default alert threshold",
                "window": "window length",
                "params": "detector parameters (TrainConfig defaults, seeded)",
            },
            "attack_free_days": [
                {
                    "day": "held-out day",
                    "events": "events read",
                    "windows": "windows scored",
                    "identities": "identities active",
                    "n_alerts": "alerting identity-days that page: new findings, or open findings that got worse",
                    "n_repeats": "alerting identity-days that only repeat an open finding (not paged)",
                    "alerts": [
                        {
                            "identity": "who",
                            "kind": "identity kind",
                            "window_start": "window",
                            "anomaly_score": "score",
                            "named_by": "the benign_* scenario behind it, or 'normal <kind> <identity>'",
                            "reason": "the explanation's first reason",
                        }
                    ],
                    "score_quantiles": "p0..p100 of the day's window scores",
                    "top_scores": "the day's highest window scores",
                    "identity_days": [
                        {
                            "identity": "who",
                            "anomaly_score": "identity-day score, above the lowest threshold of seeds[].budgets",
                            "named_by": "the benign_* scenario of its best window, or 'normal <kind> <identity>'",
                        }
                    ],
                }
            ],
            "alerts_per_attack_free_day": "n_alerts of each attack-free day, in order",
            "repeats_per_attack_free_day": "n_repeats of each attack-free day, in order",
            "attacks": [
                {
                    "scenario": "attack name",
                    "variant": "loud or quiet",
                    "day": "held-out day it was injected into, alone",
                    "missed": "null, or why it could not be ranked (its events fell on another day)",
                    "technique": "MITRE ATT&CK technique",
                    "events": "events of the attack",
                    "identities": "identities the attack's events came from",
                    "windows": "windows holding attack events",
                    "day_identities": "identities of that day",
                    "day_windows": "windows of that day",
                    "other_alerts": "other windows above the threshold that day",
                    "kind": "kind of the attacker identity",
                    "detector": _RANKS
                    | {
                        "alert": "whether its identity-day crossed the default threshold",
                        "identity_day_score": "the attacker's identity-day score (what ranks and alerts)",
                    },
                    "robust_z": _RANKS,
                    "rule": _RANKS,
                }
            ],
            "metrics": {
                "detector": _METRICS | {"attacks_alerted": "attacks whose identity-day crossed the threshold"},
                "robust_z": _METRICS,
                "rule": _METRICS,
            },
            "budgets": [_BUDGET],
            "seconds": "wall time of the seed",
        }
    ],
    "aggregate": {
        "metrics": {
            m: {
                "average_precision": _SPREAD,
                "average_precision_quiet": _SPREAD,
                "recall_at": "k -> mean/min/max",
                "daily_recall_at": "k -> mean/min/max",
                "median_identity_rank": _SPREAD,
            }
            for m in ("detector", "robust_z", "rule")
        },
        "alerts_per_attack_free_day": _SPREAD,
        "attack_free_days": "attack-free days over all seeds",
        "budgets": [
            {
                "alerts_per_day": "alerts per normal day asked (evaluation.budgets.BUDGETS)",
                "identity_days_per_attack_free_day": "mean, fewest and most over all seeds' attack-free days",
                "named": "named_by -> identity-days above the threshold, over all seeds",
                "attacks_alerted": "attacks above the threshold, over all seeds",
                "attacks": "attacks ranked, over all seeds",
            }
        ],
        "attacks": [
            {
                "scenario": "attack name",
                "variant": "loud or quiet",
                "seeds": "the seeds, in the order of the lists below",
                "missed": "seeds where none of its events fell on its day",
                "alerts": "seeds where the detector's threshold was crossed",
                "detector": {"identity_ranks": "per seed", "best_window_ranks": "per seed"},
                "robust_z": {"identity_ranks": "per seed", "best_window_ranks": "per seed"},
                "rule": {"identity_ranks": "per seed", "best_window_ranks": "per seed"},
            }
        ],
    },
    "real": {
        "status": "ran, missing (binaries absent) or failed",
        "note": "why it did not run, empty when it ran",
        "result": "the harness's JSON (attackers, benign_alerts, n_identities, days, error) or null",
    },
}


def missing_fields(doc: object, schema: object = SCHEMA, path: str = "") -> list[str]:
    """Paths of the fields ``schema`` names that ``doc`` lacks (empty when complete)."""
    if isinstance(schema, dict):
        if doc is None and path:
            return []
        if not isinstance(doc, dict):
            return [path or "."]
        out: list[str] = []
        for key, sub in schema.items():
            where = f"{path}.{key}" if path else key
            out += [where] if key not in doc else missing_fields(doc[key], sub, where)
        return out
    if isinstance(schema, list):
        if not isinstance(doc, list):
            return [path]
        out = []
        for i, item in enumerate(doc):
            out += missing_fields(item, schema[0], f"{path}[{i}]")
        return out
    return []


def described(schema: object = SCHEMA, path: str = "") -> list[tuple[str, str]]:
    """(field path, description) for every documented field, for the schema table."""
    if isinstance(schema, dict):
        return [row for key, sub in schema.items() for row in described(sub, f"{path}.{key}" if path else key)]
    if isinstance(schema, list):
        return described(schema[0], f"{path}[]")
    return [(path, str(schema))]
