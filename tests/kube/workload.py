"""Drive a real API server with the Python kubernetes client: ordinary rounds, then an attack.

Cast: admin (system:masters), alice and bob (developers with Roles in their team namespaces),
three service accounts with tokens from TokenRequest (app in team-a, deployer in team-b,
monitor reading pods cluster-wide), and anonymous health checks. Each round is one ordinary
stretch of work; the attack is app's token used by an intruder.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kube.apiserver import ADMIN_TOKEN

KUBECTL = "kubectl/v1.20.2 (linux/amd64) kubernetes/faecb19"
SA_UA = {
    "app": "app/v1.4.0 (linux/amd64) kubernetes/$Format",
    "deployer": "argocd-application-controller/v2.0.0 (linux/amd64) kubernetes/$Format",
    "monitor": "Prometheus/2.26.0",
}
NAMESPACES = ("team-a", "team-b", "kube-system", "payments")


def api(url: str, token: str | None, user_agent: str) -> client.ApiClient:
    config = client.Configuration(host=url)
    config.verify_ssl = False
    if token:
        config.api_key = {"authorization": f"Bearer {token}"}
    api_client = client.ApiClient(config)
    api_client.user_agent = user_agent
    return api_client


def _quiet(call, *args, **kwargs):
    """Run a call whose denial (403) or absence (404) is part of the story."""
    try:
        return call(*args, **kwargs)
    except ApiException as exc:
        if exc.status not in (403, 404, 409, 400):
            raise
        return None


def setup(url: str) -> dict[str, str]:
    """Namespaces, roles, service accounts; returns the service accounts' tokens."""
    admin = api(url, ADMIN_TOKEN, KUBECTL)
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    for ns in NAMESPACES:
        _quiet(core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    rules = {
        "developer": [
            client.V1PolicyRule(
                api_groups=["", "apps"],
                resources=["pods", "pods/log", "configmaps", "deployments", "services", "events"],
                verbs=["get", "list", "watch"],
            )
        ],
        "app": [
            client.V1PolicyRule(api_groups=[""], resources=["configmaps", "secrets"], verbs=["get", "list"]),
            client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list", "create"]),
        ],
        "deployer": [
            client.V1PolicyRule(
                api_groups=["", "apps"],
                resources=["configmaps", "deployments", "services"],
                verbs=["get", "list", "create", "update", "patch"],
            )
        ],
    }
    bindings = [
        ("team-a", "developer", "User", "alice"),
        ("team-b", "developer", "User", "bob"),
        ("team-a", "app", "ServiceAccount", "app"),
        ("team-b", "deployer", "ServiceAccount", "deployer"),
    ]
    for ns, role, kind, name in bindings:
        _quiet(
            rbac.create_namespaced_role, ns, client.V1Role(metadata=client.V1ObjectMeta(name=role), rules=rules[role])
        )
        subject = client.RbacV1Subject(
            kind=kind,
            name=name,
            namespace=ns if kind == "ServiceAccount" else None,
            api_group="rbac.authorization.k8s.io" if kind == "User" else None,
        )
        _quiet(
            rbac.create_namespaced_role_binding,
            ns,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=f"{role}-{name}"),
                subjects=[subject],
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=role),
            ),
        )
    _quiet(
        rbac.create_cluster_role,
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["pods", "nodes", "services"], verbs=["get", "list", "watch"]
                )
            ],
        ),
    )
    _quiet(
        rbac.create_cluster_role_binding,
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="monitor-pod-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="monitor", namespace="kube-system")],
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="pod-reader"),
        ),
    )
    tokens = {}
    for name, ns in (("app", "team-a"), ("deployer", "team-b"), ("monitor", "kube-system")):
        _quiet(
            core.create_namespaced_service_account, ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
        )
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=86400
            )
        )
        tokens[name] = core.create_namespaced_service_account_token(name, ns, request).status.token
    for ns, name in (("team-a", "app-config"), ("team-b", "deploy-config")):
        _quiet(
            core.create_namespaced_config_map,
            ns,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"LOG_LEVEL": "info"}),
        )
    _quiet(
        core.create_namespaced_secret,
        "team-a",
        client.V1Secret(metadata=client.V1ObjectMeta(name="app-db"), string_data={"password": "not-a-real-password"}),
    )
    _quiet(
        core.create_namespaced_pod,
        "team-a",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="app-0", labels={"app": "app"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="registry.local/app:1.4.0")]),
        ),
    )
    return tokens


