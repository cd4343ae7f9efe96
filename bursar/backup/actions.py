"""Making, checking and restoring a backup: the steps both engines share, in their order.

- A backup file only ever appears under its final name complete: it is built under a hidden
  temporary name in the same folder, then fsynced, made 0600 (patron data) and renamed
  (`fs.publish`).
- A restore validates the archive completely before anything is touched, then saves the
  current state in BACKUPS_DIR/before-restore/ (never "the last backup", never pruned by the
  normal retention), and only then replaces the store.  A bad archive or a bad answer to the
  restoreChoose prompt changes nothing.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path

from bursar.backup import files, mongo, sqlite
from bursar.backup.catalogue import EXT, SAFETY_DIR, SAFETY_KEEP, Backup, free_name, local_backup, prune_backups, utc
from bursar.clients.s3 import S3Target, download, upload_verified
from bursar.errors import BackupError, UsageError
from bursar.runtime import fs
from bursar.runtime.leftovers import backup_leftovers
from bursar.store import DbTarget, db_target

log = logging.getLogger("bursar.backup")


def _archive(target: DbTarget, folder: Path, *, strict: bool) -> Path:
    if target.path is not None:
        return sqlite.archive(target.path, folder, strict=strict)
    return mongo.archive(target, folder)


def _place(tmp: Path, folder: Path, engine: str, created: datetime) -> Backup:
    """Give a finished temporary archive its final (free) name: 0600, fsynced, renamed."""
    final = folder / free_name(folder, engine, created)
    try:
        with files.os_errors(f"saving backup {final.name}", folder=folder):
            fs.publish(tmp, final)
    finally:
        files.remove(tmp)  # nothing left once renamed; the temporary file if the rename failed
    made = local_backup(final)
    assert made is not None  # we just named it
    return made


def create_backup(
    db: DbTarget | str,
    backups_dir: Path,
    *,
    now: datetime,
    keep: int,
    s3: S3Target | None = None,
    dry_run: bool = False,
) -> tuple[Backup, str | None]:
    """Back up the whole store into `backups_dir`, prune to `keep`, copy to S3 when given.

    Returns (the local backup, the S3 key or None).  An S3 failure is raised only after the
    local backup is complete and pruned; the error says where the local copy is and carries
    it as `.backup`.  dry_run: return what would be made and write nothing.
    """
    if keep < 1:
        raise UsageError(f"backup retention must keep at least 1 backup (got {keep})")
    target = db_target(db)
    backups_dir = Path(backups_dir).absolute()
    created = utc(now)
    if dry_run:
        size = 0
        if target.path is not None:
            # no file yet: a dry run of a first `today`, whose real run will have made it by now
            size = target.path.stat().st_size if target.path.is_file() else 0
        elif shutil.which("mongodump") is None:
            raise BackupError("mongodump is not installed (install MongoDB Database Tools and put mongodump on PATH)")
        name = free_name(backups_dir, target.engine, created)
        planned = Backup(backups_dir / name, name, size, created, target.engine, "local")
        return planned, (s3.key(name) if s3 is not None else None)

    files.make_dir(backups_dir)
    backup_leftovers(backups_dir)  # a killed run's temporary copies: patron data
    backup = _place(_archive(target, backups_dir, strict=True), backups_dir, target.engine, created)
    log.debug("backup written: %s (%d bytes)", backup.path, backup.size)
    prune_backups(backups_dir, keep, protect=backup.path)

    key = None
    if s3 is not None:
        try:
            key = upload_verified(s3, backup.path, backup.name)
        except BackupError as e:
            raise BackupError(f"{e}; the local backup is at {backup.path}", backup=backup) from None
    return backup, key


def validate_backup(path: Path, engine: str) -> None:
    """Check an archive completely without touching the store.

    SQLite: decompress it fully (CRC checked) to a temporary file beside it, open that,
    PRAGMA integrity_check, and every table of the schema present.  MongoDB: decompress to
    the end and check mongodump's archive header.  BackupError on anything wrong.
    """
    path = Path(path)
    if engine not in EXT:
        raise BackupError(f"unknown backup engine {engine!r}")
    if not path.is_file():
        raise BackupError(f"backup {path} does not exist")
    if engine == "mongodb":
        mongo.check_archive(path, path.name)
    else:
        sqlite.check_archive(path)


def restore_backup(
    db: DbTarget | str,
    backup: Backup,
    backups_dir: Path,
    *,
    now: datetime,
    s3: S3Target | None = None,
) -> Backup | None:
    """Replace the store with `backup`.  Returns the safety backup of the state it replaced
    (None when there was no store to save).

    Order: (1) fetch from S3 if needed, (2) validate, (3) save the current state into
    SAFETY_DIR, (4) swap in the restored store.  Nothing is changed when 1-3 fail.  The caller
    holds the run lock, so no other pyBursar process has the store open.
    """
    target = db_target(db)
    if backup.engine != target.engine:
        raise BackupError(f"backup {backup.name} is a {backup.engine} backup "
                          f"but BURSAR_DB_URI names a {target.engine} store")
    backups_dir = Path(backups_dir).absolute()
    folders = [backups_dir, backups_dir / SAFETY_DIR]
    if target.path is not None:
        folders.append(target.path.parent)
    backup_leftovers(*folders)  # a killed restore's staged copies: patron data
    fetched: Path | None = None
    try:
        archive = backup.path
        if backup.location == "s3":
            if s3 is None or not backup.key:
                raise BackupError(f"backup {backup.name} is in S3 but S3 is not configured (S3_BUCKET)")
            files.make_dir(backups_dir)
            with files.os_errors("preparing the S3 download"):
                fetched = files.tmp_file(backups_dir, "." + EXT[target.engine])
            download(s3, backup.key, fetched)
            archive = fetched
        elif not archive.is_file():
            raise BackupError(f"backup {backup.name} is not at {archive}")
        if target.path is not None:
            return _restore_sqlite(target, target.path, archive, backup.name, backups_dir, now)
        mongo.check_archive(archive, backup.name)
        safety = _safety_backup(target, backups_dir, now)
        mongo.restore(target, archive, backup.name, safety=safety.path)
        return safety
    finally:
        files.remove(fetched)


def _restore_sqlite(target: DbTarget, db: Path, archive: Path, label: str, backups_dir: Path,
                    now: datetime) -> Backup | None:
    """Decompress beside the db, check it, save the current db aside, then one rename."""
    staged = sqlite.stage(archive, db, label)
    try:
        safety = _safety_backup(target, backups_dir, now) if db.exists() else None
        sqlite.swap_in(staged, db, label)
        return safety
    finally:
        files.remove(staged)


def _safety_backup(target: DbTarget, backups_dir: Path, now: datetime) -> Backup:
    """The state a restore is about to replace, in SAFETY_DIR (pruned to SAFETY_KEEP there)."""
    folder = backups_dir / SAFETY_DIR
    files.make_dir(folder)
    saved = _place(_archive(target, folder, strict=False), folder, target.engine, utc(now))
    prune_backups(folder, SAFETY_KEEP, protect=saved.path)
    return saved
