"""The reconcile classification: which differences one fine, one payment row or one patron shows
(pure; `bursar.jobs.reconcile` reads the store and writes the reports).

Three sides are compared for every fine:

- **Alma**, as the latest importAlmaFines recorded it: the fee's remaining amount and status.
- **Our ledger**: the Bursar-side lines (trans_burs) — charges and reversals sent, lines still
  waiting to be sent (unexported, or in an export not yet uploaded), and the Alma payments the
  import mirrored (never exported: the original assumes every Alma payment came from the Bursar).
- **The Bursar's payments** (burs_payments): what the Bursar took, what we applied in Alma.

The identities the rules rest on (all amounts Decimal, exact to the cent):

    ledger balance     = charges - reversals - mirrored payments        (sent and pending lines)
    Alma should show   = ledger balance + credits taken from separate credit fees
                         (such a credit lowers the ledger but, in Alma, only the patron's
                         balance, never the credited fee's own remaining amount)
    Alma open now      = Alma's remaining - those credits - our payments applied after the
                         import read Alma (they are in Alma, not yet in the view)
    unapplied          = what the Bursar took for the fine - what we applied of it

Classes (CLASSES below gives each one's one-line explanation and the usual action):

    paid_not_applied   min(unapplied, Alma open now) > 0
    overpaid           unapplied beyond what Alma had open (waiting for a refund)
    reversal_missing   Alma shows the fee closed, the ledger still expects the Bursar to hold
                       money for it
    balance_differs    Alma's remaining differs from what the ledger says Alma should show
    desk_payment       payments the import mirrored beyond the ones we applied: paid in Alma
                       (at the desk) after billing, never reversed at the Bursar
    unknown_reference  a payment row whose reference names no fine of ours
    wrong_patron       a payment row naming our fine but another patron's Emplid
    patron_balance     the All User Balances figure differs from the sum of the patron's fees
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from bursar.rules.money import ZERO

PAID_NOT_APPLIED = "paid_not_applied"
REVERSAL_MISSING = "reversal_missing"
BALANCE_DIFFERS = "balance_differs"
DESK_PAYMENT = "desk_payment"
OVERPAID = "overpaid"
UNKNOWN_REFERENCE = "unknown_reference"
WRONG_PATRON = "wrong_patron"
PATRON_BALANCE = "patron_balance"


@dataclass(frozen=True)
class DiffClass:
    code: str
    title: str
    explanation: str
    action: str
    needs_person: bool = True


CLASSES: dict[str, DiffClass] = {c.code: c for c in (
    DiffClass(PAID_NOT_APPLIED, "Paid at the Bursar, still open in Alma",
              "The Bursar took a payment for this fee that is not (fully) applied in Alma: the pay call "
              "failed, its outcome is unknown, or it was applied for less.",
              "Run importAlmaPayments again; if the row still does not apply, pay the fee in Alma by hand "
              "quoting the Bursar reference."),
    DiffClass(REVERSAL_MISSING, "Closed in Alma, still owed at the Bursar",
              "Alma shows the fee closed (waived, paid or transferred) but the Bursar still holds a charge "
              "for it and no reversal is waiting to be sent.",
              "Check the fee's history in Alma, run importAlmaFines --full and exportBurs; if no reversal "
              "follows, send the Bursar's office a reversal by hand."),
    DiffClass(BALANCE_DIFFERS, "Alma and the ledger differ",
              "Alma's balance for the fee differs from what the ledger billed (net of reversals and "
              "payments) by an amount that no line waiting to be sent explains.",
              "Compare lookupFine with the fee in Alma; re-import with --full; an export error in the "
              "last runs' summaries usually names the fine."),
    DiffClass(DESK_PAYMENT, "Paid in Alma after billing, not reversed at the Bursar",
              "Alma records a payment on this fee, made after it was billed, that did not come from the "
              "Bursar; the Bursar still holds the charge.",
              "Send the Bursar's office a reversal for the amount, or refund the patron if they paid "
              "the Bursar too."),
    DiffClass(OVERPAID, "Overpayment at the Bursar",
              "The Bursar took more for this fee than Alma had left to pay; the rest is waiting for a "
              "refund.",
              "Ask the Bursar's office to refund the patron (or move the credit to another charge)."),
    DiffClass(UNKNOWN_REFERENCE, "Payment for a reference that was never ours",
              "A payment row's Reference Number names no fine that pyBursar ever billed; nothing was "
              "paid in Alma.",
              "Ask the Bursar's office which charge the payment belongs to."),
    DiffClass(WRONG_PATRON, "Payment names another patron's fine",
              "A payment row's Reference Number is one of our fines but its Emplid is not that fine's "
              "patron; nothing was paid in Alma.",
              "Check the row with the Bursar's office; pay the fee in Alma by hand only once it is "
              "clear whose payment it is."),
    DiffClass(PATRON_BALANCE, "Patron balance differs from the sum of their fees",
              "The All User Balances report's balance for the patron differs from the sum of the "
              "patron's fees as the fines report shows them.",
              "Look for the patron's fees outside the ledger (the ignore list, rows the import "
              "reported) or reports refreshed at different times; re-import with --full."),
)}
ORDER = list(CLASSES)  # the order classes are listed in (reports, summary)


@dataclass(frozen=True)
class FineFacts:
    """One fine's three sides, summed from the store.  Money signs: every amount >= 0 except
    `alma_remaining` (a credit fee is negative) and the ledger's pending net."""

    fine: str  # rootAlmaFineId
    patron: str
    alma_remaining: Decimal | None  # None: the import never recorded it (nothing to compare)
    alma_closed: bool
    separate_credits: Decimal = ZERO  # credits taken from other (credit) fees onto this fine
    charged: Decimal = ZERO  # Fine lines sent to the Bursar
    reversed: Decimal = ZERO  # Waive/Credit lines sent (as a positive amount)
    pending: Decimal = ZERO  # net of lines not yet sent (+ charges, - reversals), the export's
    #                          decision on Alma lines not yet exported included
    mirrored: Decimal = ZERO  # Alma payments the import recorded on the Bursar side
    paid: Decimal = ZERO  # what the Bursar took for this fine (rows naming it, its patron's)
    applied: Decimal = ZERO  # what we applied in Alma of those rows
    applied_seen: Decimal = ZERO  # ... of it, what the import has already seen (before its run)
    unapplied: Decimal = ZERO  # paid - applied, over the rows that carry money

    @property
    def ledger_balance(self) -> Decimal:
        return self.charged - self.reversed + self.pending - self.mirrored

    @property
    def alma_expected(self) -> Decimal:
        return self.ledger_balance + self.separate_credits

    @property
    def in_flight(self) -> Decimal:
        """Applied in Alma after the import read it: in Alma, not yet in our view of it."""
        return self.applied - self.applied_seen

    @property
    def alma_open_now(self) -> Decimal:
        if self.alma_remaining is None:
            return ZERO
        rem = ZERO if self.alma_closed else self.alma_remaining
        return max(ZERO, rem - self.separate_credits - self.in_flight)

    @property
    def outstanding(self) -> Decimal:
        """What the Bursar still holds for the fine: billed - reversed - paid there."""
        return self.charged - self.reversed - self.paid


