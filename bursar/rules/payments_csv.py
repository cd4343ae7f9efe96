"""The Bursar's cumulative payments CSV: parse it into rows with stable keys (pure, no I/O).

Why this module exists: the original read the file with pandas' type inference and found new
payments by diffing against "the previous file" (docs/original-defects.md §21-§23):
leading zeros vanished from Emplids, a NaN turned Reference Numbers into floats, a bad amount
crashed the run and two identical payments on one day collapsed into one.  Here every value is
kept as the text the Bursar sent, amounts are exact Decimals, a bad row is reported without
stopping the good ones, and each row gets a KEY that is the same in every later cumulative file
(docs/ledger.md §11), so the payments ledger can tell "already handled" from "new" without any diff.

The file: a header line, then one payment per record.  Columns (matched by trimmed header name,
case-sensitive, any order; other columns are ignored):

    Emplid, Reference Number, Date Paid, Paid Amount, Charge Amount   required
    Item Type, Charge Description                                     optional

Tolerated: a UTF-8 BOM, CRLF or LF, blank lines (skipped but counted), quoted fields holding
commas, quotes or newlines, spaces around values, amounts like "12.5", "$1,234.50", "-3.00".

Row key: "emplid|reference|date_paid|paid|charge|occurrence" where the amounts are 2-dp text
and occurrence counts identical rows (same five values) in file order: the second of two
identical payments on one day is a genuine second payment with its own key.  A malformed row
is keyed by a hash of its raw text (without the line ending) plus its occurrence, so it is
reported once per distinct row, not once per file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from bursar.errors import BursarError
from bursar.rules.money import BadAmount, to_money

EMPLID = "Emplid"
REFERENCE = "Reference Number"
DATE_PAID = "Date Paid"
PAID = "Paid Amount"
CHARGE = "Charge Amount"
ITEM_TYPE = "Item Type"
DESCRIPTION = "Charge Description"

REQUIRED = [EMPLID, REFERENCE, DATE_PAID, PAID, CHARGE]
OPTIONAL = [ITEM_TYPE, DESCRIPTION]

# "$1,234.50", "-3.00", "-$3.00", "12.5", "+7": optional sign, optional dollar sign, digits with
# optional correct thousands grouping, optional fraction.  Parentheses are NOT accepted: an
# accounting-style "(5.00)" is ambiguous in a payments feed, so it is reported, never guessed.
_AMOUNT = re.compile(r"(?P<sign>[+-]?)\$?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d*)?|"
                     r"(?P<sign2>[+-]?)\$?(?P<frac2>\.\d+)")


class PaymentFileError(BursarError):
    """The whole payments file is unusable (not UTF-8, not CSV, a required column missing)."""


@dataclass(frozen=True)
class PaymentRow:
    """One good payment row.  Strings are exactly as given (trimmed); amounts have 2 places."""

    line: int  # 1-based physical line where the record starts (the header is line 1)
    emplid: str
    reference: str
    date_paid: str
    paid: Decimal
    charge: Decimal
    item_type: str | None
    description: str | None
    occurrence: int  # 1 for the first row with these five values in the file, 2 for the next...

    @property
    def key(self) -> str:
        """Stable row key: the same payment has the same key in every later cumulative file."""
        return (f"{self.emplid}|{self.reference}|{self.date_paid}|{self.paid:f}|{self.charge:f}"
                f"|{self.occurrence}")


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be used; `message` is one line naming the line and the column."""

    line: int
    message: str
    key: str  # "malformed|" + sha256(raw record text)[:16] + "|" + occurrence of that text


