"""The three reports fetched in parallel (issue 9 item 4), sharing the one rate limiter; still all
or nothing: nothing is merged until every report is complete."""

from __future__ import annotations

import time

from .test_direction1 import run_day


def test_the_reports_are_fetched_at_the_same_time(sandbox):
    world = sandbox.install(0)
    sandbox.alma.add_fault("slow", page=1, times=3, delay=2.0)  # each report's first page: 2 s
    started = time.monotonic()
    result = sandbox.run("importAlmaFines", day=world.day)
    elapsed = time.monotonic() - started
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert elapsed < 5.5, f"{elapsed:.1f} s: the three 2-second pages were not fetched in parallel"
    assert sandbox.ledger()["fines"]


def test_one_report_failing_merges_nothing_with_the_same_clean_message(sandbox):
    world = sandbox.install(0)
    missing = {"ALMA_REPORT_FINES": "/shared/Example University/Reports/Bursar/No Such Report"}
    sandbox.alma.add_fault("slow", page=1, times=2, delay=0.5)  # the other reports are mid-fetch
    result = sandbox.run("importAlmaFines", day=world.day, extra_env=missing)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "Path not found" in out and "No Such Report" in out
    assert "Traceback" not in out
    assert all(not docs for docs in sandbox.ledger().values())
    staging = sandbox.work / "data" / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    # the next import, with the report back, imports everything
    run_day(sandbox, 0)
    assert sandbox.ledger()["fines"]
