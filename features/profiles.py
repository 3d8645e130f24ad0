"""What is usual for each identity, in words: its usual client, address and namespaces.

Learned from history alongside the baselines so that explanations can say "usual: client-go"
or "usual: 10.0.17.4". A few strings per identity, counted chunk by chunk.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, cast

import pandas as pd

from features.repeats import weights

_COLUMNS = {
    "user_agent": "user_agent",
    "ua_family": "ua_family",
    "source_ip": "source_ip",
    "namespace": "target_namespace",
    "verb_resource": "verb_resource",
}
KEEP = 3


class ProfileBuilder:
    """Accumulate per-identity value counts from prepared event chunks."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, Counter]] = {k: defaultdict(Counter) for k in _COLUMNS}

    def observe(self, prepared: pd.DataFrame) -> None:
        """Count the values of one chunk (prepared by :func:`features.featurise.prepare_events`)."""
        weight = weights(prepared)
        for key, column in _COLUMNS.items():
            if column not in prepared.columns:
                continue
            pairs = prepared[["identity", column]].dropna()
            pairs = pairs[pairs[column].astype("string") != ""]
            # A row of repeats (features/repeats.py) counts as the events it stands for; both
            # count in order of first appearance, as the counters' ties are broken.
            if weight is None:
                counts = pairs.value_counts(sort=False)
            else:
                n_events = pd.Series(weight, index=prepared.index, name="n").loc[pairs.index]
                counts = n_events.groupby([pairs["identity"], pairs[column]], sort=False, observed=True).sum()
            for pair, n in counts.items():
                identity, value = cast(tuple[str, Any], pair)  # a row of the two columns above
                self._counts[key][identity][value] += int(n)

    def merge(self, other: ProfileBuilder) -> None:
        """Add the counts of ``other`` (a later part of history, observed apart)."""
        for key, per_identity in other._counts.items():
            for identity, counter in per_identity.items():
                self._counts[key][identity].update(counter)

    def profiles(self) -> dict[str, dict[str, list[tuple[str, int]]]]:
        """identity -> attribute -> the most common values with their counts."""
        out: dict[str, dict[str, list[tuple[str, int]]]] = defaultdict(dict)
        for key, per_identity in self._counts.items():
            for identity, counter in per_identity.items():
                out[identity][key] = counter.most_common(KEEP)
        return dict(out)
