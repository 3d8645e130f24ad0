"""Train and score at realistic scale: time, events/s and peak RSS, each stage in its own process.

Data: the benchmark cluster (10 nodes, real control-plane rate, ~277k events a day).
train: days 1-3; score: day 4 (read, featurise, score, explain, write CSV and HTML).
Usage: python benchmarks/pipeline.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.rss import peak_rss_mb  # noqa: E402


def _files() -> list[str]:
    from benchmarks.data import CACHE, events_file

    events_file(1_000_000)  # builds the 4-day simulation on first use
    return sorted(str(p) for p in (CACHE / "sim-4d").glob("*.jsonl.gz"))


def _train(out: str) -> dict:
    from models.detector import DetectorParams
    from models.persistence import save_bundle
    from pipelines.train import TrainConfig, train

    files = _files()[:3]
    start = time.perf_counter()
    result = train(files, TrainConfig(params=DetectorParams(seed=0)))
    seconds = time.perf_counter() - start
    save_bundle(result.bundle, Path(out))
    n = result.stats.n_events + result.stats.n_merged
    return {"stage": "train (3 days)", "events": n, "seconds": seconds, "windows": len(result.windows)}


def _score(bundle_path: str) -> dict:
    from models.persistence import load_bundle
    from pipelines.score import score_day
    from reports import html, score_outputs

    day = _files()[3]
    start = time.perf_counter()
    bundle = load_bundle(Path(bundle_path))
    result = score_day([day], bundle, top=20)
    with tempfile.TemporaryDirectory() as tmp:
        score_outputs.write_csv(result, Path(tmp) / "s.csv")
        html.write_html(result, Path(tmp) / "s.html")
    seconds = time.perf_counter() - start
    n = result.stats.n_events + result.stats.n_merged
    return {"stage": "score (1 day)", "events": n, "seconds": seconds, "windows": len(result.windows)}


def _child(stage: str, arg: str) -> None:
    row = {"train": _train, "score": _score}[stage](arg)
    row["rate"] = row["events"] / row["seconds"]
    row["rss_mb"] = peak_rss_mb()
    print(json.dumps(row))


def run() -> list[dict]:
    _files()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = str(Path(tmp) / "model.joblib")
        for stage in ("train", "score"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", stage, bundle],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        for r in run():
            print(
                f"{r['stage']}: {r['events']:,} events, {r['windows']:,} windows in {r['seconds']:.1f} s "
                f"({r['rate']:,.0f} events/s), peak RSS {r['rss_mb']:,.0f} MB"
            )
