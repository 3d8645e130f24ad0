"""kaad's command line: thin typer commands over the library.

Exit codes: 0 success, 1 findings at or above ``--fail-on`` (score), 2 errors (bad input
under ``--strict``, missing files, incompatible models).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from errors import InputNotFoundError, KaadError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="Kubernetes Audit Anomaly Detector: who in the cluster is doing something they have never done before.",
)
# Piped output (files, CI logs) gets a wide page instead of rich's 80-column default.
out = Console(highlight=False, soft_wrap=True, width=None if Console().is_terminal else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show MLflow's own log lines (INFO and up) on stderr.")
    ] = False,
) -> None:
    """Kubernetes Audit Anomaly Detector."""
    # MLflow phones home by default; kaad's processes never do. Its INFO chatter (database
    # migrations, "registered model") and its pickle warning are not what a kaad user asked
    # to read: kaad's own summary says what happened. MLflow reads the level when imported.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO" if verbose else "ERROR"
    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.INFO if verbose else logging.ERROR)
    # Even -v leaves out alembic's line per database migration (as MLflow itself does).
    logging.getLogger("alembic").setLevel(logging.WARNING if verbose else logging.ERROR)
    # kaad saves with cloudpickle on purpose (bundles are SHA-256 checked; see docs).
    warnings.filterwarnings("ignore", message=".*pickle or cloudpickle format.*")


SIGNING_HELP = (
    "File holding the HMAC key that signs bundles when saved and verifies them before loading "
    "(default: $KAAD_SIGNING_KEY)."
)


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    from safe_text import printable

    err.print(f"error: {printable(exc)}", markup=False)
    return typer.Exit(code=code)


TrustedProxiesOption = Annotated[
    str | None,
    typer.Option(
        help="Proxies whose X-Forwarded-For entries are believed, as CIDR,... (default: loopback "
        "only; EKS needs none). The client is the rightmost address of sourceIPs that is not "
        "one of them."
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        help="Where a lake (ingest --out DIR, on disk or s3://) is featurised: local (this process) "
        "or dask (--scheduler, else a LocalCluster with this machine's cores)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(envvar="DASK_SCHEDULER_ADDRESS", help="Dask scheduler address (tcp://HOST:8786) for --engine dask."),
]


RulesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--rules",
        help="Directory of Sigma rules (logsource kubernetes/audit), repeatable; kaad's own rules come "
        "with any (--rules kaad: those alone). README.md, 'Rules'.",
    ),
]


def _proxies(spec: str | None):
    from events.source_address import parse_proxies

    return parse_proxies(spec)


@app.command("ingest")
def ingest_cmd(
    inputs: Annotated[
        list[str], typer.Argument(help="Audit log files, directories, globs, or - for stdin.", show_default=False)
    ],
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the normalised event table as Parquet.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 2 if any input was rejected.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="Write every reject (file, line, kind, detail) as CSV.")] = None,
    top: Annotated[int, typer.Option(help="How many top identities/verbs/codes to show.")] = 10,
    since: Annotated[str | None, typer.Option(help="Remote sources: from (ISO time, or 24h / 7d ago).")] = None,
    until: Annotated[str | None, typer.Option(help="Remote sources: until, exclusive (same forms).")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: the credential chain's).")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile.")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="CloudWatch: resume from and record progress in this file.")
    ] = None,
    overlap: Annotated[
        str,
        typer.Option(
            help="CloudWatch: re-read this much event time before the checkpoint, for events that arrive late."
        ),
    ] = "15min",
    cluster: Annotated[
        str | None, typer.Option(help="Cluster name for the lake partition (default: from eks://NAME).")
    ] = None,
    trusted_proxies: TrustedProxiesOption = None,
) -> None:
    """Read audit logs into kaad's event table and summarise them.

    Reads JSON lines, .gz, EventList, CloudWatch subscription/Firehose payloads, CloudWatch
    export lines, AKS diagnostic records and pretty-printed files (the format is detected),
    from files, s3://bucket/prefix, eks://CLUSTER or cloudwatch://LOG-GROUP. --out FILE.parquet
    writes one file; --out DIR appends to a lake partitioned by cluster and date.

    Example: kaad ingest eks://prod --since 24h --checkpoint state/prod.json --out data/
    """
    from pipelines.ingest import ingest
    from reports.ingest_summary import print_rejects, render_summary
    from reports.progress import byte_progress
    from reports.reject_file import RejectWriter
    from sources.files import expand_inputs

    try:
        files = expand_inputs(inputs)
        aws = replace(_aws_options(since, until, region, profile, checkpoint), overlap=_duration(overlap, "--overlap"))
        total = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
        with byte_progress(total, "ingest") as advance, RejectWriter(rejects) as write_reject:
            result = ingest(
                files,
                out=out_path,
                collect=False,
                on_progress=advance,
                on_reject=write_reject,
                aws=aws,
                cluster=cluster,
                trusted_proxies=_proxies(trusted_proxies),
            )
        if checkpoint is not None:
            for state in result.checkpoints.values():
                state.save(str(checkpoint))  # only now: everything read has been written
    except KaadError as exc:
        raise _fail(exc) from None
    stats = result.stats
    out.print(render_summary(stats, top=top))
    print_rejects(stats, err)
    if result.lake is not None:
        out.print(
            f"lake {out_path}: {result.lake.n_written:,} new events, "
            f"{result.lake.n_already_there:,} already there, in {len(result.lake.partitions)} "
            "partition(s)",
            markup=False,
        )
        if result.lake.n_audit_id_reused:
            out.print(
                f"lake {out_path}: {result.lake.n_audit_id_reused:,} new request(s) reuse "
                "an auditID the lake already holds (kept, flagged)",
                markup=False,
            )
    elif out_path is not None:
        out.print(f"wrote {stats.n_events:,} events to {out_path}", markup=False)
    if checkpoint is not None and result.checkpoints:
        caught = sum(state.n_late_caught for state in result.checkpoints.values())
        out.print(
            f"checkpoint saved: {checkpoint}"
            + (f" ({caught:,} late event(s) caught by the overlap)" if caught else ""),
            markup=False,
        )
        for state in result.checkpoints.values():
            if (warning := state.lag_warning()) is not None:
                err.print(f"warning: {warning}", markup=False)
    if strict and stats.n_rejected:
        err.print(f"error: {stats.n_rejected:,} rejected input(s) and --strict was given", markup=False)
        raise typer.Exit(code=2)


@app.command("simulate")
def simulate_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the day files and labels.csv.")],
    days: Annotated[int, typer.Option(min=1, help="Days of cluster life to simulate.")] = 21,
    attacks: Annotated[str, typer.Option(help="'all', 'none' or a comma list of attack names.")] = "none",
    attack_day: Annotated[
        int | None, typer.Option(help="1-based day to inject the attacks on (default: the last).")
    ] = None,
    variant: Annotated[str, typer.Option(help="loud or quiet.")] = "loud",
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    nodes: Annotated[int, typer.Option(min=1, help="Worker nodes.")] = 4,
    namespaces: Annotated[int, typer.Option(min=1, max=12, help="Application namespaces.")] = 6,
    humans: Annotated[int, typer.Option(min=3, max=12, help="People using kubectl.")] = 6,
    rate_scale: Annotated[
        float, typer.Option(help="Share of the periodic control-plane traffic to keep (1.0 = real rate).")
    ] = 0.1,
    change: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Benign change (nodes replaced, rollouts, hires, CI runners...) as a multiple of a busy "
            "month; 0 = a cluster that never changes. Labelled benign_* in labels.csv.",
        ),
    ] = 1.0,
    flow_logs: Annotated[
        Path | None,
        typer.Option(
            "--flow-logs",
            help="Also write the pods' VPC flow logs to this directory (S3 text layout: v5 custom format "
            "under flowlogs/, default v2 under flowlogs-v2/); keep it outside --out.",
        ),
    ] = None,
) -> None:
    """Write a simulated EKS cluster's audit logs with labelled attacks injected.

    Example: kaad simulate --days 21 --attacks all --variant loud --seed 7 --out sim/
    """
    from reports.progress import count_progress
    from scenarios.attacks import ATTACKS
    from scenarios.change_rates import ChangeRates
    from scenarios.cluster import ClusterSpec
    from scenarios.simulate import simulate

    names = {"all": list(ATTACKS), "none": []}.get(attacks, [a.strip() for a in attacks.split(",") if a.strip()])
    rates = ChangeRates().scaled(change)
    spec = ClusterSpec(nodes=nodes, app_namespaces=namespaces, humans=humans, rate_scale=rate_scale, change=rates)
    try:
        with count_progress(days, "simulate days") as advance:
            result = simulate(
                out_dir,
                days=days,
                attacks=names,
                variant=variant,
                seed=seed,
                spec=spec,
                attack_day_index=None if attack_day is None else attack_day - 1,
                on_day=lambda done, total: advance(1),
                flow_logs=flow_logs,
            )
    except (KaadError, ValueError) as exc:
        raise _fail(exc) from None
    out.print(f"wrote {result.n_events:,} events in {len(result.files)} day files to {out_dir}", markup=False)
    for row in result.injected:
        out.print(
            f"injected {row['scenario']} ({row['technique']}, {row['variant']}): "
            f"{row['requests']} requests by {', '.join(row['identities'])} "
            f"{row['start']:%Y-%m-%d %H:%M}-{row['end']:%H:%M} UTC",
            markup=False,
        )
    if result.changes:
        made = ", ".join(f"{n} {name.removeprefix('benign_')}" for name, n in sorted(result.changes.items()))
        out.print(f"benign changes (labelled benign_*): {made}", markup=False)
    out.print(f"labels: {result.labels}", markup=False)
    if result.flow_files:
        out.print(f"wrote {len(result.flow_files)} flow log files to {flow_logs}", markup=False)


def _aws_options(since, until, region, profile, checkpoint, day=None):
    from datetime import timedelta

    from sources.aws import AwsOptions

    start, end = _when(since), _when(until)
    if day is not None and start is None and end is None:
        from datetime import UTC, datetime

        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
    return AwsOptions(
        region=region,
        profile=profile,
        since=start,
        until=end,
        checkpoint=None if checkpoint is None else str(checkpoint),
    )


def _eval_inputs(eval_data: Path | None, labels: Path | None) -> tuple[list[str] | None, Path | None]:
    if eval_data is None:
        return None, labels
    from sources.files import expand_inputs

    files = expand_inputs([str(eval_data)])
    if labels is None and eval_data.is_dir() and (eval_data / "labels.csv").is_file():
        labels = eval_data / "labels.csv"
    return files, labels


def _duration(value: str, option: str):
    from datetime import timedelta

    import pandas as pd

    try:
        # A bare number would be read as nanoseconds: insist on a unit.
        delta = pd.Timedelta(value) if any(c.isalpha() for c in value) else pd.NaT
    except ValueError:
        delta = pd.NaT
    if pd.isna(delta) or delta < pd.Timedelta(0):
        raise KaadError(f"{option} {value!r} is not a duration (15min, 2h, 1d)")
    return timedelta(microseconds=delta.value // 1000)


def _when(value: str | None):
    from pipelines.timerange import parse_time

    return None if value is None else parse_time(value)


@app.command("train")
def train_cmd(
    inputs: Annotated[list[str], typer.Argument(help="History: files, directories, globs.", show_default=False)],
    since: Annotated[str | None, typer.Option(help="Start of history (ISO date/time, or 7d / 24h ago).")] = None,
    until: Annotated[str | None, typer.Option(help="End of history, exclusive (same forms).")] = None,
    window: Annotated[str, typer.Option(help="Window length (pandas offset: 1h, 30min, 1D).")] = "1h",
    n_estimators: Annotated[int, typer.Option(min=10, help="Trees in the isolation forest.")] = 200,
    max_samples: Annotated[str, typer.Option(help="Windows per tree: 'auto', a count or a share.")] = "auto",
    alerts_per_day: Annotated[
        float,
        typer.Option(min=0.0, help="Identity-days that alert on a normal day, measured on held-out days."),
    ] = 1.0,
    warmup_days: Annotated[
        int, typer.Option(min=0, help="First days of history that only prime first-seen state.")
    ] = 2,
    calibration_days: Annotated[
        int | None, typer.Option(min=1, help="Last days held out to calibrate (default: a quarter).")
    ] = None,
    contamination: Annotated[float | None, typer.Option(hidden=True)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the forest.")] = 0,
    eval_data: Annotated[
        Path | None, typer.Option(help="Held-out logs to evaluate on (a directory with labels.csv).")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Labels for --eval-data when not beside it.")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="Where to save the model bundle.")] = Path(
        "out/kaad-model.joblib"
    ),
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "kaad",
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = "kaad-detector",
    promote: Annotated[bool, typer.Option(help="Move alias 'champion' here if it evaluates at least as well.")] = False,
    force_promote: Annotated[
        bool,
        typer.Option(
            help="Make this measured run champion even if the champion scored better "
            "or was measured on another evaluation set."
        ),
    ] = False,
    cluster: Annotated[str, typer.Option(help="Cluster name, recorded as a tag.")] = "",
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: sqlite store in mlruns/).")
    ] = None,
    track: Annotated[bool, typer.Option(help="Log the run to MLflow.")] = True,
    region: Annotated[str | None, typer.Option(help="AWS region for s3:// and eks:// history.")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile.")] = None,
    trusted_proxies: TrustedProxiesOption = None,
    signing_key_file: Annotated[Path | None, typer.Option(envvar="KAAD_SIGNING_KEY_FILE", help=SIGNING_HELP)] = None,
    rules: RulesOption = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    flow_logs: Annotated[
        list[str] | None,
        typer.Option(
            "--flow-logs",
            help="VPC flow logs of the training days (files, directories, s3://..., cloudwatch://GROUP): "
            "the model keeps their network baseline (destinations per workload, node and the cluster).",
        ),
    ] = None,
    flow_format: Annotated[
        str | None,
        typer.Option(help="Flow log format ('${version} ${srcaddr} ...') for lines without a header line."),
    ] = None,
) -> None:
    """Train a baseline on audit-log history, evaluate it, and log it to MLflow.

    Example: kaad train sim/audit-2026-03-0*.jsonl.gz --eval-data holdout/ --promote
    """
    from engine.train import EngineConfig
    from models.detector import DetectorParams
    from pipelines.train import TrainConfig
    from pipelines.train_job import TrainJob, run_train_job
    from reports.progress import byte_progress
    from reports.train_summary import render_training
    from sources.files import expand_inputs

    try:
        if contamination is not None:
            raise KaadError(
                "--contamination is gone: the threshold is now set on held-out days in alerts per "
                "normal day; use --alerts-per-day (default 1)"
            )
        samples: int | float | str = max_samples
        if max_samples != "auto":
            samples = float(max_samples) if "." in max_samples else int(max_samples)
        params = DetectorParams(
            n_estimators=n_estimators,
            max_samples=samples,
            alerts_per_day=alerts_per_day,
            warmup_days=warmup_days,
            calibration_days=calibration_days,
            seed=seed,
        )
        config = TrainConfig(
            window=window,
            params=params,
            since=_when(since),
            until=_when(until),
            trusted_proxies=_proxies(trusted_proxies),
            rules=tuple(rules or ()),
            engine=EngineConfig(engine, scheduler),
        )
        eval_files, labels = _eval_inputs(eval_data, labels)
        job = TrainJob(
            inputs=inputs,
            config=config,
            out_path=out_path,
            eval_inputs=eval_files,
            labels=labels,
            aws=_aws_options(since, until, region, profile, None),
            signing_key_file=signing_key_file,
            track=track,
            cluster=cluster,
            experiment=experiment,
            model_name=model_name,
            promote=promote,
            force_promote=force_promote,
            tracking_uri=tracking_uri,
            flow_logs=tuple(flow_logs or ()),
            flow_format=flow_format,
        )
        total = sum(os.path.getsize(f) for f in expand_inputs(inputs) if os.path.isfile(f))
        with byte_progress(total, "train: read history") as advance:
            done = run_train_job(job, on_progress=advance)
    except (KaadError, ValueError) as exc:
        raise _fail(exc) from None
    result, digest, tracked = done.result, done.digest, done.tracked
    out.print(render_training(result, out_path, digest, tracked))
    if done.network:
        from safe_text import printable

        out.print(printable(done.network), markup=False)


@app.command("runs")
def runs_cmd(
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "kaad",
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """List recent training runs with their key metrics.

    Example: kaad runs --limit 5
    """
    from models.tracking import recent_runs
    from reports.train_summary import render_runs

    try:
        table = recent_runs(experiment, tracking_uri, limit)
    except KaadError as exc:
        raise _fail(exc) from None
    out.print(render_runs(table))


@app.command("ui")
def ui_cmd(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    experiment: Annotated[str, typer.Option(help="The training experiment whose runs the link shows.")] = "kaad",
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the link in a browser once the UI answers.")
    ] = False,
) -> None:
    """Start the MLflow UI on 127.0.0.1 and print the link to the training runs (Ctrl-C stops it).

    The link opens the runs table in MLflow's model-training view, one row per model, with
    the key metrics and the parameters that differ between runs as columns.

    Example: kaad ui --open
    """
    import threading

    from models.ui import open_when_up, prepare_view, run_process_group, ui_command
    from safe_text import printable

    try:
        view = prepare_view(experiment, tracking_uri)
    except KaadError as exc:
        raise _fail(exc) from None
    cmd, env = ui_command(port, tracking_uri)
    url = f"http://127.0.0.1:{port}/{view.path}"
    err.print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop); experiments:", markup=False)
    for e in view.experiments:
        about = e.note.split(". ")[0].rstrip(".") if e.note else "no description"
        err.print(f"  {printable(e.name)} ({e.runs} runs): {printable(about)}", markup=False)
    if view.models:
        out.print(f"{view.models} model run(s) of {printable(experiment)}: {url}", markup=False)
    else:
        out.print(f"no runs in {printable(experiment)} yet (kaad train logs them): {url}", markup=False)
    if open_browser:
        threading.Thread(target=open_when_up, args=(url, port), daemon=True).start()
    raise typer.Exit(code=run_process_group(cmd, env))


@app.command("evaluate")
def evaluate_cmd(
    scores: Annotated[Path, typer.Argument(help="Scores from kaad score (.csv or .parquet).", show_default=False)],
    labels: Annotated[Path, typer.Option(help="Labels: the simulator's labels.csv, identity windows, or auditIDs.")],
    events: Annotated[list[str] | None, typer.Option(help="The scored logs, when labels name auditIDs.")] = None,
    window: Annotated[str, typer.Option(help="Window length the scores were made with.")] = "1h",
) -> None:
    """Measure how well scores rank labelled attacks: ROC AUC, average precision, recall@k, ranks.

    Example: kaad evaluate out/score-2026-03-22/kaad-2026-03-22.csv --labels sim/labels.csv
    """
    import pandas as pd

    from pipelines.evaluate import evaluate, read_labels
    from pipelines.ingest import ingest
    from reports.train_summary import render_evaluation

    try:
        for path in (scores, labels):
            if not path.exists():  # the same one line as every other missing input, not "[Errno 2]"
                raise InputNotFoundError(f"{str(path)!r}: no such file or directory")
        if scores.suffix == ".parquet":
            table = pd.read_parquet(scores)
        else:
            table = pd.read_csv(scores)
        if "level" in table.columns:  # kaad score's files: identity-day rows, then their windows
            table = table[table["level"] == "window"]
        missing = {"identity", "window_start", "anomaly_score"} - set(table.columns)
        if missing:
            raise KaadError(f"{str(scores)!r} lacks column(s) {sorted(missing)!r}")
        table["window_start"] = pd.to_datetime(table["window_start"], utc=True)
        series = table.set_index(["identity", "window_start"])["anomaly_score"]
        evts = ingest(events).events if events else None
        report = evaluate(series, read_labels(labels, evts, freq=window))
    except (KaadError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    out.print(render_evaluation(report))


@app.command("score")
def score_cmd(
    inputs: Annotated[
        list[str], typer.Argument(help="The day's audit logs: files, directories, globs, -.", show_default=False)
    ],
    model: Annotated[
        str | None, typer.Option(help="Registered model NAME@alias (default kaad-detector@champion).")
    ] = None,
    run: Annotated[
        str | None, typer.Option(help="Score with the bundle of this MLflow run (any unique start of its id).")
    ] = None,
    bundle: Annotated[Path | None, typer.Option(help="Score with this bundle file.")] = None,
    day: Annotated[
        str | None,
        typer.Option(
            help="UTC day to score, YYYY-MM-DD (default: the inputs' main day; a lake's last day), "
            "or 'all': every day, oldest first."
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            min=1, help="Identity-days in the terminal table (every alerting one is explained and written anyway)."
        ),
    ] = 20,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0, max=100, help="Alert cut as a percentile of held-out identity-day scores (default: the model's)."
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Directory for the report files (default out/score-DAY).")
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma list of table, csv, json, parquet, html.")
    ] = "table,csv,html",
    fail_on: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=100,
            help="Exit 1 if any unsuppressed identity-day is at or above this percentile (those alert too).",
        ),
    ] = None,
    allowlist: Annotated[
        Path | None,
        typer.Option(
            help="TOML allowlist of known noise: [[suppress]] entries with identity, reason, expires "
            "(format: README.md, 'An allowlist'; check a file with kaad allowlist check FILE)."
        ),
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    track: Annotated[bool, typer.Option(help="Record the scoring run in MLflow.")] = True,
    region: Annotated[str | None, typer.Option(help="AWS region for s3://, eks://, sns:, cloudwatch:.")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile.")] = None,
    notify: Annotated[
        str | None,
        typer.Option(
            help="sns:TOPIC-ARN: one message per unsuppressed alerting identity-day "
            "(above the threshold, or at or above --fail-on)."
        ),
    ] = None,
    metrics: Annotated[str | None, typer.Option(help="cloudwatch:NAMESPACE: put the day's counts as metrics.")] = None,
    notify_state: Annotated[Path, typer.Option(help="Ledger of what was sent, so reruns do not page twice.")] = Path(
        "out/notify-ledger.json"
    ),
    trusted_proxies: TrustedProxiesOption = None,
    signing_key_file: Annotated[Path | None, typer.Option(envvar="KAAD_SIGNING_KEY_FILE", help=SIGNING_HELP)] = None,
    force_day: Annotated[
        bool,
        typer.Option(
            "--force-day",
            help="Score a day the model's day state refuses: already scored, out of order, or on or "
            "before the training end (its novelty is then understated).",
        ),
    ] = False,
    rules: RulesOption = None,
    flow_logs: Annotated[
        list[str] | None,
        typer.Option(
            "--flow-logs",
            help="VPC flow logs (files, directories, s3://..., cloudwatch://GROUP) whose network behaviour "
            "adds evidence against the model's network baseline (kaad train --flow-logs), else against "
            "their own earlier days, with the audit logs of those days.",
        ),
    ] = None,
    flow_format: Annotated[
        str | None,
        typer.Option(help="Flow log format ('${version} ${srcaddr} ...') for lines without a header line."),
    ] = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Score a day of audit logs: rank identities' windows by anomaly and explain every alerting one.

    Exit 0: nothing at or above --fail-on; 1: findings at or above it; 2: errors.

    Example: kaad score logs/2026-03-22/ --fail-on 99.9 --format table,html
    """
    from datetime import date as date_type

    from engine.train import EngineConfig
    from pipelines.daily import ScoreJob, run_score_days, run_score_job

    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    every_day = day == "all"
    try:
        the_day = None if day is None or every_day else date_type.fromisoformat(day)
        job = ScoreJob(
            inputs=inputs,
            day=the_day,
            model=model,
            run=run,
            bundle=bundle,
            signing_key_file=signing_key_file,
            top=top,
            threshold=threshold,
            fail_on=fail_on,
            allowlist=allowlist,
            out_dir=out_dir,
            formats=tuple(wanted),
            tracking_uri=tracking_uri,
            track=track,
            aws=_aws_options(None, None, region, profile, None, day=the_day),
            notify=notify,
            metrics=metrics,
            notify_state=notify_state,
            trusted_proxies=_proxies(trusted_proxies),
            force_day=force_day,
            rules=tuple(rules or ()),
            evidence=_network_evidence(flow_logs, flow_format, inputs, region, profile),
            engine=EngineConfig(engine, scheduler),
        )
        if every_day:
            done, days = None, run_score_days(job)
        else:
            done = run_score_job(job)
    except (KaadError, ValueError) as exc:
        raise _fail(exc) from None
    if done is None:  # --day all
        n_high = 0
        for one in days.days:
            n_high += _report_day(one, wanted=[], top=top, fail_on=fail_on)
        from safe_text import printable

        for refused, why in days.skipped:
            out.print(printable(f"day skipped: {refused}: {why}"), markup=False)
        skipped = f", {len(days.skipped)} skipped" if days.skipped else ""
        out.print(f"{len(days.days)} day(s) scored{skipped}, {days.stats.n_rejected} input rejects", markup=False)
    else:
        n_high = _report_day(done, wanted=wanted, top=top, fail_on=fail_on)
    if n_high:
        raise typer.Exit(code=1)


