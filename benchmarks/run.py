"""`make bench`: every benchmark, quick by default, BENCH_SIZE=full for 1M events."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import ingest, pipeline, scale, simulate  # noqa: E402

if __name__ == "__main__":
    sizes = [200_000, 1_000_000] if os.environ.get("BENCH_SIZE") == "full" else [200_000]
    print("## simulate")
    simulate.main()
    print("\n## ingest (ratio against orjson.loads per line, same file, same run)")
    ingest.print_table(ingest.run(sizes))
    print("\n## train and score (benchmark cluster, real control-plane rate)")
    for r in pipeline.run():
        print(f"{r['stage']}: {r['events']:,} events, {r['windows']:,} windows in {r['seconds']:.1f} s "
              f"({r['rate']:,.0f} events/s), peak RSS {r['rss_mb']:,.0f} MB")
    if os.environ.get("BENCH_SIZE") == "full":
        print("\n## a whole day at 1M and 4M events (train on day 1, score day 2)")
        scale.run([1_000_000, 4_000_000])
