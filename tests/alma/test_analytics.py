"""Analytics paging and parsing against the real sandbox (and a canned server for answers a
well-behaved Alma never gives)."""

from __future__ import annotations

from datetime import datetime

import pytest

from bursar.clients.alma.analytics import date_filter, iter_report
from bursar.errors import AlmaError, ReportError
from bursar.rules import columns as C
from tests.alma.conftest import SleepRecorder, make_http

FINES = "/shared/Example University/Reports/Bursar/All Fines"
REPORTS = "/almaws/v1/analytics/reports"


def fine_rows(n: int, *, start_day: int = 0) -> list[dict[str, str | None]]:
    rows = []
    for i in range(n):
        row: dict[str, str | None] = {c: f"{c} {i}" for c in C.FINES_COLUMNS}
        row[C.FINE_ID] = f"78{i:014d}"
        row[C.STATUS_DATE] = f"2024-{(start_day + i) % 12 + 1:02d}-15T10:00:00"
        row[C.FINE_COMMENT] = None if i % 3 == 0 else f"comment {i}"
        rows.append(row)
    return rows


def report_calls(sandbox):
    return [c for c in sandbox.calls if c["path"] == REPORTS]


def test_pages_across_a_large_report_without_duplicates(sandbox, http):
    rows = fine_rows(2600)
    sandbox.set_report(FINES, C.FINES_COLUMNS, rows)
    stream = iter_report(http, FINES)
    got = list(stream)
    assert got == rows
    assert stream.columns == C.FINES_COLUMNS
    calls = report_calls(sandbox)
    assert len(calls) == 3 and stream.pages == 3 and stream.rows == 2600
    assert calls[0]["params"] == {"path": FINES, "limit": "1000", "col_names": "true"}
    token = calls[1]["params"]["token"]
    assert len(token) == 128
    assert calls[1]["params"] == calls[2]["params"] == {"token": token, "limit": "1000"}


def test_pages_are_fetched_lazily(sandbox, http):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(120))
    stream = iter_report(http, FINES, limit=50)
    assert report_calls(sandbox) == []
    first = next(stream)
    assert first[C.FINE_ID] == "78" + "0" * 14
    assert len(report_calls(sandbox)) == 1
    assert sum(1 for _ in stream) == 119
    assert len(report_calls(sandbox)) == 3


def test_headings_map_cells_whatever_the_column_order(sandbox, http):
    columns = [C.REMAINING_AMOUNT, C.PRIMARY_ID]  # not the fallback order
    sandbox.set_report("/r/Balances", columns, [
        {C.PRIMARY_ID: "1234567890", C.REMAINING_AMOUNT: "4.5"},
        {C.PRIMARY_ID: "1234567891", C.REMAINING_AMOUNT: "0"},
    ])
    stream = iter_report(http, "/r/Balances", fallback_columns=C.BALANCES_COLUMNS)
    assert list(stream) == [{C.PRIMARY_ID: "1234567890", C.REMAINING_AMOUNT: "4.5"},
                            {C.PRIMARY_ID: "1234567891", C.REMAINING_AMOUNT: "0"}]
    assert stream.columns == columns


def test_absent_cells_are_none_and_empty_cells_empty(sandbox, http):
    sandbox.set_report("/r/T", C.TRANSACTIONS_COLUMNS, [
        {C.FINE_ID: "1", C.TRANS_ID: "-1", C.TRANS_NOTE: None, C.TRANS_AMOUNT: ""},
    ])
    (row,) = list(iter_report(http, "/r/T"))
    assert row[C.TRANS_NOTE] is None and row[C.LOAN_ID] is None
    assert row[C.TRANS_AMOUNT] == ""
    assert row[C.FINE_ID] == "1" and set(row) == set(C.TRANSACTIONS_COLUMNS)


def test_markup_in_values_survives(sandbox, http):
    nasty = 'Smith & Jones <"law"> \u00e9\u4e2d'
    sandbox.set_report("/r/B", C.BALANCES_COLUMNS, [{C.PRIMARY_ID: nasty,
                                                      C.REMAINING_AMOUNT: "1"}])
    assert list(iter_report(http, "/r/B"))[0][C.PRIMARY_ID] == nasty


