"""Analytics' silent row cap (issue 9 item 1) and the watermark's evidence (issue 10 item 5).

The sandbox can cap every report run at `row_cap` rows, finished and without a word, as Oracle
BI does.  The import must never take such a run: it fetches the report again in date windows,
split in half down to one day, and an import read that way equals a cap-free one."""

from __future__ import annotations

import json

import pytest

from bursar.jobs.import_fines import WATERMARK
from bursar.rules import columns as C
from bursar.sandbox.generator import SANDBOX_REPORTS, generate_days
from bursar.store import open_store

from .conftest import Sandbox, make_sandbox

NO_BALANCES = {"ALMA_REPORT_BALANCES": ""}  # the balances report has no date column to window
RELATIONS = {"id", "fine", "patron", "burs_export", "export", "created", "updated"}


@pytest.fixture(scope="module")
def big_worlds():
    # 6 days, ~40 fines and ~20 transactions a day: 232 fines, 91 transactions at the end
    return generate_days(days=6, new_fines_per_day=30)


@pytest.fixture
def pair(tmp_path, big_worlds):
    """Two sandboxes on the same worlds: one capped, one not."""
    with make_sandbox(tmp_path / "capped", big_worlds) as capped, \
            make_sandbox(tmp_path / "free", big_worlds) as free:
        yield capped, free


def ledger_content(box: Sandbox) -> dict[str, list[str]]:
    """The ledger without ids and relations (windows change the order rows arrive in)."""
    out = {}
    for name, docs in box.ledger().items():
        out[name] = sorted(json.dumps({k: v for k, v in d.items() if k not in RELATIONS},
                                      sort_keys=True, default=str) for d in docs)
    return out


def watermark(box: Sandbox) -> str | None:
    store = open_store(box.env["BURSAR_DB_URI"])
    try:
        return store.get_meta(WATERMARK)
    finally:
        store.close()


def import_day(box: Sandbox, index: int, *args: str, cap: int | None = None, limit: int | None = None,
               env: dict[str, str] | None = None):
    """importAlmaFines on world `index`; the sandbox capped at `cap` rows a run, the import's
    ALMA_ANALYTICS_ROW_LIMIT at `limit` (default: the cap; no cap: the default 65000)."""
    box.alma.row_cap = cap
    day = box.install(index).day
    limit = limit or cap
    limits = {"ALMA_ANALYTICS_ROW_LIMIT": str(limit)} if limit else {}
    result = box.run("importAlmaFines", *args, day=day, extra_env={**limits, **NO_BALANCES, **(env or {})})
    assert "Traceback" not in result.stderr
    return result


def filters(box: Sandbox) -> list[str]:
    return [c["params"]["filter"] for c in box.alma.calls
            if c["path"] == "/almaws/v1/analytics/reports" and "filter" in c["params"]]


def test_fines_and_transactions_over_the_cap_equal_a_cap_free_import(pair, big_worlds):
    capped, free = pair
    last = len(big_worlds) - 1
    world = big_worlds[last]
    assert len(world.fines) > 50 and len(world.transactions) > 50  # both over the cap
    done = import_day(capped, last, cap=50)
    assert done.returncode in (0, 3), done.stdout + done.stderr
    reference = import_day(free, last)
    assert reference.returncode == done.returncode, reference.stdout + reference.stderr
    assert ledger_content(capped) == ledger_content(free)
    assert len(capped.ledger()["fines"]) > 50
    # windows: >= start AND < end, combined with sawx:logical op="and"
    sent = filters(capped)
    assert any('op="and"' in f and 'op="less"' in f and 'op="greaterOrEqual"' in f for f in sent)
    text = done.stdout + done.stderr
    for name, rows in (("All Fines", len(world.fines)), ("All Transactions", len(world.transactions))):
        line = next(ln for ln in text.splitlines() if f"{name}: {rows} rows in " in ln)
        assert int(line.split(" rows in ")[1].split()[0]) > 1, line
    assert "All Fines: " in (reference.stdout + reference.stderr)
    assert "rows in 1 window" in (reference.stdout + reference.stderr)


