"""State that moves with the days: what a quiet day introduced is usual the next morning, what
an alerting day introduced stays new until a person accepts it.

The story: a cluster is trained on 2 and 3 March. Two kubelets (node-a, node-b) renew their
leases from their node addresses and ci-bot reads configmaps from its runner. On 4 March node-c
joins (a replaced node, doing what every kubelet does) and alice, a platform engineer, works
from a hotel address she has never used; her day alerts. On 5 March both come back.
"""

from __future__ import annotations

import json
import types
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from errors import DayOrderError, KaadError, ModelCompatibilityError, ModelSignatureError
from features.featurise import featurise_history
from models.day_state import DayState, model_key
from models.rarity import ActionRarity
from models.state_store import load_state, open_state, save_state, state_path
from pipelines.ingest import ingest

NODE = "system:node:ip-10-0-1-{}.eu-west-1.compute.internal"
CI = "system:serviceaccount:ci:ci-bot"
ALICE = "alice"
HOTEL = "203.0.113.9"
KEY = b"0123456789abcdef0123456789abcdef"


def event(who: str, ip: str, when: str, *, verb: str = "get", resource: str = "configmaps", ns: str = "shop") -> dict:
    """One ResponseComplete audit event, as the API server writes it."""
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"{who}-{when}-{verb}-{resource}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{ns}/{resource}",
        "verb": verb,
        "user": {"username": who, "groups": ["system:authenticated"]},
        "sourceIPs": [ip],
        "userAgent": "kubelet/v1.29.10" if who.startswith("system:node:") else "kubectl/v1.29.1",
        "objectRef": {"resource": resource, "apiVersion": "v1", "namespace": ns},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": f"{when}Z",
        "stageTimestamp": f"{when}Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }


def usual_day(day: str, nodes=("a", "b")) -> list[dict]:
    """Kubelets renew their leases every hour; ci-bot reads a configmap every hour."""
    out = []
    for hour in range(0, 24, 3):
        when = f"{day}T{hour:02d}:10:00.000000"
        for i, n in enumerate(nodes):
            out.append(
                event(NODE.format(n), f"10.0.1.{10 + i}", when, verb="update", resource="leases", ns="kube-node-lease")
            )
        out.append(event(CI, "10.0.2.5", when))
    return out


def alice_from(ip: str, day: str) -> list[dict]:
    return [event(ALICE, ip, f"{day}T{h:02d}:30:00.000000", resource="pods") for h in (9, 10)]


def frame(events: list[dict], tmp_path: Path):
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    table = ingest([str(path)]).events
    assert table is not None, "ingest collects by default"
    return table.sort_values("timestamp", kind="stable")


@pytest.fixture
def bundle(tmp_path):
    """What training on 2-3 March leaves: an encoder, action rarity, the training end."""
    history = frame(usual_day("2026-03-02") + usual_day("2026-03-03") + alice_from("10.9.0.4", "2026-03-03"), tmp_path)
    windows, encoder = featurise_history([history])
    return types.SimpleNamespace(
        encoder=encoder,
        rarity=ActionRarity().fit(windows),
        created="2026-03-04T01:00:00+00:00",
        training_start="2026-03-02 00:00:00+00:00",
        training_end="2026-03-03 23:00:00+00:00",
        threshold=1.0,
        n_windows=len(windows),
        n_events=len(history),
        window="1h",
        feature_names=list(windows.columns),
        params={"seed": 1},
    )


def score(state: DayState, events, day: date, alerting: set[str]) -> pd.DataFrame:
    """What score_batches does with a state (contract B), the detector's verdict given."""
    state.check_day(day)
    windows, _ = featurise_history([events], encoder=state.encoder)
    alerted = pd.Series(windows.index.get_level_values("identity").isin(list(alerting)), index=windows.index)
    state.advance(day, windows, alerted)
    return windows


def novelty(windows: pd.DataFrame, identity: str) -> dict[str, float]:
    mine = windows.xs(identity, level="identity")
    return {"new_identity": mine["new_identity"].max(), "new_source_ip": mine["new_source_ip"].max()}


def test_a_new_nodes_values_seen_on_a_quiet_day_are_not_new_the_next_morning(bundle, tmp_path):
    state = DayState.from_bundle(bundle, "prod")
    day1 = score(state, frame(usual_day("2026-03-04", nodes="abc"), tmp_path), date(2026, 3, 4), alerting=set())
    assert novelty(day1, NODE.format("c")) == {"new_identity": 1.0, "new_source_ip": 1.0}
    day2 = score(state, frame(usual_day("2026-03-05", nodes="abc"), tmp_path), date(2026, 3, 5), alerting=set())
    assert novelty(day2, NODE.format("c")) == {"new_identity": 0.0, "new_source_ip": 0.0}
    assert state.last_day == date(2026, 3, 5)


