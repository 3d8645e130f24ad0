"""Shared fixtures: paths to the narrated and real samples, golden files, a CLI runner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support import GOLDEN, REAL_SAMPLES

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite the golden files from the current output.")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare a JSON-ready value with ``tests/golden/<name>.json`` (or rewrite it)."""

    def check(name: str, actual) -> None:
        path = GOLDEN / f"{name}.json"
        text = json.dumps(actual, indent=1, sort_keys=True, default=str) + "\n"
        if request.config.getoption("--update-golden") or not path.exists():
            if not request.config.getoption("--update-golden") and os.environ.get("CI"):
                pytest.fail(f"golden file {path.name} is missing; run pytest --update-golden")
            path.write_text(text)
            return
        assert json.loads(text) == json.loads(path.read_text()), (
            f"output differs from {path}; review and run pytest --update-golden if intended")

    return check


@pytest.fixture(scope="session")
def real_samples() -> Path:
    if not REAL_SAMPLES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real samples not found at {REAL_SAMPLES}; CI must have ../shared")
        pytest.skip(f"real samples not found at {REAL_SAMPLES}")
    return REAL_SAMPLES
