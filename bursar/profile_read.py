"""Reading export files back, whichever profile wrote them (docs/profiles.md, "Reading files back").

sftpToBurs, the roll-forward after a restore and reconcile must recognise an export file by its
name (its export id, its date, charges or credits) and read its lines back (the Bursar
reference, the signed amount, the dates and the term), for every profile: the fixed-width
`pybursar` line, a CSV with a header line, one file or two, LF or CRLF, ASCII, UTF-8 or Latin-1.
Everything here is driven by the profile (bursar/profile.py), and is its exact inverse:

- `parse_file_name` turns the profile's name pattern into a regular expression;
- `parse_line` reads the fields back by column (fixed) or with the csv module (csv), and then
  formats the values again: a line the profile would not write byte for byte is refused
  (BadLine), so a misread value can never pass;
- `parse_file` decodes a file with the profile's encoding and line ending, and checks its header
  and footer against its lines (count and totals computed again).

What cannot be told back is refused, not guessed: a reference or an amount padded with a digit
or a letter on the side where it could be part of the value, or a line that says nowhere
whether it is a charge or a credit.  Padding is removed, so a text value that begins or ends
with its own padding character reads back without it (an Emplid "0123" right-justified with
zeros reads "123"); nothing here relies on the Emplid.

Pure rules: no I/O, no store, no clients.
"""

from __future__ import annotations

import csv
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from bursar.errors import BursarError
from bursar.profile import BadLine, Field, LineValues, Profile, aggregate_line, format_line
from bursar.rules.money import to_money

_DIRECTIVES = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "j": r"\d{3}", "H": r"\d{2}", "M": r"\d{2}",
    "S": r"\d{2}", "b": r"[A-Za-z]+", "B": r"[A-Za-z]+", "a": r"[A-Za-z]+", "A": r"[A-Za-z]+", "%": "%",
}
_EXPORT_ID = r"[1-9]\d{0,17}"
_DATE_SOURCES = ("billing_date", "due_date")


@dataclass(frozen=True)
class ExportName:
    """What an export file's name says.  kind 1 = charges (or the only file), 2 = credits."""

    export_date: str  # YYYYMMDD
    export_id: int
    kind: int


def _date_regex(date_format: str) -> str:
    out = []
    i = 0
    while i < len(date_format):
        ch = date_format[i]
        if ch == "%" and i + 1 < len(date_format):
            out.append(_DIRECTIVES.get(date_format[i + 1], r".+?"))
            i += 2
            continue
        out.append(re.escape(ch))
        i += 1
    return "".join(out)


def name_pattern(p: Profile, prefix: str) -> re.Pattern[str] | None:
    """The regular expression of the profile's file names with this prefix; None when the
    pattern has no {export_id} (such names cannot be told apart)."""
    parts = []
    seen = set()
    for literal, token, _, _ in string.Formatter().parse(p.file_name):
        parts.append(re.escape(literal))
        if token is None:
            continue
        group = f"(?P={token})" if token in seen else None
        seen.add(token)
        if group is None:
            body = {"prefix": re.escape(prefix), "date": _date_regex(p.date_format), "export_id": _EXPORT_ID,
                    "kind": "|".join(re.escape(k) for k in (p.kinds if p.split else p.kinds[:1]))}[token]
            group = f"(?P<{token}>{body})"
        parts.append(group)
    if "export_id" not in seen:
        return None
    return re.compile("".join(parts))


def parse_file_name(p: Profile, prefix: str, name: str) -> ExportName | None:
    """The parts of an export file name the profile makes with this prefix, or None.
    pybursar: "LIB_charges.dat.20210920.42.2" -> (20210920, 42, 2)."""
    pattern = name_pattern(p, prefix)
    m = pattern.fullmatch(name) if pattern is not None else None
    if m is None:
        return None
    groups = m.groupdict()
    export_date = ""
    if "date" in groups:
        try:
            day = datetime.strptime(groups["date"], p.date_format).date()
        except ValueError:
            return None
        if "%y" in p.date_format and "%Y" not in p.date_format and day.year < 2000:
            day = day.replace(year=day.year + 100)  # strptime reads 69-99 as 19xx; exports are 20xx
        export_date = f"{day:%Y%m%d}"
    kind = p.kinds.index(groups["kind"]) + 1 if "kind" in groups else 1
    return ExportName(export_date, int(groups["export_id"]), kind)


def recognise(profiles: Iterable[Profile], prefix: str, name: str) -> list[tuple[Profile, ExportName]]:
    """Every profile (in the order given) that makes this name, with what the name says."""
    out = []
    for p in profiles:
        parsed = parse_file_name(p, prefix, name)
        if parsed is not None:
            out.append((p, parsed))
    return out


