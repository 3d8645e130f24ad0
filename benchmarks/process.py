"""Whole processes, as a user meets them: start-up, imports and writing included.

`kaad ingest FILE --out X.parquet` against a bare orjson loop run as its own process (the
floor) and against a DuckDB `read_json` of the event's main columns to Parquet (the peer a
SQL hunter would write), plus ingest + featurise (what `kaad train` does before fitting) as
its own process. Each stage alternates with the floor REPEATS times; ratios are floor wall
time over stage wall time, per round (above 1.0: faster than the floor).
Usage: python benchmarks/process.py [N_EVENTS [REPEATS [STAGE ...]]]   (default 200000, 3,
every stage; STAGE: part of a stage's name, e.g. featurise)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOOR = """
import sys, orjson
n = 0
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        orjson.loads(line)
        n += 1
"""

#: The columns kaad's event table is built around, extracted by DuckDB and written to Parquet.
PEER = """
import sys, duckdb
from events.parse import READ_JSON_COLUMNS
duckdb.sql(f'''COPY (SELECT auditID AS audit_id, stage, verb, user.username AS identity,
    sourceIPs[1] AS source_ip, userAgent AS user_agent, objectRef.resource AS target_resource,
    objectRef.subresource AS target_subresource, objectRef.namespace AS target_namespace,
    objectRef.name AS target_name, responseStatus.code AS response_code,
    requestReceivedTimestamp::TIMESTAMPTZ AS timestamp
  FROM read_json('{sys.argv[1]}', format='newline_delimited', columns={READ_JSON_COLUMNS}))
  TO '{sys.argv[2]}' (FORMAT parquet)''')
"""

KAAD = "import sys; from cli import app; sys.argv = ['kaad', *sys.argv[1:]]; app()"

FEATURISE = """
import sys
from features.featurise import featurise_history
from pipelines.ingest import Ingestor
windows, _ = featurise_history(Ingestor().iter_batches([sys.argv[1]]))
"""


def run_process(args: list[str]) -> dict:
    """Wall seconds, CPU seconds (user + system) and peak RSS of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:4]} failed ({proc.returncode}): {err[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def stages(path: str, out: str) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "floor: orjson.loads per line (process)": [py, "-c", FLOOR, path],
        "kaad ingest FILE": [py, "-c", KAAD, "ingest", path],
        "kaad ingest FILE --out X.parquet": [py, "-c", KAAD, "ingest", path, "--out", out],
        "kaad ingest + featurise (process)": [py, "-c", FEATURISE, path],
        "peer: DuckDB read_json, 12 columns -> Parquet": [py, "-c", PEER, path, out],
    }


REPEATS = 3


def run(n_events: int, repeats: int = REPEATS, only: list[str] | None = None) -> list[dict]:
    # Made in a child: a child forked from a process that simulated the file would report that
    # process's memory as its own peak (Linux keeps the larger of the two across exec).
    made = "import sys; from benchmarks.data import events_file; print(events_file(int(sys.argv[1])))"
    path = subprocess.run(
        [sys.executable, "-c", made, str(n_events)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[-1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "events.parquet")
        procs = stages(path, out)
        floor_name = next(iter(procs))
        if only:  # the floor, and the stages whose names contain one of ``only``
            procs = {n: a for n, a in procs.items() if n == floor_name or any(o in n for o in only)}
        runs: dict[str, list[dict]] = {name: [] for name in procs}
        ratios: dict[str, list[float]] = {name: [] for name in procs}
        for _ in range(repeats):
            for name, args in procs.items():
                if name == floor_name:
                    continue
                floor = run_process(procs[floor_name])  # alternate: the floor moves with the load
                got = run_process(args)
                Path(out).unlink(missing_ok=True)
                runs[floor_name].append(floor)
                runs[name].append(got)
                ratios[name].append(floor["wall"] / got["wall"])
        for name, measured in runs.items():
            median = sorted(measured, key=lambda r: r["wall"])[len(measured) // 2]
            r = ratios[name]
            rows.append(
                {
                    "events": n_events,
                    "stage": name,
                    "wall s": round(median["wall"], 2),
                    "CPU s": round(median["cpu"], 2),
                    "events/s": round(n_events / median["wall"]),
                    "ratio to floor": "1.00"
                    if name == floor_name
                    else f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})",
                    "peak RSS MB": round(median["rss_mb"]),
                }
            )
    return rows


if __name__ == "__main__":
    from benchmarks.ingest import print_table

    args = sys.argv[1:]
    print_table(run(int(args[0]) if args else 200_000, int(args[1]) if len(args) > 1 else REPEATS, args[2:] or None))
