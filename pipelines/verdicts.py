"""How a day's windows and identity-days are judged: calibrated scores, the allowlist, the threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.detector import percentiles, window_sources
from models.explain import FOREST
from models.open_findings import note
from models.persistence import ModelBundle
from pipelines.allowlist import Allowlist, guarded_reasons
from pipelines.day_windows import Seen


def window_scores(
    windows: pd.DataFrame, bundle: ModelBundle, rarity=None, calibrator=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each window's p-value, evidence and percentile, and the terms it shares its evidence among.

    The terms are the forest's calibrated evidence and the rarity's, the latter split among
    the action families and contexts in proportion to their surprisal.
    """
    assert bundle.calibrator is not None  # load_bundle refuses bundles without one
    rarity = bundle.rarity if rarity is None else rarity
    calibrator = bundle.calibrator if calibrator is None else calibrator
    surprisal = rarity.transform_shared(windows) if len(windows) else np.zeros((0, len(rarity.terms_)))
    sources = window_sources(bundle.detector, rarity, windows, surprisal)
    # As a log: p underflows to 0 far beyond every held-out window (the evidence is -log p).
    log_p = calibrator.combined_log_p_values(sources) if len(sources) else np.zeros(0)
    p = np.exp(log_p)
    evidence = calibrator.transform(sources) if len(sources) else np.zeros((0, 2))
    total = surprisal.sum(axis=1, keepdims=True)
    share = np.divide(surprisal, total, out=np.zeros_like(surprisal), where=total > 0)
    terms = pd.DataFrame(share * evidence[:, [1]], index=windows.index, columns=[f"rarity_{t}" for t in rarity.terms_])
    terms.insert(0, FOREST, evidence[:, 0])
    terms["rarity"] = np.where(total[:, 0] > 0, 0.0, evidence[:, 1])  # rarity evidence with no family to name
    scored = pd.DataFrame({"p_value": p, "anomaly_score": -log_p, "percentile": 100.0 * (1.0 - p)}, index=windows.index)
    return scored, terms


def apply_allowlist(out: pd.DataFrame, values: Seen, allowlist: Allowlist | None, bundle: ModelBundle) -> dict:
    """Mark the windows the allowlist hides (in place); return (identity, window_start) -> Decision.

    Only windows some entry matches are looked at further: their deviations say which
    guarded reasons they carry, and an entry hides a window only if it covers all of them.
    """
    for col, empty in (("suppressed", False), ("suppressed_by", ""), ("suppressed_reason", ""), ("allowlist_note", "")):
        out[col] = empty
    if allowlist is None or out.empty:
        return {}
    keys = [key for key in out.index if any(e.matches(key[0], *values.get(key, ([], []))) for e in allowlist.entries)]
    if not keys:
        return {}
    feat = out.loc[keys, bundle.feature_names]
    dev = pd.DataFrame(bundle.detector[0].transform(feat), index=feat.index, columns=bundle.feature_names)
    flags = guarded_reasons(feat, dev)
    decisions = {}
    for key, row in zip(keys, flags.to_numpy(), strict=True):
        guarded = [name for name, on in zip(flags.columns, row, strict=True) if on]
        decisions[key] = allowlist.decide(key[0], *values.get(key, ([], [])), guarded)
    hidden = {k: d.entry for k, d in decisions.items() if d.entry is not None}
    noted = [k for k, d in decisions.items() if d.note]
    if hidden:
        out.loc[list(hidden), "suppressed"] = True
        out.loc[list(hidden), "suppressed_by"] = [e.label for e in hidden.values()]
        out.loc[list(hidden), "suppressed_reason"] = [e.reason for e in hidden.values()]
    if noted:
        out.loc[noted, "allowlist_note"] = [decisions[k].note for k in noted]
    return decisions


def day_table(
    days: pd.DataFrame, out: pd.DataFrame, bundle: ModelBundle, cut: float, alert_percentile: float | None
) -> pd.DataFrame:
    """Identity-days with percentile, alert and suppression; an identity-day is suppressed when
    every window that made it unusual (all of them, if none did) is."""
    days = days.copy()
    # Strictly below: most held-out identity-days score 0 (nothing unusual), and a day with
    # nothing unusual is not at the 100th percentile of them.
    days["percentile"] = percentiles(bundle.train_scores, days["anomaly_score"].to_numpy(), side="left")
    frame = out[["is_unusual", "suppressed", "suppressed_by", "log_requests"]].reset_index()
    frame["day"] = pd.DatetimeIndex(frame["window_start"]).normalize()
    some_unusual = frame.groupby(["identity", "day"], sort=False)["is_unusual"].transform("any")
    counted = frame[frame["is_unusual"] | ~some_unusual].groupby(["identity", "day"], sort=False)
    days["suppressed"] = counted["suppressed"].all().reindex(days.index, fill_value=False).astype(bool)
    requests = np.expm1(frame["log_requests"]).groupby([frame["identity"], frame["day"]], sort=False).sum()
    days["requests"] = requests.reindex(days.index, fill_value=0.0).round().astype(int)
    days["is_anomaly"] = days["anomaly_score"] > cut
    alert = days["is_anomaly"].copy()
    if alert_percentile is not None:
        alert |= days["percentile"] >= alert_percentile
    days["is_alert"] = alert
    columns = ["anomaly_score", "percentile", "is_anomaly", "is_alert", "n_windows", "n_unusual", "suppressed"]
    return days[[*columns, "requests"]]


def with_verdicts(days: pd.DataFrame, verdicts: dict, labels: dict | None = None) -> pd.DataFrame:
    """The identity-day table with each alerting identity-day's finding (:mod:`models.open_findings`):
    ``finding`` new, worse or repeat ("" when it does not alert), ``first_seen``, ``days_open``,
    ``finding_note``."""
    days = days.copy()
    who = days.index.get_level_values("identity")
    got = [
        verdicts.get(i) if alert and not hidden else None
        for i, alert, hidden in zip(who, days["is_alert"], days["suppressed"], strict=True)
    ]
    days["finding"] = ["" if v is None else v.status for v in got]
    days["first_seen"] = [None if v is None else v.first_seen for v in got]
    days["days_open"] = [0 if v is None else v.days for v in got]
    days["finding_note"] = ["" if v is None else note(v, labels) for v in got]
    return days
