"""Model bundles are pickles: what is checked must be what runs, and with a key, who wrote it counts.

The attacker in these stories can write files where bundles live (a shared volume, a bucket,
the MLflow artifact store) but does not hold the signing key. Their payload is a pickle that,
when unpickled, creates a marker file: if the marker exists, their code ran.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path

import pytest

from errors import InputNotFoundError, KaadError, ModelSignatureError
from models.persistence import load_bundle, save_bundle

KEY = "kaad-test-signing-key-0123456789abcdef"


class _Payload:
    """Unpickling this creates ``marker``: the attacker's code running inside kaad."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _plant(path: Path, marker: Path) -> bytes:
    """Replace the bundle by the payload and, as anyone who can write the file can, its checksum."""
    payload = pickle.dumps(_Payload(marker))
    path.write_bytes(payload)
    path.with_name(path.name + ".sha256").write_text(f"{hashlib.sha256(payload).hexdigest()}  {path.name}\n")
    return payload


# The hook is process-wide and cannot be removed, so it idles unless a test arms it.
_SWAP: dict = {}
_HOOKED = False


def _swap_on_second_open(event: str, args: tuple) -> None:
    if event != "open" or not _SWAP or not isinstance(args[0], (str, os.PathLike)):
        return
    if os.fspath(args[0]) != os.fspath(_SWAP["path"]):
        return
    _SWAP["opens"] += 1
    if _SWAP["opens"] == 2:
        # The file was read once (to be checked); it is about to be read again (to be loaded).
        Path(_SWAP["path"]).write_bytes(_SWAP["payload"])


def test_the_bytes_checked_are_the_bytes_unpickled(trained, tmp_path):
    """An attacker who swaps the file between the checksum and the load gets nothing.

    Reading the file twice (once to hash, once to unpickle) leaves a window in which a swapped
    file is unpickled unchecked. kaad reads it once and unpickles the bytes it checked.
    """
    global _HOOKED
    path, marker = tmp_path / "model.joblib", tmp_path / "attacker-code-ran"
    save_bundle(trained["result"].bundle, path)
    if not _HOOKED:
        sys.addaudithook(_swap_on_second_open)
        _HOOKED = True
    _SWAP.update(path=path, opens=0, payload=pickle.dumps(_Payload(marker)))
    try:
        loaded = load_bundle(path)
    finally:
        opens = _SWAP["opens"]
        _SWAP.clear()
    assert opens == 1, "the bundle file was opened more than once"
    assert not marker.exists()
    assert loaded.threshold == trained["result"].bundle.threshold


def test_a_checksum_catches_corruption_a_signature_catches_tampering(trained, tmp_path, monkeypatch):
    """Whoever rewrites a bundle rewrites its checksum too; without the key they cannot sign it.

    Without a key, the planted pickle passes the checksum and runs. With KAAD_SIGNING_KEY set,
    save_bundle writes a signature (``.sig``) and load_bundle refuses the planted file before
    unpickling anything.
    """
    path, marker = tmp_path / "model.joblib", tmp_path / "attacker-code-ran"
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    save_bundle(trained["result"].bundle, path)
    _plant(path, marker)
    with pytest.raises(KaadError, match="not a kaad model bundle"):
        load_bundle(path)
    assert marker.exists(), "without a key the planted pickle runs: the checksum is no defence"
    marker.unlink()

    monkeypatch.setenv("KAAD_SIGNING_KEY", KEY)
    save_bundle(trained["result"].bundle, path)
    assert (tmp_path / "model.joblib.sig").is_file()
    assert load_bundle(path).threshold == trained["result"].bundle.threshold
    _plant(path, marker)
    with pytest.raises(ModelSignatureError, match="does not carry a valid signature"):
        load_bundle(path)
    assert not marker.exists()


def test_with_a_key_unsigned_bundles_and_other_keys_are_refused(trained, tmp_path, monkeypatch):
    """A bundle saved without the key, or signed with another, is not trusted either."""
    unsigned, other = tmp_path / "unsigned.joblib", tmp_path / "other.joblib"
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    save_bundle(trained["result"].bundle, unsigned)
    monkeypatch.setenv("KAAD_SIGNING_KEY", "another-teams-key-fedcba9876543210")
    save_bundle(trained["result"].bundle, other)

    monkeypatch.setenv("KAAD_SIGNING_KEY", KEY)
    with pytest.raises(ModelSignatureError, match="is not signed and a signing key is configured"):
        load_bundle(unsigned)
    with pytest.raises(ModelSignatureError, match="signed with another key"):
        load_bundle(other)


def test_a_key_file_is_read_and_a_weak_or_missing_key_is_a_clear_error(trained, tmp_path, monkeypatch):
    """The key may come from a file (a mounted secret); a short key or an unreadable file is refused."""
    from models.persistence import signing_key

    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    key_file = tmp_path / "kaad.key"
    key_file.write_text(KEY + "\n")
    assert signing_key(key_file) == KEY.encode()
    assert signing_key() is None
    path = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, path, key=signing_key(key_file))
    assert load_bundle(path, key=signing_key(key_file)).threshold == trained["result"].bundle.threshold
    with pytest.raises(ModelSignatureError):
        load_bundle(path, key=b"x" * 32)

    monkeypatch.setenv("KAAD_SIGNING_KEY", "hunter2")
    with pytest.raises(KaadError, match="needs at least 16"):
        signing_key()
    with pytest.raises(InputNotFoundError, match="signing key file"):
        signing_key(tmp_path / "missing.key")


def test_a_bundle_from_before_detector_v2_is_refused_with_retrain(trained, tmp_path):
    """A bundle saved by an older kaad (format 1) has no action rarity, calibration or
    identity-day threshold: scoring with it would need guesses, so it is refused, and the
    message says to retrain rather than naming a missing attribute."""
    import dataclasses

    from errors import ModelCompatibilityError

    old = dataclasses.replace(
        trained["result"].bundle,
        rarity=None,
        calibrator=None,
        alert=None,
        versions=trained["result"].bundle.versions | {"bundle_format": "1"},
    )
    path = tmp_path / "old.joblib"
    save_bundle(old, path)
    with pytest.raises(ModelCompatibilityError, match="before detector v2.*retrain it with kaad train"):
        load_bundle(path)
