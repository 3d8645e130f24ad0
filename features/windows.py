"""From events to one row of features per (identity, window): a pure, vectorised function.

It changes the number of rows, so it is a function and not a transformer; the estimators
sit on either side of it (FirstSeenEncoder before, IdentityBaseline after).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from features.catalog import FEATURES
from features.precedent import COPIED_FEATURES, precedented_copies
from features.repeats import weights

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
SUBRESOURCES = ("exec", "attach", "portforward", "proxy")
RESOURCE_MIX = {
    "pods": ("target_resource", "pods"),
    "secrets": ("target_resource", "secrets"),
    "configmaps": ("target_resource", "configmaps"),
    "rbac": ("is_rbac", True),
    "serviceaccounts": ("is_sa_or_token", True),
    "workloads": ("is_workload", True),
    "nodes": ("target_resource", "nodes"),
    "namespaces": ("target_resource", "namespaces"),
    "crds": ("is_crd", True),
    "webhooks": ("is_webhook", True),
    "csrs": ("is_csr", True),
    "events": ("target_resource", "events"),
    "self_reviews": ("is_self_review", True),
    "nonresource": ("is_nonresource", True),
}
#: Counts of flagged actions per window (features/flags.py; catalogue family "sensitive").
SENSITIVE = tuple(f.name for f in FEATURES if f.family == "sensitive")
NOVELTY_COLUMNS = {
    "source_ip": "source_ip",
    "user_agent": "user_agent",
    "ua_family": "ua_family",
    "principal": "principal",
    "verb_resource": "verb_resource",
    "namespace": "target_namespace",
    "image": "image",
    "ip_range": "ip_range",
    "denied_target": "denied_target",
    "refused_target": "refused_target",
}
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
INDEX = ["identity", "window_start"]


def window_start(timestamps: pd.Series, freq: str) -> pd.Series:
    """Floor timestamps to the start of their window (UTC)."""
    return pd.to_datetime(timestamps, utc=True).dt.floor(freq)


_DISTINCT_OF = {
    "n_verbs": ("verb", None),
    "n_resources": ("target_resource", None),
    "n_namespaces": ("target_namespace", None),
    "n_names": ("target_name", None),
    "n_foreign_namespaces": ("target_namespace", "is_foreign_namespace"),
    "n_secret_namespaces": ("target_namespace", "is_secret_read"),
    "n_secret_names": ("target_name", "is_secret_read"),
}
_DISTINCT_OF |= {f"new_{attr}": (column, f"is_new_{attr}") for attr, column in NOVELTY_COLUMNS.items()}
_FLAGS = ("is_denied", "is_unauthenticated", "is_other_4xx", "is_5xx", "is_secret_read", *SENSITIVE)


class PartialWindows:
    """Counts that add up (``sums``) and the distinct values behind each distinct-count
    feature, per (identity, window): enough to merge parts of a window exactly.

    Fresh from :func:`partial_windows`, the distinct values are kept as (row of ``sums``,
    value) pairs and become (identity, window_start, value) frames only when a merge needs
    them: most parts are finished without ever being merged, and counting pairs is a bincount.
    """

    def __init__(
        self,
        sums: pd.DataFrame,
        distinct: dict[str, pd.DataFrame] | None = None,
        *,
        pairs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.sums = sums
        self._distinct = distinct  # feature -> unique (identity, window_start, value) rows
        self._pairs = pairs  # feature -> (row of sums, value), unique pairs

    @property
    def distinct(self) -> dict[str, pd.DataFrame]:
        if self._distinct is None:
            assert self._pairs is not None, "a partial has pairs or frames"
            identities = self.sums.index.get_level_values("identity")
            starts = self.sums.index.get_level_values("window_start")
            self._distinct = {
                feature: pd.DataFrame(
                    {
                        "identity": identities[g],
                        "window_start": starts[g],
                        "value": pd.Series(values, dtype="string"),
                    }
                )
                for feature, (g, values) in self._pairs.items()
            }
        return self._distinct

    def counts(self, feature: str) -> np.ndarray:
        """How many distinct values of ``feature`` each row of ``sums`` has."""
        if self._pairs is not None:
            return np.bincount(self._pairs[feature][0], minlength=len(self.sums)).astype(float)
        counts = self.distinct[feature].groupby(INDEX, sort=False, observed=True).size()
        return counts.reindex(self.sums.index, fill_value=0).to_numpy(dtype=float)

    def features(self) -> list[str]:
        return list(self._pairs if self._pairs is not None else self.distinct)

    def windows(self) -> pd.MultiIndex:
        return cast(pd.MultiIndex, self.sums.index)  # sums is indexed by (identity, window_start)


#: A column's ``pd.factorize``: each row's code (-1 missing) and the distinct values.
Factorised = tuple[np.ndarray, Any]


def partial_windows(
    events: pd.DataFrame, *, excuse_copies: bool = True, codes: Mapping[str, Factorised] | None = None
) -> PartialWindows:
    """The mergeable counts of ``events`` (enriched, with ``window_start`` and ``is_new_*``).

    ``excuse_copies``: a pod-creating controller's copy of a known owner's pod
    (:func:`features.precedent.precedented_copies`) is not counted as host or system-namespace
    work. Training history counts it (False): it is the cluster's evidence that host workloads
    are routinely created, which the rates and the calibration's reference stand on.
    ``codes``: columns of ``events`` factorised already (:func:`features.featurise.novelty_input`).
    """
    # Each text column is factorised once (``_Codes``): the equality tests below compare integer
    # codes, and the distinct counts reuse the same codes (string comparisons of every row, each
    # through pandas' NA handling, were most of this function's time).
    factorised = _Codes(events, codes)
    cols: dict[str, np.ndarray] = {}  # built once: column-by-column inserts into a frame are slow
    for v in VERBS:
        cols[f"verb_{v}"] = factorised.equals("verb", v)
    for s in SUBRESOURCES:
        cols[f"sub_{s}"] = factorised.equals("target_subresource", s)
    for name, (col, value) in RESOURCE_MIX.items():
        cols[f"res_{name}"] = (
            factorised.equals(col, value) if isinstance(value, str) else events[col].to_numpy(dtype=bool)
        )
    # A known owner's pods, copied by its controller (none when history is counted as it was).
    copies = precedented_copies(events) if excuse_copies else np.zeros(len(events), dtype=bool)
    for flag in _FLAGS:
        cols[flag] = events[flag].to_numpy(dtype=bool)
        if flag in COPIED_FEATURES:
            cols[flag] = cols[flag] & ~copies
    cols["is_new_identity"] = events["is_new_identity"].to_numpy(dtype=float)
    groups, windows = _window_groups(events)  # row -> position in sums (-1: no window)
    counted = groups >= 0  # a row without an identity belongs to no window
    at = groups[counted]
    # A row of repeats counts as the events it stands for (features/repeats.py). Every sum is of
    # whole numbers far below 2**53, so it is exact in floats, however the events are grouped.
    weight = weights(events)
    times = None if weight is None else weight[counted].astype(float)
    # The ~60 sums by one bincount each (a groupby sum of the wide frame spends most of its
    # time converting the boolean block).
    sums = {"n": np.bincount(at, weights=times, minlength=len(windows)).astype(float)}
    for name, value in cols.items():
        counts = np.asarray(value, dtype=float)[counted]
        sums[name] = np.bincount(at, weights=counts if times is None else counts * times, minlength=len(windows))
    pairs = {}
    for feature, (column, mask_column) in _DISTINCT_OF.items():
        # Unique (window, value) pairs on integer codes first; only they become strings.
        column_codes, uniques, valid = factorised.distinct(column)
        keep = valid.copy()
        if mask_column is not None:
            keep &= events[mask_column].to_numpy(dtype=bool)
        width = len(uniques) + 1
        unique_pairs = np.unique(groups[keep].astype(np.int64) * width + column_codes[keep])
        g, c = np.divmod(unique_pairs, width)
        pairs[feature] = (g, uniques[c])
    return PartialWindows(pd.DataFrame(sums, index=windows), pairs=pairs)


class _Codes:
    """Each text column of ``events`` factorised once, on first use: its codes (-1 missing) and
    distinct values."""

    def __init__(self, events: pd.DataFrame, known: Mapping[str, Factorised] | None = None) -> None:
        self.events = events
        self.known = known or {}
        self._done: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._text: dict[str, np.ndarray] = {}

    def _factorised(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        if column not in self._done:
            codes, found = self.known.get(column) or pd.factorize(self.events[column], use_na_sentinel=True)
            self._done[column] = (codes, np.asarray(found, dtype=object))
        return self._done[column]

    def equals(self, column: str, value: str) -> np.ndarray:
        """``column == value`` per row as text (missing is no match), tested once per distinct value."""
        codes, uniques = self._factorised(column)
        if column not in self._text:  # as astype("string") writes each value (none is missing)
            self._text[column] = np.array([u if isinstance(u, str) else str(u) for u in uniques], dtype=object)
        hits = np.flatnonzero(self._text[column] == value)
        return np.isin(codes, hits) if len(hits) != 1 else codes == hits[0]

    def distinct(self, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(codes, distinct values, rows that count): missing and empty text count as no value."""
        codes, uniques = self._factorised(column)
        valid = codes >= 0
        empty = np.flatnonzero(uniques == "")
        if len(empty):
            valid &= codes != empty[0]
        return codes, uniques, valid


