"""The faster featurisation gives the features it gave before, value for value.

``data/windows_sim2_chunks_*.parquet`` hold the window features the implementation at commit
78f4d88 (before the speed work) produced for two simulated days with six attacks on the second,
read in chunks of 1 MiB (windows split across chunks are merged) and of 16 MiB. Features
added since are appended to them as today's code computes them, once every older column was
checked equal (``n_webhook_external``, all 0 on these days). The simulator's days change with
it (kube-controller-manager's informers, session 16; a pod of each DaemonSet on every node,
session 22): the references were made again by running 78f4d88's code on today's days, and
``n_webhook_external`` appended the same way.
They differ between themselves in the last bits of a few shares (a window seen in two chunks is
merged by weighting its shares), so each chunk size is compared with its own reference. The
test simulates the same days and featurises them with today's code. Features added since are
not in the reference: each is named in ``ADDED`` and tested on its own, and every other
column must still be the reference's, value for value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import features.chunk_groups as chunk_groups_module
import features.featurise as featurise_module
from features.chunk_groups import chunk_groups
from features.featurise import MAX_HELD_ROWS, featurise_history
from features.profiles import ProfileBuilder
from pipelines.ingest import Ingestor
from scenarios.attacks import ATTACKS
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate

DATA = Path(__file__).parent / "data"
#: Window features added after the reference was made, and where each is tested.
ADDED = {
    "new_denied_target": "tests/features/test_refusals.py",
    "new_refused_target": "tests/features/test_refusals.py",
}
#: Features whose meaning changed since, where each is tested: a peer precedent (a kubelet's
#: namespace judged against every kubelet's, a user agent by its client line) only takes
#: novelty away, so they may only be lower than the reference's.
CHANGED = {
    "new_namespace": "tests/features/test_precedent.py",
    "new_user_agent": "tests/features/test_precedent.py",
}


@pytest.fixture(scope="module")
def two_days(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("sim2")
    spec = ClusterSpec(nodes=2, app_namespaces=3, humans=3, rate_scale=0.05)
    simulate(out, days=2, seed=3, spec=spec, attacks=list(ATTACKS)[:6], attack_day_index=1)
    return sorted(str(p) for p in out.glob("*.jsonl*"))


@pytest.mark.parametrize("mib", [1, 16])
def test_window_features_equal_the_previous_implementation(two_days, mib):
    expected = pd.read_parquet(DATA / f"windows_sim2_chunks_{mib}m.parquet")
    windows, _ = featurise_history(Ingestor(chunk_bytes=mib << 20).iter_batches(two_days))
    assert len(expected) > 1000  # two days of a small cluster: enough windows to mean something
    assert set(windows.columns) - set(expected.columns) == set(ADDED)
    assert set(expected.columns) <= set(windows.columns)
    same = [c for c in expected.columns if c not in CHANGED]
    # Counts exactly; floats to 1e-12: numpy's vectorised log differs by an ulp between CPUs
    # (log_requests, 4.4e-16 on an AMD EPYC against the machine that wrote the reference).
    pd.testing.assert_frame_equal(_flat(windows[same]), _flat(expected[same]), check_exact=False, rtol=1e-12, atol=0)
    for column in CHANGED:
        assert (windows[column].to_numpy() <= expected[column].to_numpy()).all()


def _flat(windows: pd.DataFrame) -> pd.DataFrame:
    """The frame with its index as columns, identities as plain text (Parquet keeps no NA kind)."""
    flat = windows.reset_index()
    return flat.assign(identity=flat["identity"].astype(str))


@pytest.fixture(scope="module")
def late_batches(two_days) -> list[pa.Table]:
    """The two days as ingest hands them over, with every fifth event of the first batch
    arriving two batches late, as a long watch's ResponseComplete does."""
    batches = list(Ingestor(chunk_bytes=1 << 20).iter_batches(two_days))
    late = np.arange(batches[0].num_rows) % 5 == 0
    first, moved = batches[0].filter(pa.array(~late)), batches[0].filter(pa.array(late))
    return [first, batches[1], pa.concat_tables([batches[2], moved]), *batches[3:]]


@pytest.mark.parametrize("held", [MAX_HELD_ROWS, 500])
def test_chunks_featurised_in_groups_give_what_chunks_one_by_one_give(late_batches, monkeypatch, held):
    """Ingest hands over batches of a few thousand events; featurising them one chunk at a time
    paid pandas' cost per call on every chunk. Chunks are now prepared, marked and counted in
    groups, each chunk keeping its own novelty and its own windows: the windows, what the
    encoder learned and the profiles are those of the chunks one by one (a group of one chunk).

    The late events' windows were finished already (each is merged from two parts), and values
    they carry were seen first in later windows. With a small ``MAX_HELD_ROWS`` busy windows
    stay open across chunks."""
    monkeypatch.setattr(featurise_module, "MAX_HELD_ROWS", held)
    groups = [len(g.stops) for g in chunk_groups(late_batches, "1h")]
    assert len(groups) < sum(groups)  # several chunks share a group

    def run() -> tuple[pd.DataFrame, list, dict]:
        profiles = ProfileBuilder()
        windows, encoder = featurise_history(late_batches, observe=profiles.observe)
        sets = [*encoder.seen_, encoder.identities_, encoder.ip_ranges_]
        return windows, [sorted(np.concatenate(s._runs).tolist()) if s._runs else [] for s in sets], profiles.profiles()

    grouped = run()
    monkeypatch.setattr(chunk_groups_module, "GROUP_ROWS", 1)  # each chunk a group of its own
    one_by_one = run()
    pd.testing.assert_frame_equal(grouped[0], one_by_one[0], check_exact=True)
    assert grouped[1] == one_by_one[1]
    assert grouped[2] == one_by_one[2]
