"""Backups and restores of the whole store: a local folder, plus an S3 copy when configured.

Why it looks the way it does (docs/original-defects.md §33 and §34, fixed):
- A backup file only ever appears under its final name complete: it is built under a hidden
  temporary name in the same folder, fsynced, made 0600 (patron data) and renamed.
- SQLite is copied with the online backup API from a read-only connection, so a running
  writer is never blocked or disturbed and the copy is a consistent snapshot (WAL included).
  The copy must pass PRAGMA integrity_check before it is kept.
- MongoDB is dumped with mongodump using the configured URI (the original dumped whatever ran
  on localhost), and its exit status is checked.  The URI is never put in a message unredacted,
  nor on the tools' command line or in their environment: it goes in a 0600 `--config` file in
  a private temporary folder that is removed as soon as the tool has finished.
- Names carry a UTC timestamp, so they sort in time order: pybursar-sqlite-20240105T142233Z.sqlite.gz
  (a second backup in the same second gets -2, -3 ... before the extension).
- A restore validates the archive completely before anything is touched, then saves the
  current state in BACKUPS_DIR/before-restore/ (never "the last backup", never pruned by the
  normal retention), and only then replaces the store.  A bad archive or a bad answer to the
  restoreChoose prompt changes nothing.
- This module prints nothing: it returns what it did and raises BackupError (one line).
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from bursar import crash, fs
from bursar.errors import BursarError, SettingsError, UsageError
from bursar.leftovers import backup_leftovers
from bursar.store import one_line, redact_uri, uri_secrets
from bursar.store.schema import ORIGINAL_COLLECTIONS

if TYPE_CHECKING:
    from bursar.s3 import S3Target

log = logging.getLogger(__name__)

NAME_PREFIX = "pybursar"
SAFETY_DIR = "before-restore"
SAFETY_KEEP = 10  # safety copies kept in SAFETY_DIR
CHOOSE_COUNT = 5  # restoreChoose offers this many of the newest backups
TOOL_TIMEOUT = 4 * 3600  # seconds a mongodump/mongorestore may run before we give up

_EXT = {"sqlite": "sqlite.gz", "mongodb": "archive.gz"}
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME_RE = re.compile(
    rf"^{NAME_PREFIX}-(sqlite|mongodb)-(\d{{8}}T\d{{6}}Z)(?:-([2-9]|[1-9]\d+))?\.(sqlite\.gz|archive\.gz)$"
)
_TMP_PREFIX = ".pybursar-tmp-"
_CHUNK = 1 << 20
# gzip level 1, not gzip's default 9: on a SQLite file of 100,000 fines (80 MB) level 9 took 23x
# as long for an archive 11% smaller, and the backup ends every `today` (bench/daily.py).
_GZIP_LEVEL = 1
_MONGO_ARCHIVE_MAGIC = bytes.fromhex("6de29981")  # mongodump archive: uint32 0x8199e26d, little-endian
_MONGO_DEFAULT_DB = "almabursar"


class BackupError(BursarError):
    """A backup could not be made, listed, uploaded, validated or restored.

    `backup` is set when a local backup was completed before the failure (an S3 upload that
    failed), so the caller can still report where it is."""

    def __init__(self, message: str, *, backup: Backup | None = None):
        super().__init__(message)
        self.backup = backup


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


def engine_of(db_uri: str) -> str:
    """The engine, "sqlite" or "mongodb", from the scheme of BURSAR_DB_URI."""
    lower = (db_uri or "").strip().lower()
    if lower.startswith("sqlite:"):
        return "sqlite"
    if lower.startswith(("mongodb://", "mongodb+srv://")):
        return "mongodb"
    raise SettingsError("BURSAR_DB_URI is not usable: expected sqlite:///PATH or mongodb://HOST:PORT/DBNAME")


def sqlite_path(db_uri: str) -> Path:
    """The SQLite file a `sqlite:///PATH` URI names (relative paths are relative to the cwd),
    found without opening (and so without creating) it."""
    uri = db_uri.strip()
    prefix = "sqlite:///"
    raw = uri[len(prefix) :] if uri.lower().startswith(prefix) else ""
    if not raw or raw.endswith("/") or "?" in raw or "#" in raw or "\x00" in raw:
        raise SettingsError(
            "BURSAR_DB_URI is malformed: a SQLite URI is sqlite:///relative/path or sqlite:////abs/path"
        )
    return Path(raw).absolute()


def backup_name(engine: str, created: datetime, seq: int = 1) -> str:
    """pybursar-<engine>-<UTC YYYYMMDDTHHMMSSZ>[-<seq>].<ext>"""
    suffix = f"-{seq}" if seq > 1 else ""
    return f"{NAME_PREFIX}-{engine}-{_utc(created).strftime(_STAMP)}{suffix}.{_EXT[engine]}"


def parse_name(name: str) -> tuple[str, datetime, int] | None:
    """(engine, created UTC, seq) of one of our backup names; None for any other file."""
    m = _NAME_RE.match(name)
    if not m or _EXT[m.group(1)] != m.group(4):
        return None
    try:
        created = datetime.strptime(m.group(2), _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return m.group(1), created, int(m.group(3) or 1)


def _utc(moment: datetime) -> datetime:
    """Aware UTC, whole seconds (a naive datetime is taken to be UTC already)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _free_name(folder: Path, engine: str, created: datetime) -> str:
    seq = 1
    while (folder / backup_name(engine, created, seq)).exists():
        seq += 1
    return backup_name(engine, created, seq)


