"""The sandbox Bursar's cumulative payment CSV files, and the Alma side of paying them.

Why it exists: Direction 2 (docs/ledger.md §11) needs payment files that agree with the sandbox's Alma
world (bursar/sandbox/generator.py): patrons pay at the Bursar against fines the Bursar was
charged for on an earlier day, and the files are cumulative over a yearly date range that resets.
After pyBursar pays those rows in the sandbox Alma, the next Analytics refresh must show the
payments: `fold_payments` adds them to a world, and `install_world_keeping_payments` loads it
into the server without losing the fees' transaction lists (SandboxAlma.set_fee replaces a fee
wholesale, transactions included, which install_world alone would do).

Files (one per world day k, name f"{PAYMENTS_PREFIX}_{range_start}_{range_end}_{day}.csv"):

* Columns, in this order: Emplid, Date Paid, Reference Number, Charge Amount, Paid Amount,
  Item Type, Charge Description, Term (the last one is not used by pyBursar: it must be ignored).
* Each file holds every row of the previous file, in the same order, plus the rows dated that
  day.  A row: Emplid = the fine's Primary Identifier, Reference Number = its Fine Fee Id, Date
  Paid = the day (MM/DD/YYYY), Charge Amount = its Original Amount, Paid Amount as the patron
  paid.  Payments are made on day k only against fines that were Active in world k-1 (so the
  Bursar was charged) and are still Active in world k.  A row never pays more than the lowest
  remaining amount the later worlds show (less what pyBursar paid before), so the generator's
  desk activity and pyBursar's payments never overdraw a fee (see _Planner).
* Day 0 has no payments: its file is the header only.
* Files of even days start with a UTF-8 BOM and use CRLF; files of odd days are plain LF.  The
  same row thus appears in both forms and must keep its key.
* A blank line follows the first day's block of rows.
* `reset_on`: files dated on/after it cover the new yearly range (the range in the name starts
  at reset_on) and hold only rows dated on/after it; earlier rows disappear from the files.

Row cases (PaymentFile.cases maps each to the Reference Numbers in that file).  Each case is
tried on its day (day 1 = the first payment day, day 2 = the second, or day 1 again when there
is only one) and on the following days until a fine fits; with the default seeds every case is
present for 2 or more worlds (tests check it), other seeds may leave a rare case out.

  day 1  "leading_zero"     a payment by an Emplid starting with 0
         "partial"          a payment of part of the balance ("paid_in_steps" pays the rest)
         "full"             payments of exactly the balance
         "quoted_comma"     a full payment whose Charge Description is quoted, with a comma and
                            quotes inside
         "repeat"           two identical rows: both are paid
         "zero_charge"      Charge Amount 0.00 (and Paid Amount 0.00): never paid
         "malformed"        a Paid Amount like "12.5O" (letter O): a bad row, never paid
  day 2  "paid_in_steps"    the rest of the "partial" fine's balance
         "overpayment"      Paid Amount greater than the Alma balance: the balance is paid
         "zero_payment"     Paid Amount 0.00: never paid
         "unknown_reference"  a Reference Number that is no fine (ends 0009999): never paid
         "closed_in_alma"   a fine charged earlier that Alma has closed since (waived or paid at
                            the desk): Alma answers the closed-fee error, nothing is paid
  every payment day two ordinary "partial"/"full" payments when fines are left.
  "reset_dropped"         in files after a reset: the references whose rows disappeared.
  Rows that pay nothing (zero_*, malformed) may name any charged Active fine, scripted
  generator cases included; rows that pay never touch a scripted case, a credit or a credited
  fine.

PaymentFile.expected maps each Fine Fee Id to the total pyBursar should have paid in Alma once
it has processed this file and every earlier one (min(paid, balance) per row, in file order).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import random
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bursar.rules import columns as C
from bursar.rules.money import ZERO, to_cents, to_money
from bursar.sandbox.generator import CREDIT, Row, World, install_world, parse_amount, render_amount

PAYMENTS_PREFIX = "ASUSASF_LIBRARY_REPORT_DTRANGE"
HEADER = ["Emplid", "Date Paid", "Reference Number", "Charge Amount", "Paid Amount", "Item Type",
          "Charge Description", "Term"]
BOM = b"\xef\xbb\xbf"
UNKNOWN_SUFFIX = "0009999"  # Fine Fee Ids end 0003841, so this never names a fine


@dataclass(frozen=True)
class PaymentFile:
    """One day's cumulative payments file as the Bursar would put it on the SFTP server."""

    name: str
    data: bytes
    day: date
    cases: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)
    expected: dict[str, Decimal] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class _Row:
    day: date
    emplid: str
    reference: str
    charge: str
    paid: str
    item_type: str
    description: str
    cases: tuple[str, ...]

    def cells(self) -> list[str]:
        return [self.emplid, f"{self.day:%m/%d/%Y}", self.reference, self.charge, self.paid,
                self.item_type, self.description, _term(self.day)]


