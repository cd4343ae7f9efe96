"""SIGTERM (a shutdown, `kill`, `systemctl stop`) is handled like Ctrl-C: one clear line, a
non-zero exit, the ledger exactly as it was (the import is all-or-nothing), no staged files left,
the lock released so the next run goes ahead.

The sandbox Alma answers slowly (its `latency`), so the signal lands while the import is still
fetching and staging the reports.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bursar.jobs.import_fines import STAGING_PREFIX
from bursar.sandbox.generator import generate_days
from tests.e2e.conftest import ABS, make_sandbox


@pytest.fixture
def box(tmp_path):
    with make_sandbox(tmp_path / "sandbox", generate_days(days=2)) as sandbox:
        yield sandbox


def start(box, command: str, day) -> subprocess.Popen:
    env = {**os.environ, **box.env, "BURSAR_NOW": f"{day.isoformat()}T18:00:00"}
    return subprocess.Popen([sys.executable, str(ABS), command], cwd=box.work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before it could be stopped")
        if condition():
            return
        time.sleep(0.02)
    pytest.fail("the run never got there")


def staged_files(staging: Path) -> list[Path]:
    if not staging.exists():
        return []
    return [f for d in staging.iterdir() if d.name.startswith(STAGING_PREFIX) for f in d.iterdir()]


@pytest.mark.parametrize("first_day_imported", [False, True], ids=["new-store", "existing-ledger"])
def test_sigterm_during_an_import_stops_cleanly_and_changes_nothing(box, first_day_imported):
    staging = box.work / "data" / "staging"
    if first_day_imported:
        box.install(0)
        assert box.run("importAlmaFines", day=box.worlds[0].day).returncode in (0, 3)
    day = box.worlds[1 if first_day_imported else 0].day
    box.install(1 if first_day_imported else 0)
    before = box.ledger() if first_day_imported else None
    box.alma.latency = 0.4
    box.alma.clear_calls()
    proc = start(box, "importAlmaFines", day)
    try:
        # the first report is staged (a private file) and the next one is on its way
        wait_until(lambda: bool(staged_files(staging)) and len(box.alma.calls) >= 1, proc)
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in staged_files(staging))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: stopped by SIGTERM before it finished; re-run the command to finish "
                      "(every command is safe to re-run)"]
    assert "Traceback" not in err + out
    assert not any(line.startswith(("ERROR", "CRITICAL")) for line in err.splitlines())
    if before is None:
        assert all(rows == [] for rows in box.ledger().values())
    else:
        assert box.ledger() == before
    assert staged_files(staging) == []  # Ctrl-C and SIGTERM clean up like any error
    assert "stopped by SIGTERM" in (box.work / "logs" / "bursar.log").read_text()

    box.alma.latency = 0.0  # the lock was released and the store is consistent: the re-run just works
    result = box.run("importAlmaFines", day=day)
    assert result.returncode in (0, 3), result.stderr
    assert box.ledger()["fines"]
