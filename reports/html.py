"""A self-contained HTML report: one file, inline CSS and SVG, no scripts, no network fetches.

Every value that came from an audit log is escaped with :func:`safe_text.html_text`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from reports import network
from safe_text import html_text as e

if TYPE_CHECKING:  # result types only: reports sit below the pipelines that make them
    from pipelines.score import Finding, ScoreResult, WindowFinding

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2330;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5a6272}table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid #e3e6eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.UNSEEN{color:#b3261e;font-weight:700}.RARE{color:#a05a00;font-weight:700}.USUAL{color:#5a6272}
#ranking{table-layout:fixed}#ranking th:nth-child(1){width:3%}#ranking th:nth-child(2){width:27%}
#ranking th:nth-child(3){width:10%}#ranking th:nth-child(4){width:6%}#ranking th:nth-child(5){width:8%}
#ranking th:nth-child(6){width:7%}td.identity{word-break:break-all}table.calls{font-size:12px}
tr.anomaly td.identity{font-weight:700}tr.suppressed{color:#8a909c}
details{border:1px solid #e3e6eb;border-radius:6px;margin:10px 0;padding:6px 12px}
summary{cursor:pointer;font-weight:600}code{font-size:12px;word-break:break-all}
.bar{fill:#4c72b0}.usual{stroke:#c44e52;stroke-dasharray:4 3}.thr{stroke:#c44e52}
"""


def _svg_activity(activity: pd.DataFrame, usual_requests: float, day_start: pd.Timestamp) -> str:
    """Requests per window over the day as bars, the identity's usual as a dashed line."""
    width, height, pad = 480, 90, 18
    # activity is indexed by window_start
    hours = {
        (cast(pd.Timestamp, ts) - day_start).total_seconds() // 3600: int(n) for ts, n in activity["requests"].items()
    }
    top = max([usual_requests, *hours.values(), 1])
    bar_w = (width - 2 * pad) / 24
    bars = []
    for h in range(24):
        n = hours.get(h, 0)
        bh = (height - 2 * pad) * n / top
        bars.append(
            f'<rect class="bar" x="{pad + h * bar_w:.1f}" y="{height - pad - bh:.1f}" '
            f'width="{bar_w - 2:.1f}" height="{bh:.1f}"><title>{h:02d}:00 {n} requests</title></rect>'
        )
    y = height - pad - (height - 2 * pad) * usual_requests / top
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="requests per hour">'
        + "".join(bars)
        + f'<line class="usual" x1="{pad}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}">'
        f"<title>usual {usual_requests:.0f} requests per window</title></line>"
        f'<text x="{pad}" y="{height - 3}" font-size="10">00:00</text>'
        f'<text x="{width - pad - 28}" y="{height - 3}" font-size="10">23:00</text></svg>'
    )


