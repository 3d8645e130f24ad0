"""`make demo`: the whole job end to end on built-in data.

Steps that later work delivers say so plainly instead of pretending.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pipelines.ingest import ingest
from reports.ingest_summary import render_summary

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    console = Console(highlight=False)
    console.rule("kaad demo: ingest the narrated sample events")
    result = ingest([str(ROOT / "tests" / "data" / "audit")])
    console.print(render_summary(result.stats))
    for step in ("simulate a cluster", "train and log to MLflow", "score a day and report"):
        console.print(f"[dim]{step}: not yet built[/dim]")


if __name__ == "__main__":
    main()
