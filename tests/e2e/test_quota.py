"""ALMA_DAILY_RESERVE end to end (issue 9 item 2): a run stops calling Alma before the calls left
today fall below the reserve; an import stopped so merges nothing, payments are never doubled."""

from __future__ import annotations

from .test_direction1 import run_day
from .test_direction2 import PREFIX, csv, open_fines, pays, row


def test_the_summary_shows_calls_made_and_left(sandbox):
    sandbox.alma.api_remaining = 90_000
    world = sandbox.install(0)
    result = sandbox.run("importAlmaFines", day=world.day)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert "Alma API calls: 3 made, 89,997 left today" in result.stdout


def test_the_reserve_reached_during_the_import_merges_nothing(sandbox):
    world = sandbox.install(0)
    sandbox.alma.api_remaining = 5_002  # the default reserve is 5,000: two calls, then stop
    result = sandbox.run("importAlmaFines", day=world.day)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ALMA_DAILY_RESERVE" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert all(not docs for docs in sandbox.ledger().values())
    assert sandbox.alma.api_remaining == 5_000


def test_the_reserve_reached_during_payments_pays_nothing_twice_and_the_next_run_completes(sandbox):
    run_day(sandbox, 0)
    fines = open_fines(sandbox, 5)
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(f, "1.00") for f in fines]))
    day = sandbox.worlds[1].day
    sandbox.alma.api_remaining = 5_004  # a few calls, then the reserve
    stopped = sandbox.run("importAlmaPayments", day=day)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "ALMA_DAILY_RESERVE" in stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stderr
    paid_first = pays(sandbox)
    assert len(paid_first) < 5
    sandbox.alma.api_remaining = 100_000  # a new day
    done = sandbox.run("importAlmaPayments", day=day)
    assert done.returncode == 0, done.stdout + done.stderr
    paid = pays(sandbox)
    assert sorted(fee for fee, _ in paid) == sorted(f["ref"] for f in fines)  # each exactly once
    again = sandbox.run("importAlmaPayments", day=day)
    assert again.returncode == 0 and pays(sandbox) == paid
