"""Write detection.json, detection.md and the plots from one document."""

from __future__ import annotations

import json
import os
from pathlib import Path

from evaluation.plots import plot_seed
from evaluation.render import render


def _finite(value: object) -> object:
    """NaN (no positives, one class) as null: strict JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


METHOD = Path(__file__).resolve().parent.parent / "docs" / "method.md"


def method_link(docs: Path) -> str:
    """The link to docs/method.md from a page written in ``docs`` (docs/ or docs/full/)."""
    return Path(os.path.relpath(METHOD, docs.resolve())).as_posix()


def write_outputs(doc: dict, docs: Path) -> list[Path]:
    """Write ``docs/detection.json``, ``docs/detection.md`` and ``docs/detection/seed-*.png``."""
    docs.mkdir(parents=True, exist_ok=True)
    data = docs / "detection.json"
    doc = _finite(doc)  # type: ignore[assignment]
    data.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    page = docs / "detection.md"
    page.write_text(render(doc, method_link(docs)))
    written = [data, page]
    for seed in doc["seeds"]:
        png = docs / "detection" / f"seed-{seed['seed']}.png"
        plot_seed(seed, png)
        written.append(png)
    return written
