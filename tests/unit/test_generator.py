"""Tests of the sandbox's seeded Alma data generator (bursar/sandbox/generator.py).

The generated worlds feed the end-to-end tests and the demo, so these checks are about the data
being internally consistent and covering every case the import/export must handle.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from bursar.rules import columns as C
from bursar.sandbox.generator import (
    DEBIT_TYPES,
    FEE_TYPE_CODES,
    SANDBOX_REPORTS,
    ReportPaths,
    World,
    bulk_world,
    generate_days,
    install_world,
    parse_amount,
    render_amount,
)

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLOCK = re.compile(r"^\d{2}:\d{2}:\d{2}$")
ALMA_ID = re.compile(r"^\d{9,10}0003841$")
EMPLID = re.compile(r"^\d{10}$")
AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")
LOCATIONS = {"law-stks", "lawres_lw_", "main_lw_res", "main-stks", "hay-stks", "noble-ref", "-1"}
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def worlds() -> list[World]:
    return generate_days()


@pytest.fixture(scope="module")
def last(worlds: list[World]) -> World:
    return worlds[-1]


def money(text: str | None) -> Decimal:
    """What a careful importer does with an Analytics amount: exact parse, HALF_UP to cents."""
    assert text is not None and AMOUNT.match(text), text
    return Decimal(text).quantize(CENT, rounding=ROUND_HALF_UP)


def txns_by_fine(world: World) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for t in world.transactions:
        out[t[C.FINE_ID]].append(t)
    for rows in out.values():
        rows.sort(key=lambda t: t[C.TRANS_CREATED])
    return out


def fines_by_id(world: World) -> dict[str, dict]:
    return {f[C.FINE_ID]: f for f in world.fines}


def signed(t: dict) -> Decimal:
    """Effect of a transaction on the fee's remaining amount."""
    amt = money(t[C.TRANS_AMOUNT])
    return amt if t[C.TRANS_TYPE] == "Fine" else -amt


def credit_fines(world: World) -> list[dict]:
    return [f for f in world.fines if f[C.FINE_TYPE] == "Credit"]


# --------------------------------------------------------------------------- rendering helpers

@pytest.mark.parametrize("cents, text", [
    (2500, "25"), (450, "4.5"), (30, "0.3"), (15000, "150"), (1, "0.01"), (10, "0.1"), (25, "0.25"),
    (775, "7.75"), (99999, "999.99"), (1234567, "12345.67"), (0, "0"), (-99999, "-999.99"), (-30, "-0.3"),
])
def test_render_amount_like_analytics_doubles(cents: int, text: str) -> None:
    assert render_amount(cents) == text
    assert parse_amount(text) == Decimal(cents) / 100


def test_parse_amount_rounds_float_noise_half_up() -> None:
    assert parse_amount("0.30000000000000004") == Decimal("0.30")
    assert parse_amount("2.675") == Decimal("2.68")
    assert parse_amount("0.19999999999999998") == Decimal("0.20")


# --------------------------------------------------------------------------- determinism, days

def test_same_seed_gives_identical_worlds() -> None:
    a, b = generate_days(seed=7), generate_days(seed=7)
    assert a == b
    assert bulk_world(300, seed=3) == bulk_world(300, seed=3)


def test_different_seed_gives_different_worlds(worlds: list[World]) -> None:
    other = generate_days(seed=20261129)
    assert [w.fines for w in other] != [w.fines for w in worlds]
    assert {f[C.FINE_ID] for f in other[-1].fines} != {f[C.FINE_ID] for f in worlds[-1].fines}
    assert bulk_world(300, seed=3).fines != bulk_world(300, seed=4).fines


def test_one_world_per_day_with_its_date(worlds: list[World]) -> None:
    assert [w.day for w in worlds] == [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)]
    five = generate_days(start=date(2027, 12, 30), days=5, new_fines_per_day=2)
    assert [w.day for w in five] == [date(2027, 12, 30) + timedelta(days=k) for k in range(5)]
    one = generate_days(days=1)
    assert one[0] == worlds[0]  # later days never change an earlier day's world
    with pytest.raises(ValueError):
        generate_days(days=0)


