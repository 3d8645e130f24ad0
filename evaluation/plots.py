"""One PNG per seed: each held-out day's score distribution, the threshold, the attacks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def plot_seed(seed: dict, path: Path) -> None:
    """Draw ``seed`` (one item of detection.json's ``seeds``) into ``path``."""
    days = [d["day"] for d in seed["attack_free_days"]]
    stats = []
    for d in seed["attack_free_days"]:
        q = d["score_quantiles"]
        stats.append(
            {
                "med": q["p50"],
                "q1": q["p25"],
                "q3": q["p75"],
                "whislo": q["p0"],
                "whishi": q["p99"],
                "fliers": [v for v in d["top_scores"] if v > q["p99"]],
                "label": d["day"][5:],
            }
        )
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.bxp(stats, showfliers=True, flierprops={"marker": ".", "color": "#555555", "markersize": 4})
    ax.axhline(seed["training"]["threshold"], color="#c44e52", linestyle="--", linewidth=1, label="threshold")
    styles = {"loud": ("^", "#dd8452"), "quiet": ("o", "#55a868")}
    shown = set()
    for a in seed["attacks"]:
        if a["missed"]:
            continue
        x = days.index(a["day"]) + 1 + (0.18 if a["variant"] == "quiet" else -0.18)
        y = a["detector"]["best_score"]
        marker, color = styles.get(a["variant"], ("s", "#8172b3"))
        label = f"attack ({a['variant']})" if a["variant"] not in shown else None
        shown.add(a["variant"])
        ax.scatter([x], [y], marker=marker, color=color, edgecolor="black", linewidth=0.4, zorder=3, label=label)
        ax.annotate(a["scenario"], (x, y), xytext=(3, 0), textcoords="offset points", fontsize=5, va="center")
    ax.set_xlabel("held-out day (attack-free scores; each attack was scored alone in that day)")
    ax.set_ylabel("anomaly_score")
    ax.set_title(f"seed {seed['seed']}: window scores per held-out day")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
