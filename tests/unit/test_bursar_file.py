"""The 97-character Bursar line, its rules and the atomic writer (docs/file-format.md §1-§10,
docs/dates-and-terms.md §3-§5)."""

from __future__ import annotations

import os
import random
import stat
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bursar.effects import write_file_atomic
from bursar.errors import BursarError, FieldTooWide
from bursar.rules.bursar_file import (
    LINE_LENGTH,
    SEPARATOR_COLUMNS,
    BadLine,
    FileName,
    LineFields,
    charge_account,
    due_date,
    file_name,
    format_line,
    parse_file_name,
    parse_line,
    term_code,
)
from tests.unit.amounts import from_cents

# --- golden lines made by the original's formatter, byte for byte (docs/file-format.md §6) -

GOLDEN = [
    (  # 1. overdue fine
        LineFields("1201901471", "531000000002", Decimal("65.00"), date(2021, 10, 25), date(2021, 9, 20),
                   "2217", "12894251030003841"),
        "1201901471  531000000002      65.00 10252021  09202021  2217      12894251030003841              ",
    ),
    (  # 2. replacement fee billed on the 26th: due the 25th of the month after next
        LineFields("1209876543", "531000000001", Decimal("150.00"), date(2022, 1, 25), date(2021, 11, 26),
                   "2217", "7816239430003841"),
        "1209876543  531000000001     150.00 01252022  11262021  2217      7816239430003841               ",
    ),
    (  # 3. law location, Summer
        LineFields("1212345678", "531000000005", Decimal("3.50"), date(2021, 7, 25), date(2021, 6, 1),
                   "2214", "9999999990003841"),
        "1212345678  531000000005       3.50 07252021  06012021  2214      9999999990003841               ",
    ),
    (  # 4. waive reversal of example 1
        LineFields("1201901471", "531000000002", Decimal("-65.00"), None, None, "2217", "12894251030003841"),
        "1201901471  531000000002      65.00                     2217  Y   12894251030003841              ",
    ),
    (  # 5. partial credit reversal
        LineFields("1201901471", "531000000001", Decimal("-12.34"), None, None, "2181", "7816239430003841"),
        "1201901471  531000000001      12.34                     2181  Y   7816239430003841               ",
    ),
    (  # 6. Sierra replacement part reversal
        LineFields("1201901471", "531000000001", Decimal("-150.00"), None, None, "2171",
                   "364089_bA19002230799_01"),
        "1201901471  531000000001     150.00                     2171  Y   364089_bA19002230799_01        ",
    ),
    (  # 7. Sierra billing part reversal
        LineFields("1201901471", "531000000002", Decimal("-25.00"), None, None, "2171",
                   "364089_bA19002230799_03"),
        "1201901471  531000000002      25.00                     2171  Y   364089_bA19002230799_03        ",
    ),
    (  # 8. the widest amount that fits
        LineFields("1201901471", "531000000001", Decimal("1234567.89"), date(2022, 2, 25), date(2022, 1, 5),
                   "2221", "12894251030003841"),
        "1201901471  531000000001 1234567.89 02252022  01052022  2221      12894251030003841              ",
    ),
]


@pytest.mark.parametrize("fields, line", GOLDEN, ids=[f"example{i}" for i in range(1, 9)])
def test_golden_lines(fields, line):
    assert len(line) == LINE_LENGTH == 97
    assert format_line(fields) == line
    assert parse_line(line) == fields


@pytest.mark.parametrize("fields, line", [g for g in GOLDEN if g[0].amount > 0])
def test_golden_charges_follow_the_date_rules(fields, line):
    assert fields.due_date == due_date(fields.billing_date)
    assert fields.term_code == term_code(fields.billing_date)


def test_billing_datetime_is_accepted_like_example_1():
    # the original stamped the billing date with a time of day (14:03); only the date is printed
    f = LineFields("1201901471", "531000000002", Decimal("65"), date(2021, 10, 25),
                   datetime(2021, 9, 20, 14, 3), "2217", "12894251030003841")
    assert format_line(f) == GOLDEN[0][1]


