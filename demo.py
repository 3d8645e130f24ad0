"""`make demo`: the whole job end to end on built-in data.

Simulate three weeks of an EKS cluster (audit logs and the VPC flow logs of its pods) with every
attack injected on the last day; train on the first twenty days (the last day is held out) with
kaad's own rules, evaluate on day 21, log the run to MLflow under mlruns/ and promote it; then
score day 21 with the champion, its rules and the flow logs, print the ranking, the rule
findings and the network summary, and write the HTML report.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

from rich.console import Console

from errors import KaadError
from flows.source import NetworkEvidence, learn_baseline
from models.detector import DetectorParams
from models.persistence import save_bundle
from models.registry import ModelSource, resolve_bundle
from models.tracking import log_scoring, log_training
from pipelines.score import score_day
from pipelines.train import TrainConfig, train
from reports import html, score_outputs, score_table
from reports.network import summary_lines
from reports.rules_report import render_rule_findings
from reports.train_summary import render_training
from rules.evidence import rule_evidence
from scenarios.attacks import ATTACKS
from scenarios.simulate import simulate

ROOT = Path(__file__).resolve().parent
DEMO_DIR = ROOT / "out" / "demo"


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    console = Console(highlight=False, soft_wrap=True, width=None if Console().is_terminal else 160)
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    console.rule("1. simulate 21 days of an EKS cluster and its flow logs; every attack (loud) on day 21")
    flow_dir = DEMO_DIR / "flowlogs"
    sim = simulate(DEMO_DIR / "logs", days=21, attacks=list(ATTACKS), variant="loud", seed=7, flow_logs=flow_dir)
    console.print(f"{sim.n_events:,} events in {len(sim.files)} day files; labels in {sim.labels}")
    console.print(f"VPC flow logs of the pods: {len(sim.flow_files)} files under {flow_dir}")
    history, held_out = [str(f) for f in sim.files[:-1]], [str(sim.files[-1])]

    console.rule("2. train on days 1-20 with kaad's own rules, evaluate on day 21, log to MLflow (mlruns/)")
    config = TrainConfig(params=DetectorParams(seed=7), rules=("kaad",))
    result = train(history, config, eval_inputs=held_out, labels=sim.labels)
    # As `kaad train --flow-logs` does: the model keeps the training days' network baseline.
    end = date.fromisoformat(result.bundle.training_end[:10])
    baseline, _ = learn_baseline([str(flow_dir / "flowlogs")], history, until=end)
    result.bundle.network_baseline = baseline.as_dict()
    console.print(baseline.summary(), markup=False)
    bundle_path = DEMO_DIR / "kaad-model.joblib"
    digest = save_bundle(result.bundle, bundle_path)
    # The same call as `kaad train` makes: the two runs differ in MLflow only where training did.
    tracked = log_training(
        result,
        bundle_path,
        config=config,
        inputs=history,
        eval_inputs=held_out,
        labels=sim.labels,
        cluster="demo",
        promote=True,
    )
    console.print(render_training(result, bundle_path, digest, tracked))

    console.rule("3. score day 21 with the champion, kaad's own rules and the flow logs")
    try:
        bundle, label = resolve_bundle()
    except KaadError as exc:  # e.g. a champion trained by an older kaad, which this one refuses
        label = ModelSource(
            f"the model trained above ({bundle_path})",
            model_name=tracked.model_name,
            version=tracked.model_version,
            run_id=tracked.run_id,
        )
        bundle = result.bundle
        console.print(f"the champion cannot score here ({exc}); scoring with {label}", markup=False)
    else:
        if tracked.promoted:
            console.print(f"scoring with {label}: the model trained above", markup=False)
        else:  # an earlier run (another `kaad train --promote`) holds the alias
            console.print(f"scoring with {label}, NOT the model trained above: {tracked.promotion_note}", markup=False)
    # The model's network baseline is the normal; the pods' addresses come from the audit logs.
    network = NetworkEvidence([str(flow_dir / "flowlogs")], [str(f) for f in sim.files])
    network.bind(bundle)
    scored = score_day(held_out, bundle, top=20, evidence=[rule_evidence(("kaad",), bundle), network])
    console.print(score_table.render_table(scored))
    if (ruled := render_rule_findings(scored)) is not None:
        console.print(ruled)
    for line in summary_lines(scored):
        console.print(line, markup=False)
    report = DEMO_DIR / f"kaad-{scored.day}.html"
    html.write_html(scored, report, label)
    score_outputs.write_csv(scored, DEMO_DIR / f"kaad-{scored.day}.csv")
    log_scoring(scored, model_label=label, top_csv=DEMO_DIR / f"kaad-{scored.day}.csv")
    console.print(f"HTML report: {report}")
    console.print("Compare runs in the MLflow UI: .venv/bin/kaad ui --open   (it prints the link to the runs table)")


if __name__ == "__main__":
    import logging
    import warnings

    # MLflow resets its loggers on import; it reads this variable then (see models.tracking).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*pickle or cloudpickle format.*")
    main()
