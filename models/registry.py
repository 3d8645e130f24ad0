"""Find the model bundle to score with: a file, an MLflow run, or a registered model alias."""

from __future__ import annotations

import tempfile
from pathlib import Path

from errors import KaadError, ModelCompatibilityError
from models.persistence import ModelBundle, load_bundle, signing_key
from models.promotion import CHAMPION
from models.tracking import DEFAULT_MODEL_NAME, configure_tracking


class ModelSource(str):
    """The label of a loaded bundle ("model kaad-detector version 3 (...)"), knowing what it names.

    A ``str`` so every report prints it as before; scoring runs read ``model_name``,
    ``version`` and ``run_id`` to tag themselves and link to the training run.
    """

    model_name: str | None
    version: str | None
    run_id: str | None

    def __new__(
        cls, text: str, *, model_name: str | None = None, version: str | None = None, run_id: str | None = None
    ) -> ModelSource:
        label = super().__new__(cls, text)
        label.model_name, label.version, label.run_id = model_name, version, run_id
        return label


def _full_run_id(prefix: str) -> str:
    """The id of the one run whose id starts with ``prefix`` (``kaad runs`` shows 12 characters)."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    prefix = prefix.strip().lower()
    if len(prefix) >= 32:
        return prefix  # a whole id: fetched (or reported missing) as given
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    matches: list[str] = []
    token = None
    while experiments:
        page = client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=1000, page_token=token)
        matches += [r.info.run_id for r in page if r.info.run_id.startswith(prefix)]
        token = page.token
        if not token:
            break
    if not prefix or not matches:
        raise KaadError(f"no run whose id starts with {prefix!r} in the tracking store; `kaad runs` lists them")
    if len(matches) > 1:
        raise KaadError(
            f"run id {prefix!r} is ambiguous: {len(matches)} runs start with it "
            f"({', '.join(sorted(matches))}); give more of the id"
        )
    return matches[0]


def _from_run(run_id: str, key: bytes | None) -> ModelBundle:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="kaad-bundle-") as tmp:
        try:
            run = MlflowClient().get_run(run_id)
            local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bundle", dst_path=tmp))
        except MlflowException as exc:
            raise KaadError(f"cannot fetch the bundle of run {run_id!r}: {exc.message}") from None
        expected = run.data.tags.get("bundle_sha256")
        if not expected:
            raise ModelCompatibilityError(f"run {run_id!r} records no bundle_sha256 tag; refusing to load it")
        # Tags and artifacts are equally writable by whoever can write the store, so with a key
        # only the HMAC counts (from the run's tag, else the .sig artifact). The bytes are read,
        # checked and unpickled in memory before the directory goes.
        return load_bundle(
            local / "model.joblib",
            sha256=expected,
            signature=run.data.tags.get("bundle_signature"),
            key=key,
            name=f"the bundle of run {run_id!r}",
        )


def resolve_bundle(
    *,
    bundle: Path | None = None,
    run: str | None = None,
    model: str | None = None,
    tracking_uri: str | None = None,
    key_file: Path | None = None,
) -> tuple[ModelBundle, ModelSource]:
    """Load the bundle named by one of the options (default: the champion); return it and a label.

    With a signing key (``key_file``, else ``$KAAD_SIGNING_KEY``) the bundle must carry a valid
    signature for it, wherever it comes from.
    """
    key = signing_key(key_file)
    if bundle is not None:
        return load_bundle(bundle, key=key), ModelSource(f"bundle {bundle}")
    configure_tracking(tracking_uri)
    if run is not None:
        run = _full_run_id(run)
        return _from_run(run, key), ModelSource(f"run {run}", run_id=run)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    spec = model or f"{DEFAULT_MODEL_NAME}@{CHAMPION}"
    name, sep, alias = spec.partition("@")
    client = MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise KaadError(f"cannot look up model {spec!r} in the tracking store: {exc.message}") from None
        raise KaadError(
            f"no model {spec!r} in the tracking store; train one with --promote, or pass --bundle PATH"
        ) from None
    # The model exists: a wrong alias is read from its alias list (MLflow reports a missing
    # alias as INVALID_PARAMETER_VALUE, a code it also uses for real mistakes).
    if sep and alias not in registered.aliases:
        have = ", ".join(f"{a} (version {v})" for a, v in sorted(registered.aliases.items()))
        raise KaadError(
            f"model {name!r} has no alias {alias!r}; "
            + (f"its aliases: {have}" if have else "it has none yet (kaad train --promote sets 'champion')")
        )
    try:
        version = client.get_model_version_by_alias(name, alias) if sep else client.get_model_version(name, alias)
    except MlflowException as exc:
        raise KaadError(f"cannot look up model {spec!r} in the tracking store: {exc.message}") from None
    if not version.run_id:  # registered from a plain path: there is no run to fetch a bundle from
        raise KaadError(
            f"model {spec!r} version {version.version} was not logged by a run; kaad loads "
            "bundles from training runs (kaad train --promote), or pass --bundle PATH"
        )
    label = ModelSource(
        f"model {name} version {version.version} ({spec})",
        model_name=name,
        version=str(version.version),
        run_id=version.run_id,
    )
    return _from_run(version.run_id, key), label