def _window_groups(events: pd.DataFrame) -> tuple[np.ndarray, pd.MultiIndex]:
    """Each row's (identity, window_start) group, numbered in sorted order (-1: a key is
    missing), and the groups: what a sorted groupby on the two keys gives, from two factorisations."""
    identity_codes, identities = pd.factorize(events["identity"].astype("string"), sort=True)
    window_codes, starts = pd.factorize(events["window_start"], sort=True)
    valid = (identity_codes >= 0) & (window_codes >= 0)
    key = identity_codes[valid].astype(np.int64) * max(len(starts), 1) + window_codes[valid]
    found, inverse = np.unique(key, return_inverse=True)
    groups = np.full(len(events), -1, dtype=np.int64)
    groups[valid] = inverse.reshape(-1)
    which_identity, which_start = np.divmod(found, max(len(starts), 1))
    index = pd.MultiIndex.from_arrays([identities.take(which_identity), starts.take(which_start)], names=INDEX)
    return groups, index


def merge_partials(parts: list[PartialWindows]) -> PartialWindows:
    """One partial from several (the same window may appear in more than one)."""
    if len(parts) == 1:
        return parts[0]
    sums = pd.concat([p.sums for p in parts]).groupby(level=INDEX, sort=True, observed=True).sum()
    distinct = {f: pd.concat([p.distinct[f] for p in parts]).drop_duplicates() for f in _DISTINCT_OF}
    return PartialWindows(sums, distinct)


