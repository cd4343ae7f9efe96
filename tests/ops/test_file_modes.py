"""Files that hold patron data or secrets are private: the log (0600, rotated files too) and the
import's staging folder (0700, files 0600), which a killed run never leaves behind for long.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bursar.jobs.import_fines import STAGING_PREFIX, remove_staging_leftovers
from bursar.runtime import logs
from bursar.sandbox.generator import generate_days
from bursar.store import open_store
from tests.e2e.conftest import ABS, make_sandbox

UMASK = 0o022  # the usual umask: without care, files come out 0644


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def box(tmp_path):
    with make_sandbox(tmp_path / "sandbox", generate_days(days=2)) as sandbox:
        yield sandbox


@pytest.fixture
def usual_umask():
    old = os.umask(UMASK)
    yield
    os.umask(old)


# ---- logs ----------------------------------------------------------------------------------


def test_the_log_is_0600_in_an_existing_0755_log_dir(box, usual_umask):
    log_dir = box.work / "logs"
    log_dir.mkdir(mode=0o755)
    log_dir.chmod(0o755)
    old_rotated = log_dir / "bursar.log.2024-01-01"  # left 0644 by an earlier version
    old_rotated.write_text("2024-01-01T06:30:00 -- INFO -- emplid 1234567890\n")
    old_rotated.chmod(0o644)
    box.env["LOG_DIR"] = str(log_dir)
    box.install(0)
    result = box.run("importAlmaFines", "--dry-run", day=box.worlds[0].day)
    assert result.returncode in (0, 3), result.stderr
    log_file = log_dir / "bursar.log"
    assert log_file.read_text()  # it was written to
    assert mode(log_file) == 0o600
    assert mode(old_rotated) == 0o600
    assert mode(log_dir) == 0o755  # the site's folder is left as it is


def test_an_existing_0644_log_is_tightened_when_opened(box, usual_umask):
    log_dir = box.work / "logs"
    log_dir.mkdir()
    existing = log_dir / "bursar.log"
    existing.write_text("from an earlier version\n")
    existing.chmod(0o644)
    box.env["LOG_DIR"] = str(log_dir)
    open_store(box.env["BURSAR_DB_URI"]).close()  # printLastExport needs a store to get that far
    result = box.run("printLastExport", day=box.worlds[0].day)
    assert "Traceback" not in result.stderr
    assert mode(existing) == 0o600 and existing.read_text().startswith("from an earlier version\n")


def test_rotation_keeps_every_log_file_0600(tmp_path, usual_umask):
    folder = tmp_path / "logs"
    folder.mkdir()
    handler = logs.PrivateRotatingFileHandler(folder / "bursar.log", when="midnight", backupCount=3,
                                              encoding="utf-8")
    try:
        handler.emit(logging.LogRecord("bursar", logging.INFO, __file__, 1, "before", None, None))
        handler.doRollover()
        handler.emit(logging.LogRecord("bursar", logging.INFO, __file__, 1, "after", None, None))
        handler.flush()
    finally:
        handler.close()
    files = sorted(folder.iterdir())
    assert len(files) == 2 and files[0].name == "bursar.log" and files[1].name.startswith("bursar.log.")
    assert [mode(p) for p in files] == [0o600, 0o600]
    assert files[0].read_text() == "after\n" and files[1].read_text() == "before\n"


# ---- import staging ------------------------------------------------------------------------


def staging_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(STAGING_PREFIX)) if folder.exists() else []


def test_staged_reports_are_private_and_a_killed_runs_leftovers_are_removed_next_time(box, usual_umask):
    """BURSAR_CRASH_AT=import.after_stage ends the process like SIGKILL right after staging, so
    the staged files are left exactly as a killed run leaves them."""
    staging = box.work / "data" / "staging"
    box.install(0)
    env = {**os.environ, **box.env, "BURSAR_NOW": f"{box.worlds[0].day}T18:00:00",
           "BURSAR_CRASH_AT": "import.after_stage"}
    proc = subprocess.Popen([sys.executable, str(ABS), "importAlmaFines"], cwd=box.work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.communicate(timeout=120)
    assert proc.returncode == 137
    (left,) = staging_dirs(staging)
    assert left.name.startswith(f"{STAGING_PREFIX}{proc.pid}-")
    assert mode(staging) == 0o700 and mode(left) == 0o700
    staged = sorted(left.iterdir())
    assert [p.name for p in staged] == ["balances.jsonl", "fines.jsonl", "trans.jsonl"]
    assert all(mode(p) == 0o600 for p in staged)
    assert not list(Path(tempfile.gettempdir()).glob(f"{STAGING_PREFIX}{proc.pid}-*"))  # nothing in /tmp
    assert box.ledger()["fines"] == []  # all or nothing

    # beside it: things that are not ours, or not dead, and must survive the cleanup
    alive = staging / f"{STAGING_PREFIX}{os.getpid()}-running"  # this test process is alive
    alive.mkdir()
    (alive / "fines.jsonl").write_text("{}\n")
    foreign = staging / "someone-elses-folder"
    foreign.mkdir()
    (foreign / "fines.jsonl").write_text("{}\n")
    (staging / "notes.txt").write_text("not ours\n")
    with_extra = staging / f"{STAGING_PREFIX}999999999-xyz"  # ours and dead, but holds a file not ours
    with_extra.mkdir()
    (with_extra / "fines.jsonl").write_text("{}\n")
    (with_extra / "keep.me").write_text("not ours\n")

    result = box.run("importAlmaFines", day=box.worlds[0].day)
    assert result.returncode in (0, 3), result.stderr
    assert box.ledger()["fines"]
    assert not left.exists()  # the killed run's leftovers are gone
    assert sorted(p.name for p in staging.iterdir()) == sorted(
        [alive.name, foreign.name, "notes.txt", with_extra.name])
    assert (alive / "fines.jsonl").exists() and (foreign / "fines.jsonl").exists()
    assert [p.name for p in with_extra.iterdir()] == ["keep.me"]  # only our file names are removed


def test_a_finished_or_stopped_import_leaves_no_staging_behind(box):
    staging = box.work / "data" / "staging"
    box.install(0)
    assert box.run("importAlmaFines", day=box.worlds[0].day).returncode in (0, 3)
    assert staging_dirs(staging) == []
    box.alma.add_fault("error", path_contains="analytics", status=500, times=100)
    result = box.run("importAlmaFines", "--full", day=box.worlds[1].day)
    assert result.returncode == 1, result.stderr
    assert staging_dirs(staging) == []


def test_a_dry_run_does_not_create_the_staging_folder(box):
    box.env["STAGING_DIR"] = str(box.work / "private-staging")
    box.install(0)
    result = box.run("importAlmaFines", "--dry-run", day=box.worlds[0].day)
    assert result.returncode in (0, 3), result.stderr
    assert not (box.work / "private-staging").exists()


def test_leftover_cleanup_skips_symlinks_and_other_accounts_files(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "fines.jsonl").write_text("{}\n")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / f"{STAGING_PREFIX}999999998-link").symlink_to(target)
    assert remove_staging_leftovers(staging) == []
    assert (target / "fines.jsonl").exists()


def test_a_run_sigkilled_mid_fetch_is_cleaned_up_by_the_next_import(box):
    """A run killed with SIGKILL mid-fetch leaves its folder; the next import removes it."""
    staging = box.work / "data" / "staging"
    box.install(0)
    box.alma.latency = 0.5
    env = {**os.environ, **box.env, "BURSAR_NOW": f"{box.worlds[0].day}T18:00:00"}
    proc = subprocess.Popen([sys.executable, str(ABS), "importAlmaFines"], cwd=box.work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: any(d.iterdir() for d in staging_dirs(staging)), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(staging_dirs(staging)) == 1
    box.alma.latency = 0.0
    assert box.run("importAlmaFines", day=box.worlds[0].day).returncode in (0, 3)
    assert staging_dirs(staging) == []


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before the condition held")
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.02)
    pytest.fail("timed out waiting")
