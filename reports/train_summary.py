"""What `kaad train` and `kaad runs` print."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Group
from rich.table import Table

from safe_text import terminal_text


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _labels_line(report) -> str:
    if not report.n_unmatched_labels:
        return f"{report.n_labels:,}, all matched an evaluated window"
    return (
        f"{report.n_labels:,}, of which {report.n_unmatched_labels:,} matched no evaluated window "
        "(unknown auditID, identity or time outside the data): not counted as attacks"
    )


def _time_range(bundle) -> str:
    """The training period in plain UTC minutes, its end the end of the last window."""
    start = pd.Timestamp(bundle.training_start)
    end = pd.Timestamp(bundle.training_end) + pd.tseries.frequencies.to_offset(bundle.window)
    return f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC (end exclusive)"


def _range_line(counts) -> str:
    parts = [f"{counts.kept:,} events"]
    if counts.before:
        parts.append(f"{counts.before:,} before --since")
    if counts.after:
        parts.append(f"{counts.after:,} at or after --until")
    return f"{parts[0]}; left out: {', '.join(parts[1:])}"


def _threshold_range(alert) -> str:
    """The range of alerts per normal day the held-out sample allows (models/threshold.py)."""
    if alert is None or alert.n_identity_days == 0:
        return ""  # a bundle saved before the range was recorded
    low, high = alert.alerts_per_day_range
    return f" of {alert.n_identity_days} identity-days (95% range on new normal days: {low:.1f} to {high:.1f})"


def render_training(result, bundle_path, digest: str, tracked) -> Group:
    """Summary of a training run: data, model, evaluation, where it went."""
    m = result.metrics()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(
        "history",
        f"{int(m['events']):,} events ({int(m['rejects']):,} rejected, "
        f"{int(m['merged']):,} merged), {_time_range(result.bundle)}",
    )
    if result.in_range.left_out:
        grid.add_row("trained on", _range_line(result.in_range))
    grid.add_row(
        "windows",
        f"{int(m['windows']):,} of {int(m['identities'])} identities, {len(result.bundle.feature_names)} features",
    )
    grid.add_row(
        "threshold",
        f"{result.bundle.threshold:.4f} on identity-day scores: asked {m.get('alerts_per_day', float('nan')):g} "
        f"alert(s) per day, {m.get('expected_alerts_per_day', float('nan')):.2f} on "
        f"{int(m.get('held_out_days', 0))} held-out day(s)" + _threshold_range(result.bundle.alert),
    )
    warning = result.bundle.alert.warning() if result.bundle.alert is not None else None
    if warning:
        grid.add_row("[yellow]warning[/yellow]", terminal_text(warning))
    if result.split is not None:
        grid.add_row(
            "days",
            f"{len(result.split.warmup)} warm-up, {len(result.split.fit)} fit, {len(result.split.held_out)} held out; "
            f"{len(result.constant_features)} feature(s) constant over the fit days",
        )
    grid.add_row("bundle", f"{bundle_path} (sha256 {digest[:16]}...)")
    parts = [grid]
    if result.evaluation is not None:
        ev = result.evaluation
        grid.add_row(
            "evaluation",
            f"average precision {ev.average_precision:.3f}, ROC AUC {ev.roc_auc:.3f}, "
            f"recall@10 {ev.recall_at[10]:.2f}, @50 {ev.recall_at[50]:.2f} "
            f"({ev.n_positive} attack windows of {ev.n_windows})",
        )
        grid.add_row("labels", _labels_line(ev))
        if result.eval_set_hash:
            grid.add_row("evaluation set", f"sha256 {result.eval_set_hash[:16]}... (events and labels)")
        for name, rep in result.baselines.items():
            grid.add_row(
                f"  baseline {name}", f"average precision {rep.average_precision:.3f}, ROC AUC {rep.roc_auc:.3f}"
            )
        table = Table(title="attack scenarios: best rank", title_justify="left", show_edge=False)
        for col in ("scenario", "windows", "rank", "rank in day", "false positives above"):
            table.add_column(col, justify="left" if col == "scenario" else "right")
        for s in ev.scenarios:
            table.add_row(
                terminal_text(s.scenario),
                str(s.windows),
                str(s.best_rank),
                str(s.best_rank_in_day),
                str(s.false_positives_above),
            )
        if ev.scenarios:
            parts.append(table)
    if tracked is not None:
        grid.add_row(
            "mlflow run",
            f"{tracked.run_id} ({tracked.run_name})" if tracked.run_name else tracked.run_id,
        )
        # In kaad's words what MLflow would print itself ("Created version '1' of model ...").
        registered = (
            f"registered as {tracked.model_name} version {tracked.model_version}"
            if tracked.model_version is not None
            else "not registered"
        )
        grid.add_row("model", f"{registered}; {tracked.promotion_note}")
        grid.add_row("compare", "kaad ui --open  (opens the runs table: one row per model, key metrics)")
    return Group(*parts)


def render_evaluation(report) -> Group:
    """An evaluation report: the headline metrics and each scenario's best rank."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("windows", f"{report.n_windows:,} ({report.n_positive} labelled attack windows)")
    head.add_row("labels", _labels_line(report))
    head.add_row("average precision", _fmt(report.average_precision))
    head.add_row("ROC AUC", _fmt(report.roc_auc))
    head.add_row("recall", ", ".join(f"@{k} {v:.2f}" for k, v in report.recall_at.items()))
    table = Table(show_edge=False)
    for col in ("scenario", "windows", "rank", "rank in day", "false positives above"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for s in report.scenarios:
        table.add_row(
            terminal_text(s.scenario),
            str(s.windows),
            str(s.best_rank),
            str(s.best_rank_in_day),
            str(s.false_positives_above),
        )
    return Group(head, table)


def render_runs(table: pd.DataFrame) -> Table:
    """Recent runs as a table, its columns named as the metrics in MLflow's runs table."""
    out = Table(show_edge=False)
    for col in ("run_id", "name", "kind", "started", "train_windows", "ap", "roc_auc", "threshold"):
        out.add_column(col)
    row: Any  # a namedtuple of the columns above; pandas-stubs types its fields as any scalar
    for row in table.itertuples(index=False):
        out.add_row(
            row.run_id[:12],
            terminal_text(row.name or ""),
            row.kind,
            f"{row.started:%Y-%m-%d %H:%M}",
            _fmt(None if row.train_windows is None or math.isnan(row.train_windows) else int(row.train_windows)),
            _fmt(row.ap),
            _fmt(row.roc_auc),
            _fmt(row.threshold),
        )
    return out
