"""The export decision table: what new Bursar lines a fine needs (docs/ledger.md §4), pure.

Why it is pure: the original interleaved this with database writes, so one bad fine stopped
the whole export with earlier fines already committed (docs/original-defects.md §13).  Here
`decide` only looks at one fine's amounts and returns a `Decision`; a bad fine is a Decision of
kind "error" that the caller reports and skips, and the other fines go ahead.

Amounts: amtA = Σ Alma transaction amounts, amtB = Σ Bursar transaction amounts,
diff = amtA − amtB (what the Bursar is missing).  Rows, first match wins:
  1. |amtA| > orig or |amtB| > orig       -> error
  2. diff > 0 and amtB != 0               -> error (a new charge on a fine already sent)
  3. diff > 0 and legacy Sierra fine      -> error (Sierra fines are never charged by us)
  4. diff == 0                            -> zeroDiff (nothing to send)
  5. diff > 0                             -> one "Fine" line of diff on the fine's single part
  6. diff < 0                             -> "Waive" lines (amtA >= 0) or "Credit" lines
                                             (amtA < 0, a refund) adding up to diff
Row 6 matches parts to Bursar lines by bursFineId (never by position: docs/original-defects.md
§13), and a part's original is the sum of all its Fine lines, so a re-charged fine can be
reversed again.

The import's two ledger rules live here too: `match_credit` spreads a credit fee over the fines
of its loan (docs/ledger.md §8.3), `mirror_alma_payment` records an Alma payment on the Bursar
side (docs/ledger.md §10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bursar.rules.money import (
    ZERO,
    PartTarget,
    allocate_greedy,
    allocate_to_parts,
    apply_payment_to_parts,
    fmt,
    to_money,
)
from bursar.rules.rows import NO_LOAN

NEW_FINE = "newFine"
ZERO_DIFF = "zeroDiff"
WAIVE = "waive"
CREDIT = "credit"
ERROR = "error"


@dataclass(frozen=True)
class AlmaLine:
    """One trans_alma: type Fine | Payment | Waive | Credit; amt + for Fine, − otherwise."""

    type: str
    amt: Decimal


@dataclass(frozen=True)
class BursLine:
    """One trans_burs: type Fine | Payment | Waive | Credit, signed amt, and its part."""

    type: str
    amt: Decimal
    bursFineId: str


@dataclass(frozen=True)
class FineState:
    """Everything `decide` needs about one fine.  `parts` are the bursFineIds of the fine's
    fine_mds in stored order (one for an Alma fine, two for a legacy Sierra fine)."""

    fine_id: int
    orig_amt: Decimal
    is_sierra: bool
    alma: Sequence[AlmaLine]
    burs: Sequence[BursLine]
    parts: Sequence[str]


@dataclass(frozen=True)
class Decision:
    """The outcome for one fine.  `lines` are the new trans_burs to add (to be exported);
    empty for zeroDiff and error.  `error` is a one-line message when kind == "error"."""

    kind: str
    lines: tuple[BursLine, ...]
    amtA: Decimal
    amtB: Decimal
    diff: Decimal
    error: str | None = None


def _total(amounts: Sequence[Decimal]) -> Decimal:
    return to_money(sum((to_money(a) for a in amounts), ZERO))


def part_balance(burs: Sequence[BursLine], part: str) -> Decimal:
    """The Bursar balance of one part: Σ amt of its lines."""
    return _total([b.amt for b in burs if b.bursFineId == part])


def part_original(burs: Sequence[BursLine], part: str) -> Decimal:
    """What was ever charged on one part: Σ amt of its Fine lines (0 if none)."""
    return _total([b.amt for b in burs if b.bursFineId == part and b.type == "Fine"])


def decide(state: FineState) -> Decision:
    """Apply the decision table (module docstring) to one fine."""
    fid = state.fine_id
    orig = to_money(state.orig_amt)
    amt_a = _total([a.amt for a in state.alma])
    amt_b = _total([b.amt for b in state.burs])
    diff = to_money(amt_a - amt_b)
    nums = f"Alma total {fmt(amt_a)}, Bursar total {fmt(amt_b)}, diff {fmt(diff)}"

    def error(message: str) -> Decision:
        return Decision(ERROR, (), amt_a, amt_b, diff, f"fine {fid}: {message}")

    # Row 1
    if abs(amt_a) > orig or abs(amt_b) > orig:
        return error(f"transactions exceed the original amount {fmt(orig)} ({nums})")
    # Row 2
    if diff > 0 and amt_b != 0:
        return error(f"Alma total rose after the fine was sent to the Bursar ({nums})")
    # Row 3
    if diff > 0 and state.is_sierra:
        return error(f"a legacy Sierra fine cannot be sent to the Bursar as a new charge ({nums})")
    # Row 4
    if diff == 0:
        return Decision(ZERO_DIFF, (), amt_a, amt_b, diff)
    # Row 5
    if diff > 0:
        if len(state.parts) != 1:
            return error(f"a new charge needs exactly 1 Bursar part, found {len(state.parts)} ({nums})")
        line = BursLine("Fine", diff, state.parts[0])
        return Decision(NEW_FINE, (line,), amt_a, amt_b, diff)
    # Row 6
    credit = -diff
    kind, line_type = (WAIVE, "Waive") if amt_a >= 0 else (CREDIT, "Credit")
    parts = list(state.parts)
    if len(set(parts)) != len(parts):
        return error(f"its Bursar parts repeat a reference number ({nums})")
    targets = [PartTarget(part_balance(state.burs, p), part_original(state.burs, p)) for p in parts]
    alloc = allocate_to_parts(credit, targets, allow_negative=(kind == CREDIT))
    if alloc.remainder > 0:
        return error(
            f"could not allocate {kind} of {fmt(credit)} across {len(parts)} Bursar part(s), "
            f"{fmt(alloc.remainder)} left over ({nums})"
        )
    lines = tuple(BursLine(line_type, -amt, p) for p, amt in zip(parts, alloc.amounts) if amt != 0)
    return Decision(kind, lines, amt_a, amt_b, diff)


def mirror_alma_payment(
    amount: Decimal, parts: Sequence[str], burs: Sequence[BursLine]
) -> tuple[tuple[BursLine, ...], Decimal]:
    """The Bursar-side Payment lines for a payment recorded in Alma (docs/ledger.md §10).

    The payment (its absolute value; Alma stores payments negative) is applied to the parts in
    stored order, each part taking min(remaining, what it owes).  Returns the new lines
    (amt = −applied, never exported) and the unapplied excess, which the caller reports; an
    excess is not fatal (e.g. a fine paid in Alma before it was ever sent: owed 0)."""
    parts = list(dict.fromkeys(parts))  # a repeated part must not be paid twice
    owed = [part_balance(burs, p) for p in parts]
    alloc = apply_payment_to_parts(abs(to_money(amount)), owed)
    lines = tuple(BursLine("Payment", -amt, p) for p, amt in zip(parts, alloc.amounts) if amt != 0)
    return lines, alloc.remainder


@dataclass(frozen=True)
class LoanFine:
    """A ledger fine on the loan a credit fee names, as the credit rule sees it."""

    fine_id: int
    patron: str  # almaPatronId
    type: str
    alma: Sequence[AlmaLine]


@dataclass(frozen=True)
class CreditMatch:
    """Where a credit fee goes.  `shares` are the new Credit lines' (fine id, amount > 0) in
    ledger order; `remainder` is what no fine had room for.  `unmatched` says why no fine can
    take it at all (then there are no shares, and the credit is kept on its own)."""

    shares: tuple[tuple[int, Decimal], ...]
    remainder: Decimal
    unmatched: str | None = None


def match_credit(credit: Decimal, loan_id: str, patron: str, on_loan: Sequence[LoanFine]) -> CreditMatch:
    """Spread a credit fee (its amount, positive) over the fines of its loan (docs/ledger.md
    §8.3): the candidates are the non-credit fines of the same loan and the same patron; a
    credit with no loan has none.  Each candidate can take what it was charged net of waives
    and credits (its Alma lines other than payments), shared out by `allocate_greedy`."""
    credit = to_money(credit)
    if loan_id == NO_LOAN:
        return CreditMatch((), credit, "it has no loan id")
    candidates = [f for f in on_loan if f.patron == patron and f.type != "Credit"]
    if not candidates:
        return CreditMatch((), credit, f"no fine of patron's loan {loan_id} is in the ledger")
    capacities = [_total([a.amt for a in f.alma if a.type != "Payment"]) for f in candidates]
    allocation = allocate_greedy(credit, capacities)
    shares = tuple((f.fine_id, amt) for f, amt in zip(candidates, allocation.amounts, strict=True) if amt)
    return CreditMatch(shares, allocation.remainder)
