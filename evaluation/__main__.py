"""`make eval`: python -m evaluation [--size quick|full] [--seeds 1,2,3] [--real auto|skip|FILE]."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from errors import KaadError
from evaluation import real as real_harness
from evaluation.config import preset
from evaluation.outputs import write_outputs
from evaluation.suite import run_evaluation

ROOT = Path(__file__).resolve().parent.parent
app = typer.Typer(add_completion=False)


@app.command()
def main(
    size: Annotated[
        str, typer.Option(help="quick (minutes, a small cluster) or full (the published numbers).")
    ] = "quick",
    seeds: Annotated[str, typer.Option(help="Comma-separated cluster seeds (default: the size's).")] = "",
    real: Annotated[
        str, typer.Option(help="auto: run tests/kube/eval_real.py when its binaries exist; skip; or a JSON file.")
    ] = "auto",
    work: Annotated[Path, typer.Option(help="Scratch directory for the simulated logs.")] = ROOT / "out" / "eval",
    docs: Annotated[Path, typer.Option(help="Where detection.json, detection.md and the plots go.")] = ROOT / "docs",
    track: Annotated[bool, typer.Option(help="Log the run to MLflow (experiment kaad-eval).")] = True,
    render_only: Annotated[bool, typer.Option(help="Rewrite detection.md and the plots from detection.json.")] = False,
) -> None:
    """Measure the detector on simulated clusters (and a real API server) and write docs/detection.*.

    Example: python -m evaluation --size full
    """
    try:
        if render_only:
            doc = json.loads((docs / "detection.json").read_text())
            for path in write_outputs(doc, docs):
                typer.echo(f"wrote {path}")
            return
        config = preset(size, tuple(int(s) for s in seeds.split(",") if s.strip()) or None)
        shutil.rmtree(work, ignore_errors=True)
        command = "make eval-full" if size == "full" else "make eval"
        doc = run_evaluation(config, work, generated_by=command)
        if real == "skip":
            doc["real"] = {"status": "missing", "note": "skipped on request (--real skip)", "result": None}
        elif real == "auto":
            doc["real"] = real_harness.run(work / "real.json")
        else:
            doc["real"] = real_harness.entry(real_harness.load(Path(real)))
        files = write_outputs(doc, docs)
        if track:
            os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
            from evaluation.tracking import log_evaluation

            run_id = log_evaluation(doc, files)
            typer.echo(f"MLflow run {run_id} (experiment kaad-eval)")
    except (KaadError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    agg = doc["aggregate"]
    typer.echo(
        f"{len(config.seeds)} seeds: detector AP {agg['metrics']['detector']['average_precision']['mean']:.3f}, "
        f"alerts per attack-free day {agg['alerts_per_attack_free_day']['mean']:.1f}; real harness: "
        f"{doc['real']['status']} -> {docs / 'detection.md'}"
    )


if __name__ == "__main__":
    app()
