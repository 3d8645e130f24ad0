"""Fixtures of the rule tests: SigmaHQ's Kubernetes audit rules beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import REAL_SAMPLES

#: The 16 SigmaHQ rules for Kubernetes audit logs (DRL 1.1): used by path, never copied.
SIGMA_RULES = REAL_SAMPLES.parent / "sigma-rules"


@pytest.fixture(scope="session")
def sigma_rules() -> Path:
    if not SIGMA_RULES.is_dir():
        # As tests/conftest.py's real_samples: under CI a missing ../shared fails, never skips.
        if os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}:
            pytest.fail(f"Sigma rules not found at {SIGMA_RULES}; CI must have ../shared")
        pytest.skip(f"Sigma rules not found at {SIGMA_RULES}")
    return SIGMA_RULES
