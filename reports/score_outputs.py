"""The daily ranking as a terminal table and as CSV, JSON and Parquet files.

Every attacker-controlled string goes through :mod:`safe_text` for its format.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from safe_text import csv_cell, printable, terminal_text

if TYPE_CHECKING:  # result types only: reports sit below the pipelines that make them
    from pipelines.score import Finding, ScoreResult

ROW_FIELDS = (
    "rank",
    "identity",
    "kind",
    "window_start",
    "anomaly_score",
    "percentile",
    "is_anomaly",
    "is_alert",
    "requests",
    "suppressed",
    "suppressed_by",
    "suppressed_reason",
    "allowlist_note",
    "reasons",
)


def _window(f: Finding) -> str:
    return f"{f.window_start:%Y-%m-%d %H:%M}"


def _alert_mark(f: Finding) -> Text:
    """Whether the row alerts, in words (bold alone is lost in a log file or a pipe)."""
    if not f.is_alert:
        return Text("")
    if f.suppressed_by is not None:
        return Text("suppressed", style="dim")
    return Text("ALERT", style="bold red")


def render_table(result: ScoreResult, reasons: int = 3, top: int | None = None) -> Table:
    """The ranked findings for a terminal, the first ``top`` of them (all by default)."""
    table = Table(title=f"kaad: {result.day} ranked by anomaly", title_justify="left", show_lines=True)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("identity", "left"),
        ("kind", "left"),
        ("window (UTC)", "left"),
        ("pct", "right"),
        ("alert", "left"),
        ("why", "left"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    for f in result.findings:
        if top is not None and f.rank > top:
            break
        why = Text()
        if f.suppressed_by is not None:
            why.append(f"suppressed by {printable(f.suppressed_by.label)}: ", style="dim")
            why.append_text(terminal_text(f.suppressed_by.reason, max_len=120, style="dim"))
        if f.allowlist_note:
            why.append_text(terminal_text(f.allowlist_note, max_len=200, style="bold"))
        for i, reason in enumerate(f.reasons[:reasons]):
            if i or f.suppressed_by is not None or f.allowlist_note:
                why.append("\n")
            why.append(f"[{reason.rarity}] ", style="bold red" if reason.rarity == "UNSEEN" else "yellow")
            why.append_text(terminal_text(reason.text, max_len=160))
        style = "bold" if f.is_anomaly and f.suppressed_by is None else ""
        table.add_row(
            str(f.rank),
            terminal_text(f.identity, max_len=80, style=style),
            f.kind,
            _window(f),
            f"{f.percentile:.2f}",
            _alert_mark(f),
            why,
        )
    return table


def render_suppressed(result: ScoreResult) -> Table | None:
    """Every suppressed window, grouped by identity and entry: hidden from alerts, not from view."""
    hidden = result.windows[result.windows["suppressed"]]
    if hidden.empty:
        return None
    table = Table(title=f"suppressed by the allowlist: {len(hidden)} window(s)", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("identity", "left"),
        ("entry", "left"),
        ("windows", "right"),
        ("peak pct", "right"),
        ("reason", "left"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    groups = hidden.reset_index().groupby(["identity", "suppressed_by"], sort=False)
    for (identity, label), part in groups:
        table.add_row(
            terminal_text(identity, max_len=80),
            terminal_text(label),
            str(len(part)),
            f"{part['percentile'].max():.2f}",
            terminal_text(part["suppressed_reason"].iloc[0], max_len=120),
        )
    return table


def more_alerts(result: ScoreResult, top: int, written: list[Path]) -> str:
    """One line for alerting windows beyond the terminal's ``top`` rows, and where they are."""
    n = sum(1 for f in result.findings if f.rank > top and f.is_alert and f.suppressed_by is None)
    if not n:
        return ""
    where = ", ".join(str(p) for p in written) if written else "no file (add --format csv, json, parquet or html)"
    return f"{n} more alerting window(s) beyond --top {top}, explained in {where}"


