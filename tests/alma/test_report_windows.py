"""Windows, the sandbox's row cap and filters, and report runs that never end (issues 9 and 10)."""

from __future__ import annotations

from datetime import datetime

import pytest

from bursar.clients.alma.analytics import iter_report, window_filter
from bursar.errors import AlmaError
from bursar.rules import columns as C
from tests.alma.test_analytics import FINES, fine_rows, report_calls

SAWX = ('xmlns:saw="com.siebel.analytics.web/report/v1.1" '
        'xmlns:sawx="com.siebel.analytics.web/expression/v1.1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema"')


def comparison(op: str, *values: str) -> str:
    return (f'<sawx:expr xsi:type="sawx:comparison" op="{op}" {SAWX}>'
            f'<sawx:expr xsi:type="sawx:sqlExpression">{C.FINES_FILTER_COLUMN.replace(chr(34), "&quot;")}</sawx:expr>'
            + "".join(f'<sawx:expr xsi:type="xsd:dateTime">{v}</sawx:expr>' for v in values)
            + "</sawx:expr>")


def dates(rows):
    return [r[C.STATUS_DATE] for r in rows]


def test_window_filter_is_greater_or_equal_and_less():
    text = window_filter(C.FINES_FILTER_COLUMN, datetime(2024, 3, 1), datetime(2024, 5, 1))
    assert text.startswith('<sawx:expr xsi:type="sawx:logical" op="and" ')
    assert text.index('op="greaterOrEqual"') < text.index('op="less"')
    assert ">2024-03-01T00:00:00<" in text and ">2024-05-01T00:00:00<" in text
    assert "\n" not in text


def test_window_filter_selects_a_half_open_window(sandbox, http):
    rows = fine_rows(120)  # status dates on the 15th of each month of 2024
    sandbox.set_report(FINES, C.FINES_COLUMNS, rows)
    got = list(iter_report(http, FINES, filter_xml=window_filter(
        C.FINES_FILTER_COLUMN, datetime(2024, 3, 15, 10), datetime(2024, 5, 15, 10))))
    assert set(d[:7] for d in dates(got)) == {"2024-03", "2024-04"}
    open_ended = list(iter_report(http, FINES, filter_xml=window_filter(
        C.FINES_FILTER_COLUMN, datetime(2024, 11, 1), None)))
    assert set(d[:7] for d in dates(open_ended)) == {"2024-11", "2024-12"}


@pytest.mark.parametrize("op, values, months", [
    ("less", ["2024-03-01T00:00:00"], {"2024-01", "2024-02"}),
    ("lessOrEqual", ["2024-02-15T10:00:00"], {"2024-01", "2024-02"}),
    ("between", ["2024-02-15T10:00:00", "2024-04-15T10:00:00"], {"2024-02", "2024-03", "2024-04"}),
])
def test_sandbox_serves_less_less_or_equal_and_between(sandbox, http, op, values, months):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(60))
    got = list(iter_report(http, FINES, filter_xml=comparison(op, *values)))
    assert set(d[:7] for d in dates(got)) == months


def test_sandbox_row_cap_is_off_by_default_and_cuts_runs_silently(sandbox, http):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(300))
    assert sandbox.row_cap is None
    assert len(list(iter_report(http, FINES))) == 300
    sandbox.row_cap = 120
    stream = iter_report(http, FINES, limit=50)
    assert len(list(stream)) == 120  # finished, no error: as Oracle BI does


def test_a_run_that_serves_a_page_again_stops(sandbox, http):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(300))
    sandbox.add_fault("repeat_page", page=3, times=100_000)
    with pytest.raises(AlmaError, match="already served"):
        list(iter_report(http, FINES, limit=50))
    assert len(report_calls(sandbox)) == 3


def test_a_run_past_its_page_bound_stops(sandbox, http):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(300))
    with pytest.raises(AlmaError, match="not finished after 4 pages"):
        list(iter_report(http, FINES, limit=50, max_pages=4))
    assert len(report_calls(sandbox)) == 4
    assert len(list(iter_report(http, FINES, limit=50, max_pages=6))) == 300


def test_sandbox_windows_serve_what_a_row_by_row_filter_would(sandbox, http):
    """The sandbox answers a window from a sorted index of the column, not a scan of the report
    per window (issue 9: a windowed 1,000,000-fine import made the scans quadratic).  Same rows,
    same order, as the condition read row by row: empty dates left out, bounds exact."""
    rows = fine_rows(300)
    for i, row in enumerate(rows):
        row[C.STATUS_DATE] = None if i % 17 == 0 else f"2024-{i * 7 % 12 + 1:02d}-{i % 3 + 14:02d}T10:00:00"
    sandbox.set_report(FINES, C.FINES_COLUMNS, rows)

    def served(filter_xml):
        return [r[C.FINE_ID] for r in iter_report(http, FINES, filter_xml=filter_xml)]

    def expected(keep):
        return [r[C.FINE_ID] for r in rows if r[C.STATUS_DATE] is not None and keep(r[C.STATUS_DATE])]
    edge = "2024-05-15T10:00:00"  # a value several rows have
    cases = [
        (window_filter(C.FINES_FILTER_COLUMN, datetime(2024, 3, 15, 10), datetime(2024, 7, 16, 10)),
         lambda d: "2024-03-15T10:00:00" <= d < "2024-07-16T10:00:00"),
        (window_filter(C.FINES_FILTER_COLUMN, datetime(2024, 11, 1), None), lambda d: d >= "2024-11-01T00:00:00"),
        (comparison("less", edge), lambda d: d < edge),
        (comparison("lessOrEqual", edge), lambda d: d <= edge),
        (comparison("greater", edge), lambda d: d > edge),
        (comparison("greaterOrEqual", edge), lambda d: d >= edge),
        (comparison("between", edge, "2024-09-14T10:00:00"), lambda d: edge <= d <= "2024-09-14T10:00:00"),
    ]
    for filter_xml, keep in cases:
        want = expected(keep)
        assert want and want != expected(lambda d: True)  # each case keeps some rows, not all
        assert served(filter_xml) == want, filter_xml
