"""The export decision table (docs/ledger.md §4), the ledger's properties (docs/ledger.md §12), the
credit rule (docs/ledger.md §8.3) and the ledger lines as the jobs store them."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal

import pytest

from bursar.jobs.ledger_store import trans_alma_doc, trans_burs_doc
from bursar.rules.ledger import (
    AlmaLine,
    BursLine,
    CreditMatch,
    Decision,
    FineState,
    LoanFine,
    decide,
    match_credit,
    mirror_alma_payment,
    part_balance,
    part_original,
)
from bursar.rules.money import ZERO
from bursar.rules.rows import NO_LOAN
from bursar.store import validate
from bursar.store.schema import COLLECTIONS
from tests.unit.amounts import from_cents


def D(text: str | int) -> Decimal:
    return Decimal(str(text)).quantize(Decimal("0.01"))


def A(type_: str, amt: str | int) -> AlmaLine:
    return AlmaLine(type_, D(amt))


def B(type_: str, amt: str | int, part: str = "F1") -> BursLine:
    return BursLine(type_, D(amt), part)


def state(alma, burs=(), *, orig="10", parts=("F1",), sierra=False, fine_id=7) -> FineState:
    return FineState(fine_id, D(orig), sierra, tuple(alma), tuple(burs), tuple(parts))


def assert_error(d: Decision, *fragments: str) -> None:
    assert d.kind == "error"
    assert d.lines == ()
    assert d.error is not None and "\n" not in d.error
    assert d.error.startswith("fine 7:")
    for frag in fragments:
        assert frag in d.error, d.error


# --- one test per decision-table row -------------------------------------------------------


def test_row1_alma_total_above_original():
    d = decide(state([A("Fine", 10), A("Fine", 5)], [B("Fine", 10)]))
    assert_error(d, "original amount 10.00", "Alma total 15.00", "Bursar total 10.00", "diff 5.00")
    assert (d.amtA, d.amtB, d.diff) == (D(15), D(10), D(5))


def test_row1_negative_alma_total_beyond_original():
    d = decide(state([A("Fine", 10), A("Payment", -10), A("Credit", -11)], [B("Fine", 10)]))
    assert_error(d, "original amount 10.00", "Alma total -11.00")


def test_row1_bursar_total_above_original():
    d = decide(state([A("Fine", 10)], [B("Fine", 12)]))
    assert_error(d, "original amount 10.00", "Bursar total 12.00")


def test_row2_increase_after_the_fine_was_sent():
    d = decide(state([A("Fine", 10)], [B("Fine", 4)]))
    assert_error(d, "Alma total 10.00", "Bursar total 4.00", "diff 6.00")


def test_row3_new_sierra_fine_is_refused():
    d = decide(state([A("Fine", 175), A("Waive", -30)], [], orig="175",
                     parts=("X_01", "X_03"), sierra=True))
    assert_error(d, "Sierra", "diff 145.00")


def test_row4_zero_diff_sends_nothing():
    d = decide(state([A("Fine", 10)], [B("Fine", 10)]))
    assert d == Decision("zeroDiff", (), D(10), D(10), ZERO)
    # zero diff is decided before the parts are looked at
    assert decide(state([A("Fine", 10), A("Payment", -10)], [], parts=())).kind == "zeroDiff"


def test_row5_new_fine_on_its_single_part():
    d = decide(state([A("Fine", "12.5")], [], orig="12.50", parts=("REF1",)))
    assert d == Decision("newFine", (BursLine("Fine", D("12.50"), "REF1"),), D("12.50"), ZERO, D("12.50"))


@pytest.mark.parametrize("parts", [(), ("A", "B")])
def test_row5_new_fine_needs_exactly_one_part(parts):
    d = decide(state([A("Fine", 10)], [], parts=parts))
    assert_error(d, f"found {len(parts)}")


def test_row6_waive_when_alma_total_not_negative():
    d = decide(state([A("Fine", 10), A("Waive", -4)], [B("Fine", 10)]))
    assert d == Decision("waive", (B("Waive", -4),), D(6), D(10), D(-4))


def test_row6_credit_when_alma_total_negative():
    d = decide(state([A("Fine", 10), A("Payment", -10), A("Credit", -10)],
                     [B("Fine", 10), B("Payment", -10)]))
    assert d == Decision("credit", (B("Credit", -10),), D(-10), ZERO, D(-10))


def test_row6_could_not_allocate():
    # the Bursar lines belong to a part the fine does not list: nothing to reverse
    d = decide(state([A("Fine", 10), A("Waive", -10)], [B("Fine", 10, "OTHER")]))
    assert_error(d, "could not allocate waive of 10.00", "10.00 left over")


def test_row6_waive_never_drives_a_part_negative():
    # X_01 is already 5 below zero at the Bursar: a waive must come entirely from X_03.
    burs = [B("Fine", 150, "X_01"), B("Payment", -150, "X_01"), B("Credit", -5, "X_01"),
            B("Fine", 25, "X_03")]
    alma = [A("Fine", 175), A("Payment", -155), A("Waive", -20)]
    d = decide(state(alma, burs, orig="175", parts=("X_01", "X_03"), sierra=True))
    assert d.kind == "waive" and d.lines == (B("Waive", -20, "X_03"),)


def test_row6_refund_of_a_payment_the_bursar_never_saw_is_an_error():
    # Paid at the desk before the first export (nothing sent), then refunded in Alma:
    # there is no Bursar charge to reverse, so the fine needs a person.
    d = decide(state([A("Fine", 10), A("Payment", -10), A("Credit", -10)], []))
    assert_error(d, "could not allocate credit of 10.00")


def test_row6_repeated_part_ids_are_refused():
    d = decide(state([A("Fine", 10), A("Waive", -4)], [B("Fine", 10)], parts=("F1", "F1")))
    assert_error(d, "repeat")


def test_row6_parts_are_matched_by_id_not_position():
    # Fine lines stored in the opposite order to the parts: targets must follow the ids.
    burs = [B("Fine", 25, "X_03"), B("Fine", 150, "X_01")]
    d = decide(state([A("Fine", 175), A("Waive", -30)], burs, orig="175",
                     parts=("X_01", "X_03"), sierra=True))
    assert d.kind == "waive" and d.lines == (B("Waive", -30, "X_01"),)
    d = decide(state([A("Fine", 175), A("Waive", -160)], burs, orig="175",
                     parts=("X_01", "X_03"), sierra=True))
    assert d.lines == (B("Waive", -150, "X_01"), B("Waive", -10, "X_03"))


def test_rows_are_checked_in_order():
    # rows 1 and 2 both hold: row 1's message wins
    d = decide(state([A("Fine", 10), A("Fine", 5)], [B("Fine", 4)]))
    assert_error(d, "original amount")
    # rows 2 and 3 both hold: row 2 wins
    d = decide(state([A("Fine", 10)], [B("Fine", 4)], sierra=True))
    assert_error(d, "rose after")


# --- worked scenarios (docs/ledger.md §5) ---------------------------------------------------


SCENARIOS = [
    # (name, trans_alma, trans_burs before, state kwargs, expected kind, expected lines)
    ("new fine", [A("Fine", 10)], [], {}, "newFine", [B("Fine", 10)]),
    ("full waive", [A("Fine", 10), A("Waive", -10)], [B("Fine", 10)], {}, "waive", [B("Waive", -10)]),
    ("partial waive", [A("Fine", 10), A("Waive", -4)], [B("Fine", 10)], {}, "waive", [B("Waive", -4)]),
    ("paid via Bursar, then credited in Alma",
     [A("Fine", 10), A("Payment", -10), A("Credit", -10)], [B("Fine", 10), B("Payment", -10)], {},
     "credit", [B("Credit", -10)]),
    ("partly paid, then credited 10",
     [A("Fine", 10), A("Payment", -4), A("Credit", -10)], [B("Fine", 10), B("Payment", -4)], {},
     "credit", [B("Credit", -10)]),
    ("paid in Alma before the first export", [A("Fine", 10), A("Payment", -10)], [], {}, "zeroDiff", []),
    ("increase after export", [A("Fine", 10), A("Fine", 5)], [B("Fine", 10)], {}, "error", []),
    ("new fine without md", [A("Fine", 10)], [], {"parts": ()}, "error", []),
    ("Sierra two-part, waive 25",
     [A("Fine", 175), A("Waive", -25)], [B("Fine", 150, "X_01"), B("Fine", 25, "X_03")],
     {"orig": "175", "parts": ("X_01", "X_03"), "sierra": True}, "waive", [B("Waive", -25, "X_03")]),
    ("Sierra two-part, waive 30",
     [A("Fine", 175), A("Waive", -30)], [B("Fine", 150, "X_01"), B("Fine", 25, "X_03")],
     {"orig": "175", "parts": ("X_01", "X_03"), "sierra": True}, "waive", [B("Waive", -30, "X_01")]),
    ("Sierra with no trans_burs", [A("Fine", 175), A("Waive", -30)], [],
     {"orig": "175", "parts": ("X_01", "X_03"), "sierra": True}, "error", []),
    ("re-charge after a full waive",
     [A("Fine", 10), A("Waive", -10), A("Fine", 10)], [B("Fine", 10), B("Waive", -10)], {},
     "newFine", [B("Fine", 10)]),
    # docs/original-defects.md §13 fixed: the original raised here (two Fine lines, one md)
    ("waive after a re-charge",
     [A("Fine", 10), A("Waive", -10), A("Fine", 10), A("Waive", -10)],
     [B("Fine", 10), B("Waive", -10), B("Fine", 10)], {}, "waive", [B("Waive", -10)]),
]


@pytest.mark.parametrize("name, alma, burs, kwargs, kind, lines", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_worked_scenarios(name, alma, burs, kwargs, kind, lines):
    d = decide(state(alma, burs, **kwargs))
    assert d.kind == kind, d.error
    assert d.lines == tuple(lines)
    if kind != "error":
        total_burs = sum((b.amt for b in list(burs) + list(lines)), ZERO)
        assert total_burs == d.amtA  # docs/ledger.md §12, property 1


def test_amounts_are_two_place_decimals():
    d = decide(state([A("Fine", 10), A("Waive", "-3.3")], [B("Fine", 10)]))
    assert d.lines == (BursLine("Waive", D("-3.30"), "F1"),)
    assert str(d.lines[0].amt) == "-3.30" and str(d.diff) == "-3.30" and str(d.amtA) == "6.70"
    assert str(decide(state([], [], parts=())).amtB) == "0.00"


def test_part_helpers():
    burs = [B("Fine", 10, "P"), B("Waive", -10, "P"), B("Fine", 10, "P"), B("Payment", -3, "P"),
            B("Fine", 5, "Q")]
    assert part_balance(burs, "P") == D(7)
    assert part_original(burs, "P") == D(20)
    assert part_original(burs, "Z") == ZERO and part_balance(burs, "Z") == ZERO


# --- mirror_alma_payment (docs/ledger.md §10) ----------------------------------------------


def test_mirror_payment_in_part_order():
    burs = [B("Fine", 150, "X_01"), B("Fine", 25, "X_03")]
    lines, excess = mirror_alma_payment(D(-160), ("X_01", "X_03"), burs)
    assert lines == (B("Payment", -150, "X_01"), B("Payment", -10, "X_03"))
    assert excess == ZERO


def test_mirror_payment_excess_is_returned_not_raised():
    lines, excess = mirror_alma_payment(D(12), ("F1",), [B("Fine", 10)])
    assert lines == (B("Payment", -10),) and excess == D(2)
    # paid in Alma before the fine was ever exported: nothing owed at the Bursar
    lines, excess = mirror_alma_payment(D(10), ("F1",), [])
    assert lines == () and excess == D(10)


def test_mirror_payment_skips_parts_that_owe_nothing():
    burs = [B("Fine", 150, "X_01"), B("Payment", -150, "X_01"), B("Fine", 25, "X_03")]
    lines, excess = mirror_alma_payment(D(20), ("X_01", "X_03"), burs)
    assert lines == (B("Payment", -20, "X_03"),) and excess == ZERO
    lines, excess = mirror_alma_payment(D(5), ("F1", "F1"), [B("Fine", 3)])
    assert lines == (B("Payment", -3),) and excess == D(2)  # a repeated part is paid once


# --- property checks: simulated fine histories (docs/ledger.md §12) ------------------------


class Fine:
    """A fine's two ledgers evolving through realistic events."""

    def __init__(self, rng: random.Random, sierra: bool):
        self.rng = rng
        self.sierra = sierra
        cents = rng.randint(1, 50000)
        self.orig = from_cents(cents)
        if sierra:
            bill = rng.randint(0, cents)
            self.parts = ("X_01", "X_03")
            self.burs = [BursLine("Fine", from_cents(cents - bill), "X_01"),
                         BursLine("Fine", from_cents(bill), "X_03")]
            self.burs = [b for b in self.burs if b.amt != 0] or self.burs[:1]
        else:
            self.parts = ("REF",)
            self.burs = []
        self.alma = [AlmaLine("Fine", self.orig)]
        self.paid = ZERO  # Σ payments minus Σ credits: what a credit can refund

    def state(self) -> FineState:
        return FineState(1, self.orig, self.sierra, tuple(self.alma), tuple(self.burs), self.parts)

    def alma_total(self) -> Decimal:
        return sum((a.amt for a in self.alma), ZERO)

    def burs_total(self) -> Decimal:
        return sum((b.amt for b in self.burs), ZERO)

    def amount_up_to(self, limit: Decimal) -> Decimal:
        if self.rng.random() < 0.3:
            return limit  # exact amounts are common (full waive, full payment)
        return from_cents(self.rng.randint(1, int(limit * 100)))

    def waive(self) -> None:
        bal = self.alma_total()
        if bal > 0:
            self.alma.append(AlmaLine("Waive", -self.amount_up_to(bal)))

    def pay(self) -> None:
        bal = self.alma_total()
        if bal > 0:
            amt = self.amount_up_to(bal)
            self.alma.append(AlmaLine("Payment", -amt))
            lines, excess = mirror_alma_payment(amt, self.parts, self.burs)
            assert excess >= 0 and sum((-x.amt for x in lines), ZERO) + excess == amt
            assert all(x.type == "Payment" and x.amt < 0 for x in lines)
            self.burs.extend(lines)
            # Only what the Bursar saw can be refunded there (a refund of a desk payment
            # made before the first export is the error case tested above).
            self.paid += amt - excess

    def credit(self) -> None:
        if self.paid > 0:
            amt = self.amount_up_to(self.paid)
            self.alma.append(AlmaLine("Credit", -amt))
            self.paid -= amt

    def recharge(self) -> None:
        if not self.sierra and self.alma_total() == 0 and self.burs_total() == 0:
            self.alma.append(AlmaLine("Fine", self.orig))
            self.paid = ZERO

    def export(self, stats: dict[str, int]) -> None:
        st = self.state()
        d = decide(st)
        stats[d.kind] = stats.get(d.kind, 0) + 1
        assert d.kind != "error", (d.error, st)
        before = {p: part_balance(self.burs, p) for p in self.parts}
        originals = {p: part_original(self.burs, p) for p in self.parts}
        self.burs.extend(d.lines)
        after = {p: part_balance(self.burs, p) for p in self.parts}
        # item 8: the Bursar ledger now equals the Alma ledger to the cent
        assert self.burs_total() == self.alma_total()
        assert sum(before.values(), ZERO) + sum(x.amt for x in d.lines) == sum(after.values(), ZERO)
        # item 9: the shape of what is sent
        if d.kind == "newFine":
            assert st.burs == () or sum((b.amt for b in st.burs), ZERO) == 0
            assert d.lines == (BursLine("Fine", d.diff, "REF"),)
        elif d.kind == "zeroDiff":
            assert d.lines == () and d.diff == 0
        else:
            expected = "Waive" if d.amtA >= 0 else "Credit"
            assert d.kind == expected.lower()
            assert d.lines and all(x.type == expected and x.amt < 0 for x in d.lines)
            assert sum((x.amt for x in d.lines), ZERO) == d.diff
            assert len({x.bursFineId for x in d.lines}) == len(d.lines)
            for x in d.lines:
                p = x.bursFineId
                # item 10: waive never below 0; credit never below -(original Fine amount)
                floor = ZERO if d.kind == "waive" else -originals[p]
                assert after[p] >= floor, (d, before, after)
            # item 11: an exact match of the second part goes entirely to it
            if len(self.parts) == 2 and -d.diff == before[self.parts[1]]:
                assert d.lines == (BursLine(expected, d.diff, self.parts[1]),)


