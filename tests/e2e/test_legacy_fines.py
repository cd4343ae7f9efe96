"""A legacy Sierra fine: imported with its two Bursar parts as already billed, then a waive equal
to the billing part is reversed on the `_03` part (the second-part-first rule of docs/allocation.md §3)."""

from __future__ import annotations

import copy
import json

from bursar.sandbox.generator import install_world

from .rows_data import sierra_fine_row, waive_row


def test_sierra_fine_then_waive_of_the_billing_part(sandbox, tmp_path):
    xref = tmp_path / "sierra_fine_xref.json"
    xref.write_text(json.dumps([
        {"bursar_ref_id": "364089_bA19002230799_01", "sierra_invoice_id": "364089", "account": "531000000001",
         "item_term": "2171", "item_fee_amt": 150.0, "billing_fee_amt": 25.0},
        {"bursar_ref_id": "364089_bA19002230799_03", "sierra_invoice_id": "364089", "account": "531000000002",
         "item_term": "2171", "item_fee_amt": 150.0, "billing_fee_amt": 25.0}]))
    sandbox.env["BURSAR_LEGACY_XREF_FILE"] = str(xref)
    day1 = copy.deepcopy(sandbox.worlds[0])
    day1.fines.append(sierra_fine_row())
    install_world(sandbox.alma, day1)
    imported = sandbox.run("importAlmaFines", day=day1.day)
    assert imported.returncode in (0, 3) and "legacy Sierra fines new" in imported.stdout
    ledger = sandbox.ledger()
    fine = next(f for f in ledger["fines"] if f["rootAlmaFineId"] == "7816239430003841")
    assert fine["isSierraFine"] and fine["almaNote"] == "lost"
    parts = [md for md in ledger["fine_mds"] if md["fine"] == fine["id"]]
    assert [md["bursFineId"] for md in parts] == ["364089_bA19002230799_01", "364089_bA19002230799_03"]
    assert all(md["alma_fine_id"] == "7816239430003841" for md in parts)  # docs/original-defects.md §26 fixed
    assert sandbox.run("exportBurs", day=day1.day).returncode in (0, 3)
    assert not any("364089" in line["line"] for line in sandbox.ledger()["burs_export_trans"]), \
        "a legacy fine is already billed: nothing to send"

    day2 = copy.deepcopy(sandbox.worlds[1])
    day2.fines.append(sierra_fine_row(remaining="150", status_date=f"{day2.day}T10:00:00"))
    day2.transactions.append(waive_row("25", f"{day2.day}T10:00:00"))
    install_world(sandbox.alma, day2)
    assert sandbox.run("importAlmaFines", day=day2.day).returncode in (0, 3)
    assert sandbox.run("exportBurs", day=day2.day).returncode in (0, 3)
    lines = [row["line"] for row in sandbox.ledger()["burs_export_trans"] if "364089" in row["line"]]
    example_7 = "1201901471  531000000002      25.00                     2171  Y   364089_bA19002230799_03        "
    assert lines == [example_7]