def export_ids(profiles: Sequence[Profile], prefix: str, names: Iterable[str]) -> set[int]:
    """The export ids that these file names (a folder listing, say) carry, under any of the profiles."""
    return {parsed.export_id for n in names for _, parsed in recognise(profiles, prefix, n)}


# -- lines -----------------------------------------------------------------------------------


def _spans(p: Profile) -> list[tuple[int, int]]:
    """Fixed width: the 0-based [start, end) of every field, as format_line lays them out."""
    spans = []
    end = 0
    for k, f in enumerate(p.fields):
        start = f.start - 1 if f.start is not None else (end + len(p.separator) if k else 0)
        assert f.width is not None  # load() requires a width in a fixed-width profile
        spans.append((start, start + f.width))
        end = start + f.width
    return spans


def _unpad(f: Field, text: str) -> str:
    if not f.padded or f.width is None:
        return text
    if f.justify == "right":
        return text.lstrip(f.pad)
    if f.justify == "center":
        return text.strip(f.pad)
    return text.rstrip(f.pad)


def unreadable(p: Profile, *, summed: bool = False) -> str | None:
    """Why this profile's lines cannot be read back (None: they can).  `summed`: the caller
    knows a line of aggregate = "patron" names no fine and takes its fines from elsewhere
    (the export's record of its members), so only the amount must read back."""
    refs = [f for f in p.fields if f.source == "fine_id"]
    amounts = [f for f in p.fields if f.source == "amount"]
    if not refs and not (summed and p.aggregate == "patron"):
        return f"profile {p.label}: its lines show no Bursar reference (fine_id)"
    if not amounts:
        return f"profile {p.label}: its lines show no amount"
    for f in refs:
        if f.padded and f.pad.isalnum():
            return f"profile {p.label}: field '{f.name}' is padded with {f.pad!r}, which could be part of a reference"
    for f in amounts:
        if f.padded and f.pad.isdigit() and f.justify != "right":
            return (f"profile {p.label}: field '{f.name}' is padded with {f.pad!r} on its right, which could be "
                    "part of the amount")
        if f.decimals < 2:
            return f"profile {p.label}: field '{f.name}' shows {f.decimals} decimals, so cents cannot be read back"
    return None


def _amount(f: Field, text: str) -> Decimal:
    """The amount text as format_amount writes it, signed (a sign style of "none" gives the
    magnitude; whether the line is a credit is said elsewhere)."""
    negative = False
    body = text
    if f.sign in ("minus", "plus-minus") and body and body[0] in "-+":
        negative, body = body[0] == "-", body[1:]
    elif f.sign == "trailing-minus" and body.endswith("-"):
        negative, body = True, body[:-1]
    elif f.sign == "parentheses" and body.startswith("(") and body.endswith(")"):
        negative, body = True, body[1:-1]
    if f.implied_decimals:
        if not re.fullmatch(r"\d+", body):
            raise BadLine(f"Bursar field '{f.name}' is not an amount: {text!r}")
        value = Decimal(body).scaleb(-f.decimals)
    else:
        shape = rf"\d*\.\d{{{f.decimals}}}" if f.decimals else r"\d+"
        if not re.fullmatch(shape, body) or body == ".":
            raise BadLine(f"Bursar field '{f.name}' is not an amount: {text!r}")
        value = Decimal(body)
    if to_money(value) != value:
        raise BadLine(f"Bursar field '{f.name}' is not a whole number of cents: {text!r}")
    return -to_money(value) if negative else to_money(value)


def _credit_hint(f: Field, blank: bool) -> bool | None:
    """What a charge-only or credit-only field says about the line: True credit, False charge."""
    if f.when == "always":
        return None
    always_shown = f.source in _DATE_SOURCES or (f.source == "literal" and f.value != "") or \
        (f.source != "literal" and f.required)
    if not always_shown:
        return None
    shown = not blank
    return shown if f.when == "credit" else not shown


def _split(p: Profile, text: str) -> list[str]:
    if p.format == "csv":
        try:
            rows = list(csv.reader([text], delimiter=p.separator, quotechar='"', strict=True,
                                   quoting=csv.QUOTE_NONE if p.quoting == "none" else csv.QUOTE_MINIMAL))
        except csv.Error as exc:
            raise BadLine(f"Bursar line is not CSV the profile writes: {exc}") from None
        cells = rows[0] if rows else []
        if len(cells) != len(p.fields):
            raise BadLine(f"Bursar line has {len(cells)} fields, the profile {p.label} has {len(p.fields)}")
        return cells
    spans = _spans(p)
    length = p.line_length if p.line_length is not None else spans[-1][1]
    if len(text) != length:
        raise BadLine(f"Bursar line is {len(text)} characters, the profile {p.label} writes {length}")
    return [text[a:b] for a, b in spans]


