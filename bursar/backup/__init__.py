"""Backups and restores of the whole store: a local folder, plus an S3 copy when configured.

Why it looks the way it does (docs/original-defects.md §33 and §34, fixed):
- `catalogue`: the names (a UTC timestamp, so they sort in time order), the local and S3
  listings, retention, and the restoreChoose pick.
- `actions`: create, validate and restore, in the order that keeps the store safe: a backup
  appears under its final name only complete (fsynced, 0600, renamed); a restore validates
  the archive completely, saves the current state in BACKUPS_DIR/before-restore/, and only
  then replaces the store.
- `sqlite`: the online-backup snapshot, the integrity check, the one-rename swap.
- `mongo`: mongodump/mongorestore on the configured URI, which never reaches a command line,
  an environment or a message unredacted.
- `files`: the temporary files, gzip and OSError handling both engines share.
- The store is a `DbTarget` (BURSAR_DB_URI parsed once by the settings); this package prints
  nothing: it returns what it did and raises BackupError (one line, bursar.errors).
"""

from bursar.backup.actions import create_backup, restore_backup, validate_backup
from bursar.backup.catalogue import (
    CHOOSE_COUNT,
    NAME_PREFIX,
    SAFETY_DIR,
    SAFETY_KEEP,
    Backup,
    backup_name,
    list_backups,
    parse_name,
    pick_backup,
    prune_backups,
)
from bursar.backup.mongo import TOOL_TIMEOUT
from bursar.errors import BackupError

__all__ = ["CHOOSE_COUNT", "NAME_PREFIX", "SAFETY_DIR", "SAFETY_KEEP", "TOOL_TIMEOUT", "Backup", "BackupError",
           "backup_name", "create_backup", "list_backups", "parse_name", "pick_backup", "prune_backups",
           "restore_backup", "validate_backup"]
