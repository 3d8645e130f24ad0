"""MLflow tracking: where runs go, what a training run records, and champion promotion.

MLflow is imported lazily (it costs over a second) and only by commands that track.
Estimators know nothing about MLflow; the pipelines call this module at the end of a run.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from errors import KaadError
from models.promotion import describe_version
from models.promotion import promote as promote_version
from models.run_record import PROMOTION_METRIC, log_datasets, logged_metrics, run_name, training_params

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPERIMENT = "kaad"
DEFAULT_MODEL_NAME = "kaad-detector"


def default_store(root: Path = ROOT) -> tuple[str, str]:
    """The project's store: ``sqlite:///<root>/mlruns/mlflow.db`` and artifacts beside it."""
    mlruns = (root / "mlruns").resolve()
    mlruns.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{mlruns / 'mlflow.db'}", (mlruns / "artifacts").as_uri()


def configure_tracking(tracking_uri: str | None = None, root: Path = ROOT) -> tuple[str, str | None]:
    """Point MLflow at ``tracking_uri``, ``$MLFLOW_TRACKING_URI`` or the project store.

    Returns the URI and the artifact location for new experiments (None: the server decides).
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if not uri:
        uri, artifacts = default_store(root)
    elif uri.startswith("sqlite:///"):
        artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    mlflow.set_tracking_uri(uri)
    _apply_log_level()
    return uri, artifacts


def _apply_log_level() -> None:
    """Hold MLflow's and alembic's loggers at ``$MLFLOW_LOGGING_LEVEL`` (the CLI sets it).

    MLflow reads the variable once, on import; a process that imported it earlier (a test
    session, a notebook) would otherwise keep whatever level it had then.
    """
    level = logging.getLevelName(os.environ.get("MLFLOW_LOGGING_LEVEL", "").strip().upper())
    if isinstance(level, int):
        logging.getLogger("mlflow").setLevel(level)
        # A line per database migration is noise even when debugging (MLflow agrees).
        logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


@contextmanager
def _mlflow_prints_only_if_verbose():
    """Drop what MLflow prints to stderr ("Successfully registered model ...") unless its INFO logs show.

    Those lines bypass logging, and MLflow re-enables its own stream switch inside
    ``log_model``; kaad's summary says what was registered and promoted.
    """
    if logging.getLogger("mlflow").isEnabledFor(logging.INFO):
        yield
        return
    with redirect_stderr(io.StringIO()):
        yield


#: What each experiment kaad writes holds, shown as its description in the MLflow UI.
EXPERIMENT_NOTES = {
    "training": (
        "kaad training runs: one row per trained model (`kaad train`, `make demo`), named after "
        "what ran (trees, alerts per day, data range). The baselines each run is compared with "
        "are its child runs. Metrics: README, 'Comparing runs in MLflow'."
    ),
    "scoring": (
        "kaad scoring runs: one per scored day (`kaad score`), tagged with the registered model "
        "version that scored it and linked to that model's training run."
    ),
    "kaad-eval": "`make eval` runs: the detector and the baselines over simulated seeds (docs/detection.md).",
    "Default": "MLflow's own default experiment; kaad logs nothing here.",
}
NOTE_TAG = "mlflow.note.content"


def _experiment_id(name: str, artifacts: str | None, role: str | None = None) -> str:
    """The experiment's id, created when missing; a kaad experiment without a description gets one."""
    import mlflow
    from mlflow.tracking import MlflowClient

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts)
        tags: dict = {}
    else:
        experiment_id, tags = experiment.experiment_id, experiment.tags
    note = EXPERIMENT_NOTES.get(role or name)
    if note and not tags.get(NOTE_TAG):  # never overwrite what someone wrote in the UI
        MlflowClient().set_experiment_tag(experiment_id, NOTE_TAG, note)
    return experiment_id


def _git_commit(root: Path = ROOT) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class TrackedRun:
    """What tracking did with a training run."""

    run_id: str
    experiment_id: str
    model_version: str | None
    promoted: bool
    promotion_note: str
    baseline_run_ids: dict[str, str]
    model_name: str = DEFAULT_MODEL_NAME
    run_name: str = ""


