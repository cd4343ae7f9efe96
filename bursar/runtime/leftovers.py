"""Temporary files a killed run left behind, found by their exact names and removed.

Every file is written under a temporary name and renamed into place, so a kill (SIGKILL, a
power cut) leaves at most a temporary file, never a half-written real one.  Those temporary
files would otherwise pile up, and some are copies of patron data.  Each command removes the
leftovers of its own kind when it starts (it holds the run lock, so no other run is writing
them), and only names it creates itself:

| who               | folder        | name                                             |
|-------------------|---------------|--------------------------------------------------|
| exportBurs        | EXPORTS_DIR   | `.<export file name>.<8 random>.tmp`              |
| importAlmaPayments| PAYMENTS_DIR  | `.<payments file name>.<8 random>.part`           |
| backupDB, restores| BACKUPS_DIR   | `.pybursar-tmp-<8 random><suffix>` (and -journal) |
| restores from S3  | BACKUPS_DIR   | `.pybursar-tmp-<8 random>.download`               |
| restores          | the db folder | `.pybursar-tmp-<8 random>.restore`                |
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger("bursar")

_RANDOM = r"[a-z0-9_]{8}"  # what tempfile.mkstemp puts between prefix and suffix
BACKUP_TMP = re.compile(rf"^\.pybursar-tmp-{_RANDOM}\.(sqlite3|sqlite\.gz|archive\.gz|restore|sqlite|archive|download)"
                        r"(-journal|-wal|-shm)?$")
_EXPORT_TMP = re.compile(rf"^\.(?P<name>.+)\.{_RANDOM}\.tmp$")
_PAYMENT_TMP = re.compile(rf"^\.(?P<name>.+)\.{_RANDOM}\.part$")


def _remove(folder: Path, wanted: re.Pattern[str], name_ok: object = None) -> list[Path]:
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed  # no folder yet: nothing was left
    for path in entries:
        m = wanted.match(path.name)
        if m is None or not path.is_file() or path.is_symlink():
            continue
        if callable(name_ok) and not name_ok(m.group("name")):
            continue
        try:
            path.unlink()
            removed.append(path)
            log.info("removed %s, left by a run that was killed", path)
        except OSError:
            pass  # the next run tries again
    return removed


def export_leftovers(exports_dir: Path, file_prefix: str) -> list[Path]:
    """Temporary export files (`write_file_atomic`) of export files with our prefix."""
    from bursar.rules.bursar_file import parse_file_name

    return _remove(exports_dir, _EXPORT_TMP, lambda name: parse_file_name(file_prefix, name) is not None)


def payment_leftovers(payments_dir: Path, file_prefix: str) -> list[Path]:
    """Partial downloads of the Bursar's payment files (`SftpSession.download`)."""
    return _remove(payments_dir, _PAYMENT_TMP, lambda name: name.startswith(file_prefix))


def backup_leftovers(*folders: Path) -> list[Path]:
    """Temporary snapshots, archives and staged restores of the backup code."""
    return [p for folder in folders for p in _remove(folder, BACKUP_TMP)]
