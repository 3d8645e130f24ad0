"""DayState: what a model learns after training, one scored day at a time, for one cluster.

A trained bundle's first-seen encoder and action rarity stop at the training end. Scored day
after day, a benign value first seen after training would be "new" every morning. The state
carries both forward: after a day is scored, the values its quiet windows introduced become
usual and their actions are counted. What an alerting identity-day introduced is held back,
and stays new on the following days whatever they look like, until a person accepts the
finding (:meth:`DayState.accept`, ``kaad accept``): an attacker does not become usual by
waiting a day. The held identity-days keep their window features and the keys of the values
they introduced, so accepting needs nothing but the state.

The daily job keeps one state per model and cluster, saved by models/state_store.py.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from errors import DayOrderError, KaadError
from features.first_seen import FirstSeenEncoder
from features.novelty_log import NoveltyLog
from features.refusals import retry_columns
from models.recalibrate import recalibrated


def model_key(bundle) -> str:
    """A short fingerprint of a trained model: the same bundle gives the same key wherever it is
    loaded from (a file, an MLflow run, a registered alias), another training run another key."""
    facts = (
        bundle.created,
        bundle.training_start,
        bundle.training_end,
        float(bundle.threshold),
        bundle.n_windows,
        bundle.n_events,
        bundle.window,
        list(bundle.feature_names),
        sorted((str(k), str(v)) for k, v in bundle.params.items()),
    )
    return hashlib.sha256(repr(facts).encode()).hexdigest()[:16]


def _as_day(value) -> date | None:
    if value is None or value == "":
        return None
    return pd.Timestamp(value).date()


@dataclass
class Held:
    """An alerting identity-day, not learned until accepted: its windows and the values they introduced."""

    windows: pd.DataFrame  # the model's window features, index (identity, window_start): scored again to judge a rise
    novelty: pd.DataFrame  # NoveltyLog rows of those windows
    score: float = 0.0  # the identity-day's score, and its terms with evidence (models.open_findings)
    terms: tuple[str, ...] = ()
    status: str = "new"  # new, worse, or a repeat of its identity's open finding


class DayState:
    """The encoder and rarity of a model, carried forward day by day for one cluster.

    Scoring uses :attr:`encoder` and :attr:`rarity`, calls :meth:`check_day` before and
    :meth:`advance` after. Days are scored once and in order; a day on or before the last one
    scored, or on or before the model's training end, is refused unless ``force`` is set.

    Examples
    --------
    >>> state = DayState(FirstSeenEncoder(), None, model="m", cluster="c", training_end=date(2026, 3, 1))
    >>> state.check_day(date(2026, 3, 2))  # in order: True only when a forced rerun went back
    False
    >>> state.check_day(date(2026, 3, 1))
    Traceback (most recent call last):
    ...
    errors.DayOrderError: day 2026-03-01 is on or before the model's training end (2026-03-01): ...
    """

    def __init__(
        self,
        encoder: FirstSeenEncoder,
        rarity=None,
        *,
        model: str,
        cluster: str,
        training_end: date | None = None,
        last_day: date | None = None,
        force: bool = False,
    ):
        self._learned = encoder
        self.rarity = rarity
        self.model = model
        self.cluster = cluster
        self.training_end = training_end
        self.last_day = last_day
        self.force = force
        self.held: dict[tuple[str, date], Held] = {}
        self._log = NoveltyLog()
        #: What was learned before the last day, so a forced rerun of that day starts from it.
        self._before: dict | None = None
        self._learn = True  # False while a forced day that is not to be learned is scored

    @classmethod
    def from_bundle(cls, bundle, cluster: str, *, force: bool = False) -> DayState:
        """A state that has learned what the bundle learned, and no day since."""
        return cls(
            copy.deepcopy(bundle.encoder),
            copy.deepcopy(getattr(bundle, "rarity", None)),  # bundles before v2 have none
            model=model_key(bundle),
            cluster=cluster,
            training_end=_as_day(bundle.training_end),
            force=force,
        )

    @property
    def encoder(self) -> FirstSeenEncoder:
        """A copy of the learned encoder for one day's scoring; what it flags new is logged here.

        A copy, so that scoring (which teaches its encoder the day as it goes) never changes
        what the state has learned; :meth:`advance` then learns what the quiet windows introduced.
        """
        return copy.deepcopy(self._learned).log_novelty(self._log)

    def calibrator(self, bundle):
        """The bundle's calibrator, its held-out windows judged with this state's action rates
        (:mod:`models.recalibrate`); the bundle's own where it keeps no held-out windows."""
        windows = getattr(bundle, "held_out_windows", None)
        forest = getattr(bundle, "held_out_forest", None)
        if self.rarity is None or windows is None or forest is None:
            return bundle.calibrator
        # Learning a day or an accepted finding adds windows to the counts: the rates moved.
        counts = self.rarity.trials_.to_numpy().sum(), self.rarity.hits_.to_numpy().sum()
        key = (model_key(bundle), float(counts[0]), float(counts[1]))
        cached = self.__dict__.get("_calibration")
        if cached is None or cached[0] != key:
            cached = (key, recalibrated(bundle.calibrator, forest, windows, self.rarity))
            self._calibration = cached
        return cached[1]

    def check_day(self, day: date) -> bool:
        """Raise :class:`errors.DayOrderError` unless ``day`` comes after everything learned.

        Forced, the last day scored is scored again from what was learned before it (a rerun
        gives the same result and learns the day once); an earlier day, or one inside
        training, is scored against what has been learned and teaches nothing. Returns True
        when the state went back to before the last day: what was read from it before this
        call (the encoder, the rarity, a source's baseline) is stale and must be read again.
        """
        self._learn = True
        if self.force:
            if self.last_day is not None and day == self.last_day and self._before is not None:
                self.__dict__.update(copy.deepcopy(self._before))
                self._before = None
                return True
            elif (self.last_day is not None and day <= self.last_day) or (
                self.training_end is not None and day <= self.training_end
            ):
                self._learn = False
            return False
        again = "(kaad score --force-day scores it anyway)"
        if self.last_day is not None and day == self.last_day:
            raise DayOrderError(f"day {day} was already scored with this model for cluster {self.cluster!r} {again}")
        if self.last_day is not None and day < self.last_day:
            raise DayOrderError(
                f"day {day} is out of order: this model has scored cluster {self.cluster!r} "
                f"up to {self.last_day}, and days are scored oldest first {again}"
            )
        if self.training_end is not None and day <= self.training_end:
            raise DayOrderError(
                f"day {day} is on or before the model's training end ({self.training_end}): "
                f"its values are not new to the model {again}"
            )
        return False

    def advance(self, day: date, windows: pd.DataFrame, alerted: pd.Series, verdicts: dict | None = None) -> None:
        """Learn the scored ``day``: its quiet windows' values and actions; hold its alerting ones back.

        ``windows``: the day's window features, index (identity, window_start); ``alerted``:
        True for the windows of alerting, unsuppressed identity-days (same index); ``verdicts``:
        identity -> :class:`models.open_findings.Verdict` of those identity-days (score, terms, status).
        """
        logged, self._log = self._log.frame(), NoveltyLog()
        if not self._learn:
            return
        self._before = self._learned_now()
        hot = alerted.reindex(windows.index, fill_value=False).to_numpy(dtype=bool)
        where = _window_keys(windows.index).get_indexer(
            pd.MultiIndex.from_arrays([logged["identity"], logged["window_start"]])
        )
        logged_hot = (where >= 0) & hot[np.maximum(where, 0)]
        for identity in sorted(set(windows.index.get_level_values("identity")[hot])):
            mine = hot & (windows.index.get_level_values("identity") == identity)
            verdict = (verdicts or {}).get(identity)
            held = Held(
                self._features(windows[mine]),
                logged[logged_hot & (logged["identity"] == identity).to_numpy()],
                0.0 if verdict is None else float(verdict.score),
                () if verdict is None else tuple(sorted(verdict.terms)),
                "new" if verdict is None else verdict.status,
            )
            if (identity, day) in self.held:  # the day scored again (forced): keep both
                old = self.held[(identity, day)]
                held = Held(
                    pd.concat([old.windows, held.windows]),
                    pd.concat([old.novelty, held.novelty]),
                    max(old.score, held.score),
                    tuple(sorted({*old.terms, *held.terms})),
                    old.status,
                )
            self.held[(identity, day)] = held
        held_back = logged_hot | _pairs(logged).isin(self._quarantined())
        self._learned.fold(logged[(where >= 0) & ~held_back])
        # A refusal target asked again is a retry, whether or not its first ask alerted: the
        # targets held back above are learned too (the quiet ones were, once is enough). So are
        # the namespaces the cluster saw: a namespace's existence is a fact, not the identity's
        # behaviour, and knowing it only takes an excuse away (a namespace known is never born
        # again); held back, it would excuse a first access to it again tomorrow.
        anyway = [*retry_columns(self._learned.attributes), self._learned.births_column()]
        learned_anyway = logged["column"].isin([c for c in anyway if c is not None]).to_numpy()
        self._learned.fold(logged[(where >= 0) & held_back & learned_anyway])
        if self.rarity is not None and (~hot).any():
            self.rarity.partial_fit(self._features(windows[~hot]))
        self.last_day = day if self.last_day is None else max(self.last_day, day)

    def accept(self, identity: str, day: date) -> Held:
        """Learn a held identity-day as normal (what ``kaad accept`` does); return what was learned.

        ``day`` must be held; it and the identity's earlier held days are learned (its open
        finding up to that day: accepting the last seen day closes it), later ones stay held,
        since a person who looked at ``day`` has not seen them. Returns the learned days merged.
        """
        if (identity, day) not in self.held:
            days = sorted(str(d) for who, d in self.held if who == identity)
            raise KaadError(
                f"nothing of {identity!r} on {day} is held back in this state for cluster {self.cluster!r} "
                + (f"(held days of {identity!r}: {', '.join(days)})" if days else f"(no day of {identity!r} is held)")
            )
        parts = [self.held.pop((identity, d)) for d in self.finding_days(identity, day)]
        held = Held(pd.concat([h.windows for h in parts]), pd.concat([h.novelty for h in parts]))
        self._before = None  # a rerun of the last day must not undo this
        self._learned.fold(held.novelty)
        if self.rarity is not None and len(held.windows):
            self.rarity.partial_fit(self._features(held.windows))
        return held

    def finding_days(self, identity: str, day: date) -> list[date]:
        """The held days :meth:`accept` would learn for ``identity`` and ``day``."""
        return sorted(d for who, d in self.held if who == identity and d <= day) if (identity, day) in self.held else []

    def day_novelty(self) -> pd.DataFrame:
        """What the day being scored has flagged new so far (NoveltyLog rows), before :meth:`advance`."""
        return self._log.frame()

    def _quarantined(self) -> pd.MultiIndex:
        parts = [h.novelty for h in self.held.values()]
        return _pairs(pd.concat(parts) if parts else NoveltyLog().frame())

    def _features(self, windows: pd.DataFrame) -> pd.DataFrame:
        names = getattr(self.rarity, "feature_names_in_", None)
        return windows if names is None else windows[list(names)]

    def _learned_now(self) -> dict:
        # Everything a day teaches, including what evidence sources keep on the state (the
        # network baseline of flows/source.py), so a forced rerun undoes all of it.
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in _NOT_LEARNED})

    # The log is a sink for one day's scoring and force a choice of one run: neither is saved.
    def __getstate__(self) -> dict:
        kept = dict(self.__dict__)
        kept.pop("_log", None)
        kept.pop("_calibration", None)  # made again from the bundle when needed
        kept["force"], kept["_learn"] = False, True
        return kept

    def __deepcopy__(self, memo: dict) -> DayState:
        # A copy serves one scoring (the evaluation copies a morning's state for every attack):
        # it keeps the held-out reference judged for these rates, which only a save drops. The
        # calibrator is never changed once made, and its key says when the rates moved.
        out = DayState.__new__(DayState)
        memo[id(self)] = out
        out.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        if "_calibration" in self.__dict__:
            out._calibration = self._calibration
        return out

    def __setstate__(self, state: dict) -> None:
        before = state.get("_before")
        if isinstance(before, tuple):  # saved before the snapshot held every learned attribute
            state["_before"] = dict(zip(("_learned", "rarity", "held", "last_day"), before, strict=True))
        self.__dict__.update(state)
        self._log = NoveltyLog()


_NOT_LEARNED = ("_log", "_before", "force", "_learn", "_calibration")


def _window_keys(index: pd.Index) -> pd.MultiIndex:
    starts = pd.DatetimeIndex(index.get_level_values("window_start")).as_unit("ns").asi8
    return pd.MultiIndex.from_arrays([index.get_level_values("identity").astype(str), starts])


def _pairs(logged: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([logged["column"].to_numpy(), logged["key"].to_numpy()])
