"""Peer precedent for novelty: whose past a value is new to, and what counts as the same value.

Two routine changes looked new to the first-seen encoder (features/first_seen.py) though a
security engineer would call them precedented:

- A kubelet serves the pods the scheduler binds to its node, in whatever namespaces they are,
  and the node authoriser lets it read only those pods' secrets and config maps. A node that
  joined yesterday meets the cluster's app namespaces hour by hour, each one new to it but
  served by every other kubelet. A fleet's members are judged against the fleet: a namespace
  is new to a kubelet when no kubelet has worked in it.
- A client upgrade changes the version in the user agent, not the client or the machine:
  ``kubectl/v1.31.1 (darwin/arm64)`` after ``kubectl/v1.29.3 (darwin/arm64)`` is Homebrew, not
  an intruder. A user agent is keyed by its client line (program and platform, version left
  out) where it states a platform. A different program, or the same one built for another
  platform (another machine), stays new.
- A controller creating a pod from its owner's template (a DaemonSet's, a ReplicaSet's) runs the
  images the template names; it chooses none of them. An image is introduced by whoever wrote
  it into a spec, and judged against that author's past; the controller's copies are not its
  own new images (an add-on upgrade made the daemon-set-controller the top benign alert of a
  50-node day, 8.8 nats, "with an image new to the identity").
  ``ownerReferences`` are written by the requester, though: anyone who may create a pod may
  name an owner in it, and a bare pod that names a fake DaemonSet would hide its image. So only
  kube-controller-manager's own pod-creating controllers copy without introducing
  (:data:`POD_CONTROLLERS`); an owner named by anyone else is only a claim.
- The same holds for the pod's privileged and host settings and its namespace: an add-on
  upgrade had the daemon-set-controller create its DaemonSets' privileged, host-network pods in
  kube-system again, as it does on every new node (51 of its 450 training windows), and that
  alone was a 50-node day's top benign alert (7.8 nats, "workload with privileged or host
  settings"). A controller's copy from an owner it has created pods for before (the first-seen
  pair of controller and owner, :func:`template_owners`) is precedented: the owner's writer is
  judged where the template was written. An owner new to the controller (a DaemonSet created
  today) still counts, and so does a pod from anyone but a pod-creating controller. Only a
  scored day excuses the copies (``excuse_copies`` of :func:`features.windows.partial_windows`):
  training history counts them, as the rates and the calibration's reference need (excused
  there too, quick seed 3's rarity reference lost its top, 40.9 nats, and a CI deployer's first
  role write rose from 3.0 to 10.6 nats).
- A namespace comes to life through first accesses: its creator, the controllers and the
  scheduler, the kubelets that run its pods, a GitOps controller syncing it. Each is new to the
  namespace because the namespace is new, not because the identity does something it never did
  where others work: a team onboarded on an attack-free day (quick seed 2) made argocd's
  application controller and three kubelets alert "in a namespace new to the identity" alone.
  So in the window where the cluster first sees a namespace (:data:`BIRTH_ATTRIBUTE`; no
  identity had used it before) and an object is created in it (:func:`populated_namespaces`:
  the creator's objects, and in every real cluster the ``default`` service account and the
  ``kube-root-ca.crt`` config map that kube-controller-manager writes into each new
  namespace), a first access to it is not new. A create of a subresource is no birth: an
  exec into a pod or a token minted for a service account acts on what is already there, so
  an intruder's exec in a namespace nobody used excuses neither their reads there nor others'.
  Only a create in the namespace the cluster first sees counts, in that window: a create in
  another namespace excuses nothing here. From the next window on, a first access is
  judged as any other (a kubelet given its first pod there tomorrow is new, unless the fleet
  has served it). Unseen is not unborn: a namespace that exists but was never used while the
  history was recorded (a vault of secrets nobody reads) and is probed by a stolen token,
  reads and denials only, is still new to the prober. An attacker who creates a namespace
  loses only this context: the namespace's creation (``create namespaces``, a new verb and
  resource for most identities), and what they do in it (privileged or bare pods, secrets
  read, roles bound) are still flagged and counted by their own families. The day state
  learns a namespace's birth even from an alerting identity-day, so the excuse is spent once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Peer groups whose members are interchangeable by construction, by the prefix of their names
#: (the peer group ``nodes`` of features/peers.py): what one member does, any may do.
FLEETS: dict[str, str] = {"nodes": "system:node:"}
#: ``program/version (os/arch) rest``: the shape kubectl and every client-go program send.
_VERSIONED = r"^([^/\s]+)/v?\d[^\s]*\s+\(([^()/\s]+/[^()\s]+)\)"


def _per_distinct(values: pd.Series, func) -> pd.Series:
    """``func`` applied to the distinct values only (an audit day repeats a few thousand), mapped back."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.asarray(func(pd.Series(uniques, dtype=object)).to_numpy(dtype=object))
    out = np.full(len(codes), None, dtype=object)
    out[codes >= 0] = mapped[codes[codes >= 0]]
    return pd.Series(out, index=values.index, dtype=object)


