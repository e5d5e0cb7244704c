"""Errors a user can cause; the CLI prints their message without a traceback."""

from __future__ import annotations


class QAError(Exception):
    """Base class for errors meant for the user."""


class DocumentError(QAError):
    """A summary file could not be read or parsed."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class IndexStateError(QAError):
    """The index on disk is missing, damaged or was built with other settings."""


class ModelError(QAError):
    """The embedding model could not be loaded."""
