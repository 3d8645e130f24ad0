"""Events as people paste them from documentation: kaad reads them, or says exactly why not."""

from __future__ import annotations

import json

from support import AUDIT
from typer.testing import CliRunner

from cli import app
from pipelines.ingest import ingest

RUNNER = CliRunner()
EXAMPLE = AUDIT / "eks_guide_example.json"


def test_the_eks_guide_example_is_one_create_pods_event():
    """Comment, trailing comma, lower-case level, POST and requestTimestamp: one event."""
    result = ingest([str(EXAMPLE)])
    assert result.stats.n_rejected == 0
    (event,) = result.events.to_dict("records")
    assert (event["identity"], event["verb"], event["target_resource"], event["target_name"]) == (
        "system:serviceaccount:default:my-compromised-sa",
        "create",
        "pods",
        "malicious-shell",
    )
    assert event["level"] == "Metadata"
    assert event["auth_decision"] == "allow"  # authorization.kubernetes.io/decision
    assert str(event["timestamp"]) == "2023-10-27 10:30:00+00:00"
    assert event["source_ip"] == "10.0.1.25"
    (warning,) = result.stats.warnings
    assert warning.startswith(f"{EXAMPLE}:35: not strict JSON") and "JSON5" in warning


def test_the_cli_warns_about_json5_on_stderr_and_exits_0():
    outcome = RUNNER.invoke(app, ["ingest", str(EXAMPLE), "--strict"])
    assert outcome.exit_code == 0, outcome.output
    assert "read as JSON5" in outcome.output and "events kept  1" in outcome.output


def test_a_broken_pretty_printed_document_is_one_located_reject(tmp_path):
    """Not JSON and not JSON5 (a missing comma): one reject at the first error, not 40."""
    text = EXAMPLE.read_text().replace('"verb": "POST",', '"verb": "POST"')
    path = tmp_path / "broken.json"
    path.write_text(text)
    stats = ingest([str(path)]).stats
    assert (stats.n_events, stats.n_rejected) == (0, 1)
    (reject,) = stats.rejects
    assert (reject.line, reject.kind) == (10, "not JSON")
    assert "line 10 column 1" in reject.detail


def test_json_lines_with_one_broken_line_still_reject_only_that_line(tmp_path):
    """A cut-off first line does not turn a JSON-lines file into one 'document'."""
    good = json.dumps(
        {
            "kind": "Event",
            "auditID": "a-2",
            "verb": "get",
            "user": {"username": "u"},
            "requestReceivedTimestamp": "2026-01-01T00:00:00Z",
        }
    )
    path = tmp_path / "audit.log"
    path.write_text('{"kind": "Event", "auditID": "a-1", "ver\n' + good + "\n")
    stats = ingest([str(path)]).stats
    assert (stats.n_events, stats.n_rejected) == (1, 1)
    assert stats.rejects[0].line == 1


def _event(verb: str, uri: str, name: str | None) -> dict:
    ref = {"resource": "pods", "namespace": "default", **({"name": name} if name else {})}
    return {
        "kind": "Event",
        "auditID": f"{verb}-{uri}",
        "verb": verb,
        "requestURI": uri,
        "user": {"username": "alice"},
        "objectRef": ref,
        "requestTimestamp": "2026-01-01T00:00:00Z",
    }


def test_http_methods_become_api_verbs(tmp_path):
    """POST create, PUT update, PATCH patch, DELETE delete, GET get (list on a collection)."""
    cases = [
        ("POST", "/api/v1/namespaces/default/pods", None, "create"),
        ("PUT", "/api/v1/namespaces/default/pods/web", "web", "update"),
        ("PATCH", "/api/v1/namespaces/default/pods/web", "web", "patch"),
        ("DELETE", "/api/v1/namespaces/default/pods/web", "web", "delete"),
        ("GET", "/api/v1/namespaces/default/pods/web", "web", "get"),
        ("GET", "/api/v1/namespaces/default/pods", None, "list"),
        ("watch", "/api/v1/namespaces/default/pods?watch=1", None, "watch"),
    ]
    path = tmp_path / "audit.log"
    path.write_text("".join(json.dumps(_event(m, u, n)) + "\n" for m, u, n, _ in cases))
    events = ingest([str(path)]).events
    assert events["verb"].tolist() == [want for *_, want in cases]


def test_scoring_a_day_with_the_example_explains_it(trained):
    """Scored against a model of a small simulated cluster: a service account never seen,
    creating a bare pod by hand, alerts and is explained by that action's rarity, with the
    call behind it."""
    from pipelines.score import score_day

    result = score_day([str(EXAMPLE)], trained["result"].bundle)
    (finding,) = [f for f in result.findings if f.identity == "system:serviceaccount:default:my-compromised-sa"]
    assert finding.reasons
    assert finding.is_alert and finding.reasons[0].feature == "rarity_bare_pod"
    assert finding.reasons[0].text.startswith("pod created by hand (no owner): this identity 0 of 0 windows")
    call = finding.calls.iloc[0]
    assert (call["verb"], call["target_resource"], call["target_name"]) == ("create", "pods", "malicious-shell")
