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


def ensure_chromium() -> str | None:
    """Path to Debian's chromium, installing it with apt-get when missing (root only)."""
    import os
    import shutil
    import subprocess

    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ("install", "update-then-install"):
        if attempt == "update-then-install":
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env,
                              capture_output=True, timeout=900)
        if done.returncode == 0 and shutil.which("chromium"):
            return shutil.which("chromium")
    return None
