"""What to do with one Bursar payment row (pure; the payments job does the I/O).

The decisions, in the order the job meets them:
1. before asking Alma (`before_alma`): a zero charge, a zero or negative payment is never sent;
2. once the ledger's fine is known: the row's Emplid must be the fine's patron
   (`identity_problem`; a row that names another patron's fine is never paid), and a charge
   amount that is not what was billed for the reference is reported (`charge_differs`) but
   still paid: the Emplid and reference agree, so the money is that patron's payment for it;
3. once Alma's fee is known (`amount_to_pay`): pay min(paid, balance); nothing when the fee
   owes nothing; an overpayment is paid up to the balance and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bursar.rules.money import ZERO, to_money

ZERO_CHARGE = "zero charge"
ZERO_PAYMENT = "zero payment"
NEGATIVE_PAYMENT = "negative payment"
NOTHING_OWED = "nothing owed"
EMPLID_MISMATCH = "Emplid mismatch"

OriginalKey = tuple[str, str, str, Decimal, Decimal]  # emplid, reference, date paid, paid, charge


def _emplid(value: object) -> str:
    """An Emplid as the original's pandas may have stored it (an int or a float: leading zeros
    gone), reduced to a form both sides share."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lstrip("0")


def original_key(payment: dict) -> OriginalKey | None:
    """The key of a payment the original pyBursar recorded in `burs_imports.results`
    ({userID, bursarTransactionId, datePaid, paidSum, chargeSum}), or None when unreadable."""
    try:
        return (_emplid(payment["userID"]), str(payment["bursarTransactionId"]).strip(),
                str(payment["datePaid"]).strip(), to_money(str(payment["paidSum"])),
                to_money(str(payment["chargeSum"])))
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def row_original_key(emplid: str, reference: str, date_paid: str, paid: Decimal, charge: Decimal) -> OriginalKey:
    """The same key for one of our payment rows."""
    return (_emplid(emplid), reference.strip(), date_paid.strip(), paid, charge)


def identity_problem(row_emplid: str, fine_patron: str | None) -> str | None:
    """EMPLID_MISMATCH unless the row's Emplid is exactly the fine's patron (ids are text:
    leading zeros count)."""
    if fine_patron is None or row_emplid.strip() != fine_patron.strip():
        return EMPLID_MISMATCH
    return None


def charge_differs(charge: Decimal, billed: Decimal) -> bool:
    """The Bursar's charge amount is not what we billed for the reference (all its charges)."""
    return charge != billed


def before_alma(paid: Decimal, charge: Decimal) -> str | None:
    """The skip reason for a row that must never reach Alma, or None."""
    if charge == ZERO:
        return ZERO_CHARGE
    if paid == ZERO:
        return ZERO_PAYMENT
    if paid < ZERO:
        return NEGATIVE_PAYMENT
    return None


@dataclass(frozen=True)
class Payment:
    amount: Decimal  # what to pay in Alma (0 means: skip, nothing owed)
    overpaid: Decimal  # paid at the Bursar beyond Alma's balance (reported for a refund)

    @property
    def skip_reason(self) -> str | None:
        return NOTHING_OWED if self.amount == ZERO else None


def amount_to_pay(paid: Decimal, balance: Decimal) -> Payment:
    if balance <= ZERO:
        return Payment(ZERO, ZERO)
    amount = min(paid, balance)
    return Payment(amount, paid - amount)
