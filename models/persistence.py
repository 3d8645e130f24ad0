"""The model bundle: everything scoring needs, saved with its versions and a checksum.

Bundles are pickles (joblib): loading one runs code from it. Load only bundles from a place
you trust; kaad records a SHA-256 beside each bundle and refuses one that does not match.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from errors import ModelCompatibilityError, SchemaMismatchError
from features.first_seen import FirstSeenEncoder

BUNDLE_FORMAT = 1
KAAD_VERSION = "0.1.0"


def _versions() -> dict[str, str]:
    return {"kaad": KAAD_VERSION, "scikit-learn": sklearn.__version__, "pandas": pd.__version__,
            "numpy": np.__version__, "bundle_format": str(BUNDLE_FORMAT)}


@dataclass
class ModelBundle:
    """A trained detector and what it was trained on."""

    detector: Pipeline
    encoder: FirstSeenEncoder
    feature_names: list[str]
    window: str
    threshold: float
    train_scores: np.ndarray            # sorted, for score percentiles
    params: dict
    training_start: str = ""
    training_end: str = ""
    sources: list[str] = field(default_factory=list)
    n_windows: int = 0
    n_events: int = 0
    profiles: dict = field(default_factory=dict)   # identity -> usual values, for explanations
    versions: dict[str, str] = field(default_factory=_versions)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def check_schema(self, windows: pd.DataFrame) -> None:
        """Raise :class:`SchemaMismatchError` unless ``windows`` has exactly our features."""
        got = list(windows.columns)
        if got != self.feature_names:
            missing = [c for c in self.feature_names if c not in got]
            extra = [c for c in got if c not in self.feature_names]
            raise SchemaMismatchError(
                "scoring data does not have the features the model was trained on "
                f"(missing {missing!r}, unexpected {extra!r}"
                + (", same names in another order" if not missing and not extra else "")
                + "); retrain the model with this version of kaad")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_bundle(bundle: ModelBundle, path: Path) -> str:
    """Write the bundle and ``<path>.sha256``; return the SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(bundle, path, compress=3)
    digest = file_sha256(path)
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return digest


def load_bundle(path: Path, *, sha256: str | None = None) -> ModelBundle:
    """Load a bundle after checking its checksum and the library versions that wrote it.

    ``sha256`` is the expected digest; by default it is read from ``<path>.sha256``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelCompatibilityError(f"no model bundle at {str(path)!r}")
    if sha256 is None:
        sidecar = path.with_name(path.name + ".sha256")
        if not sidecar.is_file():
            raise ModelCompatibilityError(f"{str(path)!r} has no {sidecar.name} beside it; "
                                          "refusing to unpickle a bundle of unknown origin")
        sha256 = sidecar.read_text().split()[0]
    actual = file_sha256(path)
    if actual != sha256:
        raise ModelCompatibilityError(f"{str(path)!r} does not match its recorded SHA-256 "
                                      f"({actual[:12]}... != {sha256[:12]}...): it was changed "
                                      "after it was saved; refusing to load it")
    bundle = joblib.load(path)
    if not isinstance(bundle, ModelBundle):
        raise ModelCompatibilityError(f"{str(path)!r} is not a kaad model bundle")
    ours, theirs = _versions(), bundle.versions
    for lib in ("scikit-learn", "bundle_format"):
        if ours[lib].split(".")[:2] != str(theirs.get(lib, "")).split(".")[:2]:
            raise ModelCompatibilityError(
                f"{str(path)!r} was written with {lib} {theirs.get(lib)!r}, this is "
                f"{ours[lib]!r}; retrain, or score with the versions it was trained with")
    return bundle
