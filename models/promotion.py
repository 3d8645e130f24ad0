"""The registry side of a training run: champion promotion, and what a model version says about itself."""

from __future__ import annotations

import math
from dataclasses import dataclass

from errors import KaadError
from models.run_record import DECIMALS, OLD_PROMOTION_METRIC, PROMOTION_METRIC

CHAMPION = "champion"


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


def champion(client, model_name: str) -> Champion | None:
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
    metrics = run.data.metrics
    # Runs logged before the short metric names keep the long one.
    ap = metrics.get(PROMOTION_METRIC, metrics.get(OLD_PROMOTION_METRIC))
    return Champion(str(version), ap, run.data.tags.get("eval_set_hash"))


def _short(digest: str | None) -> str:
    return "unknown" if not digest else digest[:12]


def promote(client, model_name: str, version: str, result, *, force: bool = False) -> tuple[bool, str]:
    """Move the alias ``champion`` to ``version`` if it was measured and measures at least as well.

    Only a finite average precision counts, and only against a champion measured on the same
    evaluation set (``eval_set_hash``); ``force`` skips the comparison, never the measurement.
    Both sides are compared as logged (rounded to the decimals the runs keep).
    """
    ours = None if result.evaluation is None else result.evaluation.average_precision
    if ours is None or not math.isfinite(ours):
        why = (
            "it has no evaluation (train with --eval-data)"
            if ours is None
            else "its average precision is not a number (no label matched an evaluated window)"
        )
        return False, f"not promoted: {why}; only a measured model becomes champion"
    ours = round(ours, DECIMALS)
    ours_hash = getattr(result, "eval_set_hash", None)
    current = champion(client, model_name)
    if current is None:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return True, f"version {version} is the first champion (average precision {ours:.3f})"
    theirs = current.average_precision
    measured = theirs is not None and math.isfinite(theirs)
    if measured and current.eval_set_hash != ours_hash:
        other = (
            f"champion version {current.version} was measured on another evaluation set "
            f"(hash {_short(current.eval_set_hash)}, this run {_short(ours_hash)})"
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
            f"kept version {current.version} as champion: its average precision "
            f"{theirs:.3f} beats this run's {ours:.3f} on the same evaluation set"
        )
    client.set_registered_model_alias(model_name, CHAMPION, version)
    previous = f"{theirs:.3f}" if measured else "none measured"
    how = " by --force-promote" if force and measured and ours < theirs else ""
    return True, (
        f"version {version} is champion{how} (average precision {ours:.3f}, version {current.version} had {previous})"
    )


MODEL_DESCRIPTION = (
    "kaad's detector: an isolation forest over each identity's hourly behaviour plus action "
    "rarity, calibrated on held-out days. Each version's description says what it was trained "
    "and evaluated on; the alias 'champion' is what `kaad score` uses."
)


def describe_version(
    client,
    model_name: str,
    version: str,
    *,
    run_name: str,
    params: dict[str, str],
    metrics: dict[str, float],
    asked: bool,
    promoted: bool,
    note: str,
) -> None:
    """Write the version's description (data, AP, alerts per day, the promotion decision) and tags."""

    def number(name: str, fmt: str = ".3f") -> str:
        return "-" if name not in metrics else format(metrics[name], fmt)

    data = f"{params['data_start']} to {params['data_end']} (end exclusive, {params['window']} windows)"
    evaluated = (
        f"evaluated on {params['eval_start']} to {params['eval_end']}: AP {number('ap')}, "
        f"ROC AUC {number('roc_auc')}, recall@20 {number('recall_at_20', '.2f')}"
        if "eval_start" in params
        else "not evaluated"
    )
    decision = note if asked else "promotion not asked (kaad train --promote)"
    client.update_model_version(
        model_name,
        version,
        description=(
            f"{run_name}. Trained on {data}; {evaluated}; {number('alerts_per_day', '.2f')} alerts per "
            f"held-out day. Promotion: {decision}."
        ),
    )
    tags = {
        "run_name": run_name,
        "data_start": params["data_start"],
        "data_end": params["data_end"],
        "ap": number("ap", ".4f"),
        "alerts_per_day": number("alerts_per_day", ".2f"),
        "promotion": "champion" if promoted else ("not promoted" if asked else "not asked"),
        "promotion_reason": decision,
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    registered = client.get_registered_model(model_name)
    if not registered.description:
        client.update_registered_model(model_name, description=MODEL_DESCRIPTION)