def _sort_key(backup: Backup) -> tuple[datetime, int, str]:
    parsed = parse_name(backup.name)
    return (backup.created, parsed[2] if parsed else 1, backup.name)


# ---- small file helpers -------------------------------------------------------------------


def _tmp_file(folder: Path, suffix: str) -> Path:
    """A new empty hidden file, mode 0600, in `folder` (same file system as the final name)."""
    fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def _remove(*paths: Path | None) -> None:
    for p in paths:
        if p is not None:
            for extra in ("", "-wal", "-shm", "-journal"):
                try:
                    Path(str(p) + extra).unlink(missing_ok=True)
                except OSError:
                    pass


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is still done
    finally:
        os.close(fd)


def _setting(folder: Path) -> str:
    """The setting a backups folder comes from, for messages."""
    return f"BACKUPS_DIR/{SAFETY_DIR}" if folder.name == SAFETY_DIR else "BACKUPS_DIR"


def _make_dir(folder: Path) -> None:
    fs.ensure_dir(folder, _setting(folder), error=BackupError)


_FULL = (errno.ENOSPC, errno.EDQUOT)


def _folder_full(folder: Path) -> BackupError:
    """The backups folder's disk is full: name the folder (not the database being read)."""
    return BackupError(fs.describe(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), _setting(folder), folder)
                       + "; the store was not changed")


@contextmanager
def _os_errors(what: str, *, folder: Path | None = None) -> Iterator[None]:
    """OSError -> BackupError naming what we were doing.  With `folder` (the backups folder
    being written), a full disk or an unusable folder names that folder and its setting."""
    try:
        yield
    except OSError as e:
        if folder is not None and e.errno in _FULL:
            raise _folder_full(folder) from None
        if folder is not None and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) \
                and (e.filename is None or Path(e.filename).parent == folder):
            raise BackupError(fs.describe(e, _setting(folder), folder)) from None
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        raise BackupError(f"{what} failed: {e.strerror or e}{where}") from None


def _gzip_into(src: Path, dest: Path, *, consume: bool = False) -> None:
    """Compress `src` into the (existing, 0600) file `dest` and fsync it.  consume=True
    removes `src`'s name as soon as it is open, so a kill during the compression leaves one
    temporary file (`dest`), never a second full copy of the database beside it."""
    with dest.open("wb") as raw, src.open("rb") as f:
        if consume:
            _remove(src)
        # filename="" and mtime=0: the gzip header carries no temporary name or clock
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_GZIP_LEVEL) as gz:
            shutil.copyfileobj(f, gz, _CHUNK)
        raw.flush()
        os.fsync(raw.fileno())