def _term(day: date) -> str:
    """2YYT term code (T = 1 Jan-May, 4 Jun-Jul, 7 Aug-Dec): an extra column pyBursar ignores."""
    return f"2{day:%y}{1 if day.month <= 5 else 4 if day.month <= 7 else 7}"


def _money_text(amount: Decimal) -> str:
    return f"{to_money(amount):f}"


def _year_end(start: date) -> date:
    try:
        return start.replace(year=start.year + 1) - timedelta(days=1)
    except ValueError:  # 29 February
        return start.replace(year=start.year + 1, day=28)


CENT = Decimal("0.01")
# case -> (the payment day it is first tried on: 0 = the first, 1 = the second)
_CASE_DAYS = {"leading_zero": 0, "partial": 0, "full": 0, "repeat": 0, "overpayment": 1,
              "paid_in_steps": 1, "unknown_reference": 1, "closed_in_alma": 1, "zero_charge": 0,
              "malformed": 0, "zero_payment": 1}  # rows that pay come first: they are pickier


def _by_fine_id(fines: list[Row]) -> dict[str, dict[str, Any]]:
    """One world's fines by Fine Fee Id (the generator gives every fine one)."""
    by_id: dict[str, dict[str, Any]] = {}
    for fine in fines:
        fid = fine[C.FINE_ID]
        if fid is None:
            raise AssertionError(f"a generated fine has no {C.FINE_ID}")
        by_id[fid] = fine
    return by_id


