"""ActionRarity: how rare each sensitive action family is for an identity, its peers and the cluster.

GuardDuty's design, in our terms: one anomaly per action family (secrets read, exec, RBAC writes,
...), not one generic score. A family's rate is a Beta-smoothed share of windows in which it
occurred, shrunk from the identity towards its peer group, from the group towards its kind, and
from the kind towards the cluster, so that "seen once" is not "normal" and "never by this
identity but common for its peers" is not "never". Window-level and row-preserving.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from features.baseline import utc_window_starts
from features.enrich import kinds_of
from features.peers import peer_groups
from models.action_families import CONTEXT, FAMILIES, NEW_IDENTITY, RATE_OF
from models.common_cause import shared_rates, window_starts


def _identities(X, n_rows: int) -> np.ndarray:
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex) and "identity" in index.names:
        return np.asarray(index.get_level_values("identity").astype("string").fillna(""), dtype=object)
    return np.full(n_rows, "", dtype=object)  # a plain array is one identity's windows


def _utc_days(X) -> np.ndarray | None:
    """Each window's UTC day (int64 ns), from the index level ``"window_start"``, or None."""
    starts = utc_window_starts(X)
    return None if starts is None else np.asarray(starts.normalize().as_unit("ns").asi8, dtype=np.int64)


