"""Seeded, deterministic Alma-side data for the sandbox: the three Analytics reports and the fees.

Why it exists: tests, the demo and sites trying a configuration need Alma data that behaves like
the real thing (cumulative history, ids, money quirks, credits, re-charges) without an Alma.
Everything comes from one `random.Random(seed)`; no global random state and no wall clock, so a
seed always gives the same worlds.

Shape of the data (docs/alma.md §3 and §5):

* One fines-report row per fee; one transactions-report row per transaction; one balances row per
  patron (sum of the Remaining Amount of all the patron's fees, credits included).
* Every value is the TEXT Analytics would send; None is an absent cell.  Timestamps are
  ``YYYY-MM-DDTHH:MM:SS`` local times; loan/due/return dates ``YYYY-MM-DD`` with times ``HH:MM:SS``.
  Amounts are rendered the way Analytics renders doubles: ``"25"``, ``"4.5"``, ``"0.3"``,
  ``"-999.99"`` (and once ``"0.30000000000000004"``, which must round to 0.30).
* Ids end ``0003841``: Fine Fee Id 16 digits, Transaction Id and Item Loan Id 17 digits (bulk_world:
  all 17).  Emplids are 10 digits, about a quarter with a leading zero.
* A fee without a loan has Item Loan Id ``"-1"`` or an absent cell, Barcode ``"-1"``/absent and
  location ``"-1"``.
* Remaining Amount = Original Amount - Payments - Waives - Credit transactions + "Fine"
  re-charges (of that fee's own transactions).  Fine Fee Status is "Closed" exactly when the
  remaining amount is 0.  Status Date is the time of the fee's latest transaction (its creation
  time before that).  The fee's creation is never a "Fine" transaction.
* Credits follow the original tool's model (docs/ledger.md §8, docs/allocation.md §2): a credit
  is a separate fee of type "Credit" with a negative Original (and Remaining) Amount, the same
  Item Loan Id and Primary Identifier as the fine it credits, and an amount no greater than what
  that fine has been charged net of waives/credits.  It does NOT change the credited fine's own
  Remaining Amount (in Alma the patron's balance carries the credit), so the patron balance
  equals what the import's ledger computes.  A credit never gets a Credit transaction as well
  (that would count it twice); the "Credit" transaction type is used for a credit applied
  directly to a fee without a loan.

generate_days(): world k is the cumulative Analytics state at the end of day ``start + k``.  On top
of ``new_fines_per_day`` random fines per day (some paid/waived the same day; random payments and
waives on earlier fines) the first three days carry these scripted cases.  ``World.cases`` maps
each case name to the Fine Fee Ids involved (listed once all of them exist in that world):

  day 1 (start)
    pre-history ("prehistory"): a few fines 10-40 days before start, some partly or fully paid.
    "waive_after_export"    Overdue fine "4.5", law-stks; fully waived on day 2.
    "paid_same_day"         Damaged item fee "25", paid in full at the desk the same day.
    "shared_loan"           Lost item replacement fee "999.99" + Lost item process fee "25" on one
                            loan (main-stks).  "credit_after_export" = [replacement, credit]: on
                            day 2 a Credit fee "-999.99" with that loan (item found); the exact
                            amount makes the import's allocation pick the replacement fee.
    "recharge"              Overdue fine "10", fully waived on day 1, re-charged on day 2 by a
                            "Fine" transaction "10" (Original Amount unchanged).
    "waived_same_day"       Registration fee "30" (Item Loan Id absent), waived in full same day.
    "credit_transaction"    Card renewal "7.75" (Item Loan Id "-1"), partly paid "2.25" the same
                            day; a Credit transaction "2" on day 3.
    "partial_waive_after_export"  Recalled Overdue fine "12.5", lawres_lw_; waive "2.5" on day 2.
    "paid_then_credited"    [fine, credit]: Damaged item fee "40" (hay-stks), paid in full in Alma
                            on day 2 (after export), Credit fee "-40" on day 3 (a refund).
    "float_noise"           Overdue fine whose Original/Remaining read "0.30000000000000004".
    "tricky_cents"          "Other" "0.25" (noble-ref) and the fees below.
  day 2
    Lost item replacement fee "12345.67" (main_lw_res): partial waive "345.67" on day 3.
    Overdue fine "0.01"; Overdue fine "0.1" paid the same day ("paid_same_day"); "Other" "0.3".
  day 3
    Lost item replacement fee "150" + process fee "0.1" on one loan; Recalled Overdue fine "7.75"
    partly paid "0.01" the same day ("partly_paid_same_day").

bulk_world(): many simple fines (Payment/Waive only) spread evenly over a long history, for
volume tests; ``World.cases`` is empty there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bursar.rules import columns as C

Row = dict[str, "str | None"]

CREDIT = "Credit"
DEBIT_TYPES = [
    "Overdue fine", "Recalled Overdue fine", "Lost item replacement fee", "Lost item process fee",
    "Damaged item fee", "Card renewal", "Other", "Registration fee",
]
# Analytics shows display labels; the fees API shows codes (docs/alma.md §5).  The codes of
# "Card renewal" and "Registration fee" are not known to us: plausible sandbox values.
FEE_TYPE_CODES = {
    "Overdue fine": "OVERDUEFINE",
    "Recalled Overdue fine": "RECALLEDOVERDUEFINE",
    "Lost item replacement fee": "LOSTITEMREPLACEMENTFEE",
    "Lost item process fee": "LOSTITEMPROCESSFEE",
    "Damaged item fee": "DAMAGEDITEMFINE",
    "Card renewal": "CARDRENEWAL",
    "Other": "OTHER",
    "Registration fee": "REGISTRATIONFEE",
    CREDIT: "CREDIT",
}
LOCATIONS = ["law-stks", "lawres_lw_", "main_lw_res", "main-stks", "hay-stks", "noble-ref"]
NO_LOCATION = "-1"
USER_GROUPS = ["Undergraduate", "Graduate", "Faculty", "Staff", "Community borrower"]
_LOANLESS_TYPES = {"Card renewal", "Registration fee", "Other"}
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class ReportPaths:
    """Full Analytics paths of the three reports (what ALMA_REPORT_* settings hold)."""

    fines: str
    transactions: str
    balances: str


_SANDBOX_DIR = "/shared/Sandbox University/Reports/Synchronization"
SANDBOX_REPORTS = ReportPaths(
    f"{_SANDBOX_DIR}/All Fines", f"{_SANDBOX_DIR}/All Transactions", f"{_SANDBOX_DIR}/All User Balances"
)


@dataclass
class World:
    """The Analytics state at the end of `day`: rows keyed by the report headings."""

    day: date
    fines: list[Row]          # keyed by columns.FINES_COLUMNS
    transactions: list[Row]   # keyed by columns.TRANSACTIONS_COLUMNS
    balances: list[Row]       # keyed by columns.BALANCES_COLUMNS
    cases: dict[str, list[str]] = field(default_factory=dict)  # case name -> Fine Fee Ids


# --------------------------------------------------------------------------- rendering helpers

def render_amount(cents: int) -> str:
    """Cents as Analytics renders a double: no trailing zeros, no '.0' ("25", "4.5", "-0.3")."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    if frac == 0:
        return f"{sign}{whole}"
    if frac % 10 == 0:
        return f"{sign}{whole}.{frac // 10}"
    return f"{sign}{whole}.{frac:02d}"


