"""`kaad ui` in a real browser: the link it prints opens the runs table a data scientist can read.

Two real training runs on the same small simulated cluster, logged as the two entry points
log them: ``kaad train`` (10 trees) and the library call ``make demo`` makes (200 trees, the
session's trained model). ``kaad ui`` starts on a free loopback port; Chromium (the system's,
driven by Playwright) opens the printed link. Screenshots are kept in the test's tmp directory
(each assertion message names it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEY_METRICS = ["ap", "roc_auc", "recall_at_20", "alerts_per_day", "train_windows"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed: run `make e2e-deps` (root on Debian)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture
def two_model_runs(trained, tmp_path, mlflow_store) -> dict[str, str]:
    """Run ids by trees: one `kaad train` run and one logged as `make demo` logs its run."""
    from typer.testing import CliRunner

    from cli import app
    from models.detector import DetectorParams
    from models.persistence import save_bundle
    from models.tracking import log_training
    from pipelines.train import TrainConfig

    files = trained["files"]
    args = ["train", *files[:-1], "--eval-data", files[-1], "--labels", str(trained["labels"])]
    args += ["--n-estimators", "10", "--seed", "1", "--out", str(tmp_path / "cli.joblib")]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    cli_run = re.search(r"mlflow run\s+([0-9a-f]{32})", done.output)
    assert cli_run, done.output

    bundle = tmp_path / "demo.joblib"
    save_bundle(trained["result"].bundle, bundle)
    demo = log_training(
        trained["result"],
        bundle,
        config=TrainConfig(params=DetectorParams(seed=1)),
        inputs=files[:-1],
        eval_inputs=files[-1:],
        labels=trained["labels"],
    )
    return {"10": cli_run.group(1), "200": demo.run_id}


@pytest.fixture
def kaad_ui(mlflow_store, tmp_path):
    """`kaad ui` on a free port as a process of its own; yields the link it printed."""
    port = _free_port()
    out, log = tmp_path / "ui-stdout.txt", tmp_path / "ui-stderr.txt"
    with out.open("wb") as stdout, log.open("wb") as stderr:
        ui = subprocess.Popen(
            [sys.executable, "-m", "cli", "ui", "--port", str(port), "--tracking-uri", mlflow_store],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        link = None
        deadline = time.monotonic() + 120
        while link is None or not _answers(port):
            assert ui.poll() is None, f"kaad ui exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"kaad ui was not up in 120 s: {log.read_text()}"
            found = re.search(r"http://127\.0\.0\.1:\d+/\S+", out.read_text())
            link = found.group(0) if found else None
            time.sleep(0.3)
        yield link
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
            return True
    except OSError:
        return False


def _cells(page, run_id: str) -> dict[str, str]:
    """The runs table's cells of one run, by column id (metrics.`ap`, attributes.`Run Name`, ...)."""
    return page.eval_on_selector_all(
        f"[row-id='{run_id}'] [col-id]",
        "els => Object.fromEntries(els.map(e => [e.getAttribute('col-id'), e.innerText.trim()]))",
    )


def test_the_printed_link_shows_one_row_per_model_and_compare_shows_the_one_real_difference(
    chromium, two_model_runs, kaad_ui, mlflow_store, tmp_path
):
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    shots = tmp_path
    logged = {trees: MlflowClient(mlflow_store).get_run(run_id).data for trees, run_id in two_model_runs.items()}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1920, "height": 1000})
        try:
            # The link opens the model-training runs table, nothing clicked.
            page.goto(kaad_ui)
            page.get_by_role("columnheader", name="train_windows").first.wait_for(timeout=60_000)
            page.screenshot(path=shots / "runs.png")
            where = f"(screenshots in {shots})"

            # One row per model run: the baselines are children of their run, not rows.
            rows = set(page.eval_on_selector_all("[role=row][row-id]", "els => els.map(e => e.getAttribute('row-id'))"))
            assert rows == set(two_model_runs.values()), where

            for trees, run_id in two_model_runs.items():
                cells = _cells(page, run_id)
                # A name that says what ran, whole (the cell's first line is the run's colour).
                name = cells["attributes.`Run Name`"].splitlines()[-1]
                assert re.fullmatch(rf"iforest n={trees} 1/day \d{{4}}-\d\d-\d\d\.\.\d\d-\d\d", name), where
                # The key metrics are columns, their values as logged (rounded to 4 decimals).
                for metric in KEY_METRICS:
                    value = logged[trees].metrics[metric]
                    assert float(cells[f"metrics.`{metric}`"]) == pytest.approx(value), (metric, where)
                # The one hyperparameter that differs is a column too; parameters equal in both are not.
                assert cells["params.`n_estimators`"] == trees, where
                assert not any(c.startswith("params.") and c != "params.`n_estimators`" for c in cells), (cells, where)
            for metric in KEY_METRICS:
                header = page.get_by_role("columnheader", name=metric, exact=True).first
                box = header.bounding_box()
                assert box and box["x"] + box["width"] <= 1920, (f"{metric} is off screen", where)

            # Tick both runs and compare them: with "Show diff only" the parameters table holds
            # the one real difference, not a parameter one entry point logs and the other not.
            for run_id in two_model_runs.values():
                page.locator(f"[row-id='{run_id}'] input[type=checkbox]").first.click()
            page.get_by_role("button", name="Compare", exact=True).click()
            page.get_by_text("Run details").wait_for()
            params = page.locator("table").nth(1)
            every = params.locator("tr").all_inner_texts()
            assert any(r.startswith("data_start") for r in every) and any(r.startswith("window") for r in every)
            page.get_by_role("switch").first.click()  # the Parameters section's "Show diff only"
            params.scroll_into_view_if_needed()
            page.screenshot(path=shots / "compare.png")
            shown = [re.split(r"\s+", r.strip()) for r in params.locator("tr").all_inner_texts()]
            # The first row of the run details says which column is which run.
            ids = page.locator("table").first.locator("tr").first.inner_text().split()[2:]
            columns = [next(t for t, r in two_model_runs.items() if r == run_id) for run_id in ids]
            assert shown == [["n_estimators", *columns]], (shown, where)
        except Exception:
            page.screenshot(path=shots / "failure.png")
            raise
        finally:
            browser.close()
