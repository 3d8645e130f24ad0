"""Network evidence per creating identity: what the pods it made (or exec'd into) talked to.

Each term is measured per unit and day, a unit being a workload (its pods share a baseline)
or, for SNATed traffic, a node; its nats are ``-log p`` with ``p`` the share of unit-days on
the history days (the flow logs' earlier days) that were at least as unusual, plus one:
something every workload does daily adds almost nothing, something no unit ever did adds
``log(n + 1)``. The terms: a destination never seen in the cluster, external egress volume
and packets (a beacon or a reverse shell sends many small packets and few bytes; packets count
only beyond what the bytes said, since bulk traffic raises both),
rejected connections, long-lived low-rate outbound sessions (a reverse shell, a pool
connection) and ports miners use (weak alone: it is only a port).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pandas as pd

from features.flags import is_public
from flows.baseline import NetworkBaseline
from models.evidence import DAY_INDEX, DayEvidence, utc_day

SOURCE = "network"
#: Stratum and pool ports (xmrig's defaults and the common pool ports); many are other things too.
MINER_PORTS = frozenset({3333, 4444, 5555, 7777, 14433, 14444, 45560, 45700})
#: A session this long, averaging under this rate, is held open rather than used.
LONG_SESSION = timedelta(minutes=20)
LOW_RATE = 2_000  # bytes per second
HISTORY_DAYS = 14
#: AWS services whose addresses are AWS's own shared endpoints: they rotate (S3 answers from many
#: addresses) and name no customer, so a destination is the service, not the address. Not
#: EC2, AMAZON (a superset holding EC2) or GLOBALACCELERATOR: their ranges hold addresses any
#: customer rents (instances, Elastic IPs, accelerators), an attacker's server among them.
SHARED_SERVICES = frozenset(
    {"S3", "DYNAMODB", "ROUTE53", "CLOUDFRONT", "API_GATEWAY", "EC2_INSTANCE_CONNECT", "CODEBUILD", "CLOUD9", "EBS"}
)
#: How long after an exec session traffic from the pod is laid to it (on a shared node).
EXEC_REACH = pd.Timedelta(hours=1)
#: SNATed flows name a node, not a pod: their evidence counts half, shared among candidates.
NODE_CONFIDENCE = 0.5
PER_CONVERSATION = ("new-destination", "new-for-unit", "long-session", "miner-port", "named-address")
TERMS = {
    "new-destination": "a destination never seen in the cluster",
    "new-for-unit": "a destination new for the workload (or node), though known in the cluster",
    "egress-volume": "external egress volume",
    "egress-packets": "external egress packets",
    "rejected": "rejected connections",
    "long-session": "a long-lived low-rate outbound session",
    "miner-port": "a port miners use",
    "named-address": "traffic with an address the audit log named that day",
}


def _units(conv: pd.DataFrame, ingress: bool = False) -> pd.DataFrame:
    """Egress (and with ``ingress`` incoming) conversations with a unit: the workload (else the
    pod) or, SNATed, the node."""
    out = conv[conv["direction"].isin(("egress", "ingress") if ingress else ("egress",))].copy()
    pod_unit = out["workload"].fillna(out["namespace"].fillna("") + "/" + out["pod"].fillna(""))
    out["unit"] = np.where(out["attribution"] == "pod", pod_unit, "node " + out["node"].fillna("?"))
    # The audit log's notion of "the internet" (features.flags), so both sources agree.
    out["external"] = np.array([is_public(r) for r in out["remote"]], dtype=bool)  # a mask even when empty
    out["destination"] = destination_keys(out)
    out["duration_s"] = (out["last"] - out["first"]).dt.total_seconds().clip(lower=1)
    return out


def destination_keys(conv: pd.DataFrame) -> list[str]:
    """What a conversation's remote end is, for "new destination": ``aws:S3`` for an address of
    a shared AWS service (v5's ``pkt-dst-aws-service``), else the address."""
    services = conv["remote_service"] if "remote_service" in conv else [None] * len(conv)
    return [
        f"aws:{s}" if isinstance(s, str) and s in SHARED_SERVICES else str(r)
        for r, s in zip(conv["remote"], services, strict=True)
    ]


def named_rows(conv: pd.DataFrame, named: pd.DataFrame | None) -> pd.DataFrame:
    """Conversations (either way) with an address the audit log named on their day."""
    both = _units(conv, ingress=True)
    if named is None or named.empty or both.empty:
        return both.iloc[:0]
    marks = set(zip(pd.to_datetime(named["day"], utc=True), named["address"], strict=True))
    return both[[(d, r) in marks for d, r in zip(both["day"], both["remote"], strict=True)]]


def unit_days(
    conv: pd.DataFrame,
    known: set | None = None,
    named: pd.DataFrame | None = None,
    used: dict[str, set] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Per unit and day: the measure of each term, and for each (unit, day, term) the
    conversation that shows it best (the days are walked in order for new destinations:
    new after ``known``, the (remote, port) seen before, or after the first day without it).
    ``used``: each unit's (remote, port) before, for destinations new to a unit though known in
    the cluster. With ``named`` (:attr:`flows.leases.Leases.named`), also the conversations with
    addresses the audit log named that day."""
    eg = _units(conv)
    ext = eg[eg["external"]]
    accepted = ext[ext["action"] != "REJECT"]
    long = accepted[
        (accepted["duration_s"] >= LONG_SESSION.total_seconds())
        & (accepted["bytes"] / accepted["duration_s"] < LOW_RATE)
    ]
    by = ["unit", "day"]
    parts = {
        "egress-volume": (accepted, accepted.groupby(by)["bytes"].sum()),
        # bytes miss a chatty low-volume channel: a beacon or an interactive shell is many small packets
        "egress-packets": (accepted, accepted.groupby(by)["packets"].sum()),
        "rejected": (eg[eg["action"] == "REJECT"], eg[eg["action"] == "REJECT"].groupby(by)["flows"].sum()),
        "long-session": (long, long.groupby(by)["flows"].count()),
        "miner-port": (mined := accepted[accepted["port"].isin(MINER_PORTS)], mined.groupby(by)["flows"].count()),
    }
    if named is not None:
        hit = named_rows(conv, named)
        parts["named-address"] = (hit, hit.groupby(by)["flows"].count())
    frame = pd.DataFrame({term: values for term, (_, values) in parts.items()}).fillna(0.0)
    examples: dict = {}
    for term, (rows, _) in parts.items():
        most = "packets" if term == "egress-packets" else "bytes"
        for (unit, day), group in rows.groupby(by):
            examples[(unit, day, term)] = group.sort_values(most, kind="stable").iloc[-1]
    seen: set = set() if known is None else set(known)
    mine: dict[str, set] = {u: set(v) for u, v in (used or {}).items()}
    past = known is not None
    new_counts: dict = {}
    unit_counts: dict = {}
    for day, rows in accepted.groupby("day", sort=True):
        for unit, group in rows.groupby("unit"):
            pairs = list(zip(group["destination"], group["port"], strict=True))
            fresh = group[[p not in seen for p in pairs]]
            new_counts[(unit, day)] = len(fresh) if past else np.nan  # the first day has no past
            if past and len(fresh):
                examples[(unit, day, "new-destination")] = fresh.sort_values("bytes", kind="stable").iloc[-1]
            # new for a unit that has a past, though known elsewhere in the cluster
            before = mine.get(str(unit))
            if before is not None:
                elsewhere = group[[p in seen and p not in before for p in pairs]]
                unit_counts[(unit, day)] = len(elsewhere)
                if len(elsewhere):
                    examples[(unit, day, "new-for-unit")] = elsewhere.sort_values("bytes", kind="stable").iloc[-1]
        for unit, group in rows.groupby("unit"):
            mine.setdefault(str(unit), set()).update(zip(group["destination"], group["port"], strict=True))
        seen |= set(zip(rows["destination"], rows["port"], strict=True))
        past = past or bool(seen)
    frame["new-destination"] = pd.Series(new_counts, dtype=float).reindex(frame.index)
    frame["new-for-unit"] = pd.Series(unit_counts, dtype=float).reindex(frame.index)  # NaN: a unit without a past
    return frame, examples


def nats(value: float, history: pd.Series) -> float:
    """``-log p``: p = share of history unit-days at least as large (plus one), for value > 0."""
    if not value > 0:
        return 0.0
    known = history.dropna()
    return float(np.log((len(known) + 1) / ((known >= value).sum() + 1)))


def day_evidence(
    conv: pd.DataFrame, leases, day: date, history_days: int = HISTORY_DAYS, baseline: NetworkBaseline | None = None
) -> DayEvidence:
    """The network evidence of ``day``'s identity-days from attributed conversations.

    Normal is ``baseline`` (the model's, carried by the day state); without one, the
    conversations' own earlier days.
    """
    key = utc_day(day)
    named = leases.named if leases is not None else None
    if baseline is None:
        baseline = NetworkBaseline.learn(conv[conv["day"] < key], named) if len(conv) else NetworkBaseline.empty()
    today_conv = conv[conv["day"] == key] if len(conv) else conv
    past = baseline.has_past(key)
    known = baseline.known(key)
    used = baseline.used(key)
    measures, examples = (
        unit_days(today_conv, known=known if past else None, named=named, used=used) if len(today_conv) else (None, {})
    )
    if measures is None or measures.empty:
        return DayEvidence(SOURCE, _empty(), {}, {"rows": [], "units": {}})
    history = baseline.history(key, history_days)
    today = measures
    eg = _units(today_conv)
    pairs = zip(eg["destination"], eg["port"], strict=True)
    eg["new_in_cluster"] = [(r, p) not in known for r, p in pairs] if past else False
    eg["new_for_unit"] = [
        u in used and (r, p) in known and (r, p) not in used[u]
        for u, r, p in zip(eg["unit"], eg["destination"], eg["port"], strict=True)
    ]
    # what the audit log named today: incoming conversations with such an address are shown too
    told = _told(named, key)
    incoming = named_rows(today_conv, named)
    eg = pd.concat([eg, incoming[incoming["direction"] == "ingress"]], ignore_index=True)
    eg["new_in_cluster"] = eg["new_in_cluster"].eq(True)  # the incoming rows were not judged
    eg["new_for_unit"] = eg["new_for_unit"].eq(True)
    eg["named"] = [told.get(r, "") for r in eg["remote"]]
    scores: dict[tuple[str, str], float] = {}
    reasons: dict = {}
    units: dict[str, set[str]] = {}  # unit -> identities its evidence named
    for unit, row in today.droplevel("day").iterrows():
        flows = eg[eg["unit"] == unit]
        volume = nats(row.get("egress-volume", 0.0), history["egress-volume"]) if "egress-volume" in history else 0.0
        for term in TERMS:
            value = row.get(term, 0.0)
            n = nats(value, history[term]) if term in history else 0.0
            if term == "egress-packets":
                n = max(0.0, n - volume)  # packets say only what the bytes did not (bulk traffic moves both)
            if term == "miner-port":
                n *= 0.5  # weak alone: only a port number
            if n <= 0:
                continue
            example = examples.get((unit, key, term))
            # SNATed traffic names a node: the pods on it when the telling conversation ran
            # (not all day) are the ones that may have sent it.
            # (egress volume and rejects are the whole day's, so are their candidates).
            one = example is not None and (
                term == "named-address" or (term in PER_CONVERSATION and str(unit).startswith("node "))
            )
            shown = example.to_frame().T if one and example is not None else flows
            for identity, weight, how in _answerable(shown, leases, key):
                units.setdefault(str(unit), set()).add(identity)
                got = n * weight
                if got > scores.get((identity, term), 0.0):
                    scores[(identity, term)] = got
                    reasons[(identity, key, f"{SOURCE}:{term}")] = _reason(term, example, how, value, told)
    if not scores:
        return DayEvidence(SOURCE, _empty(), {}, {"rows": eg, "units": units})
    frame = pd.Series(scores).unstack(fill_value=0).astype(float)
    frame.columns = [f"{SOURCE}:{c}" for c in frame.columns]
    frame.index = pd.MultiIndex.from_arrays([frame.index.astype(str), [key] * len(frame)], names=DAY_INDEX)
    return DayEvidence(SOURCE, frame, reasons, {"rows": eg, "units": units})


def _empty() -> pd.DataFrame:
    return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], []], names=DAY_INDEX))


def _answerable(flows: pd.DataFrame, leases, day: pd.Timestamp) -> list[tuple[str, float, str]]:
    """(identity, weight, how it links to the traffic) for a unit's flows on a day."""
    out: dict[str, tuple[float, str]] = {}
    pods = flows[flows["attribution"] == "pod"]
    for r in pods.drop_duplicates(["namespace", "pod"]).to_dict("records"):
        label = f"pod {r['namespace']}/{r['pod']}" + (f" ({r['workload']})" if r["workload"] else "")
        if r["creator"]:
            out[r["creator"]] = (1.0, f"{label} created by {r['creator']}")
        for who in _exec_by(leases, r["namespace"], r["pod"], day):
            out.setdefault(who, (1.0, f"{label}, which {who} exec'd into,"))
    node_flows = flows[(flows["attribution"] == "node") & flows["external"]]
    made = leases.pods[leases.pods["creator"].notna()]
    for node, group in node_flows.groupby("node"):
        candidates = {c for cs in group["candidates"] if cs is not None for c in cs if c}
        known = made[(made["namespace"] + "/" + made["pod"]).isin(candidates)]
        # Behaviour new on a node is laid to the pods new on it today (created, or exec'd into
        # before the traffic ended): pods that ran there on normal days made its normal traffic.
        fresh = known[known["start"] >= day]
        known = fresh if len(fresh) else known
        links: dict[str, str] = {}
        for who, mine in known.groupby("creator"):
            listed = ", ".join(sorted(mine["namespace"] + "/" + mine["pod"])[:3])
            links[str(who)] = f"among them {listed} created by {who}"
        for ns_pod in sorted(candidates):
            ns, _, pod = ns_pod.partition("/")
            # an exec session leads to traffic that starts within the hour (a reverse shell, a download)
            since = group["first"].min() - EXEC_REACH
            for who in _exec_by(leases, ns, pod, day, since=since, until=group["last"].max()):
                links.setdefault(who, f"among them {ns_pod}, which {who} exec'd into")
        for who, link in links.items():
            how = f"node {node} (SNAT: one of {len(candidates)} pods on it, {link})"
            out.setdefault(who, (NODE_CONFIDENCE / len(links), how))
    return [(who, weight, how) for who, (weight, how) in out.items()]


def _exec_by(leases, namespace: str, pod: str, day: pd.Timestamp, since=None, until=None) -> list[str]:
    """Who exec'd into the pod on ``day`` (between ``since`` and ``until``, around the traffic)."""
    ex = leases.execs
    if ex.empty:
        return []
    hit = ex[(ex["namespace"] == namespace) & (ex["pod"] == pod)]
    when = pd.to_datetime(hit["time"], utc=True)
    end = day + pd.Timedelta(days=1) if until is None else min(until, day + pd.Timedelta(days=1))
    start = day if since is None else max(since, day)
    return sorted(set(hit[(when >= start) & (when < end)]["identity"]))


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    return f"{n:.0f} bytes"


def _told(named: pd.DataFrame | None, day: pd.Timestamp) -> dict[str, str]:
    """address -> what named it on ``day`` (in words; at most two sayings, and how many more)."""
    if named is None or named.empty:
        return {}
    today = named[pd.to_datetime(named["day"], utc=True) == day]
    out = {}
    for address, rows in today.groupby("address"):
        said = sorted(set(rows["what"]))
        out[str(address)] = "; ".join(said[:2]) + (f"; and {len(said) - 2} more" if len(said) > 2 else "")
    return out


def _reason(term: str, example, how: str, value: float, told: dict[str, str] | None = None) -> str:
    where = "outside the VPC" if example is None else f"{example['remote']}:{example['port']}"
    service = None if example is None else example.get("remote_service")
    # AWS writes the service as an upper-case code; anything else in the field is not shown
    where += f" ({service})" if isinstance(service, str) and re.fullmatch(r"[A-Z0-9_]{1,40}", service) else ""
    if term == "named-address" and example is not None:
        incoming = example["direction"] == "ingress"
        moved = f"received {_size(example['bytes'])} from" if incoming else f"sent {_size(example['bytes'])} to"
        said = (told or {}).get(str(example["remote"]), "")
        return f"{how} {moved} {where}, an address the audit log named today ({said})"
    sent = "" if example is None else f" sent {_size(example['bytes'])} to {where},"
    if term == "new-destination":
        return f"{how}{sent} a destination never seen in the cluster"
    if term == "new-for-unit":
        return f"{how}{sent} a destination it had not used before (known elsewhere in the cluster)"
    if term == "egress-volume":
        return f"{how} sent {_size(value)} out of the VPC, more than on normal days (most to {where})"
    if term == "egress-packets":
        most = "" if example is None else f" (most to {where}: {int(example['packets']):,} packets"
        most += "" if example is None else f" of {_size(example['bytes'])})"
        return f"{how} sent {int(value):,} packets out of the VPC, more than on normal days{most}"
    if term == "rejected":
        return f"{how} had {int(value)} connection(s) rejected (e.g. to {where})"
    if term == "long-session":
        return f"{how} held a long-lived low-rate session to {where}"
    return f"{how} connected to {where}, a port miners use"