def _network_evidence(flow_logs, flow_format, inputs, region, profile) -> tuple:
    if not flow_logs:
        return ()
    from flows.source import NetworkEvidence

    aws = _aws_options(None, None, region, profile, None)
    return (NetworkEvidence(list(flow_logs), list(inputs), flow_format=flow_format, aws=aws),)


def _report_day(done, *, wanted: list[str], top: int, fail_on: float | None) -> int:
    """Print one scored day as ``kaad score`` does; return its identity-days at or above ``fail_on``."""
    from reports import score_table
    from safe_text import printable

    result, written, alerts = done.result, done.written, done.sent
    if "table" in wanted:
        out.print(score_table.render_table(result, top=top))
        if more := score_table.more_alerts(result, top, written):
            out.print(more, markup=False)
        if (hidden := score_table.render_suppressed(result)) is not None:
            out.print(hidden)
        from reports.rules_report import render_rule_findings

        if (ruled := render_rule_findings(result)) is not None:
            out.print(ruled)
    for entry in result.expired_allowlist:
        err.print(f"warning: allowlist entry expired {entry.expires}, not applied: ", end="", markup=False)
        err.print(printable(entry.reason), markup=False)
    from reports.network import summary_lines

    for line in summary_lines(result):
        out.print(line, markup=False)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    for line in alerts:
        out.print(line, markup=False)
    other = (
        f"; {result.n_other_days:,} events of other days read and not scored (choose the day with --day)"
        if result.n_other_days
        else ""
    )
    out.print(f"day scored: {result.day} (UTC){other}", markup=False)
    summary = (
        f"{len(result.windows):,} windows of {len(result.identities):,} identity-days scored, "
        f"{result.n_alerts} identity-day(s) alerting"
        + (f" ({result.n_repeats} repeat(s) of open findings, not paged)" if result.n_repeats else "")
        + ", "
        f"{result.n_suppressed} suppressed, {result.stats.n_rejected} input rejects"
    )
    if fail_on is not None and (n_high := result.n_at_or_above(fail_on)):
        out.print(f"{summary}; {n_high} at or above percentile {fail_on:g}: exit 1", markup=False)
        return n_high
    tail = f"; nothing at or above percentile {fail_on:g}: exit 0" if fail_on is not None else ": exit 0"
    out.print(summary + tail, markup=False)
    return 0


