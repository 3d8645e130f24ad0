"""The end-to-end tests use Chromium, etcd and a kube-apiserver but never install them.

``make test`` runs ``make e2e-deps`` (``tests/e2e_deps.sh``) first: as root on Debian it
installs what is missing, once; elsewhere it says so and the tests that need them skip (and
fail under CI=true). Stand-in commands on PATH play apt-get and id, as in test_ci.py.
"""

from __future__ import annotations

import os
import subprocess

from support import TESTS

from tests.kube.apiserver import binary, missing

ROOT = TESTS.parent


def _stand_ins(bin_dir, **scripts: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)


def _e2e_deps(tmp_path, cache) -> subprocess.CompletedProcess:
    env = os.environ | {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "KAAD_KUBE_CACHE": str(cache),
        "TMPDIR": str(tmp_path),
    }
    return subprocess.run(["bash", str(TESTS / "e2e_deps.sh")], env=env, capture_output=True, text=True, timeout=60)


def test_make_test_installs_the_end_to_end_dependencies_before_running_pytest():
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    steps = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    ).stdout.splitlines()
    install = next(i for i, step in enumerate(steps) if "tests/e2e_deps.sh" in step)
    pytest_run = next(i for i, step in enumerate(steps) if "-m pytest" in step)
    assert install < pytest_run


def test_no_test_installs_system_packages():
    installing = [
        str(path.relative_to(ROOT))
        for path in TESTS.rglob("*.py")
        if path.name != "test_e2e_deps.py" and "apt-get" in path.read_text()
    ]
    assert installing == []


def test_once_everything_is_there_e2e_deps_is_silent_and_installs_nothing(tmp_path):
    calls = tmp_path / "apt-get.calls"
    _stand_ins(tmp_path / "bin", chromium="true", etcd="true", **{"apt-get": f'echo "$*" >> {calls}'})
    cache = tmp_path / "kube"
    cache.mkdir()
    built = cache / binary().name
    built.write_text("#!/bin/sh\n")
    built.chmod(0o755)
    done = _e2e_deps(tmp_path, cache)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not calls.exists()


def test_without_root_e2e_deps_says_so_and_lets_the_tests_skip(tmp_path):
    calls = tmp_path / "apt-get.calls"
    _stand_ins(tmp_path / "bin", id="echo 1000", **{"apt-get": f'echo "$*" >> {calls}'})
    done = _e2e_deps(tmp_path, tmp_path / "empty-cache")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "e2e-deps: kube-apiserver missing; installing needs root and apt-get (Debian), "
        "so the end-to-end tests will skip\n"
    )
    assert not calls.exists()


def test_a_missing_kube_apiserver_is_a_skip_that_names_the_make_step(tmp_path, monkeypatch):
    monkeypatch.setenv("KAAD_KUBE_CACHE", str(tmp_path))
    reason = missing()
    assert reason is not None
    assert reason.startswith("kube-apiserver")
    assert str(tmp_path) in reason and "run `make e2e-deps`" in reason