def parse_amount(text: str) -> Decimal:
    """Analytics amount text -> Decimal cents (HALF_UP), e.g. "0.30000000000000004" -> 0.30."""
    return Decimal(text).quantize(_CENT, rounding=ROUND_HALF_UP)


def _ts(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S}"


# --------------------------------------------------------------------------- the simulation model

@dataclass
class _Txn:
    when: datetime
    kind: str        # "Payment" | "Waive" | "Credit" | "Fine" (re-charge)
    cents: int       # > 0
    id: str
    note: str | None


@dataclass
class _Fee:
    id: str
    patron: str
    type: str
    created: datetime
    orig: int                      # cents; negative for a Credit fee
    static: dict[str, str | None]  # item/loan columns, comment and location (never change)
    txns: list[_Txn] = field(default_factory=list)
    orig_text: str | None = None   # exact Analytics text when it is not render_amount(orig)
    random_activity: bool = True   # scripted fees are left alone by the random activity

    @property
    def loan(self) -> str | None:
        return self.static[C.LOAN_ID]

    def remaining(self, cutoff: datetime | None = None) -> int:
        rem = self.orig
        for t in self.txns:
            if cutoff is not None and t.when > cutoff:
                continue
            rem += t.cents if t.kind == "Fine" else -t.cents
        return rem

    def charged_net(self) -> int:
        """What the fee has been charged net of waives/credits (payments don't count)."""
        return self.orig + sum(t.cents if t.kind == "Fine" else -t.cents
                               for t in self.txns if t.kind != "Payment")

    def last_time(self) -> datetime:
        return self.txns[-1].when if self.txns else self.created


