"""Helpers for the scenario tests: a small cluster and readers for what the simulator wrote."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

from scenarios.cluster import ClusterSpec

SMALL = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)


def read_events(files: list[Path]) -> list[dict]:
    events = []
    for path in files:
        with gzip.open(path, "rt") as handle:
            events += [json.loads(line) for line in handle]
    return events


def read_labels(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