def parse_line(p: Profile, text: str, *, credit: bool | None = None, summed: bool = False) -> LineValues:
    """Read one line (no line ending) back: the inverse of profile.format_line.  `credit` is
    what the file says when the line itself may not (the credits file of a two-file profile).
    The amount comes back signed (< 0 a credit); fields the profile does not show are empty.
    `summed` as for unreadable: a patron's line reads back with an empty fine_id."""
    why = unreadable(p, summed=summed)
    if why is not None:
        raise BadLine(why)
    return _parse_line(p, text, credit)


def _parse_line(p: Profile, text: str, credit: bool | None) -> LineValues:
    cells = _split(p, text)
    raw = [_unpad(f, c) for f, c in zip(p.fields, cells)]
    hints = {h for f, r in zip(p.fields, raw) if (h := _credit_hint(f, r == "")) is not None}
    amount_field = next(f for f in p.fields if f.source == "amount")
    amount = _amount(amount_field, raw[p.fields.index(amount_field)])
    if amount_field.sign != "none":
        hints.add(amount < 0)
    if credit is not None:
        hints.add(credit)
    if len(hints) != 1:
        raise BadLine("Bursar line does not say whether it is a charge or a credit" if not hints
                      else "Bursar line is both a charge and a credit (its fields disagree)")
    is_credit = hints.pop()
    amount = -abs(amount) if is_credit else abs(amount)
    values: dict[str, object] = {"emplid": "", "account": "", "term": "", "fine_id": "", "item_code": "",
                                 "description": "", "billing_date": None, "due_date": None}
    for f, value in zip(p.fields, raw):
        if f.source in ("amount", "literal") or value == "":
            continue
        if f.source in _DATE_SOURCES:
            try:
                values[f.source] = datetime.strptime(value, f.date_format).date()
            except ValueError:
                raise BadLine(f"Bursar field '{f.name}' is not a date ({f.date_format}): {value!r}") from None
        else:
            values[f.source] = value
    line = LineValues(amount=amount, **values)  # type: ignore[arg-type]
    try:
        again = format_line(p, line)
    except (BursarError, ValueError) as exc:
        raise BadLine(f"Bursar line cannot be read back with profile {p.label}: {exc}") from None
    if again != text:
        raise BadLine(f"Bursar line is not one the profile {p.label} writes")
    return line


# -- files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    """One export file read back: its data lines (header and footer taken off) and their values."""

    lines: list[str]
    values: list[LineValues]


def parse_file(p: Profile, data: bytes, name: ExportName, *, summed: bool = False) -> ExportFile:
    """Decode an export file with the profile's encoding and line ending, check its header and
    footer against its lines, and read every line back (BadLine on anything else); `summed` as
    for unreadable."""
    try:
        text = data.decode(p.encoding)
    except UnicodeDecodeError:
        raise BadLine(f"the file is not {p.encoding.upper()} text") from None
    ending = p.line_ending
    if text and not text.endswith(ending):
        raise BadLine(f"the file's last line does not end with {ending!r}")
    rows = text[: -len(ending)].split(ending) if text else []
    for row in rows:
        if "\n" in row or "\r" in row:
            raise BadLine(f"the file has a line end other than {ending!r}")
    header = rows.pop(0) if p.header is not None and rows else None
    footer = rows.pop() if p.footer is not None and rows else None
    why = unreadable(p, summed=summed)
    if why is not None:
        raise BadLine(why)
    credit = (name.kind == 2) if p.split else None
    values = [_parse_line(p, row, credit) for row in rows]
    if p.split and any((v.amount < 0) != (name.kind == 2) for v in values):
        raise BadLine("a credit line in the charges file, or a charge in the credits file")
    amounts = [v.amount for v in values]
    for label, template, got in (("header", p.header, header), ("footer", p.footer, footer)):
        if template is None:
            continue
        want = aggregate_line(p, template, amounts, export_date=name.export_date or "19700101",
                              export_id=name.export_id)
        if got != want:
            raise BadLine(f"the file's {label} line {got!r} does not match its lines ({want!r})")
    return ExportFile(rows, values)


def shown(p: Profile, v: LineValues) -> LineValues:
    """The values of `v` that a line of this profile shows (what parse_line gives back)."""
    sources = {f.source for f in p.fields}
    credit = v.amount < 0
    keep: dict[str, object] = {}
    for name in ("emplid", "account", "term", "fine_id", "item_code", "description"):
        keep[name] = getattr(v, name) if name in sources else ""
    for name in _DATE_SOURCES:
        visible = [f for f in p.fields if f.source == name and f.when != ("charge" if credit else "credit")]
        keep[name] = getattr(v, name) if visible else None
    return replace(v, **keep)  # type: ignore[arg-type]
