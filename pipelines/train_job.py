"""The training job: fit on history, save the bundle (hashed, signed), record the run in MLflow.

``kaad train`` parses its options into a :class:`TrainJob` and calls :func:`run_train_job`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.persistence import save_bundle, signing_key
from models.tracking import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME, TrackedRun, log_training
from pipelines.train import TrainConfig, TrainResult, train
from reports.progress import step
from sources.aws import AwsOptions
from sources.files import expand_inputs


@dataclass(frozen=True)
class TrainJob:
    """Everything ``kaad train`` was asked to do."""

    inputs: list[str]  # as given: paths, directories, globs, s3://, eks://
    config: TrainConfig
    out_path: Path = Path("out/kaad-model.joblib")
    eval_inputs: list[str] | None = None
    labels: Path | None = None
    aws: AwsOptions | None = None
    signing_key_file: Path | None = None
    track: bool = True
    cluster: str = ""
    experiment: str = DEFAULT_EXPERIMENT
    model_name: str = DEFAULT_MODEL_NAME
    promote: bool = False
    force_promote: bool = False
    tracking_uri: str | None = None
    #: VPC flow logs of the training days: the model keeps their network baseline.
    flow_logs: tuple[str, ...] = ()
    flow_format: str | None = None


@dataclass
class TrainJobResult:
    """The training result, the bundle's SHA-256 and the MLflow run (when tracked)."""

    result: TrainResult
    digest: str
    tracked: TrackedRun | None = None
    #: What the flow logs gave the bundle (one line), when trained with them.
    network: str | None = None


def run_train_job(job: TrainJob, on_progress: Callable[[int, str], None] | None = None) -> TrainJobResult:
    """Train, save and (unless ``job.track`` is False) log and register the model."""
    key = signing_key(job.signing_key_file)
    result = train(
        expand_inputs(job.inputs),
        job.config,
        eval_inputs=job.eval_inputs,
        labels=job.labels,
        on_progress=on_progress,
        aws=job.aws,
    )
    network = None
    if job.flow_logs:
        with step("train: network baseline from the flow logs"):
            network = _network_baseline(job, result)
    digest = save_bundle(result.bundle, job.out_path, key=key)
    tracked = None
    if job.track:
        # Seconds on a new store (tables created, model registered): say so on a terminal.
        with step("train: log the run to MLflow"):
            tracked = log_training(
                result,
                job.out_path,
                config=job.config,
                inputs=job.inputs,
                eval_inputs=job.eval_inputs,
                labels=job.labels,
                cluster=job.cluster,
                experiment=job.experiment,
                model_name=job.model_name,
                promote=job.promote,
                tracking_uri=job.tracking_uri,
                key=key,
                force_promote=job.force_promote,
            )
    return TrainJobResult(result, digest, tracked, network)


def _network_baseline(job: TrainJob, result: TrainResult) -> str:
    """Learn the training days' network baseline into the bundle; say what it holds."""
    from datetime import date

    from flows.join import quality_text
    from flows.source import learn_baseline

    end = date.fromisoformat(result.bundle.training_end[:10]) if result.bundle.training_end else None
    baseline, source = learn_baseline(
        list(job.flow_logs), expand_inputs(job.inputs), until=end, flow_format=job.flow_format, aws=job.aws
    )
    result.bundle.network_baseline = baseline.as_dict()
    assert source.stats is not None and source.attribution is not None  # learn_baseline read them
    return "; ".join(
        [source.stats.summary(), quality_text(source.attribution.quality, source.stats.version), baseline.summary()]
    )
