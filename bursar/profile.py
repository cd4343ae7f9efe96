"""A Bursar profile: the file format, fee mapping and billing rules of one site, as data (docs/profiles.md).

A profile is a TOML file (read with `tomllib`) named by BURSAR_PROFILE: a built-in name
(`pybursar`, `peoplesoft-csv`: bursar/profiles/NAME.toml) or a path.  `load` reads and validates
it completely, so a bad profile is refused at start (ProfileError, exit 2) with the file, the line
and the key; afterwards formatting can only fail for one fine's values (FieldTooWide / BadLine,
flagged per fine, exit 3).

Pure rules: no I/O besides reading the TOML file, no store, no clients.  The built-in `pybursar`
profile is today's 97-character line (bursar_file.format_line is implemented on top of it).
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from bursar.errors import BursarError, FieldTooWide, SettingsError
from bursar.rules.money import CENT, to_money

BUILTIN_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "pybursar"

SOURCES = ("emplid", "amount", "account", "item_code", "term", "billing_date", "due_date", "fine_id",
           "description", "literal")
_DATE_SOURCES = ("billing_date", "due_date")
JUSTIFY = ("left", "right", "center")
SIGNS = ("none", "minus", "plus-minus", "trailing-minus", "parentheses")
WHEN = ("always", "charge", "credit")
QUOTING = ("minimal", "all", "none")
AGGREGATE = ("fine", "patron")
# what a field shows for one fine and cannot show for the sum of a patron's lines
PER_FINE_SOURCES = ("fine_id", "description", "item_code")
FILE_TOKENS = ("prefix", "date", "export_id", "kind")
AGGREGATE_TOKENS = ("count", "total", "charges_total", "credits_total", "charges_count", "credits_count",
                    "date", "export_id")
ACCOUNT_RULES = ("settings", "map")
TERM_RULES = ("semester", "fixed")
DUE_RULES = ("next-month-day", "days-after", "fixed")
LINE_ENDINGS = {"lf": "\n", "crlf": "\r\n", "\n": "\n", "\r\n": "\r\n"}

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


class BadLine(BursarError, ValueError):
    """A Bursar line that cannot be built or read: zero amount, missing charge dates, empty
    required field, non-ASCII text, or (when parsing) wrong length/separators/field content."""


class ProfileError(SettingsError):
    """A profile that cannot be used; the message names the file, the line and the key.  Exit 2."""


# -- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    source: str
    width: int | None = None
    start: int | None = None  # 1-based column (fixed width only); default: right after the previous
    justify: str = "left"
    pad: str = " "
    padded: bool = True  # fixed width: always; CSV: only when the profile says so
    value: str = ""  # literal
    decimals: int = 2
    implied_decimals: bool = False
    sign: str = "none"
    date_format: str = "%m%d%Y"
    when: str = "always"  # the field is blank on the other kind of line
    required: bool = True


@dataclass(frozen=True)
class Mapping_:
    """Fee type (and optionally location pattern) -> account or item code, with a default."""

    rule: str = "map"
    default: str | None = None
    fee_types: Mapping[str, str] = field(default_factory=dict)
    locations: tuple[tuple[str, str], ...] = ()  # (regex, value), searched first

    def lookup(self, fee_type: str, location: str | None) -> str | None:
        if location is not None:
            for pattern, value in self.locations:
                if re.search(pattern, location):
                    return value
        return self.fee_types.get(fee_type, self.default)


@dataclass(frozen=True)
class Selection:
    """Which fines are billed (checked before a fine's first billing only: what was billed is
    always reversed).  Empty include lists include everything."""

    min_amount: Decimal = Decimal(0)
    min_age_days: int = 0
    fee_types_include: tuple[str, ...] = ()
    fee_types_exclude: tuple[str, ...] = ()
    locations_include: tuple[str, ...] = ()  # regular expressions searched in the location code
    locations_exclude: tuple[str, ...] = ()
    user_groups_include: tuple[str, ...] = ()  # Alma user group names (the report's optional column)
    user_groups_exclude: tuple[str, ...] = ()

    @property
    def by_user_group(self) -> bool:
        return bool(self.user_groups_include or self.user_groups_exclude)


# The verdicts of not_billed_because: never billed / billed once eligible / cannot be decided
# (flagged per fine, exit 3, until it can).
EXCLUDED, WAITING, UNKNOWN = "excluded", "waiting", "unknown"


def not_billed_because(sel: Selection, *, fee_type: str, location: str | None, amount: Decimal,
                       created: date | None, today: date, user_group: str | None = None,
                       ) -> tuple[str, str] | None:
    """Why a fine is not billed yet, naming the profile key: (EXCLUDED, why) never,
    (WAITING, why) until it becomes eligible, (UNKNOWN, why) while its user group is not known
    and the profile selects by it; None when it is billed."""
    if sel.fee_types_include and fee_type not in sel.fee_types_include:
        return EXCLUDED, f"fee type {fee_type!r} is not in the profile's select.fee_types_include"
    if fee_type in sel.fee_types_exclude:
        return EXCLUDED, f"fee type {fee_type!r} is excluded by the profile's select.fee_types_exclude"
    loc = location or ""
    if sel.locations_include and not any(re.search(pt, loc) for pt in sel.locations_include):
        return EXCLUDED, f"location {location!r} matches none of the profile's select.locations_include"
    if any(re.search(pt, loc) for pt in sel.locations_exclude):
        return EXCLUDED, f"location {location!r} is excluded by the profile's select.locations_exclude"
    if sel.by_user_group:
        if user_group is None:
            return UNKNOWN, ("its user group is not known (the fines report had no user group column when "
                             "the fine was imported) and the profile selects by select.user_groups_"
                             + ("include" if sel.user_groups_include else "exclude"))
        if sel.user_groups_include and user_group not in sel.user_groups_include:
            return EXCLUDED, f"user group {user_group!r} is not in the profile's select.user_groups_include"
        if user_group in sel.user_groups_exclude:
            return EXCLUDED, f"user group {user_group!r} is excluded by the profile's select.user_groups_exclude"
    if amount < sel.min_amount:
        return WAITING, (f"not yet eligible: amount {amount} is below the profile's select.min_amount "
                         f"{sel.min_amount}")
    if sel.min_age_days and created is None:
        return WAITING, (f"not yet eligible: its Alma creation date is not known, so select.min_age_days "
                         f"{sel.min_age_days} cannot be reached")
    if sel.min_age_days and created is not None and (today - created).days < sel.min_age_days:
        eligible = date.fromordinal(created.toordinal() + sel.min_age_days)
        return WAITING, (f"not yet eligible: created {created.isoformat()}, younger than the profile's "
                         f"select.min_age_days {sel.min_age_days}; eligible on {eligible.isoformat()}")
    return None


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    source: str  # the file it was read from
    file_name: str = "{prefix}.{date}.{export_id}.{kind}"
    date_format: str = "%Y%m%d"
    split: bool = True  # charges and credits in separate files
    kinds: tuple[str, str] = ("1", "2")
    line_ending: str = "\n"
    encoding: str = "ascii"
    format: str = "fixed"  # or "csv"
    separator: str = " "
    quoting: str = "minimal"
    line_length: int | None = None
    fields: tuple[Field, ...] = ()
    header: str | None = None
    footer: str | None = None
    total_decimals: int = 2
    total_implied: bool = False
    accounts: Mapping_ = field(default_factory=lambda: Mapping_(rule="settings"))
    item_codes: Mapping_ | None = None
    term_rule: str = "semester"
    term_params: Mapping[str, Any] = field(default_factory=dict)
    due_rule: str = "next-month-day"
    due_params: Mapping[str, Any] = field(default_factory=dict)
    preview: bool = False  # exportBurs --dry-run --profile: the dry run marks invisible characters
    select: Selection = field(default_factory=Selection)
    aggregate: str = "fine"  # or "patron": one line per patron and account per file (docs/profiles.md)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class LineValues:
    """What one Bursar line can show.  amount is signed: > 0 a charge, < 0 a credit (reversal)."""

    emplid: str
    amount: Decimal
    account: str
    term: str
    fine_id: str
    billing_date: date | None = None
    due_date: date | None = None
    item_code: str = ""
    description: str = ""


# -- term and due-date rules -------------------------------------------------------------------


def due_date(billing: date, due_day: int = 25) -> date:
    """The due date for a charge billed on `billing` (docs/dates-and-terms.md §3): day `due_day` of the next
    month, or of the month after when the billing day is past `due_day`.
    2021-01-25 -> 2021-02-25; 2021-01-26 -> 2021-03-25; 2021-11-26 -> 2022-01-25."""
    if isinstance(due_day, bool) or not isinstance(due_day, int) or not 1 <= due_day <= 28:
        raise ValueError(f"due day must be 1..28 (it must exist in every month), got {due_day!r}")
    months_ahead = 2 if billing.day > due_day else 1
    index = billing.year * 12 + (billing.month - 1) + months_ahead
    return date(index // 12, index % 12 + 1, due_day)


def term_code(d: date, spring_until: int = 5, summer_until: int = 7) -> str:
    """The Bursar year-and-term code of a billing date (docs/dates-and-terms.md §4): "2" + two-digit year +
    1 (Jan-May, Spring), 4 (Jun-Jul, Summer) or 7 (Aug-Dec, Fall).  2021-06-01 -> "2214".
    The scheme only has room for 2000-2099; other years are refused rather than wrapped."""
    if not 2000 <= d.year <= 2099:
        raise ValueError(f"term codes exist only for the years 2000-2099, got {d.year}")
    term = "1" if d.month <= spring_until else "4" if d.month <= summer_until else "7"
    return f"2{d.year % 100:02d}{term}"


def profile_due_date(p: Profile, billing: date, default_day: int) -> date:
    if p.due_rule == "fixed":
        return date.fromisoformat(str(p.due_params["date"]))
    if p.due_rule == "days-after":
        return date.fromordinal(billing.toordinal() + int(p.due_params["days"]))
    return due_date(billing, int(p.due_params.get("day", default_day)))


def profile_term(p: Profile, billing: date) -> str:
    if p.term_rule == "fixed":
        return str(p.term_params["code"])
    return term_code(billing, int(p.term_params.get("spring_until", 5)), int(p.term_params.get("summer_until", 7)))


def account_for(p: Profile, fee_type: str, location: str | None, *, settings_rule: Any) -> str:
    """The account a new fine is charged to.  Rule `settings` is the original's (law location
    pattern, replacement fee, default: BURSAR_ACCOUNT_* settings), given as `settings_rule`."""
    if p.accounts.rule == "settings":
        return str(settings_rule(location, fee_type))
    value = p.accounts.lookup(fee_type, location)
    assert value is not None  # load() refuses a map without a default
    return value


def item_code_for(p: Profile, fee_type: str, location: str | None) -> str:
    if p.item_codes is None:
        return ""
    return p.item_codes.lookup(fee_type, location) or ""


# -- formatting ------------------------------------------------------------------------------


def format_amount(amount: Decimal, *, decimals: int = 2, implied: bool = False, sign: str = "none") -> str:
    """12.5 -> "12.50"; implied decimals -> "1250"; sign styles: none (absolute value), minus
    ("-12.50"), plus-minus ("+12.50"), trailing-minus ("12.50-"), parentheses ("(12.50)")."""
    magnitude = abs(amount).quantize(Decimal(1).scaleb(-decimals)) if decimals else abs(amount).quantize(Decimal(1))
    text = f"{magnitude:f}"
    if implied:
        text = text.replace(".", "").lstrip("0") or "0"
    negative = amount < 0
    if sign == "minus":
        return "-" + text if negative else text
    if sign == "plus-minus":
        return ("-" if negative else "+") + text
    if sign == "trailing-minus":
        return text + ("-" if negative else "")
    if sign == "parentheses":
        return f"({text})" if negative else text
    return text


def _pad(f: Field, text: str) -> str:
    if f.width is None or not f.padded:
        return text
    if f.justify == "right":
        return text.rjust(f.width, f.pad)
    if f.justify == "center":
        return text.center(f.width, f.pad)
    return text.ljust(f.width, f.pad)


def _raw_value(f: Field, v: LineValues) -> str:
    if f.source == "literal":
        return f.value
    if f.source == "amount":
        return format_amount(v.amount, decimals=f.decimals, implied=f.implied_decimals, sign=f.sign)
    if f.source in _DATE_SOURCES:
        d = v.billing_date if f.source == "billing_date" else v.due_date
        if d is None:
            raise BadLine(f"a charge line needs a {f.name}")
        return d.strftime(f.date_format)
    value = getattr(v, f.source)
    if not isinstance(value, str):
        raise BadLine(f"Bursar field '{f.name}' is not text: {value!r}")
    return value


def field_text(p: Profile, f: Field, v: LineValues) -> str:
    credit = v.amount < 0
    if (f.when == "charge" and credit) or (f.when == "credit" and not credit):
        return _pad(f, "")
    value = _raw_value(f, v)
    if value == "" and f.required and f.source != "literal":
        raise BadLine(f"Bursar field '{f.name}' is empty")
    if p.encoding == "ascii" and not _PRINTABLE_ASCII.fullmatch(value):
        raise BadLine(f"Bursar field '{f.name}' has a character that is not printable ASCII: {value!r}")
    if "\n" in value or "\r" in value:
        raise BadLine(f"Bursar field '{f.name}' has a line break")
    if f.width is not None and len(value) > f.width:
        raise FieldTooWide(f.name, value, f.width)
    return _pad(f, value)


def _csv_quote(p: Profile, f: Field, text: str) -> str:
    special = p.separator in text or '"' in text
    if p.quoting == "all" or (p.quoting == "minimal" and special):
        return '"' + text.replace('"', '""') + '"'
    if special:
        raise BadLine(f"Bursar field '{f.name}' holds the separator or a quote and the profile does not quote")
    return text


def format_line(p: Profile, v: LineValues) -> str:
    """One line (no line ending) for one ledger line, as the profile lays it out."""
    amount = to_money(v.amount)
    if amount != v.amount:
        raise BadLine(f"amount {v.amount} is not a whole number of cents")
    if amount == 0:
        raise BadLine(f"a Bursar line cannot have a zero amount (reference {v.fine_id!r})")
    texts = [field_text(p, f, v) for f in p.fields]
    if p.format == "csv":
        return p.separator.join(_csv_quote(p, f, t) for f, t in zip(p.fields, texts))
    line = ""
    for k, (f, text) in enumerate(zip(p.fields, texts)):
        if f.start is not None:
            line = line.ljust(f.start - 1) + text
        else:
            line = line + p.separator + text if k else text
    if p.line_length is not None:
        line = line.ljust(p.line_length)
    return line


def mark_invisible(line: str, line_ending: str = "") -> str:
    """A line as a preview shows it (FOLIO's bursar preview): spaces as ·, tabs as →, the line
    end as ↵ (a carriage return as ␍)."""
    return (line + line_ending).replace(" ", "\u00b7").replace("\t", "\u2192").replace("\r", "\u240d") \
        .replace("\n", "\u21b5")


def _render(template: str, values: Mapping[str, object]) -> str:
    return template.format_map(values)


class Tally:
    """What a header or footer counts, added up one amount at a time (an export file is
    written from a stream of lines, never held whole): the same sums, in the same order, as
    over the list of amounts."""

    def __init__(self, amounts: Iterable[Decimal] = ()) -> None:
        self.count = 0
        self.total = Decimal(0)
        self.charges_count = 0
        self.charges = Decimal(0)
        self.credits_count = 0
        self.credits = Decimal(0)  # signed (negative)
        for amount in amounts:
            self.add(amount)

    def add(self, amount: Decimal) -> None:
        self.count += 1
        self.total += amount
        if amount > 0:
            self.charges_count += 1
            self.charges += amount
        elif amount < 0:
            self.credits_count += 1
            self.credits += amount


def aggregate_line(p: Profile, template: str, amounts: Sequence[Decimal] | Tally, *, export_date: str,
                   export_id: int) -> str:
    """A header or footer line: {count}, {total} (signed sum), {charges_total}, {credits_total}
    (absolute), {charges_count}, {credits_count}, {date}, {export_id}."""
    tally = amounts if isinstance(amounts, Tally) else Tally(amounts)

    def money(m: Decimal) -> str:
        return format_amount(m, decimals=p.total_decimals, implied=p.total_implied, sign="minus")

    return _render(template, {
        "count": tally.count, "total": money(tally.total),
        "charges_total": money(tally.charges), "credits_total": money(-tally.credits),
        "charges_count": tally.charges_count, "credits_count": tally.credits_count,
        "date": _date_token(p, export_date), "export_id": export_id,
    })


def file_lines(p: Profile, lines: Iterable[str], amounts: Sequence[Decimal] | Tally, *, export_date: str,
               export_id: int) -> list[str]:
    """The lines of one file: header, the stored lines, footer."""
    return list(file_stream(p, lines, amounts if isinstance(amounts, Tally) else Tally(amounts),
                            export_date=export_date, export_id=export_id))


def file_stream(p: Profile, lines: Iterable[str], tally: Tally, *, export_date: str,
                export_id: int) -> Iterator[str]:
    """`file_lines` as a stream: `tally` adds up the amounts of `lines` (read once, lazily)."""
    if p.header is not None:
        yield aggregate_line(p, p.header, tally, export_date=export_date, export_id=export_id)
    yield from lines
    if p.footer is not None:
        yield aggregate_line(p, p.footer, tally, export_date=export_date, export_id=export_id)


def _date_token(p: Profile, export_date: str) -> str:
    return datetime.strptime(export_date, "%Y%m%d").strftime(p.date_format)


def file_name(p: Profile, prefix: str, export_date: str, export_id: int, kind: int) -> str:
    """The file name for an export; kind 1 = charges (or the only file), 2 = credits."""
    return _render(p.file_name, {"prefix": prefix, "date": _date_token(p, export_date),
                                 "export_id": export_id, "kind": p.kinds[kind - 1]})


# -- loading and validation ------------------------------------------------------------------


def key_line(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line of a key in TOML text: path like ("lines", "fields", 2, "width")
    (the third [[lines.fields]]).  Best effort: tables, arrays of tables and plain keys."""
    lines = text.splitlines()
    table: list[str | int] = []
    counts: dict[str, int] = {}
    leaf = str(path[-1])
    want_table = list(path[:-1])
    for number, raw in enumerate(lines, 1):
        s = raw.strip()
        m = re.fullmatch(r"\[\[\s*([^\]]+?)\s*\]\]", s)
        if m:
            name = m.group(1)
            counts[name] = counts.get(name, -1) + 1
            table = [*name.split("."), counts[name]]
            if table == list(path):
                return number
            continue
        m = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", s)
        if m:
            table = [p.strip('"') for p in m.group(1).split(".")]
            if table == list(path):
                return number
            continue
        m = re.match(r'("?)([^"=]+?)\1\s*=', s)
        if m and m.group(2).strip() == leaf and table == want_table:
            return number
    for number, raw in enumerate(lines, 1):  # inline tables and the like
        if re.search(rf'(^|[{{,\s"]){re.escape(leaf)}"?\s*=', raw):
            return number
    return None


class _Loader:
    def __init__(self, source: str, text: str):
        self.source = source
        self.text = text

    def fail(self, path: Sequence[str | int], message: str) -> ProfileError:
        line = key_line(self.text, path)
        key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        where = f"{self.source}, line {line}" if line else self.source
        return ProfileError(f"profile {where}: key {key}: {message}")

    def get(self, table: Mapping[str, Any], path: tuple[str | int, ...], key: str, kind: type | tuple[type, ...],
            default: Any = None, choices: Sequence[str] | None = None) -> Any:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) and kind is int or not isinstance(value, kind):
            raise self.fail((*path, key), f"must be {getattr(kind, '__name__', kind)}, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail((*path, key), f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def known(self, table: Mapping[str, Any], path: tuple[str | int, ...], keys: Sequence[str]) -> None:
        for key in table:
            if key not in keys:
                raise self.fail((*path, key), f"unknown key (known: {', '.join(keys)})")

    def tokens(self, path: tuple[str | int, ...], template: str, allowed: Sequence[str]) -> None:
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise self.fail(path, f"bad template {template!r}: {exc}") from None
        for _, name, spec, conv in parsed:
            if name is None:
                continue
            if name not in allowed:
                raise self.fail(path, f"unknown token {{{name}}} (known: {', '.join(allowed)})")
            if spec or conv:
                raise self.fail(path, f"token {{{name}}} takes no format (set the format in the profile)")

    def mapping(self, data: Any, path: tuple[str, ...], what: str, required: bool) -> Mapping_ | None:
        if data is None:  # accounts: the settings rule (BURSAR_ACCOUNT_*); item codes: none
            return Mapping_(rule="settings") if required else None
        if not isinstance(data, dict):
            raise self.fail(path, "must be a table")
        self.known(data, path, ("rule", "default", "fee_types", "locations"))
        rule = self.get(data, path, "rule", str, "map", ACCOUNT_RULES if what == "account" else ("map",))
        if rule == "settings":
            return Mapping_(rule="settings")
        fee_types = self.get(data, path, "fee_types", dict, {})
        for k, v in fee_types.items():
            if not isinstance(v, str) or not v:
                raise self.fail((*path, "fee_types", k), f"must be a non-empty string, got {v!r}")
        locations = []
        for i, entry in enumerate(self.get(data, path, "locations", list, [])):
            lp: tuple[str | int, ...] = (*path, "locations", i)
            if not isinstance(entry, dict) or set(entry) != {"pattern", "value"}:
                raise self.fail((*path, "locations"), "each entry is {pattern = REGEX, value = TEXT}")
            try:
                re.compile(entry["pattern"])
            except (re.error, TypeError) as exc:
                raise self.fail(lp, f"bad pattern {entry['pattern']!r}: {exc}") from None
            locations.append((str(entry["pattern"]), str(entry["value"])))
        default = self.get(data, path, "default", str)
        if default is None:
            raise self.fail(path, f"no default {what}: a fee type not in fee_types would be unmapped")
        return Mapping_(rule="map", default=default, fee_types=dict(fee_types), locations=tuple(locations))

    def field(self, data: Any, i: int, fmt: str) -> Field:
        path: tuple[str | int, ...] = ("lines", "fields", i)
        if not isinstance(data, dict):
            raise self.fail(path, "must be a table")
        self.known(data, path, ("name", "source", "width", "start", "justify", "pad", "value", "decimals",
                                "implied_decimals", "sign", "date_format", "when", "required"))
        source = self.get(data, path, "source", str, None, SOURCES)
        if source is None:
            raise self.fail(path, "source is missing")
        width = self.get(data, path, "width", int)
        if width is not None and width < 1:
            raise self.fail((*path, "width"), f"must be at least 1, got {width}")
        if fmt == "fixed" and width is None:
            raise self.fail(path, "a fixed-width field needs a width")
        start = self.get(data, path, "start", int)
        if start is not None and (fmt != "fixed" or start < 1):
            raise self.fail((*path, "start"), "start is a 1-based column of a fixed-width line")
        pad = self.get(data, path, "pad", str, " ")
        if len(pad) != 1:
            raise self.fail((*path, "pad"), f"must be one character, got {pad!r}")
        date_format = self.get(data, path, "date_format", str, "%m%d%Y")
        if "%" not in date_format:
            raise self.fail((*path, "date_format"), f"needs at least one %-directive, got {date_format!r}")
        decimals = self.get(data, path, "decimals", int, 2)
        if not 0 <= decimals <= 4:
            raise self.fail((*path, "decimals"), f"must be 0..4, got {decimals}")
        if source == "literal" and "value" not in data:
            raise self.fail(path, "a literal field needs a value")
        return Field(
            name=self.get(data, path, "name", str, source.replace("_", " ")), source=source, width=width,
            start=start, justify=self.get(data, path, "justify", str, "left", JUSTIFY), pad=pad,
            padded=fmt == "fixed" or "pad" in data or "justify" in data,
            value=self.get(data, path, "value", str, ""), decimals=decimals,
            implied_decimals=self.get(data, path, "implied_decimals", bool, False),
            sign=self.get(data, path, "sign", str, "none", SIGNS), date_format=date_format,
            when=self.get(data, path, "when", str, "always", WHEN),
            required=self.get(data, path, "required", bool, True),
        )

    def load(self) -> Profile:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"profile {self.source}: {exc}") from None
        top = ("name", "version", "files", "lines", "header", "footer", "accounts", "item_codes", "term", "due",
               "select")
        self.known(data, (), top)
        name = self.get(data, (), "name", str)
        if not name:
            raise self.fail(("name",), "the profile needs a name")
        version = self.get(data, (), "version", (str, int), "1")
        files = self.get(data, (), "files", dict, {})
        fp: tuple[str, ...] = ("files",)
        self.known(files, fp, ("name", "date_format", "split", "kinds", "line_ending", "encoding"))
        pattern = self.get(files, fp, "name", str, Profile.file_name)
        self.tokens((*fp, "name"), pattern, FILE_TOKENS)
        if "/" in pattern or "\\" in pattern:
            raise self.fail((*fp, "name"), "a file name has no folder")
        split = self.get(files, fp, "split", bool, True)
        if split and "{kind}" not in pattern:
            raise self.fail((*fp, "name"), "separate charges and credits files need {kind} in the name")
        kinds = self.get(files, fp, "kinds", list, ["1", "2"])
        if len(kinds) != 2 or not all(isinstance(k, str) and k for k in kinds) or kinds[0] == kinds[1]:
            raise self.fail((*fp, "kinds"), f"must be two different names (charges, credits), got {kinds!r}")
        ending = self.get(files, fp, "line_ending", str, "lf", tuple(LINE_ENDINGS))
        encoding = self.get(files, fp, "encoding", str, "ascii", ("ascii", "utf-8", "latin-1"))
        lines = self.get(data, (), "lines", dict, None)
        if lines is None:
            raise self.fail(("lines",), "the profile needs a [lines] table with fields")
        lp: tuple[str, ...] = ("lines",)
        self.known(lines, lp, ("format", "separator", "quoting", "line_length", "aggregate", "fields"))
        fmt = self.get(lines, lp, "format", str, "fixed", ("fixed", "csv"))
        aggregate = self.get(lines, lp, "aggregate", str, "fine", AGGREGATE)
        separator = self.get(lines, lp, "separator", str, " " if fmt == "fixed" else ",")
        if fmt == "csv" and len(separator) != 1:
            raise self.fail((*lp, "separator"), f"a CSV separator is one character, got {separator!r}")
        raw_fields = self.get(lines, lp, "fields", list, [])
        if not raw_fields:
            raise self.fail(lp, "the profile needs at least one [[lines.fields]]")
        fields = tuple(self.field(f, i, fmt) for i, f in enumerate(raw_fields))
        for i, f in enumerate(fields):
            if aggregate == "patron" and f.source in PER_FINE_SOURCES:
                raise self.fail(("lines", "fields", i, "source"),
                                f"{f.source} is one fine's value and a line of aggregate = \"patron\" sums "
                                "several fines (use account, emplid, amount, term, the dates or a literal)")
        line_length = self.get(lines, lp, "line_length", int)
        if fmt == "fixed":
            end = 0
            for i, f in enumerate(fields):
                start = (f.start - 1) if f.start is not None else (end + len(separator) if i else 0)
                if start < end:
                    raise self.fail(("lines", "fields", i, "start"),
                                    f"field '{f.name}' starts at column {start + 1}, overlapping the previous "
                                    f"field (which ends at column {end})")
                assert f.width is not None
                end = start + f.width
            if line_length is not None and end > line_length:
                raise self.fail((*lp, "line_length"),
                                f"the fields end at column {end}, overflowing the line length {line_length}")
        header = self._aggregate(data, "header")
        footer = self._aggregate(data, "footer")
        totals = data.get("header") or data.get("footer") or {}
        accounts = self.mapping(data.get("accounts"), ("accounts",), "account", required=True)
        assert accounts is not None
        item_codes = self.mapping(data.get("item_codes"), ("item_codes",), "item code", required=False)
        for i, f in enumerate(fields):
            if item_codes is None and f.source == "item_code":
                raise self.fail(("lines", "fields", i, "source"),
                                "this field shows the item code but there is no [item_codes] mapping")
        term = self.get(data, (), "term", dict, {})
        term_rule = self.get(term, ("term",), "rule", str, "semester", TERM_RULES)
        if term_rule == "fixed" and not isinstance(term.get("code"), str):
            raise self.fail(("term",), "the fixed term rule needs code = \"...\"")
        self.known(term, ("term",), ("rule", "code", "spring_until", "summer_until"))
        due = self.get(data, (), "due", dict, {})
        self.known(due, ("due",), ("rule", "day", "days", "date"))
        due_rule = self.get(due, ("due",), "rule", str, "next-month-day", DUE_RULES)
        if due_rule == "next-month-day" and "day" in due and not 1 <= self.get(due, ("due",), "day", int) <= 28:
            raise self.fail(("due", "day"), "must be 1..28")
        if due_rule == "days-after" and not isinstance(due.get("days"), int):
            raise self.fail(("due",), "the days-after rule needs days = N")
        if due_rule == "fixed":
            try:
                date.fromisoformat(str(due.get("date")))
            except ValueError:
                raise self.fail(("due",), "the fixed due rule needs date = \"YYYY-MM-DD\"") from None
        return Profile(
            name=name, version=str(version), source=self.source, file_name=pattern,
            date_format=self.get(files, fp, "date_format", str, "%Y%m%d"), split=split,
            kinds=(kinds[0], kinds[1]), line_ending=LINE_ENDINGS[ending], encoding=encoding, format=fmt,
            separator=separator, quoting=self.get(lines, lp, "quoting", str, "minimal", QUOTING),
            line_length=line_length, fields=fields, header=header, footer=footer,
            total_decimals=int(totals.get("decimals", 2)), total_implied=bool(totals.get("implied_decimals", False)),
            accounts=accounts, item_codes=item_codes, term_rule=term_rule, term_params=dict(term),
            due_rule=due_rule, due_params=dict(due), select=self._select(data), aggregate=aggregate,
        )

    def _select(self, data: Mapping[str, Any]) -> Selection:
        sp: tuple[str, ...] = ("select",)
        table = self.get(data, (), "select", dict, {})
        lists = ("fee_types_include", "fee_types_exclude", "locations_include", "locations_exclude",
                 "user_groups_include", "user_groups_exclude")
        self.known(table, sp, ("min_amount", "min_age_days", *lists))
        raw = self.get(table, sp, "min_amount", (str, int), "0")
        try:
            min_amount = to_money(str(raw))
        except (ValueError, ArithmeticError):
            raise self.fail((*sp, "min_amount"), f"must be an amount like \"5.00\", got {raw!r}") from None
        age = self.get(table, sp, "min_age_days", int, 0)
        if min_amount < 0 or age < 0:
            raise self.fail(sp, "min_amount and min_age_days cannot be negative")
        values: dict[str, tuple[str, ...]] = {}
        for key in lists:
            items = self.get(table, sp, key, list, [])
            if not all(isinstance(i, str) and i for i in items):
                raise self.fail((*sp, key), "must be a list of non-empty strings")
            if key.startswith("locations"):
                for item in items:
                    try:
                        re.compile(item)
                    except re.error as exc:
                        raise self.fail((*sp, key), f"bad pattern {item!r}: {exc}") from None
            values[key] = tuple(items)
        return Selection(min_amount=min_amount, min_age_days=age, **values)

    def _aggregate(self, data: Mapping[str, Any], key: str) -> str | None:
        table = self.get(data, (), key, dict)
        if table is None:
            return None
        self.known(table, (key,), ("text", "decimals", "implied_decimals"))
        text = self.get(table, (key,), "text", str)
        if text is None:
            raise self.fail((key,), "needs text = \"...\" with tokens like {count} and {total}")
        self.tokens((key, "text"), text, AGGREGATE_TOKENS)
        return str(text)


def resolve(name_or_path: str) -> Path:
    """A built-in name (bursar/profiles/NAME.toml) or a path to a TOML file."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", name_or_path) and (BUILTIN_DIR / f"{name_or_path}.toml").is_file():
        return BUILTIN_DIR / f"{name_or_path}.toml"
    return Path(name_or_path).expanduser()


def loads(text: str, source: str = "<profile>") -> Profile:
    return _Loader(source, text).load()


def load(name_or_path: str = DEFAULT_PROFILE) -> Profile:
    """Read and validate a profile; ProfileError (exit 2) names the file, the line and the key."""
    path = resolve(name_or_path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        builtins = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")))
        raise ProfileError(f"BURSAR_PROFILE {name_or_path!r} is neither a built-in profile ({builtins}) "
                           "nor a readable file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path}: cannot be read as UTF-8 text: {exc}") from None
    return loads(text, str(path))


@cache
def builtin(name: str) -> Profile:
    return load(name)


CENTS = CENT
