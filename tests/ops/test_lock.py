"""The one-run-at-a-time lock, exercised with real processes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bursar.errors import EXIT_FAILED, BursarError
from bursar.runtime.lock import LockBusy, run_lock

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2021, 9, 20, 14, 3, 11, tzinfo=ZoneInfo("America/Phoenix"))

HOLDER = """
import sys
from datetime import datetime
from pathlib import Path
from bursar.runtime.lock import run_lock
with run_lock(Path(sys.argv[1]), command="today", now=datetime.fromisoformat("2021-09-20T06:00:00-07:00")):
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes stdin or kills us
"""


@pytest.fixture
def holder(tmp_path) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A separate process that holds the lock until stdin closes; killed in teardown."""
    path = tmp_path / "run" / "bursar.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


def test_a_second_run_is_refused_naming_the_holder(holder):
    proc, path = holder
    started = time.monotonic()
    with pytest.raises(LockBusy) as caught:
        with run_lock(path, command="payFines", now=NOW):
            pytest.fail("the lock was taken twice")
    assert time.monotonic() - started < 1  # refused at once, no waiting
    message = str(caught.value)
    assert message == (f"another pyBursar run (today, pid {proc.pid}, started 2021-09-20T06:00:00-07:00) "
                       f"holds the lock {path}; try again when it has finished")
    assert caught.value.exit_code == EXIT_FAILED and isinstance(caught.value, BursarError)
    assert proc.poll() is None  # the holder is untouched


def test_a_killed_holder_never_blocks_the_next_run(holder):
    proc, path = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert path.read_text().split()[0] == str(proc.pid)  # its stale content is still there
    with run_lock(path, command="payFines", now=NOW):
        assert path.read_text() == f"{os.getpid()} payFines 2021-09-20T14:03:11-07:00\n"


def test_a_finished_holder_releases_and_the_file_stays(holder):
    proc, path = holder
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(10) == 0
    assert path.exists()
    with run_lock(path, command="today", now=NOW):
        pass


def test_lock_file_is_0600_in_a_created_parent(tmp_path):
    path = tmp_path / "deep" / "er" / "bursar.lock"
    with run_lock(path, command="today", now=NOW):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.exists()  # not deleted on release


def test_a_wider_existing_file_is_narrowed_and_stale_content_overwritten(tmp_path):
    path = tmp_path / "bursar.lock"
    path.write_text("99999999 importAlmaFines 2020-01-01T00:00:00-07:00 with a long stale tail\n")
    path.chmod(0o644)
    with run_lock(path, command="today", now=NOW):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == f"{os.getpid()} today 2021-09-20T14:03:11-07:00\n"


def test_a_second_attempt_in_the_same_process_is_refused_and_release_follows_errors(tmp_path):
    path = tmp_path / "bursar.lock"
    with pytest.raises(RuntimeError):
        with run_lock(path, command="today", now=NOW):
            with pytest.raises(LockBusy, match=f"pid {os.getpid()},"):
                with run_lock(path, command="today", now=NOW):
                    pass
            raise RuntimeError("the body failed")
    with run_lock(path, command="today", now=NOW):  # released despite the error
        pass


def test_an_unopenable_lock_path_is_a_bursar_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BursarError, match="cannot open the lock file"):
        with run_lock(blocker / "bursar.lock", command="today", now=NOW):
            pass