def _svg_histogram(scores: np.ndarray, threshold: float, threshold_percentile: float) -> str:
    """Identity-days per score bin on a log axis (one alert among thousands stays visible)."""
    width, height, pad, left = 640, 180, 24, 52
    if len(scores) == 0:
        return "<p>No identity-days.</p>"
    lo, hi = float(min(scores.min(), threshold)), float(max(scores.max(), threshold))
    counts, edges = np.histogram(scores, bins=50, range=(lo, hi if hi > lo else lo + 1))
    top = max(float(np.log10(max(counts.max(), 1))), 1.0)
    plot_h = height - 2 * pad

    def y(count: float) -> float:
        # log10(1 + n) keeps a bin of one window above the axis.
        return height - pad - plot_h * math.log10(1 + count) / math.log10(1 + 10**top)

    bw = (width - left - pad) / len(counts)
    bars = "".join(
        f'<rect class="bar" x="{left + i * bw:.1f}" y="{y(c):.1f}" width="{bw - 1:.1f}" '
        f'height="{height - pad - y(c):.1f}"><title>{c} identity-days {edges[i]:.3f}-{edges[i + 1]:.3f}</title></rect>'
        for i, c in enumerate(counts)
    )
    ticks = "".join(
        f'<line x1="{left - 4}" x2="{left}" y1="{y(10**k):.1f}" y2="{y(10**k):.1f}" stroke="#5a6272"/>'
        f'<text x="{left - 6}" y="{y(10**k) + 4:.1f}" font-size="10" text-anchor="end">{10**k:,}</text>'
        for k in range(math.ceil(top) + 1)
        if 10**k <= 10**top * 1.0001
    )
    x = left + (width - left - pad) * (threshold - lo) / ((hi - lo) or 1)
    where = (
        f"{threshold_percentile:.1f}th percentile of held-out identity-days"
        if math.isfinite(threshold_percentile)
        else f"score {threshold:.3f}"
    )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="identity-days per anomaly score">{bars}'
        f'<line x1="{left}" x2="{left}" y1="{pad / 2}" y2="{height - pad}" stroke="#5a6272"/>{ticks}'
        f'<text x="4" y="{pad / 2 + 2}" font-size="10">identity-days</text>'
        f'<line class="thr" x1="{x:.1f}" x2="{x:.1f}" y1="{pad / 2}" y2="{height - pad}"/>'
        f'<text x="{x + 4:.1f}" y="{pad}" font-size="11">threshold: {where}</text>'
        f'<text x="{left}" y="{height - 6}" font-size="10">{lo:.2f}</text>'
        f'<text x="{(width + left) / 2 - 40:.1f}" y="{height - 6}" font-size="10">anomaly score</text>'
        f'<text x="{width - pad - 30}" y="{height - 6}" font-size="10">{hi:.2f}</text></svg>'
    )


def _reasons(f: Finding | WindowFinding) -> str:
    items = [f'<li><span class="{e(r.rarity)}">{e(r.rarity)}</span> {e(r.text)}</li>' for r in f.reasons]
    return "<ul>" + "".join(items) + "</ul>" if items else "<p>No single feature stands out.</p>"


