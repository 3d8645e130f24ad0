"""A fresh clone installs the versions the tests last passed with: ``constraints.txt``, the lock.

``pyproject.toml`` says which versions kaad accepts; the lock pins one of each, and every
``pip install`` that ``make`` runs is constrained by it. ``make lock`` rewrites it.
"""

from __future__ import annotations

import os
import subprocess
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support import TESTS

ROOT = TESTS.parent


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pairs}


def test_the_lock_pins_every_dependency_pyproject_names_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins = _pins()
    unpinned = [str(r) for r in wanted if canonicalize_name(r.name) not in pins]
    assert unpinned == [], "run `make lock`"
    outside = [
        f"{r} but locked {pins[canonicalize_name(r.name)]}"
        for r in wanted
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == [], "run `make lock`"


def _make_dry_run(*args: str) -> list[str]:
    # Not the flags of a `make test` this may run under (-s, -j, the recursion level).
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_every_install_make_runs_is_constrained_by_the_lock(tmp_path):
    venv = tmp_path / "venv"
    installs = [step for step in _make_dry_run("-B", f"VENV={venv}", "bench") if "pip install" in step]
    assert len(installs) == 3  # pip itself, kaad with its dev extras, the bench extra
    assert all(step.endswith("-c constraints.txt") for step in installs), installs


def test_a_changed_lock_reinstalls_the_venv(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # installed after pyproject.toml and the lock last changed
    stamp = f"{venv}/.installed"

    def installs(*args: str) -> list[str]:
        return [step for step in _make_dry_run(f"VENV={venv}", *args, stamp) if "pip install" in step]

    assert installs() == []
    assert len(installs("-W", "constraints.txt")) == 2


def test_the_first_install_says_what_it_installs_and_where_kaad_lands(tmp_path):
    """The first make is not two silent minutes; and the README's bare `kaad` is explained."""
    steps = _make_dry_run("-B", f"VENV={tmp_path / 'venv'}", f"{tmp_path / 'venv'}/.installed")
    said = " ".join(step for step in steps if step.startswith("echo"))
    assert "once, about 2 minutes" in said and "constraints.txt" in said
    assert f"source {tmp_path / 'venv'}/bin/activate" in said
