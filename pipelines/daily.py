"""The daily job: load a model, score a day, write every report, record it, page on alerts.

``kaad score`` parses its options into a :class:`ScoreJob` and calls :func:`run_score_job`;
everything else (which model, which files, MLflow, SNS, CloudWatch metrics) happens here.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import duckdb

from errors import DayOrderError, KaadError, UnnamedRerunError
from models.persistence import signing_key
from models.registry import resolve_bundle
from models.state_store import open_state, save_state
from pipelines.allowlist import load_allowlist
from pipelines.ingest import IngestStats, cluster_of, ingest
from pipelines.score import ScoreResult, score_day
from reports import html, score_outputs
from sources.aws import AwsOptions

#: Output formats of the daily job ("table" is the terminal's).
FORMATS = ("table", "csv", "json", "parquet", "html")


@dataclass(frozen=True)
class ScoreJob:
    """Everything ``kaad score`` was asked to do."""

    inputs: list[str]
    day: date | None = None
    model: str | None = None
    run: str | None = None
    bundle: Path | None = None
    signing_key_file: Path | None = None
    top: int = 20
    threshold: float | None = None
    fail_on: float | None = None
    allowlist: Path | None = None
    out_dir: Path | None = None
    formats: tuple[str, ...] = ("table", "csv", "html")
    tracking_uri: str | None = None
    track: bool = True
    aws: AwsOptions | None = None
    notify: str | None = None  # sns:TOPIC-ARN
    metrics: str | None = None  # cloudwatch:NAMESPACE
    notify_state: Path = Path("out/notify-ledger.json")
    trusted_proxies: tuple | None = None
    #: The cluster's name for metrics and the day state (default: from the inputs' paths).
    cluster: str | None = None
    #: Score a day the state refuses (on or before its last day or the training end).
    force_day: bool = False
    #: Where day states live (default: ``<out_dir>/state``, else out/state).
    state_dir: Path | None = None
    #: Sigma rule directories run on the day beside the model ("kaad": kaad's own only; rules/).
    rules: tuple[str, ...] = ()
    #: Evidence sources (:mod:`models.evidence`) added to the ranking, e.g. network flows.
    evidence: tuple = ()
    #: Where a lake's day is featurised (``--engine``, ``--scheduler``; engine/score.py); None: local.
    engine: object = None

    def state_root(self) -> Path:
        """The day states' folder: ``state_dir``, else ``state`` in the report folder given, else out/state.

        Reports are named by their day, so a daily job gives the same ``--out`` every day and
        finds its state there; without ``--out`` each day's reports go to out/score-DAY.
        """
        if self.state_dir is not None:
            return self.state_dir
        return (self.out_dir if self.out_dir is not None else Path("out")) / "state"

    def check(self) -> None:
        """Raise :class:`errors.KaadError` for options that cannot work together."""
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise KaadError(f"unknown format(s) {unknown!r}; choose from {', '.join(FORMATS)}")
        if sum(x is not None for x in (self.model, self.run, self.bundle)) > 1:
            raise KaadError("give at most one of --model, --run, --bundle")
        for flag, value, prefix in (("--notify", self.notify, "sns:"), ("--metrics", self.metrics, "cloudwatch:")):
            if value is not None and not value.startswith(prefix):
                raise KaadError(f"{flag} takes {prefix}..., not {value!r}")


@dataclass
class ScoreJobResult:
    """The scored day, the model that scored it, the files written and what was sent where."""

    result: ScoreResult
    model_label: str
    written: list[Path] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    state_file: Path | None = None


def _write_reports(job: ScoreJob, result: ScoreResult, label: str, target: Path) -> list[Path]:
    written = []
    writers = {"csv": score_outputs.write_csv, "json": score_outputs.write_json, "parquet": score_outputs.write_parquet}
    for fmt, write in writers.items():
        if fmt in job.formats:
            write(result, target / f"kaad-{result.day}.{fmt}")
            written.append(target / f"kaad-{result.day}.{fmt}")
    if "csv" in job.formats and "rule" in result.evidence:
        from reports.rules_report import write_rule_hits_csv

        if write_rule_hits_csv(result, target / f"kaad-{result.day}-rule-hits.csv"):
            written.append(target / f"kaad-{result.day}-rule-hits.csv")
    if "html" in job.formats:
        html.write_html(result, target / f"kaad-{result.day}.html", label)
        written.append(target / f"kaad-{result.day}.html")
    return written


def _send(job: ScoreJob, result: ScoreResult) -> list[str]:
    sent = []
    aws = job.aws or AwsOptions()
    if job.notify is not None:
        from reports.aws_alerts import publish_findings

        n_sent, repeated = publish_findings(result, job.notify.removeprefix("sns:"), aws, job.notify_state)
        sent.append(f"sns: {n_sent} finding(s) published, {repeated} already published before")
    if job.metrics is not None:
        from reports.aws_alerts import put_day_metrics

        done = put_day_metrics(
            result,
            job.metrics.removeprefix("cloudwatch:"),
            aws,
            job.notify_state,
            cluster=job.cluster or cluster_of(job.inputs),
        )
        sent.append("cloudwatch: day metrics " + ("put" if done else "already put before"))
    return sent


def run_score_job(job: ScoreJob) -> ScoreJobResult:
    """Score the day of ``job.inputs`` and deliver it as the job asks."""
    try:
        return _run_score_job(job)
    except UnnamedRerunError as again:  # refused before anything was learned, written or sent
        return _run_score_job(replace(job, day=again.day))


def _run_score_job(job: ScoreJob) -> ScoreJobResult:
    job.check()
    loaded, label = resolve_bundle(
        bundle=job.bundle, run=job.run, model=job.model, tracking_uri=job.tracking_uri, key_file=job.signing_key_file
    )
    allow = None if job.allowlist is None else load_allowlist(job.allowlist, job.day or date.today())
    key = signing_key(job.signing_key_file)
    cluster = job.cluster or cluster_of(job.inputs)
    state, state_file = open_state(job.state_root(), loaded, cluster, key=key, force=job.force_day)
    if job.day is not None:
        state.check_day(job.day)  # before the evidence sources read the state: a forced rerun goes back
    evidence = []
    if job.rules:
        from rules.evidence import rule_evidence

        evidence.append(rule_evidence(job.rules, loaded, allow))
    for source in job.evidence:  # a source with a baseline of its own (network) judges by the model's
        if hasattr(source, "bind"):
            source.bind(loaded, state)
    result = score_day(
        job.inputs,
        loaded,
        day=job.day,
        top=job.top,
        threshold_percentile=job.threshold,
        alert_percentile=job.fail_on,
        allowlist=allow,
        aws=job.aws,
        trusted_proxies=job.trusted_proxies,
        state=state,
        evidence=(*evidence, *job.evidence),
        engine=job.engine,
    )
    for source in job.evidence:  # ... and carries it forward on the state
        if hasattr(source, "learn"):
            source.learn(state, result)
    # The day is learned once scored, whatever happens to its reports.
    save_state(state, state_file, key=key)
    target = job.out_dir or Path("out") / f"score-{result.day}"
    target.mkdir(parents=True, exist_ok=True)
    written = _write_reports(job, result, label, target)
    if job.track:
        from models.tracking import log_scoring

        csv_path = target / f"kaad-{result.day}.csv"
        if not csv_path.exists():
            score_outputs.write_csv(result, csv_path)
        log_scoring(result, model_label=label, top_csv=csv_path, tracking_uri=job.tracking_uri)
    return ScoreJobResult(result, label, written, _send(job, result), state_file)


@dataclass
class DaysResult:
    """``--day all``: each UTC day of the inputs scored in time order, and what the one read found."""

    days: list[ScoreJobResult]
    stats: IngestStats
    #: Days the day state refused (inside training, already scored), each with the reason.
    skipped: list[tuple[date, str]] = field(default_factory=list)


def run_score_days(job: ScoreJob) -> DaysResult:
    """Score every UTC day of ``job.inputs``, oldest first, reading the inputs once.

    The inputs are parsed once into a temporary event table; each day is then scored from it
    as :func:`run_score_job` scores one day, with its own reports, MLflow run and alerts.
    A day the day state refuses (on or before the training end, or already scored: the logs
    of a daily job re-read with a new day added) is skipped with its reason, and the later
    days are scored; ``--force-day`` scores them all.
    """
    job.check()
    from engine.score import lake_days

    days = lake_days(job.inputs)
    if days is not None:  # a lake is already cut by day: each day's partitions go through the engine
        return _score_lake_days(job, days)
    engine = getattr(job.engine, "name", "local")
    if engine != "local":
        raise KaadError(f"--day all reads inputs that are not a lake in this process: --engine {engine} needs a lake")
    with tempfile.TemporaryDirectory(prefix="kaad-days-") as tmp:
        table = Path(tmp) / "events.parquet"
        read = ingest(job.inputs, out=table, collect=False, aws=job.aws, trusted_proxies=job.trusted_proxies)
        if read.stats.n_events == 0:
            raise KaadError("no events to score in the given inputs")
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")  # stdout is for results
        by_day = Path(tmp) / "by-day"
        # One pass writes one table per UTC day (utc_day=YYYY-MM-DD/), so each day reads its own.
        con.execute(
            "COPY (SELECT *, CAST(timezone('UTC', timestamp) AS DATE) AS utc_day "
            f"FROM read_parquet({_sql_text(table)}) WHERE timestamp IS NOT NULL) "
            f"TO {_sql_text(by_day)} (FORMAT parquet, PARTITION_BY (utc_day))"
        )
        each = replace(job, cluster=job.cluster or cluster_of(job.inputs))
        done, skipped = [], []
        for part in sorted(by_day.glob("utc_day=*")):
            day = date.fromisoformat(part.name.removeprefix("utc_day="))
            files = [str(f) for f in sorted(part.glob("*.parquet"))]
            try:
                done.append(run_score_job(replace(each, inputs=files, day=day)))
            except DayOrderError as exc:  # refused before anything was scored, written or learned
                skipped.append((day, str(exc)))
    return DaysResult(done, read.stats, skipped)


def _score_lake_days(job: ScoreJob, days: list[date]) -> DaysResult:
    """:func:`run_score_days` of a lake: each day scored as ``--day DAY`` scores it."""
    from engine.score import one_cluster

    done, skipped = [], []
    stats = IngestStats()
    with one_cluster(job.engine) as engine:  # type: ignore[arg-type]  # an EngineConfig or None
        each = replace(job, cluster=job.cluster or cluster_of(job.inputs), engine=engine)
        for day in days:
            try:
                done.append(run_score_job(replace(each, day=day)))
            except DayOrderError as exc:  # refused before anything was read, scored or learned
                skipped.append((day, str(exc)))
                continue
            stats.n_files += done[-1].result.stats.n_files
            stats.n_events += done[-1].result.stats.n_events
    return DaysResult(done, stats, skipped)


def _sql_text(path: Path) -> str:
    """``path`` as a DuckDB string literal."""
    return "'" + str(path).replace("'", "''") + "'"
