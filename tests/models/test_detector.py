"""The detector ranks planted attacks first, keeps one score sign, and saves exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from errors import ModelCompatibilityError, SchemaMismatchError
from models.detector import DetectorParams, anomaly_scores, build_detector, fit_threshold, percentiles
from models.persistence import load_bundle, save_bundle
from pipelines.evaluate import read_labels
from pipelines.train import TrainConfig, train
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate

ATTACKS = ["secret_enumeration", "privileged_pod", "cluster_admin_binding", "stolen_token_external", "exec_into_pods"]


@pytest.mark.parametrize("seed", [2, 3])
def test_planted_attacks_rank_at_the_top_of_their_day(tmp_path, seed):
    """Like sklearn's test_iforest_works: a week of a cluster, then five loud attacks."""
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
    sim = simulate(tmp_path, days=8, attacks=ATTACKS, variant="loud", seed=seed, spec=spec)
    files = [str(f) for f in sim.files]
    result = train(files[:-1], TrainConfig(params=DetectorParams(seed=seed)), eval_inputs=files[-1:], labels=sim.labels)
    report = result.evaluation
    assert report.average_precision >= 0.8  # the target
    assert {s.scenario for s in report.scenarios} == set(ATTACKS)
    assert all(s.best_rank_in_day <= 20 for s in report.scenarios), report.scenario_table()


def test_higher_score_means_more_anomalous(trained):
    """On the attack day the highest score is a planted attack's window and an alert, while
    the typical window stays below the threshold; with the sign flipped both would fail."""
    result = trained["result"]
    detector = result.bundle.detector
    windows = result.windows
    scores = anomaly_scores(detector, windows)
    np.testing.assert_allclose(scores.to_numpy(), -detector.score_samples(windows))
    attack_day = result.eval_scores
    truth = read_labels(trained["labels"], freq=result.bundle.window)
    attacked = set(zip(truth["identity"], pd.to_datetime(truth["window_start"], utc=True), strict=True))
    identity, start = attack_day.idxmax()
    assert (identity, pd.Timestamp(start).tz_convert("UTC")) in attacked
    assert attack_day.max() > result.bundle.threshold > attack_day.median()


def test_the_threshold_lets_through_the_contamination_share_of_training_windows(trained):
    result = trained["result"]
    share = result.bundle.params["contamination"]
    assert (result.scores > result.bundle.threshold).mean() == pytest.approx(share, abs=0.002)


def test_threshold_from_contamination_and_from_alert_budget(trained):
    scores = trained["result"].scores
    by_share = fit_threshold(scores, DetectorParams(contamination=0.01))
    assert (scores > by_share).mean() == pytest.approx(0.01, abs=0.002)
    by_budget = fit_threshold(scores, DetectorParams(alerts_per_day=2))
    days = pd.DatetimeIndex(scores.index.get_level_values("window_start")).normalize().nunique()
    assert (scores > by_budget).sum() == 2 * days


def test_percentiles_are_of_training_scores():
    assert percentiles(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 2.0, 9.0])).tolist() == [0.0, 50.0, 100.0]


def test_save_load_round_trip_gives_identical_scores(trained, tmp_path):
    bundle = trained["result"].bundle
    path = tmp_path / "model.joblib"
    digest = save_bundle(bundle, path)
    loaded = load_bundle(path)
    windows = trained["result"].windows
    pd.testing.assert_series_equal(anomaly_scores(bundle.detector, windows), anomaly_scores(loaded.detector, windows))
    assert load_bundle(path, sha256=digest).threshold == bundle.threshold


def test_a_tampered_bundle_is_refused(trained, tmp_path):
    path = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelCompatibilityError, match="does not match its recorded SHA-256"):
        load_bundle(path)
    path.with_name("model.joblib.sha256").unlink()
    with pytest.raises(ModelCompatibilityError, match="refusing to unpickle"):
        load_bundle(path)


def test_a_bundle_from_another_sklearn_is_refused(trained, tmp_path, monkeypatch):
    import models.persistence as persistence

    path = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, path)
    monkeypatch.setattr(persistence, "_versions", lambda: {"scikit-learn": "0.24.2", "bundle_format": "1"})
    with pytest.raises(ModelCompatibilityError, match="scikit-learn"):
        load_bundle(path)


def test_a_different_feature_schema_fails_with_the_documented_error(trained):
    bundle = trained["result"].bundle
    windows = trained["result"].windows
    with pytest.raises(SchemaMismatchError, match="missing \\['n_exec'\\]"):
        bundle.check_schema(windows.drop(columns="n_exec"))
    with pytest.raises(SchemaMismatchError, match="another order"):
        bundle.check_schema(windows[windows.columns[::-1]])
    bundle.check_schema(windows)


def test_clone_is_unfitted_and_refits_to_the_same_scores(trained):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    detector = trained["result"].bundle.detector
    copy = clone(detector)
    windows = trained["result"].windows
    with pytest.raises(NotFittedError):
        copy.score_samples(windows)
    refit = build_detector(DetectorParams(seed=1)).fit(windows)
    np.testing.assert_allclose(refit.score_samples(windows), detector.score_samples(windows))