_AUTHORS = ["Smith, Jane", "Müller, Hans", "O'Brien, Pat", "García Márquez, Gabriel", "Nakamura, Aiko",
            "Okafor, Chinedu", "Dupont & Fils", None]
_TITLES = ["Critique of Pure Reason", "Torts: Cases & Materials <3rd ed.>", "Über das Gesetz",
           "Linear Algebra Done Right", "The \"Federalist\" Papers", "Constitutional Law (casebook)",
           "Introduction to Algorithms", "Arizona Revised Statutes, vol. 2"]
_CALLS = ["KF 4550 .Z9 S55 2019", "QA 76.73 .P98 L88 2022", "B 2779 .E5 1998", "KF 1250 .P76 2020",
          "JK 155 .H35 2003", "QA 184.2 .A96 2015", None]
_COMMENTS = ["Damaged spine", "Water damage & torn pages", "Patron says \"returned in drop box\"",
             "Replacement cost per vendor <Amazon>", "Café spill on cover", "Late return"]
_NOTES: dict[str, list[str | None]] = {
    "Payment": [None, None, "Paid at circulation desk", "Online payment"],
    "Waive": [None, "Waived: item returned in good condition", "Courtesy waive", "Staff error"],
    "Credit": ["Credit applied", None],
    "Fine": ["Re-charged: waived in error"],
}


