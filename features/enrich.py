"""Event-level facts: what kind of identity, what kind of action, and whether it is sensitive.

Pure, vectorised functions over the event table; each adds columns and keeps every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from events.schema import EVENT_SCHEMA
from features.first_seen import per_unique
from features.flag_rules import INPUT_COLUMNS, add_flags
from features.flags import FLAG_COLUMNS, FLAGS, identity_kinds, listed

IDENTITY_KINDS = ("service_account", "node", "system", "anonymous", "human")
UA_FAMILIES = ("kubectl", "client-go", "curl", "python", "browser", "helm", "other")
WORKLOADS = {"deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicationcontrollers"}
RBAC = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
#: Window feature -> the flags it counts (carried out only; refused ones go to n_attempted).
FLAG_FEATURES: dict[str, tuple[str, ...]] = {}
for _flag in FLAGS:
    if _flag.feature:
        FLAG_FEATURES.setdefault(_flag.feature, ())
        FLAG_FEATURES[_flag.feature] += (_flag.name,)


def identity_kind(events: pd.DataFrame) -> pd.Series:
    """Classify identities: service_account, node, system, anonymous or human."""
    out = per_unique(events["identity"], _identity_kind)
    return pd.Series(out.to_numpy(dtype=object), index=events.index, name="identity_kind")


def kinds_of(identities) -> np.ndarray:
    """The kind of each identity name (the one definition; see :func:`identity_kind`)."""
    return _identity_kind(pd.Series(list(identities), dtype=object)).to_numpy(dtype=object)


def _identity_kind(ident: pd.Series) -> pd.Series:
    return pd.Series(identity_kinds(ident), index=ident.index)


#: Each user agent's family once classified: a cluster's few dozen clients repeat in every chunk,
#: and classifying even a few dozen costs ~5 ms of pandas string calls. Emptied past
#: :data:`_KNOWN_AGENTS` entries, so made-up agents cannot grow it without bound.
_FAMILY_OF: dict[str, str] = {}
_KNOWN_AGENTS = 50_000


def user_agent_family(user_agent: pd.Series, codes: dict[str, Any] | None = None) -> pd.Series:
    """Reduce a user agent to the client family an analyst thinks in (per distinct value).
    ``codes``: as in :func:`enrich_events`."""
    agents = _Distinct(user_agent, codes)  # missing as the empty agent: "other"
    known = [_FAMILY_OF.get(text) for text in agents.text]
    families = np.array(known, dtype=object)
    unknown = np.array([i for i, family in enumerate(known) if family is None], dtype=np.intp)
    if len(unknown):
        found = _ua_family(pd.Series(agents.text[unknown], dtype="string")).to_numpy(dtype=object)
        families[unknown] = found
        if len(_FAMILY_OF) > _KNOWN_AGENTS:
            _FAMILY_OF.clear()
        _FAMILY_OF.update(zip(agents.text[unknown], found, strict=True))
    return pd.Series(agents.rows(families), index=user_agent.index, name="ua_family")


def _ua_family(user_agent: pd.Series) -> pd.Series:
    ua = user_agent.fillna("").str.lower()
    family = np.select(
        [
            ua.str.startswith("kubectl/"),
            ua.str.startswith("helm/"),
            ua.str.startswith("curl/"),
            ua.str.contains(r"python|^openapi-generator", regex=True),
            ua.str.startswith("mozilla/"),
            ua.str.contains(r"^[\w.-]+/v?[\d.]+[\w.+-]* \(\w+/\w+\) (?:kubernetes|[\w-]+)/", regex=True)
            | ua.str.startswith(("go-http-client", "kube-probe", "prometheus", "coredns")),
        ],
        ["kubectl", "helm", "curl", "python", "browser", "client-go"],
        default="other",
    )
    return pd.Series(family, index=user_agent.index)


def own_namespace(identity: pd.Series) -> pd.Series:
    """A service account's namespace (``system:serviceaccount:<ns>:<name>``), else NA."""
    return per_unique(identity, _own_namespace)


