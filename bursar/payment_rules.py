"""What to do with one Bursar payment row (pure; the payments job does the I/O).

Two decisions, in the order the job meets them:
1. before asking Alma (`before_alma`): a zero charge, a zero or negative payment is never sent;
2. once Alma's fee is known (`amount_to_pay`): pay min(paid, balance); nothing when the fee
   owes nothing; an overpayment is paid up to the balance and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .money import ZERO

ZERO_CHARGE = "zero charge"
ZERO_PAYMENT = "zero payment"
NEGATIVE_PAYMENT = "negative payment"
NOTHING_OWED = "nothing owed"


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
