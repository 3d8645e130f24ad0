"""MLflow tracking: where runs go, what a training run records, and champion promotion.

MLflow is imported lazily (it costs over a second) and only by commands that track.
Estimators know nothing about MLflow; the pipelines call this module at the end of a run.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import subprocess
import tempfile
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from errors import KaadError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPERIMENT = "kaad"
DEFAULT_MODEL_NAME = "kaad-detector"
CHAMPION = "champion"
PROMOTION_METRIC = "eval_average_precision"


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


def _experiment_id(name: str, artifacts: str | None) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifacts)


def _git_commit(root: Path = ROOT) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _histogram(scores: np.ndarray, threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(scores, bins=80, color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("anomaly_score (higher = more anomalous)")
    ax.set_ylabel("held-out identity-days")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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


@dataclass(frozen=True)
class Champion:
    """The model version the alias ``champion`` points at, and what it was measured on."""

    version: str
    average_precision: float | None
    eval_set_hash: str | None


def _unreadable(model_name: str, exc) -> KaadError:
    return KaadError(
        f"cannot read the champion of model {model_name!r} ({exc.error_code}): {exc.message}; not promoting"
    )


def _champion(client, model_name: str) -> Champion | None:
    """The champion, or None when the registry says there is none; any other failure is an error."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise _unreadable(model_name, exc) from None
    # A missing alias is read from the model's alias list, not guessed from an error: MLflow
    # reports it as INVALID_PARAMETER_VALUE, a code it also uses for real mistakes.
    version = registered.aliases.get(CHAMPION)
    if version is None:
        return None
    try:
        run = client.get_run(client.get_model_version(model_name, version).run_id)
    except MlflowException as exc:
        raise _unreadable(model_name, exc) from None
    return Champion(str(version), run.data.metrics.get(PROMOTION_METRIC), run.data.tags.get("eval_set_hash"))


def log_training(
    result,
    bundle_path: Path,
    *,
    params: dict,
    cluster: str = "",
    experiment: str = DEFAULT_EXPERIMENT,
    model_name: str = DEFAULT_MODEL_NAME,
    promote: bool = False,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    key: bytes | None = None,
    force_promote: bool = False,
) -> TrackedRun:
    """Log a :class:`pipelines.train.TrainResult` as an MLflow run and register its model.

    The bundle at ``bundle_path`` is checked as :func:`models.persistence.read_verified` does
    (``key`` defaults to the configured signing key) and exactly those bytes are uploaded.
    """
    import mlflow
    import sklearn
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from models.persistence import KAAD_VERSION, read_verified, sign, signing_key
    from safe_text import csv_cell

    _, artifacts = configure_tracking(tracking_uri)
    experiment_id = _experiment_id(experiment, artifacts)
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
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in result.metrics().items() if v == v})
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            (tmp_path / "features.json").write_text(json.dumps(bundle.feature_names, indent=1))
            # Constant over the fit days: no tree can split on them (the metric counts them).
            constant = list(getattr(result, "constant_features", []))
            (tmp_path / "constant_features.json").write_text(json.dumps(constant, indent=1))
            _histogram(result.scores.to_numpy(), bundle.threshold, tmp_path / "score_histogram.png")
            top = result.scores.sort_values(ascending=False).head(50).reset_index()
            top["identity"] = top["identity"].map(csv_cell)
            top.to_csv(tmp_path / "held_out_top_identity_days.csv", index=False)
            if result.evaluation is not None:
                result.evaluation.scenario_table().to_csv(tmp_path / "evaluation_scenarios.csv", index=False)
            for name in os.listdir(tmp_path):
                mlflow.log_artifact(str(tmp_path / name))
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
    promoted, note = False, "not asked to promote"
    if (promote or force_promote) and version is not None:
        promoted, note = _promote(client, model_name, version, result, force=force_promote)
    baseline_ids = {}
    for name, report in result.baselines.items():
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"baseline: {name}",
            tags={**tags, "kind": f"baseline_{name}", "compares_with": run.info.run_id},
        ) as b:
            mlflow.log_params({"method": name, "window": bundle.window})
            mlflow.log_metrics({k: float(v) for k, v in report.metrics().items() if v == v})
            baseline_ids[name] = b.info.run_id
    return TrackedRun(run.info.run_id, experiment_id, version, promoted, note, baseline_ids, model_name)


def _short(digest: str | None) -> str:
    return "unknown" if not digest else digest[:12]