class _Planner:
    """Chooses the fines each day's rows are about and tracks what Alma's balance will be.

    The generator's worlds know nothing of pyBursar's payments, and its desk activity may touch
    a fine after the Bursar was paid for it.  So on day k no fine is paid more than `cap`: the
    lowest remaining amount the worlds show from day k on, less what pyBursar paid before.  Then
    a folded world never goes below zero, and a "full" payment is only made where cap equals
    the balance (the generator never reduces that fine again)."""

    def __init__(self, worlds: list[World], rng: random.Random):
        self.worlds = worlds
        self.rng = rng
        self.fines = [_by_fine_id(w.fines) for w in worlds]
        last = worlds[-1]
        self.scripted = {i for name, ids in last.cases.items() if name != "prehistory" for i in ids}
        self.credit_loans = {f[C.LOAN_ID] for f in last.fines if f[C.FINE_TYPE] == CREDIT}
        self.used: set[str] = set()
        self.applied: dict[str, Decimal] = {}  # fine id -> what pyBursar will have paid
        self.steps: tuple[dict[str, Any], int, Decimal] | None = None  # "partial" fine, day, amount

    # -- what Alma will say --------------------------------------------------------------------

    def _remaining(self, k: int, fid: str) -> Decimal:
        row = self.fines[k].get(fid)
        return parse_amount(row[C.REMAINING_AMOUNT] or "0") if row else ZERO

    def balance(self, k: int, fid: str) -> Decimal:
        """Alma's balance for a fee on day k: the world's remaining amount less our payments."""
        return self._remaining(k, fid) - self.applied.get(fid, ZERO)

    def cap(self, k: int, fid: str) -> Decimal:
        """The most pyBursar may pay on day k without a later world overdrawing the fee."""
        lowest = min(self._remaining(j, fid) for j in range(k, len(self.worlds)))
        return lowest - self.applied.get(fid, ZERO)

    def settle(self, k: int, row: _Row) -> None:
        """Record what the payments job will pay for `row` on day k (the rules of docs/ledger.md §11)."""
        fine = self.fines[k].get(row.reference)
        if fine is None or fine[C.FINE_STATUS] != "Active":
            return
        try:
            paid, charge = to_money(row.paid), to_money(row.charge)
        except ValueError:
            return  # a malformed row
        if paid <= 0 or charge == 0:
            return
        amount = min(paid, self.balance(k, row.reference))
        if amount > 0:
            self.applied[row.reference] = self.applied.get(row.reference, ZERO) + amount

    # -- choosing fines ------------------------------------------------------------------------

    def pick(self, k: int, *, full: bool = False, at_least: Decimal = CENT, leading_zero: bool = False,
             partly_paid: bool = False, paying: bool = True) -> dict[str, Any] | None:
        """A fine a patron may pay at the Bursar on day k: charged (Active the day before) and
        still Active.  A row that pays something also needs a fine that is no credit, not
        credited, not one of the generator's scripted cases, with a cap of at least `at_least`
        (equal to the balance when `full`); a row that pays nothing takes another fine if it can
        (nothing is paid, so nothing can collide), leaving those to the rows that pay."""
        good: list[dict[str, Any]] = []
        fallback: list[dict[str, Any]] = []
        for fid, row in sorted(self.fines[k - 1].items()):
            now = self.fines[k].get(fid)
            if (fid in self.used or row[C.FINE_STATUS] != "Active" or now is None
                    or now[C.FINE_STATUS] != "Active" or row[C.FINE_TYPE] == CREDIT):
                continue
            if leading_zero and not (row[C.PRIMARY_ID] or "").startswith("0"):
                continue
            cap, balance = self.cap(k, fid), self.balance(k, fid)
            if (fid not in self.scripted and row[C.LOAN_ID] not in self.credit_loans
                    and cap >= at_least and (not full or cap == balance)):
                good.append(row)
            elif not paying:
                fallback.append(row)
        if partly_paid:
            good = [r for r in good if r[C.REMAINING_AMOUNT] != r[C.ORIGINAL_AMOUNT]] or good
        rows = (good or fallback) if paying else (fallback or good)
        if not rows:
            return None
        row = self.rng.choice(rows)
        self.used.add(row[C.FINE_ID])
        return row

    def closed_since(self, k: int, *, take: bool = True) -> dict[str, Any] | None:
        """A fine Active on an earlier day (so charged at the Bursar) and Closed in Alma on day k."""
        found = []
        for fid, row in sorted(self.fines[k].items()):
            if fid in self.used or row[C.FINE_STATUS] != "Closed" or row[C.FINE_TYPE] == CREDIT:
                continue
            if any((earlier.get(fid) or {}).get(C.FINE_STATUS) == "Active" for earlier in self.fines[:k]):
                found.append(row)
        if not found or not take:
            return found[0] if found else None
        plain = [r for r in found if r[C.FINE_ID] not in self.scripted]
        row = self.rng.choice(plain or found)
        self.used.add(row[C.FINE_ID])
        return row

    # -- rows ----------------------------------------------------------------------------------

    def row(self, day: date, fine: dict[str, Any], paid: Decimal | str, cases: tuple[str, ...], *,
            charge: Decimal | None = None, description: str | None = None) -> _Row:
        original = charge if charge is not None else parse_amount(fine[C.ORIGINAL_AMOUNT] or "0")
        fee_type = fine[C.FINE_TYPE] or "Other"
        return _Row(day, fine[C.PRIMARY_ID], fine[C.FINE_ID], _money_text(original),
                    paid if isinstance(paid, str) else _money_text(paid),
                    "Library Fee" if "fee" in fee_type.lower() else "Library Fine",
                    description or f"Library {fee_type}", cases)