def test_reversal_ignores_dates_it_is_given():
    f = LineFields("1201901471", "531000000002", Decimal("-65.00"), date(2021, 10, 25), date(2021, 9, 20),
                   "2217", "12894251030003841")
    assert format_line(f) == GOLDEN[3][1]


# --- overflows and bad values (docs/file-format.md §3-§4) ----------------------------------

BASE = GOLDEN[0][0]


def _with(**changes) -> LineFields:
    values = {**BASE.__dict__, **changes}
    return LineFields(**values)


@pytest.mark.parametrize(
    "changes, field, width",
    [
        ({"patron_id": "120190147100"}, "patron id", 11),
        ({"amount": Decimal("10000000.00")}, "amount", 10),
        ({"amount": Decimal("-10000000.00")}, "amount", 10),
        ({"reference": "1" * 32}, "reference", 31),
        ({"account": "5310000000021"}, "account", 12),
        ({"term_code": "22171X"}, "term code", 5),
    ],
)
def test_too_wide_values_raise_never_truncate(changes, field, width):
    with pytest.raises(FieldTooWide) as info:
        format_line(_with(**changes))
    assert info.value.field == field and info.value.width == width
    assert isinstance(info.value, BursarError) and "\n" not in str(info.value)


def test_widest_values_fit_exactly():
    line = format_line(_with(patron_id="1" * 11, account="2" * 12, amount=Decimal("9999999.99"),
                             term_code="22171", reference="R" * 31))
    assert len(line) == 97 and line.endswith("R" * 31) and line[25:35] == "9999999.99"


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": Decimal("0")},
        {"amount": Decimal("0.125")},  # never rounded by the formatter (docs/file-format.md §4)
        {"due_date": None},
        {"billing_date": None},
        {"patron_id": ""},
        {"reference": ""},
        {"term_code": ""},
        {"account": ""},
        {"patron_id": "12\n34"},
        {"reference": "Müller"},
    ],
)
def test_bad_values_raise_badline(changes):
    with pytest.raises(BadLine) as info:
        format_line(_with(**changes))
    assert isinstance(info.value, ValueError) and isinstance(info.value, BursarError)


def test_float_amount_is_refused():
    with pytest.raises(TypeError):
        format_line(_with(amount=65.0))


# --- parse_line rejects what format_line would never write ---------------------------------


def _replace(line: str, col: int, text: str) -> str:
    return line[:col] + text + line[col + len(text):]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s[:-1],  # 96 characters
        lambda s: s + " ",  # 98 characters
        lambda s: s + "\n",  # a newline is not part of the line
        lambda s: _replace(s, 11, "X"),  # separator at column 12
        lambda s: _replace(s, 65, "X"),  # separator at column 66
        lambda s: _replace(s, 25, "    65,00 "[:10]),  # amount with a comma
        lambda s: _replace(s, 25, "      0.00"),  # zero amount
        lambda s: _replace(s, 25, "     65.0 "),  # one decimal
        lambda s: _replace(s, 62, "N  "),  # bad reversal code
        lambda s: _replace(s, 36, "13252021 "),  # month 13
        lambda s: _replace(s, 36, "1025202  "),  # short date
        lambda s: _replace(s, 36, " " * 9),  # charge without a due date
        lambda s: _replace(s, 0, " " * 11),  # empty patron id
        lambda s: _replace(s, 66, " " * 31),  # empty reference
    ],
)
def test_parse_rejects_malformed_lines(mutate):
    with pytest.raises(BadLine):
        parse_line(mutate(GOLDEN[0][1]))


def test_parse_rejects_reversal_with_dates():
    bad = _replace(GOLDEN[0][1], 62, "Y  ")
    with pytest.raises(BadLine):
        parse_line(bad)