def _own_namespace(identity: pd.Series) -> pd.Series:
    return identity.str.extract(r"^system:serviceaccount:([^:]+):", expand=False)


class _Distinct:
    """A column factorised once: each row's code and the distinct values as text, missing as
    the empty text (what ``astype("string").fillna("")`` gives every row), the last value.

    A classification of the distinct values taken by the codes is the classification of every
    row: an hour of audit events repeats a few hundred verbs, resources and namespaces.
    """

    def __init__(self, values: pd.Series, share: dict[str, Any] | None = None) -> None:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        if share is not None:  # the same factorisation a later step would make of this column
            share[str(values.name)] = (codes, uniques)
        self.uniques = uniques
        self.codes = np.where(codes < 0, len(uniques), codes)
        # As astype("string") writes each value (the distinct values are never missing).
        self.text = np.array([*(u if isinstance(u, str) else str(u) for u in uniques), ""], dtype=object)

    def mapped(self, func, index: pd.Index) -> pd.Series:
        """:func:`features.first_seen.per_unique` of the column: ``func`` of the distinct values
        (as text, missing stays missing), taken back to the rows."""
        mapped = pd.array(func(pd.Series(self.uniques, dtype="string")), dtype="string")
        missing_as_na = np.where(self.codes < len(self.uniques), self.codes, -1)
        return pd.Series(mapped.take(missing_as_na, allow_fill=True), index=index)

    def rows(self, per_value: np.ndarray) -> np.ndarray:
        return per_value[self.codes]

    def equals(self, value: str) -> np.ndarray:
        return self.rows(self.text == value)

    def isin(self, values) -> np.ndarray:
        return self.rows(np.isin(self.text, list(values)))