def _anonymous(url: str, path: str) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url + path, headers={"User-Agent": "kube-probe/1.20"})
    try:
        urllib.request.urlopen(req, context=ctx, timeout=5).read()
    except urllib.error.HTTPError:
        pass


def normal_round(url: str, tokens: dict[str, str], round_no: int) -> None:
    """One ordinary stretch of work by every identity."""
    app = client.CoreV1Api(api(url, tokens["app"], SA_UA["app"]))
    for _ in range(3):
        app.read_namespaced_config_map("app-config", "team-a")
        app.read_namespaced_secret("app-db", "team-a")
    deployer_api = api(url, tokens["deployer"], SA_UA["deployer"])
    deployer, apps = client.CoreV1Api(deployer_api), client.AppsV1Api(deployer_api)
    deployer.patch_namespaced_config_map("deploy-config", "team-b", {"data": {"ROUND": str(round_no)}})
    apps.list_namespaced_deployment("team-b")
    monitor = client.CoreV1Api(api(url, tokens["monitor"], SA_UA["monitor"]))
    monitor.list_pod_for_all_namespaces()
    monitor.list_service_for_all_namespaces()
    for user, ns in (("alice", "team-a"), ("bob", "team-b")):
        core = client.CoreV1Api(api(url, f"kaad-{user}-token", KUBECTL))
        core.list_namespaced_pod(ns)
        core.list_namespaced_config_map(ns)
        if round_no % 4 == 0:  # a misconfigured habit: benign, recurring denials
            _quiet(core.list_namespaced_secret, ns)
    for path in ("/healthz", "/version"):
        _anonymous(url, path)


def attack(url: str, tokens: dict[str, str]) -> None:
    """The app service account's token in an intruder's hands."""
    intruder = api(url, tokens["app"], "curl/7.68.0")
    core, rbac = client.CoreV1Api(intruder), client.RbacAuthorizationV1Api(intruder)
    authz = client.AuthorizationV1Api(intruder)
    for ns in NAMESPACES:
        authz.create_self_subject_rules_review(
            client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace=ns))
        )
    for ns in NAMESPACES:
        _quiet(core.list_namespaced_secret, ns)
    _quiet(core.list_secret_for_all_namespaces)
    for ns, pod in (("team-a", "app-0"), ("kube-system", "kube-proxy-x")):
        _quiet(core.connect_post_namespaced_pod_exec, pod, ns, command="sh", stdin=False, stdout=True, tty=False)
    privileged = client.V1Pod(
        metadata=client.V1ObjectMeta(name="debug-node"),
        spec=client.V1PodSpec(
            host_pid=True,
            host_network=True,
            containers=[
                client.V1Container(
                    name="shell",
                    image="alpine:3.13",
                    command=["sleep", "3600"],
                    security_context=client.V1SecurityContext(privileged=True),
                    volume_mounts=[client.V1VolumeMount(name="host", mount_path="/host")],
                )
            ],
            volumes=[client.V1Volume(name="host", host_path=client.V1HostPathVolumeSource(path="/"))],
        ),
    )
    _quiet(core.create_namespaced_pod, "team-a", privileged)
    _quiet(
        rbac.create_cluster_role_binding,
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="app-admin"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="app", namespace="team-a")],
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"),
        ),
    )


def drive(url: str, rounds: int) -> list[float]:
    """Set up, run the rounds and the attack; return the wall-clock start of each round and
    of the attack (the last entry)."""
    tokens = setup(url)
    marks = []
    for r in range(rounds):
        marks.append(time.time())
        normal_round(url, tokens, r)
        time.sleep(0.05)
    marks.append(time.time())
    attack(url, tokens)
    return marks