def _artifacts(result, folder: Path, inputs: Sequence[str], eval_inputs: Sequence[str] | None, labels) -> None:
    """Write the run's files into ``folder``: features, charts, tables, the input file list."""
    from models import run_charts
    from safe_text import csv_cell

    bundle = result.bundle
    (folder / "features.json").write_text(json.dumps(bundle.feature_names, indent=1))
    # Constant over the fit days: no tree can split on them (the metric counts them).
    constant = list(getattr(result, "constant_features", []))
    (folder / "constant_features.json").write_text(json.dumps(constant, indent=1))
    run_charts.score_histogram(result.scores.to_numpy(), bundle.threshold, folder / "score_histogram.png")
    top = result.scores.sort_values(ascending=False).head(50).reset_index()
    top["identity"] = top["identity"].map(csv_cell)
    top.to_csv(folder / "held_out_top_identity_days.csv", index=False)
    lines = ["# history: the files trained on", *map(str, bundle.sources or inputs)]
    if eval_inputs:
        lines += ["", "# evaluation", *map(str, eval_inputs)]
    if labels is not None:
        lines += ["", "# labels", str(labels)]
    (folder / "inputs.txt").write_text("\n".join(lines) + "\n")
    if result.evaluation is not None:
        ranks = run_charts.attack_ranks(result.evaluation, result.baselines)
        if not ranks.empty:
            ranks.to_csv(folder / "attack_ranks.csv", index=False)
            run_charts.attack_ranks_chart(ranks, folder / "attack_ranks.png")
        run_charts.precision_recall_chart(result.evaluation, result.baselines, folder / "precision_recall.png")


def log_training(
    result,
    bundle_path: Path,
    *,
    config=None,
    inputs: Sequence[str] = (),
    eval_inputs: Sequence[str] | None = None,
    labels: Path | None = None,
    cluster: str = "",
    experiment: str = DEFAULT_EXPERIMENT,
    model_name: str = DEFAULT_MODEL_NAME,
    promote: bool = False,
    tracking_uri: str | None = None,
    key: bytes | None = None,
    force_promote: bool = False,
) -> TrackedRun:
    """Log a :class:`pipelines.train.TrainResult` as an MLflow run and register its model.

    Every entry point calls this, so every run has the same parameters
    (:func:`models.run_record.training_params` of ``result`` and ``config``), its name, its
    datasets and its artifacts. Baselines become child runs. The bundle at ``bundle_path`` is
    checked as :func:`models.persistence.read_verified` does (``key`` defaults to the
    configured signing key) and exactly those bytes are uploaded.
    """
    import mlflow
    import sklearn
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from models.persistence import KAAD_VERSION, read_verified, sign, signing_key

    _, artifacts = configure_tracking(tracking_uri)
    experiment_id = _experiment_id(experiment, artifacts, role="training")
    client = MlflowClient()
    tags = {
        "cluster": cluster or "unknown",
        "kaad_version": KAAD_VERSION,
        "git_commit": _git_commit(),
        "kind": "isolation_forest",
    }
    bundle = result.bundle
    key = signing_key() if key is None else key
    # Verified once, uploaded as read: a bundle swapped after save_bundle is refused, not re-signed.
    data = read_verified(Path(bundle_path), key=key)
    tags["bundle_sha256"] = hashlib.sha256(data).hexdigest()
    if key:
        tags["bundle_signature"] = sign(data, key)
    if getattr(result, "eval_set_hash", None):
        tags["eval_set_hash"] = result.eval_set_hash
    params = training_params(result, config)
    name = run_name(params)
    metrics = logged_metrics(result.metrics()) | {"features": float(len(bundle.feature_names))}
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        log_datasets(result, inputs=list(inputs) or list(bundle.sources), eval_inputs=eval_inputs)
        with tempfile.TemporaryDirectory() as tmp:
            _artifacts(result, Path(tmp), inputs, eval_inputs, labels)
            for file in sorted(os.listdir(tmp)):
                mlflow.log_artifact(str(Path(tmp, file)))
        with tempfile.TemporaryDirectory() as tmp:
            # One name in every run, whatever the local file was called: scoring fetches it.
            Path(tmp, "model.joblib").write_bytes(data)
            Path(tmp, "model.joblib.sha256").write_text(f"{tags['bundle_sha256']}  model.joblib\n")
            if key:
                Path(tmp, "model.joblib.sig").write_text(f"{tags['bundle_signature']}  model.joblib\n")
            mlflow.log_artifacts(tmp, artifact_path="bundle")
        example = result.windows.head(5).reset_index(drop=True)
        signature = infer_signature(example, bundle.detector.score_samples(result.windows.head(5)))
        with _mlflow_prints_only_if_verbose():
            info = mlflow.sklearn.log_model(
                bundle.detector,
                name="model",
                serialization_format="cloudpickle",
                signature=signature,
                input_example=example,
                registered_model_name=model_name,
                pip_requirements=[
                    f"scikit-learn=={sklearn.__version__}",
                    f"pandas=={pd.__version__}",
                    f"numpy=={np.__version__}",
                ],
            )
        version = str(info.registered_model_version) if info.registered_model_version else None
        baseline_ids = {}
        for method, report in result.baselines.items():
            # Children of the model's run: the runs table keeps one row per model.
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=f"baseline {method.replace('_', '-')}",
                nested=True,
                tags={**tags, "kind": f"baseline_{method}", "compares_with": run.info.run_id},
            ) as child:
                mlflow.log_params({"method": method, "window": bundle.window})
                mlflow.log_metrics(logged_metrics(report.metrics()))
                baseline_ids[method] = child.info.run_id
    asked = promote or force_promote
    promoted, note = False, "not asked to promote"
    if asked and version is not None:
        promoted, note = promote_version(client, model_name, version, result, force=force_promote)
    if version is not None:
        describe_version(
            client,
            model_name,
            version,
            run_name=name,
            params=params,
            metrics=metrics,
            asked=asked,
            promoted=promoted,
            note=note,
        )
    return TrackedRun(run.info.run_id, experiment_id, version, promoted, note, baseline_ids, model_name, name)