@app.command("accept")
def accept_cmd(
    identity: Annotated[str | None, typer.Argument(help="The identity of the finding.", show_default=False)] = None,
    day: Annotated[str | None, typer.Option(help="The UTC day of the finding, YYYY-MM-DD.", show_default=False)] = None,
    list_held: Annotated[
        bool, typer.Option("--list", help="List the held identity-days (alerted, not yet accepted) and stop.")
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="Registered model NAME@alias (default kaad-detector@champion).")
    ] = None,
    run: Annotated[str | None, typer.Option(help="The model of this MLflow run (any unique start of its id).")] = None,
    bundle: Annotated[Path | None, typer.Option(help="The model of this bundle file.")] = None,
    cluster: Annotated[str, typer.Option(help="The cluster the day was scored for (eks://NAME, else default).")] = (
        "default"
    ),
    state_dir: Annotated[
        Path, typer.Option(help="Where kaad score keeps day states (out/state, or <its --out>/state).")
    ] = Path("out/state"),
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    signing_key_file: Annotated[Path | None, typer.Option(envvar="KAAD_SIGNING_KEY_FILE", help=SIGNING_HELP)] = None,
) -> None:
    """Accept an alerting identity-day as normal: what it introduced is usual from the next scored day on.

    Until accepted (or allowlisted), the new values of an alerting day stay new on every later day.
    `kaad accept --list` shows what is held.

    Example: kaad accept alice --day 2026-03-22 --bundle model.joblib
    """
    from datetime import date as date_type

    from pipelines.accept import AcceptJob, accept_finding, held_findings, open_finding_lines
    from safe_text import printable

    try:
        if not list_held and (identity is None or day is None):
            raise KaadError("give the finding's IDENTITY and --day (or --list to see the held ones)")
        job = AcceptJob(
            identity=identity or "",
            day=date_type.min if day is None else date_type.fromisoformat(day),
            model=model,
            run=run,
            bundle=bundle,
            cluster=cluster.removeprefix("eks://").strip("/"),
            state_dir=state_dir,
            tracking_uri=tracking_uri,
            signing_key_file=signing_key_file,
        )
        if list_held:
            found, path = held_findings(job)
            for who, held_day, held in found:
                out.print(
                    printable(f"{held_day}  {who}: {len(held.windows)} window(s), {len(held.novelty)} new value(s)"),
                    markup=False,
                )
            for line in open_finding_lines(found):
                out.print(printable(line), markup=False)
            out.print(f"{len(found)} held identity-day(s) in {path}", markup=False)
            return
        held, path, days = accept_finding(job)
    except (KaadError, ValueError) as exc:
        raise _fail(exc) from None
    out.print(
        printable(f"accepted {identity} on {day}: {len(held.windows)} window(s), ")
        + f"{len(held.novelty)} new value(s) learned"
        + (f" from {len(days)} held day(s), {days[0]} to {days[-1]}" if len(days) > 1 else "")
        + f" -> {path}",
        markup=False,
    )


