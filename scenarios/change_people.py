"""Benign change among people: hires and leavers, new sessions, laptops and addresses, kubectl
upgrades, the on-call admin at night, the break-glass role, and everyday client errors.
"""

from __future__ import annotations

from dataclasses import replace

from scenarios import change_bodies as bodies
from scenarios.change import Day, Step, handler
from scenarios.cluster import ACCOUNT, DAY_S, OFFICE_NETS, Actor, Novelty, _suffix, iam_extra
from scenarios.eks import Call, Identity
from scenarios.networks import address, pod_address
from scenarios.normal import DISCOVERY

FIRST_NAMES = ("zoe", "omar", "lena", "kenji", "amara", "pablo", "hana", "ravi", "sofia", "mateo", "ingrid", "yusuf")
LAST_NAMES = (
    "hughes",
    "farouk",
    "schmidt",
    "mori",
    "diallo",
    "ruiz",
    "novak",
    "shah",
    "costa",
    "silva",
    "lund",
    "demir",
)
#: kubectl builds people move between (each an upstream release's git commit).
KUBECTL_VERSIONS = (
    ("v1.29.3", "6813625"),
    ("v1.30.2", "39683505"),
    ("v1.30.5", "74e84a9"),
    ("v1.31.1", "948afe5"),
    ("v1.31.4", "a78aa47"),
    ("v1.32.0", "70d3cc9"),
)
PLATFORMS = ("darwin/arm64", "darwin/amd64", "linux/amd64", "windows/amd64")
REMOTE = ("residential", "residential", "mobile", "vpn")


def kubectl_ua(rng, version: tuple[str, str] | None = None, platform: str | None = None) -> str:
    v, commit = version or KUBECTL_VERSIONS[int(rng.integers(2, len(KUBECTL_VERSIONS)))]
    return f"kubectl/{v} ({platform or PLATFORMS[int(rng.integers(len(PLATFORMS)))]}) kubernetes/{commit}"


def _people(day: Day) -> list[Actor]:
    return [a for a in day.actors if a.kind in {"developer", "admin"}]


def _first_commands(t: float, who: Identity, ns: str) -> list[Step]:
    """What anyone runs first in a new shell: discovery, then a look at their pods."""
    calls = [*DISCOVERY, Call("list", "pods", ns, query="limit=500")]
    return [(t + 0.05 * i, c, who) for i, c in enumerate(calls)]


def _home(day: Day, person: Actor) -> str:
    return person.namespace or day.app_namespaces[0]


@handler("new_hire")
def new_hire(day: Day) -> None:
    known = {a.identity.extra["sessionName"][0] for a in _people(day) if a.identity.extra}
    if not day.app_namespaces:
        return
    first, last = FIRST_NAMES[int(day.rng.integers(12))], LAST_NAMES[int(day.rng.integers(12))]
    person = f"{first}.{last}" if f"{first}.{last}" not in known else f"{first}.{last}{len(known)}"
    office = list(OFFICE_NETS)[int(day.rng.integers(len(OFFICE_NETS)))]
    tz = {"berlin": 1, "austin": -6, "remote": 0}[office]
    ips = (f"{OFFICE_NETS[office]}.{int(day.rng.integers(100, 250))}", address(day.rng, "residential"))
    admin = day.rng.random() < 0.25
    role = "AWSReservedSSO_PlatformAdmin_5c2a8e1f0b9d7a64" if admin else "AWSReservedSSO_Developer_8d41b0c2e7f5a913"
    extra = iam_extra(role, person, day.rng)
    uid = f"aws-iam-authenticator:{ACCOUNT}:{extra['principalId'][0]}"
    if admin:
        who = Identity(
            extra["arn"][0], ("platform-admins", "system:authenticated"), ips, kubectl_ua(day.rng), uid, extra
        )
    else:
        who = Identity("developer", ("developers", "system:authenticated"), ips, kubectl_ua(day.rng), uid, extra)
    drawn = int(day.rng.integers(len(day.app_namespaces)))
    ns = day.app_namespaces[drawn]
    t = day.at(10, 15, tz)
    if not day.exists(ns, t):  # a team onboarded later today: the new person starts in one that exists
        here = day.app_namespaces_at(t)
        ns = here[drawn % len(here)]  # the same draw: the day's later changes draw what they would have
    actor = Actor(who, "admin" if admin else "developer", tz_offset=tz, namespace=None if admin else ns)
    day.record("new_hire", who.username, _first_commands(t, who, ns))
    # A first day: everything the new person does is new, so all of it is labelled.
    day.join(actor, t + 60.0, "benign_new_hire", novel_for=86400.0)


