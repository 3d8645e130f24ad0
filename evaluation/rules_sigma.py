"""Rules alone, the model alone, and both: measured on the same simulated days (`make eval`).

Per seed, as evaluation/protocol.py: simulate, train on the first days (with ``--rules``: the
rules' history is learned from the same days), score the held-out days in order with the day
state, then each attack in each variant alone in a held-out day against that morning's state. Each day is scored once
with the rules as evidence; the three rankings come from that one result, per identity-day:

- model: the identity-day's score without the rules' nats; alerts above the model's threshold.
- rules: what a rule engine does: every identity-day with a hit alerts; ranked by the highest
  level fired, then the number of distinct rules, then of hit events.
- combined: the model's score plus the rules' nats; alerts above the same threshold.

For model and combined, an identity-day above the threshold that only repeats its identity's
open finding (models/open_findings.py) pages nobody: it is counted apart, as a repeat, as in
evaluation/protocol.py. Its status is decided once, on the combined score, as the daily job does.
A rule engine has no open findings: every hit alerts, every day.

AP is pooled over the attack days' identity-days (the attacker's identity-days are positive).
``python -m evaluation.rules_sigma --size quick --rules ../shared/sigma-rules``
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer
from sklearn.metrics import average_precision_score

from evaluation.config import EvalConfig, preset
from events.schema import EVENT_SCHEMA
from models.day_state import DayState
from models.detector import DetectorParams
from pipelines.ingest import Ingestor, ingest
from pipelines.score import ScoreResult, score_batches
from pipelines.train import TrainConfig, train
from rules.evidence import RuleEvidence, rule_evidence
from rules.loading import LEVELS
from scenarios.attacks import ATTACKS
from scenarios.cluster import build_cluster
from scenarios.simulate import attack_day, simulate

METHODS = ("rules", "model", "combined")
ROOT = Path(__file__).resolve().parent.parent
BATCH_ROWS = 65_536


def day_scores(result: ScoreResult) -> pd.DataFrame:
    """Per identity-day: the three methods' scores and alerts."""
    days = result.identities.set_index("identity")
    found = result.evidence.get("rule")
    nats = found.contributions.sum(axis=1).groupby(level="identity").sum() if found is not None else pd.Series()
    findings = found.details.get("findings", []) if found is not None else []
    level = pd.Series({f.identity: LEVELS.index(f.level) + 1 for f in findings}, dtype=float)
    level = level.groupby(level=0).max() if len(level) else level
    hits = pd.DataFrame(
        [(f.identity, f.rule, len(f.hits)) for f in findings], columns=["identity", "rule", "events"]
    ).groupby("identity")
    frame = pd.DataFrame(index=days.index.unique())
    combined = days["anomaly_score"].groupby(level=0).max()
    frame["combined"] = combined
    frame["model"] = combined - nats.reindex(frame.index, fill_value=0.0)
    n_rules = hits["rule"].nunique().reindex(frame.index, fill_value=0)
    n_events = hits["events"].sum().reindex(frame.index, fill_value=0)
    # Highest level first, then how many rules, then how many events (each term < the one before).
    frame["rules"] = level.reindex(frame.index, fill_value=0.0) + n_rules / 100 + np.minimum(n_events, 999) / 1e6
    frame["rules_alert"] = n_rules > 0
    repeat = (days["finding"] == "repeat").groupby(level=0).all().reindex(frame.index, fill_value=False)
    for method in ("model", "combined"):
        above = frame[method] > result.threshold
        frame[f"{method}_alert"] = above & ~repeat
        frame[f"{method}_repeat"] = above & repeat
    frame["rules_repeat"] = False
    return frame


def _score(merged: pa.Table, bundle, source: RuleEvidence, day: date, state: DayState) -> ScoreResult:
    batches = (merged.slice(o, BATCH_ROWS) for o in range(0, merged.num_rows, BATCH_ROWS))
    return score_batches(batches, bundle, day=day, top=0, evidence=[source], state=state)


def _rank(scores: pd.Series, identity: str) -> int:
    return int((scores > scores[identity]).sum()) + 1


