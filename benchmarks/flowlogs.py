"""Flow-log read throughput and memory against a floor measured in the same run on the same file.

The floor is Arrow's own CSV reader splitting the same (gzip) file on spaces into string
columns: decompress and split, nothing typed, checked or located. kaad's reader also types
every field, rejects bad lines with their file and line, counts NODATA/SKIPDATA and writes
the flows to a Parquet spill, so it is slower than the floor; the ratio says by how much.
Each reader runs in a child process of its own, so its peak memory (VmHWM) is its own: a
streaming reader's peak stays flat as the file grows.

Run: python benchmarks/flowlogs.py [records]
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = (
    "version account-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol "
    "packets bytes start end action log-status instance-id flow-direction traffic-path"
)
#: Lines written per chunk: the sample streams to disk, whatever its size.
WRITE_CHUNK = 200_000


def write_sample(path: Path, n: int, seed: int = 0) -> None:
    """``n`` v5 records in the S3 text layout (header line, gzip), like one day of a busy VPC."""
    rng = np.random.default_rng(seed)
    pods = [f"10.0.{i // 250}.{i % 250 + 2}" for i in range(2000)]
    remote = [f"203.0.113.{i}" for i in range(1, 255)]
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write((HEADER + "\n").encode())
        for first in range(0, n, WRITE_CHUNK):
            start = 1774137600 + rng.integers(0, 86400, min(WRITE_CHUNK, n - first))
            lines = []
            for j, s in enumerate(start.tolist()):
                i = first + j
                lines.append(
                    f"5 011122223333 eni-0{i % 97:016x} 10.0.1.{i % 50 + 10} {remote[i % 254]} {pods[i % 2000]} "
                    f"{remote[i % 254]} {30000 + i % 30000} 443 6 {i % 90 + 1} {(i % 90 + 1) * 700} {s} {s + 60} "
                    f"ACCEPT OK i-0{i % 50:016x} egress 8\n"
                )
            handle.write("".join(lines).encode())


_FLOOR = """
import json, sys, time
import pyarrow as pa
from pyarrow import csv
names = sys.argv[2].split()
begin = time.perf_counter()
with csv.open_csv(
    sys.argv[1],
    read_options=csv.ReadOptions(skip_rows=1, column_names=names, block_size=16 << 20),
    parse_options=csv.ParseOptions(delimiter=" ", quote_char=False),
    convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
) as reader:
    for _ in reader:
        pass
seconds = time.perf_counter() - begin
from benchmarks.rss import peak_rss_mb
print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb()}))
"""

_KAAD = """
import json, sys, time
from pathlib import Path
from flows.read import spill_flows
begin = time.perf_counter()
stats = spill_flows([sys.argv[1]], Path(sys.argv[2]))
seconds = time.perf_counter() - begin
from benchmarks.rss import peak_rss_mb
print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb(), "flows": stats.n_flows}))
"""


def _child(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def floor(path: Path) -> dict:
    """Seconds and peak MB for Arrow's CSV reader to split the file on spaces into string columns."""
    return _child(_FLOOR, str(path), HEADER)


def kaad(path: Path, spill: Path) -> dict:
    """Seconds, peak MB and flows for kaad's reader to read the file into a Parquet spill."""
    return _child(_KAAD, str(path), str(spill))


def main(n: int = 1_000_000, heading: bool = False) -> str:
    if heading:
        print("\n## flow logs (against Arrow's CSV split of the same file, same run)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.log.gz"
        begin = time.perf_counter()
        write_sample(path, n)
        written = time.perf_counter() - begin
        size_mb = path.stat().st_size / 1e6
        low = floor(path)
        ours = kaad(path, Path(tmp) / "spill.parquet")
    assert ours["flows"] == n
    line = (
        f"flow logs: {n:,} v5 records ({size_mb:,.0f} MB gzip, written in {written:.0f} s) read in "
        f"{ours['seconds']:.2f} s ({n / ours['seconds']:,.0f} records/s, peak RSS {ours['rss_mb']:,.0f} MB); "
        f"floor (Arrow CSV split, strings only) {low['seconds']:.2f} s ({n / low['seconds']:,.0f} records/s, "
        f"peak RSS {low['rss_mb']:,.0f} MB); ratio {ours['seconds'] / low['seconds']:.1f}x the floor"
    )
    print(line)
    return line


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
