"""A namespace's birth is not news to those who bring it to life.

The story: for weeks the shop has run on kubelets a and b, argocd has synced it, and bob has
worked in payments. Monday 09:16 the CI deployer onboards a new team: it creates the ledger
namespace, its service account, secrets and deployment; argocd's application controller picks
the app up and kubelets a and b read the new pods' secrets, all within the hour. Each of them
touches ledger for the first time because ledger did not exist, not because it does something
it never did: none is in a namespace new to it. Seen on the simulated quick suite (seed 2)
before this: four benign identity-days of an attack-free day alerted on that context alone.

What is still new: alice's first access to payments (the cluster knows it, she never worked
there), prometheus's first scrape of ledger an hour after its birth (judged as any other first
access), and a stolen token listing secrets in vault, a namespace nobody used while the
history was recorded: unseen is not unborn, only a window that creates something in a
namespace the cluster never saw is its birth.
"""

from __future__ import annotations

import pickle
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.schema import EVENT_SCHEMA
from features.first_seen import FirstSeenEncoder
from features.novelty_log import NoveltyLog
from features.precedent import POPULATED, populated_namespaces
from pipelines.day_windows import explained_events

ATTRS = (("namespace", "target_namespace"),)
CI = "system:serviceaccount:ci:deployer"
ARGOCD = "system:serviceaccount:argocd:argocd-application-controller"
PROMETHEUS = "system:serviceaccount:monitoring:prometheus"
CART = "system:serviceaccount:shop:cart"


def _action(verb: str) -> tuple[str, str, str | None]:
    """(verb, resource, subresource) of "create pods/exec", "get secrets" or "get" (configmaps)."""
    verb, _, target = verb.partition(" ")
    resource, _, sub = (target or "configmaps").partition("/")
    return verb, resource, sub or None


def events(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    """(identity, verb, namespace, window start, response code) per event, as the encoder reads
    them; a verb may name its resource and subresource (:func:`_action`)."""
    who, verb, ns, when, code = zip(*rows, strict=True)
    action, resource, sub = zip(*map(_action, verb), strict=True)
    frame = pd.DataFrame(
        {
            "identity": list(who),
            "verb": list(action),
            "target_resource": list(resource),
            "target_subresource": list(sub),
            "target_namespace": list(ns),
            "target_name": None,
            "window_start": pd.to_datetime(list(when), utc=True),
            "response_code": list(code),
        }
    )
    frame[POPULATED] = populated_namespaces(frame)
    return frame


HISTORY = events(
    [
        ("system:node:a", "get", "shop", "2026-03-01 00:00", 200),
        ("system:node:b", "get", "shop", "2026-03-01 00:00", 200),
        (ARGOCD, "list", "shop", "2026-03-01 00:00", 200),
        ("bob", "get", "payments", "2026-03-01 09:00", 200),
        ("alice", "get", "web", "2026-03-01 09:00", 200),
        (PROMETHEUS, "list", "shop", "2026-03-01 09:00", 200),
        (CART, "get", "shop", "2026-03-01 09:00", 200),
    ]
)
MONDAY = events(
    [
        (CI, "create", "ledger", "2026-03-09 09:00", 201),  # the namespace's first objects
        (ARGOCD, "list", "ledger", "2026-03-09 09:00", 200),
        ("system:node:a", "get", "ledger", "2026-03-09 09:00", 200),
        ("system:node:b", "get", "ledger", "2026-03-09 09:00", 200),
        ("alice", "get", "payments", "2026-03-09 09:00", 200),  # known to the cluster, not to her
        (PROMETHEUS, "list", "ledger", "2026-03-09 10:00", 200),  # an hour after the birth
        (CART, "list", "vault", "2026-03-09 11:00", 403),  # never seen, and nothing created
        (CART, "list", "vault", "2026-03-09 11:00", 200),
    ]
)
#: MONDAY's rows, by who: new to them or not.
NEW_ON_MONDAY = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]


def new_namespace(encoder: FirstSeenEncoder, today: pd.DataFrame) -> list[float]:
    return encoder.transform(today)[:, 0].tolist()


def test_those_who_bring_a_namespace_to_life_are_not_in_a_namespace_new_to_them():
    assert new_namespace(FirstSeenEncoder(attributes=ATTRS).fit(HISTORY), MONDAY) == NEW_ON_MONDAY


