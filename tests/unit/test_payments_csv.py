"""The Bursar payments CSV parser (bursar/rules/payments_csv.py; docs/ledger.md §11, docs/original-defects.md §21-§23).

The parser decides which payments exist and what their keys are, so these tests pin down the
tolerances (BOM, CRLF, quotes, blank lines, spaces), the bad-row reporting and, above all, that
the same payment gets the same key in every later cumulative file.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from bursar.errors import EXIT_FAILED, BursarError
from bursar.rules.money import BadAmount
from bursar.rules.payments_csv import (
    REQUIRED,
    BadRow,
    PaymentFileError,
    PaymentRow,
    external_transaction_id,
    parse_amount,
    parse_payments,
    unterminated,
)

HEADER = "Emplid,Date Paid,Reference Number,Charge Amount,Paid Amount,Item Type,Charge Description"


def csv_bytes(*lines: str, eol: str = "\n", bom: bool = False) -> bytes:
    return (b"\xef\xbb\xbf" if bom else b"") + "".join(line + eol for line in lines).encode("utf-8")


def parse(*lines: str, **kw: object) -> tuple[list[PaymentRow], list[BadRow]]:
    parsed = parse_payments(csv_bytes(*lines, **kw), name="PAY.csv")  # type: ignore[arg-type]
    return parsed.rows, parsed.bad


# --------------------------------------------------------------------------- good rows

def test_a_plain_row_keeps_every_value_as_given():
    rows, bad = parse(HEADER, "0123456789,03/03/2026,8423596820003841,232.05,100.5,Library Fee,Lost item")
    assert bad == []
    assert rows == [PaymentRow(line=2, emplid="0123456789", reference="8423596820003841",
                               date_paid="03/03/2026", paid=Decimal("100.50"),
                               charge=Decimal("232.05"), item_type="Library Fee",
                               description="Lost item", occurrence=1)]
    assert str(rows[0].paid) == "100.50" and str(rows[0].charge) == "232.05"


def test_bom_and_crlf_are_tolerated_and_give_the_same_rows_as_lf():
    lines = (HEADER, "0012,03/03/2026,111,5.00,5.00,Fine,Overdue", "0034,03/04/2026,222,7,1.25,,")
    lf = parse(*lines)
    crlf_bom = parse(*lines, eol="\r\n", bom=True)
    assert lf == crlf_bom
    assert [r.emplid for r in lf[0]] == ["0012", "0034"]
    assert lf[0][1].item_type is None and lf[0][1].description is None


def test_quoted_fields_with_commas_quotes_and_newlines():
    rows, bad = parse(HEADER,
                      '1,03/03/2026,111,"1,234.50",10,Fee,"Lost item, ""replacement"" fee"',
                      '2,03/03/2026,222,5,5,Fine,"two\nlines, here"',
                      '3,03/03/2026,333,5,5,Fine,after', eol="\r\n")
    assert bad == []
    assert rows[0].charge == Decimal("1234.50")
    assert rows[0].description == 'Lost item, "replacement" fee'
    assert rows[1].description == "two\nlines, here"
    # line numbers are physical lines: the quoted newline pushes the third record to line 5
    assert [r.line for r in rows] == [2, 3, 5]


def test_blank_lines_are_skipped_but_counted():
    rows, bad = parse("", HEADER, "", "1,03/03/2026,111,5,5,,", "   ", ",,,,,,", "2,03/03/2026,222,5,5,,", "")
    assert bad == []
    assert [(r.line, r.reference) for r in rows] == [(4, "111"), (7, "222")]


def test_spaces_around_values_and_header_names_are_trimmed():
    rows, bad = parse(" Emplid , Reference Number ,Date Paid,  Paid Amount,Charge Amount ",
                      "  0042 ,  ABC-1  , 03/03/2026 , 12.5 ,  20 ")
    assert bad == []
    assert (rows[0].emplid, rows[0].reference, rows[0].date_paid) == ("0042", "ABC-1", "03/03/2026")
    assert (rows[0].paid, rows[0].charge) == (Decimal("12.50"), Decimal("20.00"))


def test_columns_in_any_order_extra_columns_ignored_optional_columns_may_be_absent():
    rows, bad = parse("Term,Charge Amount,Student Name,Paid Amount,Reference Number,Date Paid,Emplid",
                      '2261,10.00,"Doe, Jane",4.00,555,2026-03-03,0999')
    assert bad == []
    r = rows[0]
    assert (r.emplid, r.reference, r.date_paid, r.paid, r.charge) == (
        "0999", "555", "2026-03-03", Decimal("4.00"), Decimal("10.00"))
    assert r.item_type is None and r.description is None


def test_header_only_gives_no_rows():
    assert parse(HEADER) == ([], [])
    assert parse(HEADER, eol="\r\n", bom=True) == ([], [])


@pytest.mark.parametrize("text, value", [
    ("12.5", "12.50"), ("12", "12.00"), ("$1,234.50", "1234.50"), ("-3.00", "-3.00"),
    ("-$3.00", "-3.00"), ("+7", "7.00"), (".5", "0.50"), ("5.", "5.00"), ("12.500", "12.50"),
    (" 0.01 ", "0.01"), ("0", "0.00"), ("-0.00", "0.00"), ("1,000,000.00", "1000000.00"),
])
def test_amount_forms_accepted(text, value):
    amount = parse_amount(text)
    assert isinstance(amount, Decimal) and str(amount) == value


@pytest.mark.parametrize("text", [
    "(5.00)", "12.5O", "", "  ", "1,23.00", "12,3", "1e3", "NaN", "inf", "12.345", "$", "5-",
    "1.2.3", "€5", "5 00", "0x10", "--5",
])
def test_amount_forms_refused(text):
    with pytest.raises(BadAmount):
        parse_amount(text)


# --------------------------------------------------------------------------- bad rows

def test_bad_amounts_are_bad_rows_naming_column_and_line_and_good_rows_still_come_back():
    rows, bad = parse(HEADER,
                      "1,03/03/2026,111,5.00,(5.00),,",
                      "2,03/03/2026,222,5.00,5.00,,",
                      "3,03/03/2026,333,abc,5.00,,",
                      "4,03/03/2026,444,5.00,3.333,,")
    assert [r.reference for r in rows] == ["222"]
    assert [b.line for b in bad] == [2, 4, 5]
    assert "line 2" in bad[0].message and "'Paid Amount'" in bad[0].message and "(5.00)" in bad[0].message
    assert "line 4" in bad[1].message and "'Charge Amount'" in bad[1].message
    assert "line 5" in bad[2].message and "'Paid Amount'" in bad[2].message
    for b in bad:
        assert "\n" not in b.message
        assert re.fullmatch(r"malformed\|[0-9a-f]{16}\|\d+", b.key)


def test_empty_required_field_is_a_bad_row_naming_it():
    rows, bad = parse(HEADER, "1,,111,5,5,,", "  ,03/03/2026,222,5,5,,", "3,03/03/2026,333,5,5,,")
    assert [r.reference for r in rows] == ["333"]
    assert "line 2" in bad[0].message and "'Date Paid' is empty" in bad[0].message
    assert "line 3" in bad[1].message and "'Emplid' is empty" in bad[1].message


def test_a_row_with_fewer_fields_than_the_header_is_never_trusted():
    # a row cut short may end inside a value ("48.51" arriving as "48"), even when every
    # required column is there: only the complete row is used
    rows, bad = parse(HEADER, "1,03/03/2026,111", "2,03/03/2026,222,5,5", "3,03/03/2026,333,5,5,Fine",
                      "4,03/03/2026,444,48.51,48,Fine,Overdue")
    assert [r.reference for r in rows] == ["444"]
    assert [b.line for b in bad] == [2, 3, 4]
    assert all("too few fields" in b.message and "incomplete" in b.message for b in bad)


@pytest.mark.parametrize(("data", "expected"), [
    (b"h\r\n1,2\r\n", False), (b"h\n1,2\n", False), (b"h\n1,2\n  ", False),
    (b"h\n1,2", True), (b"h\r\n1,48", True), (b"h\r1,2", True),
    (b"h", False),  # one line and no line end: nothing says the file is cut
    (b"", False),
])
def test_unterminated_last_line(data, expected):
    assert unterminated(data) is expected


def test_more_fields_than_the_header_is_a_bad_row_unless_the_extras_are_empty():
    rows, bad = parse(HEADER,
                      "1,03/03/2026,111,1,234.50,5,Fee,Lost item",  # an unquoted comma shifts columns
                      "2,03/03/2026,222,5,5,Fee,Overdue,,")
    assert [r.reference for r in rows] == ["222"]
    assert len(bad) == 1 and "line 2" in bad[0].message and "8 fields" in bad[0].message


def test_broken_quoting_is_a_bad_row_and_reading_goes_on():
    rows, bad = parse(HEADER, '1,03/03/2026,111,5,5,Fee,"Lost" item', "2,03/03/2026,222,5,5,,")
    assert [r.reference for r in rows] == ["222"]
    assert len(bad) == 1 and "line 2" in bad[0].message and "quoting" in bad[0].message


def test_a_quote_never_closed_is_reported_with_the_lines_it_swallowed():
    rows, bad = parse(HEADER, "1,03/03/2026,111,5,5,Fee,ok", '2,03/03/2026,222,5,5,Fee,"Lost', "3,x,333,5,5,,")
    assert [r.reference for r in rows] == ["111"]
    assert len(bad) == 1 and bad[0].line == 3
    assert "never closed" in bad[0].message and "lines 3-4" in bad[0].message


def test_identical_bad_rows_get_occurrences_and_their_keys_survive_line_ending_changes():
    bad_line = "1,03/03/2026,111,5,oops,,"
    _, bad_lf = parse(HEADER, bad_line, "2,03/03/2026,222,5,5,,", bad_line)
    _, bad_crlf = parse(HEADER, "0,03/02/2026,000,5,5,,", bad_line, bad_line, eol="\r\n", bom=True)
    assert [b.key.rsplit("|", 1)[1] for b in bad_lf] == ["1", "2"]
    assert bad_lf[0].key != bad_lf[1].key
    assert [b.key for b in bad_lf] == [b.key for b in bad_crlf]


# --------------------------------------------------------------------------- whole-file errors

def test_missing_required_column_is_a_file_error_naming_file_and_column():
    with pytest.raises(PaymentFileError) as err:
        parse("Emplid,Date Paid,Reference Number,Charge Amount,Item Type", "1,03/03/2026,111,5,Fee")
    message = str(err.value)
    assert "PAY.csv" in message and "'Paid Amount'" in message and "\n" not in message
    assert isinstance(err.value, BursarError) and err.value.exit_code == EXIT_FAILED


def test_every_missing_column_is_named():
    with pytest.raises(PaymentFileError) as err:
        parse("Emplid,Date Paid,Reference Number")
    assert "'Paid Amount'" in str(err.value) and "'Charge Amount'" in str(err.value)


def test_header_names_are_case_sensitive():
    with pytest.raises(PaymentFileError, match="'Emplid'"):
        parse("emplid,Date Paid,Reference Number,Charge Amount,Paid Amount", "1,03/03/2026,111,5,5")


def test_a_column_named_twice_is_a_file_error():
    with pytest.raises(PaymentFileError, match="'Paid Amount' twice"):
        parse(HEADER + ",Paid Amount")


@pytest.mark.parametrize("data, why", [
    (b"", "no header"),
    (b"\xef\xbb\xbf\r\n\r\n", "no header"),
    ("Emplid,Date Paid\n".encode("utf-16"), "not UTF-8"),
    (b"Emplid,Reference Number,Date Paid,Paid Amount,Charge Amount\n1,\xff\xfe,3,4,5\n", "not UTF-8"),
    (b"PK\x03\x04\x00\x00binary", "NUL"),
    (b"<html><body>Service unavailable</body></html>\n", "missing the required columns"),
])
def test_files_that_are_not_a_payments_csv(data, why):
    with pytest.raises(PaymentFileError) as err:
        parse_payments(data, name="PAY.csv")
    assert why in str(err.value) and "PAY.csv" in str(err.value)


# --------------------------------------------------------------------------- keys

def test_key_format_is_the_five_values_and_the_occurrence():
    rows, _ = parse(HEADER, "0123,03/03/2026,8423596820003841,232.05,100.5,Fee,x")
    assert rows[0].key == "0123|8423596820003841|03/03/2026|100.50|232.05|1"


def test_identical_rows_are_numbered_in_file_order():
    same = "0123,03/03/2026,111,15.00,3.75,Fee,Lost"
    rows, _ = parse(HEADER, same, "0123,03/03/2026,111,15.00,3.00,Fee,Lost", same, same)
    assert [r.occurrence for r in rows] == [1, 1, 2, 3]
    assert len({r.key for r in rows}) == 4
    # optional columns are not part of the identity: a different description is still a repeat
    rows, _ = parse(HEADER, same, "0123,03/03/2026,111,15,3.75,Fine,other words")
    assert [r.occurrence for r in rows] == [1, 2]


def test_the_same_rows_in_a_later_cumulative_file_keep_their_keys():
    day1 = ["0123,03/03/2026,111,15.00,3.75,Fee,Lost", "0123,03/03/2026,111,15.00,3.75,Fee,Lost",
            "0456,03/03/2026,222,9.50,9.50,Fine,Overdue"]
    day2 = day1 + ["0123,03/04/2026,111,15.00,3.75,Fee,Lost", "0789,03/04/2026,333,5,5,,"]
    first, _ = parse(HEADER, *day1)
    # the next day's file: other line endings, a BOM, a blank line, amounts written differently
    second, _ = parse(HEADER, *day1[:2], "", day1[2].replace("9.50,9.50", "9.5,$9.50"), *day2[3:],
                      eol="\r\n", bom=True)
    assert [r.key for r in second[:3]] == [r.key for r in first]
    new = [r.key for r in second[3:]]
    assert new == ["0123|111|03/04/2026|3.75|15.00|1", "0789|333|03/04/2026|5.00|5.00|1"]
    assert not set(new) & {r.key for r in first}


def test_keys_differ_when_any_of_the_five_values_differ():
    base = ["0123", "03/03/2026", "111", "15.00", "3.75"]
    keys = set()
    for i, other in enumerate(["123", "03/04/2026", "112", "15.01", "3.76"]):
        cells = list(base)
        cells[i] = other
        rows, _ = parse(HEADER, ",".join(cells) + ",,")
        keys.add(rows[0].key)
    rows, _ = parse(HEADER, ",".join(base) + ",,")
    keys.add(rows[0].key)
    assert len(keys) == 6


def test_external_transaction_id_is_deterministic_short_and_url_safe():
    key = "0123|8423596820003841|03/03/2026|100.50|232.05|1"
    ext = external_transaction_id(key)
    assert ext == external_transaction_id(key)
    assert re.fullmatch(r"[A-Za-z0-9-]{1,40}", ext) and ext.startswith("pybursar-")
    assert external_transaction_id(key[:-1] + "2") != ext
    weird = external_transaction_id("é|ü|\n|,|\"|" + "x" * 500)
    assert re.fullmatch(r"[A-Za-z0-9-]{1,40}", weird)


def test_required_columns_constant():
    assert REQUIRED == ["Emplid", "Reference Number", "Date Paid", "Paid Amount", "Charge Amount"]