def test_simulated_histories_keep_the_ledgers_equal():
    rng = random.Random(20240917)
    stats: dict[str, int] = {}
    for _ in range(1500):
        fine = Fine(rng, sierra=rng.random() < 0.35)
        for _ in range(rng.randint(1, 12)):
            event = rng.choice(["waive", "pay", "credit", "recharge", "export", "export"])
            if event == "export":
                fine.export(stats)
            else:
                getattr(fine, event)()
        fine.export(stats)
    # the simulation exercises every non-error kind substantially
    for kind in ("newFine", "zeroDiff", "waive", "credit"):
        assert stats.get(kind, 0) > 100, stats


def test_arbitrary_states_never_crash_and_balance_when_accepted():
    """Random, mostly nonsensical ledgers: decide always answers; when it accepts, the
    Bursar ledger plus the new lines equals the Alma ledger (item 8)."""
    rng = random.Random(31337)
    kinds: dict[str, int] = {}
    types = ["Fine", "Payment", "Waive", "Credit"]
    for _ in range(4000):
        parts = tuple(rng.sample(["P1", "P2", "P3"], rng.randint(0, 2)))
        orig = from_cents(rng.randint(1, 20000))
        alma = [AlmaLine(rng.choice(types), from_cents(rng.randint(-20000, 20000)))
                for _ in range(rng.randint(0, 4))]
        burs = [BursLine(rng.choice(types), from_cents(rng.randint(-20000, 20000)),
                         rng.choice(["P1", "P2", "P3"])) for _ in range(rng.randint(0, 4))]
        st = FineState(3, orig, rng.random() < 0.3, tuple(alma), tuple(burs), parts)
        d = decide(st)
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
        assert d.diff == d.amtA - d.amtB
        if d.kind == "error":
            assert d.lines == () and d.error and d.error.startswith("fine 3:") and "\n" not in d.error
        else:
            assert d.error is None
            assert abs(d.amtA) <= orig and abs(d.amtB) <= orig
            assert sum((b.amt for b in burs), ZERO) + sum((x.amt for x in d.lines), ZERO) == d.amtA
            assert all(x.bursFineId in parts for x in d.lines)
    assert kinds.get("error", 0) > 100 and len(kinds) == 5, kinds