def test_nothing_is_dated_after_its_world(worlds: list[World]) -> None:
    for w in generate_days(days=5) + worlds:
        end = f"{w.day.isoformat()}T23:59:59"
        assert all(f[C.FINE_CREATED] <= end and f[C.STATUS_DATE] <= end for f in w.fines)
        assert all(t[C.TRANS_CREATED] <= end for t in w.transactions)
        # each day brings new fines (the scripted ones plus the random ones)
        assert any(f[C.FINE_CREATED].startswith(w.day.isoformat()) for f in w.fines)


def test_days_are_cumulative(worlds: list[World]) -> None:
    changing = {C.STATUS_DATE, C.REMAINING_AMOUNT, C.FINE_STATUS}
    for before, after in zip(worlds, worlds[1:]):
        now = fines_by_id(after)
        assert len(after.fines) > len(before.fines)
        for old in before.fines:
            new = now[old[C.FINE_ID]]
            for col in C.FINES_COLUMNS:
                if col not in changing:
                    assert new[col] == old[col], (old[C.FINE_ID], col)
            assert new[C.STATUS_DATE] >= old[C.STATUS_DATE]
        later_txns = {t[C.TRANS_ID]: t for t in after.transactions}
        for t in before.transactions:
            assert later_txns[t[C.TRANS_ID]] == t
        assert len(after.transactions) > len(before.transactions)


def test_new_fines_per_day_adds_random_fines() -> None:
    none = generate_days(new_fines_per_day=0)
    many = generate_days(new_fines_per_day=20)
    assert len(many[0].fines) - len(none[0].fines) >= 20
    assert len(many[-1].fines) - len(none[-1].fines) >= 60


# --------------------------------------------------------------------------- internal consistency

def check_world(w: World) -> None:
    """Every invariant a consumer may rely on, for every row of one world."""
    by_fine = txns_by_fine(w)
    fines = fines_by_id(w)
    assert len(fines) == len(w.fines), "duplicate Fine Fee Id"
    assert len({t[C.TRANS_ID] for t in w.transactions}) == len(w.transactions)
    patrons_total: dict[str, Decimal] = defaultdict(Decimal)
    for f in w.fines:
        assert list(f) == C.FINES_COLUMNS
        fid = f[C.FINE_ID]
        assert ALMA_ID.match(fid) and EMPLID.match(f[C.PRIMARY_ID])
        assert TS.match(f[C.FINE_CREATED]) and TS.match(f[C.STATUS_DATE])
        assert f[C.FINE_TYPE] in DEBIT_TYPES + ["Credit"]
        assert f[C.LOCATION_CODE] in LOCATIONS
        for d, t in ((C.LOAN_DATE, C.LOAN_TIME), (C.DUE_DATE, C.DUE_TIME), (C.RETURN_DATE, C.RETURN_TIME)):
            assert (f[d] is None) == (f[t] is None)
            assert f[d] is None or (DAY.match(f[d]) and CLOCK.match(f[t]))
        loan = f[C.LOAN_ID]
        assert loan in (None, "-1") or ALMA_ID.match(loan)
        if loan in (None, "-1"):
            assert f[C.LOAN_DATE] is None and f[C.LOCATION_CODE] == "-1"
        orig, rem = money(f[C.ORIGINAL_AMOUNT]), money(f[C.REMAINING_AMOUNT])
        assert orig != 0
        trans = by_fine.get(fid, [])
        running = orig
        for t in trans:
            assert list(t) == C.TRANSACTIONS_COLUMNS
            assert t[C.TRANS_TYPE] in ("Payment", "Waive", "Credit", "Fine")
            assert ALMA_ID.match(t[C.TRANS_ID]) and TS.match(t[C.TRANS_CREATED])
            assert t[C.TRANS_CREATED] > f[C.FINE_CREATED]
            assert t[C.LOAN_ID] == loan and t[C.PRIMARY_ID] == f[C.PRIMARY_ID]
            amt = money(t[C.TRANS_AMOUNT])
            assert amt > 0 and not t[C.TRANS_AMOUNT].startswith("-")
            if t[C.TRANS_TYPE] == "Fine":  # a re-charge restores what a full waive removed
                assert running + amt <= orig
            else:
                assert amt <= running, f"{t[C.TRANS_TYPE]} of {amt} exceeds remaining {running} on {fid}"
            running += signed(t)
        assert rem == running == orig + sum(signed(t) for t in trans)
        assert (f[C.FINE_STATUS] == "Closed") == (rem == 0)
        assert f[C.FINE_STATUS] in ("Active", "Closed")
        latest = trans[-1][C.TRANS_CREATED] if trans else f[C.FINE_CREATED]
        assert f[C.STATUS_DATE] == latest
        if f[C.FINE_TYPE] == "Credit":
            assert orig < 0 and not trans
        else:
            assert orig > 0
        patrons_total[f[C.PRIMARY_ID]] += rem
    assert set(by_fine) <= set(fines), "transaction for an unknown fine"
    check_credits(w)
    assert [b[C.PRIMARY_ID] for b in w.balances] == sorted(patrons_total)
    for b in w.balances:
        assert list(b) == C.BALANCES_COLUMNS
        assert money(b[C.REMAINING_AMOUNT]) == patrons_total[b[C.PRIMARY_ID]]


