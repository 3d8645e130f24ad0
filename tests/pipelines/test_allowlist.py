"""The allowlist file: what an entry must say, and what it may hide.

User agents and namespaces are chosen by whoever sends the request, an attacker included, so
an entry must name the identity it is for; a sensitive action or a new network origin is
hidden only by an entry that names it.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from errors import KaadError
from pipelines.allowlist import GUARDED, Decision, guarded_reasons, load_allowlist

TODAY = date(2026, 3, 5)
PROMETHEUS = "system:serviceaccount:monitoring:prometheus-k8s"


def _write(tmp_path, text: str):
    path = tmp_path / "allow.toml"
    path.write_text(text)
    return path


def test_an_entry_without_an_identity_is_refused_naming_the_file_line_and_entry(tmp_path):
    # The old format let a user agent alone make an entry; any client can send "Prometheus/2.51".
    path = _write(
        tmp_path,
        "# known noise\n\n"
        '[[suppress]]\nidentity = "system:node:*"\nreason = "kubelets"\nexpires = 2099-01-01\n\n'
        '[[suppress]]\nuser_agent = "Prometheus/*"\nnamespace = "monitoring"\n'
        'reason = "scrapes"\nexpires = 2099-01-01\n',
    )
    with pytest.raises(KaadError, match=r"allow\.toml:8: entry 2: every entry needs an identity pattern"):
        load_allowlist(path, TODAY)


def test_an_identity_pattern_that_matches_everyone_names_no_one(tmp_path):
    path = _write(
        tmp_path,
        '[[suppress]]\nidentity = "*"\nuser_agent = "Prometheus/*"\nreason = "scrapes"\nexpires = 2099-01-01\n',
    )
    with pytest.raises(KaadError, match=r"allow\.toml:1: entry 1: identity '\*' matches every identity"):
        load_allowlist(path, TODAY)


def test_covers_names_guarded_reasons_only(tmp_path):
    path = _write(
        tmp_path,
        f'[[suppress]]\nidentity = "{PROMETHEUS}"\ncovers = ["n_exec", "frac_get"]\n'
        'reason = "scrapes"\nexpires = 2099-01-01\n',
    )
    with pytest.raises(KaadError, match=r"covers names \['frac_get'\], which are not guarded reasons"):
        load_allowlist(path, TODAY)


def test_a_valid_file_gives_entries_that_say_where_they_are_written(tmp_path):
    path = _write(
        tmp_path,
        f'[[suppress]]\nidentity = "{PROMETHEUS}"\nuser_agent = "Prometheus/*"\n'
        'covers = ["new_source_ip"]\nreason = "scrapes"\nexpires = 2099-01-01\n'
        '[[suppress]]\nidentity = "old-job"\nreason = "gone"\nexpires = 2026-01-01\n',
    )
    allow = load_allowlist(path, TODAY)
    [entry] = allow.entries
    assert (entry.identity, entry.user_agent, entry.covers, entry.label) == (
        PROMETHEUS,
        "Prometheus/*",
        frozenset({"new_source_ip"}),
        "allow.toml:1",
    )
    assert [e.label for e in allow.expired] == ["allow.toml:7"]


def test_user_agent_and_namespace_only_narrow_an_entry(tmp_path):
    allow = load_allowlist(
        _write(
            tmp_path,
            f'[[suppress]]\nidentity = "{PROMETHEUS}"\nuser_agent = "Prometheus/*"\n'
            'reason = "scrapes"\nexpires = 2099-01-01\n',
        ),
        TODAY,
    )
    assert allow.decide(PROMETHEUS, ["Prometheus/2.51.0"], ["monitoring"], []).entry is not None
    # Someone else sending Prometheus's user agent is not Prometheus.
    assert allow.decide("system:serviceaccount:shop:cart", ["Prometheus/2.51.0"], ["monitoring"], []) == Decision()
    # Prometheus with another client in the window is not the scraper the entry describes.
    assert allow.decide(PROMETHEUS, ["Prometheus/2.51.0", "curl/8.5.0"], ["monitoring"], []).entry is None


def test_a_guarded_reason_is_hidden_only_by_an_entry_that_covers_it(tmp_path):
    allow = load_allowlist(
        _write(
            tmp_path,
            f'[[suppress]]\nidentity = "{PROMETHEUS}"\n'
            'reason = "scrapes"\nexpires = 2099-01-01\n'
            f'[[suppress]]\nidentity = "system:serviceaccount:monitoring:*"\n'
            'covers = ["n_exec"]\nreason = "debug shells this week"\n'
            "expires = 2099-01-01\n",
        ),
        TODAY,
    )
    exec_only = allow.decide(PROMETHEUS, [], [], ["n_exec"])
    assert exec_only.entry is not None and exec_only.entry.label == "allow.toml:5"
    from_new_ip = allow.decide(PROMETHEUS, [], [], ["n_exec", "new_source_ip"])
    assert from_new_ip.entry is None
    assert from_new_ip.note == "allowlist entry allow.toml:1 matched but does not cover: n_exec, new_source_ip"


def test_guarded_reasons_follow_the_explanation_rule():
    # An identity that always execs (deviation 0) has no exec reason; one that never does has.
    windows = pd.DataFrame(dict.fromkeys(GUARDED, 0.0), index=["scraper", "thief", "quiet"])
    deviations = windows.copy()
    windows.loc[["scraper", "thief"], "n_exec"] = 3.0
    deviations.loc["thief", "n_exec"] = 50.0
    windows.loc["thief", "new_ip_range"] = 1.0
    flags = guarded_reasons(windows, deviations)
    assert {row: [c for c in flags.columns if flags.loc[row, c]] for row in flags.index} == {
        "scraper": [],
        "thief": ["n_exec", "new_ip_range"],
        "quiet": [],
    }


def test_an_unknown_table_or_key_is_refused_naming_it_and_its_line(tmp_path):
    """A file of `[[allow]]` tables would otherwise be an empty allowlist that hides nothing, silently."""
    path = _write(
        tmp_path, '[[suppress]]\nidentity = "a"\nreason = "r"\nexpires = 2099-01-01\n\n[[allow]]\nidentity = "b"\n'
    )
    with pytest.raises(KaadError, match=r"allow\.toml:6: unknown table 'allow'; entries are \[\[suppress\]\] tables"):
        load_allowlist(path, TODAY)
    path = _write(tmp_path, 'identity = "a"\n')
    with pytest.raises(KaadError, match=r"allow\.toml:1: unknown key 'identity'"):
        load_allowlist(path, TODAY)
