"""The catalogue of backups: their names, the local and S3 listings, retention, and choosing one.

- Names carry a UTC timestamp, so they sort in time order: pybursar-sqlite-20240105T142233Z.sqlite.gz
  (a second backup in the same second gets -2, -3 ... before the extension).
- Only files with our name pattern directly in the folder are ours: a foreign file or a
  sub-folder (the safety copies in SAFETY_DIR) is never listed and never pruned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bursar.clients.s3 import S3Target, list_objects
from bursar.errors import BackupError, UsageError

NAME_PREFIX = "pybursar"
SAFETY_DIR = "before-restore"  # BACKUPS_DIR/before-restore: the state a restore replaced
SAFETY_KEEP = 10  # safety copies kept in SAFETY_DIR
CHOOSE_COUNT = 5  # restoreChoose offers this many of the newest backups

EXT = {"sqlite": "sqlite.gz", "mongodb": "archive.gz"}  # engine -> archive extension
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME_RE = re.compile(
    rf"^{NAME_PREFIX}-(sqlite|mongodb)-(\d{{8}}T\d{{6}}Z)(?:-([2-9]|[1-9]\d+))?\.(sqlite\.gz|archive\.gz)$"
)


@dataclass(frozen=True)
class Backup:
    """One backup archive.  For location "s3", `path` is where it would be downloaded and
    `key` is the object key."""

    path: Path
    name: str
    size: int
    created: datetime  # UTC, aware, from the name
    engine: str  # "sqlite" | "mongodb"
    location: str  # "local" | "s3"
    key: str | None = None


# ---- names --------------------------------------------------------------------------------


def backup_name(engine: str, created: datetime, seq: int = 1) -> str:
    """pybursar-<engine>-<UTC YYYYMMDDTHHMMSSZ>[-<seq>].<ext>"""
    suffix = f"-{seq}" if seq > 1 else ""
    return f"{NAME_PREFIX}-{engine}-{utc(created).strftime(_STAMP)}{suffix}.{EXT[engine]}"


def parse_name(name: str) -> tuple[str, datetime, int] | None:
    """(engine, created UTC, seq) of one of our backup names; None for any other file."""
    m = _NAME_RE.match(name)
    if not m or EXT[m.group(1)] != m.group(4):
        return None
    try:
        created = datetime.strptime(m.group(2), _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return m.group(1), created, int(m.group(3) or 1)


def utc(moment: datetime) -> datetime:
    """Aware UTC, whole seconds (a naive datetime is taken to be UTC already)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def free_name(folder: Path, engine: str, created: datetime) -> str:
    """The name a backup made at `created` gets in `folder`: the first sequence number not taken."""
    seq = 1
    while (folder / backup_name(engine, created, seq)).exists():
        seq += 1
    return backup_name(engine, created, seq)


def _sort_key(backup: Backup) -> tuple[datetime, int, str]:
    parsed = parse_name(backup.name)
    return (backup.created, parsed[2] if parsed else 1, backup.name)


# ---- listing and pruning ------------------------------------------------------------------


def local_backup(path: Path) -> Backup | None:
    """The Backup a file is, when it is one of ours."""
    parsed = parse_name(path.name)
    if parsed is None:
        return None
    engine, created, _ = parsed
    try:
        if not path.is_file():
            return None
        size = path.stat().st_size
    except OSError:
        return None
    return Backup(path=path, name=path.name, size=size, created=created, engine=engine, location="local")


def _local_backups(folder: Path) -> list[Backup]:
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise BackupError(f"cannot read the backups folder {folder}: {e.strerror or e}") from None
    found = [b for p in entries if (b := local_backup(p)) is not None]
    return sorted(found, key=_sort_key, reverse=True)


def prune_backups(folder: Path, keep: int, *, protect: Path | None = None) -> list[Path]:
    """Delete our backups in `folder` beyond the newest `keep`; return what was deleted.
    Only files with our name pattern directly in `folder` are candidates: foreign files and
    sub-folders (such as SAFETY_DIR) are never touched."""
    if keep < 1:
        raise UsageError(f"backup retention must keep at least 1 backup (got {keep})")
    removed: list[Path] = []
    for b in _local_backups(folder)[keep:]:
        if protect is not None and b.path == protect:
            continue
        try:
            b.path.unlink(missing_ok=True)
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            raise BackupError(f"removing old backup {b.name} failed: {e.strerror or e}{where}") from None
        removed.append(b.path)
    return removed


def list_backups(backups_dir: Path, *, s3: S3Target | None = None) -> list[Backup]:
    """Backups, newest first: the local ones; when the local folder has none and S3 is
    configured, the ones in S3 (so a lost server can be restored from the off-site copy).
    Safety copies (SAFETY_DIR) are never listed."""
    backups_dir = Path(backups_dir).absolute()
    local = _local_backups(backups_dir)
    if local or s3 is None:
        return local
    remote: list[Backup] = []
    for key, size, _modified in list_objects(s3):
        name = key.rsplit("/", 1)[-1]
        parsed = parse_name(name)
        if parsed is None:
            continue
        engine, created, _ = parsed
        remote.append(Backup(backups_dir / name, name, size, created, engine, "s3", key=key))
    return sorted(remote, key=_sort_key, reverse=True)


# ---- choosing -----------------------------------------------------------------------------


def pick_backup(backups: list[Backup], answer: str | int, *, count: int = CHOOSE_COUNT) -> Backup:
    """The backup a restoreChoose answer (1-based, as listed) names.  Anything that is not a
    number shown in the list is a UsageError, before anything is touched."""
    shown = backups[:count]
    if not shown:
        raise UsageError("there are no backups to choose from")
    text = str(answer).strip()
    # ASCII digits only: str.isdigit() also accepts '²' (int() then fails) and other scripts'
    # digits such as '١' (which int() reads as 1)
    if not re.fullmatch(r"[0-9]+", text):
        raise UsageError(f"{text!r} is not a number from the list; nothing was changed")
    number = int(text)
    if not 1 <= number <= len(shown):
        raise UsageError(f"{number} is not in the list (1 to {len(shown)}); nothing was changed")
    return shown[number - 1]