@dataclass(frozen=True)
class Difference:
    code: str
    amount: Decimal
    detail: str = ""

    @property
    def cls(self) -> DiffClass:
        return CLASSES[self.code]


def classify_fine(f: FineFacts) -> list[Difference]:
    """Every difference one fine shows (none when the three sides agree)."""
    out: list[Difference] = []
    if f.unapplied > 0:
        not_applied = min(f.unapplied, f.alma_open_now)
        if not_applied > 0:
            out.append(Difference(PAID_NOT_APPLIED, not_applied,
                                  f"paid {f.paid} at the Bursar, applied {f.applied} in Alma"))
        if f.unapplied - not_applied > 0:
            out.append(Difference(OVERPAID, f.unapplied - not_applied,
                                  f"paid {f.paid} at the Bursar, Alma had {f.alma_open_now + not_applied} open"))
    if f.alma_remaining is not None:
        gap = f.alma_remaining - f.alma_expected
        if gap != 0:
            if f.alma_closed and f.alma_remaining == 0 and gap < 0:
                out.append(Difference(REVERSAL_MISSING, -gap,
                                      f"closed in Alma; the ledger still bills {f.ledger_balance}"))
            else:
                out.append(Difference(BALANCE_DIFFERS, gap,
                                      f"Alma {f.alma_remaining}, the ledger expects {f.alma_expected}"))
    desk = f.mirrored - f.applied_seen
    if desk > 0:
        out.append(Difference(DESK_PAYMENT, desk,
                              f"Alma payments {f.mirrored} after billing, {f.applied_seen} of them ours"))
    return out


