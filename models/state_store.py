"""Where the daily job keeps a model's day state for a cluster, and how it is saved and loaded.

One state per model and cluster (:func:`state_path`), saved beside the reports with a SHA-256
and, with a signing key, an HMAC, like model bundles.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import joblib

from errors import KaadError, ModelCompatibilityError
from models.day_state import DayState, model_key
from models.persistence import read_verified, sign, signing_key

STATE_FORMAT = 1


def state_path(root: Path, model: str, cluster: str) -> Path:
    """``<root>/<model key>/<cluster>.joblib`` (the cluster name made safe for a file name)."""
    return Path(root) / model / (re.sub(r"[^A-Za-z0-9._-]", "_", cluster) + ".joblib")


def save_state(state: DayState, path: Path, *, key: bytes | None = None) -> str:
    """Write the state, ``<path>.sha256`` and, with a signing key, ``<path>.sig``; return the SHA-256."""
    path = Path(path)
    key = signing_key() if key is None else key
    buffer = io.BytesIO()
    joblib.dump({"state_format": STATE_FORMAT, "state": state}, buffer, compress=3)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    sig = path.with_name(path.name + ".sig")
    if key:
        sig.write_text(f"{sign(data, key)}  {path.name}\n")
    else:
        sig.unlink(missing_ok=True)
    tmp.replace(path)
    return digest


def load_state(path: Path, *, key: bytes | None = None) -> DayState:
    """Load a state after checking its SHA-256 and, with a signing key, its signature."""
    name = f"the day state {str(path)!r}"
    if not Path(path).is_file():
        raise KaadError(f"no day state at {str(path)!r}")
    data = read_verified(Path(path), key=key, name=name)
    saved = joblib.load(io.BytesIO(data))
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), DayState):
        raise ModelCompatibilityError(f"{name} is not a kaad day state")
    if saved.get("state_format") != STATE_FORMAT:
        raise ModelCompatibilityError(
            f"{name} has format {saved.get('state_format')!r}, this kaad reads {STATE_FORMAT}"
        )
    return saved["state"]


def open_state(
    root: Path, bundle, cluster: str, *, key: bytes | None = None, force: bool = False
) -> tuple[DayState, Path]:
    """The saved state of ``bundle`` and ``cluster`` under ``root``, or a fresh one; and where it is saved."""
    path = state_path(root, model_key(bundle), cluster)
    if not path.exists():
        return DayState.from_bundle(bundle, cluster, force=force), path
    state = load_state(path, key=key)
    if state.model != model_key(bundle) or state.cluster != cluster:
        raise ModelCompatibilityError(
            f"the day state {str(path)!r} belongs to model {state.model} and cluster {state.cluster!r}, "
            f"not {model_key(bundle)} and {cluster!r}"
        )
    state.force = force
    return state, path
