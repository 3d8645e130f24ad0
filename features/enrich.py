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
from features.flags import FLAG_COLUMNS, FLAGS, flag_table, identity_kinds

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


def _s(events: pd.DataFrame, col: str) -> pd.Series:
    return events[col].astype("string").fillna("")


def identity_kind(events: pd.DataFrame) -> pd.Series:
    """Classify identities: service_account, node, system, anonymous or human."""
    out = per_unique(events["identity"], _identity_kind)
    return pd.Series(out.to_numpy(dtype=object), index=events.index, name="identity_kind")


def kinds_of(identities) -> np.ndarray:
    """The kind of each identity name (the one definition; see :func:`identity_kind`)."""
    return _identity_kind(pd.Series(list(identities), dtype=object)).to_numpy(dtype=object)


def _identity_kind(ident: pd.Series) -> pd.Series:
    return pd.Series(identity_kinds(ident), index=ident.index)


def user_agent_family(user_agent: pd.Series) -> pd.Series:
    """Reduce a user agent to the client family an analyst thinks in."""
    out = per_unique(user_agent.fillna(""), _ua_family)
    return pd.Series(out.to_numpy(dtype=object), index=user_agent.index, name="ua_family")


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


def _verb_resource(verb: pd.Series, res: pd.Series, sub: pd.Series) -> pd.Series:
    """'list secrets', 'create pods/exec', 'get nonresource', built once per distinct triple."""
    (vc, vu), (rc, ru), (sc, su) = (pd.factorize(x) for x in (verb, res, sub))
    combined = (vc.astype(np.int64) * len(ru) + rc) * len(su) + sc  # one integer per triple
    codes, uniques = pd.factorize(combined)
    v, rest = np.divmod(uniques, len(ru) * len(su))
    r, c = np.divmod(rest, len(su))
    names = np.array(
        [f"{vu[a]} {ru[b] or 'nonresource'}{'/' + su[d] if su[d] else ''}" for a, b, d in zip(v, r, c, strict=True)],
        dtype=object,
    )
    return pd.Series(pd.array(names, dtype="string").take(codes), index=verb.index)


def own_namespace(identity: pd.Series) -> pd.Series:
    """A service account's namespace (``system:serviceaccount:<ns>:<name>``), else NA."""
    return per_unique(identity, lambda s: s.str.extract(r"^system:serviceaccount:([^:]+):", expand=False))


def enrich_events(events: pd.DataFrame) -> pd.DataFrame:
    """Return ``events`` with the event-level columns the window features are built from.

    The input is not modified. Boolean flags are plain ``bool``; NA counts as False.
    """
    # New columns are collected and joined once: adding ~45 columns one by one to a wide frame
    # costs more than computing them. The caller's frame is never written.
    new: dict[str, Any] = {}  # Series and arrays; some are read back below
    out = events
    verb = _s(out, "verb")
    res = _s(out, "target_resource")
    sub = _s(out, "target_subresource")
    ns = _s(out, "target_namespace")
    code = out["response_code"].astype("Int64").fillna(0).to_numpy()
    decision = _s(out, "auth_decision")
    kind = identity_kind(out)
    new["identity_kind"] = kind
    new["ua_family"] = user_agent_family(out["user_agent"])
    new["own_namespace"] = own_namespace(out["identity"])
    new["is_denied"] = (code == 403) | (decision == "forbid")
    new["is_unauthenticated"] = code == 401
    new["is_other_4xx"] = (code >= 400) & (code < 500) & (code != 401) & (code != 403)
    new["is_5xx"] = code >= 500
    new["is_nonresource"] = res == ""
    new["is_rbac"] = res.isin(RBAC)
    new["is_workload"] = res.isin(WORKLOADS)
    new["is_sa_or_token"] = res == "serviceaccounts"
    new["is_crd"] = res == "customresourcedefinitions"
    new["is_webhook"] = res.isin({"mutatingwebhookconfigurations", "validatingwebhookconfigurations"})
    new["is_csr"] = res == "certificatesigningrequests"
    new["is_self_review"] = res.isin({"selfsubjectaccessreviews", "selfsubjectrulesreviews"})
    # The sensitive actions are the event table's flags (features/flags.py): one definition
    # for hunters, rules and the detector. Counted when carried out; refused ones apart.
    done, attempted = _flag_tables(out)
    flags = done.to_numpy()  # one array: a frame selection by a list of names costs ~2 ms each
    at = {name: i for i, name in enumerate(done.columns)}
    for feature, names in FLAG_FEATURES.items():
        new[feature] = flags[:, [at[name] for name in names]].any(axis=1)
    new["n_exec_kube_system"] = new["n_exec"] & (ns == "kube-system").to_numpy()
    new["n_attempted"] = attempted.to_numpy().any(axis=1)
    new["is_secret_read"] = verb.isin({"get", "list", "watch"}) & (res == "secrets")
    new["is_foreign_namespace"] = (kind == "service_account") & (ns != "") & (ns != new["own_namespace"].fillna(""))
    new["verb_resource"] = _verb_resource(verb, res, sub)
    return pd.concat([events, pd.DataFrame(new, index=events.index)], axis=1)


def _flag_tables(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(carried out, refused) flag tables; computed here for frames that predate the columns."""
    if not all(c in events.columns for c in FLAG_COLUMNS):
        types = {f.name: f.type for f in EVENT_SCHEMA}
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
        events = pd.DataFrame(
            {
                c: pd.Series(flagged[c].to_pandas(types_mapper=pd.ArrowDtype).array, index=events.index)
                for c in ("flags", "flags_attempted")
            }
        )
    return flag_table(events, "flags"), flag_table(events, "flags_attempted")