# --- match_credit: a credit fee over the fines of its loan (docs/ledger.md §8.3) -------------


def LF(fine_id: int, *lines: AlmaLine, patron: str = "P1", type_: str = "Overdue fine") -> LoanFine:
    return LoanFine(fine_id, patron, type_, lines)


def test_a_credit_without_a_loan_matches_nothing_even_loanless_fines():
    m = match_credit(D(5), NO_LOAN, "P1", [LF(1, A("Fine", 5))])
    assert m == CreditMatch((), D(5), "it has no loan id")


def test_only_non_credit_fines_of_the_same_patron_are_candidates():
    on_loan = [LF(1, A("Fine", 5), patron="P2"), LF(2, A("Credit", -3), type_="Credit"), LF(3, A("Fine", 4))]
    assert match_credit(D(3), "L1", "P1", on_loan).shares == ((3, D(3)),)
    m = match_credit(D(3), "L1", "P1", on_loan[:2])
    assert m.shares == () and m.remainder == D(3)
    assert m.unmatched == "no fine of patron's loan L1 is in the ledger"


def test_capacity_is_what_was_charged_net_of_waives_and_credits_not_payments():
    on_loan = [LF(1, A("Fine", 10), A("Waive", -4), A("Payment", -5)), LF(2, A("Fine", 2), A("Credit", -1))]
    m = match_credit(D(9), "L1", "P1", on_loan)
    assert m.shares == ((1, D(6)), (2, D(1))) and m.remainder == D(2) and m.unmatched is None