def test_random_lines_round_trip_and_keep_the_layout():
    """The checks of docs/file-format.md §10 over many generated lines."""
    rng = random.Random(5)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-abc"
    for _ in range(2000):
        cents = rng.choice([1, 99, 100, 6500, 999999999, rng.randint(1, 999999999)])
        amount = from_cents(cents if rng.random() < 0.5 else -cents)
        billing = date(2000, 1, 1).fromordinal(rng.randint(date(2000, 1, 1).toordinal(),
                                                           date(2099, 10, 31).toordinal()))
        charge = amount > 0
        f = LineFields(
            patron_id="".join(rng.choice(alphabet) for _ in range(rng.randint(1, 11))),
            account="".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12))),
            amount=amount,
            due_date=due_date(billing) if charge else None,
            billing_date=billing if charge else None,
            term_code=term_code(billing),
            reference="".join(rng.choice(alphabet) for _ in range(rng.randint(1, 31))),
        )
        line = format_line(f)
        assert len(line) == 97 and line.isascii()
        assert all(line[c] == " " for c in SEPARATOR_COLUMNS)
        assert [c + 1 for c in SEPARATOR_COLUMNS] == [12, 25, 36, 46, 56, 62, 66]
        assert parse_line(line) == f
        # amount: right-justified, two decimals, no sign, equal to |amt| in cents
        field = line[25:35]
        assert field == field.strip().rjust(10) and "-" not in field
        assert Decimal(field.strip()) == abs(amount) and field.strip()[-3] == "."
        if charge:
            assert line[62:65] == "   "
            datetime.strptime(line[36:44], "%m%d%Y")
            datetime.strptime(line[46:54], "%m%d%Y")
        else:
            assert line[62:65] == "Y  " and line[36:55] == " " * 19


# --- due dates and term codes (docs/dates-and-terms.md §3-§4) ------------------------------


@pytest.mark.parametrize(
    "billing, due_day, expected",
    [
        # the reference's examples
        (datetime(2021, 1, 25, 23, 59), 25, date(2021, 2, 25)),
        (date(2021, 1, 26), 25, date(2021, 3, 25)),
        (date(2021, 1, 31), 25, date(2021, 3, 25)),
        (date(2021, 2, 28), 25, date(2021, 4, 25)),
        (date(2021, 11, 26), 25, date(2022, 1, 25)),
        (date(2021, 12, 10), 25, date(2022, 1, 25)),
        (date(2021, 12, 26), 25, date(2022, 2, 25)),
        (date(2020, 12, 31), 25, date(2021, 2, 25)),
        # the 25th/26th boundary and the start of a month
        (date(2021, 9, 25), 25, date(2021, 10, 25)),
        (date(2021, 9, 26), 25, date(2021, 11, 25)),
        (date(2021, 9, 1), 25, date(2021, 10, 25)),
        # year boundaries
        (date(2021, 12, 25), 25, date(2022, 1, 25)),
        (date(2021, 11, 25), 25, date(2021, 12, 25)),
        (date(2021, 10, 26), 25, date(2021, 12, 25)),
        (date(2021, 12, 31), 25, date(2022, 2, 25)),
        (date(2022, 1, 1), 25, date(2022, 2, 25)),
        # February and leap years
        (date(2024, 2, 29), 25, date(2024, 4, 25)),
        (date(2024, 1, 31), 25, date(2024, 3, 25)),
        (date(2023, 12, 27), 25, date(2024, 2, 25)),
        (date(2024, 2, 25), 25, date(2024, 3, 25)),
        # a configured due day
        (date(2021, 3, 15), 15, date(2021, 4, 15)),
        (date(2021, 3, 16), 15, date(2021, 5, 15)),
        (date(2021, 12, 16), 15, date(2022, 2, 15)),
        (date(2021, 1, 28), 28, date(2021, 2, 28)),
        (date(2021, 1, 29), 28, date(2021, 3, 28)),
        (date(2021, 11, 2), 1, date(2022, 1, 1)),
        (date(2021, 11, 1), 1, date(2021, 12, 1)),
    ],
)
def test_due_date(billing, due_day, expected):
    assert due_date(billing, due_day) == expected
    assert type(due_date(billing, due_day)) is date