def test_fallback_columns_when_the_report_has_no_headings(sandbox, http):
    sandbox.set_report("/r/T", C.TRANSACTIONS_COLUMNS, [
        {C.FINE_ID: "1", C.TRANS_ID: "2", C.TRANS_AMOUNT: "3.25"}], headings=False)
    stream = iter_report(http, "/r/T", fallback_columns=C.TRANSACTIONS_COLUMNS)
    (row,) = list(stream)
    assert row[C.FINE_ID] == "1" and row[C.TRANS_ID] == "2" and row[C.TRANS_AMOUNT] == "3.25"
    assert stream.columns == C.TRANSACTIONS_COLUMNS


def test_no_headings_and_no_fallback_is_a_report_error(sandbox, http):
    sandbox.set_report("/r/T", C.BALANCES_COLUMNS, [{C.PRIMARY_ID: "1"}], headings=False)
    with pytest.raises(ReportError, match="'T' declares no column headings"):
        list(iter_report(http, "/r/T"))


def test_fallback_shorter_than_the_report_is_a_report_error(sandbox, http):
    sandbox.set_report("/r/F", C.FINES_COLUMNS, fine_rows(1), headings=False)
    with pytest.raises(ReportError, match="has 21 columns"):
        list(iter_report(http, "/r/F", fallback_columns=C.BALANCES_COLUMNS))


def test_sandbox_col_names_false_drops_headings(sandbox, http):
    sandbox.set_report("/r/B", C.BALANCES_COLUMNS, [])
    with_names = http.get(REPORTS, {"path": "/r/B", "limit": 25}, accept="application/xml").text
    without = http.get(REPORTS, {"path": "/r/B", "col_names": "false"},
                       accept="application/xml").text
    assert 'saw-sql:columnHeading="Primary Identifier"' in with_names
    assert "columnHeading" not in without and 'name="Column2"' in without


def test_empty_report_still_knows_its_columns(sandbox, http):
    sandbox.set_report("/r/B", C.BALANCES_COLUMNS, [])
    stream = iter_report(http, "/r/B")
    assert stream.read_columns() == C.BALANCES_COLUMNS
    assert list(stream) == []


def test_read_columns_keeps_rows_for_iteration(sandbox, http):
    sandbox.set_report("/r/B", C.BALANCES_COLUMNS, [{C.PRIMARY_ID: str(i)} for i in range(30)])
    stream = iter_report(http, "/r/B", limit=25)
    assert stream.read_columns() == C.BALANCES_COLUMNS
    assert [r[C.PRIMARY_ID] for r in stream] == [str(i) for i in range(30)]


def test_date_filter_text_is_the_originals():
    assert date_filter(C.FINES_FILTER_COLUMN, datetime(2017, 1, 1)) == (
        '<sawx:expr xsi:type="sawx:comparison" op="greaterOrEqual" '
        'xmlns:saw="com.siebel.analytics.web/report/v1.1" '
        'xmlns:sawx="com.siebel.analytics.web/expression/v1.1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        '<sawx:expr xsi:type="sawx:sqlExpression">"Fines and Fees Transactions"."Status Date"'
        '</sawx:expr><sawx:expr xsi:type="xsd:dateTime">2017-01-01T00:00:00</sawx:expr>'
        "</sawx:expr>")


def test_date_filter_actually_filters_and_is_sent_once(sandbox, http):
    rows = fine_rows(1200)  # status dates cycle through the months of 2024
    sandbox.set_report(FINES, C.FINES_COLUMNS, rows)
    since = datetime(2024, 10, 1, 0, 0, 0)
    got = list(iter_report(http, FINES, limit=100,
                           filter_xml=date_filter(C.FINES_FILTER_COLUMN, since)))
    expected = [r for r in rows if (r[C.STATUS_DATE] or "") >= "2024-10-01T00:00:00"]
    assert got == expected and len(got) == 300
    calls = report_calls(sandbox)
    assert calls[0]["params"]["filter"].startswith("<sawx:expr")
    assert all("filter" not in c["params"] and "path" not in c["params"] for c in calls[1:])


def test_still_loading_is_waited_for(sandbox):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(60))
    sandbox.add_fault("still_loading", page=1, times=2)
    sandbox.add_fault("still_loading", page=2, times=1)
    waits = SleepRecorder()
    with make_http(sandbox.url) as client:
        got = list(iter_report(client, FINES, limit=50, still_loading_wait=0.7, sleep=waits))
    assert len(got) == 60 and len({r[C.FINE_ID] for r in got}) == 60
    assert waits.sleeps == [0.7, 0.7, 0.7]
    calls = report_calls(sandbox)
    assert [("path" in c["params"]) for c in calls] == [True, True, True, False, False]