def _place(p: _Planner, case: str, k: int, last: int) -> list[_Row]:
    """The rows showing `case` on payment day k, or [] when no fine fits that day."""
    day = p.worlds[k].day
    if case == "unknown_reference":
        patron = p.rng.choice(sorted({pid for f in p.worlds[k].fines if (pid := f[C.PRIMARY_ID]) is not None}))
        reference = f"{p.rng.randrange(842_000_000, 843_000_000)}{UNKNOWN_SUFFIX}"
        return [_Row(day, patron, reference, "15.00", "15.00", "Library Fine", "Library Overdue fine",
                     ("unknown_reference",))]
    if case == "closed_in_alma":
        fine = p.closed_since(k)
        return [p.row(day, fine, parse_amount(fine[C.ORIGINAL_AMOUNT] or "0"), (case,))] if fine else []
    if case == "paid_in_steps":
        if p.steps is None or (p.steps[1] == k and k != last):
            return []
        fine, when, part = p.steps
        rest = p.cap(k, fine[C.FINE_ID]) - (part if when == k else ZERO)
        return [p.row(day, fine, rest, (case,))] if rest > 0 else []
    fine = p.pick(k, full=case in ("partial", "full", "overpayment"), leading_zero=case == "leading_zero",
                  partly_paid=case == "overpayment",
                  paying=case not in ("zero_charge", "zero_payment", "malformed"),
                  at_least={"partial": Decimal("1.00"), "repeat": Decimal("0.02")}.get(case, CENT))
    if fine is None:
        return []
    fid = fine[C.FINE_ID]
    cap, balance = p.cap(k, fid), p.balance(k, fid)
    if case == "leading_zero":
        return [p.row(day, fine, cap, (case, "full" if cap == balance else "partial"))]
    if case == "repeat":
        each = max(CENT, to_money(cap / 4))
        return [p.row(day, fine, each, (case,)), p.row(day, fine, each, (case,))]
    if case == "partial":
        part = to_money(balance * Decimal(p.rng.choice([25, 40, 50, 60])) / 100)
        p.steps = (fine, k, part)
        return [p.row(day, fine, part, (case,))]
    if case == "full":
        title = fine[C.LOAN_DETAILS] or fine[C.BARCODE] or "no item"
        return [p.row(day, fine, balance, ("full", "quoted_comma"),
                      description=f'{fine[C.FINE_TYPE]}, "{title}"')]
    if case == "overpayment":
        original = parse_amount(fine[C.ORIGINAL_AMOUNT] or "0")
        return [p.row(day, fine, original if original > balance else balance + Decimal("5.00"), (case,))]
    if case == "zero_charge":
        return [p.row(day, fine, ZERO, (case,), charge=ZERO)]
    if case == "zero_payment":
        return [p.row(day, fine, ZERO, (case,))]
    if case == "malformed":
        return [p.row(day, fine, _money_text(balance)[:-1] + "O", (case,))]
    raise AssertionError(case)


