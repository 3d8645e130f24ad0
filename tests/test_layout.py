"""The code is layered: each package builds only on the ones below it.

    errors, safe_text  <  events  <  sources  <  features  <  models, flows  <  rules  <  reports
    <  pipelines, engine  <  demo, cli, evaluation

Imports under ``if TYPE_CHECKING:`` are annotations, not dependencies: reports name the result
types of the pipelines that call them.

``scenarios`` (the simulated clusters and attacks) stands beside the detector and imports
none of it: the simulator imitates clusters, not our features. README's "How the code is
organised" says the same in words.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Bottom to top; a module may import its own layer and the ones before it.
LAYERS = [
    {"errors", "safe_text"},
    {"events"},
    {"sources"},
    {"features"},
    {"models", "flows"},
    {"rules"},
    {"reports"},
    {"pipelines", "engine"},  # engine: where a lake is featurised, for train (pipelines)
    {"demo", "cli", "evaluation"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
OURS = set(LAYER_OF) | {"scenarios"}


def _modules(name: str) -> list[Path]:
    path = ROOT / name
    return sorted(path.rglob("*.py")) if path.is_dir() else [ROOT / f"{name}.py"]


def _runtime_nodes(tree: ast.AST):
    """Every node but the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


def _violations(name: str) -> list[str]:
    bad = []
    for path in _modules(name):
        for target in _imports(path) - {name}:
            if name == "scenarios":
                allowed = target == "errors"
            elif target == "scenarios":
                allowed = LAYER_OF[name] == LAYER_OF["cli"]  # only the apps start a simulation
            else:
                allowed = LAYER_OF[target] <= LAYER_OF[name]
            if not allowed:
                bad.append(f"{path.relative_to(ROOT)} imports {target}")
    return bad


@pytest.mark.parametrize("name", sorted(OURS))
def test_no_package_imports_one_above_it(name):
    assert _violations(name) == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The rule is not vacuous: an events module importing features is caught."""
    fake = tmp_path / "events"
    fake.mkdir()
    (fake / "bad.py").write_text("from features.catalog import FEATURES\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _violations("events") == ["events/bad.py imports features"]


def test_type_checking_imports_do_not_count(tmp_path, monkeypatch):
    fake = tmp_path / "reports"
    fake.mkdir()
    (fake / "ok.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from pipelines.score import ScoreResult\n"
        "import features.catalog\n"
    )
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _violations("reports") == []
    (fake / "bad.py").write_text("def f():\n    from pipelines.score import score_day\n")
    assert _violations("reports") == ["reports/bad.py imports pipelines"]


def test_every_package_is_placed():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert packages | modules <= OURS, (packages | modules) - OURS
