"""Find the model bundle to score with: a file, an MLflow run, or a registered model alias."""

from __future__ import annotations

import tempfile
from pathlib import Path

from errors import KaadError, ModelCompatibilityError
from models.persistence import ModelBundle, load_bundle
from models.tracking import CHAMPION, DEFAULT_MODEL_NAME, configure_tracking


def _from_run(run_id: str) -> ModelBundle:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient().get_run(run_id)
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bundle",
                                                         dst_path=tempfile.mkdtemp(prefix="kaad-bundle-")))
    except MlflowException as exc:
        raise KaadError(f"cannot fetch the bundle of run {run_id!r}: {exc.message}") from None
    expected = run.data.tags.get("bundle_sha256")
    if not expected:
        raise ModelCompatibilityError(f"run {run_id!r} records no bundle_sha256 tag; refusing to load it")
    return load_bundle(local / "model.joblib", sha256=expected)


def resolve_bundle(*, bundle: Path | None = None, run: str | None = None, model: str | None = None,
                   tracking_uri: str | None = None) -> tuple[ModelBundle, str]:
    """Load the bundle named by one of the options (default: the champion); return it and a label."""
    if bundle is not None:
        return load_bundle(bundle), f"bundle {bundle}"
    configure_tracking(tracking_uri)
    if run is not None:
        return _from_run(run), f"run {run}"
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    spec = model or f"{DEFAULT_MODEL_NAME}@{CHAMPION}"
    name, sep, alias = spec.partition("@")
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, alias) if sep else client.get_model_version(name, alias)
    except MlflowException:
        raise KaadError(f"no model {spec!r} in the tracking store; train one with --promote, or pass "
                        "--bundle PATH") from None
    return _from_run(version.run_id), f"model {name} version {version.version} ({spec})"
