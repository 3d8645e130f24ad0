"""Shared fixtures: paths to the narrated and real samples, golden files, a CLI runner."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

TESTS = Path(__file__).parent
AUDIT = TESTS / "data" / "audit"
GOLDEN = TESTS / "golden"
#: Real audit events from public projects; beside the checkout, never copied into it.
REAL_SAMPLES = TESTS.parent.parent / "shared" / "real-samples"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite the golden files from the current output.")


def _plain(value):
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def frame_records(frame: pd.DataFrame, drop: tuple[str, ...] = ("source_file",)) -> list[dict]:
    """Rows of ``frame`` as plain JSON-ready dicts (for golden comparisons)."""
    cols = [c for c in frame.columns if c not in drop]
    return [{c: _plain(row[c]) for c in cols} for row in frame[cols].to_dict("records")]


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