class _Sim:
    """Builds the fee history: ids, patrons, fees and their transactions."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.fees: list[_Fee] = []
        self.patrons: list[str] = []
        self.cases: dict[str, list[tuple[str, ...]]] = {}  # name -> groups of Fine Fee Ids
        self._emplids: set[str] = set()
        self.fines_of: dict[str, int] = {}  # patron -> number of fees
        self._fine_seq = 842_351_700 + rng.randrange(10_000)
        self._txn_seq = 1_152_330_000 + rng.randrange(10_000)
        self._loan_seq = 1_061_205_500 + rng.randrange(10_000)
        self._barcode_seq = 31_234_000_000_000 + rng.randrange(100_000)

    # ids -------------------------------------------------------------------------------------
    def fine_id(self) -> str:
        self._fine_seq += self.rng.randint(3, 41)
        return f"{self._fine_seq}0003841"

    def txn_id(self) -> str:
        self._txn_seq += self.rng.randint(1, 17)
        return f"{self._txn_seq}0003841"

    def loan_id(self) -> str:
        self._loan_seq += self.rng.randint(5, 90)
        return f"{self._loan_seq}0003841"

    def new_patron(self) -> str:
        while True:
            if self.rng.random() < 0.25:
                emplid = f"0{self.rng.randrange(100_000_000, 1_000_000_000)}"
            else:
                emplid = str(self.rng.randrange(1_000_000_000, 10_000_000_000))
            if emplid not in self._emplids:
                self._emplids.add(emplid)
                self.fines_of[emplid] = 0
                self.patrons.append(emplid)
                return emplid

    def pick_patron(self) -> str:
        """An existing patron now and then, steering towards a third of patrons with several fines."""
        several = sum(1 for p in self.patrons if self.fines_of[p] > 1)
        below = several * 3 < len(self.patrons)
        if self.patrons and self.rng.random() < (0.5 if below else 0.05):
            return self.rng.choice(self.patrons)
        return self.new_patron()

    # times -----------------------------------------------------------------------------------
    def at(self, day: date, lo_hour: int = 8, hi_hour: int = 17) -> datetime:
        secs = self.rng.randrange(lo_hour * 3600, hi_hour * 3600)
        return datetime.combine(day, time()) + timedelta(seconds=secs)

    def after(self, fee: _Fee, day: date) -> datetime:
        """A time on `day` later than everything already recorded on the fee (before 23:00)."""
        start = max(datetime.combine(day, time(8)), fee.last_time() + timedelta(minutes=5))
        end = datetime.combine(day, time(23))
        if start >= end:  # pragma: no cover - creation times are before 17:00
            raise AssertionError("no room left on that day")
        return start + timedelta(seconds=self.rng.randrange(int((end - start).total_seconds() // 2) + 1))

    # fees ------------------------------------------------------------------------------------
    def item_columns(self, fee_type: str, created: datetime, *, loan: str | None = None,
                     location: str | None = None, loanless_absent: bool | None = None,
                     comment: str | None = None) -> dict[str, str | None]:
        rng = self.rng
        cols: dict[str, str | None] = {c: None for c in
                                       (C.AUTHOR, C.BARCODE, C.CALL_NUMBER, C.DUE_DATE, C.DUE_TIME,
                                        C.LOAN_ID, C.LOAN_DATE, C.LOAN_TIME, C.RETURN_DATE,
                                        C.RETURN_TIME, C.LOAN_DETAILS)}
        cols[C.FINE_COMMENT] = comment if comment is not None else (
            rng.choice(_COMMENTS) if rng.random() < 0.25 else None)
        if fee_type in _LOANLESS_TYPES and loan is None:
            absent = rng.random() < 0.5 if loanless_absent is None else loanless_absent
            cols[C.LOAN_ID] = None if absent else "-1"
            cols[C.BARCODE] = None if absent else "-1"
            cols[C.LOCATION_CODE] = NO_LOCATION
            return cols
        self._barcode_seq += rng.randint(1, 999)
        due = created.date() - timedelta(days=rng.randint(1, 40))
        loaned = due - timedelta(days=rng.choice([7, 14, 21, 28, 120]))
        cols.update({
            C.AUTHOR: rng.choice(_AUTHORS),
            C.BARCODE: str(self._barcode_seq),
            C.CALL_NUMBER: rng.choice(_CALLS),
            C.LOAN_ID: loan or self.loan_id(),
            C.LOAN_DATE: loaned.isoformat(),
            C.LOAN_TIME: f"{rng.randint(8, 20):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            C.DUE_DATE: due.isoformat(),
            C.DUE_TIME: "23:59:00",
            C.LOAN_DETAILS: rng.choice(_TITLES),
            C.LOCATION_CODE: location or rng.choice(LOCATIONS),
        })
        if fee_type in ("Overdue fine", "Recalled Overdue fine", "Damaged item fee"):
            cols[C.RETURN_DATE] = created.date().isoformat()
            cols[C.RETURN_TIME] = f"{created:%H:%M:%S}"
        return cols

    def fee(self, fee_type: str, cents: int, created: datetime, *, patron: str | None = None,
            static: dict[str, str | None] | None = None, scripted: bool = True,
            orig_text: str | None = None, **item: Any) -> _Fee:
        fee = _Fee(
            id=self.fine_id(), patron=patron or self.pick_patron(), type=fee_type, created=created,
            orig=cents, static=static if static is not None else self.item_columns(fee_type, created, **item),
            orig_text=orig_text, random_activity=not scripted,
        )
        self.fees.append(fee)
        self.fines_of[fee.patron] += 1
        return fee

    def credit(self, target: _Fee, cents: int, day: date) -> _Fee:
        """A Credit fee for `target` (same loan and patron) of at most what it was charged."""
        assert target.loan not in (None, "-1") and 0 < cents <= target.charged_net()
        static = dict(target.static)
        static[C.FINE_COMMENT] = "Credit for returned item" if target.type.startswith("Lost") else None
        return self.fee(CREDIT, -cents, self.after(target, day), patron=target.patron, static=static)

    def act(self, fee: _Fee, day: date, kind: str, cents: int) -> _Txn:
        """Record a transaction; Payment/Waive/Credit never exceed the remaining amount."""
        if kind != "Fine" and not 0 < cents <= fee.remaining():
            raise AssertionError(f"{kind} {cents} exceeds remaining {fee.remaining()} on {fee.id}")
        txn = _Txn(self.after(fee, day), kind, cents, self.txn_id(), self.rng.choice(_NOTES[kind]))
        fee.txns.append(txn)
        return txn

    def case(self, name: str, *fees: _Fee) -> None:
        """Record one group of fees showing a case (a group is listed once all of it exists)."""
        self.cases.setdefault(name, []).append(tuple(f.id for f in fees))


# --------------------------------------------------------------------------- random activity

_RANDOM_TYPES = (["Overdue fine"] * 6 + ["Recalled Overdue fine"] * 2 + ["Lost item replacement fee"] * 2
                 + ["Damaged item fee", "Card renewal", "Other", "Registration fee"])


def _random_cents(rng: random.Random, fee_type: str) -> int:
    if fee_type == "Overdue fine":
        return rng.randint(1, 120) * 25
    if fee_type == "Recalled Overdue fine":
        return rng.randint(1, 50) * 100 + rng.choice([0, 50])
    if fee_type == "Lost item replacement fee":
        return rng.randint(2000, 25000)
    if fee_type == "Damaged item fee":
        return rng.randint(5, 100) * 100
    if fee_type == "Card renewal":
        return rng.choice([500, 775, 1000])
    if fee_type == "Registration fee":
        return rng.choice([2500, 3000, 5000])
    return rng.randint(10, 5000)  # Other


def _random_fine(sim: _Sim, day: date) -> None:
    """One random new fine (a lost-item pair sometimes), maybe paid or waived the same day."""
    rng = sim.rng
    fee_type = rng.choice(_RANDOM_TYPES)
    created = sim.at(day)
    fee = sim.fee(fee_type, _random_cents(rng, fee_type), created, scripted=False)
    if fee_type == "Lost item replacement fee" and rng.random() < 0.7:
        process = sim.fee("Lost item process fee", rng.choice([1500, 2500]), created, patron=fee.patron,
                          static=dict(fee.static), scripted=False)
        process.static[C.FINE_COMMENT] = None
    r = rng.random()
    if r < 0.2:
        sim.act(fee, day, "Payment", fee.remaining())
    elif r < 0.3:
        sim.act(fee, day, "Waive", fee.remaining())


def _random_activity(sim: _Sim, day: date) -> None:
    """Payments and waives (partial and full) on a few earlier, still active, random fines."""
    rng = sim.rng
    earlier = [f for f in sim.fees if f.random_activity and f.created.date() < day and f.remaining() > 0]
    for fee in rng.sample(earlier, min(len(earlier), 3)):
        rem = fee.remaining()
        kind = rng.choice(["Payment", "Payment", "Waive"])
        cents = rem if (rem == 1 or rng.random() < 0.5) else rng.randint(1, rem - 1)
        sim.act(fee, day, kind, cents)


# --------------------------------------------------------------------------- scripted cases

def _script_day1(sim: _Sim, d: date, later: list[tuple[int, Any]]) -> None:
    rng = sim.rng
    for _ in range(5):  # pre-history, 10-40 days before start
        back = d - timedelta(days=rng.randint(10, 40))
        fee_type = rng.choice(_RANDOM_TYPES)
        fee = sim.fee(fee_type, _random_cents(rng, fee_type), sim.at(back), scripted=False)
        sim.case("prehistory", fee)  # one group per fee: listed individually
        if rng.random() < 0.6:
            rem = fee.remaining()
            sim.act(fee, back + timedelta(days=rng.randint(0, 5)), "Payment",
                    rem if rem == 1 or rng.random() < 0.4 else rng.randint(1, rem - 1))

    f = sim.fee("Overdue fine", 450, sim.at(d), location="law-stks")
    sim.case("waive_after_export", f)
    later.append((1, lambda day, f=f: sim.act(f, day, "Waive", f.remaining())))

    f = sim.fee("Damaged item fee", 2500, sim.at(d, 8, 12), location="main-stks")
    sim.act(f, d, "Payment", 2500)
    sim.case("paid_same_day", f)

    repl = sim.fee("Lost item replacement fee", 99999, sim.at(d), location="main-stks")
    proc = sim.fee("Lost item process fee", 2500, repl.created, patron=repl.patron, static=dict(repl.static))
    sim.case("shared_loan", repl, proc)

    def credit_found(day: date, repl: _Fee = repl) -> None:
        sim.case("credit_after_export", repl, sim.credit(repl, 99999, day))
    later.append((1, credit_found))

    f = sim.fee("Overdue fine", 1000, sim.at(d, 8, 12), location="hay-stks")
    sim.act(f, d, "Waive", 1000)
    sim.case("recharge", f)
    later.append((1, lambda day, f=f: sim.act(f, day, "Fine", 1000)))

    f = sim.fee("Registration fee", 3000, sim.at(d, 8, 12), loanless_absent=True)
    sim.act(f, d, "Waive", 3000)
    sim.case("waived_same_day", f)

    f = sim.fee("Card renewal", 775, sim.at(d, 8, 12), loanless_absent=False)
    sim.act(f, d, "Payment", 225)
    sim.case("credit_transaction", f)
    later.append((2, lambda day, f=f: sim.act(f, day, "Credit", 200)))

    f = sim.fee("Recalled Overdue fine", 1250, sim.at(d), location="lawres_lw_")
    sim.case("partial_waive_after_export", f)
    later.append((1, lambda day, f=f: sim.act(f, day, "Waive", 250)))

    f = sim.fee("Damaged item fee", 4000, sim.at(d), location="hay-stks")
    later.append((1, lambda day, f=f: sim.act(f, day, "Payment", 4000)))

    def refund(day: date, f: _Fee = f) -> None:
        sim.case("paid_then_credited", f, sim.credit(f, 4000, day))
    later.append((2, refund))

    f = sim.fee("Overdue fine", 30, sim.at(d), orig_text="0.30000000000000004", location="main-stks")
    sim.case("float_noise", f)

    f = sim.fee("Other", 25, sim.at(d), location="noble-ref", comment="Lost locker key")
    sim.case("tricky_cents", f)


def _script_day2(sim: _Sim, d: date, later: list[tuple[int, Any]]) -> None:
    big = sim.fee("Lost item replacement fee", 1234567, sim.at(d), location="main_lw_res")
    later.append((2, lambda day, f=big: sim.act(f, day, "Waive", 34567)))
    penny = sim.fee("Overdue fine", 1, sim.at(d), location="main-stks")
    dime = sim.fee("Overdue fine", 10, sim.at(d, 8, 12), location="noble-ref")
    sim.act(dime, d, "Payment", 10)
    sim.case("paid_same_day", dime)
    other = sim.fee("Other", 30, sim.at(d), loanless_absent=False)
    for f in (big, penny, dime, other):
        sim.case("tricky_cents", f)


def _script_day3(sim: _Sim, d: date, later: list[tuple[int, Any]]) -> None:
    repl = sim.fee("Lost item replacement fee", 15000, sim.at(d), location="main_lw_res")
    proc = sim.fee("Lost item process fee", 10, repl.created, patron=repl.patron, static=dict(repl.static))
    sim.case("shared_loan", repl, proc)
    f = sim.fee("Recalled Overdue fine", 775, sim.at(d, 8, 12), location="law-stks")
    sim.act(f, d, "Payment", 1)
    sim.case("partly_paid_same_day", f)
    for g in (repl, proc, f):
        sim.case("tricky_cents", g)


_SCRIPTS = [_script_day1, _script_day2, _script_day3]


# --------------------------------------------------------------------------- rendering a world

def _fine_row(fee: _Fee, cutoff: datetime) -> Row:
    seen = [t for t in fee.txns if t.when <= cutoff]
    rem = fee.remaining(cutoff)
    values: dict[str, str | None] = dict(fee.static)
    values.update({
        C.FINE_CREATED: _ts(fee.created),
        C.FINE_ID: fee.id,
        C.FINE_STATUS: "Closed" if rem == 0 else "Active",
        C.FINE_TYPE: fee.type,
        C.STATUS_DATE: _ts(seen[-1].when if seen else fee.created),
        C.PRIMARY_ID: fee.patron,
        C.ORIGINAL_AMOUNT: fee.orig_text or render_amount(fee.orig),
        C.REMAINING_AMOUNT: (fee.orig_text if (fee.orig_text and rem == fee.orig)
                             else render_amount(rem)),
    })
    return {c: values.get(c) for c in C.FINES_COLUMNS}


def _txn_row(fee: _Fee, t: _Txn) -> Row:
    return {
        C.FINE_ID: fee.id, C.TRANS_CREATED: _ts(t.when), C.TRANS_ID: t.id, C.TRANS_TYPE: t.kind,
        C.TRANS_NOTE: t.note, C.LOAN_ID: fee.loan, C.PRIMARY_ID: fee.patron,
        C.TRANS_AMOUNT: render_amount(t.cents),
    }


def _balances(per_patron: dict[str, int]) -> list[Row]:
    return [{C.PRIMARY_ID: p, C.REMAINING_AMOUNT: render_amount(c)} for p, c in sorted(per_patron.items())]


def _render(sim: _Sim, day: date) -> World:
    cutoff = datetime.combine(day, time(23, 59, 59))
    fees = sorted((f for f in sim.fees if f.created <= cutoff), key=lambda f: (f.created, f.id))
    fines = [_fine_row(f, cutoff) for f in fees]
    txns = sorted(((t.when, t.id, f) for f in fees for t in f.txns if t.when <= cutoff),
                  key=lambda x: (x[0], x[1]))
    transactions = [_txn_row(f, next(t for t in f.txns if t.id == tid)) for _, tid, f in txns]
    per_patron: dict[str, int] = {}
    for f in fees:
        per_patron[f.patron] = per_patron.get(f.patron, 0) + f.remaining(cutoff)
    present = {f.id for f in fees}
    cases: dict[str, list[str]] = {}
    for name, groups in sim.cases.items():
        ids = [i for g in groups if all(x in present for x in g) for i in g]
        if ids:
            cases[name] = ids
    return World(day, fines, transactions, _balances(per_patron), cases)


def generate_days(*, seed: int = 20261128, start: date = date(2026, 3, 2), days: int = 3,
                  new_fines_per_day: int = 12) -> list[World]:
    """Cumulative Analytics worlds for `days` consecutive days (world k = end of day start+k).

    The scripted cases (module docstring) occupy the first three days; `new_fines_per_day`
    random fines are added on every day on top of them.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    sim = _Sim(random.Random(seed))
    later: list[tuple[int, Any]] = []  # (day index, action) scheduled by the scripts
    horizon = max(days, len(_SCRIPTS))
    for k in range(horizon):
        d = start + timedelta(days=k)
        if k < len(_SCRIPTS):
            _SCRIPTS[k](sim, d, later)
        for _, action in [x for x in later if x[0] == k]:
            action(d)
        _random_activity(sim, d)
        for _ in range(new_fines_per_day):
            _random_fine(sim, d)
    return [_render(sim, start + timedelta(days=k)) for k in range(days)]


