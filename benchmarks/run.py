"""`make bench`: every benchmark; quick by default (minutes), BENCH_SIZE=full for 1M and 4M
events, 1M/4M-event days and a month of training (about 45 min the first time, simulations cached)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import dask_engine, flowlogs, ingest, month, pipeline, process, scale, simulate


def demo_path() -> str:
    """Run `make demo`'s job in a child process against a throw-away MLflow store."""
    import subprocess
    import tempfile
    import time

    code = (
        "import runpy, pathlib; runpy.run_module('demo', run_name='__main__'); "
        "print('VmHWM', [l for l in pathlib.Path('/proc/self/status').read_text().splitlines() "
        "if l.startswith('VmHWM')][0].split()[1])"
    )
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "PYTHONPATH": str(root)}
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, check=True, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
    rss_kb = int(out.stdout.strip().splitlines()[-1].split()[1])
    return f"demo path: {seconds:.1f} s end to end, peak RSS {rss_kb / 1024:,.0f} MB"


if __name__ == "__main__":
    full = os.environ.get("BENCH_SIZE") == "full"
    sizes = [200_000, 1_000_000, 4_000_000] if full else [200_000]
    print("## simulate")
    simulate.main()
    print("\n## ingest (ratio against orjson.loads per line, same file, same run)")
    ingest.print_table(ingest.run(sizes))
    flowlogs.main(1_000_000 if full else 200_000, heading=True)
    print("\n## whole processes: kaad ingest and ingest + featurise against the orjson floor and DuckDB")
    ingest.print_table(process.run(1_000_000 if full else 200_000))
    print("\n## the lake engines: local, Dask LocalCluster of 1 and 2 workers, 30 and 60 days")
    dask_engine.report(*dask_engine.run([30, 60], full))
    print("\n## train and score (benchmark cluster, real control-plane rate)")
    for r in pipeline.run():
        print(
            f"{r['stage']}: {r['events']:,} events, {r['windows']:,} windows in {r['seconds']:.1f} s "
            f"({r['rate']:,.0f} events/s), peak RSS {r['rss_mb']:,.0f} MB"
        )
    print("\n## the make demo path (simulate 21 days, train, MLflow, score, report)")
    print(demo_path())
    if full:
        print("\n## a whole day at 1M and 4M events (train on day 1, score day 2)")
        scale.run([1_000_000, 4_000_000])
        print("\n## a month of training (30 days of ~1M events; simulated once, then cached)")
        month.main(30)
