"""Paths and helpers shared by the tests (imported as a module; fixtures live in conftest)."""

from __future__ import annotations

import fcntl
import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TESTS = Path(__file__).parent
AUDIT = TESTS / "data" / "audit"
GOLDEN = TESTS / "golden"
#: Real audit events from public projects; beside the checkout, never copied into it.
REAL_SAMPLES = TESTS.parent.parent / "shared" / "real-samples"


def built_once(tmp_path_factory, name: str, build: Callable[[], Any]) -> Any:
    """``build()``, or the value another xdist worker of this session already built and pickled.

    A session fixture is built once per worker: ``make test``'s two workers each simulated and
    trained the same cluster. The first worker to get here builds it and leaves it in the
    directory all of this session's workers share (a new one every run); a worker that arrives
    later loads it, and one that arrives during the build waits for it (a lock per name: no
    build waits for another, so none can deadlock), which takes no longer than building its
    own. The builds are seeded, so either worker's value is the same value.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # popen-gwN's parent: this session's, shared by its workers
    done = root / f"built-once-{name}.pickle"
    with open(root / f"built-once-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also on an exception
        if done.exists():
            return pickle.loads(done.read_bytes())
        value = build()
        partial = done.with_name(f"{done.name}.partial")
        partial.write_bytes(pickle.dumps(value))
        partial.replace(done)  # a reader never sees half a pickle, even one that did not lock
        return value


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


def cut_for(bundle, day_file: str, at_least: int) -> tuple[float, int]:
    """A --fail-on percentile with ``n >= at_least`` identity-days of the day at or above it, and ``n``.

    Scoring is threaded, so a score can move by 1e-16 between runs; an identity-day whose score
    equals a held-out one then changes percentile. The cut is put where neither neighbour does.
    """
    from pipelines.score import score_day

    days = score_day([day_file], bundle, top=1).identities  # highest score first
    scores, pct = days["anomaly_score"].to_numpy(), days["percentile"].to_numpy()
    train = np.asarray(bundle.train_scores)

    def steady(score: float) -> bool:
        return bool(np.abs(train - score).min() > 1e-9)

    n = next(
        k for k in range(at_least, len(pct)) if pct[k - 1] > pct[k] and steady(scores[k - 1]) and steady(scores[k])
    )
    assert days["is_alert"].sum() <= n
    return float(pct[n - 1]), n


def narrated_labels(tmp_path):
    """labels.csv for the narrated attack day: cart's stolen token at 02:00."""
    path = tmp_path / "labels.csv"
    path.write_text(
        "identity,window_start,scenario\nsystem:serviceaccount:shop:cart,2026-03-05T02:00:00Z,stolen_token\n"
    )
    return path


def ingested_table(tmp_path: Path, name: str, events: list[dict]):
    """``events`` written as ``<name>.jsonl``, ingested to ``<name>.parquet`` and read back (pyarrow)."""
    import json

    import pyarrow.parquet as pq

    from pipelines.ingest import ingest

    log = tmp_path / f"{name}.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    ingest([str(log)], out=tmp_path / f"{name}.parquet", collect=False)
    return pq.read_table(tmp_path / f"{name}.parquet")
