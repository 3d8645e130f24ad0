"""What `make eval` measures on: the size presets and the run's parameters."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from scenarios.cluster import ClusterSpec

#: Both variants of every attack, each alone in its own held-out day.
VARIANTS = ("loud", "quiet")


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: seeds, how many days train and how many are held out, the cluster.

    ``train_days`` are the first days of the simulation; the ``heldout_days`` after them are
    scored one by one with the model trained on the first ones, attack-free and then with one
    attack each (the held-out days are reused in turn when there are more attacks than days).
    """

    size: str
    seeds: tuple[int, ...] = (1, 2, 3)
    train_days: int = 21
    heldout_days: int = 7
    spec: ClusterSpec = field(default_factory=ClusterSpec)
    attacks: tuple[str, ...] | None = None  # None: every attack of scenarios.attacks.ATTACKS
    variants: tuple[str, ...] = VARIANTS

    def as_dict(self) -> dict:
        """Plain JSON values (dates as text, tuples as lists), nested rates included."""
        return json.loads(json.dumps(asdict(self), default=str))


def preset(size: str, seeds: tuple[int, ...] | None = None) -> EvalConfig:
    """The ``quick`` (a few minutes, a small cluster) or ``full`` (the published numbers) run."""
    if size == "quick":
        # One training week on the simulator's small default cluster: ~4 minutes on two cores.
        config = EvalConfig("quick", train_days=7, heldout_days=7, spec=ClusterSpec())
    elif size == "full":
        # Three training weeks of a 50-node cluster, the busy month: ~20 minutes.
        config = EvalConfig(
            "full", train_days=21, heldout_days=7, spec=ClusterSpec(nodes=50, app_namespaces=12, humans=12)
        )
    else:
        raise ValueError(f"size must be 'quick' or 'full', not {size!r}")
    if seeds:
        config = EvalConfig(
            config.size, tuple(seeds), config.train_days, config.heldout_days, config.spec, config.attacks
        )
    return config