def split_partial(part: PartialWindows, before: pd.Timestamp) -> tuple[PartialWindows, PartialWindows]:
    """(windows starting before ``before``, the rest)."""
    early = np.asarray(part.sums.index.get_level_values("window_start") < before)
    if part._pairs is not None:  # split the pairs by their row, renumbered within each side
        position = np.where(early, np.cumsum(early) - 1, np.cumsum(~early) - 1)
        sides = []
        for side in (early, ~early):
            pairs = {}
            for feature, (g, values) in part._pairs.items():
                keep = side[g]
                pairs[feature] = (position[g[keep]], values[keep])
            sides.append(PartialWindows(part.sums[side], pairs=pairs))
        return sides[0], sides[1]
    head = PartialWindows(part.sums[early], {f: d[d["window_start"] < before] for f, d in part.distinct.items()})
    tail = PartialWindows(part.sums[~early], {f: d[d["window_start"] >= before] for f, d in part.distinct.items()})
    return head, tail


def finalize(part: PartialWindows) -> pd.DataFrame:
    """The features of merged partial windows."""
    frame = part.sums
    if frame.empty:
        return _empty_windows()
    # The sums as one float block, its columns by name: selecting ~70 columns of a frame
    # indexed by (identity, window) copies the index each time (~0.2 ms a column).
    block = frame.to_numpy(dtype=float)
    sums = {name: block[:, i] for i, name in enumerate(frame.columns)}
    n = sums["n"]
    out: dict[str, object] = {}
    out["log_requests"] = np.log1p(n)
    for feature in part.features():
        out[feature] = part.counts(feature)
    for v in VERBS:
        out[f"frac_{v}"] = sums[f"verb_{v}"] / n
    for s in SUBRESOURCES:
        out[f"frac_{s}"] = sums[f"sub_{s}"] / n
    for name in RESOURCE_MIX:
        out[f"frac_res_{name}"] = sums[f"res_{name}"] / n
    out["frac_denied"] = sums["is_denied"] / n
    out["frac_unauthenticated"] = sums["is_unauthenticated"] / n
    out["frac_other_4xx"] = sums["is_other_4xx"] / n
    out["frac_5xx"] = sums["is_5xx"] / n
    out["n_denied"] = sums["is_denied"]
    for flag in SENSITIVE:
        out[flag] = sums[flag]
    out["new_identity"] = (sums["is_new_identity"] > 0).astype(float)
    starts = pd.DatetimeIndex(frame.index.get_level_values("window_start"))
    out["hour_of_day"] = starts.hour.to_numpy(dtype=float)
    out["weekday"] = starts.day_of_week.to_numpy(dtype=float)
    # One float block in catalogue order: a frame from ~90 separate columns costs more to build
    # (and to select in order) than computing them.
    features = np.empty((len(frame), len(FEATURE_NAMES)))
    for i, name in enumerate(FEATURE_NAMES):
        features[:, i] = cast(np.ndarray, out[name])
    return pd.DataFrame(features, index=frame.index, columns=list(FEATURE_NAMES))


def _empty_windows() -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays(
        [pd.Series([], dtype="string"), pd.Series([], dtype="datetime64[us, UTC]")], names=INDEX
    )
    return pd.DataFrame({name: pd.Series([], dtype="float64") for name in FEATURE_NAMES}, index=index)


def aggregate_windows(events: pd.DataFrame) -> pd.DataFrame:
    """Count behaviour per identity and window; one row per (identity, window_start).

    ``events`` must be enriched (:func:`features.enrich.enrich_events`), carry
    ``window_start`` and the novelty flags ``is_new_*``. The input is not modified; an empty
    input gives an empty frame with every feature column.
    """
    if events.empty:
        return _empty_windows()
    return finalize(partial_windows(events))
