"""An informer's relist is not new: a list and a watch of one kind are one read.

The story: kube-controller-manager's shared informers have watched pods, secrets and nodes for
weeks, each watch re-opened every few minutes; the lists that started them happened before the
history began. Saturday 22:00 the API server restarts and every informer lists its kind again.
Observed on the simulated quick suite (seed 2) before this: four identities "do for the first
time: list pods, list replicasets, watch pods", alerts on an attack-free day. A list of what an
identity already watches reads nothing it did not read before; a list of a kind it never read
(secrets, for an identity that watched only pods) is still new, and so is a first watch of it.
"""

from __future__ import annotations

import pickle

import pandas as pd

from features.first_seen import FirstSeenEncoder

ATTRS = (("verb_resource", "verb_resource"),)
KCM = "system:kube-controller-manager"


def events(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    who, verb_resource, when = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "identity": list(who),
            "verb_resource": list(verb_resource),
            "window_start": pd.to_datetime(list(when), utc=True),
        }
    )


HISTORY = events(
    [(KCM, "watch pods", f"2026-03-{d:02d} 10:00") for d in range(1, 14)] + [(KCM, "list nodes", "2026-03-01 00:00")]
)
RESTART = events(
    [
        (KCM, "list pods", "2026-03-14 22:00"),  # the relist of a kind it watches
        (KCM, "watch nodes", "2026-03-14 22:00"),  # a watch of a kind it listed
        (KCM, "list secrets", "2026-03-14 22:00"),  # a kind it never read
        (KCM, "watch configmaps", "2026-03-14 22:00"),
    ]
)


def test_an_informers_relist_after_a_restart_is_not_new_but_a_first_read_of_a_kind_is():
    flags = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).transform(RESTART)[:, 0]
    assert flags.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_a_get_is_not_a_list():
    """Reading one named object says nothing about reading every object of the kind."""
    flags = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).transform(events([(KCM, "get pods", "2026-03-14 22:00")]))
    assert flags[:, 0].tolist() == [1.0]


def test_an_encoder_saved_before_informer_reads_keeps_the_keys_it_learned():
    """Its sets hold 'watch pods' as such: keyed as a list now, every watch would look new once."""
    old = FirstSeenEncoder(attributes=ATTRS).set_params(informer_reads=False).fit(HISTORY)
    state = old.__getstate__()
    del state["informer_reads"]  # as pickled before the parameter existed
    loaded = pickle.loads(pickle.dumps(old))
    loaded.__dict__.clear()
    loaded.__setstate__(state)
    assert loaded.get_params()["informer_reads"] is False
    today = events([(KCM, "watch pods", "2026-03-14 10:00"), (KCM, "list pods", "2026-03-14 22:00")])
    assert loaded.transform(today)[:, 0].tolist() == [0.0, 1.0]