def test_due_date_default_is_25_and_holds_for_every_day():
    assert due_date(date(2021, 1, 26)) == date(2021, 3, 25)
    d = date(2019, 1, 1)
    while d.year < 2023:
        due = due_date(d)
        ahead = 1 if d.day <= 25 else 2
        months = (due.year * 12 + due.month) - (d.year * 12 + d.month)
        assert due.day == 25 and months == ahead
        d = d.fromordinal(d.toordinal() + 1)


@pytest.mark.parametrize("bad", [0, 29, 31, -1, True])
def test_due_day_must_exist_in_every_month(bad):
    with pytest.raises(ValueError):
        due_date(date(2021, 1, 1), bad)


@pytest.mark.parametrize(
    "d, expected",
    [
        (date(2021, 1, 1), "2211"),
        (date(2021, 5, 31), "2211"),
        (date(2021, 6, 1), "2214"),
        (date(2021, 7, 31), "2214"),
        (date(2021, 8, 1), "2217"),
        (date(2021, 12, 31), "2217"),
        (date(2009, 3, 3), "2091"),
        (date(2000, 1, 1), "2001"),
        (date(2099, 12, 31), "2997"),
        (date(2022, 1, 1), "2221"),
        (date(2020, 2, 29), "2201"),
        (datetime(2021, 7, 31, 23, 59), "2214"),
    ],
)
def test_term_code(d, expected):
    assert term_code(d) == expected


@pytest.mark.parametrize("year", [1999, 2100])
def test_term_code_refuses_years_it_cannot_express(year):
    with pytest.raises(ValueError):
        term_code(date(year, 6, 1))


# --- charge accounts (docs/dates-and-terms.md §5) ------------------------------------------

ACCOUNTS = dict(law_pattern=r"(^law)|(_lw_)", law="531000000005", replacement="531000000001",
                default="531000000002")


@pytest.mark.parametrize(
    "location, fine_type, expected",
    [
        ("lawstks", "Overdue fine", "531000000005"),
        ("law", "Lost item replacement fee", "531000000005"),  # law wins whatever the type
        ("main_lw_res", "Overdue fine", "531000000005"),
        ("mainlaw", "Overdue fine", "531000000002"),  # "law" not at the start
        ("LAWSTKS", "Overdue fine", "531000000002"),  # case-sensitive, like the original
        ("main", "Lost item replacement fee", "531000000001"),
        (None, "Lost item replacement fee", "531000000001"),  # no location never matches law
        (None, "Overdue fine", "531000000002"),
        ("", "Overdue fine", "531000000002"),
        ("main", "Lost item processing fee", "531000000002"),
    ],
)
def test_charge_account(location, fine_type, expected):
    assert charge_account(location, fine_type, **ACCOUNTS) == expected


def test_charge_account_custom_replacement_type():
    assert charge_account("main", "LOSTITEMREPLACEMENTFEE", replacement_type="LOSTITEMREPLACEMENTFEE",
                          **ACCOUNTS) == "531000000001"


# --- file names (docs/file-format.md §7) ---------------------------------------------------


def test_file_name():
    assert file_name("LIB_charges.dat", "20210920", 42, 1) == "LIB_charges.dat.20210920.42.1"
    assert file_name("LIB_charges.dat", "20210920", 42, 2) == "LIB_charges.dat.20210920.42.2"
    assert file_name("LIB_charges.dat", "20220101", 1, 1) == "LIB_charges.dat.20220101.1.1"


@pytest.mark.parametrize(
    "args",
    [
        ("LIB_charges.dat", "2021-09-20", 42, 1),
        ("LIB_charges.dat", "20211320", 42, 1),
        ("LIB_charges.dat", "20210920", 0, 1),
        ("LIB_charges.dat", "20210920", 42, 3),
        ("LIB_charges.dat", "20210920", 42, True),
        ("", "20210920", 42, 1),
        ("../x", "20210920", 42, 1),
    ],
)
def test_file_name_rejects_bad_parts(args):
    with pytest.raises(ValueError):
        file_name(*args)


