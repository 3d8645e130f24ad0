"""The current detector on a real kube-apiserver's week: every attacker's rank, every benign alert.

``python -m tests.kube.eval_real --out real.json`` starts the API server (``make e2e-deps``
installs it), runs ``multiday``'s scenario, trains with the default ``TrainConfig`` (but for a
fixed seed, so that runs repeat) on every day but the last through ``pipelines.train.train``,
scores the last day with ``pipelines.score.score_day`` and writes::

    {"attackers": [{"identity", "scenario", "identity_rank", "best_window_rank", "alert"}],
     "benign_alerts": [{"identity", "scenario", "day", "anomaly_score", "n_unusual"}],
     "n_identities": int, "days": int, "error": null | str}

The detector ranks and alerts identity-days (an identity's windows of the day judged
together, ``ScoreResult.identities``), and its threshold is on that scale, so everything here
is measured on identity-days. ``identity_rank`` is the rank (1-based, ties counted against
the attacker) of the attacker's identity-day score among the last day's identities;
``best_window_rank`` the rank of its best window among all the day's windows (for the
record: the hourly view); ``alert`` whether its identity-day is above the threshold.
``benign_alerts`` are the last day's identity-days above the threshold of identities that did
no attack that day, named by the ``benign_*`` scenarios labelled for them that day, or
``normal``. When the API server is missing or the run fails, the file still comes, with
``error`` saying why and nothing measured.
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
from evaluation.ranks import rank_of
from models.detector import DetectorParams
from pipelines.score import ScoreResult, score_day
from pipelines.train import TrainConfig, train
from tests.kube.apiserver import ApiServer, binary, missing
from tests.kube.multiday import DAYS, RealDays, run


def measure(real: RealDays, *, seed: int = 0) -> dict:
    """Train on all days but the last, score the last; the JSON's measured fields."""
    model = train([str(f) for f in real.files[:-1]], TrainConfig(params=DetectorParams(seed=seed)))
    day = real.attack_day.date()
    scored = score_day([str(real.files[-1])], model.bundle, day=day, top=0)
    return rank_identity_days(scored, day_labels(real.labels, day, model.bundle.window))


def day_labels(path: Path, day, freq: str) -> pd.DataFrame:
    """``labels.csv``'s rows of ``day`` as (identity, window_start, scenario), benign change included."""
    rows = pd.read_csv(path, dtype=str)
    starts = pd.to_datetime(rows["timestamp"], utc=True, format="ISO8601")
    out = pd.DataFrame(
        {"identity": rows["identity"].astype(str), "window_start": starts.dt.floor(freq), "scenario": rows["scenario"]}
    )
    return out[starts.dt.date == day].reset_index(drop=True)


def rank_identity_days(scored: ScoreResult, labels: pd.DataFrame) -> dict:
    """Attackers' ranks and the benign alerts of one scored day, on identity-days.

    ``labels``: the day's (identity, window_start, scenario) rows; ``benign_*`` scenarios are
    benign change, every other one an attack.
    """
    days = scored.identities.set_index("identity")  # one day scored: one row per identity
    day_scores = days["anomaly_score"].to_numpy(dtype=float)
    window_scores = scored.windows["anomaly_score"]
    attack = ~labels["scenario"].str.startswith("benign_")
    attackers = []
    for (scenario, who), rows in labels[attack].groupby(["scenario", "identity"], sort=True):
        keys = list(dict.fromkeys(zip(rows["identity"], rows["window_start"], strict=True)))
        if who not in days.index or not all(k in window_scores.index for k in keys):
            raise KaadError(f"{scenario}: labelled windows of {who!r} are missing from the scored day")
        attackers.append(
            {
                "identity": who,
                "scenario": scenario,
                "identity_rank": rank_of(day_scores, float(days.at[who, "anomaly_score"])),
                "best_window_rank": rank_of(window_scores.to_numpy(), float(window_scores.loc[keys].max())),
                "alert": bool(days.at[who, "is_anomaly"]),
            }
        )
    attacking = set(labels.loc[attack, "identity"])
    benign = labels[~attack].groupby("identity")["scenario"].agg(lambda s: "+".join(sorted(set(s))))
    alerting = days[days["is_anomaly"] & ~days.index.isin(list(attacking))]
    benign_alerts = [
        {
            "identity": who,
            "scenario": benign.get(who, "normal"),
            "day": pd.Timestamp(row["day"]).date().isoformat(),
            "anomaly_score": round(float(row["anomaly_score"]), 6),
            "n_unusual": int(row["n_unusual"]),
        }
        for who, row in alerting.iterrows()
    ]
    return {"attackers": attackers, "benign_alerts": benign_alerts, "n_identities": len(days)}


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
            f"{len(result['benign_alerts'])} benign identity-days alerting"
        )
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
