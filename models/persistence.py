"""The model bundle: everything scoring needs, saved with its versions, a checksum and a signature.

Bundles are pickles (joblib): loading one runs code from it. The SHA-256 recorded beside a
bundle catches corruption, not tampering: whoever can replace the bundle can replace its
checksum too. With a signing key configured (``$KAAD_SIGNING_KEY`` or a key file), bundles are
signed with HMAC-SHA256 when saved, and a bundle whose signature does not verify is refused
before anything is unpickled. Without a key, load bundles only from a place you trust.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from errors import InputNotFoundError, KaadError, ModelCompatibilityError, ModelSignatureError, SchemaMismatchError
from features.first_seen import FirstSeenEncoder
from models.calibration import AlertThreshold, TailCalibrator
from models.rarity import ActionRarity

# 2: detector v2 (action rarity, calibration on held-out days, identity-day threshold).
BUNDLE_FORMAT = 2
KAAD_VERSION = "0.1.0"
SIGNING_KEY_ENV = "KAAD_SIGNING_KEY"
# 128 bits: a shorter secret can be guessed offline by anyone who can read one signature.
MIN_KEY_BYTES = 16


def _versions() -> dict[str, str]:
    return {
        "kaad": KAAD_VERSION,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "bundle_format": str(BUNDLE_FORMAT),
    }


@dataclass
class ModelBundle:
    """A trained detector and what it was trained on.

    ``threshold`` is ``alert.threshold``: an identity-day's score above it alerts.
    ``train_scores`` are the held-out identity-days' scores, sorted, for their percentiles.
    """

    detector: Pipeline
    encoder: FirstSeenEncoder
    feature_names: list[str]
    window: str
    threshold: float
    train_scores: np.ndarray
    params: dict
    rarity: ActionRarity | None = None
    calibrator: TailCalibrator | None = None
    alert: AlertThreshold | None = None
    training_start: str = ""
    training_end: str = ""
    sources: list[str] = field(default_factory=list)
    n_windows: int = 0
    n_events: int = 0
    profiles: dict = field(default_factory=dict)  # identity -> usual values, for explanations
    #: The held-out windows' features and forest scores: the day state judges them again with its
    #: action rates (models/recalibrate.py). None in bundles saved before.
    held_out_windows: pd.DataFrame | None = None
    held_out_forest: np.ndarray | None = None
    rule_history: dict | None = None  # rules.history.RuleHistory.as_dict(), when trained with --rules
    network_baseline: dict | None = None  # flows.baseline.NetworkBaseline.as_dict(), when trained with --flow-logs
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
                + "); retrain the model with this version of kaad"
            )


def signing_key(key_file: Path | None = None) -> bytes | None:
    """The configured signing key: the contents of ``key_file``, else ``$KAAD_SIGNING_KEY``, else None.

    Surrounding whitespace (a trailing newline) is not part of the key.
    """
    if key_file is not None:
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise InputNotFoundError(f"cannot read the signing key file {str(key_file)!r}: {exc.strerror}") from None
        source = f"signing key file {str(key_file)!r}"
    else:
        value = os.environ.get(SIGNING_KEY_ENV)
        if value is None:
            return None
        key, source = value.strip().encode(), f"${SIGNING_KEY_ENV}"
    if len(key) < MIN_KEY_BYTES:
        raise KaadError(
            f"{source} holds {len(key)} bytes; a signing key needs at least {MIN_KEY_BYTES} "
            "(for example: openssl rand -hex 32)"
        )
    return key


def sign(data: bytes, key: bytes) -> str:
    """HMAC-SHA256 of ``data`` under ``key``, in hex."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _recorded(path: Path, suffix: str) -> str | None:
    sidecar = _sidecar(path, suffix)
    if not sidecar.is_file():
        return None
    words = sidecar.read_text().split()
    return words[0] if words else None


def _same(actual: str, expected: str) -> bool:
    return hmac.compare_digest(actual.encode(), expected.encode("utf-8", "replace"))


