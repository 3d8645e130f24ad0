"""FirstSeenEncoder: mark what an identity does for the first time (GuardDuty's UNSEEN).

Event-level and row-preserving. ``fit`` learns which values each identity has used;
``transform`` marks an event new when its (identity, value) pair was not learned and does not
occur in an earlier window of the same input. That makes ``transform`` causal: replaying
history chunk by chunk (``transform`` then ``partial_fit``) gives training data the novelty
rates it really had, instead of the all-zero novelty of ``fit(X).transform(X)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from events.hashset import HashSet
from features.novelty_log import NoveltyLog  # re-exported: bundles pickled before the split
from features.precedent import BIRTH_ATTRIBUTE, POPULATED, precedent_keys

#: Attributes whose novelty is tracked per identity, as (output name, event column).
DEFAULT_ATTRIBUTES = (
    ("source_ip", "source_ip"),
    ("user_agent", "user_agent"),
    ("ua_family", "ua_family"),
    ("principal", "principal"),
    ("verb_resource", "verb_resource"),
    ("namespace", "target_namespace"),
    ("image", "image"),
    # The owners a pod-creating controller copied pods from (features/precedent.py): a known
    # DaemonSet's new pods are precedented, a new DaemonSet's are not.
    ("template_owner", "template_owner"),
    # What a denied or refused request asked for (features/refusals.py): a retry is not a probe.
    ("denied_target", "denied_target"),
    ("refused_target", "refused_target"),
)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio constant: spreads identity bits


def _codes_hash(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Hash each value through its factorised unique (cheap for repetitive columns)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return np.zeros(len(values), dtype=np.uint64), codes < 0
    as_text = np.fromiter((str(u) for u in uniques), dtype=object, count=len(uniques))
    hashed = pd.util.hash_array(as_text, categorize=False)
    return hashed[np.maximum(codes, 0)], codes < 0


def per_unique(values: pd.Series, func) -> pd.Series:
    """Apply a vectorised string function to the distinct values only, then map back."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = pd.array(func(pd.Series(uniques, dtype="string")), dtype="string")
    # Mapped back as text (a take), not through an object array of every row: half the time.
    return pd.Series(mapped.take(codes, allow_fill=True), index=values.index)


def _ip_range(s: pd.Series) -> pd.Series:
    v4 = s.str.extract(r"^(\d+\.\d+)\.", expand=False)
    v6 = s.str.extract(r"^([0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F]*):", expand=False)
    return v4.fillna(v6)


def ip_range(ips: pd.Series) -> pd.Series:
    """The /16 of an IPv4 address or the /48 of an IPv6 one: a network, not a host."""
    return per_unique(ips, _ip_range)


@dataclass
class _Hashed:
    """An input's columns as the encoder reads them, hashed once for marking and learning."""

    identity: pd.Series
    window: np.ndarray | None
    ips: pd.Series | None
    pairs: list[tuple[np.ndarray, np.ndarray]]  # per attribute: (owner, value) hashes, missing
    identities: np.ndarray
    #: Hashes of the namespaces alone, and which are missing (an encoder that tracks them).
    namespaces: tuple[np.ndarray, np.ndarray] | None = None
    #: Hashes of the namespaces allowed creates wrote into, and which are missing (the column's there).
    populated: tuple[np.ndarray, np.ndarray] | None = None
    _ranges: tuple[np.ndarray, np.ndarray] | None = None

    def ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of the source addresses' ranges, and which are missing (``ips`` is set)."""
        assert self.ips is not None, "ranges of an input without addresses"
        if self._ranges is None:
            self._ranges = _codes_hash(ip_range(self.ips))
        return self._ranges


