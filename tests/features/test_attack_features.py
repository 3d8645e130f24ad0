"""Each simulated attack moves a documented feature of its attacker's window past the p99 of
that identity's own history (features/catalog.py says which features catch which attack)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.catalog import FEATURES
from features.featurise import featurise_history
from pipelines.ingest import Ingestor
from scenarios.attacks import ATTACKS
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate

SPEC = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
HISTORY_DAYS = 4


def documented(scenario: str) -> list[str]:
    return [f.name for f in FEATURES if scenario in f.catches]


@pytest.fixture(scope="module", params=["loud", "quiet"])
def simulated(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"features-{request.param}")
    result = simulate(out, days=HISTORY_DAYS + 1, attacks=list(ATTACKS), variant=request.param, seed=23, spec=SPEC)
    windows, _ = featurise_history(Ingestor().iter_batches([str(f) for f in result.files]))
    labels = pd.read_csv(result.labels)
    labels["window_start"] = pd.to_datetime(labels["timestamp"], utc=True).dt.floor("1h")
    attack_day = pd.Timestamp(SPEC.start, tz="UTC") + pd.Timedelta(days=HISTORY_DAYS)
    history = windows[windows.index.get_level_values("window_start") < attack_day]
    return request.param, windows, history, labels


def test_every_attack_has_documented_features():
    for name in ATTACKS:
        assert documented(name), f"no feature in features/catalog.py names {name} in 'catches'"


@pytest.mark.parametrize("scenario", sorted(ATTACKS))
def test_attack_moves_a_documented_feature_past_the_identity_p99(simulated, scenario):
    variant, windows, history, labels = simulated
    feats = documented(scenario)
    rows = labels.loc[labels["scenario"] == scenario, ["identity", "window_start"]].drop_duplicates()
    moved = []
    for identity, start in rows.itertuples(index=False):
        window = windows.loc[(identity, start), feats]
        past = history.xs(identity, level="identity")[feats] if identity in history.index.get_level_values(0) else None
        p99 = past.quantile(0.99) if past is not None and len(past) else pd.Series(0.0, index=feats)
        moved += [f for f in feats if window[f] > p99[f]]
    assert moved, f"{scenario} ({variant}) moved none of {feats} past the identity's p99"
