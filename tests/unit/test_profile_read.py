"""Reading export files back with the profile that wrote them (bursar/profile_read.py): format
then parse gives the same values, for the built-in profiles and for other layouts (one file or
two, fixed or CSV, header and footer, LF or CRLF, ASCII, UTF-8 or Latin-1); names; refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bursar import profile as pf
from bursar import profile_read as pr
from bursar.errors import FieldTooWide
from bursar.rules import bursar_file as bf

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "e2e" / "golden"
GOLDEN_CSV = ROOT / "tests" / "e2e" / "golden-csv"
PREFIX = "LIB_charges.dat"

PYBURSAR = pf.builtin("pybursar")
CSV = pf.builtin("peoplesoft-csv")

# the worked example of docs/profiles.md: one fixed-width file, CRLF, header and footer
STATE_U = pf.loads('''name = "state-u"
version = "1"
[files]
name = "SU_LIB_{date}_{export_id}.txt"
date_format = "%y%m%d"
split = false
line_ending = "crlf"
[lines]
format = "fixed"
separator = ""
line_length = 80
[[lines.fields]]
name = "student id"
source = "emplid"
width = 9
justify = "right"
pad = "0"
[[lines.fields]]
source = "item_code"
width = 8
start = 11
[[lines.fields]]
source = "amount"
width = 12
justify = "right"
pad = "0"
implied_decimals = true
sign = "trailing-minus"
[[lines.fields]]
source = "due_date"
width = 8
date_format = "%Y%m%d"
when = "charge"
[[lines.fields]]
source = "term"
width = 4
start = 41
[[lines.fields]]
source = "fine_id"
width = 30
start = 46
[header]
text = "H{date}{count}|{total}"
[footer]
text = "T{charges_total}|{credits_total}"
[item_codes]
default = "LIBGEN"
[term]
rule = "fixed"
code = "2263"
[due]
rule = "days-after"
days = 30
''', "state-u.toml")

# two Latin-1 CSV files with tabs, every field quoted, credits in parentheses
TABS = pf.loads('''name = "tabs"
version = "2"
[files]
name = "{date}-{kind}-{export_id}.tsv"
date_format = "%Y-%m-%d"
split = true
kinds = ["CHG", "CRD"]
encoding = "latin-1"
[lines]
format = "csv"
separator = "\\t"
quoting = "all"
[[lines.fields]]
source = "fine_id"
width = 30
[[lines.fields]]
source = "amount"
width = 14
sign = "parentheses"
decimals = 3
[[lines.fields]]
source = "billing_date"
date_format = "%d.%m.%Y"
when = "charge"
[[lines.fields]]
source = "description"
width = 40
[[lines.fields]]
source = "emplid"
width = 12
justify = "right"
pad = "*"
''', "tabs.toml")

PROFILES = {"pybursar": PYBURSAR, "peoplesoft-csv": CSV, "state-u": STATE_U, "tabs": TABS}

_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_words = st.lists(_text, min_size=1, max_size=3).map(" ".join)  # inner spaces, none at the ends
_latin = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=("Cc",)),
                 min_size=1, max_size=20)


@st.composite
def line_values(draw, latin: bool = False) -> pf.LineValues:
    cents = draw(st.integers(min_value=1, max_value=99_999_999))
    credit = draw(st.booleans())
    amount = Decimal(cents).scaleb(-2) * (-1 if credit else 1)
    billing = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    return pf.LineValues(
        emplid=draw(st.from_regex(r"[1-9][0-9]{0,8}", fullmatch=True)),
        amount=amount, account=draw(_text), term=draw(st.from_regex(r"2[0-9]{2}[147]", fullmatch=True)),
        fine_id=draw(_text), billing_date=billing, due_date=draw(st.dates(min_value=billing,
                                                                           max_value=date(2099, 12, 31))),
        item_code=draw(_text), description=draw(_latin if latin else _words))


@pytest.mark.parametrize("name", sorted(PROFILES))
@given(data=st.data())
def test_format_then_parse_gives_the_same_values(name, data):
    p = PROFILES[name]
    v = data.draw(line_values(latin=p.encoding != "ascii"))
    try:
        text = pf.format_line(p, v)
    except (FieldTooWide, pf.BadLine):
        assume(False)
        return
    credit = (v.amount < 0) if p.split else None
    assert pr.parse_line(p, text, credit=credit) == pr.shown(p, v)


@given(v=line_values())
def test_the_pybursar_profile_reads_as_bursar_file_reads(v):
    try:
        text = bf.format_line(bf.LineFields(v.emplid, v.account, v.amount, v.due_date, v.billing_date, v.term,
                                            v.fine_id))
    except (FieldTooWide, pf.BadLine):
        assume(False)
        return
    old, new = bf.parse_line(text), pr.parse_line(PYBURSAR, text)
    assert (new.emplid, new.account, new.amount, new.due_date, new.billing_date, new.term, new.fine_id) == \
        (old.patron_id, old.account, old.amount, old.due_date, old.billing_date, old.term_code, old.reference)


def test_what_the_line_shows_says_charge_or_credit():
    charge = pr.parse_line(CSV, pf.format_line(CSV, _values(Decimal("12.50"))))
    credit = pr.parse_line(CSV, pf.format_line(CSV, _values(Decimal("-12.50"))))
    assert (charge.amount, charge.due_date) == (Decimal("12.50"), date(2026, 4, 25))
    assert (credit.amount, credit.due_date) == (Decimal("-12.50"), None)
    # pybursar: the reversal code and the blank dates
    line = pf.format_line(PYBURSAR, _values(Decimal("-3.05")))
    assert pr.parse_line(PYBURSAR, line).amount == Decimal("-3.05")
    # the file's kind must agree with the line
    with pytest.raises(pf.BadLine, match="both a charge and a credit"):
        pr.parse_line(PYBURSAR, line, credit=False)
    # TABS shows the sign (parentheses) and the billing date only on charges
    line = pf.format_line(TABS, _values(Decimal("-3.05")))
    assert line.startswith('"F1"\t"(3.050)"\t""\t')
    assert pr.parse_line(TABS, line, credit=True).amount == Decimal("-3.05")


def _values(amount: Decimal) -> pf.LineValues:
    return pf.LineValues(emplid="123", amount=amount, account="ACC", term="2261", fine_id="F1",
                         billing_date=date(2026, 3, 2), due_date=date(2026, 4, 25), item_code="IC",
                         description="Overdue fine")


def test_a_line_that_does_not_say_charge_or_credit_needs_the_file_kind():
    text = (ROOT / "bursar" / "profiles" / "peoplesoft-csv.toml").read_text()
    unsigned = pf.loads(text.replace('sign = "minus"', 'sign = "none"').replace('when = "charge"', ""), "u.toml")
    line = pf.format_line(unsigned, _values(Decimal("-2.00")))
    with pytest.raises(pf.BadLine, match="does not say whether"):
        pr.parse_line(unsigned, line)
    assert pr.parse_line(unsigned, line, credit=True).amount == Decimal("-2.00")


@pytest.mark.parametrize("profile, line, words", [
    (PYBURSAR, "x" * 96, "96 characters"),
    (PYBURSAR, pf.format_line(PYBURSAR, _values(Decimal("1.00"))).replace(" 1.00 ", "1.000 "), "not an amount"),
    (PYBURSAR, pf.format_line(PYBURSAR, _values(Decimal("1.00"))).replace("04252026", "13252026"), "not a date"),
    (CSV, "1,2,3", "3 fields"),
    (CSV, '123,IC,"12.50",2261,2026-04-25,F1,Overdue fine', "not one the profile"),  # needless quotes
    (CSV, "123,IC,12.5,2261,2026-04-25,F1,Overdue fine", "not an amount"),
    (CSV, "123,IC,0.00,2261,2026-04-25,F1,Overdue fine", "zero amount"),
    (CSV, "123,IC,12.50,2261,,F1,Overdue fine", "both a charge and a credit"),  # no due date
    (CSV, "123,IC,-12.50,2261,2026-04-25,F1,Overdue fine", "both a charge and a credit"),
    (CSV, '123,IC,12.50,2261,2026-04-25,F1,"Overdue fine', "CSV"),
])
def test_lines_the_profile_would_not_write_are_refused(profile, line, words):
    with pytest.raises(pf.BadLine, match=words):
        pr.parse_line(profile, line)


@pytest.mark.parametrize("edit, words", [
    (('name = "reference"\nsource = "fine_id"\nwidth = 30', 'name = "reference"\nsource = "fine_id"\nwidth = 30\n'
      'justify = "right"\npad = "0"'), "could be part of a reference"),
    (('sign = "minus"', 'sign = "minus"\npad = "0"'), "could be part of the amount"),
    (('sign = "minus"', 'sign = "minus"\ndecimals = 0'), "cents cannot be read back"),
])
def test_a_profile_whose_lines_cannot_be_told_back_is_named(edit, words):
    text = (ROOT / "bursar" / "profiles" / "peoplesoft-csv.toml").read_text()
    assert edit[0] in text
    p = pf.loads(text.replace(edit[0], edit[1]), "x.toml")
    assert words in (pr.unreadable(p) or "")
    with pytest.raises(pf.BadLine, match=words):
        pr.parse_line(p, "1,2,3,4,5,6,7")
    assert pr.unreadable(CSV) is None and pr.unreadable(PYBURSAR) is None


# -- names -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PROFILES))
@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       export_id=st.integers(min_value=1, max_value=10**12), kind=st.sampled_from([1, 2]),
       prefix=st.sampled_from(["LIB_charges.dat", "X", "a.b.c", "LIB (main)"]))
def test_file_names_read_back(name, day, export_id, kind, prefix):
    p = PROFILES[name]
    kind = kind if p.split else 1
    file_name = pf.file_name(p, prefix, f"{day:%Y%m%d}", export_id, kind)
    assert pr.parse_file_name(p, prefix, file_name) == pr.ExportName(f"{day:%Y%m%d}", export_id, kind)
    others = [q for q in PROFILES.values() if q is not p]
    assert all(pr.parse_file_name(q, prefix, file_name) is None for q in others)


@pytest.mark.parametrize("profile, name", [
    (PYBURSAR, "LIB_charges.dat.20260302.1.3"), (PYBURSAR, "LIB_charges.dat.20260302.0.1"),
    (PYBURSAR, "LIB_charges.dat.20261302.1.1"), (PYBURSAR, "OTHER.20260302.1.1"),
    (PYBURSAR, "LIB_charges.dat.20260302.1.1.bak"), (CSV, "LIB_charges.dat.20260302.1.1"),
    (CSV, "LIB_charges.dat.20260302.1.CSV"), (STATE_U, "SU_LIB_2603022_4.txt"), (TABS, "2026-03-02-CHG-x.tsv"),
])
def test_other_names_are_not_recognised(profile, name):
    assert pr.parse_file_name(profile, PREFIX, name) is None


def test_export_ids_under_every_profile_given():
    names = ["LIB_charges.dat.20260302.4.1", "LIB_charges.dat.20260303.7.csv", "SU_LIB_260304_9.txt", "notes.txt"]
    assert pr.export_ids([PYBURSAR, CSV], PREFIX, names) == {4, 7}
    assert pr.export_ids(list(PROFILES.values()), PREFIX, names) == {4, 7, 9}
    assert pr.recognise([CSV, PYBURSAR], PREFIX, names[0]) == [(PYBURSAR, pr.ExportName("20260302", 4, 1))]


def test_a_name_pattern_without_the_export_id_is_not_recognised():
    p = pf.loads('name = "n"\n[files]\nname = "{prefix}_{date}.txt"\nsplit = false\n[lines]\nformat = "csv"\n'
                 '[[lines.fields]]\nsource = "fine_id"\n[[lines.fields]]\nsource = "amount"\nsign = "minus"\n', "n")
    assert pr.name_pattern(p, PREFIX) is None
    assert pr.parse_file_name(p, PREFIX, pf.file_name(p, PREFIX, "20260302", 3, 1)) is None


# -- files -----------------------------------------------------------------------------------

@pytest.mark.parametrize("folder, profile", [(GOLDEN, PYBURSAR), (GOLDEN_CSV, CSV)])
def test_the_golden_files_read_back(folder, profile):
    seen = 0
    for path in sorted(folder.iterdir()):
        name = pr.parse_file_name(profile, PREFIX, path.name)
        assert name is not None, path.name
        got = pr.parse_file(profile, path.read_bytes(), name)
        ending = profile.line_ending.encode()
        rows = path.read_bytes().split(ending)[:-1]
        assert [r.decode() for r in rows[len(rows) - len(got.lines):]] == got.lines
        if profile is CSV:  # the header is the count and the net total
            count, total = rows[0].decode().split(",")
            assert (int(count), Decimal(total)) == (len(got.values), sum(v.amount for v in got.values))
        else:
            assert all((v.amount < 0) == (name.kind == 2) for v in got.values)
        assert all(v.fine_id and v.amount for v in got.values)
        seen += len(got.values)
    assert seen > 20


def _csv_file(lines: list[str], header: str | None = None) -> tuple[bytes, pr.ExportName]:
    name = pr.ExportName("20260302", 1, 1)
    amounts = [pr.parse_line(CSV, t).amount for t in lines]
    head = header if header is not None else pf.aggregate_line(CSV, "{count},{total}", amounts,
                                                                export_date="20260302", export_id=1)
    return "".join(t + "\r\n" for t in [head, *lines]).encode("ascii"), name


def test_a_file_with_a_wrong_header_ending_or_encoding_is_refused():
    lines = [pf.format_line(CSV, _values(Decimal("12.50"))), pf.format_line(CSV, _values(Decimal("-2.50")))]
    data, name = _csv_file(lines)
    got = pr.parse_file(CSV, data, name)
    assert got.lines == lines and [v.amount for v in got.values] == [Decimal("12.50"), Decimal("-2.50")]
    with pytest.raises(pf.BadLine, match="header line '2,10.01' does not match"):
        pr.parse_file(CSV, _csv_file(lines, header="2,10.01")[0], name)
    with pytest.raises(pf.BadLine, match="line end other than"):
        pr.parse_file(CSV, data.replace(b"\r\n", b"\n", 1), name)
    with pytest.raises(pf.BadLine, match="does not end with"):
        pr.parse_file(CSV, data[:-2], name)
    with pytest.raises(pf.BadLine, match="not ASCII"):
        pr.parse_file(CSV, data.replace(b"Overdue", "\u00dcberf\u00e4llig".encode("utf-8")), name)
    # two files: a credit in the charges file is refused
    credit = pf.format_line(PYBURSAR, _values(Decimal("-2.50"))) + "\n"
    with pytest.raises(pf.BadLine, match="both a charge and a credit"):
        pr.parse_file(PYBURSAR, credit.encode(), pr.ExportName("20260302", 1, 1))
    assert pr.parse_file(PYBURSAR, credit.encode(), pr.ExportName("20260302", 1, 2)).values[0].amount < 0


def test_header_and_footer_of_the_worked_example():
    lines = [pf.format_line(STATE_U, v) for v in (_values(Decimal("12.50")), _values(Decimal("-12.50")))]
    name = pr.parse_file_name(STATE_U, PREFIX, "SU_LIB_260302_4.txt")
    assert name == pr.ExportName("20260302", 4, 1)
    amounts = [Decimal("12.50"), Decimal("-12.50")]
    rows = [pf.aggregate_line(STATE_U, STATE_U.header or "", amounts, export_date="20260302", export_id=4), *lines,
            pf.aggregate_line(STATE_U, STATE_U.footer or "", amounts, export_date="20260302", export_id=4)]
    assert rows[0] == "H2603022|0.00" and rows[-1] == "T12.50|12.50"
    got = pr.parse_file(STATE_U, "".join(r + "\r\n" for r in rows).encode(), name)
    assert [(v.fine_id, v.amount, v.due_date, v.term) for v in got.values] == [
        ("F1", Decimal("12.50"), date(2026, 4, 25), "2261"), ("F1", Decimal("-12.50"), None, "2261")]
    rows[-1] = "T12.50|12.49"
    with pytest.raises(pf.BadLine, match="footer"):
        pr.parse_file(STATE_U, "".join(r + "\r\n" for r in rows).encode(), name)


def test_a_killed_exports_temporary_files_are_found_under_every_profile_given(tmp_path):
    from bursar.runtime.leftovers import export_leftovers

    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    names = {".LIB_charges.dat.20260302.1.csv.k3j_x9a0.tmp": CSV,
             ".LIB_charges.dat.20260302.1.2.ab12cd34.tmp": PYBURSAR, ".SU_LIB_260302_4.txt.zx8_cv7b.tmp": STATE_U}
    keep = [".notes.csv.k3j_x9a0.tmp", "LIB_charges.dat.20260302.1.csv", ".LIB_charges.dat.20260302.x.csv.k3j_x9a0.tmp"]
    for name in [*names, *keep]:
        (tmp_path / name).write_bytes(b"patron data")
    assert [p.name for p in export_leftovers(tmp_path, PREFIX)] == [".LIB_charges.dat.20260302.1.2.ab12cd34.tmp"]
    removed = {p.name for p in export_leftovers(tmp_path, PREFIX, [CSV, STATE_U])}
    assert removed == {n for n, p in names.items() if p is not PYBURSAR}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


PER_PATRON = pf.loads('''name = "per-patron"
version = "1"
[files]
name = "{prefix}.{date}.{export_id}.{kind}.csv"
kinds = ["chg", "crd"]
[lines]
format = "csv"
aggregate = "patron"
[[lines.fields]]
source = "emplid"
width = 11
[[lines.fields]]
source = "amount"
width = 12
sign = "minus"
''', "per-patron.toml")


def test_a_patrons_line_reads_back_for_its_amount_only_when_asked():
    """aggregate = "patron": the line names no fine, so it is unreadable unless the caller takes
    the fines from elsewhere (summed=True, the roll-forward with the export's record)."""
    assert "no Bursar reference" in (pr.unreadable(PER_PATRON) or "")
    assert pr.unreadable(PER_PATRON, summed=True) is None
    no_ref = replace(CSV, fields=type(CSV.fields)(f for f in CSV.fields if f.source != "fine_id"))
    assert "no Bursar reference" in (pr.unreadable(no_ref, summed=True) or ""), "only a patron's line may omit it"
    with pytest.raises(pf.BadLine, match="no Bursar reference"):
        pr.parse_line(PER_PATRON, "0860309439,247.05")
    values = pr.parse_line(PER_PATRON, "0860309439,247.05", summed=True)
    assert (values.emplid, values.fine_id, values.amount) == ("0860309439", "", Decimal("247.05"))
    name = pr.parse_file_name(PER_PATRON, PREFIX, "LIB_charges.dat.20260304.3.crd.csv")
    assert name is not None
    read = pr.parse_file(PER_PATRON, b"0860309439,-7.50\n9350674119,-10.00\n", name, summed=True)
    assert [v.amount for v in read.values] == [Decimal("-7.50"), Decimal("-10.00")]
    with pytest.raises(pf.BadLine):
        pr.parse_file(PER_PATRON, b"0860309439,-7.50\n", name)