def check_credits(w: World) -> None:
    """Each Credit fee matches a debit fine (loan + patron) charged at least that much before it."""
    by_fine = txns_by_fine(w)
    for cf in credit_fines(w):
        loan = cf[C.LOAN_ID]
        assert loan not in (None, "-1")
        targets = [f for f in w.fines if f[C.LOAN_ID] == loan and f[C.FINE_TYPE] != "Credit"]
        assert targets and all(f[C.PRIMARY_ID] == cf[C.PRIMARY_ID] for f in targets)
        credit = -money(cf[C.ORIGINAL_AMOUNT])
        assert money(cf[C.REMAINING_AMOUNT]) == -credit and cf[C.FINE_STATUS] == "Active"

        def charged(f: dict, cf: dict = cf) -> Decimal:  # net of waives/credits, payments excluded, before the credit
            before = [t for t in by_fine.get(f[C.FINE_ID], []) if t[C.TRANS_CREATED] < cf[C.FINE_CREATED]]
            return money(f[C.ORIGINAL_AMOUNT]) + sum(signed(t) for t in before if t[C.TRANS_TYPE] != "Payment")

        assert any(cf[C.FINE_CREATED] > f[C.FINE_CREATED] and charged(f) >= credit for f in targets)


def test_every_world_is_internally_consistent(worlds: list[World]) -> None:
    for w in worlds:
        check_world(w)


@pytest.mark.parametrize("seed", [1, 2, 3, 99])
def test_other_seeds_and_longer_runs_are_consistent(seed: int) -> None:
    for w in generate_days(seed=seed, days=6, new_fines_per_day=15):
        check_world(w)


# --------------------------------------------------------------------------- realism coverage

def test_ids_and_emplids_look_like_almas(last: World) -> None:
    ids = [f[C.FINE_ID] for f in last.fines] + [t[C.TRANS_ID] for t in last.transactions]
    ids += [f[C.LOAN_ID] for f in last.fines if f[C.LOAN_ID] not in (None, "-1")]
    assert {len(i) for i in ids} == {16, 17}
    assert all(i.endswith("0003841") for i in ids)
    emplids = {f[C.PRIMARY_ID] for f in last.fines}
    assert any(e.startswith("0") for e in emplids) and any(not e.startswith("0") for e in emplids)


def test_about_a_third_of_patrons_have_several_fines(last: World) -> None:
    per_patron = Counter(f[C.PRIMARY_ID] for f in last.fines)
    share = sum(1 for n in per_patron.values() if n > 1) / len(per_patron)
    assert 0.2 <= share <= 0.5