@given(export_date=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       export_id=st.integers(min_value=1, max_value=10**12), kind=st.sampled_from([1, 2]),
       prefix=st.sampled_from(["LIB_charges.dat", "X", "a.b.c"]))
def test_parse_file_name_inverts_file_name(export_date, export_id, kind, prefix):
    name = file_name(prefix, f"{export_date:%Y%m%d}", export_id, kind)
    assert parse_file_name(prefix, name) == FileName(f"{export_date:%Y%m%d}", export_id, kind)


@pytest.mark.parametrize("name", [
    "LIB_charges.dat.20210920.42.3", "LIB_charges.dat.20210920.0.1", "LIB_charges.dat.2021092.42.1",
    "LIB_charges.dat.20210920.42.1.part", ".LIB_charges.dat.20210920.42.1.part", "OTHER.20210920.42.1",
    "LIB_charges.dat.20210920.042.1", "LIB_charges.datX20210920.42.1",
])
def test_parse_file_name_refuses_other_names(name):
    assert parse_file_name("LIB_charges.dat", name) is None


# --- write_file_atomic ---------------------------------------------------------------------


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@pytest.fixture
def out_dir(tmp_path) -> Path:
    """A directory of our own (tmp_path is shared with autouse fixtures)."""
    d = tmp_path / "export"
    d.mkdir()
    return d


def test_write_file_atomic_exact_bytes_and_mode(out_dir):
    lines = [g[1] for g in GOLDEN]
    target = out_dir / "LIB_charges.dat.20210920.42.1"
    written = write_file_atomic(target, lines)
    data = target.read_bytes()
    assert written == len(data) == 98 * len(lines)
    assert data == "".join(line + "\n" for line in lines).encode("ascii")
    assert data.endswith(b"\n") and data.count(b"\n") == len(lines)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _leftovers(out_dir, {target.name}) == []


def test_write_file_atomic_two_lines_is_196_bytes(out_dir):
    target = out_dir / "two"
    assert write_file_atomic(target, [GOLDEN[0][1], GOLDEN[1][1]]) == 196
    assert target.stat().st_size == 196


def test_write_file_atomic_replaces_by_rename(out_dir):
    target = out_dir / "f.1"
    target.write_text("old contents\n")
    os.chmod(target, 0o644)
    old_inode = target.stat().st_ino
    write_file_atomic(target, [GOLDEN[4][1]])
    assert target.read_text() == GOLDEN[4][1] + "\n"
    assert target.stat().st_ino != old_inode  # a new file was renamed in, not rewritten in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _leftovers(out_dir, {"f.1"}) == []


def test_write_file_atomic_empty_list_writes_empty_file(out_dir):
    target = out_dir / "empty"
    assert write_file_atomic(target, []) == 0
    assert target.read_bytes() == b""


def test_write_file_atomic_failure_leaves_nothing(out_dir):
    # The target name is taken by a directory: the rename fails after the temp file was
    # written, and the temp file must be cleaned up.
    target = out_dir / "occupied"
    target.mkdir()
    (target / "inside").write_text("x")
    with pytest.raises(BursarError) as info:
        write_file_atomic(target, [GOLDEN[0][1]])
    assert "occupied" in str(info.value) and "\n" not in str(info.value)
    assert _leftovers(out_dir, {"occupied"}) == []
    assert target.is_dir() and (target / "inside").read_text() == "x"


def test_write_file_atomic_missing_directory(out_dir):
    target = out_dir / "nope" / "f.1"
    with pytest.raises(BursarError):
        write_file_atomic(target, [GOLDEN[0][1]])
    assert not (out_dir / "nope").exists()


@pytest.mark.parametrize("bad", ["caf\u00e9", "a\nb"])
def test_write_file_atomic_refuses_bad_lines_before_touching_disk(out_dir, bad):
    target = out_dir / "f.1"
    target.write_text("keep\n")
    with pytest.raises(BadLine):
        write_file_atomic(target, [GOLDEN[0][1], bad])
    assert target.read_text() == "keep\n"
    assert _leftovers(out_dir, {"f.1"}) == []