def fleet_owners(identities: pd.Series) -> pd.Series:
    """Each identity, or its fleet's name (``fleet:nodes``) where it is a member of one.

    Examples
    --------
    >>> fleet_owners(pd.Series(["system:node:ip-10-0-1-5", "alice"])).tolist()
    ['fleet:nodes', 'alice']
    """

    def owner(names: pd.Series) -> pd.Series:
        out = names.copy()
        for fleet, prefix in FLEETS.items():
            out = out.mask(names.astype(str).str.startswith(prefix), f"fleet:{fleet}")
        return out

    return _per_distinct(identities, owner)


def client_lines(user_agents: pd.Series) -> pd.Series:
    """Each user agent as its client line, ``program (os/arch)``, where it states both; else unchanged.

    Examples
    --------
    >>> client_lines(pd.Series(["kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5", "curl/8.5.0"])).tolist()
    ['kubectl (darwin/arm64)', 'curl/8.5.0']
    """

    def line(text: pd.Series) -> pd.Series:
        parts = text.astype(str).str.extract(_VERSIONED, expand=True)
        return (parts[0] + " (" + parts[1] + ")").fillna(text)

    return _per_distinct(user_agents, line)


#: The identities of kube-controller-manager's controllers that create pods from an owner's
#: template: with ``--use-service-account-credentials`` (EKS, kubeadm) each controller has its own
#: service account in kube-system; without it, all act as ``system:kube-controller-manager``.
#: Only the cluster's control plane holds these credentials, and a requester cannot choose the
#: name the apiserver authenticates it as (impersonating one needs ``impersonate`` on it, itself
#: a finding), whereas it can write any ``ownerReferences`` it likes. The deployment and cronjob
#: controllers create ReplicaSets and Jobs, not pods; third-party operators (Argo Rollouts, a
#: database operator) are not here: their pods' images are judged as theirs.
POD_CONTROLLERS = frozenset(
    {"system:kube-controller-manager"}
    | {
        f"system:serviceaccount:kube-system:{name}"
        for name in (
            "daemon-set-controller",
            "replicaset-controller",
            "replication-controller",
            "statefulset-controller",
            "job-controller",
        )
    }
)


def authored_images(images: pd.Series, owned: pd.Series, requesters: pd.Series) -> pd.Series:
    """The images each request introduces: none where a pod-creating controller of
    kube-controller-manager (:data:`POD_CONTROLLERS`) creates a pod that names an owner (it copied
    its owner's template, whose images were judged when the template was written).

    ``owned`` is the pod's ``pod_has_owner`` (None for other bodies: a workload's template, a
    bare pod's spec and anything else keep their images). ``requesters`` is who sent each
    request: a pod naming an owner sent by anyone else keeps its images, as the owner is only
    the requester's claim.

    Examples
    --------
    >>> dsc = "system:serviceaccount:kube-system:daemon-set-controller"
    >>> authored_images(
    ...     pd.Series(["web:2", "web:2", "web:2", "web:2"]),
    ...     pd.Series([True, False, None, True]),
    ...     pd.Series([dsc, dsc, dsc, "system:serviceaccount:shop:default"]),
    ... ).tolist()
    [nan, 'web:2', 'web:2', 'web:2']
    """
    copied = owned.astype("boolean").fillna(False).to_numpy(dtype=bool)
    by_controller = requesters.isin(POD_CONTROLLERS).to_numpy(dtype=bool)
    return images.mask(copied & by_controller)


def template_owners(owners: pd.Series, requesters: pd.Series) -> pd.Series:
    """The owner whose template each pod copies (``pod_owner``, ``Kind/namespace/name``), where
    a pod-creating controller of kube-controller-manager (:data:`POD_CONTROLLERS`) sent it; else
    NA (the owner anyone else names is only a claim).

    Examples
    --------
    >>> dsc = "system:serviceaccount:kube-system:daemon-set-controller"
    >>> template_owners(
    ...     pd.Series(["DaemonSet/kube-system/aws-node", "DaemonSet/kube-system/aws-node", None]),
    ...     pd.Series([dsc, "alice", dsc]),
    ... ).tolist()
    ['DaemonSet/kube-system/aws-node', <NA>, <NA>]
    """
    by_controller = requesters.isin(POD_CONTROLLERS).to_numpy(dtype=bool)
    return owners.astype("string").where(by_controller)


#: The window features (features/flags.py) a controller's copy of a known owner's template does
#: not count: the pod's privileged and host settings, and its creation in a system namespace.
COPIED_FEATURES = (
    "n_privileged",
    "n_hostpath",
    "n_hostpath_root",
    "n_hostpid",
    "n_hostnetwork",
    "n_hostipc",
    "n_dangerous_caps",
    "n_runs_as_root",
    "n_system_namespace_workloads",
)


