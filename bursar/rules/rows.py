"""Pure conversion of Analytics report rows into ledger records (no I/O).

A row is a dict keyed by column heading with text values (None for an absent cell).  Each
function returns a record or raises RowError with a one-line reason; the import reports such a
row and goes on with the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bursar.errors import BursarError
from bursar.rules import columns as c
from bursar.rules.money import BadAmount, to_money

NO_LOAN = "\\N"  # the original's marker for "no loan" (PostgreSQL's null), kept for compatibility
TRANSACTION_TYPES = ("Fine", "Payment", "Waive", "Credit")
CREDIT_TYPE = "Credit"


class RowError(BursarError):
    """One report row cannot be used; the message says why."""


@dataclass(frozen=True)
class FineRecord:
    rootAlmaFineId: str
    almaPatronId: str
    almaLoanId: str
    type: str
    almaCreated: datetime | None
    almaUpdated: datetime | None
    isClosedInAlma: bool
    origAmtAlma: Decimal
    remAmtAlma: Decimal
    almaNote: str | None
    item: dict  # item_details fields
    locationCode: str | None

    @property
    def is_credit(self) -> bool:
        return self.type == CREDIT_TYPE


@dataclass(frozen=True)
class TransRecord:
    almaTransId: str
    almaFineId: str
    type: str
    amt: Decimal  # + for Fine, - for Payment/Waive/Credit
    almaCreated: datetime | None
    almaNote: str | None


def _text(row: dict, heading: str) -> str | None:
    value = row.get(heading)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _none_if_minus_one(value: str | None) -> str | None:
    return None if value in (None, "-1") else value


def parse_timestamp(value: str | None, heading: str) -> datetime | None:
    """Analytics timestamps: 'YYYY-MM-DDTHH:MM:SS' (no zone; the institution's local time)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=None, microsecond=0)
    except ValueError:
        raise RowError(f"'{heading}' is not a timestamp: {value!r}") from None


def _date_time(row: dict, date_heading: str, time_heading: str) -> datetime | None:
    day, time = _text(row, date_heading), _text(row, time_heading)
    if day is None or time is None:
        return None
    try:
        return datetime.fromisoformat(f"{day}T{time}")
    except ValueError:
        return None  # item context only; a garbled loan date never blocks a fine


def _amount(row: dict, heading: str) -> Decimal:
    try:
        return to_money(row.get(heading) or "")
    except BadAmount:
        raise RowError(f"'{heading}' is not an amount: {row.get(heading)!r}") from None


def _required(row: dict, heading: str) -> str:
    value = _text(row, heading)
    if value is None:
        raise RowError(f"'{heading}' is empty")
    return value


def parse_fine(row: dict) -> FineRecord:
    location = _none_if_minus_one(_text(row, c.LOCATION_CODE))
    loan = _none_if_minus_one(_text(row, c.LOAN_ID))
    note = row.get(c.FINE_COMMENT)
    item = {
        "title": _text(row, c.LOAN_DETAILS),
        "author": _text(row, c.AUTHOR),
        "callNumber": _text(row, c.CALL_NUMBER),
        "barcode": _none_if_minus_one(_text(row, c.BARCODE)),
        "loanDate": _date_time(row, c.LOAN_DATE, c.LOAN_TIME),
        "dueDate": _date_time(row, c.DUE_DATE, c.DUE_TIME),
        "returnedDate": _date_time(row, c.RETURN_DATE, c.RETURN_TIME),
        "locationCode": location,
    }
    if c.USER_GROUP in row:  # the optional column: absent, what was stored is kept
        item["userGroup"] = _text(row, c.USER_GROUP)
    fine_type = _required(row, c.FINE_TYPE)
    original = _amount(row, c.ORIGINAL_AMOUNT)
    if original < 0 and fine_type != CREDIT_TYPE:
        # only a credit is negative: a negative debit is a bad answer, never merged (issue 10)
        raise RowError(f"'{c.ORIGINAL_AMOUNT}' is negative ({original}) for a {fine_type!r} fine; "
                       "only a credit may be negative")
    return FineRecord(
        rootAlmaFineId=_required(row, c.FINE_ID),
        almaPatronId=_required(row, c.PRIMARY_ID),
        almaLoanId=loan or NO_LOAN,
        type=fine_type,
        almaCreated=parse_timestamp(_text(row, c.FINE_CREATED), c.FINE_CREATED),
        almaUpdated=parse_timestamp(_text(row, c.STATUS_DATE), c.STATUS_DATE),
        isClosedInAlma=_text(row, c.FINE_STATUS) == "Closed",
        origAmtAlma=original,
        remAmtAlma=_amount(row, c.REMAINING_AMOUNT) if _text(row, c.REMAINING_AMOUNT) else Decimal("0.00"),
        almaNote=note if note else None,
        item=item,
        locationCode=location,
    )


def parse_transaction(row: dict) -> TransRecord:
    kind = _required(row, c.TRANS_TYPE)
    if kind not in TRANSACTION_TYPES:
        raise RowError(f"unknown transaction type {kind!r} (expected one of {', '.join(TRANSACTION_TYPES)})")
    amount = abs(_amount(row, c.TRANS_AMOUNT))
    trans_id = _required(row, c.TRANS_ID)
    if trans_id == "-1":
        raise RowError("transaction id is -1 (a fee with no transaction)")
    return TransRecord(
        almaTransId=trans_id,
        almaFineId=_required(row, c.FINE_ID),
        type=kind,
        amt=amount if kind == "Fine" else -amount,
        almaCreated=parse_timestamp(_text(row, c.TRANS_CREATED), c.TRANS_CREATED),
        almaNote=row.get(c.TRANS_NOTE) or None,
    )


def parse_balance(row: dict) -> tuple[str, Decimal]:
    return _required(row, c.PRIMARY_ID), _amount(row, c.REMAINING_AMOUNT)


def load_ignore_list(text: str) -> frozenset[str]:
    """Fine ids, one per line; '#' starts a comment (keep the reason beside each id)."""
    ids = set()
    for line in text.splitlines():
        token = line.split("#", 1)[0].strip()
        if token:
            if not re.fullmatch(r"\d+", token):
                raise BursarError(f"ignore list: {token!r} is not an Alma fine id")
            ids.add(token)
    return frozenset(ids)
