"""MongoDB backups: mongodump and mongorestore, run on the configured target.

- The tools are given the configured URI (the original dumped whatever ran on localhost), and
  their exit status is checked.  The URI is never put in a message unredacted, nor on the
  tools' command line or in their environment: it goes in a 0600 `--config` file in a private
  temporary folder that is removed as soon as the tool has finished.
- A restore names the target's database (`--nsInclude=<database>.*`): the name parse_db_uri
  validated, never a default chosen here.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bursar.backup import files
from bursar.errors import BackupError
from bursar.runtime import fs
from bursar.settings import SETTINGS
from bursar.store import DbTarget, one_line

TOOL_TIMEOUT = 4 * 3600  # seconds a mongodump/mongorestore may run before we give up
_ARCHIVE_MAGIC = bytes.fromhex("6de29981")  # mongodump archive: uint32 0x8199e26d, little-endian


@contextmanager
def _uri_config(uri: str) -> Iterator[Path]:
    """A YAML file holding only `uri: ...`, for the tools' `--config` (MongoDB Database Tools
    100.x): the URI, and so the password, never goes on a command line, where `ps` shows it to
    every local user.  Mode 0600 in a private 0700 temporary folder, removed afterwards (on error
    too).  The URI has no control character (parse_db_uri refuses one), so it cannot end the
    single-quoted YAML scalar early."""
    with files.os_errors("preparing the MongoDB tools' configuration file"):
        folder = Path(tempfile.mkdtemp(prefix="pybursar-mongo-"))
    try:
        path = folder / "config.yaml"
        with files.os_errors("writing the MongoDB tools' configuration file"):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), fs.FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("uri: '" + uri.replace("'", "''") + "'\n")  # a single-quoted YAML scalar
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tool_environment(secrets: list[str]) -> dict[str, str]:
    """The environment for mongodump/mongorestore: ours without our settings (BURSAR_DB_URI may
    be set there) and without any variable that holds the password."""
    ours = {s.name for s in SETTINGS} | {"BURSAR_ENV_FILE"}
    return {k: v for k, v in os.environ.items() if k not in ours and not any(s in v for s in secrets)}


def _run_tool(tool: str, args: list[str], target: DbTarget) -> str:
    """Run mongodump/mongorestore (an argument list: no shell) with the URI in a `--config`
    file.  Returns its stderr; a missing tool, a timeout or a non-zero exit status is a
    BackupError with the (redacted) last line."""
    secrets = target.secrets()

    def scrub(text: str) -> str:
        for s in secrets:
            text = text.replace(s, "***")
        return one_line(text)

    try:
        with _uri_config(target.uri) as config:
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
        raise BackupError(f"{tool} did not finish within {TOOL_TIMEOUT // 60} minutes ({target.location})") from None
    except OSError as e:
        raise BackupError(f"cannot run {tool}: {e.strerror or e}") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
        last = scrub(lines[-1]) if lines else "no error output"
        raise BackupError(f"{tool} failed with exit status {proc.returncode} for {target.location}: {last}")
    return proc.stderr or ""


def archive(target: DbTarget, folder: Path) -> Path:
    """A complete mongodump archive (gzip) of the configured database as a temporary file."""
    with files.os_errors(f"preparing a backup in {folder}", folder=folder):
        tmp = files.tmp_file(folder, ".archive.gz")
    try:
        _run_tool("mongodump", [f"--archive={tmp}", "--gzip"], target)
        if tmp.stat().st_size == 0:
            raise BackupError(f"mongodump wrote an empty archive for {target.location}")
        with files.os_errors(f"saving the mongodump archive in {folder}", folder=folder):
            fs.fsync_file(tmp)
    except BaseException:
        files.remove(tmp)
        raise
    return tmp


def check_archive(path: Path, label: str) -> None:
    """The archive decompresses to the end (CRC checked) and starts with mongodump's magic."""
    try:
        with gzip.open(path, "rb") as gz:
            head = gz.read(4)
            while gz.read(files.CHUNK):
                pass
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise BackupError(f"backup {label} is damaged or truncated ({one_line(e)})") from None
    except OSError as e:
        raise BackupError(f"cannot read backup {label}: {e.strerror or e}") from None
    if head != _ARCHIVE_MAGIC:
        raise BackupError(f"backup {label} is not a mongodump archive")


def restore(target: DbTarget, archive_path: Path, label: str, *, safety: Path) -> None:
    """mongorestore the (checked) archive into the target's database, dropping each collection
    first.  `safety` is where the state before the restore was saved, for the message."""
    stderr = _run_tool(
        "mongorestore",
        [f"--archive={archive_path}", "--gzip", "--drop", f"--nsInclude={target.database}.*"],
        target,
    )
    m = re.search(r"(\d+) document\(s\) failed to restore", stderr)
    if m and int(m.group(1)) > 0:
        raise BackupError(
            f"mongorestore could not restore {m.group(1)} document(s) from {label}; "
            f"the state before the restore is in {safety}"
        )
