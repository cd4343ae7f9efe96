"""The Bursar ("Oasis") fixed-width file: one 97-character line per ledger line (docs/file-format.md §2).

Why strict: the Bursar's loader reads by column position, so a line one character off shifts
every field after it, and a truncated id bills the wrong person.  Every value is checked
against its width (too wide -> FieldTooWide, never truncated), every line is exactly 97 ASCII
characters, and `parse_line` is the exact inverse of `format_line` for tests and audits.

Line layout: eight fields joined by single spaces (90 field characters + 7 separators).
Columns are 1-based and inclusive; Python slices are given alongside.

| # | field                    | width | justify | columns | slice    | content                        |
|---|--------------------------|-------|---------|---------|----------|--------------------------------|
| 1 | patron id (Emplid)       | 11    | left    | 1-11    | [0:11]   | fine.almaPatronId              |
| - | separator                | 1     |         | 12      | [11]     | space                          |
| 2 | library payment account  | 12    | left    | 13-24   | [12:24]  | md.chargeAcc                   |
| - | separator                |       |         | 25      | [24]     |                                |
| 3 | billing amount           | 10    | right   | 26-35   | [25:35]  | |amt|, two decimals, no sign   |
| - | separator                |       |         | 36      | [35]     |                                |
| 4 | fine due date            | 9     | left    | 37-45   | [36:45]  | MMDDYYYY + pad; blank reversal |
| - | separator                |       |         | 46      | [45]     |                                |
| 5 | fine billing date        | 9     | left    | 47-55   | [46:55]  | MMDDYYYY + pad; blank reversal |
| - | separator                |       |         | 56      | [55]     |                                |
| 6 | year and term code       | 5     | left    | 57-61   | [56:61]  | 2YYT + pad                     |
| - | separator                |       |         | 62      | [61]     |                                |
| 7 | reversal code            | 3     | left    | 63-65   | [62:65]  | "Y  " if amt < 0, else spaces  |
| - | separator                |       |         | 66      | [65]     |                                |
| 8 | fine reference number    | 31    | left    | 67-97   | [66:97]  | bursFineId (trailing pad kept) |
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import islice

from bursar import profile
from bursar.profile import BadLine, due_date, term_code  # noqa: F401  (callers use them from here)
from bursar.rules.money import to_money

LINE_LENGTH = 97

# (name, width) of each field in order; separators are single spaces between them.
_FIELDS: tuple[tuple[str, int], ...] = (
    ("patron id", 11),
    ("account", 12),
    ("amount", 10),
    ("due date", 9),
    ("billing date", 9),
    ("term code", 5),
    ("reversal code", 3),
    ("reference", 31),
)
# 0-based start of each field: 0, 12, 25, 36, 46, 56, 62, 66.
_STARTS: tuple[int, ...] = tuple(
    sum(width + 1 for _, width in _FIELDS[:k]) for k in range(len(_FIELDS))
)
# 0-based separator positions (1-based columns 12, 25, 36, 46, 56, 62, 66).
SEPARATOR_COLUMNS: tuple[int, ...] = tuple(s - 1 for s in _STARTS[1:])

_DATE_FORMAT = "%m%d%Y"
_AMOUNT = re.compile(r"\d+\.\d{2}")
_DATE = re.compile(r"\d{8}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")

CHARGES_KIND = 1
REVERSALS_KIND = 2


@dataclass(frozen=True)
class LineFields:
    """The content of one line.  amount is signed: > 0 a charge, < 0 a reversal (0 is invalid).
    Dates are required for a charge and ignored for a reversal (its date fields are blank)."""

    patron_id: str
    account: str
    amount: Decimal
    due_date: date | None
    billing_date: date | None
    term_code: str
    reference: str


def format_line(f: LineFields) -> str:
    """The 97-character line (no newline) for one ledger line: the built-in `pybursar` profile
    (bursar/profiles/pybursar.toml) lays it out."""
    layout = profile.builtin(profile.DEFAULT_PROFILE)
    line = profile.format_line(layout, profile.LineValues(
        emplid=f.patron_id, amount=f.amount, account=f.account, term=f.term_code, fine_id=f.reference,
        billing_date=f.billing_date, due_date=f.due_date))
    assert len(line) == LINE_LENGTH  # guaranteed by the widths the profile's load checked
    return line


def _field(text: str, k: int) -> str:
    start = _STARTS[k]
    return text[start : start + _FIELDS[k][1]]


def _parse_date(name: str, raw: str) -> date:
    digits = raw[:8]
    if raw[8] != " " or not _DATE.fullmatch(digits):
        raise BadLine(f"Bursar line has a malformed {name}: {raw!r}")
    try:
        return datetime.strptime(digits, _DATE_FORMAT).date()
    except ValueError:
        raise BadLine(f"Bursar line has an impossible {name}: {raw!r}") from None


def parse_line(text: str) -> LineFields:
    """Read a line back by column positions (the inverse of `format_line`)."""
    if len(text) != LINE_LENGTH:
        raise BadLine(f"Bursar line is {len(text)} characters, not {LINE_LENGTH}")
    if not _PRINTABLE_ASCII.fullmatch(text):
        raise BadLine("Bursar line has a character that is not printable ASCII")
    for col in SEPARATOR_COLUMNS:
        if text[col] != " ":
            raise BadLine(f"Bursar line has {text[col]!r} at column {col + 1}, expected a space")
    values = [_field(text, k) for k in range(len(_FIELDS))]
    patron, account, raw_amount, raw_due, raw_billing, term, code, reference = values
    amount_text = raw_amount.lstrip(" ")
    if not _AMOUNT.fullmatch(amount_text):
        raise BadLine(f"Bursar line has a malformed amount: {raw_amount!r}")
    amount = to_money(amount_text)
    if amount == 0:
        raise BadLine("Bursar line has a zero amount")
    if code == "Y  ":
        if raw_due != " " * 9 or raw_billing != " " * 9:
            raise BadLine("Bursar reversal line carries dates")
        amount, due, billing = -amount, None, None
    elif code == "   ":
        due = _parse_date("due date", raw_due)
        billing = _parse_date("billing date", raw_billing)
    else:
        raise BadLine(f"Bursar line has a malformed reversal code: {code!r}")
    fields = LineFields(
        patron_id=patron.rstrip(" "),
        account=account.rstrip(" "),
        amount=amount,
        due_date=due,
        billing_date=billing,
        term_code=term.rstrip(" "),
        reference=reference.rstrip(" "),
    )
    for name, value in (
        ("patron id", fields.patron_id),
        ("account", fields.account),
        ("term code", fields.term_code),
        ("reference", fields.reference),
    ):
        if value == "":
            raise BadLine(f"Bursar line has an empty {name}")
    return fields


def charge_account(
    location_code: str | None,
    fine_type: str,
    *,
    law_pattern: str,
    law: str,
    replacement: str,
    default: str,
    replacement_type: str = "Lost item replacement fee",
) -> str:
    """The Bursar account a new fine is charged to (docs/dates-and-terms.md §5): the law library's account
    when the location matches `law_pattern` (regex search; no location never matches), else the
    replacement-fee account for `replacement_type` fines, else the default account."""
    if location_code is not None and re.search(law_pattern, location_code):
        return law
    if fine_type == replacement_type:
        return replacement
    return default


def file_name(prefix: str, export_date: str, export_id: int, kind: int) -> str:
    """`<prefix>.<YYYYMMDD>.<exportId>.<kind>`; kind 1 = charges, 2 = reversals.
    file_name("LIB_charges.dat", "20210920", 42, 1) -> "LIB_charges.dat.20210920.42.1"."""
    if not prefix or "/" in prefix or "\\" in prefix:
        raise ValueError(f"bad export file prefix {prefix!r}")
    try:
        if not re.fullmatch(r"\d{8}", export_date):
            raise ValueError
        datetime.strptime(export_date, "%Y%m%d")
    except (TypeError, ValueError):
        raise ValueError(f"export date must be YYYYMMDD, got {export_date!r}") from None
    if isinstance(export_id, bool) or not isinstance(export_id, int) or export_id < 1:
        raise ValueError(f"export id must be a positive integer, got {export_id!r}")
    if kind not in (CHARGES_KIND, REVERSALS_KIND) or isinstance(kind, bool):
        raise ValueError(f"file kind must be 1 (charges) or 2 (reversals), got {kind!r}")
    return f"{prefix}.{export_date}.{export_id}.{kind}"


@dataclass(frozen=True)
class FileName:
    export_date: str
    export_id: int
    kind: int


def parse_file_name(prefix: str, name: str) -> FileName | None:
    """The parts of an export file name `file_name` made with this prefix, or None (the
    pybursar names only; bursar.profile_read recognises the names of any profile).
    parse_file_name("LIB_charges.dat", "LIB_charges.dat.20210920.42.1") -> (20210920, 42, 1)."""
    if not name.startswith(prefix + "."):
        return None
    m = re.fullmatch(r"(\d{8})\.([1-9]\d{0,17})\.([12])", name[len(prefix) + 1:])
    if m is None:
        return None
    return FileName(m.group(1), int(m.group(2)), int(m.group(3)))


def file_chunks(lines: Iterable[str], *, line_ending: str = "\n", encoding: str = "ascii",
                name: str = "the file", size: int = 1000) -> Iterator[bytes]:
    """The bytes of an export file, in pieces of `size` lines: each line followed by
    `line_ending`, the last too.  A line with a line break in it, or a character the encoding
    cannot carry, is refused (`BadLine`, found when its piece is reached): the Bursar reads one
    record per line.  Writing the pieces is an effect (`bursar.effects.write_file_atomic`)."""
    lines = iter(lines)
    while chunk := list(islice(lines, size)):
        for line in chunk:
            if "\n" in line or "\r" in line:
                raise BadLine("a file line must not contain a line break")
        try:
            yield "".join(line + line_ending for line in chunk).encode(encoding)
        except UnicodeEncodeError:
            raise BadLine(f"a line for {name} has a character that is not {encoding.upper()}") from None
