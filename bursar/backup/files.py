"""The file handling both engines' backups share: hidden temporary files beside the final name,
gzip in and out, and OSError turned into a one-line BackupError naming the folder's setting.

Temporary files are named `.pybursar-tmp-<8 random><suffix>` (mode 0600, patron data), the
names bursar.runtime.leftovers removes when a killed run left them.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bursar.backup.catalogue import SAFETY_DIR
from bursar.errors import BackupError
from bursar.runtime import fs
from bursar.store import one_line

TMP_PREFIX = ".pybursar-tmp-"
CHUNK = 1 << 20
# gzip level 1, not gzip's default 9: on a SQLite file of 100,000 fines (80 MB) level 9 took 23x
# as long for an archive 11% smaller, and the backup ends every `today` (bench/daily.py).
GZIP_LEVEL = 1
_FULL = (errno.ENOSPC, errno.EDQUOT)


def tmp_file(folder: Path, suffix: str) -> Path:
    """A new empty hidden file, mode 0600, in `folder` (same file system as the final name)."""
    return fs.temp_file(folder, prefix=TMP_PREFIX, suffix=suffix)


def remove(*paths: Path | None) -> None:
    """Remove temporary files (and any SQLite companions beside them); never raises."""
    for p in paths:
        if p is not None:
            for extra in ("", "-wal", "-shm", "-journal"):
                try:
                    Path(str(p) + extra).unlink(missing_ok=True)
                except OSError:
                    pass


def remove_sidecars(path: Path) -> None:
    for extra in ("-wal", "-shm", "-journal"):
        Path(str(path) + extra).unlink(missing_ok=True)


def setting_of(folder: Path) -> str:
    """The setting a backups folder comes from, for messages."""
    return f"BACKUPS_DIR/{SAFETY_DIR}" if folder.name == SAFETY_DIR else "BACKUPS_DIR"


def make_dir(folder: Path) -> None:
    fs.ensure_dir(folder, setting_of(folder), error=BackupError)


def folder_full(folder: Path) -> BackupError:
    """The backups folder's disk is full: name the folder (not the database being read)."""
    return BackupError(fs.describe(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), setting_of(folder), folder)
                       + "; the store was not changed")


@contextmanager
def os_errors(what: str, *, folder: Path | None = None) -> Iterator[None]:
    """OSError -> BackupError naming what we were doing.  With `folder` (the backups folder
    being written), a full disk or an unusable folder names that folder and its setting."""
    try:
        yield
    except OSError as e:
        if folder is not None and e.errno in _FULL:
            raise folder_full(folder) from None
        if folder is not None and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) \
                and (e.filename is None or Path(e.filename).parent == folder):
            raise BackupError(fs.describe(e, setting_of(folder), folder)) from None
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        raise BackupError(f"{what} failed: {e.strerror or e}{where}") from None


def gzip_into(src: Path, dest: Path, *, consume: bool = False) -> None:
    """Compress `src` into the (existing, 0600) file `dest` and fsync it.  consume=True
    removes `src`'s name as soon as it is open, so a kill during the compression leaves one
    temporary file (`dest`), never a second full copy of the database beside it."""
    with dest.open("wb") as raw, src.open("rb") as f:
        if consume:
            remove(src)
        # filename="" and mtime=0: the gzip header carries no temporary name or clock
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz:
            shutil.copyfileobj(f, gz, CHUNK)
        raw.flush()
        os.fsync(raw.fileno())


def gunzip_into(archive: Path, dest: Path) -> None:
    """Decompress the whole archive into `dest`.  gzip checks the CRC-32 and length trailer,
    so a truncated or damaged archive fails here."""
    try:
        with gzip.open(archive, "rb") as gz, dest.open("wb") as out:
            shutil.copyfileobj(gz, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise BackupError(f"backup {archive.name} is damaged or truncated ({one_line(e)})") from None
    except OSError as e:
        raise BackupError(f"cannot read backup {archive.name}: {e.strerror or e}") from None
