"""`make demo`: the whole job end to end on built-in data.

Simulate three weeks of a cluster with every attack injected on the last day, ingest it, and
run what exists of the detector on it. Steps that later work delivers say so plainly.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pipelines.ingest import ingest
from reports.ingest_summary import render_summary
from scenarios.attacks import ATTACKS
from scenarios.simulate import simulate

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "out" / "demo"


def main() -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.rule("1. simulate 21 days of an EKS cluster, every attack on day 21")
    sim = simulate(DEMO_DIR / "logs", days=21, attacks=list(ATTACKS), variant="loud", seed=7)
    console.print(f"{sim.n_events:,} events in {len(sim.files)} files; labels in {sim.labels}")
    console.rule("2. ingest")
    result = ingest([str(f) for f in sim.files], collect=False)
    console.print(render_summary(result.stats, top=5))
    for step in ("3. train and log to MLflow", "4. score day 21 and report"):
        console.rule(step)
        console.print("not yet built")


if __name__ == "__main__":
    main()
