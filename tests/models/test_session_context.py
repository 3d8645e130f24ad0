"""A new address is the context of what its session does next, not only of its own hour.

The story (the 50-node evaluation's seed 3, made small): a platform admin's stolen session is
used from a phone network abroad. At 10:24 the intruder's kubectl asks for ``/api`` and
``/apis``; at 11:05 it lists secrets in two namespaces, which the admin never does. The
address is new in the 10:00 window, where nothing unusual happens, so it weighed nothing;
by 11:00 it was known, so the secrets read stood alone. The novelty now counts once, with
the most unusual act that follows it in the admin's day.
"""

from __future__ import annotations

import pandas as pd
import pytest

from models.rarity import ActionRarity
from tests.models.test_rarity import ADMIN, history, windows

DAY = 4 * 24  # the day after the three days of history (hour 0 = 2026-03-02)
ABROAD = {"new_source_ip": 1.0, "new_ip_range": 1.0}
SECRETS = {"n_secret_names": 6.0, "n_secret_namespaces": 2.0}


@pytest.fixture(scope="module")
def rarity() -> ActionRarity:
    return ActionRarity().fit(history())


def terms(rarity: ActionRarity, rows) -> pd.DataFrame:
    frame = windows(rows)
    starts = frame.index.get_level_values("window_start")
    return pd.DataFrame(rarity.transform(frame), index=starts, columns=rarity.terms_)


def test_a_new_address_raises_the_secrets_its_session_lists_an_hour_later(rarity):
    session = terms(rarity, [(ADMIN, DAY + 10, ABROAD), (ADMIN, DAY + 11, SECRETS), (ADMIN, DAY + 12, {})])
    at_home = terms(rarity, [(ADMIN, DAY + 10, {}), (ADMIN, DAY + 11, SECRETS), (ADMIN, DAY + 12, {})])

    listing = session.iloc[1]
    assert listing["new_source_ip"] > 1.0 and listing["new_ip_range"] > 1.0
    assert listing.sum() > at_home.iloc[1].sum() + 2.0
    # Counted once: not in the quiet hour it appeared in, nor in the hour after.
    assert session.iloc[0].sum() == 0.0 and session.iloc[2].sum() == 0.0


def test_a_novelty_stays_with_its_day_and_its_identity(rarity):
    """The next morning's secrets read, or another admin's, is not raised by it."""
    other = ADMIN.replace("alice", "bob")
    next_day = terms(rarity, [(ADMIN, DAY + 10, ABROAD), (ADMIN, DAY + 24 + 9, SECRETS), (other, DAY + 11, SECRETS)])
    assert next_day.iloc[1][["new_source_ip", "new_ip_range"]].sum() == 0.0
    assert next_day.iloc[2][["new_source_ip", "new_ip_range"]].sum() == 0.0
