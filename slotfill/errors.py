"""Errors a user can fix. The CLI prints them as a title plus detail, without a traceback."""

from __future__ import annotations

import errno
from pathlib import Path


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


class WriteError(SlotfillError):
    """A file that could not be written: the disk is full, no permission, a read-only
    file system. `path` is the file; `cause` the OSError; nothing half-written is left."""

    def __init__(self, path, cause: OSError, detail: str = "") -> None:
        self.path, self.cause = path, cause
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"Cannot write {path}: {reason}", detail or self.advice())

    @property
    def full(self) -> bool:
        """The disk (or the user's quota) is full."""
        return self.cause.errno in (errno.ENOSPC, errno.EDQUOT)

    def advice(self) -> str:
        """What to do about it, by its cause."""
        folder = Path(self.path).parent
        if self.full:
            fix = f"free some space on the disk that holds {folder}, or write elsewhere"
        elif self.cause.errno in (errno.EACCES, errno.EPERM):
            fix = f"you may not write in {folder}: check its permissions, or write elsewhere"
        elif self.cause.errno == errno.EROFS:
            fix = f"{folder} is on a read-only file system: write elsewhere"
        else:
            fix = str(self.cause)
        return f"{fix}. {Path(self.path).name} was left as it was; no partial file remains."
