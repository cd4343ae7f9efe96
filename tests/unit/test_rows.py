"""Report rows -> ledger records (pure)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from bursar.errors import BursarError
from bursar.rules import columns as c
from bursar.rules.rows import NO_LOAN, RowError, load_ignore_list, parse_balance, parse_fine, parse_transaction


def fine_row(**over):
    row = {h: None for h in c.FINES_COLUMNS}
    row.update({c.FINE_ID: "7816239430003841", c.FINE_CREATED: "2021-09-01T10:00:00", c.FINE_STATUS: "Active",
                c.FINE_TYPE: "Overdue fine", c.STATUS_DATE: "2021-09-02T11:00:00", c.PRIMARY_ID: "0123456789",
                c.ORIGINAL_AMOUNT: "4.5", c.REMAINING_AMOUNT: "4.5", c.LOAN_ID: "-1", c.BARCODE: "-1",
                c.LOCATION_CODE: "law-stks", c.LOAN_DATE: "2021-08-01", c.LOAN_TIME: "09:30:00"})
    row.update(over)
    return row


def test_fine_row_parsed_exactly():
    record = parse_fine(fine_row())
    assert record.origAmtAlma == Decimal("4.50") and record.almaPatronId == "0123456789"
    assert record.almaLoanId == NO_LOAN and record.item["barcode"] is None
    assert record.item["loanDate"] == datetime(2021, 8, 1, 9, 30)
    assert record.almaUpdated == datetime(2021, 9, 2, 11) and not record.isClosedInAlma
    assert parse_fine(fine_row(**{c.FINE_STATUS: "Closed"})).isClosedInAlma
    assert parse_fine(fine_row(**{c.ORIGINAL_AMOUNT: "0.30000000000000004"})).origAmtAlma == Decimal("0.30")


@pytest.mark.parametrize("over, message", [
    ({c.ORIGINAL_AMOUNT: "abc"}, "Original Amount"),
    ({c.FINE_ID: None}, "Fine Fee Id"),
    ({c.STATUS_DATE: "02/09/2021"}, "Status Date"),
])
def test_bad_fine_rows_say_why(over, message):
    with pytest.raises(RowError, match=message):
        parse_fine(fine_row(**over))


def trans_row(kind="Payment", amount="2.25"):
    return {c.FINE_ID: "1", c.TRANS_ID: "99", c.TRANS_TYPE: kind, c.TRANS_AMOUNT: amount,
            c.TRANS_CREATED: "2021-09-03T08:00:00", c.TRANS_NOTE: None}


@pytest.mark.parametrize("kind, amount, expected", [
    ("Payment", "2.25", "-2.25"), ("Waive", "-4", "-4.00"), ("Credit", "0.1", "-0.10"), ("Fine", "10", "10.00"),
])
def test_transaction_signs(kind, amount, expected):
    assert parse_transaction(trans_row(kind, amount)).amt == Decimal(expected)


def test_unknown_transaction_type_is_a_row_error():
    with pytest.raises(RowError, match="unknown transaction type 'Refund'"):
        parse_transaction(trans_row("Refund"))


def test_balance_and_ignore_list():
    assert parse_balance({c.PRIMARY_ID: "12", c.REMAINING_AMOUNT: "3"}) == ("12", Decimal("3.00"))
    assert load_ignore_list("# old Sierra fines\n7813845970003841  # waived 2017\n\n") == {"7813845970003841"}
    with pytest.raises(BursarError):
        load_ignore_list("not-an-id\n")


def test_only_a_credit_may_have_a_negative_original_amount():
    with pytest.raises(RowError, match="negative .* only a credit"):
        parse_fine(fine_row(**{c.ORIGINAL_AMOUNT: "-33.33"}))
    credit = parse_fine(fine_row(**{c.ORIGINAL_AMOUNT: "-33.33", c.FINE_TYPE: "Credit"}))
    assert credit.is_credit and credit.origAmtAlma == Decimal("-33.33")


def test_the_user_group_column_is_optional():
    assert "userGroup" not in parse_fine(fine_row()).item  # no column: nothing stored over what is known
    assert parse_fine({**fine_row(), c.USER_GROUP: " Staff "}).item["userGroup"] == "Staff"
    assert parse_fine({**fine_row(), c.USER_GROUP: ""}).item["userGroup"] is None
    assert c.USER_GROUP not in c.FINES_COLUMNS  # a report without headings keeps the 21 columns
