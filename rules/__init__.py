"""Sigma rules beside the model: load, convert (pySigma, DuckDB), run, and weigh as evidence."""

from rules.loading import KAAD_RULES, Rule, RuleSet, load_rules
from rules.run import RuleRun, run_rules

__all__ = ["KAAD_RULES", "Rule", "RuleRun", "RuleSet", "load_rules", "run_rules"]
