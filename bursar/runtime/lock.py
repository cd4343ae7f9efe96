"""One pyBursar run at a time: an exclusive flock on a lock file.

Why flock: the kernel drops the lock the moment the holding process dies, however it dies
(SIGKILL, OOM, power loss of the process), so a crashed run can never leave a stale lock that
blocks the next cron run.  The file's content ("pid command started-at") is only there to make
the busy message useful; a dead run's leftover content is simply overwritten by the next holder.

The file is never deleted: deleting it on release would race with a process that has opened the
old file and is about to lock it, giving two holders of two different files.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from bursar.errors import BursarError
from bursar.runtime.fs import describe


class LockBusy(BursarError):
    """Another run holds the lock.  Exit 1."""

    def __init__(self, path: Path, pid: str, started: str, command: str | None = None):
        what = f"another pyBursar run ({command}, pid {pid}, started {started})" if command \
            else f"another pyBursar run (pid {pid}, started {started})"
        super().__init__(f"{what} holds the lock {path}; try again when it has finished")
        self.path = path
        self.pid = pid
        self.started = started
        self.command = command


@contextmanager
def run_lock(path: Path, *, command: str, now: datetime) -> Iterator[None]:
    """Hold the run lock for the body of the `with`, or raise LockBusy at once (no waiting:
    cron runs that overlap should not pile up)."""
    path = Path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise BursarError(f"cannot open the lock file: {describe(exc, 'BURSAR_LOCK_FILE', path)}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BursarError(f"cannot lock {path}: {exc.strerror or exc}") from None
            pid, holder, started = _holder(fd)
            raise LockBusy(path, pid, started, holder) from None
        try:
            os.fchmod(fd, 0o600)  # a file left by an older version or by hand may be wider
        except OSError:
            pass  # not ours to change (another owner); the lock still works
        stamp = f"{os.getpid()} {command} {now.isoformat(timespec='seconds')}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, stamp, 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder(path: Path) -> str | None:
    """Who holds the run lock now ("pid 123, today, started ..."), or None when it is free.

    Read-only, and it never takes the lock itself, not even for an instant (a cron run starting
    in that instant would be refused): on Linux the kernel's table of flock locks
    (/proc/locks) is read for the file's inode.  A missing lock file is simply free."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BursarError(f"cannot read the lock file: {describe(exc, 'BURSAR_LOCK_FILE', path)}") from None
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        raise BursarError("cannot tell whether the run lock is held (no /proc/locks on this system)") from None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(info.st_ino):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return f"pid {fields[4]}"
            try:
                pid, command, started = _holder(fd)
            finally:
                os.close(fd)
            return f"pid {fields[4]}, {command or 'unknown command'}, started {started}"
    return None


def _holder(fd: int) -> tuple[str, str | None, str]:
    """The holder's pid, command and start time from the file.  A holder that has just taken
    the lock may not have written yet, so an empty file is re-read a few times before giving up."""
    content = ""
    for _ in range(5):
        content = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if content:
            break
        time.sleep(0.02)
    parts = content.split()
    if len(parts) >= 3 and parts[0].isascii() and parts[0].isdigit():
        return parts[0], " ".join(parts[1:-1]), parts[-1]
    return "unknown", None, "at an unknown time"
