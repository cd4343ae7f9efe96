"""The reconcile classification (bursar.rules.reconcile_rules), the HTML page (bursar.runtime.report_html),
RECONCILE_ON and when `today` reconciles: table tests and hypothesis properties."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bursar.errors import SettingsError
from bursar.rules import reconcile_rules as R
from bursar.runtime.report_html import ReportMeta, _nice_ceiling, chart_svg, render_report
from bursar.settings import load, reconcile_days

D = Decimal


def fine(**kw) -> R.FineFacts:
    base = dict(fine="F", patron="P", alma_remaining=D("10.00"), alma_closed=False, charged=D("10.00"))
    base.update(kw)
    return R.FineFacts(**base)


def codes(f: R.FineFacts) -> dict[str, Decimal]:
    return {d.code: d.amount for d in R.classify_fine(f)}


CASES = [
    # (what, facts, expected differences)
    ("billed and open, nothing paid", fine(), {}),
    ("never billed, nothing owed", fine(alma_remaining=D("0.00"), alma_closed=True, charged=D("0.00")), {}),
    ("paid in full at the Bursar and applied after the import",
     fine(paid=D("10.00"), applied=D("10.00")), {}),
    ("paid in full, applied, seen by the import (mirrored)",
     fine(alma_remaining=D("0.00"), alma_closed=True, paid=D("10.00"), applied=D("10.00"),
          applied_seen=D("10.00"), mirrored=D("10.00")), {}),
    ("a waive not yet sent explains the gap", fine(alma_remaining=D("4.00"), pending=D("-6.00")), {}),
    ("a credit from a separate credit fee", fine(charged=D("10.00"), reversed=D("10.00"),
                                                 separate_credits=D("10.00")), {}),
    ("the pay call failed", fine(paid=D("2.00"), unapplied=D("2.00")), {R.PAID_NOT_APPLIED: D("2.00")}),
    ("applied for less than Alma had open", fine(paid=D("6.00"), applied=D("4.00"), unapplied=D("2.00")),
     {R.PAID_NOT_APPLIED: D("2.00")}),
    ("paid more than the balance", fine(paid=D("15.00"), applied=D("10.00"), unapplied=D("5.00")),
     {R.OVERPAID: D("5.00")}),
    ("paid at the Bursar for a fee Alma had closed",
     fine(alma_remaining=D("0.00"), alma_closed=True, mirrored=D("10.00"), applied_seen=D("0.00"),
          paid=D("10.00"), unapplied=D("10.00")),
     {R.OVERPAID: D("10.00"), R.DESK_PAYMENT: D("10.00")}),
    ("closed in Alma, no reversal", fine(alma_remaining=D("0.00"), alma_closed=True),
     {R.REVERSAL_MISSING: D("10.00")}),
    ("Alma lower than the ledger", fine(alma_remaining=D("7.00")), {R.BALANCE_DIFFERS: D("-3.00")}),
    ("Alma higher than the ledger (activity never billed)", fine(alma_remaining=D("12.00")),
     {R.BALANCE_DIFFERS: D("2.00")}),
    ("paid at the desk after billing", fine(alma_remaining=D("6.00"), mirrored=D("4.00")),
     {R.DESK_PAYMENT: D("4.00")}),
    ("no Alma figure recorded: nothing to compare", fine(alma_remaining=None), {}),
]


@pytest.mark.parametrize("what,facts,expected", CASES, ids=[c[0] for c in CASES])
def test_classify_fine(what, facts, expected):
    assert codes(facts) == expected


ROWS = [
    ("ours", R.RowFacts("F", "P", D("5.00"), True, "P"), None),
    ("unknown reference", R.RowFacts("X", "P", D("5.00"), False, None), (R.UNKNOWN_REFERENCE, D("5.00"))),
    ("another patron", R.RowFacts("F", "Q", D("5.00"), True, "P"), (R.WRONG_PATRON, D("5.00"))),
    ("leading zeros count", R.RowFacts("F", "0123", D("5.00"), True, "123"), (R.WRONG_PATRON, D("5.00"))),
    ("malformed", R.RowFacts("X", "P", None, False, None), None),
    ("zero payment", R.RowFacts("X", "P", D("0.00"), False, None), None),
    ("negative payment", R.RowFacts("X", "P", D("-1.00"), False, None), None),
]


@pytest.mark.parametrize("what,row,expected", ROWS, ids=[r[0] for r in ROWS])
def test_classify_row(what, row, expected):
    d = R.classify_row(row)
    assert (None if d is None else (d.code, d.amount)) == expected


def test_classify_patron():
    assert R.classify_patron(None, D("3.00")) is None
    assert R.classify_patron(D("3.00"), D("3.00")) is None
    d = R.classify_patron(D("4.00"), D("3.00"))
    assert d is not None and (d.code, d.amount) == (R.PATRON_BALANCE, D("1.00"))


def test_every_class_has_a_title_an_explanation_and_an_action():
    assert R.ORDER == [R.PAID_NOT_APPLIED, R.REVERSAL_MISSING, R.BALANCE_DIFFERS, R.DESK_PAYMENT, R.OVERPAID,
                       R.UNKNOWN_REFERENCE, R.WRONG_PATRON, R.PATRON_BALANCE]
    for c in R.CLASSES.values():
        assert c.title and c.explanation.endswith(".") and c.action.endswith(".")
        assert "\n" not in c.explanation + c.action


@pytest.mark.parametrize("billed,bucket", [(date(2026, 3, 3), 0), (date(2026, 2, 1), 0), (date(2026, 1, 31), 1),
                                           (date(2025, 12, 3), 1), (date(2025, 12, 2), 2), (date(2025, 3, 3), 2),
                                           (date(2025, 3, 2), 3), (None, 3), (date(2026, 4, 1), 0)])
def test_age_buckets(billed, bucket):
    assert R.age_bucket(billed, date(2026, 3, 3)) == bucket


def test_last_months():
    months = R.last_months(date(2026, 3, 3))
    assert len(months) == 13 and months[0] == "2025-03" and months[-1] == "2026-03"
    assert R.last_months(date(2026, 12, 31))[0] == "2025-12"


# -- properties ----------------------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=10**7).map(lambda c: D(c).scaleb(-2))


@st.composite
def consistent(draw):
    """Facts of a fine on which the three sides agree, however it got there."""
    charged, reversed_frac, desk_free = draw(cents), draw(st.integers(0, 100)), draw(st.booleans())
    reversed_ = (charged * reversed_frac / 100).quantize(D("0.01"))
    pending = -draw(st.integers(0, 100)) * (charged - reversed_) / 100
    pending = pending.quantize(D("0.01"))
    owed = charged - reversed_ + pending
    seen = (owed * draw(st.integers(0, 100)) / 100).quantize(D("0.01"))
    flight = ((owed - seen) * draw(st.integers(0, 100)) / 100).quantize(D("0.01"))
    credits = draw(cents) if desk_free else D("0.00")
    remaining = owed - seen + credits
    return R.FineFacts(fine="F", patron="P", alma_remaining=remaining, alma_closed=remaining == 0,
                       separate_credits=credits, charged=charged, reversed=reversed_, pending=pending,
                       mirrored=seen, paid=seen + flight, applied=seen + flight, applied_seen=seen)


@given(consistent())
def test_a_fine_whose_sides_agree_shows_no_difference(facts):
    assert R.classify_fine(facts) == []


@given(consistent(), cents)
def test_unapplied_money_is_split_exactly_between_not_applied_and_overpaid(facts, unapplied):
    facts = R.FineFacts(**{**facts.__dict__, "unapplied": unapplied, "paid": facts.paid + unapplied})
    found = codes(facts)
    assert found.get(R.PAID_NOT_APPLIED, D(0)) + found.get(R.OVERPAID, D(0)) == unapplied
    assert found.get(R.PAID_NOT_APPLIED, D(0)) <= facts.alma_open_now


@given(consistent(), st.integers(min_value=-10**6, max_value=10**6).map(lambda c: D(c).scaleb(-2)))
def test_any_alma_gap_is_reported_once_with_its_amount(facts, gap):
    remaining = (facts.alma_remaining or D(0)) + gap
    changed = R.FineFacts(**{**facts.__dict__, "alma_remaining": remaining, "alma_closed": remaining == 0})
    found = {k: v for k, v in codes(changed).items() if k in (R.BALANCE_DIFFERS, R.REVERSAL_MISSING)}
    if changed.alma_remaining == changed.alma_expected:
        assert found == {}
    else:
        assert len(found) == 1
        [(code, amount)] = found.items()
        assert amount == (-(remaining - changed.alma_expected) if code == R.REVERSAL_MISSING
                          else remaining - changed.alma_expected)


@given(st.lists(st.tuples(cents, cents, cents, st.none() | st.dates(date(2020, 1, 1), date(2026, 12, 31))),
                max_size=30))
def test_totals_reconcile_to_the_cent(fines):
    totals = R.Totals()
    for charged, reversed_, paid, billed_on in fines:
        totals.add_fine(R.FineFacts(fine="F", patron="P", alma_remaining=None, alma_closed=False, charged=charged,
                                    reversed=min(reversed_, charged), paid=paid), billed_on, date(2026, 3, 3))
    assert totals.outstanding == totals.billed - totals.reversed - totals.paid
    assert sum(totals.ageing, D("0.00")) + totals.credit_balances == totals.outstanding


@given(cents)
def test_the_chart_axis_is_round_and_above_every_value(value):
    top = _nice_ceiling(value)
    assert top >= value and top > 0
    assert top / D(10) ** top.adjusted() in (1, 2, D("2.5"), 5, 10)


# -- the page ------------------------------------------------------------------------------------

def page(rows: list[dict[str, str]], classes: R.ClassTotals | None = None) -> str:
    totals = R.Totals()
    totals.add_fine(fine(paid=D("3.00")), date(2026, 3, 1), date(2026, 3, 3))
    months = R.last_months(date(2026, 3, 3))
    meta = ReportMeta(today=date(2026, 3, 3), generated=datetime(2026, 3, 3, 18), alma_as_of=None, live=False,
                      totals=totals, classes=classes or R.ClassTotals(), months=months,
                      chart=[(D("10.00"), D("0.00"), D("3.00"))] * 13, csv_name="reconcile-20260303.csv")
    out = io.StringIO()
    render_report(meta, rows, out)
    return out.getvalue()


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    classes = R.ClassTotals()
    classes.add(R.Difference(R.UNKNOWN_REFERENCE, D("15.00")))
    row = dict.fromkeys(["class", "title", "fine_id", "reference", "patron", "amount", "alma_balance", "alma_status",
                         "billed", "reversed", "pending", "paid_at_bursar", "applied_in_alma",
                         "bursar_outstanding", "last_line", "last_payment", "live", "detail"], "")
    row.update({"class": R.UNKNOWN_REFERENCE, "title": "t", "reference": "<script>alert(1)</script>",
                "amount": "15.00", "paid_at_bursar": "15.00", "detail": "https://example.invalid/"})
    text = page([row], classes)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert text.count("<svg") == 1 and "<img" not in text and "src=" not in text
    assert 'data-class="unknown_reference"><td>' in text and 'data-sum="15.00">$15.00' in text
    assert 'data-total="outstanding" data-amount="7.00">$7.00' in text
    assert 'no import has succeeded yet' in text
    empty = page([])
    assert "All three sides agree." in empty and ">none</td>" in empty and "http" not in empty


def test_the_chart_has_one_bar_per_month_and_series_within_the_plot():
    svg = chart_svg(R.last_months(date(2026, 3, 3)), [(D("0.00"), D("0.00"), D("0.00"))] * 12
                    + [(D("1234.56"), D("0.01"), D("99.99"))])
    assert svg.count("<rect data-month=") == 39
    assert "<title>Charges sent, 2026-03: $1,234.56</title>" in svg
    assert 'height="0.0"' in svg  # an empty month draws flat bars, never negative ones
    assert "-" not in "".join(part.split('"')[0] for part in svg.split('height="')[1:])


# -- RECONCILE_ON and when today reconciles ------------------------------------------------------

@pytest.mark.parametrize("text,days", [(None, set()), ("", set()), ("mon,fri", {"mon", "fri"}),
                                       ("Monday, Wednesday", {"mon", "wed"}), ("monthly", {"monthly"}),
                                       ("THU monthly", {"thu", "monthly"}), ("tuesday", {"tue"})])
def test_reconcile_on(text, days):
    assert reconcile_days(text) == days


@pytest.mark.parametrize("text", ["weekly", "mo", "mondays", "fri;sat", "1"])
def test_a_bad_reconcile_on_names_the_setting(text):
    with pytest.raises(SettingsError, match="RECONCILE_ON"):
        reconcile_days(text)


def test_settings_carry_the_reports_folder_and_the_days(tmp_path):
    s = load({"RECONCILE_ON": "fri", "REPORTS_DIR": "out/reports"}, cwd=tmp_path)
    assert s.reconcile_on == {"fri"} and s.reports_dir == tmp_path / "out" / "reports"
    assert load({}, cwd=tmp_path).reports_dir == tmp_path / "reports"


def test_today_reconciles_on_the_named_days_and_on_the_months_first_run(tmp_path):
    from zoneinfo import ZoneInfo

    from bursar.jobs.context import JobContext
    from bursar.jobs.reconcile import due
    from bursar.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    zone = ZoneInfo("America/Phoenix")

    def ctx(setting: str, day: date) -> JobContext:
        return JobContext(settings=load({"RECONCILE_ON": setting}, cwd=tmp_path), store=store,
                          now=datetime(day.year, day.month, day.day, 6, 30, tzinfo=zone))

    assert not due(ctx("", date(2026, 3, 2)))
    assert due(ctx("mon,fri", date(2026, 3, 2))) and not due(ctx("mon,fri", date(2026, 3, 3)))
    assert due(ctx("monthly", date(2026, 3, 3)))  # no reconcile yet: the first run
    # a reconcile on 1 March at 23:30 local (06:30 UTC on the 2nd) belongs to March
    store.insert("jobs", {"type": "Reconcile", "status": "Success",
                          "started": datetime(2026, 3, 2, 6, 30, tzinfo=UTC).replace(tzinfo=None)})
    assert not due(ctx("monthly", date(2026, 3, 20)))
    assert due(ctx("monthly", date(2026, 4, 1)))
    store.insert("jobs", {"type": "Reconcile", "status": "Failed", "started": datetime(2026, 4, 1, 13)})
    assert due(ctx("monthly", date(2026, 4, 3)))  # a failed one does not count
    store.close()


def test_the_page_shows_emplids_by_their_last_four_digits_only():
    from bursar.clients.notify import scrub
    from bursar.runtime.report_html import masked

    assert masked("0123456789") == "…6789" and masked("") == "" and masked(" 42 ") == "…42"
    assert scrub(masked("0123456789")) == "…6789"  # nothing the e-mail scrubbing would catch


def test_reports_are_attached_to_the_mail_and_a_huge_one_is_left_out(tmp_path, monkeypatch):
    from email.message import EmailMessage

    from bursar.clients import mail

    page = tmp_path / "reconcile-20260303.html"
    page.write_text("<!DOCTYPE html><p>ok</p>\n", encoding="utf-8")
    msg = EmailMessage()
    msg.set_content("summary")
    assert mail.attach_reports(msg, [page, tmp_path / "gone.html"]) == [
        "e-mail: gone.html could not be attached (FileNotFoundError)"]
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == page.name and "<p>ok</p>" in part.get_content()
    monkeypatch.setattr(mail, "MAX_ATTACHMENT", 10)
    other = EmailMessage()
    other.set_content("summary")
    [warning] = mail.attach_reports(other, [page])
    assert "too large to attach" in warning and list(other.iter_attachments()) == []
