"""The real kube-apiserver harness (tests/kube/eval_real.py, owned by the e2e tests): run it
when its binaries are there, and keep its JSON, or say plainly why there is none."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "kube" / "eval_real.py"
#: What the harness's JSON must hold (its contract with `make eval`).
FIELDS = ("attackers", "benign_alerts", "n_identities", "days", "error")


def missing() -> str | None:
    """Why the real harness cannot run here, or None."""
    if not HARNESS.is_file():
        return f"{HARNESS.relative_to(ROOT)} is not in this checkout"
    script = ROOT / "tests" / "kube" / "build_apiserver.sh"
    try:
        path = subprocess.run(
            ["bash", str(script), "--path"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "the kube-apiserver's location is unknown (tests/kube/build_apiserver.sh failed)"
    absent = [n for n, there in (("kube-apiserver", Path(path).is_file()), ("etcd", shutil.which("etcd"))) if not there]
    if absent:
        return f"{' and '.join(absent)} not installed: run `make e2e-deps` (root on Debian)"
    return None


def load(path: Path) -> dict:
    """Read a harness JSON; a missing field is an error naming it."""
    doc = json.loads(Path(path).read_text())
    lost = [f for f in FIELDS if f not in doc]
    if lost:
        raise ValueError(f"{path}: the real harness's JSON lacks {lost!r}")
    return doc


def run(out: Path, timeout: float = 1800) -> dict:
    """``{"status": "ran"|"missing"|"failed", "note": str, "result": dict|None}``."""
    why = missing()
    if why is not None:
        return {"status": "missing", "note": why, "result": None}
    cmd = [sys.executable, "-m", "tests.kube.eval_real", "--out", str(out)]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "note": f"the real harness ran over {timeout:.0f} s", "result": None}
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "failed", "note": f"the real harness exited {done.returncode}: {tail}", "result": None}
    return entry(load(out))


def entry(result: dict) -> dict:
    """detection.json's ``real`` entry for a harness result (failed when it reports an error)."""
    if result["error"]:
        return {"status": "failed", "note": f"the real harness reported: {result['error']}", "result": result}
    return {"status": "ran", "note": "", "result": result}
