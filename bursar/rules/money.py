"""Money: exact Decimal amounts in cents, and the three ways a credit or payment is spread.

Why this module exists: the original kept money in floats and rounded "half-even on the binary
value", so the ledger and the file formatter could disagree by a cent (docs/original-defects.md §31).
Here every amount is a `Decimal` with exactly two places (or integer cents), parsed from the
text Alma/the Bursar sent, rounded once with ROUND_HALF_UP.  Floats are refused outright.

The allocation functions are the original's moneyMath.py with its defects fixed:
- `allocate_greedy`        distributeCreditAlma (docs/allocation.md §2; docs/original-defects.md §5)
- `allocate_to_parts`      distributeCreditBurs (docs/allocation.md §3; docs/original-defects.md §6)
- `apply_payment_to_parts` applyNewPayments' per-part loop (docs/allocation.md §4)

All three return an `Allocation` whose amounts are >= 0, position-aligned with the input, with
sum(amounts) + remainder == the amount offered (for any amount >= 0; an amount <= 0 allocates
nothing and leaves no remainder).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from bursar.errors import BursarError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# Plain decimals only: optional sign, digits, optional fraction.  No exponents, no thousands
# separators, no currency symbols (Analytics sends doubles as text like "2.675" or "-12.340").
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class BadAmount(BursarError, ValueError):
    """A value that is not a money amount (empty, garbage, NaN, infinite, exponent form...).

    It is both a ValueError (it is bad input) and a BursarError (so the top-level handler
    reports it as a one-line failure)."""

    def __init__(self, text: object, why: str = "not a money amount"):
        super().__init__(f"{why}: {text!r}")
        self.text = text


def to_money(value: str | int | Decimal) -> Decimal:
    """Parse/normalise an amount to a two-place Decimal, rounding half-up (2.675 -> 2.68).

    Floats raise TypeError: a float has already lost the exact value, so accepting one would
    hide the very bug this module exists to prevent."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass the original text or a Decimal")
    if isinstance(value, bool):
        raise TypeError("money must not be a bool")
    if value is None:
        raise BadAmount(value, "missing money amount")
    if isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, Decimal):
        dec = value
    elif isinstance(value, str):
        text = value.strip()
        if not _PLAIN_DECIMAL.fullmatch(text):
            raise BadAmount(value)
        dec = Decimal(text)
    else:
        raise TypeError(f"money must be str, int or Decimal, not {type(value).__name__}")
    if not dec.is_finite():
        raise BadAmount(value)
    try:
        with localcontext() as ctx:
            ctx.prec = 40
            result = dec.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise BadAmount(value, "money amount out of range") from None
    # Normalise negative zero ("-0.00") so it prints and compares like zero.
    return ZERO if result == 0 else result


def to_cents(m: Decimal) -> int:
    """Integer cents of an amount (rounded half-up to the cent first)."""
    return int(to_money(m).scaleb(2))


def fmt(m: Decimal) -> str:
    """Two-place text of an amount ("12.34", "-4.50"); for messages and logs."""
    return f"{to_money(m):f}"


@dataclass(frozen=True)
class Allocation:
    """amounts[k] is what input position k receives (>= 0); remainder is what found no home."""

    amounts: tuple[Decimal, ...]
    remainder: Decimal

    @property
    def total(self) -> Decimal:
        """Sum of the allocated amounts."""
        return sum(self.amounts, ZERO)


def _nothing(n: int) -> Allocation:
    return Allocation(tuple(ZERO for _ in range(n)), ZERO)


def allocate_greedy(credit: Decimal, capacities: Sequence[Decimal]) -> Allocation:
    """Spread a credit over candidate fines by capacity (maxCred), the fixed distributeCreditAlma.

    An exact match (the first position whose capacity equals the credit) takes all of it, so a
    credit for one known fine lands on that fine.  Otherwise the largest capacities are filled
    first (stable on ties), each taking min(remaining, capacity).  A negative capacity counts as
    zero, so nobody is ever given a negative amount.
    12 over [10, 5] -> [10, 2];  3 over [10, 5] -> [3, 0];  7 over [5, 10, 2] -> [0, 7, 0]."""
    credit = to_money(credit)
    caps = [max(ZERO, to_money(c)) for c in capacities]
    if credit <= 0:
        return _nothing(len(caps))
    amounts = [ZERO] * len(caps)
    for k, cap in enumerate(caps):
        if cap == credit:
            amounts[k] = credit
            return Allocation(tuple(amounts), ZERO)
    rem = credit
    for k in sorted(range(len(caps)), key=lambda i: -caps[i]):  # sorted() is stable
        if rem <= 0:
            break
        take = min(rem, caps[k])
        amounts[k] += take
        rem -= take
    return Allocation(tuple(amounts), rem)


@dataclass(frozen=True)
class PartTarget:
    """One Bursar part of a fine: its current Bursar balance and its original charge."""

    current: Decimal
    original: Decimal


def allocate_to_parts(credit: Decimal, targets: Sequence[PartTarget], allow_negative: bool) -> Allocation:
    """Spread a waive/credit over a fine's Bursar parts, the fixed distributeCreditBurs.

    - reverse2: with exactly two parts and a credit equal to the second part's current balance,
      the second part is served first (a waive of exactly the legacy `_03` billing fee lands on
      it; ties also go there: 10 over [10, 10] -> [0, 10]).
    - Round 1: each part with a positive balance takes min(remaining, balance).
    - Round 2 (only when allow_negative, i.e. a Credit/refund, and something is left): each part
      takes min(remaining, max(0, original + balance)), so no part goes below -original and a
      part already below it takes nothing.
    Parts are tracked by position, never looked up by value (the original's list.index bug)."""
    credit = to_money(credit)
    current = [to_money(t.current) for t in targets]
    original = [to_money(t.original) for t in targets]
    n = len(current)
    if credit <= 0:
        return _nothing(n)
    order = [1, 0] if n == 2 and credit == current[1] else list(range(n))
    amounts = [ZERO] * n
    rem = credit
    for k in order:
        if rem <= 0:
            break
        if current[k] > 0:
            take = min(rem, current[k])
            amounts[k] += take
            current[k] -= take
            rem -= take
    if allow_negative:
        for k in order:
            if rem <= 0:
                break
            room = max(ZERO, original[k] + current[k])
            take = min(rem, room)
            amounts[k] += take
            current[k] -= take
            rem -= take
    return Allocation(tuple(amounts), rem)


def apply_payment_to_parts(payment: Decimal, owed: Sequence[Decimal]) -> Allocation:
    """Apply a payment to a fine's parts in part order: each part that owes something takes
    min(remaining, owed).  The remainder is an overpayment (or a payment made before the fine
    was ever sent to the Bursar); the caller reports it, it is not an error here."""
    payment = to_money(payment)
    owes = [to_money(o) for o in owed]
    if payment <= 0:
        return _nothing(len(owes))
    amounts = [ZERO] * len(owes)
    rem = payment
    for k, owe in enumerate(owes):
        if rem <= 0:
            break
        if owe > 0:
            take = min(rem, owe)
            amounts[k] = take
            rem -= take
    return Allocation(tuple(amounts), rem)
