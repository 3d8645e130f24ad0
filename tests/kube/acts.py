"""What the cast does in one sitting: ordinary work, benign change, and the attacks.

Each act is a short burst of real API calls by one identity; ``multiday`` decides when, in
synthetic time, each burst happened. Denials (403), absences (404) and the failures of a
cluster without kubelets (400 on exec) are caught where they are part of the story, and only
there: an ordinary call that fails is a broken harness and raises.
"""

from __future__ import annotations

import numpy as np
from kubernetes import client

from tests.kube.cast import CRD_GROUP, KUBECTL, NAMESPACES, Cast, deployment, pod, replica_set, rule, subject
from tests.kube.workload import _quiet

#: Each service account's configmap and secret, by namespace.
APP_OF = {"team-a": "app", "team-b": "worker", "team-c": "app", "backup-operator": "operator"}


# --- ordinary work ---------------------------------------------------------------------------


def app_hour(cast: Cast, name: str, ns: str, rng: np.random.Generator) -> None:
    """An application reads its configuration and its database password, as it does every hour."""
    core, app = cast.core(name), APP_OF[ns]
    for _ in range(int(rng.integers(2, 5))):
        core.read_namespaced_config_map(app, ns)
    core.read_namespaced_secret(f"{app}-db", ns)
    if rng.random() < 0.3:
        core.list_namespaced_pod(ns, label_selector=f"app={app}")  # peer discovery


def monitor_hour(cast: Cast) -> None:
    core = cast.core("monitor")
    core.list_pod_for_all_namespaces()
    core.list_service_for_all_namespaces()
    core.list_node()


def probes(cast: Cast, nodes: list[str]) -> None:
    for address in nodes:
        cast.anonymous("/healthz", address)
    cast.anonymous("/readyz", nodes[0])


def developer_hour(cast: Cast, who: str, ns: str, rng: np.random.Generator) -> None:
    """kubectl get/describe/logs in the developer's namespace; now and then a habit RBAC denies."""
    core, apps = cast.core(who), cast.apps(who)
    core.list_namespaced_pod(ns)
    current = cast.pods.get(ns)
    if current and rng.random() < 0.6:
        core.read_namespaced_pod(current, ns)
        core.read_namespaced_pod_log(current, ns, tail_lines=100)
    if rng.random() < 0.5:
        apps.list_namespaced_deployment(ns)
    if rng.random() < 0.4:
        core.list_namespaced_config_map(ns)
        core.list_namespaced_event(ns)
    if rng.random() < 0.1:  # `kubectl get secrets` out of habit: benign, recurring denials
        _quiet(core.list_namespaced_secret, ns)


def kubelet_hour(cast: Cast) -> None:
    """The kubelet refreshes the projected token of every pod it runs (at 80% of an hour's TTL)."""
    for name in cast.running:
        cast.token(name)


def admin_hour(cast: Cast) -> None:
    core = cast.core("admin")
    core.list_node()
    core.list_namespace()
    cast.rbac("admin").list_cluster_role_binding()


def deploy(cast: Cast, ns: str, version: str) -> None:
    """CI rolls out a new version: config first, then the deployment's image."""
    name, core, apps = APP_OF[ns], cast.core("deployer"), cast.apps("deployer")
    image = f"registry.local/{name}:{version}"
    apps.read_namespaced_deployment(name, ns)
    core.patch_namespaced_config_map(name, ns, {"data": {"VERSION": version}})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
    apps.patch_namespaced_deployment(name, ns, patch)
    apps.read_namespaced_deployment_status(name, ns)
    cast.images[ns] = image


def replace_pod(cast: Cast, ns: str, suffix: str) -> None:
    """The replicaset controller replaces the app's pod (after a rollout or a deletion)."""
    core, name, image = cast.core("controller"), APP_OF[ns], cast.images[ns]
    old, new = cast.pods.get(ns), f"{replica_set(name, image)}-{suffix}"
    core.list_namespaced_pod(ns, label_selector=f"app={name}")
    core.create_namespaced_pod(ns, pod(new, name, image))
    if old:
        _quiet(core.delete_namespaced_pod, old, ns)  # 404 when someone deleted it already
    cast.pods[ns] = new