def test_all_fine_types_and_locations_appear(last: World) -> None:
    assert {f[C.FINE_TYPE] for f in last.fines} == set(DEBIT_TYPES) | {"Credit"}
    assert {f[C.LOCATION_CODE] for f in last.fines} == LOCATIONS


def test_fines_without_loan_use_minus_one_or_absent(last: World) -> None:
    loans = [f[C.LOAN_ID] for f in last.fines]
    assert "-1" in loans and None in loans


def test_lost_item_fees_can_share_a_loan(last: World) -> None:
    per_loan = Counter(f[C.LOAN_ID] for f in last.fines
                       if f[C.LOAN_ID] not in (None, "-1") and f[C.FINE_TYPE] != "Credit")
    shared = [loan for loan, n in per_loan.items() if n > 1]
    assert shared
    types = {f[C.FINE_TYPE] for f in last.fines if f[C.LOAN_ID] in shared}
    assert {"Lost item replacement fee", "Lost item process fee"} <= types


def test_tricky_amounts_appear(last: World) -> None:
    texts = [f[C.ORIGINAL_AMOUNT] for f in last.fines] + [t[C.TRANS_AMOUNT] for t in last.transactions]
    values = {money(x) for x in texts}
    for v in ("0.01", "0.10", "0.25", "0.30", "7.75", "999.99", "12345.67"):
        assert Decimal(v) in values, v
    for raw in ("4.5", "25", "0.3", "150", "0.30000000000000004"):
        assert raw in texts, raw
    noisy = [f for f in last.fines if f[C.ORIGINAL_AMOUNT] == "0.30000000000000004"]
    assert len(noisy) == 1 and last.cases["float_noise"] == [noisy[0][C.FINE_ID]]


def test_transaction_types_full_and_partial(last: World) -> None:
    fines = fines_by_id(last)
    kinds = Counter(t[C.TRANS_TYPE] for t in last.transactions)
    assert kinds["Payment"] and kinds["Waive"] and kinds["Credit"] and kinds["Fine"]
    full_waive = partial_waive = full_pay = partial_pay = False
    for fid, trans in txns_by_fine(last).items():
        running = money(fines[fid][C.ORIGINAL_AMOUNT])
        for t in trans:
            amt = money(t[C.TRANS_AMOUNT])
            if t[C.TRANS_TYPE] == "Waive":
                full_waive |= amt == running
                partial_waive |= amt < running
            if t[C.TRANS_TYPE] == "Payment":
                full_pay |= amt == running
                partial_pay |= amt < running
            running += signed(t)
    assert full_waive and partial_waive and full_pay and partial_pay


def _created_day(text: str) -> str:
    return text[:10]


def test_same_day_payments_and_waives_before_export(worlds: list[World]) -> None:
    """Some new fines are paid or waived on the day they were created (before any export)."""
    for w in worlds:
        today = w.day.isoformat()
        fines = fines_by_id(w)
        same_day = {t[C.TRANS_TYPE] for t in w.transactions
                    if _created_day(t[C.TRANS_CREATED]) == today
                    and _created_day(fines[t[C.FINE_ID]][C.FINE_CREATED]) == today}
        assert "Payment" in same_day, today
    (waived,) = worlds[0].cases["waived_same_day"]
    assert fines_by_id(worlds[0])[waived][C.FINE_STATUS] == "Closed"
    assert [t[C.TRANS_TYPE] for t in txns_by_fine(worlds[0])[waived]] == ["Waive"]


def test_activity_on_earlier_fines(worlds: list[World]) -> None:
    for w in worlds[1:]:
        today = w.day.isoformat()
        fines = fines_by_id(w)
        earlier = {t[C.TRANS_TYPE] for t in w.transactions
                   if _created_day(t[C.TRANS_CREATED]) == today
                   and _created_day(fines[t[C.FINE_ID]][C.FINE_CREATED]) < today}
        assert {"Payment", "Waive"} & earlier, today