def test_without_namespace_births_every_first_access_is_new():
    encoder = FirstSeenEncoder(attributes=ATTRS, namespace_births=False).fit(HISTORY)
    assert new_namespace(encoder, MONDAY) == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_a_namespace_is_born_once_the_day_after_a_first_access_is_new():
    """Dave joins the ledger team on Tuesday: the cluster knows ledger by then."""
    encoder = FirstSeenEncoder(attributes=ATTRS).fit(pd.concat([HISTORY, MONDAY], ignore_index=True))
    tuesday = events(
        [("dave", "create", "ledger", "2026-03-10 09:00", 201), (ARGOCD, "list", "ledger", "2026-03-10 09:00", 200)]
    )
    assert new_namespace(encoder, tuesday) == [1.0, 0.0]


def test_replaying_history_window_by_window_gives_the_flags_of_one_pass():
    """Training replays history chunk by chunk (transform, then partial_fit): a birth is judged
    in the window it happens in, whichever chunk holds it."""
    whole = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).transform(MONDAY)[:, 0]
    chunked = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY)
    parts = [chunked.transform_then_learn(chunk)[:, 0] for _, chunk in MONDAY.groupby("window_start", sort=True)]
    assert np.concatenate(parts).tolist() == whole.tolist() == NEW_ON_MONDAY


def test_the_novelty_log_teaches_a_day_state_what_partial_fit_teaches():
    """Excused first accesses are not flagged, but the day introduced them: folding its log
    learns them and the namespace, so Tuesday's argocd sync of ledger is not new either."""
    log = NoveltyLog()
    scored = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).log_novelty(log)
    scored.transform(MONDAY)
    folded = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).fold(log.frame())
    replayed = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).partial_fit(MONDAY)
    assert [_keys(s) for s in folded.key_sets()] == [_keys(s) for s in replayed.key_sets()]


def _keys(hashes) -> list[int]:
    return sorted(np.concatenate([*hashes._runs, np.zeros(0, dtype=np.uint64)]).tolist())


def test_an_encoder_saved_before_namespace_births_keeps_its_old_judgement():
    """It never learned the cluster's namespaces: to it every namespace would look unborn."""
    old = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY)
    state = old.__getstate__()
    del state["namespace_births"], state["namespaces_"]  # as pickled before
    loaded = pickle.loads(pickle.dumps(old))
    loaded.__dict__.clear()
    loaded.__setstate__(state)
    assert loaded.get_params()["namespace_births"] is False and loaded.births_column() is None
    assert new_namespace(loaded, MONDAY) == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def _spill(tmp_path, rows: list[tuple[str, str, str, str, int]]):
    """Monday's events as the scoring pass spills them (the event table's schema)."""
    table = pa.Table.from_pylist(
        [
            {
                "audit_id": f"e{i}",
                "timestamp": pd.Timestamp(when, tz="UTC").to_pydatetime(),
                "identity": who,
                "verb": _action(verb)[0],
                "target_resource": _action(verb)[1],
                "target_subresource": _action(verb)[2],
                "target_namespace": ns,
                "response_code": code,
                "stage": "ResponseComplete",
            }
            for i, (who, verb, ns, when, code) in enumerate(rows)
        ],
        schema=EVENT_SCHEMA,
    )
    pq.write_table(table, tmp_path / "events.parquet")
    return tmp_path / "events.parquet"


def test_an_explanation_replays_the_birth_it_did_not_see(tmp_path):
    """Explaining reads back only the explained identities' events; the namespace's birth is
    the CI deployer's. Prometheus's first scrape an hour later was new in the model's input, and
    must be explained as new; kubelet a's read in the birth window must not be."""
    rows = [
        (CI, "create", "ledger", "2026-03-09 09:16", 201),
        ("system:node:a", "get", "ledger", "2026-03-09 09:17", 200),
        (PROMETHEUS, "list", "ledger", "2026-03-09 10:05", 200),
    ]
    encoder = FirstSeenEncoder().fit(
        HISTORY.assign(source_ip="10.0.1.5", timestamp=HISTORY["window_start"]).drop(columns=[POPULATED])
    )
    bundle = SimpleNamespace(window="1h")
    marked = explained_events(_spill(tmp_path, rows), [PROMETHEUS, "system:node:a"], bundle, encoder)
    flags = dict(zip(marked["identity"], marked["is_new_namespace"], strict=True))
    assert flags == {"system:node:a": False, PROMETHEUS: True}


