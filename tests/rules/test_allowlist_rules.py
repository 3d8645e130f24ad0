"""An allowlist entry may name a rule it mutes (covers = ["rule:<name>"]), nothing vaguer."""

from __future__ import annotations

from datetime import date

import pytest

from errors import KaadError
from pipelines.allowlist import load_allowlist

ENTRY = '[[suppress]]\nidentity = "system:serviceaccount:ci:*"\ncovers = {covers}\nreason = "r"\nexpires = 2026-12-31\n'


def test_an_entry_covering_a_rule_by_name_is_read(tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text(ENTRY.format(covers='["rule:kaad-exec-kube-system", "n_exec"]'))
    (entry,) = load_allowlist(path, date(2026, 3, 5)).entries
    assert entry.covers == frozenset({"rule:kaad-exec-kube-system", "n_exec"})


def test_rule_without_a_name_is_refused_with_the_choices(tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text(ENTRY.format(covers='["rule:"]'))
    with pytest.raises(KaadError, match="or rule:<name> to mute a rule"):
        load_allowlist(path, date(2026, 3, 5))
