"""The fees API client against the sandbox: read, pay, closed and unknown fees, finding a payment."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bursar.clients.alma.fees import FeeClosed, find_transaction, get_fee, list_fees, pay_fee
from bursar.clients.alma.http import AlmaUncertain
from bursar.errors import AlmaError


def pay(http, user, fee, amount, ext="BURS-1", method="ONLINE"):
    return pay_fee(http, user, fee, amount=Decimal(amount), method=method,
                   external_transaction_id=ext, comment="Paid to bursar on 2024-03-05")


def test_get_active_fee(sandbox, http):
    sandbox.set_fee("1234567890", "9854064491211104", balance=Decimal("7.5"),
                    original_amount=Decimal("750"), type_code="LOSTITEMREPLACEMENTFEE",
                    type_desc="Lost item replacement fee")
    fee = get_fee(http, "1234567890", "9854064491211104")
    assert (fee.id, fee.user_id, fee.status) == ("9854064491211104", "1234567890", "ACTIVE")
    assert fee.balance == Decimal("7.50") and str(fee.balance) == "7.50"
    assert fee.original_amount == Decimal("750.00") and str(fee.original_amount) == "750.00"
    assert fee.transactions == []
    assert fee.raw["type"] == {"value": "LOSTITEMREPLACEMENTFEE",
                               "desc": "Lost item replacement fee"}
    call = sandbox.calls[-1]
    assert call["params"] == {"user_id_type": "all_unique"} and call["method"] == "GET"


def test_ids_are_quoted_into_the_path(sandbox, http):
    sandbox.set_fee("smith/j doe", "f#1?", balance=Decimal("1.00"), original_amount=Decimal("1"))
    fee = get_fee(http, "smith/j doe", "f#1?")
    assert fee.id == "f#1?" and fee.user_id == "smith/j doe"


def test_closed_fee_is_fee_closed(sandbox, http):
    sandbox.set_fee("u1", "f1", balance=Decimal("0"), original_amount=Decimal("5"),
                    status="CLOSED")
    with pytest.raises(FeeClosed) as err:
        get_fee(http, "u1", "f1")
    assert err.value.status == 400
    assert str(err.value) == ("fee f1 of user u1 is closed in Alma "
                              "(already paid, waived or transferred)")


def test_unknown_fee_and_unknown_user(sandbox, http):
    sandbox.set_fee("u1", "f1", balance=Decimal("5"), original_amount=Decimal("5"))
    with pytest.raises(AlmaError) as err:
        get_fee(http, "u1", "nope")
    assert not isinstance(err.value, FeeClosed)
    assert (err.value.status, err.value.code) == (400, "401665")
    assert str(err.value) == "GET /almaws/v1/users/u1/fees/nope: HTTP 400 401665 Fine not found."
    with pytest.raises(AlmaError) as err:
        get_fee(http, "ghost", "f1")
    assert err.value.code == "401651"
    assert len(sandbox.calls) == 2  # 4xx answers are final


def test_partial_then_full_payment(sandbox, http):
    sandbox.set_fee("u1", "f1", balance=Decimal("10.00"), original_amount=Decimal("10.00"))
    fee = pay(http, "u1", "f1", "3.25", ext="BURS-1")
    assert fee.status == "ACTIVE" and fee.balance == Decimal("6.75")
    txn = find_transaction(fee, "BURS-1")
    assert txn is not None
    assert txn["amount"] == Decimal("3.25") and isinstance(txn["amount"], Decimal)
    assert txn["type"]["value"] == "PAYMENT" and txn["payment_method"]["value"] == "ONLINE"
    assert txn["comment"] == "Paid to bursar on 2024-03-05"
    assert find_transaction(fee, "BURS-2") is None
    assert sandbox.calls[-1]["params"] == {
        "op": "pay", "amount": "3.25", "method": "ONLINE", "external_transaction_id": "BURS-1",
        "comment": "Paid to bursar on 2024-03-05", "user_id_type": "all_unique"}

    fee = pay(http, "u1", "f1", "6.75", ext="BURS-2")
    assert fee.status == "CLOSED" and fee.balance == Decimal("0.00")
    assert [t["external_transaction_id"] for t in fee.transactions] == ["BURS-1", "BURS-2"]
    with pytest.raises(FeeClosed):
        get_fee(http, "u1", "f1")
    assert sandbox.pay_calls == [
        {"user_id": "u1", "fee_id": "f1", "amount": Decimal("3.25"), "method": "ONLINE",
         "external_transaction_id": "BURS-1", "comment": "Paid to bursar on 2024-03-05"},
        {"user_id": "u1", "fee_id": "f1", "amount": Decimal("6.75"), "method": "ONLINE",
         "external_transaction_id": "BURS-2", "comment": "Paid to bursar on 2024-03-05"},
    ]


def test_amount_is_sent_with_exactly_two_decimals(sandbox, http):
    sandbox.set_fee("u1", "f1", balance=Decimal("5.00"), original_amount=Decimal("5.00"))
    pay(http, "u1", "f1", "5")
    assert sandbox.calls[-1]["params"]["amount"] == "5.00"


def test_invalid_payments_are_refused_before_or_by_alma(sandbox, http):
    sandbox.set_fee("u1", "f1", balance=Decimal("5.00"), original_amount=Decimal("5.00"))
    with pytest.raises(ValueError):
        pay(http, "u1", "f1", "1.005")
    with pytest.raises(ValueError):
        pay(http, "u1", "f1", "0")
    with pytest.raises(ValueError):
        pay(http, "u1", "f1", "1.00", method="CHEQUE")
    assert sandbox.calls == []
    with pytest.raises(AlmaError) as err:
        pay(http, "u1", "f1", "5.01")
    assert err.value.code == "401666"
    assert sandbox.pay_calls == []
    assert sandbox.fees[("u1", "f1")]["balance"] == Decimal("5.00")


def test_paying_a_closed_fee_is_fee_closed(sandbox, http):
    sandbox.set_fee("u1", "f1", balance=Decimal("0"), original_amount=Decimal("5"),
                    status="CLOSED")
    with pytest.raises(FeeClosed):
        pay(http, "u1", "f1", "1.00")


def test_uncertain_pay_can_be_found_afterwards(sandbox, http):
    """The payments job's recovery path: an apply_then_drop that closed the fee is found via
    the CLOSED fee list, one that left it active via get_fee."""
    sandbox.set_fee("u1", "f1", balance=Decimal("4.00"), original_amount=Decimal("4.00"))
    sandbox.set_fee("u1", "f2", balance=Decimal("9.00"), original_amount=Decimal("9.00"))
    sandbox.add_fault("apply_then_drop", method="POST", times=2)
    with pytest.raises(AlmaUncertain):
        pay(http, "u1", "f1", "4.00", ext="BURS-A")
    with pytest.raises(AlmaUncertain):
        pay(http, "u1", "f2", "1.00", ext="BURS-B")
    assert len(sandbox.pay_calls) == 2

    assert find_transaction(get_fee(http, "u1", "f2"), "BURS-B") is not None
    with pytest.raises(FeeClosed):
        get_fee(http, "u1", "f1")
    closed = {f.id: f for f in list_fees(http, "u1", status="CLOSED")}
    assert find_transaction(closed["f1"], "BURS-A")["amount"] == Decimal("4")
    assert [f.id for f in list_fees(http, "u1")] == ["f2"]


def test_list_fees_of_a_user_without_fees_in_that_status(sandbox, http):
    sandbox.set_fee("u1", "f1", balance=Decimal("4.00"), original_amount=Decimal("4.00"))
    assert list_fees(http, "u1", status="CLOSED") == []