@handler("leaver")
def leaver(day: Day) -> None:
    for kind in ("developer", "admin"):
        if len([a for a in _people(day) if a.kind == kind and a.active == (0.0, DAY_S)]) <= 2:
            continue  # a team keeps at least two of each
        person = day.pick(kind)
        if person is None:
            return
        t = day.at(15, 17, person.tz_offset)
        steps = _first_commands(t, person.identity, _home(day, person))
        day.record("leaver", person.identity.username, steps)
        # The last day's calls are labelled: the session that never comes back.
        person.novel = Novelty("benign_leaver", 0.0, DAY_S)
        day.leave(person, t + 600.0)
        return


def _switch_person(day: Day, scenario: str, change) -> None:
    person = day.pick("developer", "admin")
    if person is None:
        return
    t = day.at(8, 17, person.tz_offset)
    new = change(person.identity)
    day.switch(person, new, t, f"benign_{scenario}", novel_for=4 * 3600.0)
    day.record(scenario, new.username, _first_commands(t, new, _home(day, person)))


@handler("new_iam_session")
def new_iam_session(day: Day) -> None:
    def fresh_key(who: Identity) -> Identity:
        extra = dict(who.extra or {})
        extra["accessKeyId"] = ["ASIA" + "".join(day.rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 16))]
        return replace(who, extra=extra)

    _switch_person(day, "new_iam_session", fresh_key)


@handler("new_laptop")
def new_laptop(day: Day) -> None:
    def laptop(who: Identity) -> Identity:
        office = who.ips[0].rsplit(".", 1)[0]
        return replace(
            who,
            user_agent=kubectl_ua(day.rng, platform=PLATFORMS[int(day.rng.integers(2))]),
            ips=(f"{office}.{int(day.rng.integers(100, 250))}", *who.ips[1:]),
        )

    _switch_person(day, "new_laptop", laptop)


@handler("kubectl_upgrade")
def kubectl_upgrade(day: Day) -> None:
    def upgrade(who: Identity) -> Identity:
        platform = who.user_agent.split("(", 1)[1].split(")", 1)[0] if "(" in who.user_agent else None
        return replace(who, user_agent=kubectl_ua(day.rng, platform=platform))

    _switch_person(day, "kubectl_upgrade", upgrade)


@handler("remote_address")
def remote_address(day: Day) -> None:
    """A day at home, on a phone hotspot or behind a VPN exit: a public address never seen."""
    person = day.pick("developer", "admin")
    if person is None:
        return
    kind = REMOTE[int(day.rng.integers(len(REMOTE)))]
    who = replace(person.identity, ips=(address(day.rng, kind),))
    day.for_today(person, who, "benign_remote_address")
    t = day.at(8, 10, person.tz_offset)
    day.record("remote_address", who.username, _first_commands(t, who, _home(day, person)))


@handler("oncall_night", weekends=True)
def oncall_night(day: Day) -> None:
    """Paged at night: logs, events, a shell, a rollout restart, a stuck pod deleted, from home."""
    person = day.pick("admin") or day.pick("developer")
    if person is None or not day.app_namespaces:
        return
    who = replace(person.identity, ips=(address(day.rng, "residential"),))
    picked = 0 if person.namespace else int(day.rng.integers(len(day.app_namespaces)))
    ns = person.namespace or day.app_namespaces[picked]
    pods = day.pods.get(ns) or [f"{ns}-api-0"]
    drawn = int(day.rng.integers(len(pods)))
    pod = pods[drawn]
    t = day.at(1, 4, person.tz_offset)
    if not day.exists(ns, t):  # a team onboarded later today: the page is about one that exists
        here = day.app_namespaces_at(t)
        ns = here[picked % len(here)]  # the same draw (below)
    there = day.pods_at(ns, t)
    if pod not in there and there:
        # A pod made later today (a rollout) or gone: one running at night. The same draw, so
        # that the day's later changes draw what they would have.
        pod = there[drawn % len(there)]
    calls = [
        *DISCOVERY,
        Call("list", "pods", ns, query="limit=500"),
        Call("list", "events", ns, query="limit=500"),
        Call("get", "pods", ns, pod, "log", query="container=api&previous=true"),
        Call("get", "pods", ns, pod, "log", query="container=api&follow=true", duration_s=120.0),
        Call(
            "create",
            "pods",
            ns,
            pod,
            "exec",
            query="command=sh&container=api&stdin=true&stdout=true&tty=true",
            duration_s=300.0,
        ),
        Call("list", "nodes", query="limit=500"),
        Call(
            "patch",
            "deployments",
            ns,
            f"{ns}-api",
            query="fieldManager=kubectl-rollout",
            body={
                "spec": {
                    "template": {
                        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": day.time(t).isoformat()}}
                    }
                }
            },
        ),
        Call("delete", "pods", ns, pod),
        Call("get", "deployments", ns, f"{ns}-api"),
    ]
    steps: list[Step] = []
    s = t
    deleted_at = t
    for c in calls:
        steps.append((s, c, who))
        deleted_at = s if c.verb == "delete" else deleted_at
        s += c.duration_s + float(day.rng.gamma(2.0, 20.0))
    if pod in day.pods_today.get(ns, []):
        steps += _recreated(day, ns, pod, deleted_at)
    day.record("oncall_night", who.username, steps)


