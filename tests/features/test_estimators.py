"""Our estimators keep scikit-learn's contract."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from sklearn.utils.estimator_checks import parametrize_with_checks

from features.baseline import IdentityBaseline
from features.first_seen import FirstSeenEncoder
from features.summary import DeviationSummary

# FirstSeenEncoder.fit_transform is causal by design (a value is new in the first window it
# appears in), while fit(X).transform(X) has seen everything: the two cannot agree.
CAUSAL = "fit_transform is causal novelty; fit(X).transform(X) has seen all of X by design"


def _expected(estimator):
    if isinstance(estimator, FirstSeenEncoder):
        return {"check_transformer_general": CAUSAL, "check_transformer_data_not_an_array": CAUSAL}
    return {}


@parametrize_with_checks([IdentityBaseline(), FirstSeenEncoder(), DeviationSummary()], expected_failed_checks=_expected)
def test_sklearn_contract(estimator, check):
    check(estimator)


def _windows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    idx = pd.MultiIndex.from_product(
        [["sa", "alice"], pd.date_range("2026-01-01", periods=48, freq="h", tz="UTC")],
        names=["identity", "window_start"],
    )
    return pd.DataFrame(
        {
            "frac_get": rng.uniform(0.4, 0.6, 96),
            "n_exec": rng.poisson(0.1, 96).astype(float),
            "hour_of_day": idx.get_level_values(1).hour.to_numpy(float),
        },
        index=idx,
    )


def test_baseline_is_per_identity_with_a_population_fallback():
    X = _windows()
    base = IdentityBaseline(min_history=10).set_output(transform="pandas").fit(X)
    out = base.transform(X)
    assert list(out.columns) == ["frac_get_dev", "n_exec_dev", "hour_of_day_rarity"]
    assert out.index.equals(X.index)
    newcomer = X.iloc[:1].rename(index={"sa": "system:serviceaccount:x:new"}, level="identity")
    assert base.transform(newcomer).iloc[0]["hour_of_day_rarity"] == 0.0  # no history of its own


def test_baseline_rejects_reordered_columns():
    X = _windows()
    base = IdentityBaseline().fit(X)
    try:
        base.transform(X[X.columns[::-1]])
    except ValueError as exc:
        assert "feature names" in str(exc).lower()
    else:
        raise AssertionError("reordered columns were accepted")


def test_estimators_pickle_and_give_the_same_output():
    X = _windows()
    base = IdentityBaseline(min_history=5).fit(X)
    clone = pickle.loads(pickle.dumps(base))
    np.testing.assert_array_equal(base.transform(X), clone.transform(X))
    events = pd.DataFrame({"identity": ["a", "a", "b"], "source_ip": ["1.1.1.1", "2.2.2.2", "1.1.1.1"]})
    enc = FirstSeenEncoder(attributes=(("source_ip", "source_ip"),)).fit(events.iloc[:1])
    np.testing.assert_array_equal(enc.transform(events), pickle.loads(pickle.dumps(enc)).transform(events))
