import sys, tempfile
from pathlib import Path
import pandas as pd
from models.detector import DetectorParams
from pipelines.train import TrainConfig, train
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate
ATTACKS = ["secret_enumeration", "privileged_pod", "cluster_admin_binding", "stolen_token_external", "exec_into_pods"]
for seed in (2, 3):
    tmp = Path(tempfile.mkdtemp())
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
    sim = simulate(tmp, days=8, attacks=ATTACKS, variant="loud", seed=seed, spec=spec)
    files = [str(f) for f in sim.files]
    r = train(files[:-1], TrainConfig(params=DetectorParams(seed=seed)), eval_inputs=files[-1:], labels=sim.labels)
    t = r.evaluation.scenario_table()
    t = t[~t.scenario.str.startswith("benign")]
    print(seed, round(r.evaluation.average_precision, 3), r.evaluation.n_positive, dict(zip(t.scenario, t.best_rank_in_day)))
