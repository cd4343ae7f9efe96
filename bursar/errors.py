"""The small family of domain errors.  One top-level handler (cli.main) maps them to exit codes.

Every error carries a one-line, human message: what went wrong and where.  Secrets never go
into a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ATTENTION = 3


class BursarError(Exception):
    """Base class: the run failed (network, server, store, file system).  Exit 1."""

    exit_code = EXIT_FAILED


class UsageError(BursarError):
    """Unknown command, bad flag or bad argument.  Exit 2."""

    exit_code = EXIT_USAGE


class SettingsError(UsageError):
    """A required setting is missing or malformed.  The message names the setting.  Exit 2."""


class StoreError(BursarError):
    """The store could not be opened, read or written."""


class AlmaError(BursarError):
    """Alma answered with an error (parsed from its error envelope) or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class AlmaDailyLimitError(AlmaError):
    """Alma's DAILY_THRESHOLD was reached: stop the run, retrying cannot help today."""


class ReportError(BursarError):
    """An Analytics report is unusable: a missing column, an implausible empty result, ..."""


class SftpError(BursarError):
    """An SFTP connection, host-key check, transfer or verification failed."""


class _MadeBackup(Protocol):
    """What a BackupError says about a finished local backup (a bursar.backup.Backup)."""

    @property
    def path(self) -> Path: ...

    @property
    def size(self) -> int: ...


class BackupError(BursarError):
    """A backup could not be made, listed, uploaded, validated or restored.

    `backup` is set when a local backup was completed before the failure (an S3 upload that
    failed), so the caller can still report where it is."""

    def __init__(self, message: str, *, backup: _MadeBackup | None = None):
        super().__init__(message)
        self.backup = backup


class FieldTooWide(BursarError):
    """A value does not fit its fixed-width field in a Bursar line (never truncated)."""

    def __init__(self, field: str, value: str, width: int):
        super().__init__(
            f"value {value!r} is {len(value)} characters, too wide for Bursar field "
            f"'{field}' ({width} characters)"
        )
        self.field = field
        self.value = value
        self.width = width