def run_seed(config: EvalConfig, seed: int, work: Path, rule_dirs: list[str]) -> dict:
    """One seed: attack-free days' alerts and the attack days' identity-days, per method."""
    started = time.perf_counter()
    sim = simulate(work / "logs", days=config.train_days + config.heldout_days, seed=seed, spec=config.spec)
    history = work / "history.parquet"
    ingest([str(f) for f in sim.files[: config.train_days]], out=history, collect=False)
    bundle = train([str(history)], TrainConfig(params=DetectorParams(seed=seed), rules=tuple(rule_dirs))).bundle
    source = rule_evidence(rule_dirs, bundle)
    days = []
    quiet: dict[str, list[int]] = {m: [] for m in METHODS}
    repeats: dict[str, list[int]] = {m: [] for m in METHODS}
    # As evaluation/protocol.py: the daily job's state, so "model" here is detection.md's detector.
    state = DayState.from_bundle(bundle, f"seed-{seed}")
    mornings: list[DayState] = []
    for path in sim.files[config.train_days :]:
        day = date.fromisoformat(path.name.removeprefix("audit-")[:10])
        table = work / "days" / f"{day}.parquet"
        ingest([str(path)], out=table, collect=False)
        days.append((day, path, table))
        mornings.append(copy.deepcopy(state))
        frame = day_scores(
            _score(pq.read_table(table).select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA), bundle, source, day, state)
        )
        for method in METHODS:
            quiet[method].append(int(frame[f"{method}_alert"].sum()))
            repeats[method].append(int(frame[f"{method}_repeat"].sum()))
    cluster = build_cluster(config.spec, seed)
    pooled: list[pd.DataFrame] = []
    attacks: list[dict] = []
    cases = [(name, variant) for variant in config.variants for name in (config.attacks or tuple(ATTACKS))]
    for i, (name, variant) in enumerate(cases):
        day, raw, table = days[i % len(days)]
        events, _, _ = attack_day(cluster, [name], config.train_days + i % len(days), variant, seed)
        extra = raw.with_name(f"{raw.name.split('.')[0]}.attack-{name}-{variant}.jsonl")
        extra.write_bytes(b"".join(orjson.dumps(e) + b"\n" for _, e in sorted(events, key=lambda p: p[0])))
        parts = [pq.read_table(table).select(EVENT_SCHEMA.names), *Ingestor().iter_batches([str(extra)])]
        merged = pa.concat_tables([p.cast(EVENT_SCHEMA) for p in parts]).sort_by("timestamp")
        own = merged.filter(pc.equal(merged["source_file"], str(extra))).select(["identity", "timestamp"]).to_pandas()
        attackers = sorted(set(own.loc[own["timestamp"].dt.date == day, "identity"].dropna()))
        morning = copy.deepcopy(mornings[i % len(days)])  # each attack against its day's morning
        frame = day_scores(_score(merged, bundle, source, day, morning))
        attackers = [a for a in attackers if a in frame.index]
        if not attackers:
            attacks.append({"scenario": name, "variant": variant, "missed": "its events fell on another day"})
            continue
        frame["positive"] = frame.index.isin(attackers)
        pooled.append(frame.assign(case=f"{name}-{variant}"))
        best = {m: min(_rank(frame[m], a) for a in attackers) for m in METHODS}
        alerted = {m: bool(frame.loc[attackers, f"{m}_alert"].any()) for m in METHODS}
        attacks.append({"scenario": name, "variant": variant, "rank": best, "alert": alerted})
    pool = pd.concat(pooled)
    ranked = [a for a in attacks if "rank" in a]
    metrics = {
        m: {
            "average_precision": float(average_precision_score(pool["positive"], pool[m])),
            "attacks_alerted": int(sum(a["alert"][m] for a in ranked)),
            "median_attacker_rank": float(np.median([a["rank"][m] for a in ranked])),
            "attacks_top1": int(sum(a["rank"][m] == 1 for a in ranked)),
        }
        for m in METHODS
    }
    refused = {r.name: r.reason for r in source.rules.refused}
    return {
        "seed": seed,
        "alerts_per_attack_free_day": quiet,
        "repeats_per_attack_free_day": repeats,
        "metrics": metrics,
        "attacks": attacks,
        "identity_days": len(pool),
        "positives": int(pool["positive"].sum()),
        "rules_run": len(source.rules.runnable),
        "rules_not_converted": refused,
        "seconds": round(time.perf_counter() - started, 1),
    }


