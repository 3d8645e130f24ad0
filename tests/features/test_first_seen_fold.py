"""The encoder logs what each window introduced, and learns only the windows it is told to.

The story: ci-bot has always called from 10.0.1.5. This morning it calls from 10.0.1.5 at
midnight and from 192.0.2.9 at one; bob, never seen before, shows up at one too.
"""

from __future__ import annotations

import copy

import pandas as pd

from features.first_seen import FirstSeenEncoder
from features.novelty_log import NoveltyLog

ATTRS = (("source_ip", "source_ip"),)


def events(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    who, ip, when = zip(*rows, strict=True)
    return pd.DataFrame(
        {"identity": list(who), "source_ip": list(ip), "window_start": pd.to_datetime(list(when), utc=True)}
    )


HISTORY = events([("ci-bot", "10.0.1.5", "2026-03-01 00:00"), ("ci-bot", "10.0.1.5", "2026-03-01 05:00")])
TODAY = events(
    [
        ("ci-bot", "10.0.1.5", "2026-03-02 00:00"),
        ("ci-bot", "192.0.2.9", "2026-03-02 01:00"),
        ("bob", "198.51.100.7", "2026-03-02 01:00"),
    ]
)


def test_copies_of_an_encoder_log_to_one_log_what_each_window_introduced():
    log = NoveltyLog()
    encoder = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).log_novelty(log)
    copy.deepcopy(encoder).transform(TODAY)  # scoring works on copies; the log is shared
    logged = log.frame()
    one_am = pd.Timestamp("2026-03-02 01:00", tz="UTC").value
    assert set(zip(logged["identity"], logged["window_start"], strict=True)) == {("ci-bot", one_am), ("bob", one_am)}
    # ci-bot introduced an address and an address range; bob an address, himself and a range
    assert logged.groupby("identity").size().to_dict() == {"bob": 3, "ci-bot": 2}


def test_folding_one_window_makes_its_values_usual_and_leaves_the_others_new():
    log = NoveltyLog()
    scored = copy.deepcopy(FirstSeenEncoder(attributes=ATTRS).fit(HISTORY)).log_novelty(log)
    scored.transform(TODAY)
    learned = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY)
    logged = log.frame()
    learned.fold(logged[logged["identity"] == "ci-bot"])
    flags = learned.transform(TODAY)
    assert flags[1].tolist() == [0.0, 0.0, 0.0]  # ci-bot's new address: learned
    assert flags[2].tolist() == [1.0, 1.0, 1.0]  # bob and his address: still new


def test_an_encoder_without_a_log_logs_nothing_and_a_copy_keeps_no_log_of_its_own():
    log = NoveltyLog()
    plain = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY)
    plain.transform(TODAY)
    copy.deepcopy(plain).log_novelty(log).log_novelty(None).transform(TODAY)
    assert log.frame().empty
