"""Load Sigma rules for Kubernetes audit logs and convert each to a DuckDB query.

A rule that cannot be loaded or converted is kept with the reason, so that it can be reported
by name; the others run. kaad's own rules (``rules/kaad/``) load the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from errors import InputNotFoundError
from rules.backend import AuditBackend

#: kaad's own rules, shipped in the package.
KAAD_RULES = Path(__file__).resolve().parent / "kaad"
#: The level's prior rate of firing on a normal identity-day, for levels Sigma defines.
LEVELS = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Rule:
    """One Sigma rule and what became of it: a query, or the reason there is none."""

    name: str  # the file's stem, with a suffix when a file holds several rules
    path: str
    title: str
    rule_id: str
    level: str
    tags: tuple[str, ...] = ()
    description: str = ""
    query: str | None = None
    reason: str = ""  # why there is no query

    @property
    def converted(self) -> bool:
        return self.query is not None

    @property
    def term(self) -> str:
        """Its evidence term (models/evidence.py): ``rule:<name>``."""
        return f"rule:{self.name}"

    @property
    def attack(self) -> tuple[str, ...]:
        """Its ATT&CK technique tags (``attack.t1609``), upper-cased as ATT&CK writes them."""
        return tuple(t.split(".", 1)[1].upper() for t in self.tags if t.lower().startswith("attack.t"))


@dataclass
class RuleSet:
    """Rules by name, converted or not, in the order they were read."""

    rules: list[Rule] = field(default_factory=list)

    @property
    def runnable(self) -> list[Rule]:
        return [r for r in self.rules if r.converted]

    @property
    def refused(self) -> list[Rule]:
        return [r for r in self.rules if not r.converted]

    def get(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def _level(rule: SigmaRule) -> str:
    return str(rule.level.name).lower() if rule.level is not None else "medium"


def _is_audit(rule: SigmaRule) -> bool:
    source = rule.logsource
    return (source.product or "").lower() == "kubernetes" and (source.service or "").lower() == "audit"


def _describe_source(rule: SigmaRule) -> str:
    source = rule.logsource
    parts = [f"{k}: {v}" for k, v in (("product", source.product), ("service", source.service)) if v]
    return ", ".join(parts) or "none"


def _one(backend: AuditBackend, sigma: SigmaRule, name: str, path: Path) -> Rule:
    base: dict = {
        "name": name,
        "path": str(path),
        "title": str(sigma.title or name),
        "rule_id": str(sigma.id or ""),
        "level": _level(sigma),
        "tags": tuple(str(t) for t in sigma.tags),
        "description": str(sigma.description or ""),
    }
    if sigma.errors:
        return Rule(**base, reason="; ".join(str(e) for e in sigma.errors))
    if not _is_audit(sigma):
        return Rule(**base, reason=f"logsource is {_describe_source(sigma)}, not product kubernetes, service audit")
    backend.errors = []
    try:
        queries = backend.convert_rule(sigma)
    except SigmaError as exc:  # collect_errors catches most; some raise before conversion starts
        return Rule(**base, reason=str(exc))
    if backend.errors:
        return Rule(**base, reason="; ".join(_plain(exc) for _, exc in backend.errors))
    if len(queries) != 1:
        return Rule(**base, reason=f"converted to {len(queries)} queries; kaad runs rules of one query")
    return Rule(**base, query=str(queries[0]))


def _plain(exc: Exception) -> str:
    """pySigma's message without the location suffix it appends."""
    return str(exc).split(" in rule ", 1)[0].strip()


def load_file(path: Path, backend: AuditBackend | None = None) -> list[Rule]:
    """Every rule of one YAML file (a file may hold several documents)."""
    backend = backend or AuditBackend()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return [Rule(path.stem, str(path), path.stem, "", "medium", reason=f"cannot read: {exc}")]
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except SigmaError as exc:
        return [Rule(path.stem, str(path), path.stem, "", "medium", reason=_plain(exc))]
    except yaml.YAMLError as exc:  # pySigma lets YAML syntax errors through
        return [Rule(path.stem, str(path), path.stem, "", "medium", reason="not YAML: " + " ".join(str(exc).split()))]
    found = [r for r in collection.rules if isinstance(r, SigmaRule)]
    if not found:
        reason = (
            "; ".join(_plain(e) for e in collection.errors)
            or "no Sigma rule in the file (correlation rules do not run)"
        )
        return [Rule(path.stem, str(path), path.stem, "", "medium", reason=reason)]
    names = [path.stem] if len(found) == 1 else [f"{path.stem}-{i}" for i in range(1, len(found) + 1)]
    return [_one(backend, sigma, name, path) for sigma, name in zip(found, names, strict=True)]


def load_rules(directories: list[Path] | tuple[Path, ...], *, own: bool = True) -> RuleSet:
    """Load the ``*.yml``/``*.yaml`` rules under each directory (or file), kaad's own first.

    Examples
    --------
    >>> rules = load_rules([])
    >>> sorted(r.name for r in rules.runnable)[:2]
    ['kaad-anonymous-allowed', 'kaad-anonymous-binding']
    """
    backend = AuditBackend()
    out = RuleSet()
    seen: set[str] = set()
    sources = ([KAAD_RULES] if own else []) + [Path(d) for d in directories]
    for source in sources:
        if not source.exists():
            raise InputNotFoundError(f"rules: {str(source)!r} does not exist")
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.suffix in (".yml", ".yaml"))
        for path in files:
            if str(path.resolve()) in seen:  # kaad's own directory named again
                continue
            seen.add(str(path.resolve()))
            for rule in load_file(path, backend):
                first = out.get(rule.name)
                if first is not None:  # names are evidence terms and allowlist keys: one rule each
                    rule = replace(
                        rule, query=None, reason=f"a rule named {rule.name!r} was loaded before, from {first.path}"
                    )
                out.rules.append(rule)
    return out
