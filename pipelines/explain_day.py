"""Explain a day's top and alerting identity-days: their reasons and their unusual windows."""

from __future__ import annotations

import pandas as pd

from features.enrich import identity_kind
from models.explain import explain, term_reasons, top_calls
from pipelines.score_result import Finding, WindowFinding


def explain_findings(
    head, positions, out, found, terms, marked, decisions, bundle, rarity, texts=None
) -> list[Finding]:
    """Explain each identity-day of ``head`` and its unusual windows (its top one at least)."""
    if not len(head):
        return []
    rank_of = {key: i + 1 for i, key in enumerate(out.index)}
    by_window = marked.groupby(["identity", "window_start"], sort=False, observed=True).indices if len(marked) else {}
    baseline = bundle.detector[0]
    findings = []
    for position, ((identity, day), row) in zip(positions, head.iterrows(), strict=True):
        kind = identity_kind(pd.DataFrame({"identity": [identity]})).iloc[0]
        nested = found.windows_of(identity, day)
        keep = nested[nested["contribution"] > 0]
        keys = list((keep if len(keep) else nested.head(1)).index)
        windows = []
        if keys:  # an identity-day that only outside evidence names has no windows
            feat = out.loc[keys, bundle.feature_names]
            dev = pd.DataFrame(baseline.transform(feat), index=feat.index, columns=bundle.feature_names)
            usual = pd.DataFrame(baseline.usual(feat), index=feat.index, columns=bundle.feature_names)
        for key in keys:
            events = marked.iloc[by_window.get(key, [])]
            w = out.loc[key]
            forest = explain(
                w[bundle.feature_names],
                dev.loc[key],
                usual.loc[key],
                events,
                bundle.profiles.get(identity, {}),
                identity,
            )
            decision = decisions.get(key)
            windows.append(
                WindowFinding(
                    rank_of[key],
                    identity,
                    kind,
                    key[1],
                    float(w["anomaly_score"]),
                    float(w["percentile"]),
                    bool(w["is_unusual"]),
                    bool(w["is_anomaly"]),
                    len(events),
                    term_reasons(list(terms.loc[key].items()), rarity, identity, forest),
                    top_calls(events),
                    None if decision is None else decision.entry,
                    is_alert=bool(w["is_alert"]),
                    allowlist_note=str(w["allowlist_note"]),
                )
            )
        # The day's reasons: its terms, largest first; the forest's part said by its top window.
        day_terms = found.reasons(identity, day, top=8)
        forest = [r for r in windows[0].reasons if r.family not in ("rarity", "behaviour")] if windows else []
        said = {term: text for (who, when, term), text in (texts or {}).items() if who == identity and when == day}
        reasons = term_reasons(day_terms, rarity, identity, forest, texts=said)
        suppressed = next((w.suppressed_by for w in windows if w.suppressed_by is not None), None)
        findings.append(
            Finding(
                int(position) + 1,
                identity,
                kind,
                pd.Timestamp(day),
                float(row["anomaly_score"]),
                float(row["percentile"]),
                bool(row["is_anomaly"]),
                bool(row["is_alert"]),
                int(row["n_windows"]),
                int(row["n_unusual"]),
                int(row["requests"]),
                reasons,
                windows,
                suppressed if bool(row["suppressed"]) else None,
                allowlist_note=next((w.allowlist_note for w in windows if w.allowlist_note), ""),
                status=str(row["finding"]),
                first_seen=row["first_seen"],
                days_open=int(row["days_open"]),
                finding_note=str(row["finding_note"]),
            )
        )
    return findings