def _arrow_bool(mask: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A boolean column as comparisons of Arrow-backed text give it (the dtype the table had)."""
    return pd.arrays.ArrowExtensionArray(pa.array(mask, pa.bool_()))


def enrich_events(events: pd.DataFrame, codes: dict[str, Any] | None = None) -> pd.DataFrame:
    """Return ``events`` with the event-level columns the window features are built from.

    The input is not modified. Boolean flags are plain ``bool``; NA counts as False.
    ``codes``: filled with the ``pd.factorize(..., use_na_sentinel=True)`` of each column
    factorised here, by name, for the later steps on the same rows
    (:func:`features.featurise.novelty_input`, :func:`features.windows.partial_windows`).
    """
    # New columns are collected and joined once: adding ~45 columns one by one to a wide frame
    # costs more than computing them. The caller's frame is never written.
    new: dict[str, Any] = {}  # Series and arrays; some are read back below
    out = events
    # Every text test runs on the distinct values and is taken back to the rows by their codes
    # (comparing every row's text, through pandas' NA handling, was most of this function).
    verb = _Distinct(out["verb"], codes)
    res = _Distinct(out["target_resource"], codes)
    sub = _Distinct(out["target_subresource"], codes)
    ns = _Distinct(out["target_namespace"], codes)
    who = _Distinct(out["identity"], codes)
    code = out["response_code"].astype("Int64").fillna(0).to_numpy()
    decision = _Distinct(out["auth_decision"], codes)
    kinds = identity_kinds(who.uniques)  # per distinct identity; a missing one is NA
    per_code = np.empty(len(kinds) + 1, dtype=object)
    per_code[:-1], per_code[-1] = kinds, pd.NA  # as identity_kind() gives a missing identity
    kind = pd.Series(per_code[who.codes], index=out.index, name="identity_kind")
    new["identity_kind"] = kind
    new["ua_family"] = user_agent_family(out["user_agent"], codes)
    new["own_namespace"] = who.mapped(_own_namespace, out.index)
    new["is_denied"] = _arrow_bool((code == 403) | decision.equals("forbid"))
    new["is_unauthenticated"] = code == 401
    new["is_other_4xx"] = (code >= 400) & (code < 500) & (code != 401) & (code != 403)
    new["is_5xx"] = code >= 500
    new["is_nonresource"] = _arrow_bool(res.equals(""))
    new["is_rbac"] = res.isin(RBAC)
    new["is_workload"] = res.isin(WORKLOADS)
    new["is_sa_or_token"] = _arrow_bool(res.equals("serviceaccounts"))
    new["is_crd"] = _arrow_bool(res.equals("customresourcedefinitions"))
    new["is_webhook"] = res.isin({"mutatingwebhookconfigurations", "validatingwebhookconfigurations"})
    new["is_csr"] = _arrow_bool(res.equals("certificatesigningrequests"))
    new["is_self_review"] = res.isin({"selfsubjectaccessreviews", "selfsubjectrulesreviews"})
    # The sensitive actions are the event table's flags (features/flags.py): one definition
    # for hunters, rules and the detector. Counted when carried out; refused ones apart.
    done, attempted = _flag_lists(out)
    counted = listed(done, len(out), _FEATURE_OF)  # one column per feature, each contiguous
    for j, feature in enumerate(FLAG_FEATURES):
        new[feature] = counted[:, j]
    new["n_exec_kube_system"] = new["n_exec"] & ns.equals("kube-system")
    new["n_attempted"] = listed(attempted, len(out), _ANY_FLAG)[:, 0]
    new["is_secret_read"] = _arrow_bool(verb.isin({"get", "list", "watch"}) & res.equals("secrets"))
    # A service account's request outside its own namespace: the two texts are compared only
    # on the service accounts' rows that name a namespace.
    foreign = who.rows(np.append(kinds == "service_account", False)) & ~ns.equals("")
    rows = np.flatnonzero(foreign)
    own_text = np.append(_own_namespace(pd.Series(who.uniques, dtype="string")).fillna("").to_numpy(dtype=object), "")
    foreign[rows] = ns.text[ns.codes[rows]] != own_text[who.codes[rows]]
    new["is_foreign_namespace"] = _arrow_bool(foreign)
    new["verb_resource"] = _verb_resource(verb, res, sub, out.index)
    return pd.concat([events, pd.DataFrame(new, index=events.index)], axis=1)


def _verb_resource(verb: _Distinct, res: _Distinct, sub: _Distinct, index: pd.Index) -> pd.Series:
    """'list secrets', 'create pods/exec', 'get nonresource', built once per distinct triple."""
    combined = (verb.codes.astype(np.int64) * len(res.text) + res.codes) * len(sub.text) + sub.codes
    codes, uniques = pd.factorize(combined)
    v, rest = np.divmod(uniques, len(res.text) * len(sub.text))
    r, c = np.divmod(rest, len(sub.text))
    vt, rt, st = verb.text, res.text, sub.text
    names = np.array(
        [f"{vt[a]} {rt[b] or 'nonresource'}{'/' + st[d] if st[d] else ''}" for a, b, d in zip(v, r, c, strict=True)],
        dtype=object,
    )
    return pd.Series(pd.array(names, dtype="string").take(codes), index=index)


#: Each flag's window feature, by position in FLAGS (-1: a flag no feature counts), and any flag.
_FEATURE_OF = np.array([list(FLAG_FEATURES).index(f.feature) if f.feature else -1 for f in FLAGS])
_ANY_FLAG = np.zeros(len(FLAGS), dtype=np.intp)


def _flag_lists(events: pd.DataFrame) -> tuple[pa.Array | pa.ChunkedArray, pa.Array | pa.ChunkedArray]:
    """The (carried out, refused) flag lists, as Arrow; computed here for frames that predate
    the columns, by the definition ingest applies (:func:`features.flag_rules.add_flags`)."""
    types = {f.name: f.type for f in EVENT_SCHEMA}
    if all(c in events.columns for c in FLAG_COLUMNS):
        done, refused = (pa.array(events[c], types[c], from_pandas=True) for c in FLAG_COLUMNS[:2])
        return done, refused
    flagged = add_flags(
        pa.table(
            {
                c: pa.array(events[c], types[c], from_pandas=True)
                if c in events.columns
                else pa.nulls(len(events), types[c])
                for c in INPUT_COLUMNS
            }
        )
    )
    return flagged["flags"], flagged["flags_attempted"]
