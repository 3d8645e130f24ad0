"""`kaad ui` as a real process: any signal stops the MLflow server and its workers, quietly.

These start kaad itself (not CliRunner): what is checked is what happens to the processes
behind it, which only a real process group shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
            return True
    except OSError:
        return False


def _children_groups(pid: int) -> set[int]:
    """Process groups of ``pid``'s direct children, read from /proc."""
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields: state, ppid, pgrp, ...
            groups.add(int(fields[2]))
    return groups


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_any_signal_to_kaad_ui_stops_the_server_and_every_worker_quietly(tmp_path, signum, mlflow_store):
    port = _free_port()
    log = tmp_path / "stderr.txt"
    store = mlflow_store  # already migrated: the server comes up without creating its tables first
    with log.open("wb") as sink:  # a file, not a pipe: children left behind would hold a pipe open
        kaad = subprocess.Popen(
            [sys.executable, "-m", "cli", "ui", "--port", str(port), "--tracking-uri", store],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,  # so the test can clean up whatever is left, whatever happens
        )
    groups: set[int] = set()
    try:
        # The UI comes up and answers on the port.
        assert _wait_until(lambda: _answers(port) or kaad.poll() is not None, 90), "the UI did not answer in 90 s"
        assert kaad.poll() is None, log.read_text()
        groups = _children_groups(kaad.pid) | {kaad.pid}

        # One signal to kaad alone (as `kill` or a closed terminal sends it) ...
        os.kill(kaad.pid, signum)
        kaad.wait(timeout=30)

        # ... and nothing of the UI is left: the port goes quiet, every process group is gone.
        assert _wait_until(lambda: not _answers(port), 15), "the port still answers after kaad exited"
        assert _wait_until(lambda: not any(_group_alive(g) for g in groups), 15), "processes of the UI remain"
        text = log.read_text()
        assert "Traceback" not in text, text
        assert "DeprecationWarning" not in text, text
    finally:
        for group in groups | {kaad.pid}:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if kaad.poll() is None:
            kaad.kill()
            kaad.wait()
