"""Flow-log read throughput against a floor measured in the same run on the same file.

The floor is Arrow's own CSV reader splitting the same (gzip) file on spaces into string
columns: decompress and split, nothing typed, checked or located. kaad's reader also types
every field, rejects bad lines with their file and line, counts NODATA/SKIPDATA and writes
the flows to a Parquet spill, so it is slower than the floor; the ratio says by how much.

Run: python benchmarks/flowlogs.py [records]
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEADER = (
    "version account-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol "
    "packets bytes start end action log-status instance-id flow-direction traffic-path"
)


def write_sample(path: Path, n: int, seed: int = 0) -> None:
    """``n`` v5 records in the S3 text layout (header line, gzip), like one day of a busy VPC."""
    rng = np.random.default_rng(seed)
    start = 1774137600 + rng.integers(0, 86400, n)
    lines = [HEADER]
    pods = [f"10.0.{i // 250}.{i % 250 + 2}" for i in range(2000)]
    remote = [f"203.0.113.{i}" for i in range(1, 255)]
    for i in range(n):
        s = int(start[i])
        lines.append(
            f"5 011122223333 eni-0{i % 97:016x} 10.0.1.{i % 50 + 10} {remote[i % 254]} {pods[i % 2000]} "
            f"{remote[i % 254]} {30000 + i % 30000} 443 6 {i % 90 + 1} {(i % 90 + 1) * 700} {s} {s + 60} "
            f"ACCEPT OK i-0{i % 50:016x} egress 8"
        )
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(("\n".join(lines) + "\n").encode())


def floor(path: Path) -> float:
    """Seconds for Arrow's CSV reader to split the file on spaces into string columns."""
    import pyarrow as pa
    from pyarrow import csv

    names = HEADER.split()
    begin = time.perf_counter()
    with csv.open_csv(
        path,
        read_options=csv.ReadOptions(skip_rows=1, column_names=names, block_size=16 << 20),
        parse_options=csv.ParseOptions(delimiter=" ", quote_char=False),
        convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    ) as reader:
        for _ in reader:
            pass
    return time.perf_counter() - begin


def kaad(path: Path, spill: Path) -> tuple[float, int]:
    from flows.read import spill_flows

    begin = time.perf_counter()
    stats = spill_flows([str(path)], spill)
    return time.perf_counter() - begin, stats.n_flows


def main(n: int = 1_000_000, heading: bool = False) -> str:
    if heading:
        print("\n## flow logs (against Arrow's CSV split of the same file, same run)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.log.gz"
        write_sample(path, n)
        floor_s = floor(path)
        ours_s, flows = kaad(path, Path(tmp) / "spill.parquet")
    assert flows == n
    line = (
        f"flow logs: {n:,} v5 records (gzip) read in {ours_s:.2f} s ({n / ours_s:,.0f} records/s); "
        f"floor (Arrow CSV split, strings only) {floor_s:.2f} s ({n / floor_s:,.0f} records/s); "
        f"ratio {ours_s / floor_s:.1f}x the floor"
    )
    print(line)
    return line


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
