"""Every side effect a job has on the world outside the store, behind one object.

A job never decides for itself what a dry run means.  It asks `ctx.effects` to write an export
file, archive it, upload it, download a payment file, pay a fee, write a backup or remove a
killed run's leftovers, and uses what comes back.  The CLI chooses the implementation once:

- `Effects` does them;
- `DryRunEffects` does none of them.  It records each as a "would ..." line and returns what the
  real one would have returned: a written file is kept in a private scratch folder (so a later
  step of the same dry run, `sftpToBurs` after `exportBurs`, finds it), a payment returns the fee
  as Alma would after it.  Reading the outside world (listing the Bursar's folder, downloading a
  payment file into scratch, reading Alma) is not a side effect and still happens.

Together with one dry-run view of the store (`OverlayStore`) for a whole chained command, a dry
run runs the very code of a real run, so what it prints is what the real run will do.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bursar.errors import BursarError
from bursar.profile import mark_invisible
from bursar.rules import bursar_file as bf
from bursar.runtime import fs
from bursar.runtime.summary import Summary


def write_file_atomic(path: Path, lines: Iterable[str], *, line_ending: str = "\n",
                      encoding: str = "ascii") -> int:
    """Write an export file's lines (`bf.file_chunks`) to `path` all at once; the bytes written.

    Why: the file is uploaded to the Bursar later; a half-written file must never exist under
    its real name.  `fs.atomic_file` writes it: a temporary file in the same directory, mode
    0600 (fines data is personal), fsynced, renamed over `path` (atomic on POSIX), the directory
    fsynced so the rename survives a crash.  On any error (a bad line too, `bf.BadLine`, found
    as the lines stream in) the temporary file is removed and `path` is untouched."""
    path = Path(path)
    size = 0
    try:
        with fs.atomic_file(path) as fh:
            for chunk in bf.file_chunks(lines, line_ending=line_ending, encoding=encoding, name=path.name):
                fh.write(chunk)
                size += len(chunk)
    except OSError as exc:
        raise BursarError(f"could not write {path}: {exc.strerror or exc}") from exc
    return size


class Effects:
    """The real side effects."""

    dry_run = False

    def summary(self, command: str) -> Summary:
        """A job's summary (a dry run's says so in its first line)."""
        return Summary(command, dry_run=self.dry_run)

    def take_notes(self) -> list[str]:
        """The "would ..." lines recorded since the last call (none for real effects)."""
        return []

    def done(self, summary: Summary, text: str) -> None:
        """Note an effect that was carried out (a dry run already recorded its "would ..." line)."""
        summary.note(text)

    # -- folders and files -------------------------------------------------------------------
    def ensure_dir(self, path: Path, setting: str) -> Path:
        return fs.ensure_dir(path, setting)

    def locate(self, path: Path) -> Path | None:
        """Where a file of ours is to be read: `path` itself when it exists."""
        return path if path.is_file() else None

    def write_export(self, path: Path, lines: Iterable[str], line_ending: str = "\n",
                     encoding: str = "ascii", preview: bool = False) -> int:
        """`lines` may be a stream (read once); `preview` (a profile preview) only changes how a
        dry run shows the lines."""
        return write_file_atomic(path, lines, line_ending=line_ending, encoding=encoding)

    def move(self, source: Path, target: Path) -> None:
        """Move one of our files (an export into its archive, a stale file aside), durably."""
        fs.move(source, target)

    def remove_leftovers(self, find: Callable[..., list[Path]], *args: Any) -> list[Path]:
        """Remove what a killed run left (`find` removes and returns the paths)."""
        return find(*args)

    def staging_root(self, root: Path, fallback: Path) -> Path:
        """Where the import stages its reports: `root`, created when missing."""
        return root

    # -- servers -----------------------------------------------------------------------------
    def upload(self, session: Any, local: Path, name: str) -> int:
        """Upload, rename, verify by content (SftpSession.upload_verified); returns the size."""
        return int(session.upload_verified(local, name))

    def download(self, session: Any, name: str, folder: Path, setting: str) -> Path:
        """Copy a Bursar file into `folder` (the Bursar's copy is never touched)."""
        self.ensure_dir(folder, setting)
        path = folder / name
        session.download(name, path)
        return path

    def pay(self, http: Any, user_id: str, fee_id: str, *, about: str, **pay_args: Any) -> Any:
        """POST op=pay (bursar.clients.alma.fees.pay_fee); `about` says which row, for a dry run."""
        from bursar.clients.alma.fees import pay_fee

        return pay_fee(http, user_id, fee_id, **pay_args)

    def backup(self, settings: Any, now: Any) -> tuple[Any, str | None]:
        """A backup of the whole store (bursar.backup.create_backup): (backup, S3 key)."""
        from bursar.backup import create_backup
        from bursar.clients.s3 import s3_target

        return create_backup(settings.db, settings.backups_dir, now=now, keep=settings.backups_keep,
                             s3=s3_target(settings))

    def restore(self, settings: Any, chosen: Any, now: Any) -> tuple[bool, Any]:
        """Replace the store with a backup (bursar.backup.restore_backup): (restored, safety copy)."""
        from bursar.backup import restore_backup
        from bursar.clients.s3 import s3_target

        return True, restore_backup(settings.db, chosen, settings.backups_dir, now=now, s3=s3_target(settings))

    def close(self) -> None:
        return None


class DryRunEffects(Effects):
    """Records what would be done; changes nothing outside a private scratch folder."""

    dry_run = True

    def __init__(self) -> None:
        self._scratch: Path | None = None
        self._notes: list[str] = []
        self._lock = threading.Lock()  # pays are recorded from worker threads
        self._written: dict[Path, Path] = {}  # the real path a file would have -> its scratch copy
        self._moved: dict[Path, Path] = {}  # real source -> real target

    def _note(self, text: str) -> None:
        with self._lock:
            self._notes.append(text)

    def take_notes(self) -> list[str]:
        with self._lock:
            notes, self._notes = self._notes, []
        return notes

    def done(self, summary: Summary, text: str) -> None:
        return None

    def scratch(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="pybursar-dry-run-"))
        return self._scratch

    def ensure_dir(self, path: Path, setting: str) -> Path:
        return path  # a dry run creates no folder

    def locate(self, path: Path) -> Path | None:
        """A file this dry run would have written or moved is found where the real run would
        have put it (and no longer where it was)."""
        if path in self._written:
            return self._written[path]
        if path in self._moved:
            return None
        for source, target in self._moved.items():
            if target == path:
                return source if source.is_file() else None
        return path if path.is_file() else None

    def write_export(self, path: Path, lines: Iterable[str], line_ending: str = "\n",
                     encoding: str = "ascii", preview: bool = False) -> int:
        shown = list(lines)  # every line is noted below anyway
        copy = self.scratch() / f"{len(self._written)}-{path.name}"
        size = write_file_atomic(copy, shown, line_ending=line_ending, encoding=encoding)
        self._written[path] = copy
        marks = ", spaces as ·, tabs as →, line ends as ↵" if preview else ""
        self._note(f"would write {path} ({len(shown)} lines{marks}):")
        with self._lock:
            if preview:
                self._notes.extend(f"    |{mark_invisible(line, line_ending)}|" for line in shown)
            else:
                self._notes.extend(f"    |{line}|" for line in shown)
        return size

    def move(self, source: Path, target: Path) -> None:
        if source in self._written:
            self._written[target] = self._written.pop(source)
        else:
            self._moved[source] = target
        self._note(f"would move {source} to {target}")

    def remove_leftovers(self, find: Callable[..., list[Path]], *args: Any) -> list[Path]:
        return []  # nothing is removed; what a killed run left stays for the real run

    def staging_root(self, root: Path, fallback: Path) -> Path:
        return root if root.is_dir() else fallback

    def upload(self, session: Any, local: Path, name: str) -> int:
        size = local.stat().st_size
        self._note(f"would upload {name} ({size} bytes) to {session.endpoint.directory}")
        return size

    def download(self, session: Any, name: str, folder: Path, setting: str) -> Path:
        path = self.scratch() / name  # read, to show what would be paid; kept out of PAYMENTS_DIR
        session.download(name, path)
        return path

    def pay(self, http: Any, user_id: str, fee_id: str, *, about: str, **pay_args: Any) -> Any:
        """Records the payment; the payments job uses only the call's outcome (no error)."""
        amount: Decimal = pay_args["amount"]
        self._note(f"would pay {amount} on fee {fee_id} ({about})")
        return None

    def backup(self, settings: Any, now: Any) -> tuple[Any, str | None]:
        from bursar.backup import create_backup
        from bursar.clients.s3 import s3_target

        made, key = create_backup(settings.db, settings.backups_dir, now=now, keep=settings.backups_keep,
                                  s3=s3_target(settings), dry_run=True)
        self._note(f"would write {made.path}" + (f" and copy it to S3 as {key}" if key else ""))
        return made, key

    def restore(self, settings: Any, chosen: Any, now: Any) -> tuple[bool, Any]:
        from bursar.backup import validate_backup

        if chosen.location == "local":
            validate_backup(chosen.path, chosen.engine)
            self._note(f"{chosen.name} is valid: would save the current state, restore it, then roll forward")
        else:
            self._note(f"would fetch {chosen.name} from S3, validate it, save the current state and restore it")
        return False, None

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
