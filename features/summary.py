"""DeviationSummary: add how unusual a window is overall to its per-feature deviations.

An isolation forest picks a random feature at each split, so one extreme deviation among 73
features is found late. Two summary columns let it isolate "many attributes unusual at once"
(GuardDuty's multi-attribute UNSEEN) and "one attribute far outside the usual" directly.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class DeviationSummary(TransformerMixin, BaseEstimator):
    """Append ``max_abs_dev`` and ``n_unusual`` (features with ``|dev| >= unusual``).

    Examples
    --------
    >>> DeviationSummary().fit_transform([[0.5, -4.0, 3.0]]).tolist()
    [[0.5, -4.0, 3.0, 4.0, 2.0]]
    """

    def __init__(self, *, unusual: float = 3.0):
        self.unusual = unusual

    def fit(self, X, y=None) -> DeviationSummary:
        validate_data(self, X, dtype=np.float64)
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        values = validate_data(self, X, dtype=np.float64, reset=False)
        magnitude = np.abs(values)
        return np.column_stack(
            [values, magnitude.max(axis=1, initial=0.0), (magnitude >= self.unusual).sum(axis=1).astype(float)]
        )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = input_features if input_features is not None else [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([*names, "max_abs_dev", "n_unusual"], dtype=object)