# --- benign change ---------------------------------------------------------------------------


def first_try(cast: Cast, who: str, ns: str) -> None:
    """A new engineer runs kubectl before their access exists: denied."""
    _quiet(cast.core(who).list_namespaced_pod, ns)
    _quiet(cast.core(who).list_namespaced_pod, "default")


def onboard(cast: Cast, who: str, ns: str) -> None:
    cast.bind_role("admin", ns, "developer", "User", who)


def new_service(cast: Cast, ns: str) -> None:
    """A team's new service: its namespace, service account, role, configuration and deployment."""
    core = cast.core("admin")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    cast.service_account("app-c")
    cast.running.append("app-c")
    cast.bind_role("admin", ns, "app", "ServiceAccount", "app", ns)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="app"), data={}))
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="app-db"), string_data={"password": "x"})
    core.create_namespaced_secret(ns, secret)
    cast.images[ns] = "registry.local/app-c:0.1.0"
    cast.apps("admin").create_namespaced_deployment(ns, deployment("app", cast.images[ns]))


def install_operator(cast: Cast) -> None:
    """``helm install backup-operator`` from CI: CRD, ClusterRole, binding, webhook, deployment."""
    ns, core, rbac = "backup-operator", cast.core("deployer"), cast.rbac("deployer")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    names = client.V1CustomResourceDefinitionNames(kind="Backup", plural="backups", singular="backup")
    schema = client.V1CustomResourceValidation(
        open_apiv3_schema=client.V1JSONSchemaProps(type="object", x_kubernetes_preserve_unknown_fields=True)
    )
    version = client.V1CustomResourceDefinitionVersion(name="v1", served=True, storage=True, schema=schema)
    crd = client.V1CustomResourceDefinition(
        metadata=client.V1ObjectMeta(name=f"backups.{CRD_GROUP}"),
        spec=client.V1CustomResourceDefinitionSpec(
            group=CRD_GROUP, names=names, scope="Namespaced", versions=[version]
        ),
    )
    # The client cannot read back a CRD whose status is not filled in yet: keep the raw reply.
    client.ApiextensionsV1Api(cast.api_client("deployer")).create_custom_resource_definition(
        crd, _preload_content=False
    )
    rules = [
        rule([CRD_GROUP], ["backups", "backups/status"], ["get", "list", "watch", "update", "patch"]),
        rule([""], ["pods", "persistentvolumeclaims"], ["get", "list", "watch"]),
        rule([""], ["configmaps"], ["get", "list", "create", "update"]),
    ]
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name="backup-operator"), rules=rules))
    cast.service_account("operator", who="deployer")
    cast.running.append("operator")
    cast.bind_cluster_role(
        "deployer", "backup-operator", "backup-operator", [subject("ServiceAccount", "operator", ns)]
    )
    service = client.AdmissionregistrationV1ServiceReference(name="backup-webhook", namespace=ns, path="/validate")
    webhook = client.V1ValidatingWebhook(
        name=f"validate.backups.{CRD_GROUP}",
        client_config=client.AdmissionregistrationV1WebhookClientConfig(service=service),
        rules=[
            client.V1RuleWithOperations(
                api_groups=[CRD_GROUP], api_versions=["v1"], operations=["CREATE", "UPDATE"], resources=["backups"]
            )
        ],
        failure_policy="Ignore",  # nothing serves it here; only backups would be sent to it
        side_effects="None",
        admission_review_versions=["v1"],
    )
    config = client.V1ValidatingWebhookConfiguration(
        metadata=client.V1ObjectMeta(name="backup-operator"), webhooks=[webhook]
    )
    client.AdmissionregistrationV1Api(cast.api_client("deployer")).create_validating_webhook_configuration(config)
    cast.images[ns] = "registry.local/backup-operator:0.3.1"
    cast.apps("deployer").create_namespaced_deployment(ns, deployment("operator", cast.images[ns]))
    # Helm keeps each release in a secret of its namespace.
    release = client.V1Secret(
        metadata=client.V1ObjectMeta(name="sh.helm.release.v1.backup-operator.v1", labels={"owner": "helm"}),
        string_data={"release": "H4sIAAAAAAAA"},
        type="helm.sh/release.v1",
    )
    core.create_namespaced_secret(ns, release)


