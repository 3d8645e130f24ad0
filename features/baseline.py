"""IdentityBaseline: express each window as deviations from that identity's own history."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from features.enrich import kinds_of

#: The smallest scale, as a share of the feature's unit (0.1 for shares, 1 for counts): a
#: feature constant over all training windows still gives finite deviations.
MIN_SCALE_SHARE = 0.01
#: Deviations are clipped here: beyond 50 scale units "far outside the usual" says it all,
#: and the isolation forest splits on ranks, not magnitudes.
CLIP = 50.0
TIME_COLUMNS = ("hour_of_day", "weekday")
_PERIODS = {"hour_of_day": 24, "weekday": 7}


def _identities(X, n_rows: int) -> np.ndarray | None:
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex) and "identity" in index.names:
        return np.asarray(index.get_level_values("identity"), dtype=object)
    return None


class IdentityBaseline(TransformerMixin, BaseEstimator):
    """Express each window's features as deviations from that identity's own history.

    ``fit`` learns, per identity, the median (``center_``) and interquartile range of each
    feature over its windows, and how often it is active at each hour of day and weekday.
    Identities with fewer than ``min_history`` windows, and identities unseen in ``fit``, are
    compared with the median identity of their kind (service account, node, system,
    anonymous, human), else with the whole population. The scale of a deviation is the
    identity's IQR plus a floor from the population: its IQR, or where that is 0 its mean
    absolute deviation (the modified z-score), never below 1% of the feature's unit
    (``min_scale`` = 0.1 for shares, 1 for counts). Hour and weekday come out as rarity in
    [0, 1] for that identity.

    Identity is read from the index level ``"identity"``; a plain array uses the population.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.MultiIndex.from_product([["ci"], pd.date_range("2026-01-01", periods=10, freq="h")],
    ...                                  names=["identity", "window_start"])
    >>> X = pd.DataFrame({"n_requests": [10.0, 12, 11, 9, 10, 14, 11, 10, 12, 40]}, index=idx)
    >>> IdentityBaseline(min_history=3).fit(X.iloc[:9]).transform(X.iloc[9:]).round(1).tolist()
    [[7.2]]
    """

    def __init__(self, *, min_history: int = 24, min_scale: float = 0.1, time_columns: tuple[str, ...] = TIME_COLUMNS):
        self.min_history = min_history
        self.min_scale = min_scale
        self.time_columns = time_columns

    def _time_mask(self) -> np.ndarray:
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return np.zeros(self.n_features_in_, dtype=bool)
        return np.isin(names, list(self.time_columns))

    def fit(self, X, y=None) -> IdentityBaseline:
        values = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        identities = _identities(X, values.shape[0])
        time = self._time_mask()
        q1, q3 = np.percentile(values, [25, 75], axis=0)
        names = getattr(self, "feature_names_in_", None)
        if names is not None:  # shares move in hundredths, counts in units
            unit = np.where([str(n).startswith("frac_") for n in names], self.min_scale, 1.0)
        else:
            unit = np.where(values.max(axis=0) <= 1.0, self.min_scale, 1.0)
        # Iglewicz & Hoaglin's modified z-score: where the IQR is 0 (a feature that is 0 in most
        # windows) the mean absolute deviation (x 1.2533, its normal consistency constant) is
        # the spread, so one privileged pod among thousands of windows is far from usual.
        mean_ad = 1.2533 * np.mean(np.abs(values - np.median(values, axis=0)), axis=0)
        self.scale_floor_ = np.maximum(np.maximum(q3 - q1, mean_ad), MIN_SCALE_SHARE * unit)
        self.global_center_ = np.median(values, axis=0)
        self.global_scale_ = np.maximum(q3 - q1, 0.0) + self.scale_floor_
        self.center_: dict[str, np.ndarray] = {}
        self.scale_: dict[str, np.ndarray] = {}
        self.kind_center_: dict[str, np.ndarray] = {}
        self.time_counts_: dict[str, dict[str, np.ndarray]] = {}
        if identities is not None:
            frame = pd.DataFrame(values, columns=range(values.shape[1]))
            frame["identity"] = identities
            groups = frame.groupby("identity", sort=True)
            sizes = groups.size()
            med = groups.median()
            iqr = groups.quantile(0.75) - groups.quantile(0.25)
            rich = sizes.index[sizes >= self.min_history]
            for ident in rich:
                self.center_[ident] = med.loc[ident].to_numpy(dtype=float)
                self.scale_[ident] = iqr.loc[ident].to_numpy(dtype=float) + self.scale_floor_
            kinds = pd.Series(kinds_of(med.index), index=med.index)
            for kind, members in kinds.groupby(kinds).groups.items():
                self.kind_center_[str(kind)] = med.loc[members].median().to_numpy(dtype=float)
            for col in np.flatnonzero(time):
                period = _PERIODS.get(self.feature_names_in_[col], 24)
                counts = pd.crosstab(frame["identity"], frame[col].astype(int) % period)
                counts = counts.reindex(columns=range(period), fill_value=0)
                self.time_counts_[self.feature_names_in_[col]] = {
                    ident: counts.loc[ident].to_numpy(dtype=float) for ident in rich
                }
        return self

    def _reference(self, identity: str | None, kind: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        if identity is not None and identity in self.center_:
            return self.center_[identity], self.scale_[identity]
        if identity is not None:
            kind_center = self.kind_center_.get(kind if kind is not None else kinds_of([identity])[0])
            if kind_center is not None:
                return kind_center, self.global_scale_
        return self.global_center_, self.global_scale_

    def _references(self, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Codes of each row's identity, and the centre and scale of each distinct identity."""
        codes, uniques = pd.factorize(pd.Series(identities, dtype=object), use_na_sentinel=False)
        named = [u for u in uniques if not pd.isna(u)]
        kinds = dict(zip(named, kinds_of(named), strict=True))
        refs = [self._reference(None if pd.isna(u) else u, kinds.get(u)) for u in uniques]
        return codes, np.vstack([c for c, _ in refs]), np.vstack([s for _, s in refs])

    def usual(self, X) -> np.ndarray:
        """The centre each row of ``X`` is compared with (its identity's, its kind's, or all)."""
        check_is_fitted(self, "global_center_")
        values = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        identities = _identities(X, values.shape[0])
        if identities is None:
            return np.tile(self.global_center_, (values.shape[0], 1))
        if not len(identities):
            return values
        codes, centers, _ = self._references(identities)
        return centers[codes]

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "global_center_")
        values = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        identities = _identities(X, values.shape[0])
        if identities is None:
            identities = np.full(values.shape[0], None, dtype=object)
        time = self._time_mask()
        if values.shape[0] == 0:
            return np.empty_like(values)
        # One reference row per distinct identity, gathered by code: linear in rows, where a
        # mask per identity would cost identities x rows (tens of thousands in a lake).
        codes, centers, scales = self._references(identities)
        out = np.clip((values - centers[codes]) / scales[codes], -CLIP, CLIP)
        uniques = pd.unique(pd.Series(identities, dtype=object))
        for col in np.flatnonzero(time):
            name = self.feature_names_in_[col]
            period = _PERIODS.get(name, 24)
            known = self.time_counts_.get(name, {})
            table = np.zeros((len(uniques), period))
            peak = np.ones(len(uniques))
            has = np.zeros(len(uniques), dtype=bool)
            for i, ident in enumerate(uniques):
                counts = known.get(ident)
                if counts is not None:
                    table[i], peak[i], has[i] = counts, counts.max(), True
            bins = values[:, col].astype(int) % period
            rarity = 1.0 - (table[codes, bins] + 1.0) / (peak[codes] + 1.0)
            # No history of its own: the hour says nothing yet.
            out[:, col] = np.where(has[codes], rarity, 0.0)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "global_center_")
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([f"{n}_rarity" if n in self.time_columns else f"{n}_dev" for n in names], dtype=object)
