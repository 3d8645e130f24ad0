"""A held identity-day that alerts again is one open finding, not a new alert every morning.

The story (test_day_state's cluster, trained on 2 and 3 March): on 4 March alice works from a
hotel address she has never used and her day alerts; nobody accepts it. On 5 March she works
from the hotel again: the same new address, the same actions; the finding is open since the
4th and this is a repeat, not a new page. On 6 March someone with her credentials also
comes from a second new address, and on the 7th lists secrets she never listed: each time the
open finding got worse, and pages. Accepting the last day closes the whole finding.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.featurise import featurise_history
from models.day_state import DayState
from models.open_findings import NEW, REPEAT, WORSE, judge_day, open_findings
from tests.models.test_day_state import ALICE, HOTEL, alice_from, bundle, event, frame, usual_day  # noqa: F401

THRESHOLD = 1.0  # the fixture model's identity-day threshold (bundle.threshold)
SECOND = "198.51.100.77"


def score(state: DayState, events, day: date, evidence: dict[str, dict[str, float]], rescore=None, outside=()):
    """What score_batches does with a state, the detector's verdict given: ``evidence`` is each
    alerting identity's terms (nats), as identity_days would find them; ``rescore``, what
    today's model says of held windows."""
    state.check_day(day)
    windows, _ = featurise_history([events], encoder=state.encoder)
    when = pd.Timestamp(day, tz="UTC")
    index = pd.MultiIndex.from_tuples([(who, when) for who in evidence], names=["identity", "day"])
    contributions = pd.DataFrame(list(evidence.values()), index=index).fillna(0.0)
    alerting = pd.DataFrame({"anomaly_score": contributions.sum(axis=1)}, index=index)
    verdicts = judge_day(state, day, alerting, contributions, THRESHOLD, rescore=rescore, outside=outside)
    alerted = pd.Series(windows.index.get_level_values("identity").isin(list(evidence)), index=windows.index)
    state.advance(day, windows, alerted, verdicts)
    return verdicts


def hotel_day(day: str, *extra: dict) -> list[dict]:
    return usual_day(day) + alice_from(HOTEL, day) + list(extra)


NEW_ADDRESS = {"rarity_new_source": 6.0, "forest": 1.5}


def test_the_same_alert_the_next_morning_is_a_repeat_of_the_open_finding(bundle, tmp_path):  # noqa: F811 (the story\'s fixture)
    state = DayState.from_bundle(bundle, "prod")
    first = score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS})
    assert (first[ALICE].status, first[ALICE].first_seen, first[ALICE].days) == (NEW, date(2026, 3, 4), 1)
    # Nobody accepted it: the address is still new, the day alerts again on what it already showed.
    again = score(state, frame(hotel_day("2026-03-05"), tmp_path), date(2026, 3, 5), {ALICE: NEW_ADDRESS})
    assert (again[ALICE].status, again[ALICE].first_seen, again[ALICE].days) == (REPEAT, date(2026, 3, 4), 2)
    # A little more of the same (the forest's mix moves from day to day) is still the same finding.
    busier = score(
        state, frame(hotel_day("2026-03-06"), tmp_path), date(2026, 3, 6), {ALICE: NEW_ADDRESS | {"forest": 2.4}}
    )
    assert busier[ALICE].status == REPEAT and busier[ALICE].days == 3
    finding = open_findings(state.held)[ALICE]
    assert (finding.first_seen, finding.last_seen, finding.days) == (date(2026, 3, 4), date(2026, 3, 6), 3)


def test_a_value_the_open_finding_never_introduced_makes_it_worse(bundle, tmp_path):  # noqa: F811 (the story\'s fixture)
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS})
    # The same evidence terms, but alice's credentials also come from a second address nobody held.
    stolen = event(ALICE, SECOND, "2026-03-05T11:30:00.000000", resource="pods")
    worse = score(state, frame(hotel_day("2026-03-05", stolen), tmp_path), date(2026, 3, 5), {ALICE: NEW_ADDRESS})
    assert worse[ALICE].status == WORSE and worse[ALICE].new_values >= 1
    assert worse[ALICE].first_seen == date(2026, 3, 4)
    # The next morning the second address is held too: coming from both is a repeat again.
    also = event(ALICE, SECOND, "2026-03-06T11:30:00.000000", resource="pods")
    after = score(state, frame(hotel_day("2026-03-06", also), tmp_path), date(2026, 3, 6), {ALICE: NEW_ADDRESS})
    assert after[ALICE].status == REPEAT and after[ALICE].days == 3


def test_an_action_or_a_score_the_open_finding_never_had_makes_it_worse(bundle, tmp_path):  # noqa: F811 (the story\'s fixture)
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS})
    # From the held address only, but with evidence in a family no held day had: a new action.
    secrets = NEW_ADDRESS | {"rarity_secrets_read": 0.4}
    worse = score(state, frame(hotel_day("2026-03-05"), tmp_path), date(2026, 3, 5), {ALICE: secrets})
    assert worse[ALICE].status == WORSE and worse[ALICE].new_terms == ("rarity_secrets_read",)
    # The same terms, but more evidence above the highest held day than the threshold: worse.
    louder = secrets | {"rarity_new_source": secrets["rarity_new_source"] + 2 * THRESHOLD}
    loud = score(state, frame(hotel_day("2026-03-06"), tmp_path), date(2026, 3, 6), {ALICE: louder})
    assert loud[ALICE].status == WORSE and loud[ALICE].new_terms == ()
    assert loud[ALICE].score_rise == pytest.approx(2 * THRESHOLD)


