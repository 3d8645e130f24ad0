"""A real kube-apiserver (with etcd) on loopback ports, writing a JSON audit log.

Built once per machine by ``make e2e-deps`` (``build_apiserver.sh``) into a cache outside the
repository; the tests only look for it and for etcd, and never install anything. Started
with static-token users, service-account token signing (for TokenRequest), RBAC and an audit
policy; stopped by PID. No controllers run: pods stay Pending, which the audit log does not mind.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
ADMIN_TOKEN = "kaad-admin-token"
#: Static users: token -> (user, uid, groups)
USERS = {
    ADMIN_TOKEN: ("admin", "u-admin", "system:masters"),
    "kaad-alice-token": ("alice", "u-alice", "developers"),
    "kaad-bob-token": ("bob", "u-bob", "developers"),
    "kaad-carol-token": ("carol", "u-carol", "developers"),  # joins mid-way in multiday.py
    "kaad-node-token": ("system:node:ip-10-0-1-17", "u-node", "system:nodes"),  # multiday.py's kubelet
}
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
# Secrets and tokens at Metadata only: their bodies must never reach a log.
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "serviceaccounts/token"]
- level: RequestResponse
  verbs: ["create", "update", "patch"]
  resources:
  - group: ""
    resources: ["pods", "configmaps"]
  - group: "rbac.authorization.k8s.io"
  - group: "apps"
- level: Metadata
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary() -> Path:
    """Where ``build_apiserver.sh`` puts kube-apiserver (it may not be there yet)."""
    out = subprocess.run(
        ["bash", str(HERE / "build_apiserver.sh"), "--path"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def missing() -> str | None:
    """None when kube-apiserver and etcd are installed, else what is missing and how to install it."""
    path = binary()
    absent = [name for name, there in (("kube-apiserver", path.is_file()), ("etcd", shutil.which("etcd"))) if not there]
    if not absent:
        return None
    return f"{' and '.join(absent)} not installed (looked in {path.parent} and PATH): run `make e2e-deps`"


def _service_account_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )


class ApiServer:
    """etcd + kube-apiserver in ``workdir``; ``url``, ``audit_log`` and ``stop()``."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.workdir = workdir
        self.audit_log = workdir / "audit.log"
        self.procs: list[subprocess.Popen] = []
        etcd_port, peer_port, self.port = _free_port(), _free_port(), _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        (workdir / "etcd").mkdir()
        self._logs = [open(workdir / "etcd.out", "w"), open(workdir / "apiserver.out", "w")]  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [
                    "etcd",
                    "--data-dir",
                    str(workdir / "etcd"),
                    "--listen-client-urls",
                    f"http://127.0.0.1:{etcd_port}",
                    "--advertise-client-urls",
                    f"http://127.0.0.1:{etcd_port}",
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster",
                    f"default=http://127.0.0.1:{peer_port}",
                ],
                stdout=self._logs[0],
                stderr=subprocess.STDOUT,
            )
        )
        tokens = workdir / "tokens.csv"
        tokens.write_text("".join(f'{t},{u},{i},"{g}"\n' for t, (u, i, g) in USERS.items()))
        policy = workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        key = workdir / "sa.key"
        _service_account_key(key)
        (workdir / "certs").mkdir()
        self.procs.append(
            subprocess.Popen(
                [
                    str(binary),
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={self.port}",
                    "--insecure-port=0",
                    "--advertise-address=127.0.0.1",
                    "--endpoint-reconciler-type=none",
                    "--authorization-mode=RBAC",
                    f"--token-auth-file={tokens}",
                    f"--service-account-key-file={key}",
                    f"--service-account-signing-key-file={key}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    "--api-audiences=https://kubernetes.default.svc.cluster.local",
                    f"--audit-policy-file={policy}",
                    f"--audit-log-path={self.audit_log}",
                    f"--cert-dir={workdir / 'certs'}",
                    "--service-cluster-ip-range=10.96.0.0/16",
                    "--allow-privileged=true",
                    "--anonymous-auth=true",
                    "--enable-admission-plugins=NamespaceLifecycle",
                    "--disable-admission-plugins=ServiceAccount",
                ],
                stdout=self._logs[1],
                stderr=subprocess.STDOUT,
            )
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 90) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(self.url + "/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                tail = (self.workdir / "apiserver.out").read_text()[-2000:]
                self.stop()
                raise RuntimeError(f"kube-apiserver did not become ready:\n{tail}")
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for handle in self._logs:
            handle.close()
