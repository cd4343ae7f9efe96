"""A payment row is paid only when it is complete and names the right patron.

A row that parsed is not trusted for that alone: a partial upload cuts the last row inside a
value ("48.51" arrives as "48"), a file may still be growing while we read it, and a Reference
Number may name another patron's fine.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from .test_direction1 import run_day
from .test_direction2 import PREFIX, csv, open_fines, pays, row


@pytest.fixture
def paid_day(sandbox):
    """Day 1 of Direction 1 done; five open fines A-E."""
    run_day(sandbox, 0)
    return open_fines(sandbox, 5)

NOW = "2026-03-03T18:00:00"  # sandbox.run sets BURSAR_NOW to 18:00 local time on the day


def recent_mtime(sandbox) -> float:
    """An mtime a few minutes before the run's clock (BURSAR_TIMEZONE is America/Phoenix, UTC-7)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(NOW).replace(tzinfo=ZoneInfo("America/Phoenix")).timestamp() - 5 * 60


def test_a_file_cut_inside_its_last_row_is_not_used_until_it_is_whole(sandbox, paid_day):
    a, b, *_ = paid_day
    day = sandbox.worlds[1].day
    amount = b["balance"] - Decimal("0.49")  # e.g. "48.51": it arrives as "48", no final line end
    whole = csv([row(a, "1.00"), row(b, amount)])
    cut = whole[: whole.rindex(str(amount).encode()) + len(str(amount)) - 3]
    assert not cut.endswith(b"\n") and cut.endswith(str(int(amount)).encode())
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", cut, mtime=recent_mtime(sandbox))
    first = sandbox.run("importAlmaPayments", day=day)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "no line end" in first.stdout and "no row of it was used" in first.stdout
    assert pays(sandbox) == []
    # the Bursar finishes the upload: the whole file is used, the last row with its real amount
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", whole, mtime=recent_mtime(sandbox) + 60)
    second = sandbox.run("importAlmaPayments", day=day)
    assert second.returncode == 0, second.stdout + second.stderr
    assert sorted(pays(sandbox)) == sorted([(a["ref"], Decimal("1.00")), (b["ref"], amount)])


def test_a_file_without_a_final_line_end_is_taken_once_it_has_settled(sandbox, paid_day):
    a, b, *_ = paid_day
    day = sandbox.worlds[1].day
    data = csv([row(a, "1.00"), row(b, "2.00")]).rstrip(b"\r\n")  # complete rows, no final line end
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", data, mtime=recent_mtime(sandbox) - 2 * 3600)
    result = sandbox.run("importAlmaPayments", day=day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "has not changed for 60 minutes" in result.stdout
    assert sorted(pays(sandbox)) == sorted([(a["ref"], Decimal("1.00")), (b["ref"], Decimal("2.00"))])


def test_a_settled_file_cut_inside_a_value_still_never_pays_the_cut_row(sandbox, paid_day):
    a, b, *_ = paid_day
    amount = b["balance"] - Decimal("0.49")
    whole = csv([row(a, "1.00"), row(b, amount)])
    cut = whole[: whole.rindex(str(amount).encode()) + len(str(amount)) - 3]
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", cut, mtime=recent_mtime(sandbox) - 2 * 3600)
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "line 3: too few fields" in result.stdout
    assert pays(sandbox) == [(a["ref"], Decimal("1.00"))]


def test_a_file_that_grows_while_it_is_read_is_taken_whole_next_run(sandbox, paid_day):
    a, b, *_ = paid_day
    day = sandbox.worlds[1].day
    first_part = csv([row(a, "1.00")])
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", first_part, mtime=recent_mtime(sandbox))
    sandbox.sftp.append_on_read[f"{PREFIX}_1.csv"] = (row(b, "2.00") + "\r\n").encode()
    time.sleep(1.1)  # the append moves the mtime by at least a second
    result = sandbox.run("importAlmaPayments", day=day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed on the server while it was read" in result.stdout
    assert pays(sandbox) == []
    again = sandbox.run("importAlmaPayments", day=day)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(pays(sandbox)) == sorted([(a["ref"], Decimal("1.00")), (b["ref"], Decimal("2.00"))])


def test_a_row_naming_another_patrons_fine_is_never_paid(sandbox, paid_day):
    a, b, *_ = paid_day
    assert a["emplid"] != b["emplid"]
    stolen = {**a, "emplid": b["emplid"]}  # b's Emplid with a's Reference Number
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(stolen, "1.00"), row(b, "2.00")]))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Emplid mismatch" in result.stdout and f"{PREFIX}_1.csv line 2" in result.stdout
    assert b["emplid"] not in result.stdout  # Emplids stay out of the summary
    assert pays(sandbox) == [(b["ref"], Decimal("2.00"))]
    again = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert pays(sandbox) == [(b["ref"], Decimal("2.00"))], again.stdout


def test_a_charge_amount_other_than_what_was_billed_is_paid_and_reported(sandbox, paid_day):
    a, *_ = paid_day
    wrong_charge = a["charge"] + Decimal("1.00")
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00", charge=wrong_charge)]))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"charge amount {wrong_charge}" in result.stdout and "the payment is applied" in result.stdout
    assert pays(sandbox) == [(a["ref"], Decimal("1.00"))]


def test_payments_the_original_applied_before_the_switch_over_are_not_paid_again(sandbox, paid_day):
    """The original sent no external id, so Alma cannot tell; its own burs_imports record can."""
    from datetime import datetime

    from bursar.store import open_store

    a, b, *_ = paid_day
    # the original paid 1.00 of a's fee on an earlier run: in Alma, and in its burs_imports record
    fee = sandbox.alma.fees[(a["emplid"], a["ref"])]
    fee["balance"] -= Decimal("1.00")
    fee["transactions"].append({"transaction_id": "original-1", "type": {"value": "PAYMENT"},
                                "amount": Decimal("1.00"), "external_transaction_id": None,
                                "comment": "Paid to bursar on 03/03/2026, imported into Alma via alma-bursar-sync"})
    store = open_store(sandbox.env["BURSAR_DB_URI"])
    try:
        store.insert("burs_imports", {"created": datetime(2026, 3, 3), "updated": datetime(2026, 3, 3), "results": {
            "succesful_alma_transfers": [{  # pandas made the Emplid a number: its leading zeros are gone
                "bursarTransactionId": a["ref"], "almaFineId": a["ref"], "userID": int(a["emplid"]),
                "paidSum": "1.00", "chargeSum": f"{a['charge']:.2f}", "datePaid": "03/03/2026"}],
            "already_transferred_to_alma": [], "failed_alma_transfers": [], "unexpected_errors": [],
            "zero_charge_transfers": [], "zero_payment_transfers": []}})
    finally:
        store.close()
    # the cumulative file still has that row, a genuine second payment of the same amount, and b's
    rows = [row(a, "1.00"), row(a, "1.00"), row(b, "2.00")]
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv(rows))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "applied by the original pyBursar (not paid again)" in result.stdout
    assert sorted(pays(sandbox)) == sorted([(a["ref"], Decimal("1.00")), (b["ref"], Decimal("2.00"))])
