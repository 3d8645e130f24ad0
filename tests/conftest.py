"""Shared fixtures: paths to the narrated and real samples, golden files, a CLI runner, moto.

Under CI (``CI=true``, as ``.ci/run`` exports) a skipped test is a failed one (but for the
few in ``CI_MAY_SKIP``): the tests that need a kube-apiserver, Chromium, the real samples or a
moto server must run there, so CI cannot pass because they quietly did not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import GOLDEN, REAL_SAMPLES, built_once

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def in_ci() -> bool:
    """True when the ``CI`` variable is set to anything but false/0 (GitHub and GitLab set true)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="Rewrite the golden files from the current output (make goldens)."
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "golden: compares output with a file in tests/golden (make goldens)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `make goldens` selects these with -m golden.
    for item in items:
        if "golden" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.golden)


#: The files that took longest in `make test` (per-file setup and calls, 2026-12-02, most first).
#: Under ``--dist loadfile`` xdist hands out whole files in collection order (or by test count),
#: so one of these handed out last ran alone on one worker while the other idled (test_ui_browser
#: ended 30 s after the other worker): longest first, and the many small files even out the end.
#: A stale list only changes the order, never what runs.
HEAVY_FIRST = (
    "tests/engine/test_score_engines.py",
    "tests/scenarios/test_benign_change.py",
    "tests/models/test_detector.py",
    "tests/test_cli_score.py",
    "tests/engine/test_engines.py",
    "tests/sources/test_aws.py",
    "tests/models/test_tracking.py",
    "tests/test_cli_daily.py",
    "tests/test_cli_train.py",
    "tests/test_cli_progress.py",
    "tests/pipelines/test_score.py",
    "tests/rules/test_rule_evidence.py",
    "tests/flows/test_cli_flows.py",
    "tests/test_cli_ui.py",
    "tests/features/test_attack_features.py",
    "tests/engine/test_featurise_unchanged.py",
    "tests/kube/test_multiday_e2e.py",
    "tests/scenarios/test_attacks_realism.py",
    "tests/test_cli_accept.py",
    "tests/models/test_calibration.py",
    "tests/flows/test_rank.py",
    "tests/test_ui_browser.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile``, but the files of HEAVY_FIRST are handed out before all others."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class HeavyFirst(LoadFileScheduling):
        ordered = False

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:
                self.ordered = True
                for scope in reversed(HEAVY_FIRST):
                    if scope in self.workqueue:
                        self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return HeavyFirst(config, log)


#: The skips CI keeps, each with its reason. scikit-learn's NumPy-only array-API check of
#: estimators that do not claim array-API support (kaad's do not) runs only when
#: SCIPY_ARRAY_API=1 was set before scipy was imported: a process-wide scipy mode kaad never
#: runs in, so the suite does not switch it on.
CI_MAY_SKIP = ("SCIPY_ARRAY_API is not set: not checking array_api input",)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(CI_MAY_SKIP):
            return report
        report.outcome = "failed"
        report.longrepr = f"CI=true, so a skip is a failure: {reason}"
    return report


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare a JSON-ready value with ``tests/golden/<name>.json``; rewrite it only when asked.

    A missing golden file fails like a wrong one: writing it here would let a test pass the
    first time it runs, whatever the output.
    """

    def check(name: str, actual) -> None:
        path = GOLDEN / f"{name}.json"
        text = json.dumps(actual, indent=1, sort_keys=True, default=str) + "\n"
        if request.config.getoption("--update-golden"):
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(
                f"golden file {path} is missing; create it with `make goldens` "
                "(pytest -m golden --update-golden) and review it before committing"
            )
        assert json.loads(text) == json.loads(path.read_text()), (
            f"output differs from {path}; review and run `make goldens` if intended"
        )

    return check


@pytest.fixture(scope="session")
def real_samples() -> Path:
    if not REAL_SAMPLES.is_dir():
        if in_ci():
            pytest.fail(f"real samples not found at {REAL_SAMPLES}; CI must have ../shared")
        pytest.skip(f"real samples not found at {REAL_SAMPLES}")
    return REAL_SAMPLES


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory) -> Path:
    """One SQLite MLflow store, migrated once per test session (migrations cost ~1 s)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(_migrated_store, tmp_path, monkeypatch) -> str:
    """A fresh copy of the migrated store for one test; never the repo's mlruns/."""
    import shutil

    path = tmp_path / "mlruns" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(_migrated_store, path)
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Eight days of a small simulated cluster; five loud attacks on day 8; a model of days 1-7."""
    from models.detector import DetectorParams
    from pipelines.train import TrainConfig, train
    from scenarios.cluster import ClusterSpec
    from scenarios.simulate import simulate

    def build():
        out = tmp_path_factory.mktemp("trained")
        spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
        sim = simulate(out / "logs", days=8, attacks=PLANTED, variant="loud", seed=1, spec=spec)
        files = [str(f) for f in sim.files]
        config = TrainConfig(params=DetectorParams(seed=1))
        result = train(files[:-1], config, eval_inputs=files[-1:], labels=sim.labels)
        return {"result": result, "files": files, "labels": sim.labels, "dir": out}

    # Seventeen files on both workers use it: built once per session, not once per worker.
    return built_once(tmp_path_factory, "trained", build)


PLANTED = ["secret_enumeration", "privileged_pod", "cluster_admin_binding", "stolen_token_external", "exec_into_pods"]


@pytest.fixture(scope="session")
def all_attacks_scored(tmp_path_factory):
    """A small cluster: seven ordinary days, then every loud attack on day 8, scored."""
    from models.detector import DetectorParams
    from pipelines.score import score_day
    from pipelines.train import TrainConfig, train
    from scenarios.attacks import ATTACKS
    from scenarios.cluster import ClusterSpec
    from scenarios.simulate import simulate

    out = tmp_path_factory.mktemp("all-attacks")
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
    sim = simulate(out / "logs", days=8, attacks=list(ATTACKS), variant="loud", seed=5, spec=spec)
    files = [str(f) for f in sim.files]
    result = train(files[:-1], TrainConfig(params=DetectorParams(seed=5)))
    scored = score_day(files[-1:], result.bundle, top=60)
    return {"scored": scored, "labels": sim.labels, "bundle": result.bundle, "files": files}


@pytest.fixture(scope="session")
def moto_server():
    """One real moto server process on 127.0.0.1 for the whole session (AWS, flow-log tests)."""
    from tests.sources.aws_support import MotoServer

    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch, tmp_path):
    """Fresh moto state; boto3 pointed at it with dummy credentials."""
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server