def _calls(calls: pd.DataFrame) -> str:
    if calls.empty:
        return ""
    cols = [c for c in calls.columns if c != "audit_id"]
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    rows = []
    for rec in calls.to_dict("records"):
        cells = []
        for c in cols:
            v = rec[c]
            text = (
                ""
                if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                else (f"{v:%H:%M:%S}" if isinstance(v, pd.Timestamp) else str(v))
            )
            cells.append(f"<td><code>{e(text)}</code></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="calls"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_html(result: ScoreResult, model_label: str = "") -> str:
    """The report as one HTML document."""
    from reports.rules_report import rule_findings_html

    day = pd.Timestamp(result.day, tz="UTC") if result.day else pd.Timestamp.now(tz="UTC").normalize()
    rows = []
    for f in result.findings:
        cls = "suppressed" if f.suppressed_by is not None else ("anomaly" if f.pages else "")
        why = "<br>".join(f'<span class="{e(r.rarity)}">{e(r.rarity)}</span> {e(r.text)}' for r in f.reasons[:3])
        if f.allowlist_note:
            why = f"<strong>{e(f.allowlist_note)}</strong><br>" + why
        if f.finding_note:
            why = f"<strong>{e(f.finding_note)}</strong><br>" + why
        if f.suppressed_by is not None:
            why = f"suppressed by {e(f.suppressed_by.label)}: {e(f.suppressed_by.reason)}<br>" + why
        rows.append(
            f'<tr class="finding {cls}" data-rank="{f.rank}"><td class="num">{f.rank}</td>'
            f'<td class="identity"><a href="#f{f.rank}">{e(f.identity)}</a></td><td>{e(f.kind)}</td>'
            f'<td>{f.n_unusual} of {f.n_windows} unusual</td><td class="num">{f.percentile:.2f}</td>'
            f'<td class="num">{f.requests}</td><td>{why}</td></tr>'
        )
        for w in f.windows if f.n_unusual else []:
            wwhy = "<br>".join(f'<span class="{e(r.rarity)}">{e(r.rarity)}</span> {e(r.text)}' for r in w.reasons[:2])
            rows.append(
                f'<tr class="window"><td></td><td></td><td></td><td>{w.window_start:%H:%M}</td>'
                f'<td class="num">{w.percentile:.2f}</td><td class="num">{w.requests}</td><td>{wwhy}</td></tr>'
            )
    drill = []
    for f in result.findings:
        activity = result.activity.get(f.identity)
        usual = next((r.usual for w in f.windows for r in w.reasons if r.feature == "log_requests"), None)
        usual_requests = (
            float(np.expm1(usual))
            if usual is not None
            else float(activity["requests"].median())
            if activity is not None and len(activity)
            else 0.0
        )
        chart = _svg_activity(activity, usual_requests, day) if activity is not None else ""
        nested = "".join(
            f"<h4>{w.window_start:%H:%M} UTC (percentile {w.percentile:.2f})</h4>{_reasons(w)}"
            f"<h4>API calls, most suspicious first</h4>{_calls(w.calls)}"
            for w in f.windows
        )
        drill.append(
            f'<details id="f{f.rank}"><summary>#{f.rank} {e(f.identity)}: {f.n_unusual} of {f.n_windows} '
            f"windows unusual (percentile {f.percentile:.2f})</summary><h3>Why</h3>{_reasons(f)}"
            f"<h3>Activity today (bars) against its usual (dashed)</h3>{chart}"
            f"{network.finding_html(result, f.identity)}<h3>Windows</h3>{nested}</details>"
        )
    hidden = result.windows[result.windows["suppressed"]].reset_index()
    suppressed = "".join(
        f'<tr class="suppressed"><td class="identity">{e(w.identity)}</td><td>{w.window_start:%H:%M}</td>'
        f'<td class="num">{w.percentile:.2f}</td><td>{e(w.suppressed_by)}</td><td>{e(w.suppressed_reason)}</td></tr>'
        for w in hidden.itertuples(index=False)
    )
    if suppressed:  # hidden from alerts, never from the report
        suppressed = (
            f'<h2>Suppressed by the allowlist ({len(hidden)})</h2><table id="suppressed"><thead><tr>'
            "<th>identity</th><th>window</th><th>percentile</th><th>entry</th><th>reason</th></tr>"
            f"</thead><tbody>{suppressed}</tbody></table>"
        )
    expired = "".join(f"<li>{e(x.reason)} (expired {x.expires})</li>" for x in result.expired_allowlist)
    scores = result.identities["anomaly_score"].to_numpy(dtype=float) if len(result.identities) else np.zeros(0)
    histogram = _svg_histogram(scores, result.threshold, result.threshold_percentile)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>kaad report {e(result.day)}</title><style>{CSS}</style></head><body>
<h1>kaad: who did something new on {e(result.day)}</h1>
<p class="meta">{len(result.windows)} windows of {result.windows.index.get_level_values(0).nunique()} identities scored;
{len(result.identities)} identity-days,
{result.n_alerts} alerting (all explained below; {result.n_repeats} of them repeat an open finding);
{result.n_suppressed} suppressed by the allowlist;
{result.stats.n_events:,} events read, {result.stats.n_rejected:,} rejected. {e(model_label)}</p>
<h2>Ranking</h2>
<table id="ranking"><thead><tr><th>#</th><th>identity</th><th>kind</th><th>windows</th><th>percentile</th>
<th>requests</th><th>why</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<h2>Drill-down</h2>{"".join(drill)}
{rule_findings_html(result)}
{network.summary_html(result)}
{suppressed}
<h2>Score distribution</h2>{histogram}
{f"<h2>Expired allowlist entries (not applied)</h2><ul>{expired}</ul>" if expired else ""}
</body></html>
"""


def write_html(result: ScoreResult, path: Path, model_label: str = "") -> None:
    path.write_text(render_html(result, model_label), encoding="utf-8")
