"""The lake engines: local against a Dask LocalCluster of 1 and 2 workers, 30 and 60 days.

Each run is its own process (LocalCluster start-up included). Reports wall time, the client
process's peak RSS and each worker's (VmHWM read on the worker after the run), the speed-up of
2 workers over 1, and per-partition costs and the scheduler's per-task overhead, from which
a 4-worker run is estimated on paper.
Usage: python benchmarks/dask_engine.py [DAYS ...]   (default 30 60; BENCH_SIZE=full: the
benchmark cluster at the real rate, ~250k events a day, else a small one, ~15k a day)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.rss import peak_rss_mb  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"


def lake(days: int, full: bool) -> Path:
    """A one-cluster lake of ``days`` simulated days (made once, cached)."""
    from pipelines.ingest import ingest
    from scenarios.cluster import ClusterSpec
    from scenarios.simulate import simulate

    name = f"lake-{'full' if full else 'small'}-{days}d"
    root = CACHE / name
    if root.exists() and not _current(root):  # written by an older kaad: ingest again
        shutil.rmtree(root)
    if not root.exists():
        spec = (
            ClusterSpec(nodes=10, app_namespaces=12, humans=12, rate_scale=1.0)
            if full
            else ClusterSpec(nodes=4, app_namespaces=6, humans=6, rate_scale=0.1)
        )
        sim = CACHE / f"sim-{name}"
        if not sim.exists():
            simulate(sim, days=days, seed=42, spec=spec)
        tmp = root.with_suffix(".tmp")
        ingest(sorted(str(p) for p in sim.glob("*.jsonl*")), out=tmp, cluster="bench", collect=False)
        tmp.rename(root)
    return root


def _current(root: Path) -> bool:
    """Whether the cached lake has every column of today's event schema."""
    import pyarrow.parquet as pq

    from events.schema import EVENT_SCHEMA

    first = next(root.rglob("*.parquet"), None)
    return first is not None and set(EVENT_SCHEMA.names) <= set(pq.read_schema(first).names)


def _worker_peak() -> float:
    return peak_rss_mb()