class ActionRarity(TransformerMixin, BaseEstimator):
    """Surprisal (-log rate, in nats) of each sensitive action family in each window.

    ``fit`` counts, per identity, the windows in which each family and each context novelty
    occurred. A family's rate for an identity is ``(k + a m) / (n + a)``: ``k`` of its ``n``
    windows, shrunk towards ``m``, the same estimate for its peer group (:func:`peer_groups`)
    with ``a = prior_windows``, or more where the group's members are alike
    (:meth:`peer_strength`). The peer group's rate is shrunk towards its kind's, and the
    kind's towards the cluster's (``(k + 1/2) / (n + 1)``), with ``a = peer_prior_windows``:
    groups of one kind differ more than members of one group do. ``transform`` returns one
    column per family (its surprisal where it occurred, else 0), then one per context (its own
    surprisal, weighted by how unusual the window's most unusual action was, so a new address
    raises a rare action and not a routine one; an identity with fewer than ``min_history``
    windows learned, none of them on an earlier UTC day, has no per-identity context yet).
    The columns add up to the window's surprisal; ``score_samples`` is its negative (a
    log-probability, scikit-learn's sign).

    Identity is read from the index level ``"identity"``. Families and contexts whose columns
    are absent are left out; with no family column at all (a plain array) every column is a
    family of its own. Identities unseen in ``fit`` take their peer group's rates.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.MultiIndex.from_product([["system:node:a", "system:node:b"], range(24)],
    ...                                  names=["identity", "window_start"])
    >>> history = pd.DataFrame({"n_secret_names": 1.0, "n_admin_bindings": 0.0}, index=idx)
    >>> rarity = ActionRarity().fit(history)
    >>> new = pd.MultiIndex.from_tuples([("system:node:c", 24)], names=["identity", "window_start"])
    >>> rarity.transform(pd.DataFrame({"n_secret_names": [1.0], "n_admin_bindings": [1.0]}, index=new)).round(1)
    array([[0. , 7.1]])
    """

    def __init__(
        self,
        *,
        prior_windows: float = 24.0,
        peer_prior_windows: float = 4.0,
        min_history: int = 24,
        families=None,
        context=None,
    ):
        self.prior_windows = prior_windows
        self.peer_prior_windows = peer_prior_windows
        self.min_history = min_history
        self.families = families
        self.context = context

    # -- terms -------------------------------------------------------------------------
    def _make_terms(self) -> None:
        names = [str(n) for n in getattr(self, "feature_names_in_", [])]
        where = {n: i for i, n in enumerate(names)}
        families = FAMILIES if self.families is None else self.families
        context = CONTEXT if self.context is None else self.context
        terms: list[str] = []
        cols: list[list[int]] = []
        rate_cols: list[list[int]] = []
        labels: list[str] = []
        for name, (label, columns) in families.items():
            found = [where[c] for c in columns if c in where]
            if found:
                terms.append(name)
                cols.append(found)
                rate_of = [where[c] for c in RATE_OF.get(name, ()) if c in where]
                rate_cols.append(rate_of or found)
                labels.append(label)
        if not terms:  # a plain array, or no known family: each column is a family
            terms = names or [f"x{i}" for i in range(self.n_features_in_)]
            cols, labels = [[i] for i in range(self.n_features_in_)], list(terms)
            rate_cols = cols
        self.n_families_ = len(terms)
        per_identity: list[bool] = []
        for name, (label, own) in context.items():
            if name in where:
                terms.append(name)
                cols.append([where[name]])
                rate_cols.append([where[name]])
                labels.append(label)
                per_identity.append(own)
        self.terms_ = np.asarray(terms, dtype=object)
        self.term_labels_ = dict(zip(terms, labels, strict=True))
        self._term_columns = cols
        self._rate_columns = rate_cols
        self._per_identity = np.asarray(per_identity, dtype=bool)
        self._new_identity_column = where.get(NEW_IDENTITY)

    def _presence(self, values: np.ndarray, *, counted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(which terms occurred, which were eligible) per window; ``counted``: as the rates count
        them (:data:`RATE_OF`), not as scoring sees them."""
        columns = getattr(self, "_rate_columns", self._term_columns) if counted else self._term_columns
        occurred = np.column_stack([(values[:, c] > 0).any(axis=1) for c in columns])
        eligible = np.ones_like(occurred)
        if self._new_identity_column is not None:
            first = values[:, self._new_identity_column] > 0
            eligible[:, self.n_families_ :] = ~(first[:, None] & self._per_identity[None, :])
        return occurred & eligible, eligible

    # -- learning ----------------------------------------------------------------------
    def fit(self, X, y=None) -> ActionRarity:
        """Count each identity's windows and the windows in which each term occurred."""
        values = validate_data(self, X, dtype=np.float64)
        self._make_terms()
        self.hits_ = pd.DataFrame(columns=self.terms_, dtype=float)
        self.trials_ = pd.DataFrame(columns=self.terms_, dtype=float)
        self.first_day_ = pd.Series(dtype=np.int64)
        return self._learn(values, _identities(X, values.shape[0]), _utc_days(X))

    def partial_fit(self, X, y=None) -> ActionRarity:
        """Fold more windows into the counts (a scored day, minus what alerted and was not accepted)."""
        if not hasattr(self, "hits_"):
            return self.fit(X)
        values = validate_data(self, X, dtype=np.float64, reset=False)
        return self._learn(values, _identities(X, values.shape[0]), _utc_days(X))

    def _learn(self, values: np.ndarray, identities: np.ndarray, days: np.ndarray | None = None) -> ActionRarity:
        occurred, eligible = self._presence(values, counted=True)
        hits = pd.DataFrame(occurred.astype(float), columns=self.terms_).groupby(identities).sum()
        trials = pd.DataFrame(eligible.astype(float), columns=self.terms_).groupby(identities).sum()
        self.hits_ = self.hits_.add(hits, fill_value=0.0)
        self.trials_ = self.trials_.add(trials, fill_value=0.0)
        self.n_windows_ = int(self.trials_.iloc[:, 0].sum()) if len(self.trials_) else 0
        if days is not None and len(days):
            first = pd.Series(days).groupby(identities).min()
            known = getattr(self, "first_day_", pd.Series(dtype=np.int64))
            self.first_day_ = pd.concat([known, first]).groupby(level=0).min()
        return self

    def without(self, X) -> ActionRarity:
        """A copy that has not counted the windows ``X`` (which it counted): what it knew
        without them. An identity whose first day is among them is forgotten as of that day: a
        node that joined on a held-out day is young there, as a new day would judge it."""
        check_is_fitted(self, "hits_")
        values = validate_data(self, X, dtype=np.float64, reset=False)
        occurred, eligible = self._presence(values, counted=True)
        identities = _identities(X, values.shape[0])
        out = copy.copy(self)
        hits = pd.DataFrame(occurred.astype(float), columns=self.terms_).groupby(identities).sum()
        trials = pd.DataFrame(eligible.astype(float), columns=self.terms_).groupby(identities).sum()
        out.hits_ = self.hits_.sub(hits, fill_value=0.0).clip(lower=0.0)
        out.trials_ = self.trials_.sub(trials, fill_value=0.0).clip(lower=0.0)
        days, known = _utc_days(X), getattr(self, "first_day_", None)
        if days is not None and known is not None and len(days):
            first_here = pd.Series(days).groupby(identities).min()
            joined = first_here.index[known.reindex(first_here.index).to_numpy(dtype=np.float64) >= first_here]
            # What it did on later days was not known on its first morning either.
            out.hits_ = out.hits_.drop(joined, errors="ignore")
            out.trials_ = out.trials_.drop(joined, errors="ignore")
            out.first_day_ = known.drop(joined)
        out.n_windows_ = int(out.trials_.iloc[:, 0].sum()) if len(out.trials_) else 0
        return out

    # -- rates -------------------------------------------------------------------------
    def _counts_at(self, keys, ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        """Hits and trials of the level ``keys`` (kind or peer group) each identity in ``ids`` is in."""
        members = self.hits_.index.tolist()
        mine = keys(ids.tolist())
        hits = self.hits_.groupby(keys(members)).sum().reindex(mine, fill_value=0.0)
        trials = self.trials_.groupby(keys(members)).sum().reindex(mine, fill_value=0.0)
        return hits.to_numpy(), trials.to_numpy()

    def rates(self, identities) -> pd.DataFrame:
        """The smoothed rate of each term for each identity (rows: the distinct identities)."""
        check_is_fitted(self, "hits_")
        ids = pd.Index(pd.unique(np.asarray(list(identities), dtype=object)))
        a, b = float(self.prior_windows), float(self.peer_prior_windows)
        # Each level's own windows leave out the level below (its peers are the *other*
        # members), so one window is evidence once, not once per level.
        k_i = self.hits_.reindex(ids, fill_value=0.0).to_numpy()
        n_i = self.trials_.reindex(ids, fill_value=0.0).to_numpy()
        k_g, n_g = self._counts_at(peer_groups, ids)
        k_k, n_k = self._counts_at(kinds_of, ids)
        # The cluster's rate, with Jeffreys' prior: never in n windows is about 1 / (2n).
        rate = np.tile((self.hits_.sum().to_numpy() + 0.5) / (self.trials_.sum().to_numpy() + 1.0), (len(ids), 1))
        own = self.peer_strength().reindex(peer_groups(ids.tolist())).fillna(a).to_numpy()
        for k, n, strength in ((k_k - k_g, n_k - n_g, b), (k_g - k_i, n_g - n_i, b), (k_i, n_i, own)):
            rate = (k + strength * rate) / (n + strength)
        return pd.DataFrame(rate, index=ids, columns=self.terms_)

    def peer_strength(self) -> pd.DataFrame:
        """How many windows the peer group's rate is worth against a member's own (rows: groups).

        Empirical Bayes (the beta-binomial's method of moments): members' shares ``k / n`` vary
        by their true rates' spread and by chance (``m (1 - m) / n``); what is left after chance
        is the spread of true rates, and a Beta prior with that spread is worth
        ``m (1 - m) / spread - 1`` windows. Where members are alike (a cluster's kubelets read
        secrets in 74% of windows, give or take 1%: 646 windows), a young member's few windows
        say little against them: a node 35 windows old, which read secrets in 22 (its first,
        partial day among them), was held to 0.63, and doing what every node does read as a
        rare day (50 nodes seed 1). Never less than ``prior_windows``, nor more than the group's
        own windows.
        """
        check_is_fitted(self, "hits_")
        a = float(self.prior_windows)
        if not len(self.hits_):
            return pd.DataFrame(columns=self.terms_, dtype=float)
        groups = peer_groups(self.hits_.index.tolist())
        k, n = self.hits_.to_numpy(), self.trials_.to_numpy()
        share = pd.DataFrame(np.divide(k, n, out=np.full_like(k, np.nan), where=n > 0), columns=self.terms_)
        seen = pd.DataFrame(np.where(n > 0, 1.0, np.nan), columns=self.terms_)
        by = pd.Series(groups)
        k_g = pd.DataFrame(k, columns=self.terms_).groupby(by).sum()
        n_g = pd.DataFrame(n, columns=self.terms_).groupby(by).sum()
        m = k_g / n_g.where(n_g > 0)
        m_each = m.reindex(by).to_numpy()
        spread = pd.DataFrame((share.to_numpy() - m_each) ** 2, columns=self.terms_).groupby(by).mean()
        chance = pd.DataFrame(seen.to_numpy() * m_each * (1 - m_each) / np.where(n > 0, n, np.nan), columns=self.terms_)
        between = spread - chance.groupby(by).mean()
        members = seen.groupby(by).count()
        # Measured only where two members or more did it and their shares spread beyond chance:
        # with no measurable spread (a family one admin did once) the default stands, or a
        # person's first risky role would be judged by the one peer who made one.
        measured = (between > 0) & (members >= 2) & (k_g > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = (m * (1 - m) / between.where(measured)) - 1.0
        most = n_g - 1.0
        return strength.where(~(strength > most), most).clip(lower=a).fillna(a)  # NaN: not measured

    # -- scoring -----------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Per window, each term's surprisal in nats (0 where the term did not occur)."""
        return self._surprisal(X, shared=False)

    def transform_shared(self, X) -> np.ndarray:
        """:meth:`transform`, with what improbably many identities did in the same window explained
        by a common cause (:func:`shared_rates`); ``X`` holds every identity's windows of a period."""
        return self._surprisal(X, shared=True)

    def _surprisal(self, X, *, shared: bool) -> np.ndarray:
        check_is_fitted(self, "hits_")
        values = validate_data(self, X, dtype=np.float64, reset=False)
        identities = _identities(X, values.shape[0])
        if values.shape[0] == 0:
            return np.zeros((0, len(self.terms_)))
        codes, uniques = pd.factorize(pd.Series(identities, dtype=object))
        rate = self.rates(uniques).to_numpy()[codes]
        occurred, _ = self._presence(values)
        starts = window_starts(X)
        if shared and starts is not None:
            rate = shared_rates(rate, occurred, starts)
        surprisal = np.where(occurred, -np.log(rate), 0.0)
        f = self.n_families_
        # A new address while doing what the identity always does says little; while doing
        # something it (nearly) never does, it says "maybe not the usual actor". The weight is
        # the chance the window's most unusual action was *not* routine for this identity.
        unusual = np.where(occurred[:, :f], 1.0 - rate[:, :f], 0.0).max(axis=1, initial=0.0)
        surprisal[:, f:] *= unusual[:, None]
        # A young identity meets namespaces and clients for the first time all through its
        # first day (a replaced node's pods arrive hour by hour): no evidence until it has a past.
        young = self._young(X, uniques, codes)
        surprisal[:, f:] *= ~(young[:, None] & self._per_identity[None, :])
        return surprisal

    def young(self, X) -> np.ndarray:
        """Whether each window's identity is still young: no per-identity past to judge it by."""
        check_is_fitted(self, "hits_")
        identities = _identities(X, len(X))
        codes, uniques = pd.factorize(pd.Series(identities, dtype=object))
        return self._young(X, uniques, codes)

    def _young(self, X, uniques, codes) -> np.ndarray:
        windows_seen = self.trials_.iloc[:, 0].reindex(uniques, fill_value=0.0).to_numpy()[codes]
        young = windows_seen < self.min_history
        # Counted in days where days are known: a person works a few hours a day, and after a
        # week (21 windows) was still young, so a stolen token's new address said nothing.
        days, first = _utc_days(X), getattr(self, "first_day_", None)
        if days is not None and first is not None:
            learned_before = first.reindex(uniques).to_numpy(dtype=np.float64)[codes] < days
            young &= ~learned_before
        return young

    def score_samples(self, X) -> np.ndarray:
        """Log-probability of each window's actions (higher is more usual, as in scikit-learn)."""
        return -self.transform(X).sum(axis=1)

    def score_samples_shared(self, X) -> np.ndarray:
        """:meth:`score_samples` of :meth:`transform_shared`."""
        return -self.transform_shared(X).sum(axis=1)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "hits_")
        return np.asarray([f"rarity_{t}" for t in self.terms_], dtype=object)

    # -- explaining --------------------------------------------------------------------
    def usual(self, identity: str, term: str) -> str:
        """The baseline behind a term, in words: how often the identity, its peers and the cluster did it."""
        check_is_fitted(self, "hits_")
        ids = self.hits_.index
        group = peer_groups([identity])[0]

        def share(members) -> str:
            k, n = self.hits_.loc[members, term].sum(), self.trials_.loc[members, term].sum()
            return f"{k:.0f} of {n:.0f} windows"

        others = ids[(peer_groups(ids) == group) & (ids != identity)]
        # "0 of 0 windows" read as a count; an identity alone in its group has no peers to cite.
        peers = f"other {group} {share(others)}" if len(others) else f"no other {group}"
        return (
            f"{self.term_labels_[term]}: this identity {share(ids[ids == identity])}, {peers}, the cluster {share(ids)}"
        )