def test_full_waive_after_export(worlds: list[World]) -> None:
    (fid,) = worlds[-1].cases["waive_after_export"]
    d1, d2 = fines_by_id(worlds[0])[fid], fines_by_id(worlds[1])[fid]
    assert d1[C.FINE_STATUS] == "Active" and d1[C.LOCATION_CODE] == "law-stks"
    assert d2[C.FINE_STATUS] == "Closed" and d2[C.STATUS_DATE].startswith(worlds[1].day.isoformat())
    (waive,) = txns_by_fine(worlds[1])[fid]
    assert waive[C.TRANS_TYPE] == "Waive" and money(waive[C.TRANS_AMOUNT]) == money(d1[C.ORIGINAL_AMOUNT])


def test_partial_waive_after_export(worlds: list[World]) -> None:
    (fid,) = worlds[-1].cases["partial_waive_after_export"]
    assert fid not in txns_by_fine(worlds[0])
    (waive,) = txns_by_fine(worlds[1])[fid]
    fine = fines_by_id(worlds[1])[fid]
    assert waive[C.TRANS_TYPE] == "Waive"
    assert 0 < money(waive[C.TRANS_AMOUNT]) < money(fine[C.ORIGINAL_AMOUNT])
    assert fine[C.FINE_STATUS] == "Active"


def test_recharge_after_full_waive(worlds: list[World]) -> None:
    (fid,) = worlds[0].cases["recharge"]
    d1, d2 = fines_by_id(worlds[0])[fid], fines_by_id(worlds[1])[fid]
    assert d1[C.FINE_STATUS] == "Closed" and d1[C.REMAINING_AMOUNT] == "0"
    assert [t[C.TRANS_TYPE] for t in txns_by_fine(worlds[0])[fid]] == ["Waive"]
    waive, fine = txns_by_fine(worlds[1])[fid]
    assert fine[C.TRANS_TYPE] == "Fine" and fine[C.TRANS_CREATED].startswith(worlds[1].day.isoformat())
    assert money(fine[C.TRANS_AMOUNT]) == money(waive[C.TRANS_AMOUNT]) == money(d1[C.ORIGINAL_AMOUNT])
    assert d2[C.ORIGINAL_AMOUNT] == d1[C.ORIGINAL_AMOUNT]
    assert d2[C.REMAINING_AMOUNT] == d2[C.ORIGINAL_AMOUNT] and d2[C.FINE_STATUS] == "Active"


def test_credit_after_export_on_a_shared_loan(worlds: list[World]) -> None:
    assert "credit_after_export" not in worlds[0].cases  # the credit comes on day 2
    repl_id, credit_id = worlds[1].cases["credit_after_export"]
    fines = fines_by_id(worlds[1])
    repl, credit = fines[repl_id], fines[credit_id]
    assert repl_id in fines_by_id(worlds[0]) and credit_id not in fines_by_id(worlds[0])
    assert credit[C.FINE_TYPE] == "Credit" and repl[C.FINE_TYPE] == "Lost item replacement fee"
    assert credit[C.LOAN_ID] == repl[C.LOAN_ID] and credit[C.PRIMARY_ID] == repl[C.PRIMARY_ID]
    assert money(credit[C.ORIGINAL_AMOUNT]) == -money(repl[C.ORIGINAL_AMOUNT]) == Decimal("-999.99")
    assert repl_id in worlds[0].cases["shared_loan"]
    # the credit lives on its own fee; the replacement fee's own ledger is untouched
    assert repl[C.REMAINING_AMOUNT] == repl[C.ORIGINAL_AMOUNT]
    assert credit_id not in txns_by_fine(worlds[1])


