"""Simulated clusters shared by the scenario tests (built once per test session)."""

from __future__ import annotations

import pytest
from sim_data import SMALL, read_events, read_labels
from support import built_once

from scenarios.attacks import ATTACKS
from scenarios.simulate import simulate


@pytest.fixture(scope="session", params=["loud", "quiet"])
def attacked(request, tmp_path_factory):
    """Two days of a small cluster, every attack injected on day 2 in one variant."""

    def build() -> dict:
        out = tmp_path_factory.mktemp(f"sim-{request.param}")
        result = simulate(out, days=2, attacks=list(ATTACKS), variant=request.param, seed=11, spec=SMALL)
        return {
            "variant": request.param,
            "result": result,
            "events": read_events(result.files),
            "labels": read_labels(result.labels),
        }

    # Scenario test files on both workers use each variant: simulated once per session.
    return built_once(tmp_path_factory, f"attacked-{request.param}", build)
