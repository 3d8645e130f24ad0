import sys
from pathlib import Path
import tempfile, numpy as np, pandas as pd
from models.detector import DetectorParams, window_sources
from pipelines.train import TrainConfig, train
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate
ATTACKS = ["secret_enumeration", "privileged_pod", "cluster_admin_binding", "stolen_token_external", "exec_into_pods"]
seed=int(sys.argv[1])
tmp=Path(tempfile.mkdtemp())
spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
sim = simulate(tmp, days=8, attacks=ATTACKS, variant="loud", seed=seed, spec=spec)
files = [str(f) for f in sim.files]
result = train(files[:-1], TrainConfig(params=DetectorParams(seed=seed)), eval_inputs=files[-1:], labels=sim.labels)
pd.set_option("display.width",250)
print(result.evaluation.scenario_table().to_string()); lab=pd.read_csv(sim.labels); print(lab.groupby("scenario")["identity"].first().to_string())
from pipelines.score import score_day
s=score_day(files[-1:], result.bundle, top=10)
print(s.identities.drop(columns=["reasons","day"]).head(12).to_string())
print(s.windows[["anomaly_score","percentile","is_anomaly"]].head(15))
