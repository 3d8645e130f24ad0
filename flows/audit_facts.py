"""The facts about pods and nodes that the audit log holds and the event table does not keep.

Which address a pod got (the kubelet's ``patch pods/status`` carries ``status.podIP``), which
node it was bound to, who owns it and which service account it runs as, and the nodes'
addresses and instance ids. They come from the same audit inputs (any wrapper the reader
knows), read a second time: only lines that name a resource of interest are decoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sources.files import DocumentBatch, ParquetFile, read_inputs
from sources.lines import LineBatch
from sources.wrappers import Unwrapped, unwrap_text

#: Workload kinds whose creator a pod's owner chain leads back to.
WORKLOADS = {
    "deployments": "Deployment",
    "replicasets": "ReplicaSet",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
}
_RESOURCES = ("pods", "nodes", *WORKLOADS)
# Bare JSON and JSON inside a string (CloudWatch subscription payloads escape the quotes).
_INTERESTING = r'resource\\?":\s*\\?"(' + "|".join(_RESOURCES) + r')\\?"'
# Who called from where, on which day: read from every line with three cheap regexes (the
# k8s audit event puts user before sourceIPs); only public addresses are kept.
_CALLER = r'username\\?":\s*\\?"(?P<user>[^"\\]*)\\?".*?sourceIPs\\?":\s*\[\\?"(?P<ip>[0-9A-Fa-f:.]+)'
_DAY = r'requestReceivedTimestamp\\?":\s*\\?"(?P<day>\d{4}-\d{2}-\d{2})'
#: An IPv4 address written out in a spec, a command line or an environment variable.
_IPV4 = re.compile(r"(?<![\d.])((?:\d{1,3}\.){3}\d{1,3})(?![\d.])")


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing an audit event says about a pod, node or workload."""

    kind: str  # pod-create, pod-binding, pod-ip, pod-delete, pod-exec, node, workload, caller
    time: datetime
    namespace: str | None
    name: str | None
    identity: str
    data: dict


def _time(event: dict) -> datetime | None:
    stamp = event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _owner(meta: dict) -> tuple[Any, Any] | None:
    refs = meta.get("ownerReferences") or []
    if refs and isinstance(refs[0], dict):
        return refs[0].get("kind"), refs[0].get("name")
    return None


def written_addresses(value) -> list[str]:
    """Public IPv4 addresses written anywhere in ``value`` (a spec, a command line), in order, once."""
    from features.flags import is_public

    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return list(dict.fromkeys(a for a in _IPV4.findall(text) if is_public(a)))


