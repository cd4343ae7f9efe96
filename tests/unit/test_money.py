"""Money parsing and the three allocation rules (docs/allocation.md §1-§4, §6)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from bursar.errors import BursarError
from bursar.rules.money import (
    CENT,
    ZERO,
    Allocation,
    BadAmount,
    PartTarget,
    allocate_greedy,
    allocate_to_parts,
    apply_payment_to_parts,
    fmt,
    to_cents,
    to_money,
)
from tests.unit.amounts import from_cents


def D(text: str) -> Decimal:
    return Decimal(text)


def Ds(*texts: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(t) for t in texts)


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("4.5", "4.50"),
        ("-12.340", "-12.34"),
        ("25", "25.00"),
        ("  7.10 ", "7.10"),
        ("+3", "3.00"),
        (".5", "0.50"),
        ("4.", "4.00"),
        ("2.675", "2.68"),  # half-up on the decimal text, not half-even on a binary double
        ("-2.675", "-2.68"),
        ("0.125", "0.13"),
        ("2.674999", "2.67"),
        ("-0", "0.00"),
        (25, "25.00"),
        (-3, "-3.00"),
        (D("1.005"), "1.01"),
        (D("65"), "65.00"),
    ],
)
def test_to_money_parses_exactly_and_rounds_half_up(value, expected):
    result = to_money(value)
    assert result == D(expected)
    assert str(result) == expected
    assert result.as_tuple().exponent == -2


def test_negative_zero_is_normalised():
    assert str(to_money("-0.001")) == "0.00"
    assert not to_money("-0.00").is_signed()


@pytest.mark.parametrize("bad", ["", "   ", "abc", "1e2", "1E2", "NaN", "nan", "inf", "-Infinity",
                                 "1,234.50", "$5", "--1", "1.2.3", None, D("NaN"), D("Infinity")])
def test_garbage_is_bad_amount_naming_the_text(bad):
    with pytest.raises(BadAmount) as info:
        to_money(bad)
    assert isinstance(info.value, ValueError) and isinstance(info.value, BursarError)
    assert repr(bad) in str(info.value)
    assert "\n" not in str(info.value)


def test_float_and_bool_are_type_errors():
    with pytest.raises(TypeError):
        to_money(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_money(True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_money([1])  # type: ignore[arg-type]


def test_huge_amount_is_bad_amount_not_a_crash():
    with pytest.raises(BadAmount):
        to_money("9" * 60)


def test_cents_round_trip():
    assert to_cents(D("12.34")) == 1234
    assert to_cents(D("-0.05")) == -5
    assert to_cents(D("65")) == 6500
    rng = random.Random(7)
    for _ in range(500):
        c = rng.randint(-10**9, 10**9)
        assert to_cents(Decimal(c).scaleb(-2)) == c
    with pytest.raises(TypeError):
        to_cents(1.5)  # type: ignore[arg-type]


def test_fmt():
    assert fmt(D("12.34")) == "12.34"
    assert fmt(D("4.5")) == "4.50"
    assert fmt(D("-4.5")) == "-4.50"
    assert fmt(ZERO) == "0.00"
    assert fmt(D("1234567.89")) == "1234567.89"
    assert CENT == D("0.01")


# --- allocate_greedy (distributeCreditAlma, fixed) -----------------------------------------


@pytest.mark.parametrize(
    "credit, caps, amounts, remainder",
    [
        ("12", ("10", "5"), ("10", "2"), "0"),  # the original lost 10 here (docs/original-defects.md §5)
        ("3", ("10", "5"), ("3", "0"), "0"),
        ("7", ("5", "10", "2"), ("0", "7", "0"), "0"),
        ("5", ("10", "5"), ("0", "5"), "0"),  # exact match wins over the larger capacity
        ("5", ("5", "5"), ("5", "0"), "0"),  # first exact match
        ("20", ("10", "5"), ("10", "5"), "5"),  # more than all capacity: remainder
        ("8", ("4", "6", "6"), ("0", "6", "2"), "0"),  # stable order on equal capacities
        ("4", ("-3", "2"), ("0", "2"), "2"),  # negative capacity counts as 0
        ("4", ("-4", "4"), ("0", "4"), "0"),
        ("0", ("10",), ("0",), "0"),
        ("-5", ("10",), ("0",), "0"),
        ("5", (), (), "5"),
        ("10", ("10",), ("10",), "0"),  # a single fine is simply credited
    ],
)
def test_allocate_greedy_examples(credit, caps, amounts, remainder):
    result = allocate_greedy(D(credit), Ds(*caps))
    assert result == Allocation(Ds(*amounts), D(remainder))


def test_allocate_greedy_properties():
    """docs/allocation.md §2 and §6: allocations >= 0, Σ + remainder = credit, none above its capacity, exact
    match to the first equal, otherwise descending stable greedy."""
    rng = random.Random(1205)
    for _ in range(3000):
        n = rng.randint(0, 5)
        caps = [from_cents(rng.randint(-500, 3000)) for _ in range(n)]
        if n and rng.random() < 0.3:
            credit = max(caps[rng.randrange(n)], CENT)
        else:
            credit = from_cents(rng.randint(1, 8000))
        result = allocate_greedy(credit, caps)
        assert len(result.amounts) == n
        assert all(a >= 0 for a in result.amounts)
        assert result.remainder >= 0
        assert sum(result.amounts, ZERO) + result.remainder == credit
        assert all(a <= max(c, ZERO) for a, c in zip(result.amounts, caps))
        if credit in caps:
            first = caps.index(credit)
            assert result.amounts[first] == credit
        else:
            # Greedy: whoever is not filled to capacity comes after everyone who got something,
            # and a remainder means everyone is full.
            order = sorted(range(n), key=lambda i: -max(caps[i], ZERO))
            seen_partial = False
            for i in order:
                cap = max(caps[i], ZERO)
                if seen_partial:
                    assert result.amounts[i] == 0
                elif result.amounts[i] < cap:
                    seen_partial = True
            if result.remainder > 0:
                assert all(a == max(c, ZERO) for a, c in zip(result.amounts, caps))


# --- allocate_to_parts (distributeCreditBurs, fixed) ---------------------------------------

T = PartTarget


@pytest.mark.parametrize(
    "credit, targets, allow_negative, amounts, remainder",
    [
        # what the original gave for these inputs; ours agrees (docs/allocation.md §3)
        ("10", [T(D("10"), D("10"))], False, ("10",), "0"),
        ("4", [T(D("10"), D("10"))], False, ("4",), "0"),
        ("12", [T(D("10"), D("10"))], False, ("10",), "2"),
        ("12", [T(D("10"), D("10"))], True, ("12",), "0"),
        ("25", [T(D("10"), D("10"))], True, ("20",), "5"),
        ("10", [T(D("0"), D("10"))], True, ("10",), "0"),
        ("25", [T(D("150"), D("150")), T(D("25"), D("25"))], False, ("0", "25"), "0"),
        ("150", [T(D("150"), D("150")), T(D("25"), D("25"))], False, ("150", "0"), "0"),
        ("160", [T(D("150"), D("150")), T(D("25"), D("25"))], False, ("150", "10"), "0"),
        ("30", [T(D("150"), D("150")), T(D("25"), D("25"))], False, ("30", "0"), "0"),
        ("40", [T(D("0"), D("150")), T(D("0"), D("25"))], True, ("40", "0"), "0"),
        ("30", [T(D("5"), D("5")), T(D("5"), D("25"))], True, ("10", "20"), "0"),
        # ties go to the second part (reverse2)
        ("10", [T(D("10"), D("10")), T(D("10"), D("10"))], False, ("0", "10"), "0"),
        # docs/original-defects.md §6 fixed: equal values are different positions
        ("5", [T(D("0"), D("0")), T(D("0"), D("25"))], True, ("0", "5"), "0"),
        # docs/original-defects.md §6 fixed: a part already below -original takes nothing more
        ("3", [T(D("-12"), D("10"))], True, ("0",), "3"),
        # a waive never pushes a part below zero
        ("3", [T(D("-2"), D("10")), T(D("2"), D("10"))], False, ("0", "2"), "1"),
        ("0", [T(D("10"), D("10"))], True, ("0",), "0"),
        ("5", [], True, (), "5"),
        # three parts: no reverse2, plain order
        ("7", [T(D("5"), D("5")), T(D("5"), D("5")), T(D("5"), D("5"))], False, ("5", "2", "0"), "0"),
    ],
)
def test_allocate_to_parts_examples(credit, targets, allow_negative, amounts, remainder):
    result = allocate_to_parts(D(credit), targets, allow_negative)
    assert result == Allocation(Ds(*amounts), D(remainder))


def test_allocate_to_parts_properties():
    rng = random.Random(42)
    for _ in range(3000):
        n = rng.randint(1, 3)
        targets = []
        for _ in range(n):
            orig = from_cents(rng.randint(0, 20000))
            cur = from_cents(rng.randint(-int(to_cents(orig)) - 500, int(to_cents(orig))))
            targets.append(PartTarget(cur, orig))
        allow = rng.random() < 0.5
        if n == 2 and rng.random() < 0.3 and targets[1].current > 0:
            credit = targets[1].current
        else:
            credit = from_cents(rng.randint(1, 30000))
        result = allocate_to_parts(credit, targets, allow)
        assert all(a >= 0 for a in result.amounts)
        assert result.remainder >= 0
        assert sum(result.amounts, ZERO) + result.remainder == credit
        for a, t in zip(result.amounts, targets):
            after = t.current - a
            if a > 0:
                # docs/allocation.md §3: waive never below 0; credit never below -original
                assert after >= (-t.original if allow else ZERO)
        if result.remainder > 0:
            # nothing was left on the table: every part is at its floor (or was already below)
            for a, t in zip(result.amounts, targets):
                floor = -t.original if allow else ZERO
                assert t.current - a == min(t.current, floor)
        if n == 2 and credit == targets[1].current:
            # docs/allocation.md §3: an exact match of the second part goes entirely to it
            assert result.amounts == (ZERO, credit)


# --- apply_payment_to_parts ----------------------------------------------------------------


@pytest.mark.parametrize(
    "payment, owed, amounts, remainder",
    [
        ("10", ("10",), ("10",), "0"),
        ("4", ("10",), ("4",), "0"),
        ("12", ("10",), ("10",), "2"),  # excess reported, not fatal
        ("10", ("0",), ("0",), "10"),  # paid in Alma before it was ever exported
        ("160", ("150", "25"), ("150", "10"), "0"),  # part order, not size
        ("30", ("-5", "25"), ("0", "25"), "5"),  # a part in credit takes nothing
        ("5", ("5", "5"), ("5", "0"), "0"),
        ("0", ("5",), ("0",), "0"),
        ("3", (), (), "3"),
    ],
)
def test_apply_payment_to_parts(payment, owed, amounts, remainder):
    assert apply_payment_to_parts(D(payment), Ds(*owed)) == Allocation(Ds(*amounts), D(remainder))


def test_apply_payment_properties():
    rng = random.Random(99)
    for _ in range(2000):
        owed = [from_cents(rng.randint(-1000, 5000)) for _ in range(rng.randint(0, 3))]
        payment = from_cents(rng.randint(1, 12000))
        result = apply_payment_to_parts(payment, owed)
        assert sum(result.amounts, ZERO) + result.remainder == payment
        assert all(ZERO <= a <= max(o, ZERO) for a, o in zip(result.amounts, owed))
        if result.remainder > 0:
            assert all(a == max(o, ZERO) for a, o in zip(result.amounts, owed))
        assert result.total == sum(result.amounts, ZERO)


def test_allocations_refuse_floats():
    with pytest.raises(TypeError):
        allocate_greedy(1.5, [D("2")])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        allocate_to_parts(D("1"), [PartTarget(2.0, D("2"))], False)  # type: ignore[arg-type]
