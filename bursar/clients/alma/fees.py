"""Users' fees in Alma: read one fee, pay it, and find a payment already made.

Why this shape: the payments import (docs/ledger.md §11) must pay each Bursar payment exactly once.  It
reads the fee first (a closed fee is reported as FeeClosed, Alma's only signal that the fee was
already paid or transferred), pays min(paid, balance) with a deterministic
`external_transaction_id`, and after an uncertain POST looks for that id among the fee's
transactions (`find_transaction`) before paying again.  Because paying the whole balance closes
the fee and a closed fee cannot be read with `get_fee`, `list_fees(..., status="CLOSED")` is
the way to see a closed fee's transactions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import requests

from bursar.clients.alma.http import AlmaHttp, AlmaHttpError, AlmaUncertain
from bursar.errors import AlmaError

CLOSED_FEE_MESSAGE = "Request failed: API does not support closed fees."
PAY_METHODS = ("CREDIT_CARD", "ONLINE", "CASH")
_CENT = Decimal("0.01")


class FeeClosed(AlmaError):
    """Alma refused to read (or pay) the fee because it is closed: already paid, waived or
    transferred.  Alma says so with HTTP 400 and exactly CLOSED_FEE_MESSAGE."""


@dataclass
class Fee:
    id: str
    user_id: str
    status: str
    balance: Decimal
    original_amount: Decimal
    transactions: list[dict] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)
    # False when Alma's answer had no `transaction` key at all: the fee's transactions are then
    # unknown (the user fee list may not carry them), not known to be none
    transactions_listed: bool = True


def _money(value: Any, what: str) -> Decimal:
    """A JSON amount (int, Decimal from parse_float, or string) as a 2-place Decimal."""
    if value is None:
        return Decimal("0.00")
    if isinstance(value, bool):
        raise AlmaError(f"Alma returned a non-numeric {what}: {value!r}")
    try:
        return Decimal(value if isinstance(value, (int, Decimal)) else str(value)).quantize(_CENT)
    except (InvalidOperation, ValueError):
        raise AlmaError(f"Alma returned a non-numeric {what}: {value!r}") from None


def _code(value: Any) -> str:
    """`{"value": ..., "desc": ...}` fields (and plain strings) to their code."""
    if isinstance(value, dict):
        return str(value.get("value") or "")
    return "" if value is None else str(value)


def fee_from_json(doc: dict, user_id: str = "") -> Fee:
    """Build a Fee from Alma's JSON fee object (parsed with parse_float=Decimal)."""
    if not isinstance(doc, dict) or not doc.get("id"):
        raise AlmaError("Alma returned a fee without an id")
    transactions = doc.get("transaction") or []
    if isinstance(transactions, dict):  # a lone transaction, defensively
        transactions = [transactions]
    uid = _code(doc.get("user_primary_id")) or user_id
    return Fee(
        id=str(doc["id"]), user_id=uid, status=_code(doc.get("status")),
        balance=_money(doc.get("balance"), "fee balance"),
        original_amount=_money(doc.get("original_amount"), "fee original amount"),
        transactions=[t for t in transactions if isinstance(t, dict)], raw=doc,
        transactions_listed="transaction" in doc,
    )


def _json(resp: requests.Response, what: str) -> Any:
    try:
        return json.loads(resp.content, parse_float=Decimal)
    except ValueError:
        raise AlmaError(f"{what}: Alma's answer is not JSON") from None


def _fee_path(user_id: str, fee_id: str) -> str:
    return f"/almaws/v1/users/{quote(user_id, safe='')}/fees/{quote(fee_id, safe='')}"


def _closed(exc: AlmaHttpError, user_id: str, fee_id: str) -> FeeClosed | None:
    if exc.status == 400 and exc.error_message == CLOSED_FEE_MESSAGE:
        return FeeClosed(f"fee {fee_id} of user {user_id} is closed in Alma "
                         "(already paid, waived or transferred)", status=400, code=exc.code)
    return None


def get_fee(http: AlmaHttp, user_id: str, fee_id: str) -> Fee:
    """GET one active fee.  Raises FeeClosed for a closed fee, AlmaError otherwise."""
    path = _fee_path(user_id, fee_id)
    try:
        resp = http.get(path, {"user_id_type": "all_unique"})
    except AlmaHttpError as exc:
        raise (_closed(exc, user_id, fee_id) or exc) from None
    return fee_from_json(_json(resp, f"GET {path}"), user_id)


def list_fees(http: AlmaHttp, user_id: str, *, status: str = "ACTIVE") -> list[Fee]:
    """All of a user's fees in one status (ACTIVE, INDISPUTE, EXPORTED, CLOSED)."""
    path = f"/almaws/v1/users/{quote(user_id, safe='')}/fees"
    resp = http.get(path, {"user_id_type": "all_unique", "status": status})
    doc = _json(resp, f"GET {path}")
    fees = (doc.get("fee") or []) if isinstance(doc, dict) else []  # no fees: no "fee" key
    if isinstance(fees, dict):
        fees = [fees]
    return [fee_from_json(f, user_id) for f in fees]


def format_amount(amount: Decimal) -> str:
    """Alma's `amount` parameter: exactly two decimals.  More places than cents is a bug."""
    if amount != amount.quantize(_CENT):
        raise ValueError(f"amount {amount} has more than two decimal places")
    return f"{amount.quantize(_CENT):.2f}"


def pay_fee(http: AlmaHttp, user_id: str, fee_id: str, *, amount: Decimal, method: str,
            external_transaction_id: str, comment: str) -> Fee:
    """POST op=pay (no body).  Never retried here: AlmaUncertain means "look before paying again"."""
    if amount <= 0:
        raise ValueError(f"payment amount must be positive, got {amount}")
    if method not in PAY_METHODS:
        raise ValueError(f"payment method must be one of {', '.join(PAY_METHODS)}, got {method!r}")
    path = _fee_path(user_id, fee_id)
    params = {"op": "pay", "amount": format_amount(amount), "method": method,
              "external_transaction_id": external_transaction_id, "comment": comment,
              "user_id_type": "all_unique"}
    try:
        resp = http.post(path, params)
    except AlmaHttpError as exc:
        raise (_closed(exc, user_id, fee_id) or exc) from None
    try:
        return fee_from_json(json.loads(resp.content, parse_float=Decimal), user_id)
    except (ValueError, AlmaError):
        # Alma said 200 (so the payment most likely went through) but the body is unusable.
        raise AlmaUncertain(f"POST {path}: Alma accepted the payment but its answer could not "
                            "be read; check the fee before paying again") from None


def find_transaction(fee: Fee, external_transaction_id: str) -> dict | None:
    """The fee's transaction carrying this external_transaction_id, or None."""
    for transaction in fee.transactions:
        if str(transaction.get("external_transaction_id") or "") == external_transaction_id:
            return transaction
    return None
