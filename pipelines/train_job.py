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


@dataclass
class TrainJobResult:
    """The training result, the bundle's SHA-256 and the MLflow run (when tracked)."""

    result: TrainResult
    digest: str
    tracked: TrackedRun | None = None


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
    return TrainJobResult(result, digest, tracked)