@dataclass(frozen=True)
class RowFacts:
    """One Bursar payment row, with what the ledger knows of its reference."""

    reference: str
    emplid: str
    paid: Decimal | None  # None: a malformed row
    ours: bool  # the reference is one of our fines' Bursar parts
    patron: str | None  # that fine's patron


def carries_money(paid: Decimal | None) -> bool:
    """Rows that moved money at the Bursar (malformed, zero and negative rows did not)."""
    return paid is not None and paid > 0


def classify_row(r: RowFacts) -> Difference | None:
    """The difference a payment row shows on its own (None: it belongs to its fine's facts)."""
    if not carries_money(r.paid):
        return None
    assert r.paid is not None
    if not r.ours:
        return Difference(UNKNOWN_REFERENCE, r.paid, f"reference {r.reference} is no fine of ours")
    if r.patron is None or r.emplid.strip() != r.patron.strip():
        return Difference(WRONG_PATRON, r.paid, f"reference {r.reference} is another patron's fine")
    return None


def classify_patron(report_balance: Decimal | None, fees: Decimal) -> Difference | None:
    """The All User Balances figure against the sum of the patron's fees (remaining amounts,
    less the credits taken from separate credit fees, which Alma keeps as their own fees)."""
    if report_balance is None or report_balance == fees:
        return None
    return Difference(PATRON_BALANCE, report_balance - fees, f"report {report_balance}, fees {fees}")


# -- the report's numbers ----------------------------------------------------------------------

AGE_BUCKETS = (("0–30 days", 0, 30), ("31–90 days", 31, 90), ("91–365 days", 91, 365),
               ("over a year", 366, None))


def age_bucket(billed_on: date | None, today: date) -> int:
    """Index into AGE_BUCKETS for a balance billed on `billed_on` (unknown: the oldest)."""
    if billed_on is None:
        return len(AGE_BUCKETS) - 1
    days = max(0, (today - billed_on).days)
    for i, (_, low, high) in enumerate(AGE_BUCKETS):
        if high is None or low <= days <= high:
            return i
    return len(AGE_BUCKETS) - 1  # pragma: no cover - the last bucket has no upper bound


def last_months(today: date, n: int = 13) -> list[str]:
    """The n months ending with today's, oldest first, as YYYY-MM."""
    y, m = today.year, today.month
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


@dataclass
class Totals:
    """The headline totals.  outstanding == billed - reversed - paid, and the ageing buckets
    plus the credit balances add up to outstanding, to the cent."""

    fines: int = 0
    billed_fines: int = 0  # fines with a charge sent (and so on: the summary's counts)
    reversed_fines: int = 0
    paid_fines: int = 0
    applied_fines: int = 0
    billed: Decimal = ZERO
    reversed: Decimal = ZERO
    paid: Decimal = ZERO
    applied: Decimal = ZERO
    ageing: list[Decimal] = field(default_factory=lambda: [ZERO] * len(AGE_BUCKETS))
    ageing_counts: list[int] = field(default_factory=lambda: [0] * len(AGE_BUCKETS))
    credit_balances: Decimal = ZERO  # fines the Bursar was paid more for than it billed (negative)

    @property
    def outstanding(self) -> Decimal:
        return self.billed - self.reversed - self.paid

    def add_fine(self, f: FineFacts, billed_on: date | None, today: date) -> None:
        self.fines += 1
        self.billed_fines += f.charged != 0
        self.reversed_fines += f.reversed != 0
        self.paid_fines += f.paid != 0
        self.applied_fines += f.applied != 0
        self.billed += f.charged
        self.reversed += f.reversed
        self.paid += f.paid
        self.applied += f.applied
        owed = f.outstanding
        if owed > 0:
            i = age_bucket(billed_on, today)
            self.ageing[i] += owed
            self.ageing_counts[i] += 1
        elif owed < 0:
            self.credit_balances += owed


@dataclass
class ClassTotals:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ORDER, 0))
    sums: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(ORDER, ZERO))

    def add(self, d: Difference) -> None:
        self.counts[d.code] += 1
        self.sums[d.code] += d.amount

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def needing_a_person(self) -> list[str]:
        return [code for code in ORDER if self.counts[code] and CLASSES[code].needs_person]


def total(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, ZERO)
