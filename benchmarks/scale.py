"""Scoring a whole day at 1M and 4M events: time and peak RSS must stay flat-ish with size.

For each size a cluster is sized to write that many events a day; day 1 trains, day 2 is
scored (read, featurise, score, explain, CSV + HTML) in its own process.
Usage: python benchmarks/scale.py [EVENTS_PER_DAY ...]   (default 1000000 4000000)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.data import BENCH_CLUSTER, CACHE  # noqa: E402
from benchmarks.rss import peak_rss_mb  # noqa: E402

#: Events a day that do not depend on the node count (control plane, add-ons, people, CI),
#: and what each node adds, at the real control-plane rate (measured on the simulator).
FIXED_PER_DAY, PER_NODE_PER_DAY = 150_000, 9_100


def _days(per_day: int) -> list[Path]:
    from scenarios.simulate import simulate

    out = CACHE / f"day-{per_day}"
    files = sorted(out.glob("*.jsonl.gz"))
    if len(files) < 2:
        nodes = max(1, round((per_day - FIXED_PER_DAY) / PER_NODE_PER_DAY))
        simulate(
            out,
            days=2,
            attacks=["secret_enumeration", "privileged_pod"],
            seed=11,
            spec=replace(BENCH_CLUSTER, nodes=nodes),
        )
        files = sorted(out.glob("*.jsonl.gz"))
    return files


def _child(stage: str, per_day: str, bundle_path: str) -> None:
    files = [str(f) for f in _days(int(per_day))]
    start = time.perf_counter()
    if stage == "train":
        from models.detector import DetectorParams
        from models.persistence import save_bundle
        from pipelines.train import TrainConfig, train

        result = train(files[:1], TrainConfig(params=DetectorParams(seed=0, min_history=6)))
        save_bundle(result.bundle, Path(bundle_path))
        n = result.stats.n_events + result.stats.n_merged
    else:
        from models.persistence import load_bundle
        from pipelines.score import score_day
        from reports import html, score_outputs

        result = score_day(files[1:], load_bundle(Path(bundle_path)), top=20)
        with tempfile.TemporaryDirectory() as tmp:
            score_outputs.write_csv(result, Path(tmp) / "s.csv")
            html.write_html(result, Path(tmp) / "s.html")
        n = result.stats.n_events + result.stats.n_merged
    seconds = time.perf_counter() - start
    print(json.dumps({"stage": stage, "events": n, "seconds": seconds, "rss_mb": peak_rss_mb()}))


def run(sizes: list[int]) -> list[dict]:
    rows = []
    for per_day in sizes:
        _days(per_day)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = str(Path(tmp) / "model.joblib")
            for stage in ("train", "score"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", stage, str(per_day), bundle],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                )
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row["per_day"] = per_day
                rows.append(row)
                print(
                    f"{per_day:,}/day {stage}: {row['events']:,} events in {row['seconds']:.1f} s "
                    f"({row['events'] / row['seconds']:,.0f}/s), peak RSS {row['rss_mb']:,.0f} MB",
                    flush=True,
                )
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:5])
    else:
        run([int(a) for a in sys.argv[1:]] or [1_000_000, 4_000_000])
