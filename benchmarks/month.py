"""Train on a month: 30 simulated days of a cluster writing ~1M events a day.

Usage: python benchmarks/month.py [DAYS]   (default 30). The simulation is cached; training
runs in its own process and reports time and peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.data import BENCH_CLUSTER, CACHE  # noqa: E402
from benchmarks.rss import peak_rss_mb  # noqa: E402
from benchmarks.scale import FIXED_PER_DAY, PER_NODE_PER_DAY  # noqa: E402

NODES = round((1_000_000 - FIXED_PER_DAY) / PER_NODE_PER_DAY)


def _files(days: int) -> list[str]:
    from scenarios.simulate import simulate

    out = CACHE / f"month-{days}d"
    files = sorted(out.glob("*.jsonl.gz"))
    if len(files) < days:
        simulate(out, days=days, seed=13, spec=replace(BENCH_CLUSTER, nodes=NODES))
        files = sorted(out.glob("*.jsonl.gz"))
    return [str(f) for f in files]


def _child(days: str) -> None:
    from models.detector import DetectorParams
    from pipelines.train import TrainConfig, train

    files = _files(int(days))
    start = time.perf_counter()
    result = train(files, TrainConfig(params=DetectorParams(seed=0)))
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "events": result.stats.n_events + result.stats.n_merged,
                "windows": len(result.windows),
                "seconds": seconds,
                "fit_seconds": result.fit_seconds,
                "rss_mb": peak_rss_mb(),
            }
        )
    )


def main(days: int = 30) -> None:
    t = time.perf_counter()
    _files(days)
    print(f"simulated {days} days in {time.perf_counter() - t:.0f} s (cached after the first run)", flush=True)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(days)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"train on {days} days: {row['events']:,} events, {row['windows']:,} windows in "
        f"{row['seconds'] / 60:.1f} min ({row['events'] / row['seconds']:,.0f} events/s; forest fit "
        f"{row['fit_seconds']:.1f} s), peak RSS {row['rss_mb']:,.0f} MB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