def test_a_one_day_window_over_the_cap_fails_and_merges_nothing(sandbox, big_worlds):
    sandbox.worlds = big_worlds
    result = import_day(sandbox, len(big_worlds) - 1, cap=30, limit=30)  # ~40 fines a day
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stdout + result.stderr
    assert "ALMA_ANALYTICS_ROW_LIMIT" in message and "for the one day 2026-03-0" in message
    assert "All Transactions" in message or "All Fines" in message
    assert all(not docs for docs in sandbox.ledger().values())
    assert watermark(sandbox) is None


def test_a_cap_hit_on_an_incremental_run(pair, big_worlds):
    capped, free = pair
    for box in (capped, free):
        first = import_day(box, 0)
        assert first.returncode in (0, 3), first.stdout + first.stderr
        assert watermark(box) is not None
    last = len(big_worlds) - 1
    done = import_day(capped, last, cap=50)
    assert done.returncode in (0, 3), done.stdout + done.stderr
    assert "(incremental)" in done.stdout + done.stderr
    reference = import_day(free, last)
    assert reference.returncode == done.returncode
    assert ledger_content(capped) == ledger_content(free)
    assert "windows" in done.stdout + done.stderr


def test_the_balances_report_over_the_cap_fails_clearly(sandbox, big_worlds):
    sandbox.worlds = big_worlds
    result = import_day(sandbox, len(big_worlds) - 1, cap=100, limit=100,
                        env={"ALMA_REPORT_BALANCES": SANDBOX_REPORTS.balances})
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stdout + result.stderr
    assert "All User Balances" in message and "no date filter" in message
    assert all(not docs for docs in sandbox.ledger().values())


# -- issue 10 item 5: the watermark moves only on evidence -------------------------------------

def test_an_empty_first_import_sets_no_watermark(sandbox):
    world = sandbox.install(0)
    for path, columns in ((SANDBOX_REPORTS.fines, C.FINES_COLUMNS),
                          (SANDBOX_REPORTS.transactions, C.TRANSACTIONS_COLUMNS),
                          (SANDBOX_REPORTS.balances, C.BALANCES_COLUMNS)):
        sandbox.alma.set_report(path, list(columns), [])
    empty = sandbox.run("importAlmaFines", day=world.day)
    assert empty.returncode == 3, empty.stdout + empty.stderr
    assert "watermark was not set" in empty.stdout + empty.stderr
    assert watermark(sandbox) is None
    # the next import reads the full history again, and then the watermark moves
    sandbox.install(0)
    again = sandbox.run("importAlmaFines", day=world.day)
    assert again.returncode in (0, 3), again.stdout + again.stderr
    assert "(full)" in again.stdout + again.stderr
    assert watermark(sandbox) is not None
    assert len(sandbox.ledger()["fines"]) > 0


def test_an_empty_full_import_keeps_the_watermark(sandbox):
    world = sandbox.install(0)
    assert sandbox.run("importAlmaFines", day=world.day).returncode in (0, 3)
    before = watermark(sandbox)
    for path, columns in ((SANDBOX_REPORTS.fines, C.FINES_COLUMNS),
                          (SANDBOX_REPORTS.transactions, C.TRANSACTIONS_COLUMNS)):
        sandbox.alma.set_report(path, list(columns), [])
    # the ledger has fines: an empty full read is implausible (exit 1) and changes nothing
    result = sandbox.run("importAlmaFines", "--full", day=world.day)
    assert result.returncode in (1, 3), result.stdout + result.stderr
    assert watermark(sandbox) == before


@pytest.fixture(scope="module")
def paged_worlds():
    # over 1,000 rows: a second Analytics page
    return generate_days(days=2, new_fines_per_day=700)


def test_a_report_run_that_repeats_its_pages_stops_and_merges_nothing(sandbox, paged_worlds):
    sandbox.worlds = paged_worlds
    world = sandbox.install(len(paged_worlds) - 1)
    assert len(world.fines) > 1000
    sandbox.alma.add_fault("repeat_page", page=2, times=10_000)
    result = sandbox.run("importAlmaFines", day=world.day, extra_env=NO_BALANCES)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "already served" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert all(not docs for docs in sandbox.ledger().values())
    reports = [c for c in sandbox.alma.calls if c["path"] == "/almaws/v1/analytics/reports"]
    assert len(reports) < 20
