"""Typed errors shared by every layer, so a CLI can report bad input in one line."""

from __future__ import annotations


class DiqaError(Exception):
    """Base class: anything a user can cause and should be told about plainly."""


class ImageDecodeError(DiqaError):
    """A file that is not a usable image (missing, empty, truncated, not an image, a bomb)."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelLoadError(DiqaError):
    """A model file (or its manifest) that cannot be loaded or trusted."""


class RuntimeUnavailableError(DiqaError):
    """The runtime a model needs is not installed or cannot run on this platform."""


class UsageError(DiqaError):
    """An argument the model or the runtime cannot honour (a threshold outside the score range,
    zero threads): named with its allowed range instead of failing later somewhere else."""
