"""Fuzzing the two parsers (issue 10 item 8): the payments CSV and the Analytics XML reader.

Every nasty input gives rows or our own error (a BursarError), never anything else, and an
ambiguous amount (`1e3`, `3,00`, `NaN`, `Infinity`) is reported, never guessed.  The corpus is
tests/data/fuzz/ (small files: byte flips, truncation, empty, header-only, UTF-16, NULs, a wrong
delimiter, odd amounts, CR-only line ends, an HTML error page served with status 200, JSON
instead of XML, a report whose IsFinished stays false, an entity-expansion bomb); 1 MB lines and
100,000 rows are made here.  The XML reader is driven through `iter_report` with a fake HTTP object that serves the
bytes as pages (no server needed: the reader only calls `get(...).iter_content()`).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bursar.rules.rows import RowError
from tests.fuzzing import payments_outcome, report_outcome

CORPUS = Path(__file__).resolve().parents[1] / "data" / "fuzz"
AMBIGUOUS = ("1e3", "3,00", "NaN", "Infinity", "0.001")
OK_XML = (CORPUS / "report_ok.xml").read_bytes()


# -- the payments CSV --------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(CORPUS.glob("payments_*.csv")), ids=lambda p: p.name)
def test_each_payments_file_of_the_corpus_gives_rows_or_our_error(path):
    payments_outcome(path.read_bytes())


def test_the_good_payments_file_gives_its_rows():
    parsed = payments_outcome((CORPUS / "payments_ok.csv").read_bytes())
    assert parsed is not None and [r.paid for r in parsed.rows] == [Decimal("4.50"), Decimal("2.00")]


def test_ambiguous_payment_amounts_are_reported_never_guessed():
    parsed = payments_outcome((CORPUS / "payments_amounts.csv").read_bytes())
    assert parsed is not None
    used = {row.reference: row.paid for row in parsed.rows}
    # 1e3, 3,00, NaN, Infinity and 0.001 (lines 2, 5, 6, 7, 8) are reported by line, never paid
    assert {bad.line for bad in parsed.bad} == {2, 5, 6, 7, 8}
    assert used == {"1001": Decimal("-5.00"), "1002": Decimal("3.00")}  # -5: a negative, skipped later


def test_a_one_megabyte_line_and_100000_rows():
    header = (CORPUS / "payments_header_only.csv").read_bytes()
    long = header + b"0123456789,03/03/2026,1001,4.50,4.50,LIB,\"" + b"x" * 1_000_000 + b"\"\r\n"
    parsed = payments_outcome(long)
    assert parsed is None or len(parsed.rows) + len(parsed.bad) == 1
    many = header + b"".join(b"0123456789,03/03/2026,%d,4.50,1.25,LIB,x\r\n" % i for i in range(100_000))
    parsed = payments_outcome(many)
    assert parsed is not None and len(parsed.rows) == 100_000 and not parsed.bad


@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), max_size=8),
       cut=st.integers(0, 400))
@settings(max_examples=300, deadline=None)
def test_byte_flips_and_cuts_of_a_good_payments_file(flips, cut):
    data = bytearray((CORPUS / "payments_ok.csv").read_bytes())
    for index, bit in flips:
        data[index % len(data)] ^= 1 << bit
    payments_outcome(bytes(data))
    payments_outcome(bytes(data[:cut]))


# -- the Analytics XML reader ------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(CORPUS.glob("report_*.xml")), ids=lambda p: p.name)
def test_each_report_of_the_corpus_gives_rows_or_our_error(path):
    report_outcome(path.read_bytes())


def test_the_good_report_gives_its_fines():
    fines = report_outcome(OK_XML)
    assert fines is not None and [f.origAmtAlma for f in fines] == [Decimal("4.50"), Decimal("12.00")]


@pytest.mark.parametrize("name", ["report_html_200.xml", "report_json.xml", "report_empty.xml",
                                  "report_truncated.xml", "report_never_finished.xml",
                                  "report_entity_bomb.xml"])
def test_what_is_not_a_whole_report_is_our_error(name):
    assert report_outcome((CORPUS / name).read_bytes()) is None


def test_a_report_whose_isfinished_never_becomes_true_stops():
    # new rows on every page, never finished: stopped by the page bound, not by repetition
    template = (CORPUS / "report_never_finished.xml").read_bytes()
    assert report_outcome(lambda n: template.replace(b">1001<", b">%d<" % (5000 + n)), max_pages=10) is None


def test_ambiguous_report_amounts_are_reported_never_guessed():
    fines = report_outcome((CORPUS / "report_amounts.xml").read_bytes())
    assert fines is not None
    by_amount = dict(zip(["1e3", "-5", "$3.00", "3,00", "NaN", "Infinity", "0.001", "4.50"], fines, strict=True))
    for text in ("1e3", "3,00", "NaN", "Infinity", "$3.00", "-5"):  # -5: negative on a debit
        assert isinstance(by_amount[text], RowError), text
    assert by_amount["4.50"].origAmtAlma == Decimal("4.50")
    # Analytics amounts are float renderings ("0.30000000000000004"): they are rounded to the
    # cent by design, so 0.001 reads as 0.00 (a finding, kept: see docs)
    assert by_amount["0.001"].origAmtAlma == Decimal("0.00")


def test_a_report_with_a_one_megabyte_cell_and_100000_rows():
    head, rest = OK_XML.split(b"<Row>", 1)
    row = b"<Row>" + rest.split(b"</Row>", 1)[0] + b"</Row>"
    tail = b"</rowset>" + OK_XML.rsplit(b"</rowset>", 1)[1]
    big_cell = head + row.replace(b"<Column5>", b"<Column1>" + b"n" * 1_000_000 + b"</Column1><Column5>") + tail
    fines = report_outcome(big_cell)
    assert fines is not None and len(fines[0].almaNote or "") == 1_000_000
    many = head + b"".join(row.replace(b">1001<", b">%d<" % i) for i in range(100_000)) + tail
    fines = report_outcome(many)
    assert fines is not None and len(fines) == 100_000


@given(flips=st.lists(st.tuples(st.integers(0, 100_000), st.integers(0, 7)), min_size=1, max_size=6),
       cut=st.integers(0, len(OK_XML)))
@example(flips=[(30, 0)], cut=0)  # found by this test: "UTF-8" flipped to "TTF-8" escaped as a LookupError
@settings(max_examples=200, deadline=None)
def test_byte_flips_and_cuts_of_a_good_report(flips, cut):
    data = bytearray(OK_XML)
    for index, bit in flips:
        data[index % len(data)] ^= 1 << bit
    report_outcome(bytes(data))
    report_outcome(OK_XML[:cut])


@given(cell=st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_any_text_in_an_amount_cell(cell):
    escaped = cell.replace("&", "&amp;").replace("<", "&lt;").encode("utf-8", "surrogatepass")
    fines = report_outcome(OK_XML.replace(b"<Column20>4.50<", b"<Column20>" + escaped + b"<", 1))
    if fines:
        first = fines[0]
        if not isinstance(first, RowError):
            assert first.origAmtAlma.is_finite() and first.origAmtAlma >= 0
            assert cell.strip().lower() not in {a.lower() for a in AMBIGUOUS[:4]}