def _plan(p: _Planner) -> tuple[list[list[_Row]], list[dict[str, Decimal]]]:
    """Rows per world day (day 0 has none) and, per day, what pyBursar will have paid per fine
    by then.  Each case is tried from its first day on until a fine fits it."""
    pay_days = list(range(1, len(p.worlds)))
    daily: list[list[_Row]] = [[]]
    expected: list[dict[str, Decimal]] = [{}]
    if not pay_days:
        return daily, expected
    first, last = pay_days[0], pay_days[-1]
    second = pay_days[1] if len(pay_days) > 1 else first
    earliest = {case: (first, second)[d] for case, d in _CASE_DAYS.items()}
    if not any(p.closed_since(j, take=False) for j in pay_days if j >= second):
        earliest["closed_in_alma"] = first  # Alma closed no charged fine late enough
    pending = list(_CASE_DAYS)
    for k in pay_days:
        rows: list[_Row] = []
        for case in [c for c in pending if earliest[c] <= k]:
            placed = _place(p, case, k, last)
            if placed:
                rows += placed
                pending.remove(case)
        for _ in range(2):  # ordinary payments
            fine = p.pick(k)
            if fine is None:
                break
            cap, balance = p.cap(k, fine[C.FINE_ID]), p.balance(k, fine[C.FINE_ID])
            day = p.worlds[k].day
            if cap == balance and (balance < Decimal("0.02") or p.rng.random() < 0.5):
                rows.append(p.row(day, fine, balance, ("full",)))
            else:
                rows.append(p.row(day, fine, max(CENT, to_money(cap / 2)), ("partial",)))
        p.rng.shuffle(rows)
        for row in rows:
            p.settle(k, row)
        daily.append(rows)
        expected.append(dict(sorted(p.applied.items())))
    return daily, expected


def _render(rows_by_day: list[list[_Row]], crlf: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(HEADER)
    for i, rows in enumerate(rows_by_day):
        writer.writerows(r.cells() for r in rows)
        if i == 0:
            out.write("\r\n" if crlf else "\n")  # the blank line after the first block
    return (BOM if crlf else b"") + out.getvalue().encode("utf-8")


def payment_files(worlds: list[World], *, seed: int = 20261128, range_start: date = date(2025, 7, 1),
                  reset_on: date | None = None) -> list[PaymentFile]:
    """One cumulative payments file per world day (see the module docstring for the cases)."""
    if not worlds:
        return []
    daily, expected = _plan(_Planner(worlds, random.Random(seed)))
    files = []
    for k, world in enumerate(worlds):
        start = range_start
        blocks = [rows for rows in daily[:k + 1] if rows]
        dropped: list[_Row] = []
        if reset_on is not None and world.day >= reset_on:
            start = reset_on
            dropped = [r for rows in blocks for r in rows if r.day < reset_on]
            blocks = [kept for rows in blocks if (kept := [r for r in rows if r.day >= reset_on])]
        cases: dict[str, list[str]] = {}
        for row in (r for rows in blocks for r in rows):
            for case in row.cases:
                if row.reference not in cases.setdefault(case, []):
                    cases[case].append(row.reference)
        if dropped:
            cases["reset_dropped"] = list(dict.fromkeys(r.reference for r in dropped))
        name = f"{PAYMENTS_PREFIX}_{start:%Y%m%d}_{_year_end(start):%Y%m%d}_{world.day:%Y%m%d}.csv"
        files.append(PaymentFile(name, _render(blocks, crlf=k % 2 == 0), world.day, cases, expected[k]))
    return files


def payment_cases(files: Iterable[PaymentFile]) -> dict[str, list[str]]:
    """Every case of a series of files, case -> Reference Numbers (first seen first)."""
    merged: dict[str, list[str]] = {}
    for f in files:
        for case, refs in f.cases.items():
            bucket = merged.setdefault(case, [])
            bucket.extend(r for r in refs if r not in bucket)
    return merged


# --------------------------------------------------------------------------- the Alma side

def _txn_id(seed: str) -> str:
    """A 17-digit Alma-looking transaction id derived from the pay call (stable across folds)."""
    n = int(hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16], 16)
    return f"{1_000_000_000 + n % 9_000_000_000}0003841"


def _ts(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S}"