def save_bundle(bundle: ModelBundle, path: Path, *, key: bytes | None = None) -> str:
    """Write the bundle, ``<path>.sha256`` and, with a signing key, ``<path>.sig``; return the SHA-256.

    ``key`` defaults to the configured one (:func:`signing_key`).
    """
    path = Path(path)
    key = signing_key() if key is None else key
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer, compress=3)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    _sidecar(path, ".sha256").write_text(f"{digest}  {path.name}\n")
    if key:
        _sidecar(path, ".sig").write_text(f"{sign(data, key)}  {path.name}\n")
    else:
        # A signature left from an earlier bundle at this path would not match this one.
        _sidecar(path, ".sig").unlink(missing_ok=True)
    return digest


def read_verified(
    path: Path,
    *,
    sha256: str | None = None,
    signature: str | None = None,
    key: bytes | None = None,
    name: str | None = None,
) -> bytes:
    """Read a bundle's bytes once and check them: the SHA-256 always, the HMAC when a key is set.

    ``sha256`` and ``signature`` are the expected values, read from ``<path>.sha256`` and
    ``<path>.sig`` when not given; ``key`` defaults to the configured one; ``name`` is how
    messages call the bundle (default: its path). Unpickle the bytes returned, never the file
    again, so that what was checked is what runs.
    """
    path = Path(path)
    name = name or repr(str(path))
    if not path.is_file():
        raise ModelCompatibilityError(f"no model bundle at {name}")
    key = signing_key() if key is None else key
    sha256 = sha256 or _recorded(path, ".sha256")
    if not sha256:
        raise ModelCompatibilityError(
            f"{name} has no {path.name}.sha256 beside it; refusing to unpickle a bundle of unknown origin"
        )
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if not _same(actual, sha256):
        raise ModelCompatibilityError(
            f"{name} does not match its recorded SHA-256 "
            f"({actual[:12]}... != {sha256[:12]}...): it was changed "
            "after it was saved; refusing to load it"
        )
    if key:
        expected = signature or _recorded(path, ".sig")
        if not expected:
            raise ModelSignatureError(
                f"{name} is not signed and a signing key is configured; "
                "refusing to unpickle it (retrain, or save it again, with the key)"
            )
        if not _same(sign(data, key), expected):
            raise ModelSignatureError(
                f"{name} does not carry a valid signature for the configured key: "
                "it was changed after it was signed, or signed with another key; "
                "refusing to unpickle it"
            )
    return data


def load_bundle(
    path: Path,
    *,
    sha256: str | None = None,
    signature: str | None = None,
    key: bytes | None = None,
    name: str | None = None,
) -> ModelBundle:
    """Load a bundle after checking its checksum, its signature (with a key) and its library versions.

    The checks and their defaults are those of :func:`read_verified`.
    """
    path = Path(path)
    name = name or repr(str(path))
    data = read_verified(path, sha256=sha256, signature=signature, key=key, name=name)
    bundle = joblib.load(io.BytesIO(data))
    if not isinstance(bundle, ModelBundle):
        raise ModelCompatibilityError(f"{name} is not a kaad model bundle")
    ours, theirs = _versions(), bundle.versions
    if str(theirs.get("bundle_format")) != ours["bundle_format"] or getattr(bundle, "calibrator", None) is None:
        raise ModelCompatibilityError(
            f"{name} was trained by a kaad before detector v2 (bundle format "
            f"{theirs.get('bundle_format')!r}, this kaad needs {ours['bundle_format']!r}): it has no "
            "action rarity, calibration or identity-day threshold; retrain it with kaad train"
        )
    for lib in ("scikit-learn",):
        if ours[lib].split(".")[:2] != str(theirs.get(lib, "")).split(".")[:2]:
            raise ModelCompatibilityError(
                f"{name} was written with {lib} {theirs.get(lib)!r}, this is "
                f"{ours[lib]!r}; retrain, or score with the versions it was trained with"
            )
    return bundle
