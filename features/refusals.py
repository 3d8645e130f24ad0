"""Refusal targets: what a denied or refused request asked for, so that a retry is told from a probe.

A controller whose role lacks a grant asks for the same thing every reconcile and is denied
every time; an intruder mapping a token's permissions asks for something different each
time. Both are denied hour after hour, and by the counts alone they look the same. What
each denial asked for (verb, resource, namespace, name) tells them apart: tracked per
identity by :class:`features.first_seen.FirstSeenEncoder`, a denial of something the
identity was denied before is a retry, and only a new one is news (``new_denied_target``,
``new_refused_target``). How much news is how rare a denial is for the identity
(:data:`models.rarity.RATE_OF`): new targets alone die out after the first days of a training.

The same holds from one day to the next. What an alerting identity-day introduced stays new
until a person accepts it (models/day_state.py), but a refusal target asked again is a retry
whether or not its first ask alerted: the denial gave nothing away, and the open finding
already reports it. So :func:`retry_columns` names the targets the day state learns from every
window; an identity retrying yesterday's denied request would otherwise score as a fresh probe
every morning until accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

#: Event columns holding each request's target when it was denied, or its flagged action refused.
COLUMNS = ("denied_target", "refused_target")
#: What a target is made of: ``"verb resource namespace/name"``.
_PARTS = ("verb_resource", "target_namespace", "target_name")


def refusal_targets(events: pd.DataFrame) -> pd.DataFrame:
    """``denied_target`` and ``refused_target`` of enriched events: ``"verb resource ns/name"``
    where the request was denied (403 or decision forbid), and where a flagged action was,
    missing otherwise (missing is never new).

    A flagged request that failed after it was authorised (404, 409, 400) is no refusal: the API
    server checks permissions before it looks the object up, so the answer probes no permission,
    and the name it failed on (a typo, a replaced pod) is new every time. It still counts in
    ``n_attempted``.

    Examples
    --------
    >>> events = pd.DataFrame({"verb_resource": ["list secrets", "get configmaps", "get pods"],
    ...     "target_namespace": [None, "team-a", "team-a"], "target_name": [None, "app", "app-7f9c"],
    ...     "is_denied": [True, False, False], "n_attempted": [True, False, True]})
    >>> refusal_targets(events).fillna("-").to_dict("list")
    {'denied_target': ['list secrets /', '-', '-'], 'refused_target': ['list secrets /', '-', '-']}
    """
    denied = events["is_denied"].to_numpy(dtype=bool)
    refused = denied & events["n_attempted"].to_numpy(dtype=bool)
    # Built for the denied rows alone (a few in ten thousand), in Python, then taken into place
    # by Arrow: row -> its denied row's target, NULL (missing) for every other row. Through
    # pandas this was ~5 ms of fixed costs a chunk group for two denied rows.
    rows = np.flatnonzero(denied)
    parts = [[_as_text(v) for v in events[column].array.take(rows)] for column in _PARTS]
    targets = pa.array([f"{a} {b}/{c}" for a, b, c in zip(*parts, strict=True)], pa.string())
    where = np.full(len(events), -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    return pd.DataFrame(
        {
            "denied_target": _taken(targets, where),
            "refused_target": _taken(targets, np.where(refused, where, -1)),
        },
        index=events.index,
    )


def _as_text(value) -> str:
    """A value as ``astype("string").fillna("")`` writes it."""
    return "" if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) else str(value)


def _taken(values: pa.Array, where: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``values[where]`` as Arrow-backed text, missing where ``where`` is -1."""
    return pd.arrays.ArrowStringArray(values.take(pa.array(where, mask=where < 0)))


def retry_columns(attributes: Sequence[tuple[str, str]]) -> list[int]:
    """Which of a first-seen encoder's ``attributes`` (its novelty log's ``column``) are refusal
    targets; none for an encoder trained before they existed.

    >>> retry_columns([("source_ip", "source_ip"), ("denied_target", "denied_target")])
    [1]
    """
    return [i for i, (name, _) in enumerate(attributes) if name in COLUMNS]