def test_paid_then_credited(worlds: list[World]) -> None:
    fid, credit_id = worlds[2].cases["paid_then_credited"]
    (payment,) = txns_by_fine(worlds[1])[fid]
    fine = fines_by_id(worlds[1])[fid]
    assert fine[C.FINE_CREATED].startswith(worlds[0].day.isoformat())
    assert payment[C.TRANS_TYPE] == "Payment" and fine[C.FINE_STATUS] == "Closed"
    credit = fines_by_id(worlds[2])[credit_id]
    assert credit[C.FINE_CREATED].startswith(worlds[2].day.isoformat())
    assert money(credit[C.ORIGINAL_AMOUNT]) == -money(payment[C.TRANS_AMOUNT])
    assert credit[C.LOAN_ID] == fine[C.LOAN_ID] and credit[C.PRIMARY_ID] == fine[C.PRIMARY_ID]
    after = fines_by_id(worlds[2])[fid]
    assert after[C.FINE_STATUS] == "Closed" and after[C.REMAINING_AMOUNT] == "0"


def test_credit_transaction_on_fee_without_loan(worlds: list[World]) -> None:
    (fid,) = worlds[0].cases["credit_transaction"]
    trans = txns_by_fine(worlds[2])[fid]
    assert [t[C.TRANS_TYPE] for t in trans] == ["Payment", "Credit"]
    assert trans[1][C.TRANS_CREATED].startswith(worlds[2].day.isoformat())
    fine = fines_by_id(worlds[2])[fid]
    assert fine[C.LOAN_ID] == "-1" and fine[C.FINE_TYPE] == "Card renewal"
    assert money(fine[C.REMAINING_AMOUNT]) == Decimal("7.75") - Decimal("2.25") - Decimal("2")


def test_cases_name_existing_fines(worlds: list[World]) -> None:
    expected = {"prehistory", "waive_after_export", "paid_same_day", "shared_loan", "recharge",
                "waived_same_day", "credit_transaction", "partial_waive_after_export", "float_noise",
                "tricky_cents", "credit_after_export", "partly_paid_same_day", "paid_then_credited"}
    assert set(worlds[-1].cases) == expected
    for w in worlds:
        ids = set(fines_by_id(w))
        assert all(set(v) <= ids for v in w.cases.values())
    prehistory = fines_by_id(worlds[0])
    start = worlds[0].day
    for fid in worlds[0].cases["prehistory"]:
        created = datetime.fromisoformat(prehistory[fid][C.FINE_CREATED]).date()
        assert start - timedelta(days=40) <= created <= start - timedelta(days=10)


# --------------------------------------------------------------------------- bulk_world

def test_bulk_world_shape_and_consistency() -> None:
    today = date(2026, 11, 27)
    w = bulk_world(1000, seed=5, trans_per_fine=3, today=today, history_days=3 * 365)
    assert w.day == today and len(w.fines) == 1000 and len(w.transactions) == 3000
    assert Counter(t[C.FINE_ID] for t in w.transactions) == Counter({f[C.FINE_ID]: 3 for f in w.fines})
    assert {t[C.TRANS_TYPE] for t in w.transactions} == {"Payment", "Waive"}
    check_world(w)
    assert {f[C.FINE_STATUS] for f in w.fines} == {"Active", "Closed"}
    per_patron = Counter(f[C.PRIMARY_ID] for f in w.fines)
    assert sum(1 for n in per_patron.values() if n > 1) > len(per_patron) / 4


