"""Properties of the money rules, for every input hypothesis can think of (pure, no I/O).

- allocation conserves money to the cent and never gives a part more than it can take;
- a credit fee lands only on its patron's fines of its loan, each within what it was charged;
- however a fine's history is split into days, the Bursar ends up billed exactly what Alma says;
- every formatted line is 97 characters and parses back to its fields;
- due dates and term codes never go back in time as the billing date moves forward;
- the payments CSV parser gives exact Decimal rows or our own error, never anything else.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bursar.rules import bursar_file as bf
from bursar.rules import ledger
from bursar.rules.money import CENT, ZERO, PartTarget, allocate_greedy, allocate_to_parts, apply_payment_to_parts
from bursar.rules.payments_csv import PaymentFileError, parse_payments

money = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("5000.00"), places=2)
positive = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000.00"), places=2)


def cents(value: Decimal) -> bool:
    return value == value.quantize(CENT)


# -- allocation ------------------------------------------------------------------------------
@given(credit=money, capacities=st.lists(st.decimals(min_value=Decimal("-50"), max_value=Decimal("5000"),
                                                      places=2), max_size=6))
def test_greedy_allocation_conserves_money_and_respects_capacity(credit, capacities):
    alloc = allocate_greedy(credit, capacities)
    assert alloc.total + alloc.remainder == credit
    assert all(cents(a) and ZERO <= a <= max(ZERO, cap) for a, cap in zip(alloc.amounts, capacities, strict=True))
    assert alloc.remainder == ZERO or all(a == max(ZERO, c) for a, c in zip(alloc.amounts, capacities, strict=True))


@given(credit=money, parts=st.lists(st.tuples(money, money), min_size=1, max_size=3), allow=st.booleans())
def test_part_allocation_conserves_money_and_never_goes_below_minus_original(credit, parts, allow):
    targets = [PartTarget(current=min(cur, orig), original=orig) for cur, orig in parts]
    alloc = allocate_to_parts(credit, targets, allow_negative=allow)
    assert alloc.total + alloc.remainder == credit and alloc.remainder >= ZERO
    for amount, target in zip(alloc.amounts, targets, strict=True):
        assert cents(amount) and amount >= ZERO
        floor = -target.original if allow else min(ZERO, target.current)
        assert target.current - amount >= floor


@given(payment=money, owed=st.lists(st.decimals(min_value=Decimal("-20"), max_value=Decimal("500"), places=2),
                                    max_size=3))
def test_a_payment_is_never_applied_beyond_what_a_part_owes(payment, owed):
    alloc = apply_payment_to_parts(payment, owed)
    assert alloc.total + alloc.remainder == payment
    assert all(ZERO <= a <= max(ZERO, o) for a, o in zip(alloc.amounts, owed, strict=True))


@st.composite
def loan_fines(draw):
    """The fines of one loan: of two patrons, some of them credit fees, each with Alma lines."""
    line = st.builds(ledger.AlmaLine, st.sampled_from(["Fine", "Waive", "Credit", "Payment"]),
                     st.decimals(min_value=Decimal("-300"), max_value=Decimal("300"), places=2))
    return [ledger.LoanFine(i, draw(st.sampled_from(["P1", "P2"])), draw(st.sampled_from(["Overdue fine", "Credit"])),
                            draw(st.lists(line, max_size=4)))
            for i in range(1, draw(st.integers(0, 5)) + 1)]


@given(credit=positive, on_loan=loan_fines(), loan=st.sampled_from(["L1", "\\N"]))
def test_a_credit_lands_only_on_the_patrons_fines_of_its_loan_and_conserves_money(credit, on_loan, loan):
    m = ledger.match_credit(credit, loan, "P1", on_loan)
    assert sum((a for _, a in m.shares), ZERO) + m.remainder == credit
    candidates = {f.fine_id: f for f in on_loan if f.patron == "P1" and f.type != "Credit"}
    assert (m.unmatched is not None) == (loan == "\\N" or not candidates)
    assert len({i for i, _ in m.shares}) == len(m.shares)  # one Credit line a fine at the most
    for fine_id, amount in m.shares:
        room = sum((a.amt for a in candidates[fine_id].alma if a.type != "Payment"), ZERO)
        assert cents(amount) and ZERO < amount <= room


# -- the ledger over any split into days -----------------------------------------------------
@st.composite
def fine_history(draw):
    """An Alma fine: its charge, then waives and payments that never take it below zero."""
    orig = draw(positive)
    events = []
    left = orig
    for _ in range(draw(st.integers(0, 5))):
        if left <= ZERO:
            break
        amount = draw(st.decimals(min_value=Decimal("0.01"), max_value=left, places=2))
        events.append((draw(st.sampled_from(["Waive", "Payment"])), amount))
        left -= amount
    cuts = draw(st.lists(st.integers(0, len(events)), max_size=4))
    return orig, events, sorted(set(cuts))


@given(fine_history())
@settings(max_examples=300)
def test_any_split_into_days_bills_the_bursar_exactly_what_alma_says_is_owed(history):
    orig, events, cuts = history
    alma = [ledger.AlmaLine("Fine", orig)]
    burs: list[ledger.BursLine] = []
    days = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    for day in days:
        for kind, amount in day:
            alma.append(ledger.AlmaLine(kind, -amount))
            if kind == "Payment":  # the import mirrors an Alma payment on the Bursar side
                lines, _excess = ledger.mirror_alma_payment(amount, ["F1"], burs)
                burs.extend(lines)
        decision = ledger.decide(ledger.FineState(1, orig, False, alma, burs, ["F1"]))
        assert decision.kind != ledger.ERROR, decision.error
        burs.extend(decision.lines)
    assert sum((b.amt for b in burs), ZERO) == sum((a.amt for a in alma), ZERO)
    # a charge goes out at most once, and never more than the fine
    charged = [b.amt for b in burs if b.type == "Fine"]
    assert len(charged) <= 1 and all(ZERO < c <= orig for c in charged)


# -- the line format -------------------------------------------------------------------------
ids = st.text(alphabet="0123456789", min_size=1, max_size=11)
refs = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=31)


@given(patron=ids, account=st.text(alphabet="0123456789", min_size=12, max_size=12),
       amount=st.decimals(min_value=Decimal("-9999999.99"), max_value=Decimal("9999999.99"), places=2),
       billing=st.dates(min_value=date(2000, 1, 1), max_value=date(2098, 12, 1)), ref=refs)
def test_every_line_is_97_characters_and_parses_back(patron, account, amount, billing, ref):
    if amount == ZERO:
        amount = Decimal("0.01")
    due = bf.due_date(billing) if amount > 0 else None
    fields = bf.LineFields(patron, account, amount, due, billing if amount > 0 else None, bf.term_code(billing), ref)
    line = bf.format_line(fields)
    assert len(line) == bf.LINE_LENGTH and line.isascii()
    assert bf.parse_line(line) == fields


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2098, 12, 1)), step=st.integers(1, 400),
       due_day=st.integers(1, 28))
def test_due_dates_and_terms_never_go_back_in_time(day, step, due_day):
    later = day + timedelta(days=step)
    assert bf.due_date(later, due_day) >= bf.due_date(day, due_day) > day
    assert bf.term_code(later) >= bf.term_code(day)  # 2YYT sorts in time order


# -- the payments CSV parser -----------------------------------------------------------------
HEADER = b"Emplid,Date Paid,Reference Number,Charge Amount,Paid Amount,Item Type,Charge Description\r\n"
cell = st.one_of(st.text(max_size=12), st.sampled_from(["1e3", "-5", "$3.00", "3,00", "NaN", "Infinity", "0.001",
                                                        "48.51", "(5.00)", "", " 12.5 ", "1,234.50"]))


@given(rows=st.lists(st.lists(cell, min_size=0, max_size=9), max_size=8), tail=st.binary(max_size=20))
@settings(max_examples=300)
def test_the_payments_parser_gives_exact_rows_or_our_error_only(rows, tail):
    text = "\r\n".join(",".join(f'"{c}"' if ("," in c or '"' in c) and '"' not in c else c for c in r) for r in rows)
    for data in (HEADER + text.encode("utf-8", "replace"), HEADER + text.encode("utf-8", "replace") + tail):
        try:
            parsed = parse_payments(data, name="fuzz.csv")
        except PaymentFileError:
            continue
        for row in parsed.rows:
            assert isinstance(row.paid, Decimal) and isinstance(row.charge, Decimal)
            assert cents(row.paid) and cents(row.charge) and row.paid.is_finite()
            assert row.emplid and row.reference and row.date_paid
        assert all(bad.message.startswith("line ") for bad in parsed.bad)


@given(data=st.binary(max_size=400))
def test_any_bytes_give_rows_or_our_error(data):
    try:
        parse_payments(data, name="bytes.csv")
    except PaymentFileError:
        pass
