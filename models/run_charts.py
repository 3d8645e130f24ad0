"""The training run's pictures and tables: score histogram, attack ranks, precision-recall curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def score_histogram(scores: np.ndarray, threshold: float, path: Path) -> None:
    """Held-out identity-day scores with the alert threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(scores, bins=80, color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("anomaly_score (higher = more anomalous)")
    ax.set_ylabel("held-out identity-days")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def attack_ranks(evaluation, baselines: dict) -> pd.DataFrame:
    """One row per attack: its best window's rank in its day, by the model and by each baseline."""
    from safe_text import csv_cell

    table = evaluation.scenario_table()
    if table.empty:
        return table
    table = table.rename(columns={"scenario": "attack", "best_rank_in_day": "rank_in_day", "best_rank": "rank"})
    for name, report in baselines.items():
        ranks = {s.scenario: s.best_rank_in_day for s in report.scenarios}
        table[f"rank_in_day_{name}"] = table["attack"].map(ranks)
    # Scenario names come from a labels file: no cell may start a spreadsheet formula.
    table["attack"] = table["attack"].map(csv_cell)
    return table.sort_values(["rank_in_day", "attack"]).reset_index(drop=True)


def attack_ranks_chart(table: pd.DataFrame, path: Path) -> None:
    """A bar per attack: the rank in its day of its best window (1 is the top), model and baselines."""
    plt = _pyplot()
    columns = [c for c in table.columns if c == "rank_in_day" or c.startswith("rank_in_day_")]
    height = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(table) * max(1, len(columns) / 2)))
    y = np.arange(len(table))
    for i, column in enumerate(columns):
        label = "model" if column == "rank_in_day" else column.removeprefix("rank_in_day_")
        ranks = table[column].to_numpy(dtype=float)
        # From 0.5 on a log axis: rank 1, the best, still gets a bar; each bar says its rank.
        bars = ax.barh(y + i * height, ranks - 0.5, left=0.5, height=height, label=label)
        ax.bar_label(bars, labels=["" if r != r else f"{r:.0f}" for r in ranks], padding=2, fontsize=8)
    ax.set_yticks(y + height * (len(columns) - 1) / 2, [str(a) for a in table["attack"]])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(left=0.5)
    ax.set_xlabel("rank in its day of the attack's best window (1 = top; lower is better)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def precision_recall_chart(evaluation, baselines: dict, path: Path) -> bool:
    """The model's precision-recall curve, and the baselines'; False when nothing was labelled."""
    curves = {"model": evaluation, **baselines}
    if all(getattr(r, "curve", None) is None for r in curves.values()):
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, report in curves.items():
        if getattr(report, "curve", None) is None:
            continue
        ax.step(
            report.curve["recall"],
            report.curve["precision"],
            where="post",
            label=f"{name} (AP {report.average_precision:.3f})",
            linewidth=2.2 if name == "model" else 1.2,
        )
    ax.set_xlabel("recall (share of attack windows found)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
