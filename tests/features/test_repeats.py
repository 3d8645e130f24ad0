"""Repeated requests are featurised as one row and a count, and the windows do not change.

A kubelet renews its node lease every ten seconds: 360 identical requests an hour, told apart
only by their auditID and timestamp, which no feature reads. The featurisation reads them as
one row standing for 360 events (features/repeats.py); every window, profile and novelty mark
must be what the events one by one give, on our simulated clusters and on every real sample.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from events.schema import EVENT_SCHEMA
from features.featurise import featurise_history
from features.profiles import ProfileBuilder
from features.repeats import READ_COLUMNS, WEIGHT, collapse_repeats
from pipelines.day_windows import featurise_day
from pipelines.ingest import Ingestor

NODE = "system:node:ip-10-0-1-5.ec2.internal"


def _event(n: int, minute: int, second: int, **change) -> dict:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/ip-10-0-1-5?n={n}",
        "verb": "update",
        "user": {"username": NODE, "groups": ["system:nodes", "system:authenticated"]},
        "sourceIPs": ["10.0.1.5"],
        "userAgent": "kubelet/v1.29.3 (linux/amd64) kubernetes/6813625",
        "objectRef": {"resource": "leases", "namespace": "kube-node-lease", "name": "ip-10-0-1-5"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": f"2026-03-10T14:{minute:02d}:{second:02d}.000000Z",
    }
    return event | change


def _lease_hour_and_a_secret(tmp_path) -> str:
    """An hour of lease renewals every ten seconds, with one secret read in the middle, and the
    first renewal of the next hour."""
    events = [_event(i, i // 6, 10 * (i % 6)) for i in range(360)]
    secret = {"resource": "secrets", "namespace": "shop", "name": "db"}
    events.insert(200, _event(999, 33, 21, verb="get", objectRef=secret))
    events.append(_event(1000, 0, 0, requestReceivedTimestamp="2026-03-10T15:00:00.000000Z"))
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def _both(path: str) -> list[tuple[pd.DataFrame, dict]]:
    """The windows and profiles of ``path``, with repeats collapsed and without."""
    batches = list(Ingestor().iter_batches([path]))
    out = []
    for collapse in (True, False):
        profiles = ProfileBuilder()
        windows, _ = featurise_history(iter(batches), observe=profiles.observe, excuse_copies=False, collapse=collapse)
        out.append((windows, profiles.profiles()))
    return out


def test_an_hour_of_lease_renewals_is_one_row_standing_for_360(tmp_path):
    table = pa.concat_tables(Ingestor().iter_batches([_lease_hour_and_a_secret(tmp_path)]))
    collapsed = collapse_repeats(table, "1h")
    # The renewals, the secret read between them, the next hour's renewal: in order of first.
    assert collapsed[WEIGHT].to_pylist() == [360, 1, 1]
    assert collapsed["target_resource"].to_pylist() == ["leases", "secrets", "leases"]
    assert collapsed["timestamp"].to_pandas().dt.strftime("%H:%M:%S").tolist() == ["14:00:00", "14:33:21", "15:00:00"]


def test_the_windows_and_profiles_are_those_of_the_events_one_by_one(tmp_path):
    (windows, profiles), (expected, expected_profiles) = _both(_lease_hour_and_a_secret(tmp_path))
    pd.testing.assert_frame_equal(windows, expected, check_exact=True)
    assert profiles == expected_profiles
    hour = windows.loc[(NODE, pd.Timestamp("2026-03-10 14:00", tz="UTC"))]
    assert hour["log_requests"] == np.log1p(361)
    assert hour["frac_res_secrets"] == 1 / 361
    assert profiles[NODE]["namespace"] == [("kube-node-lease", 361), ("shop", 1)]


def test_lists_that_join_alike_are_not_merged():
    """An image list is keyed as its items joined; an attacker who writes the separator into an
    image name, or leaves a container without an image, must not make two different pods one
    row (the second pod's image would go unseen)."""
    base = dict.fromkeys(EVENT_SCHEMA.names)
    stamp = pd.Timestamp("2026-03-10 14:00", tz="UTC")
    pods = [
        ["evil:1\x1fnginx", "1"],
        ["evil:1", "nginx\x1f1"],
        ["nginx:1", None],
        ["evil:1", None],
        ["evil:1", "nginx:1"],
        ["evil:1", "nginx:1"],
    ]
    rows = [base | {"timestamp": stamp, "identity": "mallory", "verb": "create", "pod_images": p} for p in pods]
    collapsed = collapse_repeats(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), "1h")
    assert collapsed["pod_images"].to_pylist() == pods[:5]
    assert collapsed[WEIGHT].to_pylist() == [1, 1, 1, 1, 2]


def test_a_table_without_the_columns_read_is_left_as_it_is():
    table = pa.table({"timestamp": pa.array([pd.Timestamp("2026-03-10", tz="UTC")] * 2), "identity": ["a", "a"]})
    assert collapse_repeats(table, "1h") is table


def _real_files(real_samples) -> list[str]:
    files = (p for p in real_samples.rglob("*") if p.is_file())
    return sorted(str(p) for p in files if p.suffix != ".md" and p.name != "labels.csv")


def test_every_real_sample_featurises_the_same_collapsed(real_samples):
    files = _real_files(real_samples)
    assert len(files) >= 60
    for path in files:
        (windows, profiles), (expected, expected_profiles) = _both(path)
        pd.testing.assert_frame_equal(windows, expected, check_exact=True, obj=path)
        assert profiles == expected_profiles, path


@pytest.mark.parametrize("name", ["falco", "kubernetes-event-dataset", "panther-analysis"])
def test_the_featurisation_reads_no_column_but_those_listed(real_samples, name):
    """What :data:`READ_COLUMNS` leaves out is what a collapsed row does not carry: blanking
    every other column (the request bodies' fields included) changes no window."""
    batches = list(Ingestor().iter_batches([str(real_samples / name)]))
    blank = [
        pa.table(
            {
                c: t[c] if c in READ_COLUMNS or c == "timestamp" else pa.nulls(t.num_rows, t.schema.field(c).type)
                for c in t.column_names
            }
        )
        for t in batches
    ]
    expected, _ = featurise_history(iter(batches), collapse=False)
    windows, _ = featurise_history(iter(blank), collapse=False)
    assert len(expected)
    pd.testing.assert_frame_equal(windows, expected, check_exact=True)


def test_a_scored_day_has_the_windows_and_values_of_its_events_one_by_one(tmp_path, real_samples):
    """Scoring featurises a day against the model's history the same way (pipelines/day_windows.py);
    its spill, read back for explanations, keeps every event."""
    history = str(real_samples / "kubernetes-event-dataset" / "events.jsonl")
    _, encoder = featurise_history(Ingestor().iter_batches([history]))
    for k, day in enumerate((history, _lease_hour_and_a_secret(tmp_path))):
        batches = list(Ingestor().iter_batches([day]))
        scored = {}
        for collapse in (True, False):
            spill = tmp_path / f"day-{k}-{collapse}"
            spill.mkdir()
            scored[collapse] = featurise_day(iter(batches), "1h", spill, copy.deepcopy(encoder), collapse=collapse)
        collapsed, expected = scored[True], scored[False]
        pd.testing.assert_frame_equal(collapsed.windows, expected.windows, check_exact=True)
        assert collapsed.values == expected.values
        assert pq.read_metadata(collapsed.spill).num_rows == sum(b.num_rows for b in batches)
