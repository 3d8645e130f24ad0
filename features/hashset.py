"""A compact set of 64-bit hashes: 8 bytes an entry, vectorised membership tests."""

from __future__ import annotations

import numpy as np


class HashSet:
    """A set of uint64 request hashes kept as a few sorted runs (log-structured merge)."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            idx = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[idx] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        """Add keys that are distinct and not in the set yet."""
        if len(keys) == 0:
            return
        self._runs.append(np.sort(keys))
        # Merge while the newest run is at least half the size of the one before it.
        while len(self._runs) > 1 and 2 * len(self._runs[-1]) >= len(self._runs[-2]):
            last = self._runs.pop()
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")
