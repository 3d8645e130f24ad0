"""Ingest + featurise of one file with chunks grouped up to each given size, each in its own process.

``features.chunk_groups.GROUP_ROWS`` set to 1 is the featurisation chunk by chunk (before session
9). Reports the process's CPU (user + system; system apart: page faults grow with the group),
the main thread's CPU, wall time and peak RSS, after imports.
Usage: python benchmarks/groups.py [N_EVENTS [ROWS ...]]   (default 1000000; 1 32768 65536 131072)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import resource, sys, time
import features.chunk_groups as groups
groups.GROUP_ROWS = int(sys.argv[2])
from features.featurise import featurise_history
from pipelines.ingest import Ingestor
r0, t0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.thread_time(), time.perf_counter()
featurise_history(Ingestor().iter_batches([sys.argv[1]]))
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
print(f"{groups.GROUP_ROWS} | {cpu:.2f} | {r1.ru_stime - r0.ru_stime:.2f} | {time.thread_time() - t0:.2f} | "
      f"{time.perf_counter() - w0:.2f} | {r1.ru_maxrss / 1024:.0f}")
"""

if __name__ == "__main__":
    from benchmarks.data import events_file

    args = sys.argv[1:]
    path = str(events_file(int(args[0]) if args else 1_000_000))
    print("group rows | CPU s | of which system | main thread CPU s | wall s | peak RSS MB")
    print("--- | --- | --- | --- | --- | ---")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for rows in args[1:] or ["1", "32768", "65536", "131072"]:
        subprocess.run([sys.executable, "-c", CHILD, path, rows], cwd=ROOT, env=env, check=True)