def test_still_loading_forever_is_an_error(sandbox):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(10))
    sandbox.add_fault("still_loading", times=100)
    waits = SleepRecorder()
    with make_http(sandbox.url) as client:
        with pytest.raises(AlmaError, match="'All Fines' was still loading"):
            list(iter_report(client, FINES, still_loading_retries=3, sleep=waits))
    assert len(waits.sleeps) == 3 and len(report_calls(sandbox)) == 4


def test_500_on_page_two_is_retried_without_duplicates(sandbox, http):
    rows = fine_rows(250)
    sandbox.set_report(FINES, C.FINES_COLUMNS, rows)
    sandbox.add_fault("error", status=500, page=2, times=2)
    sandbox.add_fault("drop", page=3)
    sandbox.add_fault("rate_limit", page=3)
    assert list(iter_report(http, FINES, limit=100)) == rows
    assert [c["status"] for c in report_calls(sandbox)] == [200, 500, 500, 200, None, 429, 200]


def test_persistent_500_on_page_two_fails_cleanly(sandbox, http):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(250))
    sandbox.add_fault("error", status=500, page=2, times=100)
    stream = iter_report(http, FINES, limit=100)
    with pytest.raises(AlmaError) as err:
        list(stream)
    assert str(err.value) == ("GET /almaws/v1/analytics/reports: HTTP 500 INTERNAL_SERVER_ERROR "
                              "Internal server error.")
    assert stream.rows == 100


def test_unknown_report_path_is_not_retried(sandbox, http):
    with pytest.raises(AlmaError) as err:
        list(iter_report(http, "/shared/Nowhere/Reports/Missing"))
    assert str(err.value) == ("GET /almaws/v1/analytics/reports: HTTP 500 INTERNAL_SERVER_ERROR "
                              "Path not found (/shared/Nowhere/Reports/Missing)")
    assert len(report_calls(sandbox)) == 1


def test_body_without_report_is_analytics_down(sandbox, http):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(5))
    sandbox.add_fault("error", status=200, code="X", message="not a report")
    with pytest.raises(AlmaError) as err:
        list(iter_report(http, FINES))
    assert str(err.value) == ("Analytics returned no report for 'All Fines' "
                              "(Analytics may be down; try again later)")


def test_asking_again_after_the_last_page_is_420033(sandbox, http):
    sandbox.set_report("/r/B", C.BALANCES_COLUMNS, [{C.PRIMARY_ID: "1"}])
    first = http.get(REPORTS, {"path": "/r/B"}, accept="application/xml").text
    token = first.split("<ResumptionToken>")[1].split("<")[0]
    assert "<IsFinished>true</IsFinished>" in first
    with pytest.raises(AlmaError) as err:
        http.get(REPORTS, {"token": token}, accept="application/xml")
    assert err.value.status == 400 and err.value.code == "420033"
    assert str(err.value).endswith("HTTP 400 420033 No more rows to fetch")


def test_sandbox_rejects_limits_out_of_range_and_rounds_to_blocks_of_25(sandbox, http):
    sandbox.set_report("/r/B", C.BALANCES_COLUMNS, [{C.PRIMARY_ID: str(i)} for i in range(80)])
    for bad in ("10", "1001"):
        with pytest.raises(AlmaError) as err:
            http.get(REPORTS, {"path": "/r/B", "limit": bad}, accept="application/xml")
        assert err.value.status == 400
    page = http.get(REPORTS, {"path": "/r/B", "limit": "30"}, accept="application/xml").text
    assert page.count("<Row>") == 50  # limit=30 may return up to 50 rows
    default = http.get(REPORTS, {"path": "/r/B"}, accept="application/xml").text
    assert default.count("<Row>") == 25


# -- answers only a misbehaving Alma gives (canned server) ------------------------------------

HEAD = '<?xml version="1.0" encoding="UTF-8"?><report><QueryResult>'
SCHEMA = ('<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:saw-sql="urn:saw-sql">'
          '<xsd:complexType name="Row"><xsd:sequence>'
          '<xsd:element name="Column0" saw-sql:columnHeading="0"/>'
          '<xsd:element name="Column1" saw-sql:columnHeading="Primary Identifier"/>'
          '<xsd:element name="Column2" saw-sql:columnHeading="Remaining Amount"/>'
          "</xsd:sequence></xsd:complexType></xsd:schema>")


