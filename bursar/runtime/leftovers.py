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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bursar.profile import Profile

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


def export_leftovers(exports_dir: Path, file_prefix: str, profiles: Sequence[Profile] = ()) -> list[Path]:
    """Temporary export files (`write_file_atomic`) of export files with our prefix, named as
    one of `profiles` names them (the built-in pybursar's names when none are given)."""
    from bursar.profile import builtin
    from bursar.profile_read import export_ids

    known = list(profiles) or [builtin("pybursar")]
    return _remove(exports_dir, _EXPORT_TMP, lambda name: bool(export_ids(known, file_prefix, [name])))


def payment_leftovers(payments_dir: Path, file_prefix: str) -> list[Path]:
    """Partial downloads of the Bursar's payment files (`SftpSession.download`)."""
    return _remove(payments_dir, _PAYMENT_TMP, lambda name: name.startswith(file_prefix))


def backup_leftovers(*folders: Path) -> list[Path]:
    """Temporary snapshots, archives and staged restores of the backup code."""
    return [p for folder in folders for p in _remove(folder, BACKUP_TMP)]
