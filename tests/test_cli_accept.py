"""The day state in the daily job: `kaad score` keeps it, refuses days out of order, and
`kaad accept` teaches the model a finding a person has looked at.

The story: the session's small simulated cluster, trained on days 1-7. Day 8 carries five loud
attacks; the attackers' identity-days alert and are held back; the analyst decides one of them
was a colleague's sanctioned test and accepts it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from features.featurise import featurise_history
from models.day_state import DayState, model_key
from models.persistence import save_bundle
from models.state_store import load_state, save_state, state_path
from pipelines.ingest import ingest

runner = CliRunner()


def _day_of(path: str) -> date:
    events = ingest([path]).events
    assert events is not None
    return pd.Timestamp(events["timestamp"].min()).date()


@pytest.fixture
def scored_state(trained, tmp_path, monkeypatch):
    """Day 8 folded into a fresh state the way scoring does it, the attackers' days alerting."""
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    bundle = trained["result"].bundle
    bundle_path = tmp_path / "model.joblib"
    save_bundle(bundle, bundle_path, key=b"")
    events = ingest([trained["files"][-1]]).events
    assert events is not None
    state = DayState.from_bundle(bundle, "default")
    day = pd.Timestamp(events["timestamp"].min()).date()
    windows, _ = featurise_history([events.sort_values("timestamp", kind="stable")], encoder=state.encoder)
    labels = pd.read_csv(trained["labels"])
    attackers = set(labels.loc[~labels["scenario"].str.startswith("benign_"), "identity"])
    state.check_day(day)
    state.advance(
        day, windows, pd.Series(windows.index.get_level_values("identity").isin(attackers), index=windows.index)
    )
    path = state_path(tmp_path / "state", model_key(bundle), "default")
    save_state(state, path, key=b"")
    return {"bundle": bundle_path, "path": path, "day": day, "held": sorted(state.held)}


def test_kaad_accept_learns_a_held_finding_and_says_so(scored_state, tmp_path):
    identity, day = scored_state["held"][0]
    args = ["accept", identity, "--day", str(day), "--bundle", str(scored_state["bundle"])]
    accepted = runner.invoke(app, [*args, "--state-dir", str(tmp_path / "state")])
    assert accepted.exit_code == 0, accepted.output
    assert f"accepted {identity} on {day}:" in accepted.stdout and str(scored_state["path"]) in accepted.stdout
    left = load_state(scored_state["path"], key=b"")
    assert (identity, day) not in left.held and len(left.held) == len(scored_state["held"]) - 1
    # Accepting it twice: nothing is held any more, and the message says so.
    again = runner.invoke(app, [*args, "--state-dir", str(tmp_path / "state")])
    assert again.exit_code == 2
    assert f"nothing of {identity!r} on {day} is held back" in again.stderr


def test_kaad_accept_list_shows_what_is_held_until_it_is_accepted(scored_state, tmp_path):
    """Before accepting, the analyst asks what the state holds back: one line per held
    identity-day, oldest first, with how many windows and new values it would teach."""
    common = ["--bundle", str(scored_state["bundle"]), "--state-dir", str(tmp_path / "state")]
    listed = runner.invoke(app, ["accept", "--list", *common])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[-1] == f"{len(scored_state['held'])} held identity-day(s) in {scored_state['path']}"
    held = load_state(scored_state["path"], key=b"").held
    for identity, day in scored_state["held"]:
        h = held[(identity, day)]
        assert f"{day}  {identity}: {len(h.windows)} window(s), {len(h.novelty)} new value(s)" in lines
    identity, day = scored_state["held"][0]
    assert runner.invoke(app, ["accept", identity, "--day", str(day), *common]).exit_code == 0
    after = runner.invoke(app, ["accept", "--list", *common]).stdout
    assert f"{day}  {identity}:" not in after
    assert f"{len(scored_state['held']) - 1} held identity-day(s)" in after
    # Neither a finding nor --list: the command says what it needs.
    bare = runner.invoke(app, ["accept", *common])
    assert bare.exit_code == 2 and "give the finding's IDENTITY and --day (or --list" in bare.stderr


def test_kaad_accept_without_a_state_says_where_it_looked(scored_state, tmp_path):
    result = runner.invoke(
        app,
        [
            "accept",
            "alice",
            "--day",
            "2026-03-02",
            "--bundle",
            str(scored_state["bundle"]),
            "--state-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "no day state of bundle" in result.stderr and "for cluster 'default'" in result.stderr


def test_kaad_score_keeps_the_state_and_refuses_days_out_of_order(trained, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    bundle_path = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle_path, key=b"")
    files = trained["files"]
    common = ["--bundle", str(bundle_path), "--out", str(tmp_path / "s"), "--no-track", "--format", "csv"]
    first = runner.invoke(app, ["score", files[-1], *common])
    assert first.exception is None or isinstance(first.exception, SystemExit), first.exception
    assert first.exit_code in (0, 1), first.output
    path = state_path(tmp_path / "s" / "state", model_key(trained["result"].bundle), "default")
    assert load_state(path, key=b"").last_day == _day_of(files[-1])
    again = runner.invoke(app, ["score", files[-1], *common])
    assert again.exit_code == 2
    assert "was already scored with this model" in again.stderr and "--force-day" in again.stderr
    inside = runner.invoke(app, ["score", files[-2], *common])
    assert inside.exit_code == 2
    assert "out of order" in inside.stderr
    forced = runner.invoke(app, ["score", files[-1], *common, "--force-day"])
    assert forced.exit_code in (0, 1), forced.output
