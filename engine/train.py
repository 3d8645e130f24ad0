"""Where training's history comes from: a lake featurised per (cluster, day) by an engine.

``--engine local`` (the default) featurises a lake partition by partition in this process;
``--engine dask`` runs the same functions on a Dask cluster. Inputs that are not a lake
(log files, s3:// log prefixes, eks://) are streamed as before, by the local engine only.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from engine.history import LakeHistory, Options, featurise_lake
from engine.lake import is_lake_input, lake_partitions
from errors import KaadError

ENGINES = ("local", "dask")


@dataclass(frozen=True)
class EngineConfig:
    """Which engine, and for Dask where the scheduler is (None: a LocalCluster here)."""

    name: str = "local"
    scheduler: str | None = None
    workers: int | None = None  # LocalCluster workers (default: the machine's cores)

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise KaadError(f"unknown engine {self.name!r}: choose {' or '.join(ENGINES)}")


def _lake_inputs(inputs: list[str]) -> bool:
    return bool(inputs) and all(is_lake_input(str(i)) for i in inputs)


def lake_history(inputs: list[str], config, engine: EngineConfig) -> LakeHistory | None:
    """The lake's features for training, or None when ``inputs`` are not a lake (stream them).

    ``config`` is a :class:`pipelines.train.TrainConfig` (window, since, until).
    """
    if not _lake_inputs(inputs):
        if engine.name == "dask":
            raise KaadError(
                "--engine dask reads a lake (kaad ingest ... --out DIR; cluster=NAME/date=DAY/*.parquet), "
                "on disk or s3://; these inputs are not one"
            )
        return None
    partitions = lake_partitions(inputs)
    options = Options(
        window=config.window,
        since=config.since,
        until=config.until,
        qualify=len({p.cluster for p in partitions}) > 1,
    )
    if engine.name == "local":
        return featurise_lake(partitions, options)
    from engine.cluster import dask_client

    with dask_client(engine.scheduler, workers=engine.workers) if engine.name == "dask" else nullcontext() as client:
        return featurise_lake(partitions, options, client=client)


#: Why --rules and --flow-logs need a lake of one cluster (one line, for both commands).
SEVERAL_CLUSTERS = (
    "{what} with a lake of several clusters is not supported yet: rules and flow logs name identities as the "
    "cluster does (system:anonymous), the lake's features as IDENTITY@CLUSTER; train and score one cluster "
    "(DIR/cluster=NAME)"
)


def lake_rule_spill(lake: LakeHistory, rules: tuple[str, ...]):
    """A :class:`rules.learn.RuleSpill` that has read the lake's events (in this process)."""
    if lake.options.qualify:
        raise KaadError(SEVERAL_CLUSTERS.format(what="--rules"))
    from rules.learn import RuleSpill  # pySigma is imported only when rules are asked for

    spill = RuleSpill(rules)
    for _ in spill.tee(lake.events()):
        pass
    return spill
