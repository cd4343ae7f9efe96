"""A sandbox world for `reconcile`: clean after day 0, then one case of every difference class.

Why a world of its own: the seeded days (bursar/sandbox/generator.py, which the golden files
depend on) pay fees at the desk after they were billed, which is itself a difference class; so
this builder starts from the seeded day 0 only (everything there happens before the first
export, which leaves the three sides agreeing) and scripts the cases for day 1 by editing the
sandbox Alma's reports and fees and by dropping a payment file, then runs `today` as a site would:

  paid_not_applied   F1 paid 2.00 at the Bursar; the pay call fails (a 500) -> 2.00
  overpaid           F2 paid its balance + 5.00; its balance is applied -> 5.00
  wrong_patron       a row for F3's reference with another patron's Emplid, 10.00 -> 10.00
  unknown_reference  a row for a reference that is no fine of ours, 15.00 -> 15.00
  reversal_missing   F4 closed in Alma (remaining 0) with no transaction behind it -> its balance
  balance_differs    F5's remaining lowered by 3.00 with no transaction behind it -> -3.00
  desk_payment       F6 paid 4.00 at the desk in Alma after billing -> 4.00
  patron_balance     P8's All User Balances figure 1.00 above the sum of their fees -> 1.00
  (and F7 paid in full at the Bursar and applied: no difference)

F1..F8 are open, unpaid fines of eight different patrons.  The All User Balances rows of F4's,
F5's and F6's patrons follow their fees, as Alma's would.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from bursar.rules import columns as C
from bursar.sandbox.generator import World, install_world, parse_amount, render_amount

from .conftest import Sandbox

PREFIX = "ASUSASF_LIBRARY_REPORT_DTRANGE"
HEADER = "Emplid,Date Paid,Reference Number,Charge Amount,Paid Amount,Item Type,Charge Description"
UNKNOWN_REFERENCE = "8429999990009999"
DAY1 = date(2026, 3, 3)


@dataclass
class Cases:
    """What reconcile must find after day 1: (class, fine id or reference) -> amount."""

    expected: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    fines: dict[str, dict] = field(default_factory=dict)  # F1..F8 -> the fines report row
    world: World | None = None


def _cents(amount: Decimal) -> str:
    return render_amount(int(amount * 100))


def run_clean_day0(sandbox: Sandbox, *, extra_env: dict[str, str] | None = None) -> World:
    world = sandbox.install(0)
    result = sandbox.run("today", day=world.day, extra_env=extra_env)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    return world


def pick_fines(world: World) -> dict[str, dict]:
    """Eight open, unpaid fines of eight different patrons (balance edits follow each fee, so
    a patron's other fees do not matter)."""
    chosen: list[dict] = []
    patrons: set[str] = set()
    for row in world.fines:
        if (row[C.FINE_STATUS] == "Active" and row[C.FINE_TYPE] != "Credit" and row[C.PRIMARY_ID] not in patrons
                and row[C.REMAINING_AMOUNT] == row[C.ORIGINAL_AMOUNT]
                and parse_amount(row[C.REMAINING_AMOUNT]) >= Decimal("5.00")):
            chosen.append(row)
            patrons.add(row[C.PRIMARY_ID])
    assert len(chosen) >= 8, f"the seeded day 0 has only {len(chosen)} fines that fit"
    return {f"F{i + 1}": row for i, row in enumerate(chosen[:8])}


def payment_row(fine: dict, paid: Decimal, *, emplid: str | None = None, reference: str | None = None) -> str:
    return (f"{emplid or fine[C.PRIMARY_ID]},03/03/2026,{reference or fine[C.FINE_ID]},"
            f"{parse_amount(fine[C.ORIGINAL_AMOUNT])},{paid:.2f},Library Fine,\"Library fine, day 1\"")


def script_day1(sandbox: Sandbox, base: World) -> Cases:
    """Edit the sandbox for day 1 (module docstring) and return what reconcile must find."""
    world = copy.deepcopy(base)
    world.day = DAY1
    fines = pick_fines(world)
    by_id = {row[C.FINE_ID]: row for row in world.fines}
    balances = {row[C.PRIMARY_ID]: row for row in world.balances}
    cases = Cases(fines=fines, world=world)

    def bal(name: str) -> Decimal:
        return parse_amount(fines[name][C.REMAINING_AMOUNT])

    def shift_balance(patron: str, delta: Decimal) -> None:
        row = balances[patron]
        row[C.REMAINING_AMOUNT] = _cents(parse_amount(row[C.REMAINING_AMOUNT]) + delta)

    # reversal_missing: F4 closed in Alma, no transaction says why
    f4 = by_id[fines["F4"][C.FINE_ID]]
    cases.expected[("reversal_missing", f4[C.FINE_ID])] = bal("F4")
    shift_balance(f4[C.PRIMARY_ID], -bal("F4"))
    f4[C.FINE_STATUS], f4[C.REMAINING_AMOUNT], f4[C.STATUS_DATE] = "Closed", "0", "2026-03-03T09:00:00"
    # balance_differs: F5 lowered by 3.00, no transaction says why
    f5 = by_id[fines["F5"][C.FINE_ID]]
    cases.expected[("balance_differs", f5[C.FINE_ID])] = Decimal("-3.00")
    shift_balance(f5[C.PRIMARY_ID], Decimal("-3.00"))
    f5[C.REMAINING_AMOUNT], f5[C.STATUS_DATE] = _cents(bal("F5") - 3), "2026-03-03T09:10:00"
    # desk_payment: F6 paid 4.00 at the desk, after it was billed
    f6 = by_id[fines["F6"][C.FINE_ID]]
    cases.expected[("desk_payment", f6[C.FINE_ID])] = Decimal("4.00")
    shift_balance(f6[C.PRIMARY_ID], Decimal("-4.00"))
    f6[C.REMAINING_AMOUNT], f6[C.STATUS_DATE] = _cents(bal("F6") - 4), "2026-03-03T09:20:00"
    world.transactions.append({
        C.FINE_ID: f6[C.FINE_ID], C.TRANS_CREATED: "2026-03-03T09:20:00", C.TRANS_ID: "99999999990003841",
        C.TRANS_TYPE: "Payment", C.TRANS_NOTE: "Paid at circulation desk", C.LOAN_ID: f6[C.LOAN_ID],
        C.PRIMARY_ID: f6[C.PRIMARY_ID], C.TRANS_AMOUNT: "4"})
    # patron_balance: P8's report figure is 1.00 above the sum of their fees
    p8 = fines["F8"][C.PRIMARY_ID]
    cases.expected[("patron_balance", p8)] = Decimal("1.00")
    shift_balance(p8, Decimal("1.00"))
    install_world(sandbox.alma, world)

    # the Bursar's payments of day 1
    f1, f2, f3, f7 = (fines[k] for k in ("F1", "F2", "F3", "F7"))
    rows = [payment_row(f1, Decimal("2.00")),
            payment_row(f2, bal("F2") + Decimal("5.00")),
            payment_row(f3, Decimal("10.00"), emplid=fines["F8"][C.PRIMARY_ID]),
            payment_row(f7, bal("F7")),
            payment_row(f7, Decimal("15.00"), reference=UNKNOWN_REFERENCE)]
    cases.expected[("paid_not_applied", f1[C.FINE_ID])] = Decimal("2.00")
    cases.expected[("overpaid", f2[C.FINE_ID])] = Decimal("5.00")
    cases.expected[("wrong_patron", f3[C.FINE_ID])] = Decimal("10.00")
    cases.expected[("unknown_reference", UNKNOWN_REFERENCE)] = Decimal("15.00")
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260303.csv", text.encode())
    sandbox.alma.add_fault("error", method="POST", path_contains=f1[C.FINE_ID], status=500, times=5)
    return cases


def build(sandbox: Sandbox, *, extra_env: dict[str, str] | None = None) -> Cases:
    """Day 0 clean, then day 1 with every case, `today` run on both days."""
    base = run_clean_day0(sandbox)
    cases = script_day1(sandbox, base)
    result = sandbox.run("today", day=DAY1, extra_env=extra_env)
    assert result.returncode == 3, result.stdout + result.stderr  # the payments job flags its rows
    return cases


def found(csv_rows: list[dict[str, str]]) -> dict[tuple[str, str], Decimal]:
    """The CSV's differences keyed like Cases.expected."""
    out: dict[tuple[str, str], Decimal] = {}
    for row in csv_rows:
        key = row["patron"] if row["class"] == "patron_balance" else (
            row["reference"] if row["class"] == "unknown_reference" else row["fine_id"])
        out[(row["class"], key)] = out.get((row["class"], key), Decimal("0.00")) + Decimal(row["amount"])
    return out
