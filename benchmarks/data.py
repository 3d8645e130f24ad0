"""Benchmark inputs: N events of a realistic simulated cluster, plain and gzip, cached."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
sys.path.insert(0, str(ROOT))

from scenarios.cluster import ClusterSpec  # noqa: E402
from scenarios.simulate import simulate  # noqa: E402

#: A mid-size cluster at the real control-plane rate: ~250k events a day.
BENCH_CLUSTER = ClusterSpec(nodes=10, app_namespaces=12, humans=12, rate_scale=1.0)


def events_file(n_events: int, gz: bool = False) -> Path:
    """Return a JSON-lines file of exactly ``n_events`` simulated events (made on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    plain = CACHE / f"events-{n_events}.jsonl"
    if not plain.exists():
        days = 1
        while True:
            sim_dir = CACHE / f"sim-{days}d"
            if not sim_dir.exists():
                simulate(sim_dir, days=days, seed=42, spec=BENCH_CLUSTER)
            total = sum(1 for f in sorted(sim_dir.glob("*.gz")) for _ in gzip.open(f))
            if total >= n_events:
                break
            days = max(days + 1, int(days * n_events / max(total, 1)) + 1)
        tmp = plain.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            written = 0
            for f in sorted(sim_dir.glob("*.gz")):
                with gzip.open(f) as handle:
                    for line in handle:
                        if written == n_events:
                            break
                        out.write(line)
                        written += 1
        tmp.rename(plain)
    if not gz:
        return plain
    packed = CACHE / f"events-{n_events}.jsonl.gz"
    if not packed.exists():
        with open(plain, "rb") as src, gzip.open(packed.with_suffix(".tmp"), "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        packed.with_suffix(".tmp").rename(packed)
    return packed
