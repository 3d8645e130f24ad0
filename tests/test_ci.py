"""CI cannot pass by accident: it runs with CI=true, a skip there fails, goldens are never invented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import TESTS

ROOT = TESTS.parent


def _env_without_ci(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CI"} | extra


def test_the_ci_entry_point_runs_make_test_with_ci_set(tmp_path):
    """``.ci/run`` exports CI=true before ``make test`` (a stand-in ``make`` records what it got)."""
    log = tmp_path / "make.log"
    make = tmp_path / "make"
    make.write_text('#!/bin/sh\necho "make $* CI=${CI:-unset}" > "$KAAD_MAKE_LOG"\n')
    make.chmod(0o755)
    env = _env_without_ci(PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}", KAAD_MAKE_LOG=str(log))
    done = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert log.read_text().strip() == "make test CI=true"


SKIPPING = """
import pytest


def test_needs_chromium():
    pytest.skip("chromium is not installed")


@pytest.mark.skipif(True, reason="no kube-apiserver here")
def test_needs_an_apiserver():
    pass


@pytest.mark.xfail(reason="a known bug, recorded")
def test_known_bug():
    assert False


def test_optional_array_api_check():
    pytest.skip("SCIPY_ARRAY_API is not set: not checking array_api input")
"""


def _pytest_with_our_conftest(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a tiny suite in ``tmp_path`` with tests/conftest.py loaded as a plugin."""
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = env | {"PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rfsx",
            "-p",
            "no:cacheprovider",
            "-p",
            "conftest",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_under_ci_a_skipped_test_fails_with_its_reason(tmp_path):
    """A test that cannot find Chromium or an apiserver skips on a laptop and fails in CI;
    an expected failure (xfail) stays what it is, and so does the one skip CI may keep
    (scikit-learn's optional array-API check, see CI_MAY_SKIP)."""
    laptop = _pytest_with_our_conftest(tmp_path, _env_without_ci())
    assert laptop.returncode == 0, laptop.stdout
    assert "3 skipped, 1 xfailed" in laptop.stdout

    ci = _pytest_with_our_conftest(tmp_path, _env_without_ci(CI="true"))
    assert ci.returncode == 1, ci.stdout
    assert "1 failed, 1 skipped, 1 xfailed, 1 error" in ci.stdout  # a skip while setting up is an error
    assert "CI=true, so a skip is a failure: chromium is not installed" in ci.stdout
    assert "CI=true, so a skip is a failure: no kube-apiserver here" in ci.stdout


def test_a_missing_golden_file_fails_and_only_make_goldens_writes_it(request, monkeypatch, tmp_path):
    """Writing a missing golden file would make a new test pass on its first run, whatever it
    output; so a missing one fails (CI or not) and says how to create it."""
    # tests/conftest.py as pytest loaded it (`import conftest` may give another directory's).
    conftest = next(
        m
        for m in request.config.pluginmanager.get_plugins()
        if getattr(m, "__file__", None) and Path(m.__file__) == TESTS / "conftest.py"
    )
    monkeypatch.setattr(conftest, "GOLDEN", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(request.config.option, "update_golden", False)
    golden = request.getfixturevalue("golden")
    with pytest.raises(pytest.fail.Exception, match="is missing; create it with `make goldens`"):
        golden("windows_of_a_new_test", {"n_exec": 3})
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(request.config.option, "update_golden", True)  # what `make goldens` passes
    golden("windows_of_a_new_test", {"n_exec": 3})
    monkeypatch.setattr(request.config.option, "update_golden", False)
    golden("windows_of_a_new_test", {"n_exec": 3})
    with pytest.raises(AssertionError, match="output differs"):
        golden("windows_of_a_new_test", {"n_exec": 4})


def test_make_goldens_rewrites_only_the_golden_tests():
    done = subprocess.run(["make", "-n", "goldens"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "-m pytest -q -m golden --update-golden" in done.stdout