def _promote(client, model_name: str, version: str, result, *, force: bool = False) -> tuple[bool, str]:
    """Move the alias ``champion`` to ``version`` if it was measured and measures at least as well.

    Only a finite average precision counts, and only against a champion measured on the same
    evaluation set (``eval_set_hash``); ``force`` skips the comparison, never the measurement.
    """
    ours = None if result.evaluation is None else result.evaluation.average_precision
    if ours is None or not math.isfinite(ours):
        why = (
            "it has no evaluation (train with --eval-data)"
            if ours is None
            else "its average precision is not a number (no label matched an evaluated window)"
        )
        return False, f"not promoted: {why}; only a measured model becomes champion"
    ours_hash = getattr(result, "eval_set_hash", None)
    champion = _champion(client, model_name)
    if champion is None:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return True, f"version {version} is the first champion (average precision {ours:.3f})"
    theirs = champion.average_precision
    measured = theirs is not None and math.isfinite(theirs)
    if measured and champion.eval_set_hash != ours_hash:
        other = (
            f"champion version {champion.version} was measured on another evaluation set "
            f"(hash {_short(champion.eval_set_hash)}, this run {_short(ours_hash)})"
        )
        if not force:
            return False, (
                f"not promoted: {other}, so the average precisions do not compare; "
                "evaluate on the champion's set, or pass --force-promote"
            )
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return True, f"version {version} is champion by --force-promote (average precision {ours:.3f}); {other}"
    if measured and ours < theirs and not force:
        return False, (
            f"kept version {champion.version} as champion: its average precision "
            f"{theirs:.3f} beats this run's {ours:.3f} on the same evaluation set"
        )
    client.set_registered_model_alias(model_name, CHAMPION, version)
    previous = f"{theirs:.3f}" if measured else "none measured"
    how = " by --force-promote" if force and measured and ours < theirs else ""
    return True, (
        f"version {version} is champion{how} (average precision {ours:.3f}, version {champion.version} had {previous})"
    )


def log_scoring(
    result, *, model_label: str, top_csv: Path | None, tracking_uri: str | None = None, experiment: str = "kaad-scoring"
) -> str:
    """Record a daily scoring run: the model used, the day, counts and the top-N table."""
    import mlflow

    _, artifacts = configure_tracking(tracking_uri)
    experiment_id = _experiment_id(experiment, artifacts)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"score {result.day}", tags={"kind": "scoring"}) as run:
        mlflow.log_params({"day": str(result.day), "model": model_label[:500]})
        mlflow.log_metrics(
            {
                "windows": float(len(result.windows)),
                "anomalous_windows": float(result.windows["is_anomaly"].sum()),
                "identity_days": float(len(result.identities)),
                "alerts": float(result.n_alerts),
                "suppressed": float(result.n_suppressed),
                "events": float(result.stats.n_events),
                "rejects": float(result.stats.n_rejected),
                "threshold": float(result.threshold),
            }
        )
        if top_csv is not None and Path(top_csv).exists():
            mlflow.log_artifact(str(top_csv))
    return run.info.run_id


def recent_runs(experiment: str = DEFAULT_EXPERIMENT, tracking_uri: str | None = None, limit: int = 20) -> pd.DataFrame:
    """Recent runs of an experiment with their key metrics, newest first."""
    from mlflow.tracking import MlflowClient

    configure_tracking(tracking_uri)
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise KaadError(f"no experiment {experiment!r} in the tracking store; train a model first")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit)
    rows = []
    for r in runs:
        m = r.data.metrics
        rows.append(
            {
                "run_id": r.info.run_id,
                "name": r.info.run_name,
                "kind": r.data.tags.get("kind", ""),
                "started": pd.Timestamp(r.info.start_time, unit="ms", tz="UTC"),
                "windows": m.get("windows"),
                "eval_ap": m.get("eval_average_precision"),
                "eval_roc_auc": m.get("eval_roc_auc"),
                "threshold": m.get("threshold"),
            }
        )
    return pd.DataFrame(rows)


def ui_command(port: int, tracking_uri: str | None = None, root: Path = ROOT) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a lean MLflow UI bound to 127.0.0.1 on our store."""
    import sys

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if not uri:
        uri, artifacts = default_store(root)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if artifacts:
        cmd += ["--default-artifact-root", artifacts]
    # MLflow's own import of a deprecated starlette module warns at every start; not ours to act on.
    warnings = ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:starlette.middleware.wsgi is deprecated"])
    )
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONWARNINGS": warnings,
    }
    return cmd, env


def run_process_group(cmd: list[str], env: dict[str, str], grace: float = 10.0) -> int:
    """Run ``cmd`` in a process group of its own until it ends or we get SIGINT, SIGTERM or SIGHUP.

    Any of those signals stops the whole group (the MLflow server and the uvicorn workers it
    starts) with one SIGTERM, their quiet shutdown, then SIGKILL after ``grace`` seconds.
    A group of its own also keeps the terminal's Ctrl-C from reaching uvicorn directly,
    which answers it with an asyncio traceback. Returns the exit code, 0 when stopped by a signal.
    """
    import signal
    import time

    server = subprocess.Popen(cmd, env=env, process_group=0)
    stopped: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped.append(signum)
        try:
            os.killpg(server.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = server.wait()
        # The server may be gone before its workers: wait for the whole group, not just it.
        deadline = time.monotonic() + grace
        while _group_alive(server.pid):
            if time.monotonic() > deadline:
                os.killpg(server.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopped else code


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
