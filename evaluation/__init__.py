"""`make eval`: the reproducible measurement of the detector (issue 15).

A layer above the pipelines, beside the apps: it simulates clusters, trains and scores
through the library as a user would, and writes docs/detection.json and docs/detection.md.
"""

from __future__ import annotations

from evaluation.config import EvalConfig, preset
from evaluation.outputs import write_outputs
from evaluation.render import render
from evaluation.schema import SCHEMA, missing_fields
from evaluation.suite import run_evaluation

__all__ = ["SCHEMA", "EvalConfig", "missing_fields", "preset", "render", "run_evaluation", "write_outputs"]
