"""Legacy Sierra fines (docs/ledger.md §9), pure rules.

Fines migrated from the Sierra ILS into Alma were already billed to the Bursar under Sierra
reference numbers.  Their Alma "Fine Comment" holds a structured note such as

    INVOICE: 364089 | ITEM FEE: 150.00 | PROCESSING FEE: 0.00 | BILLING FEE: 25.00 | FINE COMMENT: lost

and the cross-reference file (BURSAR_LEGACY_XREF_FILE, the original's sierra_fine_xref.json)
maps the invoice to the Bursar parts: `_01` (replacement) and `_03` (billing).

Unlike the original, a comment counts as a Sierra note only when it parses completely (an
INVOICE and known labels only); anything else is an ordinary staff comment and never crashes
the import (docs/original-defects.md §3).  Amounts are Decimal, compared exactly
(docs/original-defects.md §30).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from bursar.errors import BursarError
from bursar.rules.money import ZERO, BadAmount, to_money

SEPARATOR = " | "
BARCODE_RE = re.compile(r"^(\d|[A-Z]){5,12}$")
_DATE_LABELS = {"OUT DATE": "out_date", "DUE DATE": "due_date", "RETURNED DATE": "returned_date"}
_FEE_LABELS = {"ITEM FEE": "item_fee", "PROCESSING FEE": "processing_fee", "BILLING FEE": "billing_fee"}
_TEXT_LABELS = {"INVOICE": "invoice", "FINE COMMENT": "fine_comment", "ITEM TITLE": "title",
                "DELETED INFO": "deleted_info", "BARCODE": "barcode"}


class LegacyError(BursarError):
    """A legacy fine cannot be brought in (no cross-reference entry, amounts disagree, ...)."""


@dataclass(frozen=True)
class SierraNote:
    invoice: str
    item_fee: Decimal = ZERO
    processing_fee: Decimal = ZERO
    billing_fee: Decimal = ZERO
    fine_comment: str | None = None
    out_date: datetime | None = None
    due_date: datetime | None = None
    returned_date: datetime | None = None
    title: str | None = None
    deleted_info: str | None = None
    barcode: str | None = None


# Data fixes the original applied to four ASU invoices after parsing (kept for a faithful port;
# harmless elsewhere because the invoice numbers will not match).
def _patch(note: SierraNote) -> SierraNote:
    if note.invoice in ("336851", "336863"):
        return replace(note, item_fee=note.item_fee + note.billing_fee, billing_fee=ZERO)
    if note.invoice == "344897":
        return replace(note, billing_fee=Decimal("5.00"))
    if note.invoice == "332021":
        return replace(note, item_fee=Decimal("16.89"))
    return note


def parse_sierra_note(comment: str | None) -> SierraNote | None:
    """The note, or None when the comment is not (completely) a Sierra note."""
    if not comment:
        return None
    segments = [s.strip() for s in comment.split(SEPARATOR)]
    if len(segments) < 3:
        return None
    fields: dict[str, object] = {}
    for segment in segments:
        label, colon, value = segment.partition(":")
        label, value = label.strip(), value.strip()
        if not colon or not label:
            return None
        try:
            if label in _FEE_LABELS:
                fields[_FEE_LABELS[label]] = to_money(value)
            elif label in _DATE_LABELS:
                fields[_DATE_LABELS[label]] = datetime.strptime(value, "%Y-%m-%d %H:%M:%S") if value else None
            elif label in _TEXT_LABELS:
                fields[_TEXT_LABELS[label]] = value or None
            else:
                return None
        except (BadAmount, ValueError):
            return None
    if not fields.get("invoice"):
        return None
    barcode = fields.get("barcode")
    fields["barcode"] = barcode if isinstance(barcode, str) and BARCODE_RE.match(barcode) else ""
    return _patch(SierraNote(**fields))  # type: ignore[arg-type]


@dataclass(frozen=True)
class XrefPart:
    bursar_ref_id: str
    account: str
    term_code: str
    amount: Decimal
    billing_date: date
    due_date: date
    is_replacement: bool


def _xref_date(value: object, fallback: date) -> date:
    if not value:
        return fallback
    return datetime.strptime(str(value)[:19], "%Y-%m-%dT%H:%M:%S").date()


def load_xref(text: str) -> dict[str, dict[str, XrefPart]]:
    """invoice -> {"01": replacement part, "03": billing part} from sierra_fine_xref.json.

    Every problem is a LegacyError naming where it is (a line, or an entry of the array)."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LegacyError(f"the legacy cross-reference file is not JSON (line {exc.lineno}, "
                          f"column {exc.colno}: {exc.msg})") from None
    if not isinstance(entries, list):
        raise LegacyError("the legacy cross-reference file must hold a JSON array")
    parts: dict[str, dict[str, XrefPart]] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise LegacyError(f"legacy cross-reference entry {number} is not a JSON object")
        try:
            _add_part(parts, entry)
        except (BadAmount, ValueError) as exc:
            ref = entry.get("bursar_ref_id") or f"entry {number}"
            raise LegacyError(f"legacy cross-reference {ref}: {exc}") from None
    return parts


def _add_part(parts: dict[str, dict[str, XrefPart]], entry: dict) -> None:
    """Add one entry's part (a `_01` or `_03` reference; other entries are not used)."""
    ref = str(entry.get("bursar_ref_id", ""))
    suffix = ref[-2:]
    if not ref.endswith(("_01", "_03")):
        return
    term = str(entry.get("item_term", ""))
    if not re.fullmatch(r"2\d\d[147]", term):
        raise ValueError(f"item_term {term!r} is not a term code")
    year = 2000 + int(term[1:3])
    amount = entry.get("item_fee_amt" if suffix == "01" else "billing_fee_amt")
    parts.setdefault(str(entry.get("sierra_invoice_id")), {})[suffix] = XrefPart(
        bursar_ref_id=ref,
        account=str(entry.get("account", "")),
        term_code=term,
        amount=to_money(str(amount if amount is not None else "0")),
        billing_date=_xref_date(entry.get("sf_invoice_date"), date(year, 1, 1)),
        due_date=_xref_date(entry.get("sf_due_date"), date(year, 2, 25)),
        is_replacement=suffix == "01",
    )


def legacy_parts(note: SierraNote, xref: dict[str, dict[str, XrefPart]],
                 original: Decimal) -> list[tuple[XrefPart, Decimal]]:
    """The Bursar parts of a Sierra fine with the amount already billed on each."""
    if note.item_fee + note.billing_fee != original:
        raise LegacyError(f"invoice {note.invoice}: item fee {note.item_fee} + billing fee {note.billing_fee} "
                          f"is not the Alma original amount {original}")
    entry = xref.get(note.invoice, {})
    out: list[tuple[XrefPart, Decimal]] = []
    remaining = original
    for suffix, fee in (("01", note.item_fee), ("03", note.billing_fee)):
        if fee <= 0:
            continue
        part = entry.get(suffix)
        if part is None:
            raise LegacyError(f"invoice {note.invoice}: no _{suffix} part in the legacy cross-reference file")
        billed = min(remaining, fee)
        remaining -= billed
        out.append((part, billed))
    if not out:
        raise LegacyError(f"invoice {note.invoice}: no fee to bill")
    return out
