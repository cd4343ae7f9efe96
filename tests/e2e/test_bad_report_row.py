"""No fine lost to one bad answer (issue 10 item 4), through abs.py against the sandbox.

Day 1's fines report gives one debit fine with a negative Original Amount (and, in a second
variant, an unparseable one).  The row is flagged (exit 3, the fine named) and not merged; ten
days later, beyond the 7-day overlap window, the report gives the good row and the fine is
merged and billed as if the bad answer had never come: the flagged fine's date pulls the
window back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from bursar.rules import columns as C
from bursar.sandbox.generator import SANDBOX_REPORTS
from bursar.store import open_store


def _ledger_fine(sandbox, fine_id: str) -> tuple[dict | None, list[dict]]:
    store = open_store(sandbox.env["BURSAR_DB_URI"])
    try:
        fine = store.find_one("fines", {"rootAlmaFineId": fine_id})
        lines = list(store.find("trans_burs", {"fine": fine["id"]})) if fine else []
        return fine, lines
    finally:
        store.close()


def _old_open_debit(world) -> dict:
    """An open debit fine of day 1 whose Status Date lies beyond the overlap from day 1 + 10."""
    limit = world.day - timedelta(days=8)
    for row in world.fines:
        status = datetime.fromisoformat(row[C.STATUS_DATE].replace(" ", "T"))
        if (row[C.FINE_TYPE] != "Credit" and row[C.FINE_STATUS] != "Closed" and status.date() < limit
                and Decimal(row[C.ORIGINAL_AMOUNT]) > 0):
            return row
    pytest.skip("the sandbox day has no old open debit fine")


@pytest.mark.parametrize("bad", ["-{amount}", "{amount}x"], ids=["negative", "unparseable"])
def test_a_bad_row_is_flagged_then_the_good_row_is_merged_and_billed(sandbox, bad):
    world = sandbox.worlds[0]
    good = _old_open_debit(world)
    fine_id, amount = good[C.FINE_ID], good[C.ORIGINAL_AMOUNT]
    rows = [dict(r, **{C.ORIGINAL_AMOUNT: bad.format(amount=amount)}) if r is good else r for r in world.fines]
    sandbox.install(0)
    sandbox.alma.set_report(SANDBOX_REPORTS.fines, list(C.FINES_COLUMNS), rows)

    first = sandbox.run("importAlmaFines", day=world.day)
    assert first.returncode == 3, first.stdout + first.stderr
    assert f"fine {fine_id}" in first.stdout and "read again" in first.stdout
    assert "Traceback" not in first.stderr
    assert _ledger_fine(sandbox, fine_id)[0] is None  # never merged as it came
    assert sandbox.run("exportBurs", day=world.day).returncode in (0, 3)

    later = world.day + timedelta(days=10)
    again = sandbox.run("importAlmaFines", day=later)  # still the bad row: still flagged
    assert again.returncode == 3 and f"fine {fine_id}" in again.stdout, again.stdout

    sandbox.install(0)  # Alma answers with the good row now
    fixed = sandbox.run("importAlmaFines", day=later + timedelta(days=1))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"fine {fine_id}: a usable row came" in fixed.stdout
    fine, _ = _ledger_fine(sandbox, fine_id)
    assert fine is not None and fine["origAmtAlma"] == Decimal(amount)
    export = sandbox.run("exportBurs", day=later + timedelta(days=1))
    assert export.returncode == 0, export.stdout + export.stderr
    _, lines = _ledger_fine(sandbox, fine_id)
    assert sum(line["amt"] for line in lines) == Decimal(good[C.REMAINING_AMOUNT] or amount)
    # once good, it is no longer re-read: the next import asks only for the overlap window
    after = sandbox.run("importAlmaFines", day=later + timedelta(days=2))
    assert after.returncode == 0 and f"fine {fine_id}" not in after.stdout
    assert f"since {(later + timedelta(days=1) - timedelta(days=7)):%Y-%m-%d}" in after.stdout, after.stdout
