"""The current detector on a real kube-apiserver's week: every attacker's rank, every benign alert.

``python -m tests.kube.eval_real --out real.json`` starts the API server (``make e2e-deps``
installs it), runs ``multiday``'s scenario, trains with the default ``TrainConfig`` (but for a
fixed seed, so that runs repeat) on every day but the last through ``pipelines.train.train``,
scores the last day with ``pipelines.score.score_day`` and writes::

    {"attackers": [{"identity", "scenario", "identity_rank", "best_window_rank", "alert"}],
     "benign_alerts": [{"identity", "scenario", "window_start", "anomaly_score"}],
     "n_identities": int, "days": int, "error": null | str}

``identity_rank`` is the rank (1-based, ties share the better rank) of the attacker's best
window score among the last day's identities; ``best_window_rank`` that window's rank among
all the day's windows; ``alert`` whether any window holding the attack crossed the model's
threshold. ``benign_alerts`` are the last day's windows above the threshold that hold no
attack, named by the ``benign_*`` scenarios in them, or ``normal``. When the API server is
missing or the run fails, the file still comes, with ``error`` saying why and nothing measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd
from kubernetes.client.rest import ApiException

from errors import KaadError
from models.detector import DetectorParams
from pipelines.evaluate import read_labels
from pipelines.score import score_day
from pipelines.train import TrainConfig, train
from tests.kube.apiserver import ApiServer, binary, missing
from tests.kube.multiday import DAYS, RealDays, run


def measure(real: RealDays, *, seed: int = 0) -> dict:
    """Train on all days but the last, score the last; the JSON's measured fields."""
    model = train([str(f) for f in real.files[:-1]], TrainConfig(params=DetectorParams(seed=seed)))
    day = real.attack_day.date()
    scored = score_day([str(real.files[-1])], model.bundle, day=day, top=0)
    scores = scored.windows["anomaly_score"]
    window_rank: dict = scores.rank(ascending=False, method="min").to_dict()
    peaks = scores.groupby(level="identity").max()
    identity_rank: dict = peaks.rank(ascending=False, method="min").to_dict()
    truth = read_labels(real.labels, freq=model.bundle.window)
    truth = truth[truth["window_start"].dt.date == day]
    keys = list(zip(truth["identity"], truth["window_start"], strict=True))
    truth = truth.assign(key=keys, attack=~truth["scenario"].str.startswith("benign_"))
    attackers = []
    for (scenario, who), rows in truth[truth["attack"]].groupby(["scenario", "identity"], sort=True):
        windows = [k for k in dict.fromkeys(rows["key"]) if k in scores.index]
        if len(windows) != rows["key"].nunique():
            raise KaadError(f"{scenario}: labelled windows of {who!r} are missing from the scored day")
        best = scores.loc[windows].idxmax()
        attackers.append(
            {
                "identity": who,
                "scenario": scenario,
                "identity_rank": int(identity_rank[who]),
                "best_window_rank": int(window_rank[best]),
                "alert": bool(scored.windows.loc[windows, "is_anomaly"].any()),
            }
        )
    attacked = set(truth.loc[truth["attack"], "key"])
    benign = truth[~truth["attack"]].groupby("key")["scenario"].agg(lambda s: "+".join(sorted(set(s))))
    alerts = scored.windows[scored.windows["is_anomaly"]]
    benign_alerts = [
        {
            "identity": who,
            "scenario": benign.get((who, start), "normal"),
            "window_start": pd.Timestamp(start).isoformat(),
            "anomaly_score": round(float(score), 6),
        }
        for (who, start), score in zip(alerts.index, alerts["anomaly_score"], strict=True)
        if (who, start) not in attacked
    ]
    return {"attackers": attackers, "benign_alerts": benign_alerts, "n_identities": len(peaks)}


def main(out: Path, *, workdir: Path | None = None, days: int = DAYS, seed: int = 0) -> dict:
    """Run the scenario against a fresh API server, measure, write ``out``; return what was written.

    ``workdir`` keeps the API server's files, the day files and ``labels.csv`` (default: a
    temporary directory, removed afterwards).
    """
    result: dict = {"attackers": [], "benign_alerts": [], "n_identities": 0, "days": days, "error": missing()}
    if result["error"] is None:
        with tempfile.TemporaryDirectory(prefix="kaad-real-") as tmp:
            work = Path(workdir or tmp)
            try:
                result |= measure(_run(work, days, seed), seed=seed)
            except (KaadError, RuntimeError, OSError, ValueError, ApiException, subprocess.SubprocessError) as exc:
                result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _run(work: Path, days: int, seed: int) -> RealDays:
    (work / "apiserver").mkdir(parents=True, exist_ok=True)
    server = ApiServer(binary(), work / "apiserver")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # urllib3 on every call: the server's certificate is self-signed
            return run(server.url, server.audit_log, work / "days", days=days, seed=seed)
    finally:
        server.stop()


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube.eval_real", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--workdir", type=Path, help="keep the API server's files and the day files here")
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = main(args.out, workdir=args.workdir, days=args.days, seed=args.seed)
    if result["error"]:
        print(f"real kube-apiserver evaluation not measured: {result['error']}", file=sys.stderr)
    else:
        ranks = ", ".join(f"{a['scenario']} #{a['identity_rank']}" for a in result["attackers"])
        print(
            f"{args.out}: {result['n_identities']} identities; attackers {ranks}; "
            f"{len(result['benign_alerts'])} benign alerts"
        )
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