def test_bulk_world_spreads_evenly_over_history() -> None:
    today, days = date(2026, 11, 27), 3 * 365
    w = bulk_world(1000, today=today, history_days=days)
    created = [date.fromisoformat(f[C.FINE_CREATED][:10]) for f in w.fines]
    assert min(created) == today - timedelta(days=days - 1) and max(created) <= today
    per_year = Counter((today - d).days // 365 for d in created)
    assert all(300 <= per_year[y] <= 367 for y in range(3))
    since = (today - timedelta(days=7)).isoformat()
    recent_fines = sum(1 for f in w.fines if f[C.STATUS_DATE] >= since) / len(w.fines)
    recent_trans = sum(1 for t in w.transactions if t[C.TRANS_CREATED] >= since) / len(w.transactions)
    assert 0.003 <= recent_fines <= 0.02 and 0.003 <= recent_trans <= 0.02
    assert all(t[C.TRANS_CREATED][:10] <= today.isoformat() for t in w.transactions)


def test_bulk_world_other_parameters() -> None:
    w = bulk_world(50, trans_per_fine=0, history_days=10)
    assert len(w.fines) == 50 and not w.transactions
    assert all(f[C.REMAINING_AMOUNT] == f[C.ORIGINAL_AMOUNT] for f in w.fines)
    check_world(w)
    w = bulk_world(40, trans_per_fine=7, history_days=5)
    assert len(w.transactions) == 280
    check_world(w)
    assert bulk_world(0).fines == []


def test_bulk_world_is_fast() -> None:
    started = time.perf_counter()
    w = bulk_world(100_000)
    elapsed = time.perf_counter() - started
    assert len(w.fines) == 100_000 and len(w.transactions) == 300_000
    assert elapsed < 10, f"bulk_world(100000) took {elapsed:.1f}s"


# --------------------------------------------------------------------------- install_world

class RecordingAlma:
    """Stands in for SandboxAlma: records exactly what install_world hands over."""

    def __init__(self) -> None:
        self.reports: dict[str, tuple[list[str], list[dict]]] = {}
        self.fees: dict[tuple[str, str], dict] = {}

    def set_report(self, path: str, columns: list[str], rows) -> None:
        assert path not in self.reports
        self.reports[path] = (list(columns), list(rows))

    def set_fee(self, user_id: str, fee_id: str, *, balance: Decimal, original_amount: Decimal,
                status: str = "ACTIVE", type_code: str = "OVERDUEFINE", type_desc: str = "Overdue fine") -> None:
        assert (user_id, fee_id) not in self.fees
        self.fees[(user_id, fee_id)] = dict(balance=balance, original_amount=original_amount, status=status,
                                            type_code=type_code, type_desc=type_desc)


def test_install_world_loads_reports_and_fees(last: World) -> None:
    server = RecordingAlma()
    install_world(server, last)
    assert server.reports == {
        SANDBOX_REPORTS.fines: (C.FINES_COLUMNS, last.fines),
        SANDBOX_REPORTS.transactions: (C.TRANSACTIONS_COLUMNS, last.transactions),
        SANDBOX_REPORTS.balances: (C.BALANCES_COLUMNS, last.balances),
    }
    assert SANDBOX_REPORTS.fines == "/shared/Sandbox University/Reports/Synchronization/All Fines"
    assert len(server.fees) == len(last.fines)
    for f in last.fines:
        fee = server.fees[(f[C.PRIMARY_ID], f[C.FINE_ID])]
        assert fee["status"] == ("CLOSED" if f[C.FINE_STATUS] == "Closed" else "ACTIVE")
        assert fee["balance"] == money(f[C.REMAINING_AMOUNT])
        assert fee["original_amount"] == money(f[C.ORIGINAL_AMOUNT])
        assert isinstance(fee["balance"], Decimal) and fee["balance"].as_tuple().exponent == -2
        assert fee["type_desc"] == f[C.FINE_TYPE] and fee["type_code"] == FEE_TYPE_CODES[f[C.FINE_TYPE]]
    (noisy,) = last.cases["float_noise"]
    fee = next(v for (u, i), v in server.fees.items() if i == noisy)
    assert fee["balance"] == Decimal("0.30") and fee["status"] == "ACTIVE"
    credit = next(v for v in server.fees.values() if v["type_code"] == "CREDIT")
    assert credit["original_amount"] < 0


def test_install_world_custom_paths() -> None:
    w = bulk_world(20)
    paths = ReportPaths("/a/Fines", "/a/Trans", "/a/Balances")
    server = RecordingAlma()
    install_world(server, w, paths)
    assert set(server.reports) == {"/a/Fines", "/a/Trans", "/a/Balances"}
    assert len(server.fees) == 20