def finding_rows(result: ScoreResult) -> list[dict]:
    """One plain row per window in rank order; explained windows carry their reasons."""
    rows: list[dict[str, Any]] = []
    explained = {(f.identity, f.window_start) for f in result.findings}
    for f in result.findings:
        rows.append(
            {
                "rank": f.rank,
                "identity": f.identity,
                "kind": f.kind,
                "window_start": f.window_start,
                "anomaly_score": f.anomaly_score,
                "percentile": f.percentile,
                "is_anomaly": f.is_anomaly,
                "is_alert": f.is_alert,
                "requests": f.requests,
                "suppressed": f.suppressed_by is not None,
                "suppressed_by": "" if f.suppressed_by is None else f.suppressed_by.label,
                "suppressed_reason": "" if f.suppressed_by is None else f.suppressed_by.reason,
                "allowlist_note": f.allowlist_note,
                "reasons": " | ".join(r.line() for r in f.reasons),
            }
        )
    kinds = {}
    if len(result.windows):
        from features.enrich import identity_kind

        names = pd.Series(result.windows.index.get_level_values("identity").unique())
        kinds = dict(zip(names, identity_kind(pd.DataFrame({"identity": names})), strict=True))
    # result.windows is in rank order, so a window's rank is its position.
    for rank, (key, w) in enumerate(result.windows.iterrows(), start=1):
        identity, start = cast(tuple[str, pd.Timestamp], key)  # windows are indexed (identity, window_start)
        if (identity, start) in explained:
            continue
        rows.append(
            {
                "rank": rank,
                "identity": identity,
                "kind": kinds.get(identity, ""),
                "window_start": start,
                "anomaly_score": float(w["anomaly_score"]),
                "percentile": float(w["percentile"]),
                "is_anomaly": bool(w["is_anomaly"]),
                "is_alert": bool(w["is_alert"]),
                "requests": int(round(math.expm1(w["log_requests"]))),
                "suppressed": bool(w["suppressed"]),
                "suppressed_by": str(w["suppressed_by"]),
                "suppressed_reason": str(w["suppressed_reason"]),
                "allowlist_note": str(w["allowlist_note"]),
                "reasons": "",
            }
        )
    rows.sort(key=lambda row: row["rank"])
    return rows


def write_csv(result: ScoreResult, path: Path) -> None:
    """CSV for spreadsheets: text cells that could start a formula are quoted with '."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ROW_FIELDS)
        for row in finding_rows(result):
            writer.writerow([csv_cell(printable(row[k])) if isinstance(row[k], str) else row[k] for k in ROW_FIELDS])


def _calls_json(calls: pd.DataFrame) -> list[dict]:
    out = []
    for rec in calls.to_dict("records"):
        out.append(
            {
                k: (
                    None
                    if v is None or (isinstance(v, float) and v != v) or v is pd.NA
                    else str(v)
                    if not isinstance(v, int | float | bool)
                    else v
                )
                for k, v in rec.items()
            }
        )
    return out


def write_json(result: ScoreResult, path: Path) -> None:
    """JSON: the findings with reasons and API calls, then the other windows' scores."""
    doc = {
        "day": str(result.day),
        "threshold": result.threshold,
        "windows": len(result.windows),
        "alerts": result.n_alerts,
        "suppressed": result.n_suppressed,
        "findings": [
            {
                "rank": f.rank,
                "identity": f.identity,
                "kind": f.kind,
                "window_start": f.window_start.isoformat(),
                "anomaly_score": f.anomaly_score,
                "percentile": f.percentile,
                "is_anomaly": f.is_anomaly,
                "is_alert": f.is_alert,
                "requests": f.requests,
                "suppressed_by": None if f.suppressed_by is None else f.suppressed_by.label,
                "suppressed_reason": None if f.suppressed_by is None else f.suppressed_by.reason,
                "allowlist_note": f.allowlist_note or None,
                "reasons": [
                    {
                        "feature": r.feature,
                        "rarity": r.rarity,
                        "value": r.value,
                        "usual": r.usual,
                        "deviation": r.deviation,
                        "text": r.text,
                    }
                    for r in f.reasons
                ],
                "calls": _calls_json(f.calls),
            }
            for f in result.findings
        ],
        "all_windows": [
            {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()}
            for row in finding_rows(result)
        ],
    }
    # json.dumps escapes nothing HTML-ish; JSON consumers get the exact strings, as they should.
    path.write_text(json.dumps(doc, indent=1, default=str))


def write_parquet(result: ScoreResult, path: Path) -> None:
    """Parquet: one row per window with its reasons."""
    pd.DataFrame(finding_rows(result), columns=list(ROW_FIELDS)).to_parquet(path, index=False)
