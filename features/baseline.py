"""IdentityBaseline: express each window as deviations from that identity's own history."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from features.enrich import kinds_of
from features.peers import peer_groups

#: The smallest scale, as a share of the feature's unit (0.1 for shares, 1 for counts): a
#: feature constant over all training windows still gives finite deviations.
MIN_SCALE_SHARE = 0.01
#: Deviations are clipped here: beyond 50 scale units "far outside the usual" says it all,
#: and the isolation forest splits on ranks, not magnitudes.
CLIP = 50.0
TIME_COLUMNS = ("hour_of_day", "weekday")
#: A value an identity reached in at least ``TAIL_SHARE`` of its windows is at most
#: ``TAIL_DEVIATION`` scale units from its centre: as far as "unusual" (features/summary.py
#: counts ``|dev| >= 3``), never "far outside the usual". Only where that share is at least
#: ``TAIL_WINDOWS`` windows (300 windows of history): in fewer, a 1% habit and chance look alike,
#: and a person's three odd hours in a fortnight would become their habit.
#: Without this a feature that is 0 in most of an identity's windows has an IQR of 0, and the
#: identity's own occasional habit (a garbage collector's deletes after a node leaves, a
#: rollout's new pod addresses: 14 of reviews-api's 456 windows) sits at the clip, 50, with
#: first-ever actions (50 nodes seed 1, both alerting on attack-free days).
TAIL_WINDOWS = 3
TAIL_SHARE = 0.01
TAIL_DEVIATION = 3.0
#: Novelty judged against the identity's own past (features/first_seen.py). To an identity
#: with no past of its own everything is new, so these say nothing about it; ``new_ip_range``
#: is new to the whole cluster and is judged like any other column.
OWN_NOVELTY = (
    "new_source_ip",
    "new_user_agent",
    "new_ua_family",
    "new_principal",
    "new_verb_resource",
    "new_namespace",
    "new_image",
)
#: 1 in an identity's first window: what its peers did in *their* first windows is a precedent.
#: For an identity without a baseline of its own, being new counts one scale unit: mildly
#: unusual, never more (what it does decides the rest).
FIRST_WINDOW = "new_identity"
_PERIODS = {"hour_of_day": 24, "weekday": 7}


def _identities(X, n_rows: int) -> np.ndarray | None:
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex) and "identity" in index.names:
        return np.asarray(index.get_level_values("identity"), dtype=object)
    return None


def utc_window_starts(X) -> pd.DatetimeIndex | None:
    """Each window's start in UTC, from the index level ``"window_start"``; None without one."""
    index = getattr(X, "index", None)
    if not (isinstance(index, pd.MultiIndex) and "window_start" in index.names):
        return None
    starts = index.get_level_values("window_start")
    if not isinstance(starts, pd.DatetimeIndex):
        return None
    return starts.tz_convert("UTC") if starts.tz is not None else starts


def _spans(X, identities: np.ndarray, rich) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]] | None:
    """Each identity's first and last window start, from the index level ``"window_start"`` (or None)."""
    starts = utc_window_starts(X)
    if starts is None:
        return None
    by = pd.Series(starts, index=identities).groupby(level=0)
    first, last = by.min(), by.max()
    return {ident: (first[ident], last[ident]) for ident in rich}


