"""Errors a user can fix. The CLI prints them as a title plus detail, without a traceback."""

from __future__ import annotations


class SlotfillError(Exception):
    """Base class: `title` is one line; `detail` says what to fix. Exit code 1."""

    exit_code = 1

    def __init__(self, title: str, detail: str = "") -> None:
        super().__init__(title if not detail else f"{title}\n{detail}")
        self.title = title
        self.detail = detail


class UsageError(SlotfillError):
    """Command-line arguments that do not fit together."""

    exit_code = 2


class ConfigError(SlotfillError):
    """Invalid config file, key, value or command-line override (a usage error)."""

    exit_code = 2


class DataError(SlotfillError):
    """A corpus that cannot be read or is malformed."""


class CheckpointError(SlotfillError):
    """A checkpoint that is missing, unreadable, corrupted or incompatible."""


class RunDirError(SlotfillError):
    """A run directory that exists already, or no trained model to use."""