def event_facts(event: dict) -> Iterator[Fact]:
    """The facts of one audit event (none for most events)."""
    ref = event.get("objectRef") or {}
    resource, sub, verb = ref.get("resource"), ref.get("subresource"), event.get("verb")
    status = (event.get("responseStatus") or {}).get("code") or 200
    when = _time(event)
    if resource not in _RESOURCES or status >= 400 or when is None:
        return
    if event.get("stage") not in (None, "ResponseComplete"):
        return
    who = (event.get("user") or {}).get("username") or ""
    body: dict = event["requestObject"] if isinstance(event.get("requestObject"), dict) else {}
    answer: dict = event["responseObject"] if isinstance(event.get("responseObject"), dict) else {}
    meta = body.get("metadata") or answer.get("metadata") or {}
    ns, name = ref.get("namespace"), ref.get("name") or meta.get("name")
    if resource == "nodes":
        obj = body or answer
        addresses = [
            a.get("address")
            for a in (obj.get("status") or {}).get("addresses") or []
            if isinstance(a, dict) and a.get("type") == "InternalIP"
        ]
        provider = (obj.get("spec") or {}).get("providerID") or ""
        instance = provider.rsplit("/", 1)[-1] if provider.startswith("aws://") else None
        if addresses or instance:
            yield Fact("node", when, None, name, who, {"addresses": addresses, "instance_id": instance})
    elif resource in WORKLOADS:
        if verb == "create" and sub is None:
            spec = (body or answer).get("spec") or {}
            yield Fact(
                "workload",
                when,
                ns,
                name,
                who,
                {"kind": WORKLOADS[resource], "owner": _owner(meta), "addresses": written_addresses(spec)},
            )
    elif sub is None and verb == "create":
        spec = body.get("spec") or answer.get("spec") or {}
        yield Fact(
            "pod-create",
            when,
            ns,
            name,
            who,
            {
                "owner": _owner(meta),
                "service_account": spec.get("serviceAccountName"),
                "node": spec.get("nodeName"),
                "host_network": bool(spec.get("hostNetwork")),
                "addresses": written_addresses(spec),
            },
        )
    elif sub is None and verb == "delete":
        yield Fact("pod-delete", when, ns, name, who, {})
    elif sub == "binding" and verb == "create":
        yield Fact("pod-binding", when, ns, name, who, {"node": (body.get("target") or {}).get("name")})
    elif sub == "status" and verb in ("patch", "update"):
        state = body.get("status") or {}
        ips = [p.get("ip") for p in state.get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
        if not ips and state.get("podIP"):
            ips = [state["podIP"]]
        if ips or state.get("hostIP"):
            yield Fact("pod-ip", when, ns, name, who, {"ips": ips, "host_ip": state.get("hostIP")})
    elif sub in ("exec", "attach") and verb in ("create", "get"):
        from urllib.parse import unquote_plus

        # kubectl exec's command travels in the request URI (?command=sh&command=-c&command=...)
        command = unquote_plus(str(event.get("requestURI") or "").partition("?")[2])
        yield Fact("pod-exec", when, ns, name, who, {"addresses": written_addresses(command)})


def read_facts(inputs: list[str], aws=None) -> tuple[list[Fact], list[str]]:
    """Read the pod, node and workload facts of audit inputs; also return warnings."""
    from sources.files import expand_inputs

    facts: list[Fact] = []
    warnings: list[str] = []
    for item in read_inputs(expand_inputs(inputs), bulk=False, aws=aws):
        if isinstance(item, ParquetFile):
            warnings.append(
                f"{item.source}: an event table keeps no pod addresses; give the audit log itself for network leases"
            )
        elif isinstance(item, DocumentBatch):
            facts += _from_unwrapped(item.unwrapped)
            facts += _callers(pa.array(item.unwrapped.texts, pa.large_string()))
        elif isinstance(item, LineBatch):
            facts += _callers(item.texts)
            mask = pc.match_substring_regex(item.texts, _INTERESTING)
            out = Unwrapped()
            for i in pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist():
                line = int(item.line_numbers[i]) if item.line_numbers is not None else item.first_line + i
                unwrap_text(item.texts[i].as_py(), item.source, line, out)
            facts += _from_unwrapped(out)
    facts.sort(key=lambda f: f.time)
    return facts, warnings


def _from_unwrapped(out: Unwrapped) -> list[Fact]:
    found: list[Fact] = []
    for text in out.texts:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # the event reader reports it; a lease cannot come from it
        if isinstance(event, dict):
            found += event_facts(event)
    return found


def _callers(texts) -> list[Fact]:
    """One fact per (day, public source address, user) of the API requests in ``texts``."""
    from features.flags import is_public

    if not len(texts):
        return []
    who = pc.extract_regex(texts, _CALLER)
    day = pc.extract_regex(texts, _DAY)
    table = pa.table({"user": who.field("user"), "ip": who.field("ip"), "day": day.field("day")})
    table = table.filter(pc.and_(pc.is_valid(table["ip"]), pc.is_valid(table["day"])))
    found = []
    for row in table.group_by(["day", "ip", "user"]).aggregate([]).to_pylist():
        if is_public(row["ip"]):
            when = datetime.fromisoformat(row["day"] + "T00:00:00+00:00")
            found.append(Fact("caller", when, None, row["ip"], row["user"], {}))
    return found