def operator_hour(cast: Cast, first_day: bool) -> None:
    """The operator reconciles backups; on its first day it also tries to read secrets it may not."""
    custom = client.CustomObjectsApi(cast.api_client("operator"))
    _quiet(custom.list_cluster_custom_object, CRD_GROUP, "v1", "backups")  # 404 until the CRD is served
    core = cast.core("operator")
    core.list_pod_for_all_namespaces(label_selector="backup=enabled")
    core.list_namespaced_config_map("backup-operator")
    if first_day:  # a chart whose ClusterRole forgot secrets: denied until the next release
        _quiet(core.list_secret_for_all_namespaces)


def on_call(cast: Cast, ns: str, address: str) -> None:
    """An admin woken at 03:00, from home: look, read logs, try a shell, delete the stuck pod, restart."""
    core, apps = cast.core("admin", address=address), cast.apps("admin", address=address)
    current = cast.pods[ns]
    core.list_namespaced_pod(ns)
    core.read_namespaced_pod(current, ns)
    core.list_namespaced_event(ns)
    core.read_namespaced_pod_log(current, ns, tail_lines=500)
    # No kubelet here: the exec is refused with 400, and is in the audit log all the same.
    _quiet(core.connect_post_namespaced_pod_exec, current, ns, command="sh", stdout=True, tty=False)
    core.delete_namespaced_pod(current, ns)
    restart = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}
    apps.patch_namespaced_deployment(APP_OF[ns], ns, restart)
    apps.read_namespaced_deployment_status(APP_OF[ns], ns)
    core.list_namespaced_pod(ns)


# --- attacks ---------------------------------------------------------------------------------

#: The compromised app's probes, one an hour: each denied (the app's Role is team-a only).
PROBES = (
    ("list_namespaced_secret", "team-b"),
    ("list_namespaced_pod", "payments"),
    ("list_namespaced_config_map", "kube-system"),
    ("list_namespaced_secret", "payments"),
    ("list_namespaced_service_account", "kube-system"),
    ("list_namespaced_config_map", "ci"),
    ("list_namespaced_pod", "kube-system"),
    ("list_namespaced_secret", "ci"),
    ("list_namespaced_config_map", "team-b"),
)


def slow_probe(cast: Cast, index: int) -> None:
    method, ns = PROBES[index % len(PROBES)]
    _quiet(getattr(cast.core("app"), method), ns)


def stolen_token(cast: Cast, address: str) -> None:
    """bob's kubeconfig, copied off his laptop, used with kubectl from somewhere else."""
    core = cast.core("bob", ua=KUBECTL, address=address)
    authz = client.AuthorizationV1Api(cast.api_client("bob", ua=KUBECTL, address=address))
    review = client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace="team-b"))
    authz.create_self_subject_rules_review(review)
    core.list_namespaced_pod("team-b")
    core.list_namespaced_config_map("team-b")
    cast.apps("bob", ua=KUBECTL, address=address).list_namespaced_deployment("team-b")
    _quiet(core.list_namespaced_secret, "team-b")
    _quiet(core.list_namespaced_pod, "payments")


def secret_enumeration(cast: Cast, address: str) -> None:
    """The monitor's token, taken from its pod, used with kubectl to hunt for secrets."""
    api_client = cast.api_client("monitor", ua=KUBECTL, address=address)
    authz, core = client.AuthorizationV1Api(api_client), client.CoreV1Api(api_client)
    for ns in NAMESPACES:
        review = client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace=ns))
        authz.create_self_subject_rules_review(review)
    for ns in NAMESPACES:
        _quiet(core.list_namespaced_secret, ns)
    _quiet(core.list_secret_for_all_namespaces)


def cluster_admin_binding(cast: Cast, address: str) -> None:
    rbac = cast.rbac("monitor", ua=KUBECTL, address=address)
    ref = client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin")
    body = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name="monitoring-admin"),
        subjects=[subject("ServiceAccount", "monitor", "kube-system")],
        role_ref=ref,
    )
    _quiet(rbac.create_cluster_role_binding, body)
