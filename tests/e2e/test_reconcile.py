"""`reconcile` end to end: `abs.py` against the sandbox, on a clean world and on one with a case of
every difference class (tests/e2e/reconcile_world.py), `--live` against the sandbox fees API,
and `today` with RECONCILE_ON."""

from __future__ import annotations

import csv
import re
import stat
from decimal import Decimal

from bursar.rules import columns as C
from bursar.rules import reconcile_rules as rules
from bursar.sandbox.generator import parse_amount
from bursar.store import open_store

from . import reconcile_world as rw
from .conftest import Sandbox


def report_rows(sandbox: Sandbox, stamp: str) -> list[dict[str, str]]:
    with (sandbox.work / "reports" / f"reconcile-{stamp}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def jobs(sandbox: Sandbox) -> list[dict]:
    store = open_store(sandbox.env["BURSAR_DB_URI"], create=False)
    try:
        return list(store.find("jobs"))
    finally:
        store.close()


def html_figures(sandbox: Sandbox, stamp: str) -> dict[str, str]:
    """Every data-* figure of the page, by a name: total:billed, class:overpaid:count, ..."""
    text = (sandbox.work / "reports" / f"reconcile-{stamp}.html").read_text(encoding="utf-8")
    out = {f"total:{k}": v for k, v in re.findall(r'data-total="(\w+)" data-amount="([-\d.]+)"', text)}
    for code, count, total in re.findall(r'<tr data-class="(\w+)">.*?data-count="(\d+)".*?data-sum="([-\d.]+)"', text):
        out[f"class:{code}:count"], out[f"class:{code}:sum"] = count, total
    out["rows"] = str(len(re.findall(r'<tr class="diff"', text)))
    return out


def test_a_clean_world_agrees_and_exits_0(sandbox):
    world = rw.run_clean_day0(sandbox)
    result = sandbox.run("reconcile", day=world.day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all three sides agree" in result.stdout
    assert "Alma as the import of 2026-03-02 18:00 recorded it (0 days old)" in result.stdout
    assert re.search(r"billed \(charges sent\)\s+\d+\s+\$[\d,]+\.\d\d", result.stdout)
    assert report_rows(sandbox, "20260302") == []
    folder = sandbox.work / "reports"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("reconcile-20260302.csv", "reconcile-20260302.html"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["reconcile-20260302.csv", "reconcile-20260302.html"]
    quiet = sandbox.run("reconcile", "--quiet", day=world.day)
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_every_class_is_found_exactly_with_its_amount_and_the_reports_agree(sandbox):
    cases = rw.build(sandbox)
    assert {code for code, _ in cases.expected} == set(rules.ORDER)  # one case of every class
    result = sandbox.run("reconcile", day=rw.DAY1)
    assert result.returncode == 3, result.stdout + result.stderr
    rows = report_rows(sandbox, "20260303")
    assert rw.found(rows) == cases.expected
    assert len(rows) == len(cases.expected)  # nothing else

    # the console: counts and sums per class
    for code in rules.ORDER:
        amounts = [a for (c, _), a in cases.expected.items() if c == code]
        money = f"{'-' if sum(amounts) < 0 else ''}${abs(sum(amounts)):,.2f}"
        assert re.search(rf"difference: {re.escape(rules.CLASSES[code].title)}\s+{len(amounts)}\s+{re.escape(money)}",
                         result.stdout), code
        assert f"reconcile: {rules.CLASSES[code].title}" in result.stdout

    # the HTML page shows the CSV's figures, to the cent
    page = html_figures(sandbox, "20260303")
    assert page["rows"] == str(len(rows))
    for code in rules.ORDER:
        mine = [Decimal(r["amount"]) for r in rows if r["class"] == code]
        assert page[f"class:{code}:count"] == str(len(mine))
        assert Decimal(page[f"class:{code}:sum"]) == sum(mine, Decimal("0.00"))
    billed, reversed_, paid, outstanding, applied = (Decimal(page[f"total:{k}"]) for k in
                                                     ("billed", "reversed", "paid", "outstanding", "applied"))
    assert outstanding == billed - reversed_ - paid
    f = cases.fines
    assert paid == Decimal("2.00") + parse_amount(f["F2"][C.REMAINING_AMOUNT]) + 5 + parse_amount(
        f["F7"][C.REMAINING_AMOUNT])
    assert applied == parse_amount(f["F2"][C.REMAINING_AMOUNT]) + parse_amount(f["F7"][C.REMAINING_AMOUNT])
    # the ledger's own record of what was billed
    ledger = sandbox.ledger()
    assert billed == sum((t["amt"] for t in ledger["trans_burs"] if t["type"] == "Fine"), Decimal("0.00"))
    # each CSV row's sides agree with its class's amount where the class is a balance gap
    by_key = {(r["class"], r["fine_id"]): r for r in rows}
    gone = by_key[("reversal_missing", f["F4"][C.FINE_ID])]
    assert gone["alma_status"] == "closed" and Decimal(gone["alma_balance"]) == 0
    assert Decimal(gone["bursar_outstanding"]) == Decimal(gone["amount"])


def test_live_confirms_through_the_fees_api_and_drops_what_alma_no_longer_shows(sandbox):
    cases = rw.build(sandbox)
    f5 = cases.fines["F5"]
    # Alma has since been put right for F5 (the report still shows the old figure)
    sandbox.alma.fees[(f5[C.PRIMARY_ID], f5[C.FINE_ID])]["balance"] = parse_amount(f5[C.ORIGINAL_AMOUNT])
    sandbox.alma.clear_calls()
    result = sandbox.run("reconcile", "--live", day=rw.DAY1)
    assert result.returncode == 3, result.stdout + result.stderr
    expected = {k: v for k, v in cases.expected.items() if k != ("balance_differs", f5[C.FINE_ID])}
    rows = report_rows(sandbox, "20260303")
    assert rw.found(rows) == expected
    assert f"{f5[C.FINE_ID]} (balance_differs)" in result.stdout
    assert re.search(r"live: 5 fine\(s\) checked through the fees API, 1 difference\(s\) no longer in Alma",
                     result.stdout)
    fine_rows = [r for r in rows if r["class"] not in ("unknown_reference", "wrong_patron", "patron_balance")]
    assert all(r["live"].startswith("confirmed: Alma now ") for r in fine_rows), fine_rows
    closed = next(r for r in rows if r["class"] == "reversal_missing")
    assert closed["live"] == "confirmed: Alma now 0.00 CLOSED"
    # only the fines that differ were asked about, and nothing was paid
    asked = {call["path"].rsplit("/", 1)[1] for call in sandbox.alma.calls if "/fees" in call["path"]}
    differing = {fid for (code, fid) in cases.expected if code in
                 ("paid_not_applied", "overpaid", "reversal_missing", "balance_differs", "desk_payment")}
    assert asked - {"fees"} <= differing and differing <= asked | {"fees"}
    assert all(call["method"] == "GET" for call in sandbox.alma.calls)


def test_today_runs_reconcile_on_the_days_reconcile_on_names(sandbox):
    monthly = {"RECONCILE_ON": "monthly"}
    world = sandbox.install(0)
    first = sandbox.run("today", day=world.day, extra_env=monthly)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "reconcile: fines checked" in first.stdout and "all three sides agree" in first.stdout
    assert (sandbox.work / "reports" / "reconcile-20260302.html").is_file()
    # the month's second run does not reconcile again
    cases = rw.script_day1(sandbox, world)
    second = sandbox.run("today", day=rw.DAY1, extra_env=monthly)
    assert second.returncode == 3, second.stdout + second.stderr
    assert "reconcile:" not in second.stdout
    assert not (sandbox.work / "reports" / "reconcile-20260303.csv").exists()
    # a weekday: 2026-03-03 is a Tuesday
    third = sandbox.run("today", day=rw.DAY1, extra_env={"RECONCILE_ON": "mon,Tue"})
    assert third.returncode == 3, third.stdout + third.stderr
    assert rw.found(report_rows(sandbox, "20260303")) == cases.expected
    assert "reconcile: Closed in Alma, still owed at the Bursar" in third.stdout
    recorded = [j for j in jobs(sandbox) if j["type"] == "Reconcile"]
    assert [j["status"] for j in recorded] == ["Success", "Success"]
    assert [j["summary"]["exitCode"] for j in recorded] == [0, 3]


def test_reconcile_never_creates_a_store(sandbox):
    result = sandbox.run("reconcile", day=sandbox.worlds[0].day)
    assert result.returncode == 2, result.stdout + result.stderr
    db = sandbox.work / "data" / "bursar.sqlite3"
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no pyBursar database at {db} (check BURSAR_DB_URI and the working directory)")
    assert not (sandbox.work / "data").exists() and not (sandbox.work / "reports").exists()


def test_a_bad_reconcile_on_is_a_settings_error(sandbox):
    rw.run_clean_day0(sandbox)
    result = sandbox.run("reconcile", day=sandbox.worlds[0].day, extra_env={"RECONCILE_ON": "fortnightly"})
    assert result.returncode == 2
    assert "RECONCILE_ON must be weekday names" in result.stderr


def test_today_mails_the_report_as_an_attachment_without_emplids(sandbox):
    from tests.mailserver import smtp_server

    world = sandbox.install(0)
    with smtp_server() as inbox:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(inbox.port), "SMTP_SECURITY": "none",
               "MAIL_FROM": "pyBursar <bursar@library.example.edu>", "MAIL_TO": "office@library.example.edu",
               "RECONCILE_ON": "mon"}
        result = sandbox.run("today", day=world.day, extra_env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    [msg] = inbox.messages
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "reconcile-20260302.html"
    assert attachment.get_content_type() == "text/html"
    page = attachment.get_content()
    on_disk = (sandbox.work / "reports" / "reconcile-20260302.html").read_text(encoding="utf-8")
    assert page.replace("\r\n", "\n") == on_disk  # mail carries text with CRLF line ends
    assert "All three sides agree." in page
    emplids = {r[C.PRIMARY_ID] for r in world.fines if r.get(C.PRIMARY_ID)}
    assert not any(e in page for e in emplids)