def _opportunity(first: pd.Timestamp, last: pd.Timestamp, hour_counts: np.ndarray | None) -> dict[str, Any]:
    """How much the time from ``first`` to ``last`` let the identity be active in each hour of day
    and each weekday: the hours of each hour of day, and of each weekday weighted by how active
    the identity is at that hour (``hour_counts``: its windows at each hour of day), so that a
    person's Monday begun at 09:00 is a whole working day and a node's Sunday begun at 16:00 a third."""
    hours = np.arange(int((last.floor("h") - first.floor("h")) / pd.Timedelta(hours=1)) + 1)
    hour = (first.hour + hours) % 24
    weekday = (first.day_of_week + (first.hour + hours) // 24) % 7
    spent = np.bincount(hour, minlength=24).astype(float)
    counts = np.ones(24) if hour_counts is None else hour_counts
    active = np.divide(counts, spent, out=np.zeros(24), where=spent > 0)
    return {
        "hour_of_day": spent,
        "weekday": np.bincount(weekday, weights=active[hour], minlength=7),
        # One pass: an hour of day is passed an hour at a time, a weekday a day of active hours.
        "passes": {"hour_of_day": 1.0, "weekday": float(active.sum())},
    }


def _tail_spread(own: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Per column, the spread that puts the identity's own tail (:data:`TAIL_SHARE` of its
    windows) at :data:`TAIL_DEVIATION` units from ``center``, on either side; 0 for a history
    shorter than :data:`TAIL_WINDOWS` / :data:`TAIL_SHARE` windows."""
    n = own.shape[0]
    k = int(np.ceil(TAIL_SHARE * n))
    if k < TAIL_WINDOWS:  # too short a history to tell a 1% habit from chance
        return np.zeros(own.shape[1])
    ordered = np.sort(own, axis=0)
    high, low = ordered[n - k] - center, center - ordered[k - 1]
    return np.maximum(np.maximum(high, low), 0.0) / TAIL_DEVIATION


def _nanmean(rates: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN; NaN where a column has no value."""
    seen = ~np.isnan(rates)
    total = np.where(seen, rates, 0.0).sum(axis=0)
    return np.divide(total, seen.sum(axis=0), out=np.full(rates.shape[1], np.nan), where=seen.any(axis=0))


class IdentityBaseline(TransformerMixin, BaseEstimator):
    """Express each window's features as deviations from that identity's own history.

    ``fit`` learns, per identity, the median (``center_``) and interquartile range of each
    feature over its windows, and how often it is active at each hour of day and weekday.
    Identities with fewer than ``min_history`` windows, and identities unseen in ``fit``, are
    compared with their peers (:func:`features.peers.peer_groups`: the nodes, the service
    accounts of their namespace, the sessions of their IAM role, else their kind), else with
    their kind when the peer group has fewer than ``min_history`` windows, else with the whole
    population. A group's centre is the median of its members' medians; its spread is the
    median of its members' IQRs plus the IQR of their medians (how much one member varies,
    and how much members differ), so a new kubelet that behaves like the others is close to
    them, and one that does what none of them does is far.

    The scale of a deviation is that spread (the identity's own IQR when it has a baseline)
    plus a floor from the population: its IQR, or where that is 0 its mean absolute deviation
    (the modified z-score), never below 1% of the feature's unit (``min_scale`` = 0.1 for
    shares, 1 for counts). Hour and weekday come out as rarity in [0, 1] for that identity.
    Without a baseline of its own, a window's hour rarity and its ``own_novelty`` columns come
    out 0: a newcomer meets everything for the first time, which says nothing about it; being
    new (``new_identity``) counts one scale unit, mildly unusual and never more. Its first
    window is also compared with the first windows of its peers (or
    kind) when at least ``min_first_windows`` of them joined during ``fit`` (a joining node
    asks for its own Node object before it exists), and judged against whichever precedent,
    the peers' first windows or their usual ones, it is closer to.

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

    def __init__(
        self,
        *,
        min_history: int = 24,
        min_scale: float = 0.1,
        time_columns: tuple[str, ...] = TIME_COLUMNS,
        own_novelty: tuple[str, ...] = OWN_NOVELTY,
        min_first_windows: int = 5,
    ):
        self.min_history = min_history
        self.min_scale = min_scale
        self.time_columns = time_columns
        self.own_novelty = own_novelty
        self.min_first_windows = min_first_windows

    def _mask(self, columns: tuple[str, ...]) -> np.ndarray:
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return np.zeros(self.n_features_in_, dtype=bool)
        return np.isin(names, list(columns))

    def _column(self, name: str) -> int | None:
        names = list(getattr(self, "feature_names_in_", []))
        return names.index(name) if name in names else None

    def fit(self, X, y=None) -> IdentityBaseline:
        values = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        identities = _identities(X, values.shape[0])
        time = self._mask(self.time_columns)
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
        self.peer_center_: dict[str, np.ndarray] = {}
        self.peer_scale_: dict[str, np.ndarray] = {}
        self.kind_center_: dict[str, np.ndarray] = {}
        self.kind_scale_: dict[str, np.ndarray] = {}
        self.first_center_: dict[str, dict[str, np.ndarray]] = {"peer": {}, "kind": {}}
        self.first_scale_: dict[str, dict[str, np.ndarray]] = {"peer": {}, "kind": {}}
        self.time_counts_: dict[str, dict[str, np.ndarray]] = {}
        # Per time column and identity, how often its history passed through each hour of day or
        # weekday (absent in older bundles: as often as through any other).
        self.time_opportunity_: dict[str, dict[str, np.ndarray]] = {}
        # Per time column and identity, the opportunity of one pass through a bin (one day of its
        # active hours for a weekday, one hour for an hour of day): what the peers' prior weighs.
        self.time_pass_: dict[str, dict[str, float]] = {}
        # Per time column, the peer groups', kinds' and population's activity per opportunity hour
        # in each bin (NaN where none of them was ever observed there).
        self.time_profile_: dict[str, dict[str, Any]] = {}
        # Per time column and identity, the rarity of each bin (:meth:`_time_rarity`).
        self.time_rarity_: dict[str, dict[str, np.ndarray]] = {}
        if identities is not None:
            frame = pd.DataFrame(values, columns=range(values.shape[1]))
            frame["identity"] = identities
            groups = frame.groupby("identity", sort=True)
            sizes = groups.size()
            med = groups.median()
            iqr = groups.quantile(0.75) - groups.quantile(0.25)
            rich = sizes.index[sizes >= self.min_history]
            rows = groups.indices
            for ident in rich:
                center = med.loc[ident].to_numpy(dtype=float)
                own = values[rows[ident]]
                spread = np.maximum(iqr.loc[ident].to_numpy(dtype=float), _tail_spread(own, center))
                self.center_[ident] = center
                self.scale_[ident] = spread + self.scale_floor_
            self.peer_center_, self.peer_scale_ = self._groups(med, iqr, sizes, peer_groups(med.index))
            self.kind_center_, self.kind_scale_ = self._groups(med, iqr, sizes, kinds_of(med.index))
            first_col = self._column(FIRST_WINDOW)
            if first_col is not None:
                first = values[:, first_col] > 0
                joined = pd.DataFrame(values[first])
                for level, keys in (("peer", peer_groups(identities[first])), ("kind", kinds_of(identities[first]))):
                    self.first_center_[level], self.first_scale_[level] = self._first_windows(joined, keys)
            for col in np.flatnonzero(time):
                name = self.feature_names_in_[col]
                period = _PERIODS.get(name, 24)
                counts = pd.crosstab(frame["identity"], frame[col].astype(int) % period)
                counts = counts.reindex(columns=range(period), fill_value=0)
                self.time_counts_[name] = {ident: counts.loc[ident].to_numpy(dtype=float) for ident in rich}
            spans = _spans(X, identities, rich)
            if spans is not None and self.time_counts_:
                hourly = self.time_counts_.get("hour_of_day", {})
                for ident in rich:
                    spent = _opportunity(*spans[ident], hourly.get(ident))
                    for name in self.time_counts_:
                        period = _PERIODS.get(name, 24)
                        self.time_opportunity_.setdefault(name, {})[ident] = spent.get(name, np.ones(period))
                        self.time_pass_.setdefault(name, {})[ident] = spent["passes"].get(name, 1.0)
                self.time_profile_ = {name: self._time_profiles(name, rich) for name in self.time_counts_}
                self.time_rarity_ = {name: self._time_rarity(name, rich) for name in self.time_counts_}
        return self

    def _time_profiles(self, name: str, rich) -> dict[str, Any]:
        """Each peer group's, kind's and the population's activity rate in each bin of ``name``:
        the mean over its members of their windows per opportunity hour there (each member counts
        once, as in :meth:`_groups`), NaN where no member's history passed through the bin."""
        members = list(rich)
        period = _PERIODS.get(name, 24)
        if not members:
            return {"peer": {}, "kind": {}, "all": np.full(period, np.nan)}
        counts = np.vstack([self.time_counts_[name][m] for m in members])
        spent = np.vstack([self.time_opportunity_[name][m] for m in members])
        rates = np.divide(counts, spent, out=np.full(counts.shape, np.nan), where=spent > 0)
        out: dict[str, Any] = {"all": _nanmean(rates)}
        for level, keys in (("peer", peer_groups(members)), ("kind", kinds_of(members))):
            keys = np.asarray(keys, dtype=object)
            out[level] = {str(k): _nanmean(rates[keys == k]) for k in pd.unique(keys)}
        return out

    def _groups(
        self, med: pd.DataFrame, iqr: pd.DataFrame, sizes: pd.Series, keys: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Centre and scale of each group of identities with at least ``min_history`` windows.

        Each member counts once, however busy: a group is its typical member, and the spread
        is how much a member varies plus how much members differ from one another.
        """
        by = pd.Series(keys, index=med.index, dtype=object)
        medians = med.groupby(by, sort=True)
        center = medians.median()
        spread = iqr.groupby(by, sort=True).median() + (medians.quantile(0.75) - medians.quantile(0.25))
        enough = sizes.groupby(by, sort=True).sum() >= self.min_history
        names = enough.index[enough.to_numpy()]
        return (
            {str(g): center.loc[g].to_numpy(dtype=float) for g in names},
            {str(g): spread.loc[g].to_numpy(dtype=float) + self.scale_floor_ for g in names},
        )

    def _first_windows(
        self, joined: pd.DataFrame, keys: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Median and IQR (plus the floor) of the first windows of each group's members."""
        if joined.empty:
            return {}, {}
        by = joined.groupby(pd.Series(keys, index=joined.index, dtype=object), sort=True)
        center, spread = by.median(), by.quantile(0.75) - by.quantile(0.25)
        sizes = by.size()
        names = sizes.index[sizes.to_numpy() >= self.min_first_windows]
        return (
            {str(g): center.loc[g].to_numpy(dtype=float) for g in names},
            {str(g): spread.loc[g].to_numpy(dtype=float) + self.scale_floor_ for g in names},
        )

    def _reference(self, identity: str | None, group: str, kind: str) -> tuple[np.ndarray, np.ndarray, bool]:
        """(centre, scale, whether its own novelty counts) for one identity.

        Without an identity (a plain array) rows are taken as they come, novelty included.
        """
        if identity is None:
            return self.global_center_, self.global_scale_, True
        if identity in self.center_:
            return self.center_[identity], self.scale_[identity], True
        for centers, scales, key in (
            (self.peer_center_, self.peer_scale_, group),
            (self.kind_center_, self.kind_scale_, kind),
        ):
            if key in centers:
                return centers[key], scales[key], False
        return self.global_center_, self.global_scale_, False

    def _first_reference(self, group: str, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
        for level, key in (("peer", group), ("kind", kind)):
            if key in self.first_center_[level]:
                return self.first_center_[level][key], self.first_scale_[level][key]
        return None

    def _compare(
        self, values: np.ndarray, identities: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the deviation, the centre it is measured from, whether own novelty counts, and
        the code of its identity (its position among the distinct identities, in order of appearance)."""
        # One reference row per distinct identity, gathered by code: linear in rows, where a
        # mask per identity would cost identities x rows (tens of thousands in a lake).
        codes, uniques = pd.factorize(pd.Series(identities, dtype=object), use_na_sentinel=False)
        named = [u for u in uniques if not pd.isna(u)]
        groups = dict(zip(named, peer_groups(named), strict=True))
        kinds = dict(zip(named, kinds_of(named), strict=True))
        refs = [
            self._reference(None, "", "") if pd.isna(u) else self._reference(u, groups[u], kinds[u]) for u in uniques
        ]
        own = np.asarray([o for *_, o in refs], dtype=bool)
        center = np.vstack([c for c, _, _ in refs])[codes]
        out = values - center  # in place from here: a month of windows is ~50 MB a copy
        out /= np.vstack([s for _, s, _ in refs])[codes]
        np.clip(out, -CLIP, CLIP, out=out)
        first_col = self._column(FIRST_WINDOW)
        if first_col is not None:
            firsts = [
                None if o or pd.isna(u) else self._first_reference(groups[u], kinds[u])
                for u, o in zip(uniques, own, strict=True)
            ]
            has = np.asarray([f is not None for f in firsts], dtype=bool)
            rows = np.flatnonzero((values[:, first_col] > 0) & has[codes])
            if len(rows):
                by_code = {i: f for i, f in enumerate(firsts) if f is not None}
                alt_center = np.vstack([by_code[c][0] for c in codes[rows]])
                alt_scale = np.vstack([by_code[c][1] for c in codes[rows]])
                alt = np.clip((values[rows] - alt_center) / alt_scale, -CLIP, CLIP)
                judged = ~self._mask((*self.own_novelty, *self.time_columns, FIRST_WINDOW))
                closer = np.abs(alt[:, judged]).max(axis=1, initial=0.0) < np.abs(out[rows][:, judged]).max(
                    axis=1, initial=0.0
                )
                out[rows[closer]], center[rows[closer]] = alt[closer], alt_center[closer]
        return out, center, own[codes], codes

    def usual(self, X) -> np.ndarray:
        """The centre each row of ``X`` is compared with (its identity's, its peers', its kind's, or all)."""
        check_is_fitted(self, "global_center_")
        values = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        identities = _identities(X, values.shape[0])
        if identities is None:
            return np.tile(self.global_center_, (values.shape[0], 1))
        if not len(identities):
            return values
        return self._compare(values, identities)[1]

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "global_center_")
        values = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        identities = _identities(X, values.shape[0])
        if identities is None:
            identities = np.full(values.shape[0], None, dtype=object)
        time = self._mask(self.time_columns)
        if values.shape[0] == 0:
            return np.empty_like(values)
        out, _, own, codes = self._compare(values, identities)
        novelty = np.flatnonzero(self._mask(self.own_novelty))
        if len(novelty):
            out[:, novelty] *= own[:, None]
        first_col = self._column(FIRST_WINDOW)
        if first_col is not None:
            out[:, first_col] = np.where(own, out[:, first_col], np.clip(values[:, first_col], 0.0, 1.0))
        uniques = pd.unique(pd.Series(identities, dtype=object))
        for col in np.flatnonzero(time):
            name = self.feature_names_in_[col]
            bins = values[:, col].astype(int) % _PERIODS.get(name, 24)
            out[:, col] = self._time_table(name, uniques)[codes, bins]
        return out

    def _prior(self, name: str, group: str, kind: str) -> np.ndarray:
        """The activity rate in each bin that the identity's peers, else its kind, else everyone
        show (bin by bin, the first level that ever passed through it; NaN if none did)."""
        profiles = getattr(self, "time_profile_", {}).get(name)
        period = _PERIODS.get(name, 24)
        if not profiles:
            return np.full(period, np.nan)
        prior = np.full(period, np.nan)
        for rates in (profiles["peer"].get(str(group)), profiles["kind"].get(str(kind)), profiles["all"]):
            if rates is not None:
                prior = np.where(np.isnan(prior), rates, prior)
        return prior

    def _time_table(self, name: str, uniques) -> np.ndarray:
        """Rarity of each bin of ``name`` (columns) for each identity in ``uniques`` (rows): as
        learned in ``fit``; 0 for an identity without a history of its own."""
        period = _PERIODS.get(name, 24)
        learned = getattr(self, "time_rarity_", {}).get(name, {})
        known = self.time_counts_.get(name, {})
        table = np.zeros((len(uniques), period))
        for i, ident in enumerate(uniques):
            if ident in learned:
                table[i] = learned[ident]
            elif ident in known:  # an older bundle: against its busiest count
                table[i] = 1.0 - (known[ident] + 1.0) / (known[ident].max() + 1.0)
        return table

    def _time_rarity(self, name: str, rich) -> dict[str, np.ndarray]:
        """Rarity in [0, 1] of each bin of ``name`` for each identity of ``rich``.

        The identity's rate in a bin is its windows there per opportunity hour, shrunk to its
        peers' rate (:meth:`_prior`) with the weight of one pass through the bin: (windows +
        pass x peers' rate) / (opportunity + pass). Rarity is 1 minus that rate over its busiest
        bin's. A bin its history never reached is judged by its peers alone: a young node's first
        Saturday is as ordinary as its peers' Saturdays, where against its own three days it was
        "active on a Saturday, unusual for it" (50 nodes seed 1: 0.96 in every window, the
        forest's largest input on three kubelet alerts). A person idle on two observed weekends
        stays rare on a Saturday (the two passes outweigh one of the prior). No history of its
        own, or a bin nobody was ever observed in: says nothing (0).
        """
        period = _PERIODS.get(name, 24)
        members = list(rich)
        groups, kinds = peer_groups(members), kinds_of(members)
        table: dict[str, np.ndarray] = {}
        for ident, group, kind in zip(members, groups, kinds, strict=True):
            counts, spent = self.time_counts_[name][ident], self.time_opportunity_[name][ident]
            prior = self._prior(name, str(group), str(kind))
            weight = np.where(np.isnan(prior), 0.0, self.time_pass_[name][ident])
            total = spent + weight
            rate = np.divide(
                counts + weight * np.nan_to_num(prior), total, out=np.full(period, np.nan), where=total > 0
            )
            busiest = np.nanmax(rate, initial=0.0)
            table[ident] = np.where(
                np.isnan(rate) | (busiest <= 0), 0.0, np.maximum(0.0, 1.0 - rate / max(busiest, 1e-12))
            )
        return table

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "global_center_")
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([f"{n}_rarity" if n in self.time_columns else f"{n}_dev" for n in names], dtype=object)