# --------------------------------------------------------------------------- bulk data

def bulk_world(n_fines: int, *, seed: int = 1, trans_per_fine: int = 3, today: date = date(2026, 11, 27),
               history_days: int = 3 * 365) -> World:
    """`n_fines` fines with `trans_per_fine` Payment/Waive transactions each, spread evenly over
    the `history_days` ending at `today`, so a 7-day incremental import sees about 1% of rows.

    Built with plain string formatting and shared strings: 100,000 fines in a few seconds.
    """
    rng = random.Random(seed)
    rand, randrange = rng.random, rng.randrange
    first = today - timedelta(days=history_days - 1)
    day_text = [(first + timedelta(days=k)).isoformat() for k in range(history_days)]
    n_patrons = max(1, n_fines // 3)
    patrons = [f"{987_654_321 + j * 7919:010d}" for j in range(n_patrons)]
    types = ["Overdue fine"] * 3 + DEBIT_TYPES
    amounts: dict[int, str] = {}  # one shared string per amount keeps 100k fines compact

    def amount(cents: int) -> str:
        text = amounts.get(cents)
        if text is None:
            text = amounts[cents] = render_amount(cents)
        return text
    cols_f, cols_t = C.FINES_COLUMNS, C.TRANSACTIONS_COLUMNS
    # 10-digit prefixes: 17-digit ids ending 0003841
    fine_base, txn_base, loan_base = 5_000_000_000 + randrange(10**6), 1_200_000_000, 2_000_000_000
    min_cents = max(100, trans_per_fine)
    fines: list[Row] = []
    transactions: list[Row] = []
    balance = [0] * n_patrons
    count = [0] * n_patrons
    kinds = ("Payment", "Waive")
    for i in range(n_fines):
        day = i * history_days // n_fines
        fee_type = types[i % len(types)]
        patron_ix = randrange(n_patrons)
        patron = patrons[patron_ix]
        fine_id = f"{fine_base + i * 7}0003841"
        created = f"{day_text[day]}T{8 + i % 9:02d}:{i % 60:02d}:{(i * 7) % 60:02d}"
        orig = randrange(min_cents, 20_000)
        rem = orig
        last = created
        if fee_type in _LOANLESS_TYPES:
            loan = barcode = "-1"
            location = NO_LOCATION
            title = author = call = loan_date = due_date = due_time = loan_time = None
        else:
            loan = f"{loan_base + i * 3}0003841"
            barcode = str(31_000_000_000_000 + i)
            location = LOCATIONS[i % len(LOCATIONS)]
            title, author, call = _TITLES[i % 8], _AUTHORS[i % 7], _CALLS[i % 6]
            loan_date, due_date = day_text[max(0, day - 30)], day_text[max(0, day - 2)]
            loan_time, due_time = "10:15:00", "23:59:00"
        tday = day
        for k in range(trans_per_fine):
            left = trans_per_fine - k - 1          # transactions still to come need 1 cent each
            span = (rem - left) * 3 // 5       # integer cents only; leaves room for the rest
            amt = rem if (left == 0 and rand() < 0.5) else (1 + randrange(span) if span > 0 else 1)
            rem -= amt
            tday = min(history_days - 1, tday + (1 if rand() < 0.4 else 0))
            when = f"{day_text[tday]}T{18 + k % 5:02d}:{(i + k) % 60:02d}:{k % 60:02d}"
            last = max(last, when)  # ISO text sorts chronologically
            transactions.append(dict(zip(cols_t, (
                fine_id, when, f"{txn_base + i * trans_per_fine + k}0003841", kinds[(i + k) % 2], None,
                loan, patron, amount(amt)))))
        balance[patron_ix] += rem
        count[patron_ix] += 1
        fines.append(dict(zip(cols_f, (
            None, created, fine_id, "Closed" if rem == 0 else "Active", fee_type, last, author, barcode,
            call, due_date, due_time, loan, loan_date, loan_time, None, None, title, patron, location,
            amount(orig), amount(rem)))))
    balances: list[Row] = [{C.PRIMARY_ID: p, C.REMAINING_AMOUNT: render_amount(b)}
                for p, b, n in zip(patrons, balance, count) if n]  # only patrons with fines
    return World(today, fines, transactions, balances)


# --------------------------------------------------------------------------- installing

def user_group(patron: str | None) -> str:
    """The sandbox patron's Alma user group: a fixed function of the id (no random draw, so the
    worlds of a seed are the same with or without the column)."""
    digits = "".join(ch for ch in patron or "" if ch.isdigit())
    return USER_GROUPS[int(digits or "0") % len(USER_GROUPS)]


def install_world(server: Any, world: World, paths: ReportPaths = SANDBOX_REPORTS, *,
                  user_groups: bool = False) -> None:
    """Load a world into a sandbox Alma server: the three reports plus one fee per fines row.
    `user_groups`: the fines report also has the optional column columns.USER_GROUP.

    Duck-typed on `set_report` and `set_fee` so this module does not depend on the server.
    """
    if user_groups:
        server.set_report(paths.fines, [*C.FINES_COLUMNS, C.USER_GROUP],
                          [{**row, C.USER_GROUP: user_group(row[C.PRIMARY_ID])} for row in world.fines])
    else:
        server.set_report(paths.fines, list(C.FINES_COLUMNS), world.fines)
    server.set_report(paths.transactions, list(C.TRANSACTIONS_COLUMNS), world.transactions)
    server.set_report(paths.balances, list(C.BALANCES_COLUMNS), world.balances)
    for row in world.fines:
        fee_type = row[C.FINE_TYPE] or "Other"
        server.set_fee(
            row[C.PRIMARY_ID], row[C.FINE_ID],
            balance=parse_amount(row[C.REMAINING_AMOUNT] or "0"),
            original_amount=parse_amount(row[C.ORIGINAL_AMOUNT] or "0"),
            status="CLOSED" if row[C.FINE_STATUS] == "Closed" else "ACTIVE",
            type_code=FEE_TYPE_CODES.get(fee_type, "OTHER"), type_desc=fee_type,
        )


__all__ = [
    "ReportPaths", "SANDBOX_REPORTS", "World", "generate_days", "bulk_world", "install_world",
    "render_amount", "parse_amount", "FEE_TYPE_CODES", "DEBIT_TYPES", "LOCATIONS", "USER_GROUPS", "user_group",
]