class FirstSeenEncoder(TransformerMixin, BaseEstimator):
    """Flag events whose attribute value is new for their identity.

    Parameters
    ----------
    attributes : (name, column) pairs tracked per identity. Unknown identities count every
        value as new, and are flagged themselves in ``is_new_identity``.
    identity_column, window_column : where the identity and the event's window start are.
        Without a window column each row is its own window (row order is time order).
    peer_precedent : judge a fleet member's namespaces against its fleet's, and a user agent
        by its client line (features/precedent.py): a new kubelet serving the namespaces every
        kubelet serves, or a client's newer build on the same platform, is not new.
    informer_reads : with ``peer_precedent``, key a watch of a kind as a list of it
        (:func:`features.precedent.informer_reads`): an informer's relist is not new to it.
    namespace_births : with ``peer_precedent``, an identity's first access to a namespace, in
        the window the cluster first sees it in and an allowed create writes into it (its
        birth; column ``populated_namespace``), is not a namespace new to the identity
        (features/precedent.py).

    Input is a DataFrame holding those columns; a 2-D array is read as identity in column 0
    and one attribute per further column. Missing values are never new.

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"identity": ["ci", "ci"], "source_ip": ["10.0.1.5", "10.0.1.5"]})
    >>> today = pd.DataFrame({"identity": ["ci", "ci"], "source_ip": ["10.0.1.5", "192.0.2.9"]})
    >>> enc = FirstSeenEncoder(attributes=(("source_ip", "source_ip"),)).fit(history)
    >>> enc.transform(today)[:, 0].tolist()
    [0.0, 1.0]
    """

    def __init__(
        self,
        *,
        attributes=DEFAULT_ATTRIBUTES,
        identity_column: str = "identity",
        window_column: str | None = "window_start",
        track_ip_ranges: bool = True,
        peer_precedent: bool = True,
        informer_reads: bool = True,
        namespace_births: bool = True,
    ):
        self.attributes = attributes
        self.identity_column = identity_column
        self.window_column = window_column
        self.track_ip_ranges = track_ip_ranges
        self.peer_precedent = peer_precedent
        self.informer_reads = informer_reads
        self.namespace_births = namespace_births

    def __setstate__(self, state: dict) -> None:
        # Encoders pickled before these parameters existed learned their sets without them (and
        # hold no set of the cluster's namespaces: to them every namespace would be unborn).
        super().__setstate__({"peer_precedent": False, "informer_reads": False, "namespace_births": False, **state})

    # -- input handling ---------------------------------------------------------------
    def _frame(self, X) -> tuple[pd.Series, list[pd.Series], np.ndarray | None, pd.Series | None]:
        if isinstance(X, pd.DataFrame) and self.identity_column in X.columns:
            identity = X[self.identity_column]
            attrs = [X[col] if col in X.columns else pd.Series(pd.NA, index=X.index) for _, col in self.attributes]
            window = None
            if self.window_column and self.window_column in X.columns:
                # int64 nanoseconds (or plain numbers): cheap to compare and to reduce
                column = X[self.window_column]
                window = (
                    pd.DatetimeIndex(column).as_unit("ns").asi8  # one unit: the log keys windows by it
                    if pd.api.types.is_datetime64_any_dtype(column.dtype)
                    else column.to_numpy()
                )
            ips = X["source_ip"] if (self.track_ip_ranges and "source_ip" in X.columns) else None
            return identity, attrs, window, ips
        arr = check_array(X, dtype=None, accept_sparse=False, ensure_all_finite=False)
        if np.iscomplexobj(arr):
            raise ValueError("Complex data not supported")
        if getattr(self, "seen_", None) is not None and arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {arr.shape[1]} features, but FirstSeenEncoder is expecting "
                f"{self.n_features_in_} features as input"
            )
        frame = pd.DataFrame(arr.astype(object))
        return frame[0], [frame[i] for i in range(1, arr.shape[1])], None, None

    def _names(self, X) -> list[str]:
        if isinstance(X, pd.DataFrame) and self.identity_column in X.columns:
            return [name for name, _ in self.attributes]
        return [f"x{i}" for i in range(1, check_array(X, dtype=None, ensure_all_finite=False).shape[1])]

    def _keyed(self, identity: pd.Series, attrs: list[pd.Series]):
        """(attribute, owner, value) per tracked attribute, with the peer precedent applied."""
        names = getattr(self, "attribute_names_", [])
        # Encoders pickled before peer_precedent (or informer_reads) existed keep the keys their
        # sets were learned with.
        precedent = getattr(self, "peer_precedent", False) and len(names) == len(attrs)
        reads = getattr(self, "informer_reads", False)
        for i, values in enumerate(attrs):
            yield precedent_keys(names[i], identity, values, reads=reads) if precedent else (identity, values)

    def _namespace_attribute(self, n_attributes: int) -> int | None:
        """Which attribute is the namespace, where the cluster's namespaces are kept (``namespaces_``)."""
        names = getattr(self, "attribute_names_", [])
        if getattr(self, "namespaces_", None) is None or len(names) != n_attributes or BIRTH_ATTRIBUTE not in names:
            return None
        return names.index(BIRTH_ATTRIBUTE)

    def _excuses_births(self) -> bool:
        return bool(getattr(self, "peer_precedent", False) and getattr(self, "namespace_births", False))

    def births_column(self) -> int | None:
        """The novelty log's column of the cluster's namespaces (:meth:`key_sets`), or None.

        Learning a namespace makes the encoder stricter (a first access to it is new again), so
        the day state learns this column whatever alerted (models/day_state.py).
        """
        if getattr(self, "namespaces_", None) is None or self.seen_ is None:
            return None
        return len(self.seen_) + 2

    def key_sets(self) -> list[HashSet]:
        """Every set of keys, in the novelty log's column order: the attributes', then the
        identities, the IP ranges and (encoders since namespace births) the cluster's namespaces."""
        assert self.seen_ is not None, "fit sets seen_ to a list before it returns"
        namespaces = getattr(self, "namespaces_", None)
        return [*self.seen_, self.identities_, self.ip_ranges_, *([] if namespaces is None else [namespaces])]

    def input_columns(self) -> list[str]:
        """The event columns ``transform`` reads (the window column aside), in order, once each."""
        read = [self.identity_column, *(column for _, column in self.attributes), "source_ip", POPULATED]
        return list(dict.fromkeys(read))

    def _pairs(self, identity: pd.Series, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        id_hash, _ = _codes_hash(identity)
        val_hash, missing = _codes_hash(values)
        return (id_hash * _MIX) ^ val_hash, missing

    # -- fitting -----------------------------------------------------------------------
    def fit(self, X, y=None) -> FirstSeenEncoder:
        """Learn every (identity, value) pair in ``X`` as seen."""
        self.seen_: list[HashSet] | None = None
        return self.partial_fit(X)

    def partial_fit(self, X, y=None) -> FirstSeenEncoder:
        """Add the pairs in ``X`` to what has been seen (for chunked, causal replay)."""
        if getattr(self, "seen_", None) is None:
            self._start(X, len(self._frame(X)[1]))
        return self._learn(self._hashed(X))

    def _learn(self, hashed: _Hashed) -> FirstSeenEncoder:
        seen_sets = self.seen_
        assert seen_sets is not None, "partial_fit starts the sets first"
        if len(hashed.pairs) != len(seen_sets):
            raise ValueError(
                f"X has {len(hashed.pairs) + 1} columns, but FirstSeenEncoder was fitted with {len(seen_sets) + 1}"
            )
        for seen, (pairs, missing) in zip(seen_sets, hashed.pairs, strict=True):
            new = np.unique(pairs[~missing])
            seen.add(new[~seen.contains(new)])
        ids = np.unique(hashed.identities)
        self.identities_.add(ids[~self.identities_.contains(ids)])
        if hashed.namespaces is not None and self.namespaces_ is not None:
            names, missing = hashed.namespaces
            names = np.unique(names[~missing])
            self.namespaces_.add(names[~self.namespaces_.contains(names)])
        if hashed.ips is not None:
            ranges, missing = hashed.ranges()
            ranges = np.unique(ranges[~missing])
            self.ip_ranges_.add(ranges[~self.ip_ranges_.contains(ranges)])
        return self

    def _hashed(self, X) -> _Hashed:
        """What marking and learning ``X`` read: its hashed (owner, value) pairs per attribute."""
        identity, attrs, window, ips = self._frame(X)
        pairs = [self._pairs(owner, values) for owner, values in self._keyed(identity, attrs)]
        at = self._namespace_attribute(len(attrs))
        namespaces = None if at is None else _codes_hash(attrs[at])
        populated = None
        if namespaces is not None and isinstance(X, pd.DataFrame) and POPULATED in X.columns:
            populated = _codes_hash(X[POPULATED])
        return _Hashed(identity, window, ips, pairs, _codes_hash(identity)[0], namespaces, populated)

    def _start(self, X, n_attributes: int) -> list[HashSet]:
        self.attribute_names_ = self._names(X)
        self.n_features_in_ = n_attributes + 1
        self.seen_ = seen = [HashSet() for _ in range(n_attributes)]
        self.identities_ = HashSet()
        self.ip_ranges_ = HashSet()
        # The namespaces alone (those the cluster has seen), kept only to judge births: an
        # encoder made from another's parameters (engine/score.py's StateTable) then holds the
        # same sets as it, and an old one's (namespace_births False) none it cannot fold back.
        self.namespaces_: HashSet | None = HashSet() if getattr(self, "namespace_births", False) else None
        return seen

    # -- transforming ------------------------------------------------------------------
    def _first_window(self, keys: np.ndarray, window: np.ndarray | None, candidates: np.ndarray) -> np.ndarray:
        """True for candidate rows in the first window their key occurs in (within this input).

        Only candidates (not seen before) are examined: in a steady state they are few.
        """
        out = np.zeros(len(keys), dtype=bool)
        rows = np.flatnonzero(candidates)
        if len(rows) == 0:
            return out
        if window is None:  # each row is its own window: only the first occurrence is new
            out[rows] = ~pd.Index(keys[rows]).duplicated(keep="first")
            return out
        codes, uniques = pd.factorize(keys[rows])
        stamps = (
            pd.DatetimeIndex(window[rows]).as_unit("ns").asi8
            if window.dtype == object
            else window[rows].astype(np.int64)
        )
        first = np.full(len(uniques), np.iinfo(np.int64).max)
        np.minimum.at(first, codes, stamps)
        out[rows] = stamps == first[codes]
        return out

    def transform(self, X) -> np.ndarray:
        """Return 0/1 flags: one column per attribute, then is_new_identity (and ip range)."""
        check_is_fitted(self, "seen_")
        return self._marks(self._hashed(X), X)

    def transform_then_learn(self, X) -> np.ndarray:
        """:meth:`transform`, then :meth:`partial_fit` of the same ``X``, hashing it once."""
        check_is_fitted(self, "seen_")
        hashed = self._hashed(X)
        out = self._marks(hashed, X)
        self._learn(hashed)
        return out

    def _marks(self, hashed: _Hashed, X) -> np.ndarray:
        seen_sets = self.seen_
        assert seen_sets is not None, "fit sets seen_ to a list before it returns"
        identity, window, ips = hashed.identity, hashed.window, hashed.ips
        if len(hashed.pairs) != len(seen_sets):
            raise ValueError(
                f"X has {len(hashed.pairs) + 1} columns, but FirstSeenEncoder is expecting "
                f"{len(seen_sets) + 1} columns as input"
            )
        log: NoveltyLog | None = getattr(self, "novelty_log_", None)
        cols = []

        def flag(keys: np.ndarray, new: np.ndarray, introduced: np.ndarray | None = None) -> None:
            cols.append(new)
            if log is not None and window is not None:
                rows = np.flatnonzero(new if introduced is None else introduced)
                log.record(identity, window, len(cols) - 1, keys, rows)

        excused = self._excuses_births()
        births = self._births(hashed) if excused or log is not None else None
        for i, (seen, (pairs, missing)) in enumerate(zip(seen_sets, hashed.pairs, strict=True)):
            first = self._first_window(pairs, window, ~missing & ~seen.contains(pairs))
            if excused and births is not None and i == births[0]:
                # Not flagged, but logged: the day state learns the pair, as partial_fit does.
                flag(pairs, first & ~births[2], first)
            else:
                flag(pairs, first)
        ids = hashed.identities
        flag(ids, self._first_window(ids, window, ~self.identities_.contains(ids)))
        if self._tracks_ranges(X):
            no_addresses = pd.Series(pd.NA, index=identity.index)
            ranges, missing = hashed.ranges() if ips is not None else _codes_hash(no_addresses)
            flag(ranges, self._first_window(ranges, window, ~missing & ~self.ip_ranges_.contains(ranges)))
        if births is not None and log is not None and window is not None and hashed.namespaces is not None:
            column = self.births_column()
            assert column is not None, "births are judged only with the cluster's namespaces kept"
            log.record(identity, window, column, hashed.namespaces[0], np.flatnonzero(births[1]))  # seen now
        return np.column_stack(cols).astype(np.float64)

    def _births(self, hashed: _Hashed) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The namespace attribute, the events in the first window of a namespace the cluster has
        never seen, and those of them in its birth: where a first access is not new
        (features/precedent.py)."""
        at, known = self._namespace_attribute(len(hashed.pairs)), getattr(self, "namespaces_", None)
        if at is None or hashed.namespaces is None or known is None:
            return None
        names, missing = hashed.namespaces
        # Judged by window, as every flag here: the same whether history comes in one input or
        # in chunks (a namespace seen in an earlier chunk was learned with it).
        unseen = self._first_window(names, hashed.window, ~missing & ~known.contains(names))
        born = np.zeros(len(names), dtype=bool)
        if hashed.populated is None or not unseen.any():
            return at, unseen, born
        # Unseen is not unborn: only a window that creates something in the namespace is its birth.
        written, none = hashed.populated
        creates = np.flatnonzero(~none & ~known.contains(written))
        stamps = self._stamps(hashed.window, len(names))
        rows = np.flatnonzero(unseen)
        born[rows] = pd.MultiIndex.from_arrays([names[rows], stamps[rows]]).isin(
            pd.MultiIndex.from_arrays([written[creates], stamps[creates]])
        )
        return at, unseen, born

    @staticmethod
    def _stamps(window: np.ndarray | None, n: int) -> np.ndarray:
        """Each row's window as an integer (its row number where each row is its own window)."""
        if window is None:
            return np.arange(n, dtype=np.int64)
        return pd.DatetimeIndex(window).as_unit("ns").asi8 if window.dtype == object else window.astype(np.int64)

    def log_novelty(self, log: NoveltyLog | None) -> FirstSeenEncoder:
        """Record what ``transform`` flags new into ``log`` from now on (None stops); return self."""
        self.novelty_log_ = log
        return self

    def fold(self, logged: pd.DataFrame) -> FirstSeenEncoder:
        """Learn logged keys (rows of :meth:`NoveltyLog.frame`) as seen: the windows chosen to be normal."""
        check_is_fitted(self, "seen_")
        sets = self.key_sets()
        columns = logged["column"].to_numpy(dtype=np.int64)
        keys = logged["key"].to_numpy(dtype=np.uint64)
        for column in np.unique(columns):
            new = np.unique(keys[columns == column])
            target = sets[column]
            target.add(new[~target.contains(new)])
        return self

    def _tracks_ranges(self, X) -> bool:
        return bool(self.track_ip_ranges and isinstance(X, pd.DataFrame) and self.identity_column in X.columns)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Causal novelty on ``X`` (each value new in its first window), then learn ``X``."""
        _, attrs, _, _ = self._frame(X)
        self._start(X, len(attrs))
        out = self.transform(X)
        self.partial_fit(X)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "seen_")
        names = [f"is_new_{n}" for n in self.attribute_names_] + ["is_new_identity"]
        if self.track_ip_ranges and self.attribute_names_ == [n for n, _ in self.attributes]:
            names.append("is_new_ip_range")
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