def test_accepting_the_last_seen_day_closes_the_open_finding(bundle, tmp_path):  # noqa: F811 (the story\'s fixture)
    state = DayState.from_bundle(bundle, "prod")
    for day in ("2026-03-04", "2026-03-05", "2026-03-06"):
        score(state, frame(hotel_day(day), tmp_path), date.fromisoformat(day), {ALICE: NEW_ADDRESS})
    # Accepting the first day accepts what a person saw then; the later days stay open.
    assert state.finding_days(ALICE, date(2026, 3, 4)) == [date(2026, 3, 4)]
    state.accept(ALICE, date(2026, 3, 4))
    assert sorted(state.held) == [(ALICE, date(2026, 3, 5)), (ALICE, date(2026, 3, 6))]
    learned = state.accept(ALICE, date(2026, 3, 6))
    assert len(learned.windows) == 4 and state.held == {}
    # Closed: the address is hers now, and if she alerts again it is a new finding.
    back = score(state, frame(hotel_day("2026-03-07"), tmp_path), date(2026, 3, 7), {ALICE: NEW_ADDRESS})
    assert back[ALICE].status == NEW and back[ALICE].first_seen == date(2026, 3, 7)


def _judged_today(score_of_held: float | None):
    """Today's model on a held day's windows: ``score_of_held`` nats (None: it cannot judge them)."""

    def rescore(windows: pd.DataFrame):
        if score_of_held is None:
            return None
        days = windows.index.get_level_values("window_start").normalize()
        return (
            pd.Series(score_of_held, index=pd.MultiIndex.from_arrays([windows.index.get_level_values(0), days]))
            .groupby(level=[0, 1])
            .first()
        )

    return rescore


def test_the_same_evidence_judged_against_a_moved_reference_is_a_repeat_not_worse(bundle, tmp_path):  # noqa: F811 (the story\'s fixture)
    """Overnight the state learned the day's rates, and the held-out reference the evidence is
    calibrated against was judged anew: alice's same hotel day now scores 5 nats more. Judged on
    one yardstick (her held day scored again by today's model scores as much), nothing rose."""
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS})
    moved = {"rarity_new_source": 11.0, "forest": 1.5}  # 12.5 nats against the held 7.5
    again = score(
        state, frame(hotel_day("2026-03-05"), tmp_path), date(2026, 3, 5), {ALICE: moved}, _judged_today(12.5)
    )
    assert again[ALICE].status == REPEAT and again[ALICE].score_rise == 0.0
    # The same rise read against the held score as it was: worse, a second page for one finding.
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS})
    unjudged = score(state, frame(hotel_day("2026-03-05"), tmp_path), date(2026, 3, 5), {ALICE: moved})
    assert unjudged[ALICE].status == WORSE and unjudged[ALICE].score_rise == pytest.approx(5.0)


def test_more_evidence_than_the_held_days_judged_today_is_still_worse(bundle, tmp_path):  # noqa: F811 (the story\'s fixture)
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS})
    louder = {"rarity_new_source": 11.0, "forest": 1.5}
    # Today's model gives the held day 9.5: 3 nats more today, above the threshold of 1.
    loud = score(state, frame(hotel_day("2026-03-05"), tmp_path), date(2026, 3, 5), {ALICE: louder}, _judged_today(9.5))
    assert loud[ALICE].status == WORSE and loud[ALICE].score_rise == pytest.approx(3.0)


def test_outside_evidence_is_left_out_of_the_rise_and_a_held_day_that_cannot_be_judged_keeps_its_score(
    bundle,  # noqa: F811 (the story\'s fixture)
    tmp_path,
):
    """A rule's nats are not in the held windows' evidence: the rise compares the windows' own.
    A state saved before held days kept the model's features judges against the held score."""
    rule = {"rule_kaad_exec": 4.0}
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS | rule})
    again = score(
        state,
        frame(hotel_day("2026-03-05"), tmp_path),
        date(2026, 3, 5),
        {ALICE: NEW_ADDRESS | rule},
        _judged_today(7.5),
        outside=("rule_kaad_exec",),
    )
    assert again[ALICE].status == REPEAT and again[ALICE].score_rise == 0.0
    # Without outside, the rule's 4 nats would read as a rise above the held day judged today.
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS | rule})
    misread = score(
        state,
        frame(hotel_day("2026-03-05"), tmp_path),
        date(2026, 3, 5),
        {ALICE: NEW_ADDRESS | rule},
        _judged_today(7.5),
    )
    assert misread[ALICE].status == WORSE
    # Cannot judge again: 11.5 against the held 11.5 as it was, a repeat.
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS | rule})
    old = score(
        state,
        frame(hotel_day("2026-03-05"), tmp_path),
        date(2026, 3, 5),
        {ALICE: NEW_ADDRESS | rule},
        _judged_today(None),
    )
    assert old[ALICE].status == REPEAT


def test_a_held_day_keeps_every_feature_the_model_scores(bundle, tmp_path):  # noqa: F811 (the story\'s fixture)
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(hotel_day("2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE: NEW_ADDRESS})
    held = state.held[(ALICE, date(2026, 3, 4))]
    assert set(bundle.feature_names) <= set(held.windows.columns)