allowlist_app = typer.Typer(no_args_is_help=True, help="Check an allowlist file (format: README.md, 'An allowlist').")
app.add_typer(allowlist_app, name="allowlist")


@allowlist_app.command("check")
def allowlist_check_cmd(
    path: Annotated[Path, typer.Argument(help="The TOML allowlist.", show_default=False)],
) -> None:
    """Validate an allowlist; print one line per entry, or the error naming the file and line (exit 2).

    Example: kaad allowlist check allow.toml
    """
    from datetime import UTC, datetime

    from pipelines.allowlist import load_allowlist
    from safe_text import printable

    try:
        allowlist = load_allowlist(path, datetime.now(UTC).date())
    except KaadError as exc:
        raise _fail(exc) from None
    for entry in allowlist.entries:
        out.print(printable(entry.describe()), markup=False)
    for entry in allowlist.expired:
        out.print(printable(entry.describe()) + " (expired: not applied)", markup=False)
    out.print(f"{len(allowlist.entries)} active, {len(allowlist.expired)} expired entries", markup=False)


rules_app = typer.Typer(no_args_is_help=True, help="Sigma rules for Kubernetes audit logs (README.md, 'Rules').")
app.add_typer(rules_app, name="rules")


@rules_app.command("test")
def rules_test_cmd(
    rules: Annotated[Path, typer.Argument(help="A Sigma rule file or a directory of them.", show_default=False)],
    events: Annotated[list[str], typer.Argument(help="Audit logs: files, directories, globs.", show_default=False)],
    show_query: Annotated[bool, typer.Option(help="Also print each rule's DuckDB query.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 2 if a rule did not convert or did not run.")] = False,
) -> None:
    """Run Sigma rules over audit events; per rule: converted or not (and why), its hits and the hit events.

    Example: kaad rules test my-rules/ logs/2026-03-22/
    """
    from pipelines.rules_trial import try_rules
    from reports.rules_report import render_trial

    try:
        trial = try_rules([rules], events)
    except (KaadError, ValueError) as exc:
        raise _fail(exc) from None
    out.print(render_trial(trial, show_query=show_query))
    if strict and trial.n_problems:
        raise typer.Exit(code=2)


