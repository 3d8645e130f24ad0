"""From events to one row of features per (identity, window): a pure, vectorised function.

It changes the number of rows, so it is a function and not a transformer; the estimators
sit on either side of it (FirstSeenEncoder before, IdentityBaseline after).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import FEATURES

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
SUBRESOURCES = ("exec", "attach", "portforward", "proxy")
RESOURCE_MIX = {
    "pods": ("target_resource", "pods"), "secrets": ("target_resource", "secrets"),
    "configmaps": ("target_resource", "configmaps"), "rbac": ("is_rbac", True),
    "serviceaccounts": ("is_sa_or_token", True), "workloads": ("is_workload", True),
    "nodes": ("target_resource", "nodes"), "namespaces": ("target_resource", "namespaces"),
    "crds": ("is_crd", True), "webhooks": ("is_webhook", True), "csrs": ("is_csr", True),
    "events": ("target_resource", "events"), "self_reviews": ("is_self_review", True),
    "nonresource": ("is_nonresource", True),
}
SENSITIVE = ("n_privileged", "n_hostpath", "n_hostpath_root", "n_hostpid", "n_hostnetwork",
             "n_hostipc", "n_dangerous_caps", "n_admin_bindings", "n_risky_roles",
             "n_token_requests_other", "n_csr_creates", "n_csr_approvals", "n_impersonations",
             "n_exec", "n_exec_kube_system", "n_portforward_proxy", "n_webhook_writes",
             "n_aws_auth_edits", "n_events_deleted", "n_anonymous_allowed", "n_bare_pods",
             "n_cluster_wide_secret_lists", "n_cluster_wide_pod_lists")
NOVELTY = ("source_ip", "user_agent", "ua_family", "principal", "verb_resource", "namespace",
           "image", "ip_range")
NOVELTY_COLUMNS = {"source_ip": "source_ip", "user_agent": "user_agent", "ua_family": "ua_family",
                   "principal": "principal", "verb_resource": "verb_resource",
                   "namespace": "target_namespace", "image": "image", "ip_range": "ip_range"}
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
INDEX = ["identity", "window_start"]


def window_start(timestamps: pd.Series, freq: str) -> pd.Series:
    """Floor timestamps to the start of their window (UTC)."""
    return pd.to_datetime(timestamps, utc=True).dt.floor(freq)


def _distinct(groups: np.ndarray, n_groups: int, values: pd.Series, mask: np.ndarray | None = None
              ) -> np.ndarray:
    """Distinct non-empty ``values`` per group, on integer codes (no string hashing per row)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    empty = np.flatnonzero(np.asarray(uniques, dtype=object) == "")
    valid = codes >= 0
    if len(empty):
        valid &= codes != empty[0]
    if mask is not None:
        valid &= mask
    width = len(uniques) + 1
    pairs = np.unique(groups[valid].astype(np.int64) * width + codes[valid])
    return np.bincount(pairs // width, minlength=n_groups).astype(float)


def aggregate_windows(events: pd.DataFrame) -> pd.DataFrame:
    """Count behaviour per identity and window; one row per (identity, window_start).

    ``events`` must be enriched (:func:`features.enrich.enrich_events`), carry
    ``window_start`` and the novelty flags ``is_new_*``. The input is not modified; an empty
    input gives an empty frame with every feature column.
    """
    if events.empty:
        index = pd.MultiIndex.from_arrays([pd.Series([], dtype="string"),
                                           pd.Series([], dtype="datetime64[us, UTC]")], names=INDEX)
        return pd.DataFrame({name: pd.Series([], dtype="float64") for name in FEATURE_NAMES}, index=index)
    keys = INDEX
    verb = events["verb"].astype("string").fillna("")
    sub = events["target_subresource"].astype("string").fillna("")
    cols: dict[str, object] = {}  # built once: column-by-column inserts into a frame are slow
    cols["identity"] = events["identity"].astype("string")
    cols["window_start"] = events["window_start"]
    cols["n"] = 1
    for v in VERBS:
        cols[f"verb_{v}"] = (verb == v).to_numpy()
    for s in SUBRESOURCES:
        cols[f"sub_{s}"] = (sub == s).to_numpy()
    for name, (col, value) in RESOURCE_MIX.items():
        cols[f"res_{name}"] = (events[col].astype("string").fillna("") == value).to_numpy() \
            if isinstance(value, str) else events[col].to_numpy(dtype=bool)
    for flag in ("is_denied", "is_unauthenticated", "is_other_4xx", "is_5xx", "is_secret_read",
                 *SENSITIVE):
        cols[flag] = events[flag].to_numpy(dtype=bool)
    cols["is_new_identity"] = events["is_new_identity"].to_numpy(dtype=float)
    ind = pd.DataFrame(cols, index=events.index)
    grouped = ind.groupby(keys, sort=True, observed=True)
    sums = grouped.sum(numeric_only=True)
    groups = grouped.ngroup().to_numpy()  # row -> position in sums (sorted like its index)
    n_groups = len(sums)
    n = sums["n"].to_numpy(dtype=float)

    out: dict[str, object] = {}
    out["log_requests"] = np.log1p(n)
    distinct = {"n_verbs": "verb", "n_resources": "target_resource",
                "n_namespaces": "target_namespace", "n_names": "target_name"}
    for feature, column in distinct.items():
        out[feature] = _distinct(groups, n_groups, events[column])
    for v in VERBS:
        out[f"frac_{v}"] = sums[f"verb_{v}"].to_numpy() / n
    for s in SUBRESOURCES:
        out[f"frac_{s}"] = sums[f"sub_{s}"].to_numpy() / n
    for name in RESOURCE_MIX:
        out[f"frac_res_{name}"] = sums[f"res_{name}"].to_numpy() / n
    out["frac_denied"] = sums["is_denied"].to_numpy() / n
    out["frac_unauthenticated"] = sums["is_unauthenticated"].to_numpy() / n
    out["frac_other_4xx"] = sums["is_other_4xx"].to_numpy() / n
    out["frac_5xx"] = sums["is_5xx"].to_numpy() / n
    out["n_denied"] = sums["is_denied"].to_numpy(dtype=float)
    foreign = events["is_foreign_namespace"].to_numpy(dtype=bool)
    out["n_foreign_namespaces"] = _distinct(groups, n_groups, events["target_namespace"], foreign)
    secret = events["is_secret_read"].to_numpy(dtype=bool)
    out["n_secret_namespaces"] = _distinct(groups, n_groups, events["target_namespace"], secret)
    out["n_secret_names"] = _distinct(groups, n_groups, events["target_name"], secret)
    for flag in SENSITIVE:
        out[flag] = sums[flag].to_numpy(dtype=float)
    for attr in NOVELTY:
        # Distinct new values, not events: sixty calls from one new IP are one new IP.
        flagged = events[f"is_new_{attr}"].to_numpy(dtype=bool)
        out[f"new_{attr}"] = _distinct(groups, n_groups, events[NOVELTY_COLUMNS[attr]], flagged)
    out["new_identity"] = (sums["is_new_identity"].to_numpy() > 0).astype(float)
    starts = pd.DatetimeIndex(sums.index.get_level_values("window_start"))
    out["hour_of_day"] = starts.hour.to_numpy(dtype=float)
    out["weekday"] = starts.day_of_week.to_numpy(dtype=float)
    return pd.DataFrame(out, index=sums.index).loc[:, list(FEATURE_NAMES)]
