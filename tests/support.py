"""Paths and helpers shared by the tests (imported as a module; fixtures live in conftest)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

TESTS = Path(__file__).parent
AUDIT = TESTS / "data" / "audit"
GOLDEN = TESTS / "golden"
#: Real audit events from public projects; beside the checkout, never copied into it.
REAL_SAMPLES = TESTS.parent.parent / "shared" / "real-samples"


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
