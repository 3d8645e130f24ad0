"""`kaad ui`: the MLflow UI on 127.0.0.1, opened on the training runs as a data scientist reads them.

MLflow 3's UI opens in its GenAI mode (traces, an assistant) and shows no metric column by
default. Two things its own front end reads set that up without clicking: the query parameter
``workflowType=machine_learning`` (the "Model training" switch), and a saved view, an
experiment tag ``mlflow.sharedViewState.<key>`` holding the runs table's columns, opened with
``viewStateShareKey=<key>`` (what the UI's "Views" menu saves and shares).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from models.tracking import DEFAULT_EXPERIMENT, EXPERIMENT_NOTES, NOTE_TAG, ROOT, configure_tracking, default_store

#: The saved view's key in the experiment's tags and in the link; one view, rewritten each time.
VIEW_KEY = "kaad-models"
VIEW_PREFIX = "mlflow.sharedViewState."
#: Metric columns every training run has when evaluated, in reading order (README explains them).
KEY_METRICS = ("ap", "roc_auc", "recall_at_20", "alerts_per_day", "train_windows")
#: At most this many parameter columns: those whose values differ between the runs.
MAX_PARAMS = 8


@dataclass
class Experiment:
    """An experiment in the store: its name, id, description and number of runs (children too)."""

    name: str
    experiment_id: str
    note: str
    runs: int


@dataclass
class RunsView:
    """Where ``kaad ui`` points: the runs page of the training experiment and the experiments."""

    path: str  # after the server's address, e.g. "#/experiments/1/runs?workflowType=..."
    experiment: str
    models: int  # top-level runs (one per model)
    columns: list[str] = field(default_factory=list)
    experiments: list[Experiment] = field(default_factory=list)


def _column(kind: str, name: str) -> str:
    """A runs-table column id as MLflow's front end spells it: ``metrics.`ap```."""
    return f"{kind}.`{name}`"


def differing_params(runs) -> list[str]:
    """Names of the parameters whose values (or presence) differ between ``runs``, sorted."""
    if len(runs) < 2:
        return []
    keys = sorted({k for r in runs for k in r.data.params})
    return [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]


def view_state(runs) -> tuple[dict, list[str]]:
    """The saved view's state: the key metrics and the differing parameters as columns."""
    have = {k for r in runs for k in r.data.metrics}
    metrics = [m for m in KEY_METRICS if m in have]
    params = differing_params(runs)[:MAX_PARAMS]
    name, models, dataset = (_column("attributes", c) for c in ("Run Name", "Models", "Dataset"))
    columns = [_column("metrics", m) for m in metrics] + [_column("params", p) for p in params] + [models, dataset]
    # MLflow applies widths only to the columns an order lists: the names are read whole,
    # then the metrics, the parameters that differ, the registered version and the dataset.
    order = [name, "runDateAndNestInfo", *columns, "duration"]
    widths = {name: 330, "runDateAndNestInfo": 130, models: 150, dataset: 220, "duration": 80}
    widths |= {c: max(72, 7 * len(c.split("`")[1]) + 30) for c in columns if c not in widths}
    state = {
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "selectedColumns": columns,
        "columnOrder": order,
        "columnWidths": widths,
    }
    return state, columns


def _describe(client, experiments, training: str) -> list[Experiment]:
    """Each experiment with its description; kaad's own get theirs when they have none."""
    from mlflow.exceptions import MlflowException

    out = []
    roles = {training: "training", "kaad-scoring": "scoring"}
    for e in experiments:
        note = e.tags.get(NOTE_TAG, "")
        default = EXPERIMENT_NOTES.get(roles.get(e.name, e.name))
        if not note and default:
            note = default
            try:
                client.set_experiment_tag(e.experiment_id, NOTE_TAG, default)
            except MlflowException:  # a store kaad may not write: the note is still printed
                pass
        runs = client.search_runs([e.experiment_id], max_results=1000)
        out.append(Experiment(e.name, e.experiment_id, note, len(runs)))
    return out


def _save_view(client, experiment_id: str, state: dict) -> None:
    """Write the saved view as MLflow's "Views" menu does: an envelope holding the state as JSON."""
    now = int(time.time() * 1000)
    key = VIEW_PREFIX + VIEW_KEY
    tags = client.get_experiment(experiment_id).tags
    created = json.loads(tags[key]).get("createdAt", now) if key in tags else now
    envelope = {"name": "kaad: one row per model", "createdAt": created, "updatedAt": now, "state": json.dumps(state)}
    client.set_experiment_tag(experiment_id, key, json.dumps(envelope))


def prepare_view(experiment: str = DEFAULT_EXPERIMENT, tracking_uri: str | None = None) -> RunsView:
    """Describe the experiments and save the training runs' view; return where to point the browser."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    configure_tracking(tracking_uri)
    client = MlflowClient()
    experiments = _describe(client, client.search_experiments(), experiment)
    found = next((e for e in experiments if e.name == experiment), None)
    if found is None:
        return RunsView("#/experiments?workflowType=machine_learning", experiment, 0, experiments=experiments)
    runs = [
        r
        for r in client.search_runs([found.experiment_id], max_results=1000)
        if "mlflow.parentRunId" not in r.data.tags
    ]
    state, columns = view_state(runs)
    path = f"#/experiments/{found.experiment_id}/runs?workflowType=machine_learning"
    try:
        _save_view(client, found.experiment_id, state)
    except MlflowException:  # a store kaad may read but not write: the plain runs page then
        return RunsView(path, experiment, len(runs), [], experiments)
    path += f"&viewStateShareKey={VIEW_KEY}"
    return RunsView(path, experiment, len(runs), columns, experiments)


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


def open_when_up(url: str, port: int, timeout: float = 120.0) -> None:
    """Open ``url`` in the user's browser once the UI on ``port`` answers (run it in a thread)."""
    import urllib.request
    import webbrowser

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                webbrowser.open(url)
                return
        except OSError:
            time.sleep(0.5)
