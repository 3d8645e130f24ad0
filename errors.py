"""The one exception hierarchy of kaad.

Every error a user can cause derives from :class:`KaadError`; the CLI turns these into a
one-line message and an exit code, anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class KaadError(Exception):
    """Base class for errors raised by this project."""


class InputNotFoundError(KaadError, FileNotFoundError):
    """A path, glob or source named by the user matches nothing readable."""


class MalformedEventError(KaadError, ValueError):
    """An audit line could not be parsed into an event."""


class RejectedInputError(KaadError, ValueError):
    """Input lines were rejected and the caller asked for strict handling."""


class SchemaMismatchError(KaadError, ValueError):
    """Scoring data does not have the features the model was trained on."""


class ModelCompatibilityError(KaadError, RuntimeError):
    """A saved model was written by incompatible library versions or was tampered with."""


class ModelSignatureError(ModelCompatibilityError):
    """A signing key is configured and a model bundle is unsigned or signed with another key."""


class DayOrderError(KaadError, ValueError):
    """A day to score is on or before what the model's day state has learned (or out of order)."""


class UnnamedRerunError(KaadError):
    """A forced rerun of the last day scored was found only after featurising: name the day."""

    def __init__(self, message: str, day):
        super().__init__(message)
        self.day = day


__all__ = [
    "DayOrderError",
    "KaadError",
    "InputNotFoundError",
    "MalformedEventError",
    "RejectedInputError",
    "SchemaMismatchError",
    "ModelCompatibilityError",
    "ModelSignatureError",
]
