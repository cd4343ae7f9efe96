"""SQLite backups: a consistent snapshot, the check of an archive, and the swap of a restore.

- The database is copied with the online backup API from a read-only connection, so a running
  writer is never blocked or disturbed and the copy is a consistent snapshot (WAL included).
  The copy must pass PRAGMA integrity_check before it is kept.
- A restore decompresses the archive beside the database, checks it as a backup is checked,
  and only then (after the caller saved the current state) replaces the file with one rename.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from pathlib import Path

from bursar.backup import files
from bursar.errors import BackupError
from bursar.runtime import crash, fs
from bursar.store import one_line
from bursar.store.schema import ORIGINAL_COLLECTIONS

log = logging.getLogger(__name__)


def snapshot(db: Path, dest: Path, *, strict: bool) -> None:
    """Copy the live database into the (existing, empty) file `dest` with the backup API.

    The source is opened read-only, so a missing file is an error rather than a new empty
    database.  The copy is switched to a rollback journal so it is one self-contained file.
    strict=False (the safety copy before a restore): a damaged database is still saved, as
    raw bytes if need be, because it is exactly what a restore is about to replace.
    """
    try:
        src = sqlite3.connect(db.as_uri() + "?mode=ro", uri=True, timeout=30.0)
        try:
            dst = sqlite3.connect(dest)
            try:
                dst.execute("PRAGMA journal_mode = OFF")  # no -journal beside the temporary copy
                src.backup(dst)
                dst.execute("PRAGMA journal_mode = DELETE")
                rows = dst.execute("PRAGMA integrity_check").fetchall()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as e:
        if getattr(e, "sqlite_errorname", None) == "SQLITE_FULL":  # the copy's disk, not the store
            raise files.folder_full(dest.parent) from None
        if strict:
            raise BackupError(f"cannot read the SQLite database {db}: {one_line(e)}") from None
        shutil.copyfile(db, dest)
        return
    if strict and rows != [("ok",)]:
        first = rows[0][0] if rows else "no result"
        raise BackupError(f"the SQLite database {db} failed its integrity check: {one_line(first)}")


def check_file(path: Path, label: str) -> None:
    """A decompressed SQLite backup is usable: it opens, passes integrity_check, and has every
    table of the store's schema."""
    from bursar.store.sqlite import USER_VERSION, read_layout

    try:
        version, tables, rows = read_layout(path, integrity=True)
    except sqlite3.Error as e:
        raise BackupError(f"backup {label} is not a usable SQLite database ({one_line(e)})") from None
    finally:
        files.remove_sidecars(path)
    if rows != [("ok",)]:
        first = rows[0][0] if rows else "no result"
        raise BackupError(f"backup {label} failed SQLite's integrity check: {one_line(first)}")
    missing = sorted(set(ORIGINAL_COLLECTIONS) - tables)
    if missing:
        raise BackupError(f"backup {label} is not a pyBursar database (missing tables: {', '.join(missing)})")
    if version > USER_VERSION:
        raise BackupError(f"backup {label} has layout version {version}, newer than this pyBursar ({USER_VERSION})")


def archive(db: Path, folder: Path, *, strict: bool) -> Path:
    """A complete gzip archive of the database as a temporary file in `folder`."""
    if not db.is_file():
        raise BackupError(f"there is no SQLite database at {db} to back up")
    plain = gz = None
    try:
        with files.os_errors(f"backing up {db} into {folder}", folder=folder):
            plain = files.tmp_file(folder, ".sqlite3")
            snapshot(db, plain, strict=strict)
            crash.point("backup.after_snapshot")
            gz = files.tmp_file(folder, ".sqlite.gz")
            files.gzip_into(plain, gz, consume=True)
            crash.point("backup.after_gzip")
    except BaseException:
        files.remove(gz)
        raise
    finally:
        files.remove(plain)
    return gz


def check_archive(path: Path) -> None:
    """Decompress the archive fully (CRC checked) to a temporary file beside it and check that
    (`check_file`); in the system temp folder when the backups folder is read-only."""
    try:
        plain = files.tmp_file(path.parent, ".sqlite3")
    except OSError:  # a read-only backups folder: check it in the system temp folder
        with files.os_errors("preparing to validate a backup"):
            plain = files.tmp_file(Path(tempfile.gettempdir()), ".sqlite3")
    try:
        files.gunzip_into(path, plain)
        check_file(plain, path.name)
    finally:
        files.remove(plain)


def stage(archive_path: Path, db: Path, label: str) -> Path:
    """The archive decompressed beside the database and checked: the file a restore swaps in.
    The caller removes it (files.remove) whatever happens."""
    with files.os_errors(f"preparing to restore {db}"):
        db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staged = files.tmp_file(db.parent, ".restore")
    try:
        files.gunzip_into(archive_path, staged)
        check_file(staged, label)
    except BaseException:
        files.remove(staged)
        raise
    return staged


def swap_in(staged: Path, db: Path, label: str) -> None:
    """Replace the database with the staged file: the old WAL folded in first, then 0600,
    fsynced, one rename (`fs.publish`), and no stale companion left to be applied to the new
    file."""
    with files.os_errors(f"restoring {db}"):
        if db.exists():
            _quiesce(db)
        fs.publish(staged, db)
        files.remove_sidecars(db)
        fs.fsync_dir(db.parent)  # the companions' removal, too
    log.debug("restored %s from %s", db, label)


def _quiesce(db: Path) -> None:
    """Fold the WAL into the main file and empty it, so no stale -wal can be replayed onto
    the restored file.  (Its contents are already in the safety copy.)"""
    try:
        con = sqlite3.connect(db, timeout=30.0)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    except sqlite3.Error as e:
        log.debug("checkpoint before restore failed (%s); the old file is replaced anyway", one_line(e))
