"""kaad's command line: thin typer commands over the library.

Exit codes: 0 success, 1 findings at or above ``--fail-on`` (score), 2 errors (bad input
under ``--strict``, missing files, incompatible models).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from errors import KaadError

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Kubernetes Audit Anomaly Detector: who in the cluster is doing "
                       "something they have never done before.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _root() -> None:
    """Kubernetes Audit Anomaly Detector."""
    # MLflow phones home by default; kaad's processes never do.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    from reports.safe_text import printable

    err.print(f"error: {printable(exc)}", markup=False)
    return typer.Exit(code=code)


@app.command("ingest")
def ingest_cmd(
    inputs: Annotated[list[str], typer.Argument(
        help="Audit log files, directories, globs, or - for stdin.", show_default=False)],
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Write the normalised event table as Parquet.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 2 if any input was rejected.")] = False,
    rejects: Annotated[Path | None, typer.Option(
        help="Write every reject (file, line, kind, detail) as CSV.")] = None,
    top: Annotated[int, typer.Option(help="How many top identities/verbs/codes to show.")] = 10,
) -> None:
    """Read audit logs into kaad's event table and summarise them.

    Reads JSON lines, .gz, EventList, CloudWatch subscription/Firehose payloads, CloudWatch
    export lines, AKS diagnostic records and pretty-printed files; the format is detected.

    Example: kaad ingest logs/ --out events.parquet --strict
    """
    from pipelines.ingest import ingest
    from reports.ingest_summary import print_rejects, render_summary
    from reports.progress import byte_progress
    from reports.reject_file import RejectWriter
    from sources.files import expand_inputs

    try:
        files = expand_inputs(inputs)
        total = sum(os.path.getsize(f) for f in files if f != "-")
        with byte_progress(total, "ingest") as advance, RejectWriter(rejects) as write_reject:
            result = ingest(files, out=out_path, collect=False, on_progress=advance,
                            on_reject=write_reject)
    except KaadError as exc:
        raise _fail(exc) from None
    stats = result.stats
    out.print(render_summary(stats, top=top))
    print_rejects(stats, err)
    if out_path is not None:
        out.print(f"wrote {stats.n_events:,} events to {out_path}", markup=False)
    if strict and stats.n_rejected:
        err.print(f"error: {stats.n_rejected:,} rejected input(s) and --strict was given",
                  markup=False)
        raise typer.Exit(code=2)


@app.command("simulate")
def simulate_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the day files and labels.csv.")],
    days: Annotated[int, typer.Option(min=1, help="Days of cluster life to simulate.")] = 21,
    attacks: Annotated[str, typer.Option(help="'all', 'none' or a comma list of attack names.")] = "none",
    attack_day: Annotated[int | None, typer.Option(
        help="1-based day to inject the attacks on (default: the last).")] = None,
    variant: Annotated[str, typer.Option(help="loud or quiet.")] = "loud",
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    nodes: Annotated[int, typer.Option(min=1, help="Worker nodes.")] = 4,
    namespaces: Annotated[int, typer.Option(min=1, max=12, help="Application namespaces.")] = 6,
    humans: Annotated[int, typer.Option(min=3, max=12, help="People using kubectl.")] = 6,
    rate_scale: Annotated[float, typer.Option(
        help="Share of the periodic control-plane traffic to keep (1.0 = real rate).")] = 0.1,
) -> None:
    """Write a simulated EKS cluster's audit logs with labelled attacks injected.

    Example: kaad simulate --days 21 --attacks all --variant loud --seed 7 --out sim/
    """
    from reports.progress import count_progress
    from scenarios.attacks import ATTACKS
    from scenarios.cluster import ClusterSpec
    from scenarios.simulate import simulate

    names = {"all": list(ATTACKS), "none": []}.get(attacks, [a.strip() for a in attacks.split(",") if a.strip()])
    spec = ClusterSpec(nodes=nodes, app_namespaces=namespaces, humans=humans, rate_scale=rate_scale)
    try:
        with count_progress(days, "simulate days") as advance:
            result = simulate(out_dir, days=days, attacks=names, variant=variant, seed=seed, spec=spec,
                              attack_day_index=None if attack_day is None else attack_day - 1,
                              on_day=lambda done, total: advance(1))
    except (KaadError, ValueError) as exc:
        raise _fail(exc) from None
    out.print(f"wrote {result.n_events:,} events in {len(result.files)} day files to {out_dir}",
              markup=False)
    for row in result.injected:
        out.print(f"injected {row['scenario']} ({row['technique']}, {row['variant']}): "
                  f"{row['requests']} requests by {', '.join(row['identities'])} "
                  f"{row['start']:%Y-%m-%d %H:%M}-{row['end']:%H:%M} UTC", markup=False)
    out.print(f"labels: {result.labels}", markup=False)


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