def log_scoring(
    result, *, model_label: str, top_csv: Path | None, tracking_uri: str | None = None, experiment: str = "kaad-scoring"
) -> str:
    """Record a daily scoring run: the model used (version, and a link to its run), the day, counts."""
    import mlflow

    _, artifacts = configure_tracking(tracking_uri)
    experiment_id = _experiment_id(experiment, artifacts, role="scoring")
    # A label from models.registry.resolve_bundle says which version and run it names.
    version = getattr(model_label, "version", None)
    source_run = getattr(model_label, "run_id", None)
    tags = {"kind": "scoring"}
    if getattr(model_label, "model_name", None):
        tags["model_name"] = model_label.model_name  # type: ignore[attr-defined]
    if version:
        tags["model_version"] = str(version)
    note = f"Scored {result.day} with {model_label}."
    if source_run:
        tags["model_run_id"] = source_run
        link = _run_link(source_run)
        if link:
            note += f" Training run: [{link[0]}]({link[1]})."
    tags[NOTE_TAG] = note
    name = f"score {result.day}" + (f" v{version}" if version else "")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.log_params({"day": str(result.day), "model": str(model_label)[:500]})
        mlflow.log_metrics(
            {
                "windows": float(len(result.windows)),
                "anomalous_windows": float(result.windows["is_anomaly"].sum()),
                "identity_days": float(len(result.identities)),
                "alerts": float(result.n_alerts),
                # New findings and open ones made worse: what pages (repeats of open findings do not).
                "new_findings": float(result.n_new_findings),
                "suppressed": float(result.n_suppressed),
                "events": float(result.stats.n_events),
                "rejects": float(result.stats.n_rejected),
                "threshold": round(float(result.threshold), 4),
            }
        )
        if top_csv is not None and Path(top_csv).exists():
            mlflow.log_artifact(str(top_csv))
    return run.info.run_id


def _run_link(run_id: str) -> tuple[str, str] | None:
    """The run's name and its page in the MLflow UI (a link relative to the UI's own address)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        return None
    return run.info.run_name or run_id, f"#/experiments/{run.info.experiment_id}/runs/{run_id}"


def recent_runs(experiment: str = DEFAULT_EXPERIMENT, tracking_uri: str | None = None, limit: int = 20) -> pd.DataFrame:
    """Recent runs of an experiment with their key metrics, newest first."""
    from mlflow.tracking import MlflowClient

    configure_tracking(tracking_uri)
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise KaadError(f"no experiment {experiment!r} in the tracking store; train a model first")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=4 * limit)
    rows = []
    for r in runs:
        if "mlflow.parentRunId" in r.data.tags:  # a baseline, shown in its model's run
            continue
        m = r.data.metrics
        rows.append(
            {
                "run_id": r.info.run_id,
                "name": r.info.run_name,
                "kind": r.data.tags.get("kind", ""),
                "started": pd.Timestamp(r.info.start_time, unit="ms", tz="UTC"),
                # Runs logged before the short metric names (README) keep the long ones.
                "train_windows": m.get("train_windows", m.get("windows")),
                "ap": m.get(PROMOTION_METRIC, m.get("eval_average_precision")),
                "roc_auc": m.get("roc_auc", m.get("eval_roc_auc")),
                "threshold": m.get("threshold"),
            }
        )
    rows = rows[:limit]
    return pd.DataFrame(rows)