def _recreated(day: Day, ns: str, old: str, at: float) -> list[Step]:
    """Pod ``old``, deleted by hand at ``at``, is replaced by its ReplicaSet from the same
    template: what was to delete or evict ``old`` later today (a rollout, a drain) deletes or
    evicts the new pod, and the application that ran in ``old`` runs in it, from a new address."""
    replicaset = old.rsplit("-", 1)[0]
    new = f"{replicaset}-{_suffix(day.rng)}"
    _, died = day.pod_spans.get((ns, old), (0.0, DAY_S))
    day.drop_pods(ns, [old], at)
    day.add_pods(ns, [new], at + 0.3)
    if at < died < DAY_S:
        day.drop_pods(ns, [new], died)
        ends = {("delete", None), ("create", "eviction")}
        for change in day.changes:
            change.steps = [
                (
                    s,
                    replace(c, name=new)
                    if (c.verb, c.subresource) in ends and (c.namespace, c.name) == (ns, old)
                    else c,
                    w,
                )
                for s, c, w in change.steps
            ]
    for app in day.actors:
        if old not in app.pod_names:
            continue
        i = app.pod_names.index(old)
        app.pod_names = (*app.pod_names[:i], new, *app.pod_names[i + 1 :])
        if app.whole_day and i < len(app.identity.ips):
            # A new pod, a new address (drawn aside: Day.added). An application changed earlier
            # today keeps its addresses: an actor changes identity once a day.
            ips = (*app.identity.ips[:i], pod_address(day.added), *app.identity.ips[i + 1 :])
            day.switch(app, replace(app.identity, ips=ips), at + 20.0, "benign_oncall_night")
    body = bodies.app_pod(new, ns, f"{ns}-api", bodies.app_image(ns, replicaset))
    return [
        (
            at + 0.3,
            Call("create", "pods", ns, body=body),
            day.who("system:serviceaccount:kube-system:replicaset-controller"),
        ),
        (at + 0.5, Call("create", "pods", ns, new, "binding"), day.who("system:kube-scheduler")),
    ]


@handler("break_glass", weekends=True)
def break_glass(day: Day) -> None:
    """The emergency role: an admin takes it to fix what their own access cannot (often aws-auth)."""
    person = day.pick("admin") or day.pick("developer")
    if person is None:
        return
    name = (person.identity.extra or {}).get("sessionName", ["oncall"])[0]
    extra = iam_extra("BreakGlassAdmin", name, day.rng)
    who = Identity(
        extra["arn"][0],
        ("system:masters", "system:authenticated"),
        person.identity.ips,
        person.identity.user_agent,
        f"aws-iam-authenticator:{ACCOUNT}:{extra['principalId'][0]}",
        extra,
    )
    t = day.at(0, 22)
    calls = [
        *DISCOVERY,
        Call("list", "nodes", query="limit=500"),
        Call("list", "pods", None, query="limit=500"),
        Call("get", "configmaps", "kube-system", "aws-auth"),
        Call("list", "events", "kube-system", query="limit=500"),
    ]
    if day.rng.random() < 0.5:
        calls.append(
            Call(
                "patch",
                "configmaps",
                "kube-system",
                "aws-auth",
                body={"kind": "ConfigMap", "apiVersion": "v1", "data": {"mapRoles": "..."}},
            )
        )
    steps = [(t + 20.0 * i, c, who) for i, c in enumerate(calls)]
    day.record("break_glass", who.username, steps)


@handler("client_errors")
def client_errors(day: Day) -> None:
    """Typos, stale names and re-applies: 404s and 409s a person causes and retries."""
    person = day.pick("developer", "admin", untouched=False)
    if person is None or person.active[1] < DAY_S:
        return
    ns = _home(day, person)
    t = day.at(9, 17, person.tz_offset)
    who = person.was if person.was is not None and t < person.switch_at else person.identity
    typo = f"{ns}-api-{int(day.rng.integers(100, 999))}"
    calls = [
        Call("get", "pods", ns, typo, code=404),
        Call("get", "pods", ns, typo, code=404),
        Call("get", "deployments", ns, f"{ns}-worker", code=404),
        Call(
            "create",
            "configmaps",
            ns,
            body={"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": f"{ns}-config"}},
            code=409,
        ),
    ]
    day.record("client_errors", who.username, [(t + 4.0 * i, c, who) for i, c in enumerate(calls)])