def _cpu() -> float:
    """CPU seconds (user + system) of this process so far, all its threads."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(engine: str, workers: int, root: str, days: int) -> None:
    from engine.history import Options, featurise_lake
    from engine.lake import lake_partitions

    partitions = lake_partitions([root])[:days]
    start, cpu_start = time.perf_counter(), _cpu()
    started = start
    if engine == "local":
        history = featurise_lake(partitions, Options(), on_progress=None)
        peaks: list[float] = []
        worker_cpu: list[float] = []
    else:
        from distributed import Client

        from engine.cluster import local_cluster

        with local_cluster(workers) as cluster, Client(cluster) as client:  # as kaad starts one
            started = time.perf_counter()
            before = client.run(_cpu)  # the workers' start-up (imports) left out
            history = featurise_lake(partitions, Options(), client=client, on_progress=None)
            after = client.run(_cpu)
            peaks = sorted(client.run(_worker_peak).values())
            worker_cpu = sorted(after[w] - before[w] for w in after)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "engine": engine,
                "workers": workers,
                "partitions": len(partitions),
                "events": history.n_events,
                "windows": len(history.windows),
                "seconds": seconds,
                "client_rss_mb": peak_rss_mb(),
                "worker_rss_mb": peaks,
                # Where a run's time goes: starting the cluster, the client process's CPU
                # (scheduler included: a LocalCluster's runs in it), each worker's CPU.
                "start_s": started - start,
                "client_cpu_s": _cpu() - cpu_start,
                "worker_cpu_s": worker_cpu,
            }
        )
    )


def _costs(root: str) -> None:
    """Per-partition costs of the Dask engine's three tasks (CPU seconds of this process),
    the local engine's one pass, and the scheduler's per-task overhead."""
    from distributed import Client

    from engine.cluster import local_cluster
    from engine.history import Options, _day, prepare_partition, prepared_features, prepared_keys
    from engine.lake import lake_partitions
    from features.featurise import new_encoder

    partitions = lake_partitions([root])
    state = new_encoder()
    prepare_s, keys_s, features_s, local_s = [], [], [], []
    for partition in partitions[: min(5, len(partitions))]:
        start = time.process_time()
        day = prepare_partition(partition, Options())
        prepare_s.append(time.process_time() - start)
        start = time.process_time()
        prepared_keys(day)
        keys_s.append(time.process_time() - start)
        start = time.process_time()
        prepared_features(day, state)
        features_s.append(time.process_time() - start)
        start = time.process_time()
        _day(partition, state, Options())
        local_s.append(time.process_time() - start)
    with local_cluster(2) as c, Client(c) as client:
        client.gather(client.map(abs, range(50)))  # warm up
        start = time.perf_counter()
        n = 1000
        client.gather(client.map(abs, range(-n, 0)))
        overhead = (time.perf_counter() - start) / n
    print(
        json.dumps(
            {
                "prepare_s": prepare_s,
                "keys_s": keys_s,
                "features_s": features_s,
                "local_s": local_s,
                "task_overhead_s": overhead,
            }
        )
    )


def _run(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(days_list: list[int], full: bool = False) -> tuple[list[dict], dict]:
    rows = []
    root = str(lake(max(days_list), full))  # shorter histories are its first days
    for days in days_list:
        for engine, workers in (("local", 1), ("dask", 1), ("dask", 2)):
            rows.append({"days": days, **_run(["--child", engine, str(workers), root, str(days)])})
    costs = _run(["--costs", root])
    return rows, costs


def report(rows: list[dict], costs: dict) -> None:
    print(
        "days | engine | workers | events | seconds | cluster start s | client CPU s | worker CPU s | "
        "client peak RSS MB | worker peak RSS MB"
    )
    print("---|---|---|---|---|---|---|---|---|---")
    for r in rows:
        workers = ", ".join(f"{m:.0f}" for m in r["worker_rss_mb"]) or "-"
        cpu = ", ".join(f"{c:.1f}" for c in r["worker_cpu_s"]) or "-"
        print(
            f"{r['days']} | {r['engine']} | {r['workers']} | {r['events']:,} | {r['seconds']:.1f} | "
            f"{r['start_s']:.1f} | {r['client_cpu_s']:.1f} | {cpu} | {r['client_rss_mb']:.0f} | {workers}"
        )
    by = {(r["days"], r["engine"], r["workers"]): r for r in rows}
    for days in sorted({r["days"] for r in rows}):
        one, two = by[(days, "dask", 1)], by[(days, "dask", 2)]
        print(f"\n{days} days: 2 workers over 1: {one['seconds'] / two['seconds']:.2f}x")
    all_days = sorted({r["days"] for r in rows})
    if len(all_days) > 1:
        lo, hi = all_days[0], all_days[-1]
        ratio = max(by[(hi, "dask", 2)]["worker_rss_mb"]) / max(by[(lo, "dask", 2)]["worker_rss_mb"])
        print(f"worker peak RSS, {hi} days over {lo} days (2 workers): {ratio:.2f}x")
    mean = {name: sum(costs[name]) / len(costs[name]) for name in ("prepare_s", "keys_s", "features_s", "local_s")}
    overhead = costs["task_overhead_s"]
    days = all_days[0]
    print(
        f"\nper partition (CPU s): prepare {mean['prepare_s']:.3f}, keys {mean['keys_s']:.3f}, features "
        f"{mean['features_s']:.3f} (the local engine's one pass: {mean['local_s']:.3f}); scheduler overhead "
        f"{overhead * 1000:.2f} ms a task (4 tasks a partition)"
    )
    work = days * (mean["prepare_s"] + mean["keys_s"] + mean["features_s"] + 4 * overhead)
    for workers in (1, 2, 4, 8):
        # The days' tasks are independent but for the chain of state folds (cheap, one per
        # day, on the critical path with a task's latency each).
        chain = days * overhead
        seconds = max(work / workers, chain)
        print(f"estimate, {workers} workers: {seconds:.1f} s ({work / seconds:.2f}x)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1:2] == ["--costs"]:
        _costs(sys.argv[2])
    else:
        full = os.environ.get("BENCH_SIZE") == "full"
        report(*run([int(a) for a in sys.argv[1:]] or [30, 60], full))