def precedented_copies(events: pd.DataFrame) -> np.ndarray:
    """Which events are a pod-creating controller's copy of an owner it has created pods for
    before: a ``template_owner`` that the first-seen encoder did not mark new
    (``is_new_template_owner``). All False where either column is missing (older tables and
    encoders)."""
    if "template_owner" not in events.columns or "is_new_template_owner" not in events.columns:
        return np.zeros(len(events), dtype=bool)
    known = events["template_owner"].notna().to_numpy(dtype=bool)
    return known & ~events["is_new_template_owner"].to_numpy(dtype=bool)


def informer_reads(verb_resources: pd.Series) -> pd.Series:
    """Each ``verb resource`` with a watch keyed as a list of the same kind: one informer's read.

    An informer (client-go's ListAndWatch) lists its kind once, then watches it, re-opening the
    watch every few minutes, and lists again only when the watch cannot resume: an API server
    restart, a 410 Gone. Weeks of history hold its watches but maybe no list; a restart then had
    every informer "list pods for the first time" at once. Keyed together, an identity that
    watches a kind is not new to listing it, and one that lists a kind is not new to watching
    it: both read every object of the kind. Reading a kind at all is still new.

    Examples
    --------
    >>> informer_reads(pd.Series(["watch pods", "list pods", "get secrets", "watch nonresource"])).tolist()
    ['list pods', 'list pods', 'get secrets', 'list nonresource']
    """
    return _per_distinct(verb_resources, lambda text: text.astype(str).str.replace(r"^watch ", "list ", regex=True))


#: The first-seen attributes (features/first_seen.py) judged against a fleet, by client line,
#: and as one informer's read.
FLEET_ATTRIBUTES = ("namespace",)
LINE_ATTRIBUTES = ("user_agent",)
READ_ATTRIBUTES = ("verb_resource",)


def precedent_keys(
    name: str, identity: pd.Series, values: pd.Series, *, reads: bool = True
) -> tuple[pd.Series, pd.Series]:
    """The (owner, value) an attribute's novelty is keyed by: a fleet's, a client line and an
    informer's read where they apply (``reads=False``: as encoders saved before that keyed it)."""
    if name in FLEET_ATTRIBUTES:
        identity = fleet_owners(identity)
    if name in LINE_ATTRIBUTES:
        values = client_lines(values)
    if reads and name in READ_ATTRIBUTES:
        values = informer_reads(values)
    return identity, values


#: The first-seen attribute whose values are born: new to the whole cluster in one window.
BIRTH_ATTRIBUTE = "namespace"
#: The event column naming the namespace an allowed create wrote into (:func:`populated_namespaces`).
POPULATED = "populated_namespace"


#: Resources whose ``create`` stores no object of its own in the namespace it names: reviews
#: (answered and forgotten), a pod's binding (written into the pod) and events (reports, written
#: where the objects they are about already are).
NOT_STORED = frozenset(
    {
        "bindings",
        "events",
        "localsubjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "tokenreviews",
    }
)


def populated_namespaces(events: pd.DataFrame) -> pd.Series:
    """The namespace each allowed ``create`` of an object brought something into; NA for any
    other event.

    Only an object stored counts: the object's namespace, or for a Namespace the one it names
    (where the audit event names it). A create of a subresource acts on an object already there
    (``pods/exec``, ``pods/attach``, ``pods/portforward``, ``pods/eviction``, ``pods/binding``,
    ``serviceaccounts/token``): an intruder's exec into a pod, or a token minted for a service
    account, in a namespace nobody used brings nothing to life there. Neither do the resources
    of :data:`NOT_STORED`.

    Examples
    --------
    >>> populated_namespaces(pd.DataFrame({
    ...     "verb": ["create", "create", "get", "create", "create", "create"],
    ...     "response_code": [201, 403, 200, 201, 201, 201],
    ...     "target_resource": ["secrets", "secrets", "secrets", "pods", "serviceaccounts", "namespaces"],
    ...     "target_subresource": [None, None, None, "exec", "token", None],
    ...     "target_namespace": ["shop", "vault", "shop", "vault", "vault", None],
    ...     "target_name": ["tls", "tls", "tls", "db-0", "db", "ledger"],
    ... })).tolist()
    ['shop', <NA>, <NA>, <NA>, <NA>, 'ledger']
    """
    code = events["response_code"].astype("Int64").fillna(0).to_numpy()
    created = (events["verb"].astype("string") == "create").fillna(False).to_numpy(dtype=bool)
    resource = events["target_resource"].astype("string")
    whole = events["target_subresource"].astype("string").fillna("").eq("").to_numpy(dtype=bool)
    stored = whole & ~resource.isin(NOT_STORED).to_numpy(dtype=bool)
    namespace = events["target_namespace"].astype("string")
    named = events.get("target_name", pd.Series(pd.NA, index=events.index)).astype("string")
    namespace = namespace.mask(resource.eq("namespaces").fillna(False), named.fillna(namespace))
    return namespace.where(created & stored & (code >= 200) & (code < 300) & namespace.ne("").fillna(False))
