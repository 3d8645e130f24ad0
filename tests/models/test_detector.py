"""The detector ranks planted attacks first, keeps one score sign, and saves exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from errors import ModelCompatibilityError, SchemaMismatchError
from models.detector import DetectorParams, anomaly_scores, build_detector, percentiles
from models.persistence import load_bundle, save_bundle
from pipelines.evaluate import read_labels
from pipelines.train import TrainConfig, train
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate

ATTACKS = ["secret_enumeration", "privileged_pod", "cluster_admin_binding", "stolen_token_external", "exec_into_pods"]


def _planted(tmp_path, seed):
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
    sim = simulate(tmp_path, days=8, attacks=ATTACKS, variant="loud", seed=seed, spec=spec)
    files = [str(f) for f in sim.files]
    return train(files[:-1], TrainConfig(params=DetectorParams(seed=seed)), eval_inputs=files[-1:], labels=sim.labels)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """``planted(seed)``: the week and attack day of ``seed``, simulated and trained once for the
    module. The rank test and the average-precision test judge the same run of a seed (each
    built its own: two identical simulations and trainings per seed, ~20 s each on two cores)."""
    runs = {}

    def run(seed):
        if seed not in runs:
            runs[seed] = _planted(tmp_path_factory.mktemp(f"planted-{seed}"), seed)
        return runs[seed]

    return run


@pytest.mark.parametrize("seed", [2, 3])
def test_planted_attacks_rank_at_the_top_of_their_day(planted, seed):
    """Like sklearn's test_iforest_works: a week of a cluster, then five loud attacks among
    the benign changes of the attack day (a rollout, a new IAM session, a hosted CI run ...)."""
    report = planted(seed).evaluation
    assert {s.scenario for s in report.scenarios} >= set(ATTACKS)
    attacks = [s for s in report.scenarios if s.scenario in ATTACKS]
    assert all(s.best_rank_in_day <= 20 for s in attacks), report.scenario_table()


@pytest.mark.parametrize("seed", [2, 3])
def test_planted_attack_windows_reach_the_issue_s_average_precision(planted, seed):
    assert planted(seed).evaluation.average_precision >= 0.8  # the issue's target


def test_higher_score_means_more_anomalous(trained):
    """On the attack day the highest window evidence is a planted attack's window and unusual
    (its calibrated p-value below the identity-day floor of 0.05), while the typical window is
    not; with the sign flipped both would fail."""
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
    assert attack_day.max() > -np.log(0.05) > attack_day.median()


def test_the_threshold_gives_the_requested_alerts_per_held_out_normal_day(trained):
    """Seven normal days: two warm up, two are fitted, the last three are held out (a quarter
    would be the weekend, with too few people's windows to calibrate people on: Friday joins
    it). The default budget is one alerting identity-day per normal day; on the held-out days
    the threshold lets through about that many, and the bundle records the rate it measured."""
    result = trained["result"]
    alert = result.bundle.alert
    assert [len(result.split.warmup), len(result.split.fit), len(result.split.held_out)] == [2, 2, 3]
    assert alert.alerts_per_day == 1 and alert.n_days == 3
    above = int((result.scores > result.bundle.threshold).sum())
    assert above / alert.n_days == alert.expected_alerts_per_day
    assert 0.5 <= alert.expected_alerts_per_day <= 1.0
    asked_two = train_threshold(result, 2.0)
    assert (result.scores > asked_two).sum() / alert.n_days == pytest.approx(2.0, abs=0.5)


def train_threshold(result, alerts_per_day: float) -> float:
    from models.calibration import alert_threshold

    days = result.scores.index.get_level_values("day")
    return alert_threshold(result.scores, days.nunique(), alerts_per_day=alerts_per_day).threshold


def test_percentiles_are_of_reference_scores():
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
    fmt = str(persistence.BUNDLE_FORMAT)
    monkeypatch.setattr(persistence, "_versions", lambda: {"scikit-learn": "0.24.2", "bundle_format": fmt})
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
    fitted_on = (
        pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize().isin(trained["result"].split.fit)
    )
    refit = build_detector(DetectorParams(seed=1)).fit(windows[fitted_on])
    np.testing.assert_allclose(refit.score_samples(windows), detector.score_samples(windows))
