"""What a training run shows in MLflow: its parameters, name, datasets, files, baselines and version.

Each test logs the session's trained model (a small simulated cluster, evaluated on day 8)
into a fresh SQLite store and reads back what the MLflow UI would show.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from models.detector import DetectorParams
from models.persistence import save_bundle
from models.run_record import _text, training_params, windows_digest
from models.tracking import log_training
from pipelines.train import TrainConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def _log(trained, tmp_path, **kwargs):
    bundle = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle)
    files = trained["files"]
    return log_training(
        trained["result"],
        bundle,
        config=TrainConfig(params=DetectorParams(seed=1)),
        inputs=files[:-1],
        eval_inputs=files[-1:],
        labels=trained["labels"],
        **kwargs,
    )


def test_the_cli_and_the_library_log_the_same_parameters_and_leave_unset_ones_out(trained):
    # `kaad train` builds its config from options (proxies parsed to loopback, no --since);
    # make demo and other engines pass TrainConfig's defaults. Same training, same parameters.
    from cli import _proxies

    cli = TrainConfig(params=DetectorParams(seed=1), trusted_proxies=_proxies(None))
    library = TrainConfig(params=DetectorParams(seed=1))
    params = training_params(trained["result"], cli)
    assert params == training_params(trained["result"], library)
    # Nothing logged as "None": calibration_days, since, until and the proxies were not set.
    assert "None" not in params.values()
    assert not {"calibration_days", "since", "until", "trusted_proxies", "sources", "features"} & set(params)
    # The data range is a parameter: the history's and the evaluation's first and last day.
    assert (params["data_start"], params["data_end"]) == ("2026-03-02", "2026-03-09")
    assert (params["eval_start"], params["eval_end"]) == ("2026-03-09", "2026-03-10")
    assert params["n_estimators"] == "200" and params["seed"] == "1" and params["window"] == "1h"


def test_a_run_is_named_after_what_ran_and_holds_its_datasets_and_input_files(trained, tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    tracked = _log(trained, tmp_path)
    client = MlflowClient(mlflow_store)
    run = client.get_run(tracked.run_id)
    assert run.info.run_name == "iforest n=200 1/day 2026-03-02..03-08"

    # The training windows and the evaluation set are the run's datasets, with digests that
    # are equal for runs on the same data (the evaluation's is the hash promotion compares).
    inputs = {d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
    result = trained["result"]
    assert inputs["training"].name == "history 2026-03-02..03-08 (1h windows)"
    assert inputs["training"].digest == windows_digest(result.windows)
    assert json.loads(inputs["training"].profile)["num_rows"] == len(result.windows)
    assert inputs["evaluation"].digest == result.eval_set_hash[:16]
    assert json.loads(inputs["evaluation"].profile)["num_rows"] == len(result.eval_scores)
    assert Path(json.loads(inputs["evaluation"].source)["uri"]) == Path(trained["files"][-1])

    # The files trained on, in full, as an artifact (a parameter would cut them at 500 characters).
    listed = Path(client.download_artifacts(tracked.run_id, "inputs.txt", str(tmp_path))).read_text()
    assert all(f in listed.splitlines() for f in trained["files"])
    names = {a.path for a in client.list_artifacts(tracked.run_id)}
    assert {"attack_ranks.csv", "attack_ranks.png", "precision_recall.png", "score_histogram.png"} <= names
    ranks = Path(client.download_artifacts(tracked.run_id, "attack_ranks.csv", str(tmp_path))).read_text()
    assert ranks.splitlines()[0].startswith("attack,windows,rank,rank_in_day,false_positives_above,rank_in_day_")
    assert len(ranks.splitlines()) == 1 + len(result.evaluation.scenarios)


def test_baselines_are_child_runs_so_the_experiment_lists_one_run_per_model(trained, tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    tracked = _log(trained, tmp_path)
    client = MlflowClient(mlflow_store)
    runs = client.search_runs([tracked.experiment_id])
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in top] == [tracked.run_id]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == tracked.run_id}
    assert set(children) == {"baseline robust-z", "baseline sensitive-count"}
    assert set(tracked.baseline_run_ids.values()) == {r.info.run_id for r in children.values()}
    assert "ap" in children["baseline robust-z"].data.metrics


def test_metric_names_are_short_rounded_and_documented_in_the_readme(trained, tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    tracked = _log(trained, tmp_path)
    metrics = MlflowClient(mlflow_store).get_run(tracked.run_id).data.metrics
    readme = README.read_text()
    section = readme[readme.index("## Comparing runs in MLflow") :]
    undocumented = [m for m in metrics if f"`{m}`" not in section]
    assert undocumented == []
    assert max(map(len, metrics)) <= 21
    assert all(round(v, 4) == v for v in metrics.values())


def test_registry_versions_say_what_they_were_trained_on_and_why_they_were_or_were_not_promoted(
    trained, tmp_path, mlflow_store
):
    from mlflow.tracking import MlflowClient

    first = _log(trained, tmp_path, promote=True)
    worse = copy.copy(trained["result"])
    worse.evaluation = copy.copy(worse.evaluation)
    worse.evaluation.average_precision = 0.1
    second = _log({**trained, "result": worse}, tmp_path, promote=True)
    client = MlflowClient(mlflow_store)

    v1 = client.get_model_version("kaad-detector", first.model_version)
    assert v1.description.startswith("iforest n=200 1/day 2026-03-02..03-08. Trained on 2026-03-02 to 2026-03-09")
    assert re.search(r"AP \d\.\d{3}, ROC AUC \d\.\d{3}", v1.description)
    assert "Promotion: version 1 is the first champion" in v1.description
    assert v1.tags["promotion"] == "champion" and v1.tags["data_start"] == "2026-03-02"

    v2 = client.get_model_version("kaad-detector", second.model_version)
    assert v2.tags["promotion"] == "not promoted"
    assert v2.tags["promotion_reason"].startswith("kept version 1 as champion")
    assert client.get_registered_model("kaad-detector").description.startswith("kaad's detector")


def test_a_scoring_run_names_the_model_version_and_links_to_its_training_run(trained, tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    from models.registry import resolve_bundle
    from models.tracking import log_scoring
    from pipelines.score import score_day

    tracked = _log(trained, tmp_path, promote=True)
    bundle, label = resolve_bundle()
    scored = score_day(trained["files"][-1:], bundle, top=5)
    run_id = log_scoring(scored, model_label=label, top_csv=None)
    run = MlflowClient(mlflow_store).get_run(run_id)
    assert run.info.run_name == f"score {scored.day} v1"
    assert run.data.tags["model_name"] == "kaad-detector" and run.data.tags["model_version"] == "1"
    assert run.data.tags["model_run_id"] == tracked.run_id
    link = f"[iforest n=200 1/day 2026-03-02..03-08](#/experiments/{tracked.experiment_id}/runs/{tracked.run_id})"
    assert link in run.data.tags["mlflow.note.content"]


def test_the_ui_view_shows_key_metrics_and_only_the_parameters_that_differ(trained, tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    from models.ui import VIEW_KEY, VIEW_PREFIX, prepare_view

    first = _log(trained, tmp_path)
    # A second model that differs in one hyperparameter (its bundle says 50 trees).
    result = copy.copy(trained["result"])
    result.bundle = copy.copy(result.bundle)
    result.bundle.params = {**result.bundle.params, "n_estimators": 50}
    _log({**trained, "result": result}, tmp_path)

    view = prepare_view("kaad", mlflow_store)
    assert view.models == 2
    assert (
        view.path
        == f"#/experiments/{first.experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
    )
    params = [c for c in view.columns if c.startswith("params.")]
    assert params == ["params.`n_estimators`"]
    assert [c for c in view.columns if c.startswith("metrics.")] == [
        f"metrics.`{m}`" for m in ("ap", "roc_auc", "recall_at_20", "alerts_per_day", "train_windows")
    ]
    client = MlflowClient(mlflow_store)
    saved = json.loads(client.get_experiment(first.experiment_id).tags[VIEW_PREFIX + VIEW_KEY])
    assert json.loads(saved["state"])["selectedColumns"] == view.columns
    # Every experiment says what it holds, MLflow's empty Default too.
    notes = {e.name: e.note for e in view.experiments}
    assert notes["kaad"].startswith("kaad training runs: one row per trained model")
    assert notes["Default"].startswith("MLflow's own default experiment")


@pytest.mark.parametrize(("value", "text"), [(1, "1"), (1.0, "1"), (0.25, "0.25"), (None, "None"), ("auto", "auto")])
def test_a_value_is_spelled_one_way_whatever_its_type(value, text):
    # 1 from a library caller and 1.0 from the CLI's float option are the same setting.
    assert _text(value) == text
