"""Ingest throughput and memory against the orjson.loads-per-line floor, in the same run.

Each measurement runs in its own process so that its peak RSS is its own. The floor and kaad's
ingest alternate five times on each file; the table gives the median run of each and the
median, lowest and highest of the five ratios. Files: the simulated cluster's events as
JSON lines (plain), the same gzipped, and the same with request bodies on 26% of the events
(bodies: lease renewals, JSON patches, pods, deployments, as a Request-level policy logs them).
Usage: python benchmarks/ingest.py [N_EVENTS ...]   (default 200000)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.rss import peak_rss_mb  # noqa: E402


def _floor(path: str) -> int:
    import gzip

    import orjson

    opener = gzip.open if path.endswith(".gz") else open
    n = 0
    with opener(path, "rb") as handle:
        for line in handle:
            orjson.loads(line)
            n += 1
    return n


def _ingest(path: str) -> int:
    from pipelines.ingest import ingest

    result = ingest([path], collect=False)
    assert result.stats.n_rejected == 0, result.stats.rejects[:3]
    return result.stats.n_events + result.stats.n_merged


def _ingest_parquet(path: str) -> int:
    import tempfile

    from pipelines.ingest import ingest

    with tempfile.TemporaryDirectory() as tmp:
        result = ingest([path], collect=False, out=Path(tmp) / "events.parquet")
    return result.stats.n_events + result.stats.n_merged


def _featurise(path: str) -> int:
    from features.featurise import featurise_history
    from pipelines.ingest import Ingestor

    ingestor = Ingestor()
    featurise_history(ingestor.iter_batches([path]))
    return ingestor.stats.n_events + ingestor.stats.n_merged


def _duckdb_peer(path: str) -> int:
    """What a SQL hunter would run: DuckDB read_json of the same fields, to Arrow."""
    import duckdb

    from events.parse import READ_JSON_COLUMNS

    con = duckdb.connect()
    compression = "gzip" if path.endswith(".gz") else "none"
    n = 0
    query = (
        f"SELECT * FROM read_json('{path}', format='newline_delimited', "
        f"compression='{compression}', columns={READ_JSON_COLUMNS})"
    )
    for batch in con.sql(query).to_arrow_reader(65536):
        n += batch.num_rows
    return n


def _naive_pandas(path: str) -> int:
    """The first thing a data scientist writes: read_json(lines=True), json_normalize, groupby."""
    import pandas as pd

    raw = pd.read_json(path, lines=True, dtype=False)
    flat = pd.json_normalize(raw.to_dict("records"))
    flat["timestamp"] = pd.to_datetime(flat["requestReceivedTimestamp"], utc=True, format="ISO8601")
    flat["window"] = flat["timestamp"].dt.floor("1h")
    flat.groupby(["user.username", "window", "verb"]).size()
    return len(raw)


STAGES = {
    "floor": _floor,
    "ingest": _ingest,
    "ingest_parquet": _ingest_parquet,
    "ingest_featurise": _featurise,
    "peer_duckdb_read_json": _duckdb_peer,
    "peer_naive_pandas": _naive_pandas,
}


def measure(stage: str, path: str) -> dict:
    """Run one stage in a child process; return lines/s and peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", stage, path],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(stage: str, path: str) -> None:
    start = time.perf_counter()
    n = STAGES[stage](path)
    seconds = time.perf_counter() - start
    rss_mb = peak_rss_mb()
    print(json.dumps({"stage": stage, "events": n, "seconds": seconds, "rate": n / seconds, "rss_mb": rss_mb}))


#: The floor and kaad's ingest run this many times, alternately, on each file: both move by
#: 10-20% from run to run on these machines, so one pair of runs proves little.
REPEATS = 5


def _inputs(n: int) -> list[tuple[str, str]]:
    from benchmarks.data import bodies_file, events_file

    inputs = [("plain", str(events_file(n))), ("gz", str(events_file(n, gz=True)))]
    if n <= 1_000_000:  # the body-heavy file: 26% of events with a request body
        inputs.append(("bodies", str(bodies_file(n))))
    return inputs


def run(sizes: list[int], repeats: int = REPEATS) -> list[dict]:
    import statistics

    rows = []
    for n in sizes:
        for kind, path in _inputs(n):
            mb = os.path.getsize(path.removesuffix(".gz")) / 1e6
            paired = {"floor": [], "ingest": []}
            for _ in range(repeats):
                for stage in paired:
                    paired[stage].append(measure(stage, path))
            ratios = [i["rate"] / f["rate"] for f, i in zip(paired["floor"], paired["ingest"], strict=True)]
            results = {
                stage: sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2] for stage, runs in paired.items()
            }  # the median run of each
            others = [
                s
                for s in STAGES
                if s not in paired
                and (s != "peer_naive_pandas" or n <= 1_000_000)
                and (kind != "bodies" or s in ("ingest_parquet",))
            ]
            results.update({stage: measure(stage, path) for stage in others})
            floor = results["floor"]["rate"]
            for stage, r in results.items():
                ratio = (
                    f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})"
                    if stage == "ingest"
                    else f"{r['rate'] / floor:.2f}"
                )
                rows.append(
                    {
                        "events": n,
                        "file": kind,
                        "MB": round(mb),
                        "stage": stage,
                        "events/s": round(r["rate"]),
                        "MB/s": round(mb / r["seconds"]),
                        "ratio_to_floor": ratio,
                        "seconds": round(r["seconds"], 2),
                        "peak_rss_mb": round(r["rss_mb"]),
                    }
                )
    return rows


def print_table(rows: list[dict]) -> None:
    cols = list(rows[0])
    print(" | ".join(cols))
    print(" | ".join("---" for _ in cols))
    for row in rows:
        print(" | ".join(str(row[c]) for c in cols))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        print_table(run([int(a) for a in sys.argv[1:]] or [200_000]))
