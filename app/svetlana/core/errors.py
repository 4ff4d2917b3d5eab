"""Typed errors carrying context; the CLI and GUI turn them into one clear message."""

from __future__ import annotations

from pathlib import Path


class SvetlanaError(Exception):
    """Base of every error a user can cause; ``str()`` is a one-line message."""

    def __init__(self, message: str, path: str | Path | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path is not None else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(SvetlanaError):
    """A user's file or argument cannot be used (shape, dtype, corrupt, unknown id...)."""


class ShapeMismatchError(InputError):
    """An image's axes could not be matched to its mask's shape: an axes string (ZCYX...) may
    fix it (the GUI offers to type one and retry)."""


class UnsafeFileError(InputError):
    """A file could only be read by running code from it (pickle); it is refused."""


class ProjectError(SvetlanaError):
    """The bundle is missing, damaged or cannot be changed."""


class ProjectVersionError(ProjectError):
    """The bundle was written by a newer Svetlana."""


class ProjectLockedError(ProjectError):
    """Another process holds the bundle's lock."""


class ModelError(SvetlanaError):
    """A network cannot be built, loaded or applied."""


class TrainingError(SvetlanaError):
    """Training cannot start or failed (too few labels, one class, out of memory...)."""


class ResourceError(SvetlanaError):
    """Not enough memory or disk for the requested work."""


class Cancelled(SvetlanaError):
    """The user cancelled; nothing was changed."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)