def _saved_before(encoder: FirstSeenEncoder) -> FirstSeenEncoder:
    """``encoder`` as loaded from a pickle made before namespace births (no parameter, no set)."""
    state = encoder.__getstate__()
    del state["namespace_births"], state["namespaces_"]
    loaded = FirstSeenEncoder.__new__(FirstSeenEncoder)
    loaded.__setstate__(state)
    return loaded


def test_a_day_state_saved_before_namespace_births_learns_a_lake_day():
    """The lake engine scores against a table of the state's keys (engine/score.py); the encoder
    made from it must not keep a set of namespaces the state cannot fold back."""
    from engine.score import StateTable
    from models.day_state import DayState

    state = DayState(_saved_before(FirstSeenEncoder(attributes=ATTRS).fit(HISTORY)), model="m", cluster="c")
    scoring = state.encoder
    tasks = StateTable.of(scoring).encoder().log_novelty(scoring.novelty_log_)
    assert new_namespace(tasks, MONDAY) == [1.0] * len(MONDAY)  # its old judgement
    windows = pd.DataFrame(index=pd.MultiIndex.from_frame(MONDAY[["identity", "window_start"]]).unique())
    state.advance(date(2026, 3, 9), windows, pd.Series(False, index=windows.index))
    assert new_namespace(state.encoder, MONDAY) == [0.0] * len(MONDAY)  # Monday learned


def test_a_create_in_one_namespace_brings_no_other_to_life():
    """The CI deployer onboards ledger while a stolen token lists the secrets of vault, in the
    same hour: vault is as unseen as ledger, but nothing was created in it."""
    today = events(
        [
            (CI, "create", "ledger", "2026-03-09 09:00", 201),
            ("system:node:a", "get", "ledger", "2026-03-09 09:00", 200),
            (CART, "list secrets", "vault", "2026-03-09 09:00", 200),
        ]
    )
    assert new_namespace(FirstSeenEncoder(attributes=ATTRS).fit(HISTORY), today) == [0.0, 0.0, 1.0]


def test_an_exec_or_a_token_minted_in_a_namespace_brings_it_no_life():
    """A stolen token execs into a pod in vault, a namespace nobody used, and mints a token for
    its service account; a second stolen identity reads vault's secrets that hour. Both are
    allowed creates in an unseen namespace, but each acts on an object already there: nothing
    was brought to life, and every first access to vault stays new."""
    today = events(
        [
            (CART, "create pods/exec", "vault", "2026-03-09 11:00", 201),
            (CART, "create serviceaccounts/token", "vault", "2026-03-09 11:00", 201),
            (CART, "create pods/portforward", "vault", "2026-03-09 11:00", 201),
            ("alice", "get secrets", "vault", "2026-03-09 11:00", 200),
        ]
    )
    assert today[POPULATED].isna().all()
    assert new_namespace(FirstSeenEncoder(attributes=ATTRS).fit(HISTORY), today) == [1.0, 1.0, 1.0, 1.0]


def test_a_day_state_learns_the_namespaces_an_alerting_day_showed_it():
    """Monday the stolen cart token lists vault's secrets, a namespace nobody used, and its day
    alerts: what it did there is held back until a person accepts it (models/day_state.py). That
    vault exists is learned all the same: a namespace's existence is a fact about the cluster,
    not a behaviour of the token, and knowing it only makes the encoder stricter (a namespace
    known is never born again). Held back, vault would look unborn on Tuesday, and a pod the
    token creates there would excuse its next read, and everyone's."""
    from models.day_state import DayState

    state = DayState(FirstSeenEncoder(attributes=ATTRS).fit(HISTORY), model="m", cluster="c")
    monday = events([(CART, "list secrets", "vault", "2026-03-09 11:00", 200)])
    assert new_namespace(state.encoder, monday) == [1.0]
    windows = pd.DataFrame(index=pd.MultiIndex.from_frame(monday[["identity", "window_start"]]).unique())
    state.advance(date(2026, 3, 9), windows, pd.Series(True, index=windows.index))
    assert list(state.held) == [(CART, date(2026, 3, 9))]
    tuesday = events(
        [
            (CART, "create pods", "vault", "2026-03-10 11:00", 201),
            (CART, "list secrets", "vault", "2026-03-10 11:00", 200),
            ("alice", "get secrets", "vault", "2026-03-10 11:00", 200),
        ]
    )
    assert new_namespace(state.encoder, tuesday) == [1.0, 1.0, 1.0]