def render(doc: dict) -> str:
    """docs/rules-eval.md from its JSON."""
    lines = [
        "# Rules alone, the model alone, and both",
        "",
        f"Generated by `{doc['generated_by']}` at {doc['generated_at']} (commit {doc['git_commit'][:10]}); "
        f"rules: {', '.join(doc['rules'])}. Method: evaluation/rules_sigma.py's docstring. "
        "AP is over identity-days of the attack days (not windows, unlike detection.md).",
        "",
        "Attack-free day alerts are new or worse findings; repeats of an open finding (not paged) are counted apart.",
        "",
        "| seed | method | AP | attacks alerted | median attacker rank | attack-free day alerts (each day) "
        "| mean | repeats (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in doc["seeds"]:
        n = len([a for a in s["attacks"] if "rank" in a])
        for m in METHODS:
            met, quiet = s["metrics"][m], s["alerts_per_attack_free_day"][m]
            repeats = s.get("repeats_per_attack_free_day", {}).get(m, [0])
            lines.append(
                f"| {s['seed']} | {m} | {met['average_precision']:.3f} | {met['attacks_alerted']}/{n} | "
                f"{met['median_attacker_rank']:g} | {', '.join(map(str, quiet))} | {np.mean(quiet):.1f} "
                f"| {np.mean(repeats):.1f} |"
            )
    lines += ["", "Rules not converted (reported, not run):", ""]
    for name, reason in doc["seeds"][0]["rules_not_converted"].items():
        lines.append(f"- `{name}`: {reason}")
    return "\n".join(lines) + "\n"


app = typer.Typer(add_completion=False)


@app.command()
def main(
    size: Annotated[str, typer.Option(help="quick or full (evaluation/config.py).")] = "quick",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (default: the size's).")] = "",
    rules: Annotated[list[str] | None, typer.Option(help="Sigma rule directories (kaad's own always).")] = None,
    work: Annotated[Path, typer.Option(help="Scratch directory.")] = ROOT / "out" / "eval-rules",
    docs: Annotated[Path, typer.Option(help="Where rules-eval.json and rules-eval.md go.")] = ROOT / "docs",
) -> None:
    """Measure rules alone, the model alone and both on the same days; write docs/rules-eval.*."""
    import shutil
    import subprocess

    config = preset(size, tuple(int(s) for s in seeds.split(",") if s.strip()) or None)
    dirs = ["kaad", *[r for r in rules or [] if Path(r).is_dir()]]
    missing = [r for r in rules or [] if not Path(r).is_dir()]
    shutil.rmtree(work, ignore_errors=True)
    # The code measured is the code at the start (the run takes minutes; commits may follow).
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results = [run_seed(config, seed, work / f"seed-{seed}", dirs) for seed in config.seeds]
    doc = {
        "generated_by": f"python -m evaluation.rules_sigma --size {size}"
        + (f" --seeds {seeds}" if seeds else "")
        + "".join(f" --rules {r}" for r in rules or []),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": commit or "unknown",
        "rules": dirs,
        "rules_missing": missing,
        "seeds": results,
    }
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "rules-eval.json").write_text(json.dumps(doc, indent=1) + "\n")
    (docs / "rules-eval.md").write_text(render(doc))
    for s in results:
        for m in METHODS:
            met = s["metrics"][m]
            typer.echo(
                f"seed {s['seed']} {m:8s} AP {met['average_precision']:.3f}, alerts per attack-free day "
                f"{np.mean(s['alerts_per_attack_free_day'][m]):.1f} {s['alerts_per_attack_free_day'][m]}"
            )
    if missing:
        typer.echo(f"rules not found, left out: {', '.join(missing)}", err=True)


if __name__ == "__main__":
    app()
