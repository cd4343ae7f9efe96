"""The folders pyBursar is configured to use (EXPORTS_DIR, PAYMENTS_DIR, BACKUPS_DIR, ...), and
the one way a file of ours appears under its real name.

Why one place for folders: an operating-system error on a configured folder (it is a file, it
cannot be created, it is read-only, the disk is full) is a condition the operator can fix, so it
must say which setting and which path, never "unexpected FileExistsError".  Every job creates
and uses its folders through these helpers.

Why one place for writing: a file a run produces (an export, a downloaded payment file, a
backup) must never exist half-written under its real name, and holds patron data.  So it is
written under a hidden temporary name in the same folder (created 0600), fsynced, renamed over
the real name, and the folder is fsynced so the rename survives a power cut: `atomic_file` for
bytes written here, `publish` for a temporary file another program filled (mongodump), and
`fsync_dir` itself.  The callers keep their own messages: these helpers raise plain OSError.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bursar.errors import BursarError

FOLDER_MODE = 0o700
FILE_MODE = 0o600  # every file we write holds patron data (or could)


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


# ---- durable, atomic files --------------------------------------------------------------------

# What fsync of a folder may answer where the file system cannot sync a folder at all (some
# network, FUSE and container file systems; a folder we may write in but not read).
_CANNOT_SYNC_A_FOLDER = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF,
                                   errno.EISDIR, errno.EACCES, errno.EPERM})


def fsync_dir(folder: Path) -> None:
    """Make a rename (or a new name) in `folder` durable.

    One rule for every caller: a folder this file system cannot sync (it refuses to open a
    folder for reading, or answers fsync with EINVAL/ENOTSUP, as some network and FUSE file
    systems do) is skipped, because there is nothing more we can do and the rename itself has
    been done; any other error (EIO, a full disk) is raised, because then the rename may not
    survive a crash and the caller must not report the file as safely written."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        if exc.errno in _CANNOT_SYNC_A_FOLDER:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _CANNOT_SYNC_A_FOLDER:
            raise
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync a file we wrote (or another program wrote for us) by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_file(folder: Path, *, prefix: str, suffix: str) -> Path:
    """A new, empty, hidden file in `folder` (the final name's file system), mode 0600."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def publish(temp: Path, final: Path) -> None:
    """Give a complete temporary file its real name: 0600, fsynced, renamed over `final` (atomic
    on POSIX), then the folder fsynced.  `temp` must be in `final`'s folder."""
    os.chmod(temp, FILE_MODE)
    fsync_file(temp)
    _rename(temp, final)


def _rename(temp: Path, final: Path) -> None:
    os.replace(temp, final)
    fsync_dir(final.parent)


def move(source: Path, target: Path) -> None:
    """Rename one of our files (into an archive folder, aside), durably."""
    os.replace(source, target)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)


@contextmanager
def atomic_file(path: Path, *, prefix: str | None = None, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Write `path` all at once: the block writes to a hidden temporary file beside it (mode
    0600 from its creation; named `<prefix><8 random><suffix>`, by default `.<name>.<8 random>.tmp`,
    the names bursar.runtime.leftovers removes after a kill).  When the block ends normally the file is
    flushed and published (`publish`); when it raises (OSError or anything else, a verification
    that failed) the temporary file is removed and `path` is untouched."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=prefix if prefix is not None else f".{path.name}.", suffix=suffix,
                                dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _rename(temp, path)  # mkstemp made it 0600
    finally:
        temp.unlink(missing_ok=True)  # nothing left once renamed; the temporary file otherwise
