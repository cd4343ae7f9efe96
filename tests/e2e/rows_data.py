"""Hand-made Analytics rows for e2e tests that need a specific case."""

from __future__ import annotations

from bursar.rules import columns as c

SIERRA_NOTE = ("INVOICE: 364089 | ITEM FEE: 150.00 | PROCESSING FEE: 0.00 | BILLING FEE: 25.00 | "
               "FINE COMMENT: lost | OUT DATE: 2016-11-28 21:04:11 | BARCODE: A19002230799")


def sierra_fine_row(remaining: str = "175", status_date: str = "2017-07-01T09:00:00") -> dict:
    row = {h: None for h in c.FINES_COLUMNS}
    row.update({c.FINE_COMMENT: SIERRA_NOTE, c.FINE_CREATED: "2017-07-01T09:00:00", c.FINE_ID: "7816239430003841",
                c.FINE_STATUS: "Active", c.FINE_TYPE: "Lost item replacement fee", c.STATUS_DATE: status_date,
                c.PRIMARY_ID: "1201901471", c.ORIGINAL_AMOUNT: "175", c.REMAINING_AMOUNT: remaining,
                c.LOAN_ID: "-1", c.LOCATION_CODE: "main-stks"})
    return row


def waive_row(amount: str, created: str) -> dict:
    return {c.FINE_ID: "7816239430003841", c.TRANS_CREATED: created, c.TRANS_ID: "7816239439999841",
            c.TRANS_TYPE: "Waive", c.TRANS_NOTE: "billing fee waived", c.LOAN_ID: None,
            c.PRIMARY_ID: "1201901471", c.TRANS_AMOUNT: amount}
