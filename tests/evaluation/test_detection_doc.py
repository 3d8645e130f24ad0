"""The committed docs/detection.json is complete, and docs/detection.md is what it renders to.

The same for docs/full/ (`make eval-full`, 50 nodes). Cheap (no simulation): each command
writes both from one run; editing either by hand, or changing the renderer without rerunning
them, fails here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from evaluation.outputs import method_link
from evaluation.render import render
from evaluation.schema import missing_fields

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = pytest.mark.parametrize("docs", [DOCS, DOCS / "full"], ids=["quick", "full"])


def _doc(docs: Path = DOCS) -> dict:
    return json.loads((docs / "detection.json").read_text())


@PAGES
def test_the_committed_json_parses_and_has_every_field_of_the_schema(docs):
    doc = _doc(docs)
    assert missing_fields(doc) == []
    assert doc["generated_by"].startswith("make eval")
    assert len(doc["seeds"]) >= 3
    assert all(len(s["attack_free_days"]) >= 7 for s in doc["seeds"])


def test_a_missing_field_is_named_by_its_path():
    doc = _doc()
    broken = copy.deepcopy(doc)
    del broken["seeds"][1]["attacks"][0]["detector"]["identity_rank"]
    del broken["aggregate"]["alerts_per_attack_free_day"]
    assert missing_fields(broken) == [
        "seeds[1].attacks[0].detector.identity_rank",
        "aggregate.alerts_per_attack_free_day",
    ]


@PAGES
def test_detection_md_is_what_the_json_renders_to(docs):
    assert (docs / "detection.md").read_text() == render(_doc(docs), method_link(docs))


def test_a_page_in_a_subfolder_links_to_the_method_one_level_up():
    assert method_link(DOCS) == "method.md"
    assert method_link(DOCS / "full") == "../method.md"


@PAGES
def test_every_seed_has_its_plot(docs):
    for seed in _doc(docs)["seeds"]:
        assert (docs / "detection" / f"seed-{seed['seed']}.png").is_file()
