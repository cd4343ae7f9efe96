"""Legacy Sierra notes and the cross-reference file (docs/ledger.md §9), fixed."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from bursar.rules.legacy import LegacyError, legacy_parts, load_xref, parse_sierra_note

EXAMPLE = ("INVOICE: 364089 | ITEM FEE: 150.00 | PROCESSING FEE: 0.00 | BILLING FEE: 25.00 | FINE COMMENT: lost | "
           "OUT DATE: 2016-11-28 21:04:11 | BARCODE: A19002230799")


def test_the_documented_example_parses():
    note = parse_sierra_note(EXAMPLE)
    assert note is not None
    assert (note.invoice, note.item_fee, note.processing_fee, note.billing_fee) == \
        ("364089", Decimal("150.00"), Decimal("0.00"), Decimal("25.00"))
    assert note.fine_comment == "lost" and note.barcode == "A19002230799"
    assert note.out_date == datetime(2016, 11, 28, 21, 4, 11)


@pytest.mark.parametrize("comment", [
    None, "", "Damaged spine", "Lost | damaged | returned",          # ordinary staff comments (crashed the original)
    "INVOICE:1 | ITEM FEE:2 | colon-less", "ITEM FEE: 1.00 | BILLING FEE: 2.00 | FINE COMMENT: x",  # no invoice
    "INVOICE: 1 | ITEM FEE: abc | BILLING FEE: 2.00", "INVOICE: 1 | COLOR: red | BILLING FEE: 2.00",
])
def test_anything_else_is_an_ordinary_comment(comment):
    assert parse_sierra_note(comment) is None


def test_bad_barcode_is_blanked_and_invoice_patches_apply():
    note = parse_sierra_note("INVOICE: 336851 | ITEM FEE: 10.00 | BILLING FEE: 5.00 | BARCODE: bad code")
    assert note.barcode == "" and note.item_fee == Decimal("15.00") and note.billing_fee == Decimal("0.00")


XREF = [
    {"bursar_ref_id": "364089_bA19002230799_01", "sierra_invoice_id": "364089", "account": "531000000001",
     "item_term": "2171", "item_fee_amt": 150.0, "billing_fee_amt": 25.0,
     "sf_invoice_date": "2017-05-24T00:00:00.000Z"},
    {"bursar_ref_id": "364089_bA19002230799_03", "sierra_invoice_id": "364089", "account": "531000000002",
     "item_term": "2171", "item_fee_amt": 150.0, "billing_fee_amt": 25.0},
    {"bursar_ref_id": "364089_bA19002230799_09", "sierra_invoice_id": "364089", "account": "x", "item_term": "2171"},
]


def test_xref_parts_and_amounts():
    xref = load_xref(json.dumps(XREF))
    parts = legacy_parts(parse_sierra_note(EXAMPLE), xref, Decimal("175.00"))
    assert [(p.bursar_ref_id, p.account, billed) for p, billed in parts] == [
        ("364089_bA19002230799_01", "531000000001", Decimal("150.00")),
        ("364089_bA19002230799_03", "531000000002", Decimal("25.00"))]
    replacement, billing = parts[0][0], parts[1][0]
    assert replacement.billing_date == date(2017, 5, 24) and replacement.due_date == date(2017, 2, 25)
    assert billing.billing_date == date(2017, 1, 1) and billing.term_code == "2171"


def test_amount_mismatch_and_missing_part_are_reported():
    xref = load_xref(json.dumps(XREF[:1]))
    with pytest.raises(LegacyError, match="not the Alma original amount"):
        legacy_parts(parse_sierra_note(EXAMPLE), xref, Decimal("170.00"))
    with pytest.raises(LegacyError, match="no _03 part"):
        legacy_parts(parse_sierra_note(EXAMPLE), xref, Decimal("175.00"))
    with pytest.raises(LegacyError, match="not JSON"):
        load_xref("{")