def test_an_exact_match_takes_all_and_zero_shares_are_left_out():
    on_loan = [LF(1, A("Fine", 10)), LF(2, A("Fine", 5)), LF(3, A("Fine", 5))]
    assert match_credit(D(5), "L1", "P1", on_loan) == CreditMatch(((2, D(5)),), ZERO)
    assert match_credit(D(12), "L1", "P1", on_loan).shares == ((1, D(10)), (2, D(2)))


def test_a_credit_no_fine_has_room_for_is_matched_with_all_of_it_left_over():
    m = match_credit(D(4), "L1", "P1", [LF(1, A("Fine", 3), A("Waive", -3))])
    assert m == CreditMatch((), D(4))  # candidates exist: reported as excess, not kept on its own


# --- the ledger documents the jobs write ----------------------------------------------------


def test_the_line_builders_give_every_field_of_their_collection_and_pass_the_store_checks():
    when = datetime(2024, 3, 1, 9, 30)
    alma = trans_alma_doc(4, "F9", A("Payment", -3), when, new=True, trans_id="T1", created=when, note="n")
    assert set(alma) == set(COLLECTIONS["trans_alma"])
    assert (alma["fine"], alma["amt"], alma["type"], alma["newAlmaImp"]) == (4, D(-3), "Payment", True)
    assert validate.checked("trans_alma", alma, id_error="") == alma
    burs = trans_burs_doc(4, B("Waive", -2, "F9_01"), when, export=True)
    assert set(burs) == set(COLLECTIONS["trans_burs"]) - {"sentLine"}
    assert (burs["bursFineId"], burs["newBursExp"], burs["newBursImp"]) == ("F9_01", True, False)
    assert validate.checked("trans_burs", burs, id_error="") == burs
    sent = trans_burs_doc(4, B("Fine", 2), when, export=False, sent_line=8)
    assert set(sent) == set(COLLECTIONS["trans_burs"]) and sent["sentLine"] == 8
