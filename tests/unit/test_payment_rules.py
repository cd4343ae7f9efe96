"""The decision for every kind of payment row (pure rules; the job adds Alma and the store)."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bursar.rules import payment_rules as rules
from bursar.rules.payment_rules import (
    NEGATIVE_PAYMENT,
    NOTHING_OWED,
    ZERO_CHARGE,
    ZERO_PAYMENT,
    amount_to_pay,
    before_alma,
)


@pytest.mark.parametrize("paid, charge, expected", [
    (D("5.00"), D("5.00"), None),                 # an ordinary payment goes to Alma
    (D("1.00"), D("0.00"), ZERO_CHARGE),          # zero-dollar charge: never sent
    (D("0.00"), D("5.00"), ZERO_PAYMENT),         # zero-dollar payment: never sent
    (D("0.00"), D("0.00"), ZERO_CHARGE),          # both zero: the charge rule comes first
    (D("-3.00"), D("5.00"), NEGATIVE_PAYMENT),    # a reversal at the Bursar is not a payment
    (D("0.01"), D("0.01"), None),
])
def test_before_alma(paid, charge, expected):
    assert before_alma(paid, charge) == expected


@pytest.mark.parametrize("paid, balance, amount, overpaid, skip", [
    (D("5.00"), D("5.00"), D("5.00"), D("0.00"), None),          # full payment
    (D("2.50"), D("5.00"), D("2.50"), D("0.00"), None),          # partial payment
    (D("7.00"), D("5.00"), D("5.00"), D("2.00"), None),          # overpayment: pay the balance, report 2.00
    (D("5.00"), D("0.00"), D("0"), D("0"), NOTHING_OWED),        # an open fee that owes nothing
    (D("5.00"), D("-1.00"), D("0"), D("0"), NOTHING_OWED),       # a credit balance
    (D("0.10"), D("0.30"), D("0.10"), D("0.00"), None),          # cents stay exact
])
def test_amount_to_pay(paid, balance, amount, overpaid, skip):
    result = amount_to_pay(paid, balance)
    assert (result.amount, result.overpaid, result.skip_reason) == (amount, overpaid, skip)


@pytest.mark.parametrize(("emplid", "patron", "expected"), [
    ("1201901471", "1201901471", None),
    (" 1201901471 ", "1201901471", None),
    ("0201901471", "201901471", rules.EMPLID_MISMATCH),  # leading zeros are part of the id
    ("1201901472", "1201901471", rules.EMPLID_MISMATCH),
    ("1201901471", None, rules.EMPLID_MISMATCH),
])
def test_identity_problem(emplid, patron, expected):
    assert rules.identity_problem(emplid, patron) == expected


@pytest.mark.parametrize(("charge", "billed", "differs"), [
    ("12.50", "12.50", False), ("12.50", "12.49", True), ("0.01", "0.00", True),
])
def test_charge_differs(charge, billed, differs):
    assert rules.charge_differs(D(charge), D(billed)) is differs


@given(paid=st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2),
       balance=st.decimals(min_value=D("-10"), max_value=D("100000"), places=2))
def test_a_payment_never_exceeds_min_of_paid_and_balance(paid, balance):
    payment = amount_to_pay(paid, balance)
    if balance <= 0:
        assert payment.amount == 0 and payment.skip_reason == NOTHING_OWED
    else:
        assert payment.amount == min(paid, balance)
        assert payment.amount + payment.overpaid == paid  # nothing paid at the Bursar goes missing
