"""Direction 2's Alma calls, counted in the sandbox's call log (issue 9 item 3).

One GET of a patron's ACTIVE fee list serves all of that patron's rows in a run, then one POST
per payment; the CLOSED list is read only for a row whose fee is not in the ACTIVE list; where
the list carries no transactions, each fee is read on its own before its pay.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from bursar.store import open_store

from .test_direction1 import run_day
from .test_direction2 import PREFIX, csv, open_fines, pays, row


@pytest.fixture
def one_patron(sandbox):
    """Day 1 of Direction 1 done, then three open fines moved to one patron (in the sandbox
    Alma and in the ledger alike): that patron owes three fees."""
    run_day(sandbox, 0)
    fines = open_fines(sandbox, 3)
    owner = fines[0]["emplid"]
    store = open_store(sandbox.env["BURSAR_DB_URI"])
    try:
        for f in fines[1:]:
            fee = sandbox.alma.fees.pop((f["emplid"], f["ref"]))
            fee["user_id"] = owner
            sandbox.alma.fees[(owner, f["ref"])] = fee
            for fine in store.find("fines", {"rootAlmaFineId": f["ref"]}):
                store.update("fines", fine["id"], {"almaPatronId": owner})
            f["emplid"] = owner
    finally:
        store.close()
    sandbox.alma.clear_calls()
    return fines


def fee_calls(sandbox) -> list[tuple[str, str]]:
    """(method, what) for every fees-API call: what is "list ACTIVE", "list CLOSED" or "fee"."""
    out = []
    for call in sandbox.alma.calls:
        path = call["path"]
        if "/fees" not in path:
            continue
        if path.endswith("/fees"):
            out.append((call["method"], f"list {call['params'].get('status', 'ACTIVE')}"))
        else:
            out.append((call["method"], "fee"))
    return out


def test_a_patron_with_three_fees_costs_one_get_and_three_posts(sandbox, one_patron):
    a, b, c = one_patron
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00"), row(b, "1.25"), row(c, "1.50")]))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(fee_calls(sandbox)) == [("GET", "list ACTIVE"), ("POST", "fee"), ("POST", "fee"), ("POST", "fee")]
    assert sorted(pays(sandbox)) == sorted([(a["ref"], Decimal("1.00")), (b["ref"], Decimal("1.25")),
                                            (c["ref"], Decimal("1.50"))])
    # every POST carried its row's external id, and the next run looks again without paying
    assert sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day).returncode == 0
    assert len(pays(sandbox)) == 3


def test_a_second_row_on_one_fee_pays_what_the_first_left(sandbox, one_patron):
    a, b, _ = one_patron
    first = a["balance"] - Decimal("1.00")
    rows = [row(a, first), row(a, "5.00", date="03/04/2026"),  # 1.00 left: pays 1.00, 4.00 overpaid
            row(a, "2.00", date="03/05/2026"),                 # the fee is closed now: skipped
            row(b, "1.00")]
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv(rows))
    dry = sandbox.run("importAlmaPayments", "--dry-run", day=sandbox.worlds[1].day)
    assert dry.returncode == 3, dry.stdout + dry.stderr
    assert f"would pay {first} on fee {a['ref']}" in dry.stdout
    assert f"would pay 1.00 on fee {a['ref']}" in dry.stdout and "would pay 5.00" not in dry.stdout
    assert pays(sandbox) == []
    sandbox.alma.clear_calls()
    real = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert real.returncode == 3, real.stdout + real.stderr
    assert sorted(pays(sandbox)) == sorted([(a["ref"], first), (a["ref"], Decimal("1.00")),
                                            (b["ref"], Decimal("1.00"))])
    assert "overpayment" in real.stdout and "closed in Alma" in real.stdout
    # the closed fee was known from the POST's answer: no CLOSED list was needed
    assert sorted(fee_calls(sandbox)) == [("GET", "list ACTIVE")] + [("POST", "fee")] * 3


def test_a_closed_fee_reads_the_closed_list_only_then(sandbox, one_patron):
    a, b, c = one_patron
    sandbox.alma.fees[(a["emplid"], c["ref"])]["status"] = "CLOSED"
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00"), row(b, "1.00"), row(c, "1.00")]))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "closed in Alma" in result.stdout
    assert sorted(fee_calls(sandbox)) == [("GET", "list ACTIVE"), ("GET", "list CLOSED"),
                                          ("POST", "fee"), ("POST", "fee")]


def test_a_list_without_transactions_falls_back_to_one_get_per_fee(sandbox, one_patron):
    a, b, c = one_patron
    sandbox.alma.list_transactions = False
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00"), row(b, "1.00"), row(c, "1.00")]))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(fee_calls(sandbox)) == sorted([("GET", "list ACTIVE")] + [("GET", "fee")] * 3
                                                + [("POST", "fee")] * 3)
    assert len(pays(sandbox)) == 3


def test_a_lost_ledger_finds_the_earlier_pay_in_the_list_and_pays_nothing(sandbox, one_patron):
    a, b, c = one_patron
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00"), row(b, "1.00"), row(c, c["balance"])]))
    assert sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day).returncode == 0
    sandbox.alma.clear_calls()
    store = open_store(sandbox.env["BURSAR_DB_URI"])
    try:  # the payments ledger is lost (an old backup restored by hand, say)
        for name in ("burs_payments", "burs_payment_files"):
            store.delete_where(name, {})
    finally:
        store.close()
    again = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(pays(sandbox)) == 3
    # a and b from the ACTIVE list's transactions, c (closed by its pay) from the CLOSED list
    assert re.search(r"found already applied in Alma \(not paid again\)\s+3\s", again.stdout), again.stdout
    assert sorted(fee_calls(sandbox)) == [("GET", "list ACTIVE"), ("GET", "list CLOSED")]


def test_a_list_that_shows_transactions_where_there_are_some_needs_no_fee_gets(sandbox, one_patron):
    """Alma may leave the key out where a fee has no transactions: once a listed fee shows its
    transactions, the list carries them, so a listed fee without the key has none."""
    a, b, c = one_patron
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00")]), mtime=1_000)
    assert sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day).returncode == 0
    sandbox.alma.list_transactions = "omit_empty"
    sandbox.alma.clear_calls()
    sandbox.drop_payment_file(f"{PREFIX}_2.csv", csv([row(a, "1.00", date="03/04/2026"), row(b, "1.00"),
                                                      row(c, "1.00")]), mtime=2_000)
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(fee_calls(sandbox)) == [("GET", "list ACTIVE")] + [("POST", "fee")] * 3
    assert len(pays(sandbox)) == 4