@dataclass
class ParsedPayments:
    """Good rows and bad rows, each in file order."""

    rows: list[PaymentRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


class _RowProblem(Exception):
    """A row-level problem (becomes a BadRow; never escapes this module)."""


class _FileProblem(Exception):
    """A file-level problem; turned into a PaymentFileError naming the file."""


def external_transaction_id(key: str) -> str:
    """The deterministic Alma `external_transaction_id` of a row key.

    At most 40 characters, only [A-Za-z0-9-], so it survives any URL or Alma field; a re-run
    sends the same id for the same row, which is how an uncertain POST is looked up later."""
    return "pybursar-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def parse_amount(text: str) -> Decimal:
    """A Bursar amount as an exact two-place Decimal; BadAmount when it is not one.

    More than two decimal places is refused unless the extra digits are zeros: rounding a
    payment would pay an amount nobody paid."""
    m = _AMOUNT.fullmatch(text.strip())
    if m is None:
        raise BadAmount(text)
    sign = m.group("sign") or m.group("sign2") or ""
    digits = (m.group("int") or "0").replace(",", "") + (m.group("frac") or m.group("frac2") or "")
    if digits.endswith("."):
        digits = digits[:-1]
    value = Decimal(sign + digits)
    money = to_money(value)
    if money != value:
        raise BadAmount(text, "not a whole number of cents")
    return money


def _records(text: str) -> Iterator[tuple[int, int, str, list[str] | None, str | None]]:
    """(first line, last line, raw text without line ending, fields, csv error) per record.

    The csv module reports the line it has read up to; a record starts on the line after the
    previous one ended.  The raw text (line endings normalised to LF) is kept for the
    malformed-row key.  A record the csv
    module cannot read (text after a closing quote, a quote never closed) comes back with
    fields None and the error, and reading goes on with the next line."""
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for physical in io.StringIO(text, newline=""):
            consumed.append(physical)
            yield physical

    reader = csv.reader(lines(), strict=True)
    previous_end = 0
    while True:
        fields: list[str] | None = None
        error: str | None = None
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            error = str(exc)
        raw = "".join(consumed)
        consumed.clear()
        start = previous_end + 1
        previous_end = reader.line_num
        # CRLF and LF copies of one record must hash alike (the malformed-row key)
        raw = raw.replace("\r\n", "\n").rstrip("\r\n")
        yield start, reader.line_num, raw, fields, error


def _csv_problem(first: int, last: int, error: str) -> str:
    if error == "unexpected end of data":
        return (f"line {first}: a quoted field is never closed (lines {first}-{last}, "
                f"to the end of the file, were read as one row)")
    return f"line {first}: bad CSV quoting ({error})"


def _header_index(fields: list[str]) -> dict[str, int]:
    """Column name -> index for the columns we use; a required one missing is a file problem."""
    index: dict[str, int] = {}
    for i, name in enumerate(fields):
        name = name.strip()
        if name in REQUIRED or name in OPTIONAL:
            if name in index:
                raise _FileProblem(f"has the column '{name}' twice")
            index[name] = i
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise _FileProblem(f"is missing the required column{'s' if len(missing) > 1 else ''} {names}")
    return index


def _row_values(line: int, fields: list[str], index: dict[str, int], width: int) -> dict[str, str]:
    """The trimmed values of one record, checked for shape and emptiness."""
    if len(fields) > width and any(f.strip() for f in fields[width:]):
        # An unquoted comma shifts every later column: which value is which is unknowable.
        raise _RowProblem(f"line {line}: {len(fields)} fields but the header has {width}")
    if len(fields) < width:
        # A row cut short (a partial upload, a lost line end) may hold a cut value too: "48.51"
        # arriving as "48" parses, so a short row is never trusted, even when its columns are there.
        raise _RowProblem(f"line {line}: too few fields ({len(fields)} of {width}): the row is incomplete")
    values: dict[str, str] = {}
    for name, i in index.items():
        values[name] = fields[i].strip()
    for name in REQUIRED:
        if not values[name]:
            raise _RowProblem(f"line {line}: '{name}' is empty")
    return values


def _amount(line: int, column: str, text: str) -> Decimal:
    try:
        return parse_amount(text)
    except BadAmount:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise _RowProblem(f"line {line}: '{column}' {shown!r} is not an amount") from None


def unterminated(data: bytes) -> bool:
    """The last line has no line end while the lines before it do: the file may still be
    being written (a partial upload), so its last row cannot be trusted yet."""
    body = data.rstrip(b" \t")
    if not body or body.endswith((b"\n", b"\r")):
        return False
    return b"\n" in body or b"\r" in body


def parse_payments(data: bytes, *, name: str) -> ParsedPayments:
    """Parse a payments CSV.  Bad rows are returned beside the good ones; only a file that is
    unusable as a whole (encoding, CSV syntax, header) raises PaymentFileError."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PaymentFileError(f"payments file {name} is not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise PaymentFileError(f"payments file {name} is not a CSV text file (it holds NUL bytes)")
    result = ParsedPayments()
    seen_rows: Counter[tuple[str, str, str, Decimal, Decimal]] = Counter()
    seen_raw: Counter[str] = Counter()
    index: dict[str, int] | None = None
    width = 0
    try:
        for line, last, raw, fields, error in _records(text):
            if error is not None and index is None:
                raise _FileProblem(f"has an unreadable header ({_csv_problem(line, last, error)})")
            if fields is not None and not any(f.strip() for f in fields):
                continue  # a blank line (or a row of empty cells)
            if index is None:
                assert fields is not None
                index, width = _header_index(fields), len(fields)
                continue
            try:
                if fields is None:
                    raise _RowProblem(_csv_problem(line, last, error or "unreadable"))
                values = _row_values(line, fields, index, width)
                paid = _amount(line, PAID, values[PAID])
                charge = _amount(line, CHARGE, values[CHARGE])
            except _RowProblem as problem:
                seen_raw[raw] += 1
                digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
                result.bad.append(BadRow(line, str(problem), f"malformed|{digest}|{seen_raw[raw]}"))
                continue
            ident = (values[EMPLID], values[REFERENCE], values[DATE_PAID], paid, charge)
            seen_rows[ident] += 1
            result.rows.append(PaymentRow(
                line=line, emplid=ident[0], reference=ident[1], date_paid=ident[2],
                paid=paid, charge=charge,
                item_type=values.get(ITEM_TYPE) or None, description=values.get(DESCRIPTION) or None,
                occurrence=seen_rows[ident],
            ))
    except _FileProblem as problem:
        raise PaymentFileError(f"payments file {name} {problem}") from None
    if index is None:
        raise PaymentFileError(f"payments file {name} has no header line "
                               f"(expected columns {', '.join(REQUIRED)})")
    return result


__all__ = [
    "REQUIRED", "OPTIONAL", "PaymentFileError", "PaymentRow", "BadRow", "ParsedPayments",
    "parse_payments", "parse_amount", "external_transaction_id", "unterminated",
]
