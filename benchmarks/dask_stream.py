"""Where Dask workers spend a lake's featurisation: 1 and 2 warmed workers, task stream and rusage.

Each round starts a LocalCluster as kaad does, imports the engine's modules on its workers and
runs two partitions first (so that start-up and first calls are left out), then featurises the
lake's first 30 partitions inside Dask's task stream. Printed per round: wall time, each
worker's user and system CPU and minor page faults (``getrusage`` on the worker), compute
seconds summed per task prefix, the transfers between workers and what they moved (MB by task).
Usage: python benchmarks/dask_stream.py [LAKE] [ROUNDS]   (default: the 30-day lake that
``benchmarks/dask_engine.py`` caches, 2 rounds)
"""

from __future__ import annotations

import collections
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _warm() -> int:
    import pyarrow.parquet  # noqa: F401

    import engine.history
    import engine.prepared  # noqa: F401

    return 0


def _usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def _incoming(dask_worker) -> list[dict]:
    return [dict(t["keys"]) for t in dask_worker.transfer_incoming_log]


def one_round(partitions, workers: int) -> dict:
    """Featurise ``partitions`` on a fresh LocalCluster of ``workers``; the measures of the run."""
    from distributed import Client, get_task_stream

    from engine.cluster import local_cluster
    from engine.history import Options, featurise_lake

    with local_cluster(workers) as cluster, Client(cluster) as client:
        client.run(_warm)
        featurise_lake(partitions[:2], Options(), client=client, on_progress=None)
        before = client.run(_usage)
        logged = {w: len(t) for w, t in client.run(_incoming).items()}
        start = time.perf_counter()
        with get_task_stream(client) as stream:
            featurise_lake(partitions, Options(), client=client, on_progress=None)
        wall = time.perf_counter() - start
        after = client.run(_usage)
        moved = [keys for w, t in client.run(_incoming).items() for keys in t[logged.get(w, 0) :]]
    # What moved between workers, by task prefix: MB and number of results.
    by_prefix: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for keys in moved:
        for key, nbytes in keys.items():
            by_prefix[str(key).split("-")[0]][0] += nbytes / 1e6
            by_prefix[str(key).split("-")[0]][1] += 1
    compute: dict[str, float] = collections.defaultdict(float)
    transfers, transfer_s = 0, 0.0
    for task in stream.data:
        prefix = str(task["key"]).split("-")[0]
        for step in task["startstops"]:
            if step["action"] == "compute":
                compute[prefix] += step["stop"] - step["start"]
            elif step["action"] == "transfer":
                transfers += 1
                transfer_s += step["stop"] - step["start"]
    used = [tuple(a - b for a, b in zip(after[w], before[w], strict=True)) for w in sorted(after)]
    return {
        "wall": wall,
        "usage": used,
        "compute": dict(compute),
        "transfers": (transfers, transfer_s),
        "moved": dict(by_prefix),
    }


def main(lake: str, rounds: int) -> None:
    from engine.lake import lake_partitions

    partitions = lake_partitions([lake])[:30]
    print(
        "| round | workers | wall s | user CPU s | system CPU s | minor faults | compute s by task | transfers (s) "
        "| moved: MB (results) by task |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in range(1, rounds + 1):
        for workers in (1, 2):
            m = one_round(partitions, workers)
            user = " + ".join(f"{u[0]:.2f}" for u in m["usage"])
            system = " + ".join(f"{u[1]:.2f}" for u in m["usage"])
            faults = " + ".join(f"{u[2]:,}" for u in m["usage"])
            tasks = ", ".join(f"{k} {v:.2f}" for k, v in sorted(m["compute"].items()))
            n, s = m["transfers"]
            moved = ", ".join(f"{k} {mb:.1f} ({c})" for k, (mb, c) in sorted(m["moved"].items())) or "-"
            row = f"| {r} | {workers} | {m['wall']:.2f} | {user} | {system} | {faults} | {tasks} | {n} ({s:.2f})"
            print(f"{row} | {moved} |", flush=True)


if __name__ == "__main__":
    default = str(ROOT / "benchmarks" / ".cache" / "lake-small-30d")
    main(sys.argv[1] if len(sys.argv) > 1 else default, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