def page(rows: str, *, token: str | None, finished: bool, schema: bool = False,
         prefix: str = "") -> str:
    ns = "urn:schemas-microsoft-com:xml-analysis:rowset"
    open_ = f'<{prefix}:rowset xmlns:{prefix}="{ns}">' if prefix else f'<rowset xmlns="{ns}">'
    close = f"</{prefix}:rowset>" if prefix else "</rowset>"
    return (HEAD + (f"<ResumptionToken>{token}</ResumptionToken>" if token else "")
            + f"<IsFinished>{str(finished).lower()}</IsFinished><ResultXml>" + open_
            + (SCHEMA if schema else "") + rows + close + "</ResultXml></QueryResult></report>")


def rows_xml(*ids: str, prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    return "".join(f"<{p}Row><{p}Column0>0</{p}Column0><{p}Column1>{i}</{p}Column1>"
                   f"<{p}Column2>1.5</{p}Column2></{p}Row>" for i in ids)


def test_token_is_taken_from_the_first_page_that_has_one(canned):
    server = canned([
        (200, page(rows_xml("a"), token="T1", finished=False, schema=True)),
        (200, page(rows_xml("b"), token="T2", finished=False)),
        (200, page(rows_xml("c"), token=None, finished=True)),
    ])
    with make_http(server.url) as client:
        got = [r[C.PRIMARY_ID] for r in iter_report(client, "/r/B")]
    assert got == ["a", "b", "c"]
    assert "token=T1" in server.requests[1] and "token=T1" in server.requests[2]


def test_unfinished_page_without_any_token_is_an_error_not_a_loop(canned):
    server = canned([(200, page(rows_xml("a"), token=None, finished=False, schema=True))] * 3)
    with make_http(server.url) as client:
        with pytest.raises(AlmaError, match="no resumption token"):
            list(iter_report(client, "/r/B"))
    assert len(server.requests) == 1  # page 1 is never asked for again


def test_finished_page_with_token_and_prefixed_rowset(canned):
    server = canned([(200, page(rows_xml("a", "b", prefix="rs"), token="T", finished=True,
                                schema=True, prefix="rs"))])
    with make_http(server.url) as client:
        got = list(iter_report(client, "/r/B"))
    assert got == [{C.PRIMARY_ID: "a", C.REMAINING_AMOUNT: "1.5"},
                   {C.PRIMARY_ID: "b", C.REMAINING_AMOUNT: "1.5"}]
    assert len(server.requests) == 1


def test_cell_outside_the_schema_is_a_report_error(canned):
    bad = rows_xml("a").replace("</Row>", "<Column7>x</Column7></Row>")
    server = canned([(200, page(bad, token=None, finished=True, schema=True))])
    with make_http(server.url) as client:
        with pytest.raises(ReportError, match="Column7"):
            list(iter_report(client, "/r/B"))


def test_html_maintenance_page_is_analytics_down(canned):
    server = canned([(200, "<html><body>Down for maintenance</body></html>")])
    with make_http(server.url) as client:
        with pytest.raises(AlmaError, match="no report for 'B'"):
            list(iter_report(client, "/r/B"))


def test_truncated_page_is_an_error(canned):
    whole = page(rows_xml("a", "b"), token=None, finished=True, schema=True)
    server = canned([(200, whole[: len(whole) // 2])])
    with make_http(server.url) as client:
        with pytest.raises(AlmaError, match="not well-formed"):
            list(iter_report(client, "/r/B"))


def test_empty_finished_report_with_a_token(canned):
    server = canned([(200, page("", token="T", finished=True, schema=True))])
    with make_http(server.url) as client:
        stream = iter_report(client, "/r/B")
        assert list(stream) == []
    assert stream.columns == C.BALANCES_COLUMNS and len(server.requests) == 1


def test_memory_does_not_grow_with_the_report(sandbox, http):
    """Parsing is streamed and rows are dropped: peak memory for 4x the rows stays about level."""
    import tracemalloc

    peaks = []
    for n in (1000, 4000):
        sandbox.set_report("/r/Big", C.FINES_COLUMNS,
                           ({c: f"{c[:8]} {i}" for c in C.FINES_COLUMNS} for i in range(n)))
        tracemalloc.start()
        try:
            assert sum(1 for _ in iter_report(http, "/r/Big", limit=250)) == n
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.5, peaks
