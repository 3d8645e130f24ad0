"""Explaining a day replays the explained identities' events: the same flags, and the same lessons.

The story: the shop has run for a week from the office network. Monday 09:10 a quiet backup
job calls from a cloud range nobody used (10.9.0.0/16 here), and at 10:20 the stolen cart token
calls from the same range, reads secrets in the new ledger namespace the CI deployer has just
brought to life, and its day alerts. The backup job's day is quiet and not explained.

Explaining replays only the cart token's events. Its flags are the first pass's, the ledger
birth included. What the replay flags is told to the day state as the first pass's flags are
(models/day_state.py): the range, new to the cart token in the replay, is held back with its
alerting day, and a third identity calling from it on Tuesday is still on a network new to the
cluster until a person accepts Monday.
"""

from __future__ import annotations

import copy
from datetime import date
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa

from events.schema import EVENT_SCHEMA, to_pandas
from features.featurise import mark_novelty, prepare_events
from features.first_seen import FirstSeenEncoder
from models.day_state import DayState
from pipelines.day_windows import explained_events, featurise_day

CI = "system:serviceaccount:ci:deployer"
CART = "system:serviceaccount:shop:cart"
BACKUP = "system:serviceaccount:ops:backup"
OFFICE, CLOUD = "10.0.1.5", "10.9.4.7"


def table(rows: list[tuple[str, str, str, str, str, str, int]]) -> pa.Table:
    """(time, identity, verb, resource, namespace, source IP, code) per event, in the event schema."""
    return pa.Table.from_pylist(
        [
            {
                "audit_id": f"e{i}",
                "timestamp": pd.Timestamp(when, tz="UTC").to_pydatetime(),
                "identity": who,
                "verb": verb,
                "target_resource": resource,
                "target_namespace": ns,
                "source_ip": ip,
                "response_code": code,
                "stage": "ResponseComplete",
            }
            for i, (when, who, verb, resource, ns, ip, code) in enumerate(rows)
        ],
        schema=EVENT_SCHEMA,
    )


WEEK = table(
    [
        (f"2026-03-0{d} 09:00", who, "get", "secrets", ns, OFFICE, 200)
        for d in range(2, 9)
        for who, ns in ((CART, "shop"), (BACKUP, "ops"), (CI, "ci"))
    ]
)
MONDAY = table(
    [
        ("2026-03-09 09:10", BACKUP, "get", "secrets", "ops", CLOUD, 200),
        ("2026-03-09 10:05", CI, "create", "serviceaccounts", "ledger", OFFICE, 201),
        ("2026-03-09 10:06", CI, "create", "secrets", "ledger", OFFICE, 201),
        ("2026-03-09 10:20", CART, "list", "secrets", "ledger", CLOUD, 200),
        ("2026-03-09 10:25", CART, "get", "secrets", "shop", CLOUD, 200),
    ]
)
BUNDLE = SimpleNamespace(window="1h")


def trained() -> DayState:
    encoder = FirstSeenEncoder().fit(prepare_events(to_pandas(WEEK), "1h"))
    return DayState(encoder, model="m", cluster="c", training_end=date(2026, 3, 8))


def scored_monday(state: DayState, tmp_path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Monday as score_batches scores it: the first pass, then the cart token explained.
    Returns the first pass's flags, the replay's, and Monday's windows."""
    encoder = state.encoder
    first = mark_novelty(prepare_events(to_pandas(MONDAY), "1h"), copy.deepcopy(encoder).log_novelty(None))
    day = featurise_day([MONDAY], "1h", tmp_path, encoder)
    replay = explained_events(day.spill, [CART], BUNDLE, encoder)
    return first, replay, day.windows


def test_the_replay_gives_the_first_pass_flags_birth_included(tmp_path):
    first, replay, _ = scored_monday(trained(), tmp_path)
    flags = [c for c in first.columns if c.startswith("is_new_") and c != "is_new_ip_range"]
    mine = first[first["identity"] == CART]
    assert mine["is_new_namespace"].tolist() == [False, False]  # ledger's birth: not new to it
    assert replay[flags].reset_index(drop=True).equals(mine[flags].reset_index(drop=True))


def test_what_the_replay_flags_is_held_with_the_alerting_day(tmp_path):
    state = trained()
    first, replay, windows = scored_monday(state, tmp_path)
    # The backup job brought the range at 09:10: not new to the cart token in the model's input,
    # new to it in the replay, which reads the cart token's events alone.
    assert first.loc[first["identity"] == CART, "is_new_ip_range"].tolist() == [False, False]
    assert replay["is_new_ip_range"].tolist() == [True, True]
    alerted = pd.Series(windows.index.get_level_values("identity") == CART, index=windows.index)
    state.advance(date(2026, 3, 9), windows, alerted)
    tuesday = prepare_events(to_pandas(table([("2026-03-10 09:00", CI, "get", "secrets", "ci", CLOUD, 200)])), "1h")
    assert mark_novelty(tuesday, state.encoder.log_novelty(None))["is_new_ip_range"].tolist() == [True]