export_app = typer.Typer(no_args_is_help=True, help="Export what the model learned for other tools.")
app.add_typer(export_app, name="export")


@export_app.command("metric-filter")
def export_metric_filter_cmd(
    log_group: Annotated[
        str, typer.Option(help="The cluster's audit log group, e.g. /aws/eks/prod/cluster.", show_default=False)
    ],
    model: Annotated[
        str | None, typer.Option(help="Registered model NAME@alias (default kaad-detector@champion).")
    ] = None,
    run: Annotated[str | None, typer.Option(help="The model of this MLflow run (any unique start of its id).")] = None,
    bundle: Annotated[Path | None, typer.Option(help="The model of this bundle file.")] = None,
    output: Annotated[str, typer.Option("--format", help="cloudformation (JSON template) or cli (aws commands).")] = (
        "cloudformation"
    ),
    min_days: Annotated[
        int, typer.Option(min=1, help="A known writer wrote pods or secrets on at least this many training days.")
    ] = 1,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    signing_key_file: Annotated[Path | None, typer.Option(envvar="KAAD_SIGNING_KEY_FILE", help=SIGNING_HELP)] = None,
) -> None:
    """CloudWatch metric filter + alarm: writes to pods or secrets by anyone the model never saw write them.

    The model must have been trained with --rules (it then keeps who wrote pods and secrets).

    Example: kaad export metric-filter --log-group /aws/eks/prod/cluster --bundle out/kaad-model.joblib
    """
    import json

    from models.registry import resolve_bundle
    from rules.history import RuleHistory
    from rules.metric_filter import build_filter

    try:
        if output not in ("cloudformation", "cli"):
            raise KaadError(f"--format must be cloudformation or cli, not {output!r}")
        if sum(x is not None for x in (model, run, bundle)) > 1:
            raise KaadError("give at most one of --model, --run, --bundle")
        loaded, label = resolve_bundle(
            bundle=bundle, run=run, model=model, tracking_uri=tracking_uri, key_file=signing_key_file
        )
        if loaded.rule_history is None:
            raise KaadError(f"{label} was trained without --rules: it keeps no list of who writes pods and secrets")
        made = build_filter(RuleHistory.from_dict(loaded.rule_history), log_group, min_days=min_days)
        text = json.dumps(made.cloudformation(), indent=2) if output == "cloudformation" else made.cli()
        if out_path is not None:
            out_path.write_text(text + "\n")
    except (KaadError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    if out_path is None:
        typer.echo(text)
    err.print(
        f"{len(made.writers)} known writer(s) from {label}; pattern of {len(made.pattern)} characters", markup=False
    )


@app.command("doctor")
def doctor_cmd(
    cluster: Annotated[str, typer.Argument(help="eks://CLUSTER", show_default=False)],
    region: Annotated[str | None, typer.Option(help="AWS region.")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile.")] = None,
) -> None:
    """Check that a cluster writes audit logs and that kaad can read them; one line per check.

    Example: kaad doctor eks://prod --region eu-west-1
    """
    from pipelines.doctor import run_checks
    from safe_text import printable

    try:
        checks = run_checks(cluster, _aws_options(None, None, region, profile, None))
    except KaadError as exc:
        raise _fail(exc) from None
    for check in checks:
        line = f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {printable(check.detail)}"
        out.print(line + (f"\n      fix: {check.fix}" if check.fix else ""), markup=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(code=2)


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
