"""`kaad rules test`: what a rule author needs while writing one: converted or not, hits, the events."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.ingest import IngestStats, ingest
from rules.loading import RuleSet, load_rules
from rules.run import RuleRun, run_rules


@dataclass
class RuleTrial:
    """The rules of a directory run over a set of events."""

    rules: RuleSet
    run: RuleRun
    stats: IngestStats

    @property
    def n_problems(self) -> int:
        """Rules that did not convert or did not run."""
        return len(self.rules.refused) + len(self.run.failed)


def try_rules(directories: list[Path], inputs: list[str], *, own: bool = False) -> RuleTrial:
    """Load the rules under ``directories`` (kaad's own too if ``own``) and run them over ``inputs``.

    Examples
    --------
    >>> trial = try_rules([Path("rules/kaad")], ["tests/data/audit/exec.jsonl"])
    >>> [r.name for r in trial.rules.rules][:1], len(trial.run.hits)
    (['kaad-anonymous-allowed'], 1)
    """
    rules = load_rules(directories, own=own)
    with tempfile.TemporaryDirectory(prefix="kaad-rules-test-") as tmp:
        table = Path(tmp) / "events.parquet"
        result = ingest(inputs, out=table, collect=False)
        run = run_rules(rules, table if result.stats.n_events else None)
    return RuleTrial(rules, run, result.stats)