def fold_payments(world: World, pay_calls: list[dict[str, Any]], *, now: datetime) -> World:
    """The Analytics refresh after pyBursar paid fees in the sandbox Alma: a copy of `world`
    with each pay call as a "Payment" transaction and the fine's amounts and status updated.

    A pay call may carry a "time" (datetime) of when it was made; calls later than `now` are
    not visible yet, and a call without one is taken as made at `now`.  Callers that fold more
    than once should stamp their calls, so a payment's date does not move between refreshes.
    Folding is idempotent (a call whose transaction is already in the world is skipped), and
    calls for fees not in the world are ignored.  Money is Decimal throughout."""
    folded = World(world.day, [dict(r) for r in world.fines], [dict(r) for r in world.transactions],
                   [dict(r) for r in world.balances], copy.deepcopy(world.cases))
    fines = {(r[C.PRIMARY_ID], r[C.FINE_ID]): r for r in folded.fines}
    balances = {r[C.PRIMARY_ID]: r for r in folded.balances}
    present = {t[C.TRANS_ID] for t in folded.transactions}
    seen_ext: dict[str, int] = {}
    for i, call in enumerate(pay_calls):
        ext = call.get("external_transaction_id") or f"{call['fee_id']}#call{i}"
        seen_ext[ext] = seen_ext.get(ext, 0) + 1
        when: datetime = call.get("time") or now
        fine = fines.get((str(call["user_id"]), str(call["fee_id"])))
        if fine is None or when > now:
            continue
        txn_id = _txn_id(f"{ext}#{seen_ext[ext]}")
        if txn_id in present:
            continue
        amount = to_money(call["amount"])
        remaining = parse_amount(fine[C.REMAINING_AMOUNT] or "0") - amount
        if amount <= 0 or remaining < 0:
            raise ValueError(f"sandbox: pay call of {amount} on fee {call['fee_id']} does not fit "
                             f"its remaining amount {fine[C.REMAINING_AMOUNT]}")
        present.add(txn_id)
        folded.transactions.append({
            C.FINE_ID: fine[C.FINE_ID], C.TRANS_CREATED: _ts(when), C.TRANS_ID: txn_id,
            C.TRANS_TYPE: "Payment", C.TRANS_NOTE: call.get("comment"), C.LOAN_ID: fine[C.LOAN_ID],
            C.PRIMARY_ID: fine[C.PRIMARY_ID], C.TRANS_AMOUNT: render_amount(to_cents(amount)),
        })
        fine[C.REMAINING_AMOUNT] = render_amount(to_cents(remaining))
        fine[C.FINE_STATUS] = "Closed" if remaining == 0 else "Active"
        fine[C.STATUS_DATE] = max(fine[C.STATUS_DATE] or "", _ts(when))
        patron = balances.get(fine[C.PRIMARY_ID])
        if patron is not None:
            left = parse_amount(patron[C.REMAINING_AMOUNT] or "0") - amount
            patron[C.REMAINING_AMOUNT] = render_amount(to_cents(left))
    folded.transactions.sort(key=lambda t: (t[C.TRANS_CREATED] or "", t[C.TRANS_ID] or ""))
    return folded


def install_world_keeping_payments(server: Any, world: World, *, user_groups: bool = False) -> None:
    """install_world, but each fee already on the server keeps its transaction list (the
    payments pyBursar made); balances and statuses come from `world`, which should be folded.

    Done under the server's own lock when it has one, so no request sees a half-installed fee."""
    lock = getattr(server, "_lock", None)
    with lock if lock is not None else nullcontext():
        kept = {key: list(fee["transactions"]) for key, fee in server.fees.items()}
        install_world(server, world, user_groups=user_groups)
        for key, transactions in kept.items():
            fee = server.fees.get(key)
            if fee is not None:
                fee["transactions"] = transactions


__all__ = [
    "PAYMENTS_PREFIX", "HEADER", "PaymentFile", "payment_files", "payment_cases", "fold_payments",
    "install_world_keeping_payments",
]
