"""Simulator speed: seconds to generate one million events (target: well under a minute)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.data import BENCH_CLUSTER  # noqa: E402
from scenarios.attacks import ATTACKS  # noqa: E402
from scenarios.simulate import simulate  # noqa: E402


def main(days: int = 4) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = simulate(Path(tmp), days=days, attacks=list(ATTACKS), seed=1, spec=BENCH_CLUSTER)
        seconds = time.perf_counter() - start
    print(
        f"simulated {result.n_events:,} events ({days} days, {BENCH_CLUSTER.nodes} nodes, "
        f"rate_scale {BENCH_CLUSTER.rate_scale}) in {seconds:.1f} s: "
        f"{result.n_events / seconds:,.0f} events/s, "
        f"{1e6 / (result.n_events / seconds):.1f} s per million"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
