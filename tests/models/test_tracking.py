"""Training runs in MLflow: params, metrics, artifacts, the registry, promotion and the UI."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from models.persistence import save_bundle
from models.promotion import CHAMPION
from models.tracking import log_training
from models.ui import ui_command


def _log(trained, tmp_path, **kwargs):
    bundle_path = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle_path)
    from models.detector import DetectorParams
    from pipelines.train import TrainConfig

    files = trained.get("files") or ["history.jsonl", "held-out.jsonl"]
    return log_training(
        trained["result"],
        bundle_path,
        config=TrainConfig(params=DetectorParams(seed=1)),
        inputs=files[:-1],
        eval_inputs=files[-1:],
        labels=trained.get("labels"),
        cluster="sim",
        **kwargs,
    )


def test_run_records_params_metrics_artifacts_and_tags(trained, tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    tracked = _log(trained, tmp_path, promote=True)
    client = MlflowClient(mlflow_store)
    run = client.get_run(tracked.run_id)
    assert run.data.params["n_estimators"] == "200" and run.data.params["window"] == "1h"
    metrics = run.data.metrics
    for name in (
        "events_read",
        "rejects",
        "train_identities",
        "train_windows",
        "score_p99",
        "fit_seconds",
        "ap",
        "roc_auc",
        "recall_at_10",
        "threshold",
        "alerts_per_day",
        "days_held_out",
        "constant_features",
    ):
        assert name in metrics, name
    assert metrics["train_windows"] == len(trained["result"].windows)
    assert metrics["days_held_out"] == 3 and metrics["constant_features"] == len(trained["result"].constant_features)
    assert run.data.tags["cluster"] == "sim" and run.data.tags["kaad_version"]
    assert len(run.data.tags["git_commit"]) >= 7
    names = {a.path for a in client.list_artifacts(tracked.run_id)}
    assert {
        "features.json",
        "constant_features.json",
        "score_histogram.png",
        "held_out_top_identity_days.csv",
        "bundle",
    } <= names
    assert {a.path for a in client.list_artifacts(tracked.run_id, "bundle")} == {
        "bundle/model.joblib",
        "bundle/model.joblib.sha256",
    }
    assert tracked.promoted and tracked.model_version == "1"
    assert set(tracked.baseline_run_ids) == {"robust_z", "sensitive_count"}
    baseline = client.get_run(tracked.baseline_run_ids["robust_z"])
    assert "ap" in baseline.data.metrics


def test_champion_loads_from_the_registry_and_scores_the_same(trained, tmp_path, mlflow_store):
    import mlflow.sklearn

    _log(trained, tmp_path, promote=True)
    model = mlflow.sklearn.load_model(f"models:/kaad-detector@{CHAMPION}")
    windows = trained["result"].windows
    np.testing.assert_allclose(model.score_samples(windows), trained["result"].bundle.detector.score_samples(windows))


def test_a_worse_model_is_not_promoted_and_says_why(trained, tmp_path, mlflow_store):
    first = _log(trained, tmp_path, promote=True)
    worse = copy.copy(trained["result"])
    worse.evaluation = copy.copy(worse.evaluation)
    worse.evaluation.average_precision = first_ap = 0.1
    second = _log({"result": worse}, tmp_path, promote=True)
    assert not second.promoted and first.promoted
    assert "kept version 1 as champion" in second.promotion_note and f"{first_ap:.3f}" in second.promotion_note


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_answers_on_loopback_with_the_run(trained, tmp_path, mlflow_store):
    tracked = _log(trained, tmp_path)
    port = _free_port()
    cmd, env = ui_command(port, mlflow_store)
    assert "127.0.0.1" in cmd
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={tracked.run_id}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("MLflow UI did not answer within 60 s")
                time.sleep(0.5)
        assert body["run"]["info"]["run_id"] == tracked.run_id
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


KEY = "kaad-test-signing-key-0123456789abcdef"


def _measured(trained, average_precision: float, eval_set_hash: str | None = "same-holdout"):
    """The trained result as if its evaluation had scored ``average_precision`` on that set."""
    result = copy.copy(trained["result"])
    result.evaluation = copy.copy(result.evaluation)
    result.evaluation.average_precision = average_precision
    result.eval_set_hash = eval_set_hash
    return {"result": result}


def test_a_model_without_a_finite_average_precision_never_becomes_champion(trained, tmp_path, mlflow_store):
    """NaN (no label matched an evaluated window) compares false with everything, so it must be caught.

    Neither as the first champion nor against a measured one does an unmeasured run win.
    """
    first = _log(_measured(trained, float("nan")), tmp_path, promote=True)
    assert not first.promoted
    assert "not a number" in first.promotion_note and "only a measured model" in first.promotion_note

    measured = _log(_measured(trained, 0.5), tmp_path, promote=True)
    assert measured.promoted
    nan_again = _log(_measured(trained, float("nan")), tmp_path, promote=True)
    assert not nan_again.promoted


def test_promotion_compares_only_runs_measured_on_the_same_evaluation_set(trained, tmp_path, mlflow_store):
    """An average precision of 0.9 on an easy set does not beat 0.6 on a hard one.

    The run records what it was measured on (tag ``eval_set_hash``); against a champion
    measured elsewhere, kaad keeps the champion and says why, unless told --force-promote.
    """
    from mlflow.tracking import MlflowClient

    champion = _log(_measured(trained, 0.6, "hard-holdout"), tmp_path, promote=True)
    assert MlflowClient(mlflow_store).get_run(champion.run_id).data.tags["eval_set_hash"] == "hard-holdout"

    easy = _log(_measured(trained, 0.9, "easy-holdout"), tmp_path, promote=True)
    assert not easy.promoted
    assert "was measured on another evaluation set (hash hard-holdout, this run easy-holdout)" in easy.promotion_note

    same_set = _log(_measured(trained, 0.7, "hard-holdout"), tmp_path, promote=True)
    assert same_set.promoted and "had 0.600" in same_set.promotion_note

    forced = _log(_measured(trained, 0.9, "easy-holdout"), tmp_path, force_promote=True)
    assert forced.promoted and "--force-promote" in forced.promotion_note


class _FlakyRegistry(BaseHTTPRequestHandler):
    """An MLflow registry whose first read fails (503, its database busy); later reads work.

    It knows one model, with no aliases, and records every alias kaad sets.
    """

    reads = 0
    aliases_set: list = []

    def do_GET(self):  # http.server's naming
        type(self).reads += 1
        if type(self).reads == 1:
            self._answer(503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "registry database is busy"})
        else:
            self._answer(200, {"registered_model": {"name": "kaad-detector"}})

    def do_POST(self):
        type(self).aliases_set.append(self.path)
        self._answer(200, {})

    def _answer(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_only_not_found_means_there_is_no_champion(trained, mlflow_store, monkeypatch):
    """A registry that failed to say who the champion is has not said there is none.

    Reading any error as "no champion" would crown the new run over a champion kaad could not
    see. Only MLflow's RESOURCE_DOES_NOT_EXIST means there is none; anything else stops the
    promotion with the registry's message.
    """
    from mlflow.tracking import MlflowClient

    from errors import KaadError
    from models import promotion

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the 503 reaches kaad at once
    _FlakyRegistry.reads, _FlakyRegistry.aliases_set = 0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = MlflowClient(tracking_uri=mlflow_store, registry_uri=f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(KaadError, match="cannot read the champion of model 'kaad-detector'"):
            promotion.promote(client, "kaad-detector", "2", _measured(trained, 0.9)["result"])
    finally:
        server.shutdown()
        server.server_close()
    assert _FlakyRegistry.aliases_set == [], "the alias was moved although the champion was never read"


def test_with_a_key_the_registry_serves_only_signed_bundles(trained, tmp_path, mlflow_store, monkeypatch):
    """Whoever can write the tracking store can rewrite a run's bundle and its bundle_sha256 tag.

    With a signing key, the run carries an HMAC (tag ``bundle_signature`` and ``model.joblib.sig``)
    that they cannot forge, so the rewritten bundle is refused before it is unpickled; and the
    download directory is gone afterwards, whether the load succeeded or not.
    """
    import hashlib
    import pickle
    import tempfile
    from urllib.parse import unquote, urlparse

    from mlflow.tracking import MlflowClient

    from errors import ModelSignatureError
    from models.registry import resolve_bundle

    monkeypatch.setenv("KAAD_SIGNING_KEY", KEY)
    tracked = _log(trained, tmp_path, promote=True)
    client = MlflowClient(mlflow_store)
    assert client.get_run(tracked.run_id).data.tags["bundle_signature"]
    assert "bundle/model.joblib.sig" in {a.path for a in client.list_artifacts(tracked.run_id, "bundle")}

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    bundle, label = resolve_bundle()
    assert bundle.threshold == trained["result"].bundle.threshold and "version 1" in label
    assert list(scratch.iterdir()) == []

    marker = tmp_path / "attacker-code-ran"
    payload = pickle.dumps(_Payload(marker))
    stored = Path(unquote(urlparse(client.get_run(tracked.run_id).info.artifact_uri).path)) / "bundle"
    (stored / "model.joblib").write_bytes(payload)
    client.set_tag(tracked.run_id, "bundle_sha256", hashlib.sha256(payload).hexdigest())
    with pytest.raises(ModelSignatureError, match=f"the bundle of run '{tracked.run_id}' does not carry a valid"):
        resolve_bundle(run=tracked.run_id)
    assert not marker.exists()
    assert list(scratch.iterdir()) == []


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_a_champion_registered_without_a_run_is_refused_by_name(tmp_path, mlflow_store):
    """A model version registered from a plain path has no run, so no bundle to fetch: say so."""
    from mlflow.tracking import MlflowClient

    from errors import KaadError
    from models.registry import resolve_bundle

    client = MlflowClient(mlflow_store)
    client.create_registered_model("kaad-detector")
    version = client.create_model_version("kaad-detector", source=str(tmp_path))
    client.set_registered_model_alias("kaad-detector", CHAMPION, version.version)
    with pytest.raises(KaadError, match="model 'kaad-detector@champion' version 1 was not logged by a run"):
        resolve_bundle()
