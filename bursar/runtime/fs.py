"""The folders pyBursar is configured to use (EXPORTS_DIR, PAYMENTS_DIR, BACKUPS_DIR, ...).

Why one place: an operating-system error on a configured folder (it is a file, it cannot be
created, it is read-only, the disk is full) is a condition the operator can fix, so it must say
which setting and which path, never "unexpected FileExistsError".  Every job creates and uses
its folders through these two helpers.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bursar.errors import BursarError

FOLDER_MODE = 0o700


def ensure_dir(path: Path, setting: str, *, error: type[BursarError] = BursarError) -> Path:
    """Create the folder `path` (and its parents, mode 0700) unless it exists, check that this
    account may write in it, and return it.

    `setting` names where the path comes from ("EXPORTS_DIR", "EXPORTS_DIR/sent", ...)."""
    path = Path(path)
    try:
        path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    except OSError as exc:
        raise error(describe(exc, setting, path)) from None
    return path


def make_private(folder: Path) -> None:
    """Tighten one of our folders (it holds patron data) to 0700 when it is ours and looser.
    Best effort: the files inside are 0600 whatever happens here."""
    try:
        info = folder.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            folder.chmod(FOLDER_MODE)
    except OSError:
        pass  # missing (a dry run's folder) or not ours to change


@contextmanager
def os_errors(setting: str, path: Path, *, error: type[BursarError] = BursarError) -> Iterator[None]:
    """Turn an OSError raised inside the block into an error naming `setting` and `path`."""
    try:
        yield
    except OSError as exc:
        raise error(describe(exc, setting, path)) from None


def describe(exc: OSError, setting: str, path: Path) -> str:
    """One line: the setting, the path, what is wrong with it, and (where clear) what to do."""
    where = f"{setting} {path}"
    base = setting.split("/")[0]
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = _blocking_file(path)
        if blocker == path:
            return f"{where} is a file, not a folder (move the file away or point {base} elsewhere)"
        if blocker is not None:
            return (f"{where} cannot be created: {blocker} is a file, not a folder "
                    f"(move the file away or point {base} elsewhere)")
        return f"{where}: a part of the path is not a folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied (check the folder's owner and mode)"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}: no space left on the device (free some space, or point {base} elsewhere)"
    return f"{where}: {exc.strerror or type(exc).__name__}"


def _blocking_file(path: Path) -> Path | None:
    """The path itself or the nearest of its parents that exists as a non-folder, if any."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists() or candidate.is_symlink():
                return None if candidate.is_dir() else candidate
        except OSError:
            return None
    return None
