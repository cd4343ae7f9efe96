"""The sandbox's Bursar payment files and the Alma side of paying them
(bursar/sandbox/payments_gen.py).

The files feed the Direction-2 end-to-end tests, so these checks are about the files being
cumulative, agreeing with the generated Alma worlds, carrying every case, and about the Analytics
refresh (fold_payments) and re-install keeping what pyBursar paid.  The last test plays the
payments rules against a real sandbox Alma server to check that PaymentFile.expected, the folded
worlds and the server agree day after day.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from bursar.rules import columns as C
from bursar.rules.money import to_money
from bursar.rules.payments_csv import external_transaction_id, parse_payments
from bursar.sandbox.alma_server import CLOSED_FEE_MESSAGE, SandboxAlma
from bursar.sandbox.generator import World, generate_days, install_world, parse_amount
from bursar.sandbox.payments_gen import (
    PAYMENTS_PREFIX,
    PaymentFile,
    fold_payments,
    install_world_keeping_payments,
    payment_cases,
    payment_files,
)

ROW_CASES = {"partial", "full", "paid_in_steps", "overpayment", "zero_charge", "zero_payment",
             "unknown_reference", "closed_in_alma", "malformed", "repeat", "leading_zero",
             "quoted_comma"}
NAME = re.compile(rf"^{PAYMENTS_PREFIX}_(\d{{8}})_(\d{{8}})_(\d{{8}})\.csv$")


@pytest.fixture(scope="module")
def worlds() -> list[World]:
    return generate_days(days=4)


@pytest.fixture(scope="module")
def files(worlds) -> list[PaymentFile]:
    return payment_files(worlds)


def parsed(f: PaymentFile):
    return parse_payments(f.data, name=f.name)


def fines(world: World) -> dict[str, dict]:
    return {r[C.FINE_ID]: r for r in world.fines}


def ymd(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def mdy(text: str) -> date:
    m, d, y = text.split("/")
    return date(int(y), int(m), int(d))


# --------------------------------------------------------------------------- shape of the files

def test_one_file_per_world_day_named_with_the_range_and_day(worlds, files):
    assert [f.day for f in files] == [w.day for w in worlds]
    for f in files:
        m = NAME.match(f.name)
        assert m, f.name
        assert (ymd(m[1]), ymd(m[2]), ymd(m[3])) == (date(2025, 7, 1), date(2026, 6, 30), f.day)
    assert sorted(f.name for f in files) == [f.name for f in files]  # name order is day order


def test_the_first_day_has_no_payments(files):
    p = parsed(files[0])
    assert p.rows == [] and p.bad == []


def test_files_are_cumulative(files):
    previous_rows: list = []
    previous_bad: list = []
    for f in files:
        p = parsed(f)
        keys = [r.key for r in p.rows]
        assert keys[:len(previous_rows)] == previous_rows, f.name
        assert [b.key for b in p.bad][:len(previous_bad)] == previous_bad
        # the new rows are all dated that day
        assert {mdy(r.date_paid) for r in p.rows[len(previous_rows):]} <= {f.day}
        previous_rows, previous_bad = keys, [b.key for b in p.bad]
    assert len(previous_rows) >= 12


def test_line_endings_bom_and_blank_line(files):
    for k, f in enumerate(files):
        if k % 2 == 0:
            assert f.data.startswith(b"\xef\xbb\xbf") and b"\r\n" in f.data
            assert b"\n" not in f.data.replace(b"\r\n", b"")
        else:
            assert not f.data.startswith(b"\xef\xbb\xbf") and b"\r" not in f.data
    for f in files[1:]:
        assert b"\n\r\n" in f.data or b"\n\n" in f.data  # a blank line after the first day's rows


def test_every_case_is_present(files):
    cases = payment_cases(files)
    assert ROW_CASES <= set(cases)
    assert all(cases[c] for c in ROW_CASES)
    assert "reset_dropped" not in cases


def test_rows_agree_with_the_alma_worlds(worlds, files):
    """Emplid = the fine's patron, charge = its original amount, paid only against fines that
    were Active the day before (so the Bursar was charged)."""
    cases = payment_cases(files)
    index = {w.day: k for k, w in enumerate(worlds)}
    all_ids = {fid for w in worlds for fid in fines(w)}
    for row in parsed(files[-1]).rows:
        k = index[mdy(row.date_paid)]
        assert k >= 1
        if row.reference in cases["unknown_reference"]:
            assert row.reference not in all_ids
            continue
        fine = fines(worlds[k - 1])[row.reference]
        assert row.emplid == fine[C.PRIMARY_ID]
        if row.reference in cases["closed_in_alma"]:  # charged on some earlier day, closed since
            assert any(fines(w)[row.reference][C.FINE_STATUS] == "Active" for w in worlds[:k])
            continue
        assert fine[C.FINE_STATUS] == "Active"
        if row.reference not in cases["zero_charge"]:
            assert row.charge == parse_amount(fine[C.ORIGINAL_AMOUNT])


def test_specific_cases(worlds, files):
    cases = payment_cases(files)
    last = parsed(files[-1])
    by_ref: dict[str, list] = {}
    for r in last.rows:
        by_ref.setdefault(r.reference, []).append(r)
    alma_last = fines(worlds[-1])

    (repeat,) = cases["repeat"]
    rows = by_ref[repeat]
    assert len(rows) == 2 and [r.occurrence for r in rows] == [1, 2]
    assert rows[0].key != rows[1].key and rows[0].key[:-1] == rows[1].key[:-1]

    assert all(by_ref[ref][0].emplid.startswith("0") for ref in cases["leading_zero"])
    assert all("," in by_ref[ref][0].description for ref in cases["quoted_comma"])
    assert b'"' in files[-1].data
    assert all(by_ref[ref][0].charge == 0 for ref in cases["zero_charge"])
    assert all(by_ref[ref][0].paid == 0 and by_ref[ref][0].charge > 0 for ref in cases["zero_payment"])

    (malformed,) = cases["malformed"]
    assert malformed not in by_ref
    (bad,) = last.bad
    assert "'Paid Amount'" in bad.message
    bad_line = files[-1].data.decode("utf-8-sig").splitlines()[bad.line - 1]
    assert malformed in bad_line

    (steps,) = cases["paid_in_steps"]
    assert len(by_ref[steps]) == 2 and by_ref[steps][0].date_paid != by_ref[steps][1].date_paid
    assert sum(r.paid for r in by_ref[steps]) == parse_amount(alma_last[steps][C.REMAINING_AMOUNT])

    (over,) = cases["overpayment"]
    assert by_ref[over][0].paid > parse_amount(alma_last[over][C.REMAINING_AMOUNT])

    (closed,) = cases["closed_in_alma"]
    row = by_ref[closed][0]
    k = [w.day for w in worlds].index(mdy(row.date_paid))
    assert fines(worlds[k])[closed][C.FINE_STATUS] == "Closed"
    assert any(fines(w).get(closed, {}).get(C.FINE_STATUS) == "Active" for w in worlds[:k])


def test_expected_totals(worlds, files):
    cases = payment_cases(files)
    expected = files[-1].expected
    never = cases["zero_charge"] + cases["zero_payment"] + cases["unknown_reference"] \
        + cases["closed_in_alma"] + cases["malformed"]
    assert not set(never) & set(expected)
    (repeat,) = cases["repeat"]
    each = next(r.paid for r in parsed(files[-1]).rows if r.reference == repeat)
    assert expected[repeat] == 2 * each
    (over,) = cases["overpayment"]
    assert expected[over] == parse_amount(fines(worlds[-1])[over][C.REMAINING_AMOUNT])
    for f, g in zip(files, files[1:]):  # totals only grow
        assert all(g.expected.get(fid, 0) >= amt for fid, amt in f.expected.items())
    assert all(isinstance(v, Decimal) and v > 0 for v in expected.values())


def test_deterministic_for_a_seed(worlds, files):
    again = payment_files(generate_days(days=4))
    assert [(f.name, f.data) for f in again] == [(f.name, f.data) for f in files]
    assert [f.cases for f in again] == [f.cases for f in files]
    other = payment_files(worlds, seed=7)
    assert [f.data for f in other] != [f.data for f in files]
    assert ROW_CASES <= set(payment_cases(other))


def test_two_days_put_every_case_on_the_one_payment_day():
    files = payment_files(generate_days(days=2))
    assert len(files) == 2
    assert ROW_CASES <= set(files[1].cases)
    assert payment_files([]) == []


def test_reset_restarts_the_range_and_drops_earlier_rows(worlds, files):
    reset = worlds[2].day
    after = payment_files(worlds, reset_on=reset)
    assert [f.data for f in after[:2]] == [f.data for f in files[:2]]
    for f, plain in zip(after[2:], files[2:]):
        m = NAME.match(f.name)
        assert m and (ymd(m[1]), ymd(m[2]), ymd(m[3])) == (reset, reset + timedelta(days=364), f.day)
        kept = parsed(f).rows
        assert kept and all(mdy(r.date_paid) >= reset for r in kept)
        # the surviving rows keep the keys they had before the reset: nothing is paid twice
        before = {r.key for r in parsed(plain).rows}
        assert {r.key for r in kept} <= before
        assert {r.key for r in parsed(plain).rows if mdy(r.date_paid) >= reset} == {r.key for r in kept}
        assert f.expected == plain.expected
    dropped = after[2].cases["reset_dropped"]
    assert dropped and set(dropped) == {r.reference for r in parsed(files[1]).rows} | set(
        files[1].cases["malformed"]) - {r.reference for r in parsed(after[2]).rows}
    assert sorted(f.name for f in after) == [f.name for f in after]


# --------------------------------------------------------------------------- fold_payments

def active_fine(world: World, *, min_remaining: Decimal = Decimal("1.00")) -> dict:
    return next(r for r in world.fines if r[C.FINE_STATUS] == "Active" and r[C.FINE_TYPE] != "Credit"
                and parse_amount(r[C.REMAINING_AMOUNT]) >= min_remaining)


def call(fine: dict, amount: str, ext: str, **extra) -> dict:
    return {"user_id": fine[C.PRIMARY_ID], "fee_id": fine[C.FINE_ID], "amount": Decimal(amount),
            "method": "ONLINE", "external_transaction_id": ext, "comment": "Paid to bursar", **extra}


def balance_of(world: World, patron: str) -> Decimal:
    return next(parse_amount(b[C.REMAINING_AMOUNT]) for b in world.balances if b[C.PRIMARY_ID] == patron)


def test_fold_partial_then_rest_closes_the_fine(worlds):
    world = worlds[1]
    fine = active_fine(world)
    fid, patron = fine[C.FINE_ID], fine[C.PRIMARY_ID]
    remaining = parse_amount(fine[C.REMAINING_AMOUNT])
    now = datetime(2026, 3, 3, 18, 0, 0)
    part = Decimal("0.37")
    folded = fold_payments(world, [call(fine, "0.37", "pybursar-a")], now=now)
    row = fines(folded)[fid]
    assert parse_amount(row[C.REMAINING_AMOUNT]) == remaining - part
    assert row[C.FINE_STATUS] == "Active" and row[C.STATUS_DATE] == "2026-03-03T18:00:00"
    assert balance_of(folded, patron) == balance_of(world, patron) - part
    # the input world is untouched
    assert fines(world)[fid] == fine and len(folded.transactions) == len(world.transactions) + 1

    rest = remaining - part
    calls = [call(fine, "0.37", "pybursar-a"), call(fine, f"{rest}", "pybursar-b")]
    folded = fold_payments(world, calls, now=now)
    row = fines(folded)[fid]
    assert row[C.REMAINING_AMOUNT] == "0" and row[C.FINE_STATUS] == "Closed"
    payments = [t for t in folded.transactions if t[C.FINE_ID] == fid and t[C.TRANS_ID] not in
                {x[C.TRANS_ID] for x in world.transactions}]
    assert [(t[C.TRANS_TYPE], parse_amount(t[C.TRANS_AMOUNT])) for t in payments] == [
        ("Payment", part), ("Payment", rest)]
    for t in payments:
        assert re.fullmatch(r"\d{10}0003841", t[C.TRANS_ID])
        assert t[C.PRIMARY_ID] == patron and t[C.LOAN_ID] == fine[C.LOAN_ID]
        assert t[C.TRANS_CREATED] == "2026-03-03T18:00:00" and t[C.TRANS_NOTE] == "Paid to bursar"
    assert balance_of(folded, patron) == balance_of(world, patron) - remaining
    created = [t[C.TRANS_CREATED] for t in folded.transactions]
    assert created == sorted(created)


def test_fold_is_deterministic_idempotent_and_ignores_the_unknown_and_the_future(worlds):
    world = worlds[1]
    fine = active_fine(world)
    now = datetime(2026, 3, 3, 18, 0, 0)
    calls = [call(fine, "0.10", "pybursar-x"),
             {**call(fine, "0.20", "pybursar-y"), "fee_id": "9999999990009999"},
             call(fine, "0.30", "pybursar-z", time=now + timedelta(minutes=1))]
    once = fold_payments(world, calls, now=now)
    assert fines(once)[fine[C.FINE_ID]][C.REMAINING_AMOUNT] == fines(
        fold_payments(world, calls[:1], now=now))[fine[C.FINE_ID]][C.REMAINING_AMOUNT]
    assert len(once.transactions) == len(world.transactions) + 1
    twice = fold_payments(once, calls, now=now)
    assert twice.fines == once.fines and twice.transactions == once.transactions
    assert fold_payments(world, calls, now=now).transactions == once.transactions
    # later, the future call becomes visible; the first keeps its own stamped time
    later = fold_payments(once, calls, now=now + timedelta(hours=1))
    assert len(later.transactions) == len(once.transactions) + 1
    assert parse_amount(fines(later)[fine[C.FINE_ID]][C.REMAINING_AMOUNT]) == \
        parse_amount(fine[C.REMAINING_AMOUNT]) - Decimal("0.40")


def test_two_identical_pay_calls_are_two_payments(worlds):
    world = worlds[1]
    fine = active_fine(world)
    now = datetime(2026, 3, 3, 18, 0, 0)
    folded = fold_payments(world, [call(fine, "0.25", "pybursar-same")] * 2, now=now)
    assert parse_amount(fines(folded)[fine[C.FINE_ID]][C.REMAINING_AMOUNT]) == \
        parse_amount(fine[C.REMAINING_AMOUNT]) - Decimal("0.50")


def test_fold_refuses_a_payment_bigger_than_the_remaining_amount(worlds):
    world = worlds[1]
    fine = active_fine(world)
    too_much = parse_amount(fine[C.REMAINING_AMOUNT]) + Decimal("0.01")
    with pytest.raises(ValueError, match=fine[C.FINE_ID]):
        fold_payments(world, [call(fine, f"{too_much}", "pybursar-big")], now=datetime(2026, 3, 3, 18))


# --------------------------------------------------------------------------- against a real sandbox Alma

@pytest.fixture
def alma():
    with SandboxAlma() as server:
        yield server


def fee_url(alma: SandboxAlma, user: str, fee: str) -> str:
    return f"{alma.url}/almaws/v1/users/{user}/fees/{fee}"


def headers(alma: SandboxAlma) -> dict[str, str]:
    return {"Authorization": f"apikey {alma.api_key}", "Accept": "application/json"}


def test_plain_install_world_loses_transactions_but_the_keeping_install_does_not(worlds, alma):
    world = worlds[1]
    fine = active_fine(world)
    user, fid = fine[C.PRIMARY_ID], fine[C.FINE_ID]
    install_world(alma, world)
    with requests.Session() as http:
        r = http.post(fee_url(alma, user, fid), headers=headers(alma), timeout=5,
                      params={"op": "pay", "method": "ONLINE", "amount": "0.50",
                              "external_transaction_id": "pybursar-keep", "comment": "c"})
        assert r.status_code == 200
        assert len(alma.fees[(user, fid)]["transactions"]) == 1
        folded = fold_payments(world, alma.pay_calls, now=datetime(2026, 3, 3, 18))
        install_world_keeping_payments(alma, folded)
        fee = alma.fees[(user, fid)]
        assert [t["external_transaction_id"] for t in fee["transactions"]] == ["pybursar-keep"]
        assert fee["balance"] == parse_amount(fine[C.REMAINING_AMOUNT]) - Decimal("0.50")
        got = http.get(fee_url(alma, user, fid), headers=headers(alma), timeout=5).json()
        assert got["transaction"][0]["external_transaction_id"] == "pybursar-keep"
        install_world(alma, folded)  # why install_world_keeping_payments exists
        assert alma.fees[(user, fid)]["transactions"] == []


def test_days_of_payments_against_the_sandbox_match_expected(worlds, files, alma):
    """Play the payment rules of docs/ledger.md §11 (skip zero rows, closed fees; pay min(paid, balance)) day by day:
    what the server was paid equals PaymentFile.expected, and each refresh agrees with Alma."""
    done: set[str] = set()
    calls: list[dict] = []
    closed_seen: list[str] = []
    with requests.Session() as http:
        for world, f in zip(worlds, files):
            run = datetime.combine(world.day, datetime.min.time()).replace(hour=18)
            folded = fold_payments(world, calls, now=run)
            install_world_keeping_payments(alma, folded)
            for row in folded.fines:  # the refreshed Analytics agrees with the fees API
                fee = alma.fees[(row[C.PRIMARY_ID], row[C.FINE_ID])]
                assert fee["balance"] == parse_amount(row[C.REMAINING_AMOUNT])
            for row in parse_payments(f.data, name=f.name).rows:
                if row.key in done:
                    continue
                done.add(row.key)
                if row.charge == 0 or row.paid <= 0:
                    continue
                url = fee_url(alma, row.emplid, row.reference)
                got = http.get(url, headers=headers(alma), timeout=5)
                if got.status_code != 200:
                    message = got.json()["errorList"]["error"][0]["errorMessage"]
                    if message == CLOSED_FEE_MESSAGE:
                        closed_seen.append(row.reference)
                    continue
                balance = to_money(json.loads(got.text, parse_float=Decimal, parse_int=Decimal)["balance"])
                amount = min(row.paid, balance)
                if amount <= 0:
                    continue
                ext = external_transaction_id(row.key)
                r = http.post(url, headers=headers(alma), timeout=5, params={
                    "op": "pay", "method": "ONLINE", "amount": f"{amount:.2f}",
                    "external_transaction_id": ext, "comment": f"Paid to bursar on {row.date_paid}"})
                assert r.status_code == 200, r.text
            new = alma.pay_calls[len(calls):]
            calls += [{**c, "time": run} for c in new]
            paid: Counter[str] = Counter()
            for c in calls:
                paid[c["fee_id"]] += c["amount"]
            assert dict(paid) == f.expected, f.name
    assert closed_seen == payment_cases(files)["closed_in_alma"]
    # the last refresh shows every payment as an Analytics transaction
    final = fold_payments(worlds[-1], calls, now=datetime(2030, 1, 1))
    assert fold_payments(final, calls, now=datetime(2030, 1, 1)).transactions == final.transactions
    assert len(final.transactions) == len(worlds[-1].transactions) + len(calls)
