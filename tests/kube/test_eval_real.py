"""Without a kube-apiserver the real-harness measurement still writes its file, saying why.

`make eval` runs it on machines that may not have run `make e2e-deps`; the JSON then has
every field, nothing measured, and the reason in ``error``.
"""

from __future__ import annotations

import json

from tests.kube.eval_real import _cli


def test_a_machine_without_the_api_server_gets_the_reason_in_the_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAAD_KUBE_CACHE", str(tmp_path / "empty-cache"))  # where build_apiserver.sh looks
    out = tmp_path / "eval" / "real.json"
    assert _cli(["--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["error"].startswith("kube-apiserver")
    assert "make e2e-deps" in written["error"]
    assert {k: v for k, v in written.items() if k != "error"} == {
        "attackers": [],
        "benign_alerts": [],
        "n_identities": 0,
        "days": 8,
    }
    assert "not measured" in capsys.readouterr().err