def test_without_the_state_the_same_node_would_be_new_every_morning(bundle, tmp_path):
    frozen = DayState.from_bundle(bundle, "prod")  # never advanced: the v1 daily job
    windows, _ = featurise_history([frame(usual_day("2026-03-05", nodes="abc"), tmp_path)], encoder=frozen.encoder)
    assert novelty(windows, NODE.format("c")) == {"new_identity": 1.0, "new_source_ip": 1.0}


def test_an_alerted_windows_new_address_stays_new_until_accepted(bundle, tmp_path):
    state = DayState.from_bundle(bundle, "prod")
    day1 = score(
        state, frame(usual_day("2026-03-04") + alice_from(HOTEL, "2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE}
    )
    assert novelty(day1, ALICE)["new_source_ip"] == 1.0
    # The next morning alice is quiet from the same address: still new, and not learned by waiting.
    day2 = score(
        state, frame(usual_day("2026-03-05") + alice_from(HOTEL, "2026-03-05"), tmp_path), date(2026, 3, 5), set()
    )
    assert novelty(day2, ALICE)["new_source_ip"] == 1.0
    assert list(state.held) == [(ALICE, date(2026, 3, 4))]
    # Her quiet day did not teach it either: on the 6th it is new again.
    sixth = frame(usual_day("2026-03-06") + alice_from(HOTEL, "2026-03-06"), tmp_path)
    peek, _ = featurise_history([sixth], encoder=state.encoder)
    assert novelty(peek, ALICE)["new_source_ip"] == 1.0
    # A person looks at the finding and accepts it: from then on the address is hers.
    accepted = state.accept(ALICE, date(2026, 3, 4))
    assert len(accepted.windows) == 2
    day3 = score(
        state, frame(usual_day("2026-03-06") + alice_from(HOTEL, "2026-03-06"), tmp_path), date(2026, 3, 6), set()
    )
    assert novelty(day3, ALICE)["new_source_ip"] == 0.0
    assert state.held == {}


def test_alerted_windows_are_not_counted_by_rarity_until_accepted(bundle, tmp_path):
    state = DayState.from_bundle(bundle, "prod")
    before = state.rarity.trials_.loc[ALICE].iloc[0]
    score(state, frame(usual_day("2026-03-04") + alice_from(HOTEL, "2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE})
    assert state.rarity.trials_.loc[ALICE].iloc[0] == before
    assert state.rarity.trials_.loc[CI].iloc[0] > bundle.rarity.trials_.loc[CI].iloc[0]  # quiet windows counted
    state.accept(ALICE, date(2026, 3, 4))
    assert state.rarity.trials_.loc[ALICE].iloc[0] == before + 2


def test_accepting_what_is_not_held_says_what_is(bundle, tmp_path):
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(usual_day("2026-03-04") + alice_from(HOTEL, "2026-03-04"), tmp_path), date(2026, 3, 4), {ALICE})
    with pytest.raises(KaadError, match=r"nothing of 'alice' on 2026-03-05 .*held days of 'alice': 2026-03-04"):
        state.accept(ALICE, date(2026, 3, 5))


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (date(2026, 3, 3), r"day 2026-03-03 is on or before the model's training end \(2026-03-03\)"),
        (date(2026, 3, 1), r"on or before the model's training end"),
    ],
)
def test_a_day_on_or_before_the_training_end_is_refused_unless_forced(bundle, day, message):
    state = DayState.from_bundle(bundle, "prod")
    with pytest.raises(DayOrderError, match=message + r".*--force-day"):
        state.check_day(day)
    DayState.from_bundle(bundle, "prod", force=True).check_day(day)


def test_a_day_scored_again_or_out_of_order_is_refused_unless_forced(bundle, tmp_path):
    state = DayState.from_bundle(bundle, "prod")
    score(state, frame(usual_day("2026-03-05"), tmp_path), date(2026, 3, 5), set())
    with pytest.raises(DayOrderError, match=r"day 2026-03-05 was already scored .*'prod'"):
        state.check_day(date(2026, 3, 5))
    with pytest.raises(DayOrderError, match=r"day 2026-03-04 is out of order: .* up to 2026-03-05"):
        state.check_day(date(2026, 3, 4))
    state.check_day(date(2026, 3, 7))  # a day without logs in between is fine
    state.force = True
    state.check_day(date(2026, 3, 4))


def test_the_state_survives_save_and_load_and_is_refused_when_tampered(bundle, tmp_path, monkeypatch):
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    state = DayState.from_bundle(bundle, "prod", force=True)
    score(
        state,
        frame(usual_day("2026-03-04", nodes="abc") + alice_from(HOTEL, "2026-03-04"), tmp_path),
        date(2026, 3, 4),
        {ALICE},
    )
    path = state_path(tmp_path / "state", state.model, "prod")
    save_state(state, path, key=KEY)
    assert path.with_name(path.name + ".sig").is_file()
    loaded = load_state(path, key=KEY)
    assert (loaded.last_day, list(loaded.held), loaded.force) == (date(2026, 3, 4), [(ALICE, date(2026, 3, 4))], False)
    day2 = score(
        loaded,
        frame(usual_day("2026-03-05", nodes="abc") + alice_from(HOTEL, "2026-03-05"), tmp_path),
        date(2026, 3, 5),
        set(),
    )
    assert novelty(day2, NODE.format("c"))["new_identity"] == 0.0 and novelty(day2, ALICE)["new_source_ip"] == 1.0
    # Signed with another key, or changed after it was saved: refused before it is unpickled.
    with pytest.raises(ModelSignatureError, match="the day state .* valid signature"):
        load_state(path, key=b"another key of sixteen bytes or more")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelCompatibilityError, match="the day state .* does not match its recorded SHA-256"):
        load_state(path, key=KEY)


def test_the_state_is_per_model_and_cluster(bundle, tmp_path, monkeypatch):
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    prod, prod_path = open_state(tmp_path, bundle, "prod")
    score(prod, frame(usual_day("2026-03-04"), tmp_path), date(2026, 3, 4), set())
    save_state(prod, prod_path)
    again, _ = open_state(tmp_path, bundle, "prod")
    staging, staging_path = open_state(tmp_path, bundle, "staging")
    retrained = types.SimpleNamespace(**{**vars(bundle), "created": "2026-03-05T01:00:00+00:00"})
    other_model, other_path = open_state(tmp_path, retrained, "prod")
    assert again.last_day == date(2026, 3, 4)
    assert (staging.last_day, other_model.last_day) == (None, None)
    assert len({prod_path, staging_path, other_path}) == 3
    assert prod_path == tmp_path / model_key(bundle) / "prod.joblib"


def test_a_forced_rerun_of_the_last_day_starts_from_before_it_and_learns_it_once(bundle, tmp_path):
    state = DayState.from_bundle(bundle, "prod")
    day = frame(usual_day("2026-03-04", nodes="abc") + alice_from(HOTEL, "2026-03-04"), tmp_path)
    first = score(state, day, date(2026, 3, 4), {ALICE})
    counted = state.rarity.trials_.loc[CI].iloc[0]
    state.force = True
    rerun = score(state, day, date(2026, 3, 4), {ALICE})
    pd.testing.assert_frame_equal(rerun, first)  # node-c is as new as the first time
    assert state.rarity.trials_.loc[CI].iloc[0] == counted and list(state.held) == [(ALICE, date(2026, 3, 4))]


def test_a_forced_rerun_also_undoes_what_evidence_sources_learned_on_the_state(bundle, tmp_path, monkeypatch):
    """The network baseline of flow logs lives on the state too (flows/source.py): a rerun of the
    day goes back to the baseline from before it, saved and loaded in between."""
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    state = DayState.from_bundle(bundle, "prod")
    state.network_baseline = {"known": ["10.0.0.0/16"]}
    score(state, frame(usual_day("2026-03-04"), tmp_path), date(2026, 3, 4), set())
    state.network_baseline = {"known": ["10.0.0.0/16", "198.51.100.0/24"]}  # what the day's flows taught
    path = state_path(tmp_path / "state", state.model, "prod")
    save_state(state, path)
    loaded, _ = open_state(tmp_path / "state", bundle, "prod", force=True)
    assert loaded.check_day(date(2026, 3, 4)) is True
    assert loaded.network_baseline == {"known": ["10.0.0.0/16"]} and loaded.last_day is None


def test_a_forced_day_inside_training_is_scored_and_teaches_nothing(bundle, tmp_path):
    state = DayState.from_bundle(bundle, "prod", force=True)
    score(state, frame(usual_day("2026-03-03", nodes="abc"), tmp_path), date(2026, 3, 3), set())
    assert state.last_day is None
    state.force = False
    later = score(state, frame(usual_day("2026-03-04", nodes="abc"), tmp_path), date(2026, 3, 4), set())
    assert novelty(later, NODE.format("c"))["new_identity"] == 1.0
