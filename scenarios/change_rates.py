"""How often a cluster changes for ordinary reasons: the rates of :mod:`scenarios.change`.

Every rate is events per week on a busy month of a 50-node cluster with 12 application teams
and 12 people using kubectl. :meth:`ChangeRates.per_day` scales each by what drives it (nodes,
applications or people) for a smaller cluster, so a 4-node test cluster does not replace its
whole fleet every week.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenarios.cluster import ClusterSpec

#: The reference cluster the default rates describe.
REFERENCE = {"nodes": 50, "apps": 12, "people": 12}


def _rate(value: float, driver: str = "") -> float:
    """A per-week rate; ``driver`` (nodes, apps, people) scales it to the cluster's size."""
    return field(default=value, metadata={"driver": driver})


@dataclass(frozen=True)
class ChangeRates:
    """Benign changes per week (see the module docstring for the reference cluster)."""

    # Spot interruptions and AMI refreshes of managed node groups replace ~1 in 5 nodes a week.
    node_replaced: float = _rate(10.0, "nodes")
    # The cluster autoscaler adds nodes for weekday peaks and removes idle ones at night.
    node_added: float = _rate(12.0, "nodes")
    node_removed: float = _rate(12.0, "nodes")
    # Each team ships ~3 times a week; a rollout gives every pod of the app a new IP.
    rollout: float = _rate(36.0, "apps")
    # A growing organisation onboards a team (namespace + service account) every other week.
    team_onboarded: float = _rate(0.5)
    # ... and decommissions a service about once a month.
    sa_retired: float = _rate(0.25, "apps")
    # About one hire and one leaver a month in a team of 12.
    new_hire: float = _rate(0.25, "people")
    leaver: float = _rate(0.2, "people")
    # STS sessions expire after 1-12 h; a person signs in afresh (new access key) most days.
    new_iam_session: float = _rate(30.0, "people")
    # Laptops are replaced every ~2-3 years each: a new OS/arch in the user agent.
    new_laptop: float = _rate(0.1, "people")
    # People work from home, a phone hotspot or through a VPN exit a few days a month each.
    remote_address: float = _rate(12.0, "people")
    # Homebrew and package managers pick up kubectl's monthly patch releases: each person
    # runs a new kubectl build about once a month.
    kubectl_upgrade: float = _rate(3.0, "people")
    # Client libraries and add-ons move to new versions (a new user agent) ~twice a month.
    client_upgrade: float = _rate(0.5, "apps")
    # An on-call rotation is woken about once a week.
    oncall_night: float = _rate(1.0)
    # A break-glass role is used (or drilled) about once a quarter.
    break_glass: float = _rate(1 / 13)
    # Some CI jobs run on hosted runners (a leased cloud address per run) rather than behind NAT.
    hosted_ci_run: float = _rate(15.0, "apps")
    # A new pipeline (a new CI identity) appears about once a month.
    new_pipeline: float = _rate(0.25)
    # Helm/operator installs and upgrades (CRDs, ClusterRoles, bindings, webhooks) every other week.
    operator_install: float = _rate(0.5)
    # CNI, CSI and log-agent DaemonSets are upgraded about twice a month.
    daemonset_upgrade: float = _rate(0.5)
    # cert-manager renews a batch of certificates weekly.
    cert_rotation: float = _rate(1.0)
    # A bad deploy now and then: crash-looping pods retrying with 404/409 storms.
    bad_deploy: float = _rate(0.5, "apps")
    # Typos and stale names: kubectl calls that end in 404/409 for people.
    client_errors: float = _rate(10.0, "people")
    # Control-plane patching or scaling restarts an API server; every client relists.
    apiserver_restart: float = _rate(0.5)

    @classmethod
    def none(cls) -> ChangeRates:
        """A cluster that never changes (the simulator before issue 15)."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def scaled(self, factor: float) -> ChangeRates:
        """Every rate times ``factor`` (0 freezes the cast, 2 is a hectic month)."""
        if factor < 0:
            raise ValueError(f"a change rate factor cannot be negative, got {factor}")
        return ChangeRates(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def per_day(self, spec: ClusterSpec) -> dict[str, float]:
        """Expected events a day of each change on a cluster of ``spec``'s size."""
        size = {"nodes": spec.nodes, "apps": spec.app_namespaces, "people": spec.humans}
        out = {}
        for f in fields(self):
            driver = f.metadata["driver"]
            scale = size[driver] / REFERENCE[driver] if driver else 1.0
            out[f.name] = getattr(self, f.name) * scale / 7.0
        return out
