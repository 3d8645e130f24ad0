"""Scored day after day, an unaccepted finding stays one open finding; an attacker behind it is not hidden.

The story: the session's small simulated cluster, trained on days 1-7 (conftest's ``trained``).
Day 8 carries five loud attacks; their identity-days alert and nobody accepts them. Day 9 is
day 8 again (the same events a day later): each of those identities alerts again on what it
already showed, so each is a repeat of its open finding, and nothing pages. On day 10 the same
again, except that the developer's credentials also list kube-system's secrets from an address
never seen: that finding got worse and pages; the others still repeat.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import date, timedelta
from pathlib import Path

from models.day_state import DayState
from pipelines.score import score_day

DEVELOPER = "developer"
FAIL_ON = 99.0  # kaad score --fail-on 99: identity-days at or above it alert too, and fail the job


def _text(path: str) -> str:
    with gzip.open(path, "rt") if path.endswith(".gz") else open(path) as handle:
        return handle.read()


def day_later(path: str, days: int, dest: Path, extra: list[dict] = ()) -> str:
    """The day file's events ``days`` days later (every timestamp moved), plus ``extra`` events."""
    text = _text(path)
    moved = re.sub(r"(\d{4}-\d\d-\d\d)T", lambda m: f"{date.fromisoformat(m.group(1)) + timedelta(days=days)}T", text)
    dest.write_text(moved + "".join(json.dumps(e) + "\n" for e in extra))
    return str(dest)


def stolen_secrets_list(path: str, day: date) -> dict:
    """The developer's credentials list kube-system's secrets from an address nobody used."""
    text = _text(path)
    mine = next(json.loads(line) for line in text.splitlines() if f'"username":"{DEVELOPER}"' in line)
    when = f"{day}T13:05:00.000000Z"
    return mine | {
        "auditID": "0f0e0d0c-stolen-developer-secrets",
        "requestURI": "/api/v1/namespaces/kube-system/secrets",
        "verb": "list",
        "sourceIPs": ["192.0.2.200"],
        "objectRef": {"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"},
        "requestReceivedTimestamp": when,
        "stageTimestamp": when,
    }


def test_a_repeat_is_one_open_finding_and_what_an_attacker_adds_pages(trained, tmp_path):
    bundle, day8 = trained["result"].bundle, trained["files"][-1]
    state = DayState.from_bundle(bundle, "default")

    first = score_day([day8], bundle, state=state, top=0, alert_percentile=FAIL_ON)
    alerting = first.identities[first.identities["is_alert"]]
    assert len(alerting) >= 2 and set(alerting["finding"]) == {"new"}
    assert DEVELOPER in set(alerting["identity"])
    assert first.n_new_findings == first.n_alerts and first.n_at_or_above(FAIL_ON) > 0

    # Day 9: the same events a day later. Every alerting identity-day repeats its open finding.
    second = score_day(
        [day_later(day8, 1, tmp_path / "day9.jsonl")], bundle, state=state, top=0, alert_percentile=FAIL_ON
    )
    again = second.identities[second.identities["is_alert"]].set_index("identity")
    assert set(again.index) == set(alerting["identity"])
    assert set(again["finding"]) == {"repeat"} and set(again["days_open"]) == {2}
    assert set(again["first_seen"]) == {first.day}
    assert (second.n_repeats, second.n_new_findings) == (second.n_alerts, 0)
    assert second.n_at_or_above(FAIL_ON) == 0  # --fail-on acts on nothing: nothing new happened
    found = {f.identity: f for f in second.findings}
    assert all(found[who].status == "repeat" and not found[who].pages for who in again.index)
    assert "open since" in found[DEVELOPER].finding_note and "a repeat" in found[DEVELOPER].finding_note

    # Day 10: the same again, and the developer's credentials do something new.
    day10 = date.fromordinal(first.day.toordinal() + 2)
    third = score_day(
        [day_later(day8, 2, tmp_path / "day10.jsonl", [stolen_secrets_list(day8, day10)])],
        bundle,
        state=state,
        top=0,
        alert_percentile=FAIL_ON,
    )
    verdicts = third.identities[third.identities["is_alert"]].set_index("identity")
    assert verdicts.loc[DEVELOPER, "finding"] == "worse" and verdicts.loc[DEVELOPER, "days_open"] == 3
    assert set(verdicts.drop(index=DEVELOPER)["finding"]) == {"repeat"}
    assert third.n_new_findings == 1 and third.n_at_or_above(FAIL_ON) == 1
    developer = next(f for f in third.findings if f.identity == DEVELOPER)
    assert developer.pages and "worse" in developer.finding_note


def test_a_days_reasons_are_judged_against_what_was_known_that_morning(trained):
    """The state learns a scored day's quiet windows once the day is done. The reasons given
    for that day must still count what was known that morning: the morning's state has learned
    nothing since training, so every explained identity-day, alerting or not, reads as it does
    scored against the bundle alone, and no window counts itself among the usual ones."""
    bundle, day8 = trained["result"].bundle, trained["files"][-1]
    morning = score_day([day8], bundle, top=20)
    with_state = score_day([day8], bundle, state=DayState.from_bundle(bundle, "default"), top=20)

    def reasons(result):
        return {(f.identity, f.day): [r.line() for r in f.reasons] for f in result.findings}

    assert reasons(with_state) == reasons(morning)
    assert any(not f.is_alert and f.reasons for f in with_state.findings)  # the quiet ones were learned