def _gunzip_into(archive: Path, dest: Path) -> None:
    """Decompress the whole archive into `dest`.  gzip checks the CRC-32 and length trailer,
    so a truncated or damaged archive fails here."""
    try:
        with gzip.open(archive, "rb") as gz, dest.open("wb") as out:
            shutil.copyfileobj(gz, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise BackupError(f"backup {archive.name} is damaged or truncated ({one_line(e)})") from None
    except OSError as e:
        raise BackupError(f"cannot read backup {archive.name}: {e.strerror or e}") from None


# ---- SQLite -------------------------------------------------------------------------------


def _sqlite_snapshot(db: Path, dest: Path, *, strict: bool) -> None:
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
            raise _folder_full(dest.parent) from None
        if strict:
            raise BackupError(f"cannot read the SQLite database {db}: {one_line(e)}") from None
        shutil.copyfile(db, dest)
        return
    if strict and rows != [("ok",)]:
        first = rows[0][0] if rows else "no result"
        raise BackupError(f"the SQLite database {db} failed its integrity check: {one_line(first)}")


def _check_sqlite_file(path: Path, label: str) -> None:
    """A decompressed SQLite backup is usable: it opens, passes integrity_check, and has every
    table of the store's schema."""
    from bursar.store.sqlite import USER_VERSION, read_layout

    try:
        version, tables, rows = read_layout(path, integrity=True)
    except sqlite3.Error as e:
        raise BackupError(f"backup {label} is not a usable SQLite database ({one_line(e)})") from None
    finally:
        _remove_sidecars(path)
    if rows != [("ok",)]:
        first = rows[0][0] if rows else "no result"
        raise BackupError(f"backup {label} failed SQLite's integrity check: {one_line(first)}")
    missing = sorted(set(ORIGINAL_COLLECTIONS) - tables)
    if missing:
        raise BackupError(f"backup {label} is not a pyBursar database (missing tables: {', '.join(missing)})")
    if version > USER_VERSION:
        raise BackupError(f"backup {label} has layout version {version}, newer than this pyBursar ({USER_VERSION})")


def _remove_sidecars(path: Path) -> None:
    for extra in ("-wal", "-shm", "-journal"):
        Path(str(path) + extra).unlink(missing_ok=True)


def _sqlite_archive(db: Path, folder: Path, *, strict: bool) -> Path:
    """A complete gzip archive of the database as a temporary file in `folder`."""
    if not db.is_file():
        raise BackupError(f"there is no SQLite database at {db} to back up")
    plain = gz = None
    try:
        with _os_errors(f"backing up {db} into {folder}", folder=folder):
            plain = _tmp_file(folder, ".sqlite3")
            _sqlite_snapshot(db, plain, strict=strict)
            crash.point("backup.after_snapshot")
            gz = _tmp_file(folder, ".sqlite.gz")
            _gzip_into(plain, gz, consume=True)
            crash.point("backup.after_gzip")
    except BaseException:
        _remove(gz)
        raise
    finally:
        _remove(plain)
    return gz


def _quiesce_sqlite(db: Path) -> None:
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


# ---- MongoDB ------------------------------------------------------------------------------


def _mongo_database(uri: str) -> str:
    try:
        name = unquote(urlsplit(uri).path.lstrip("/"))
    except ValueError:
        name = ""
    return name or _MONGO_DEFAULT_DB


@contextmanager
def _uri_config(uri: str) -> Iterator[Path]:
    """A YAML file holding only `uri: ...`, for the tools' `--config` (MongoDB Database Tools
    100.x): the URI, and so the password, never goes on a command line, where `ps` shows it to
    every local user.  Mode 0600 in a private 0700 temporary folder, removed afterwards (on error
    too)."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        raise SettingsError("BURSAR_DB_URI contains a control character")
    with _os_errors("preparing the MongoDB tools' configuration file"):
        folder = Path(tempfile.mkdtemp(prefix="pybursar-mongo-"))
    try:
        path = folder / "config.yaml"
        with _os_errors("writing the MongoDB tools' configuration file"):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("uri: '" + uri.replace("'", "''") + "'\n")  # a single-quoted YAML scalar
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tool_environment(secrets: list[str]) -> dict[str, str]:
    """The environment for mongodump/mongorestore: ours without our settings (BURSAR_DB_URI may
    be set there) and without any variable that holds the password."""
    from bursar.settings import SETTINGS

    ours = {s.name for s in SETTINGS} | {"BURSAR_ENV_FILE"}
    return {k: v for k, v in os.environ.items() if k not in ours and not any(s in v for s in secrets)}


def _run_tool(tool: str, args: list[str], uri: str) -> str:
    """Run mongodump/mongorestore (an argument list: no shell) with the URI in a `--config`
    file.  Returns its stderr; a missing tool, a timeout or a non-zero exit status is a
    BackupError with the (redacted) last line."""
    secrets = uri_secrets(uri)

    def scrub(text: str) -> str:
        for s in secrets:
            text = text.replace(s, "***")
        return one_line(text)

    try:
        with _uri_config(uri) as config:
            proc = subprocess.run(
                [tool, f"--config={config}", *args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=TOOL_TIMEOUT,
                check=False,
                env=_tool_environment(secrets),
            )
    except FileNotFoundError:
        raise BackupError(f"{tool} is not installed (install MongoDB Database Tools and put {tool} on PATH)") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{tool} did not finish within {TOOL_TIMEOUT // 60} minutes ({redact_uri(uri)})") from None
    except OSError as e:
        raise BackupError(f"cannot run {tool}: {e.strerror or e}") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
        last = scrub(lines[-1]) if lines else "no error output"
        raise BackupError(f"{tool} failed with exit status {proc.returncode} for {redact_uri(uri)}: {last}")
    return proc.stderr or ""


def _mongo_archive(uri: str, folder: Path) -> Path:
    """A complete mongodump archive (gzip) of the configured database as a temporary file."""
    with _os_errors(f"preparing a backup in {folder}", folder=folder):
        tmp = _tmp_file(folder, ".archive.gz")
    try:
        _run_tool("mongodump", [f"--archive={tmp}", "--gzip"], uri)
        if tmp.stat().st_size == 0:
            raise BackupError(f"mongodump wrote an empty archive for {redact_uri(uri)}")
        with _os_errors(f"saving the mongodump archive in {folder}", folder=folder):
            _fsync_file(tmp)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _check_mongo_archive(path: Path, label: str) -> None:
    """The archive decompresses to the end (CRC checked) and starts with mongodump's magic."""
    try:
        with gzip.open(path, "rb") as gz:
            head = gz.read(4)
            while gz.read(_CHUNK):
                pass
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise BackupError(f"backup {label} is damaged or truncated ({one_line(e)})") from None
    except OSError as e:
        raise BackupError(f"cannot read backup {label}: {e.strerror or e}") from None
    if head != _MONGO_ARCHIVE_MAGIC:
        raise BackupError(f"backup {label} is not a mongodump archive")


# ---- creating -----------------------------------------------------------------------------


def _archive(db_uri: str, engine: str, folder: Path, *, strict: bool) -> Path:
    if engine == "sqlite":
        return _sqlite_archive(sqlite_path(db_uri), folder, strict=strict)
    return _mongo_archive(db_uri, folder)


def _place(tmp: Path, folder: Path, engine: str, created: datetime) -> Path:
    """Give a finished temporary archive its final (free) name: 0600, fsynced, renamed."""
    final = folder / _free_name(folder, engine, created)
    with _os_errors(f"saving backup {final.name}", folder=folder):
        os.chmod(tmp, 0o600)
        _fsync_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(folder)
    return final


def _local(path: Path) -> Backup | None:
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
    found = [b for p in entries if (b := _local(p)) is not None]
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
        with _os_errors(f"removing old backup {b.name}"):
            b.path.unlink(missing_ok=True)
        removed.append(b.path)
    return removed


def create_backup(
    db_uri: str,
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
    engine = engine_of(db_uri)
    backups_dir = Path(backups_dir).absolute()
    created = _utc(now)
    if dry_run:
        size = 0
        if engine == "sqlite":
            db = sqlite_path(db_uri)
            # no file yet: a dry run of a first `today`, whose real run will have made it by now
            size = db.stat().st_size if db.is_file() else 0
        elif shutil.which("mongodump") is None:
            raise BackupError("mongodump is not installed (install MongoDB Database Tools and put mongodump on PATH)")
        name = _free_name(backups_dir, engine, created)
        planned = Backup(backups_dir / name, name, size, created, engine, "local")
        return planned, (s3.key(name) if s3 is not None else None)

    _make_dir(backups_dir)
    backup_leftovers(backups_dir)  # a killed run's temporary copies: patron data
    tmp = _archive(db_uri, engine, backups_dir, strict=True)
    try:
        final = _place(tmp, backups_dir, engine, created)
    finally:
        _remove(tmp)  # nothing left once renamed; the temporary file if the rename failed
    backup = _local(final)
    assert backup is not None  # we just named it
    log.debug("backup written: %s (%d bytes)", final, backup.size)
    prune_backups(backups_dir, keep, protect=final)

    key = None
    if s3 is not None:
        from bursar.s3 import upload_verified

        try:
            key = upload_verified(s3, final, final.name)
        except BackupError as e:
            raise BackupError(f"{e}; the local backup is at {final}", backup=backup) from None
    return backup, key


# ---- listing and choosing -----------------------------------------------------------------


def list_backups(backups_dir: Path, *, s3: S3Target | None = None) -> list[Backup]:
    """Backups, newest first: the local ones; when the local folder has none and S3 is
    configured, the ones in S3 (so a lost server can be restored from the off-site copy).
    Safety copies (SAFETY_DIR) are never listed."""
    backups_dir = Path(backups_dir).absolute()
    local = _local_backups(backups_dir)
    if local or s3 is None:
        return local
    from bursar.s3 import list_objects

    remote: list[Backup] = []
    for key, size, _modified in list_objects(s3):
        name = key.rsplit("/", 1)[-1]
        parsed = parse_name(name)
        if parsed is None:
            continue
        engine, created, _ = parsed
        remote.append(Backup(backups_dir / name, name, size, created, engine, "s3", key=key))
    return sorted(remote, key=_sort_key, reverse=True)


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


# ---- validating and restoring -------------------------------------------------------------


def validate_backup(path: Path, engine: str) -> None:
    """Check an archive completely without touching the store.

    SQLite: decompress it fully (CRC checked) to a temporary file beside it, open that,
    PRAGMA integrity_check, and every table of the schema present.  MongoDB: decompress to
    the end and check mongodump's archive header.  BackupError on anything wrong.
    """
    path = Path(path)
    if engine not in _EXT:
        raise BackupError(f"unknown backup engine {engine!r}")
    if not path.is_file():
        raise BackupError(f"backup {path} does not exist")
    if engine == "mongodb":
        _check_mongo_archive(path, path.name)
        return
    try:
        plain = _tmp_file(path.parent, ".sqlite3")
    except OSError:  # a read-only backups folder: check it in the system temp folder
        with _os_errors("preparing to validate a backup"):
            plain = _tmp_file(Path(tempfile.gettempdir()), ".sqlite3")
    try:
        _gunzip_into(path, plain)
        _check_sqlite_file(plain, path.name)
    finally:
        _remove(plain)


def restore_backup(
    db_uri: str,
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
    engine = engine_of(db_uri)
    if backup.engine != engine:
        raise BackupError(f"backup {backup.name} is a {backup.engine} backup but BURSAR_DB_URI names a {engine} store")
    backups_dir = Path(backups_dir).absolute()
    folders = [backups_dir, backups_dir / SAFETY_DIR]
    if engine == "sqlite":
        folders.append(sqlite_path(db_uri).parent)
    backup_leftovers(*folders)  # a killed restore's staged copies: patron data
    fetched: Path | None = None
    try:
        archive = backup.path
        if backup.location == "s3":
            if s3 is None or not backup.key:
                raise BackupError(f"backup {backup.name} is in S3 but S3 is not configured (S3_BUCKET)")
            from bursar.s3 import download

            _make_dir(backups_dir)
            with _os_errors("preparing the S3 download"):
                fetched = _tmp_file(backups_dir, "." + _EXT[engine])
            download(s3, backup.key, fetched)
            archive = fetched
        elif not archive.is_file():
            raise BackupError(f"backup {backup.name} is not at {archive}")
        if engine == "sqlite":
            return _restore_sqlite(sqlite_path(db_uri), archive, backup.name, backups_dir, now)
        return _restore_mongo(db_uri, archive, backup.name, backups_dir, now)
    finally:
        _remove(fetched)


def _safety_backup(db_uri: str, engine: str, backups_dir: Path, now: datetime) -> Backup:
    folder = backups_dir / SAFETY_DIR
    _make_dir(folder)
    tmp = _archive(db_uri, engine, folder, strict=False)
    try:
        final = _place(tmp, folder, engine, _utc(now))
    finally:
        _remove(tmp)
    prune_backups(folder, SAFETY_KEEP, protect=final)
    saved = _local(final)
    assert saved is not None
    return saved


def _restore_sqlite(db: Path, archive: Path, label: str, backups_dir: Path, now: datetime) -> Backup | None:
    """Decompress beside the db, check it, save the current db aside, then one rename."""
    with _os_errors(f"preparing to restore {db}"):
        db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staged = _tmp_file(db.parent, ".restore")
    try:
        _gunzip_into(archive, staged)
        _check_sqlite_file(staged, label)
        safety = None
        if db.exists():
            safety = _safety_backup(f"sqlite:///{db}", "sqlite", backups_dir, now)
        with _os_errors(f"restoring {db}"):
            os.chmod(staged, 0o600)
            _fsync_file(staged)
            if db.exists():
                _quiesce_sqlite(db)
            os.replace(staged, db)
            # stale companions of the old file must not be applied to the new one
            _remove_sidecars(db)
            _fsync_dir(db.parent)
        log.debug("restored %s from %s", db, label)
        return safety
    finally:
        _remove(staged)


def _restore_mongo(uri: str, archive: Path, label: str, backups_dir: Path, now: datetime) -> Backup:
    _check_mongo_archive(archive, label)
    safety = _safety_backup(uri, "mongodb", backups_dir, now)
    database = _mongo_database(uri)
    stderr = _run_tool(
        "mongorestore",
        [f"--archive={archive}", "--gzip", "--drop", f"--nsInclude={database}.*"],
        uri,
    )
    m = re.search(r"(\d+) document\(s\) failed to restore", stderr)
    if m and int(m.group(1)) > 0:
        raise BackupError(
            f"mongorestore could not restore {m.group(1)} document(s) from {label}; "
            f"the state before the restore is in {safety.path}"
        )
    return safety
