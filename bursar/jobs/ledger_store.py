"""The ledger as the pure rules see it, read from the store, and the ledger lines as the store
keeps them (one place, used by every job)."""

from __future__ import annotations

from datetime import date, datetime

from bursar import profile as pf
from bursar.rules import ledger
from bursar.rules.money import ZERO
from bursar.store import Doc, Store


def alma_lines(store: Store, fine_id: int) -> list[ledger.AlmaLine]:
    """A fine's Alma-side lines (trans_alma) in the order they were created."""
    return [ledger.AlmaLine(t["type"], t["amt"]) for t in store.find("trans_alma", {"fine": fine_id})]


def burs_lines(store: Store, fine_id: int) -> list[ledger.BursLine]:
    """A fine's Bursar-side lines (trans_burs) in the order they were created."""
    return [ledger.BursLine(t["type"], t["amt"], t["bursFineId"]) for t in store.find("trans_burs", {"fine": fine_id})]


def fine_state(store: Store, fine: dict) -> ledger.FineState:
    """Everything the decision table needs about one fine."""
    return ledger.FineState(
        fine_id=fine["id"],
        orig_amt=fine["origAmtAlma"],
        is_sierra=bool(fine["isSierraFine"]),
        alma=alma_lines(store, fine["id"]),
        burs=burs_lines(store, fine["id"]),
        parts=[md["bursFineId"] for md in store.find("fine_mds", {"fine": fine["id"]})],
    )


def selection_verdict(store: Store, sel: pf.Selection, fine_id: int, today: date) -> tuple[str, str] | None:
    """Why the profile's selection holds a fine's pending lines (docs/profiles.md), or None.
    The criteria apply before a fine's first billing only: once any part of it was billed, what
    follows always goes out (a reversal is sent for what was billed)."""
    if sel == pf.Selection():
        return None
    if any(md["termCode"] for md in store.find("fine_mds", {"fine": fine_id})):
        return None
    fine = store.get("fines", fine_id)
    if fine is None:
        return None
    item = store.find_one("item_details", {"fine": fine_id}, order_by="id", descending=True) or {}
    amount = sum((t["amt"] for t in store.find("trans_burs", {"fine": fine_id, "newBursExp": True})), ZERO)
    created = fine.get("almaCreated")
    return pf.not_billed_because(sel, fee_type=fine.get("type") or "", location=item.get("locationCode"),
                                 amount=amount, created=created.date() if created else None, today=today,
                                 user_group=item.get("userGroup"))


def trans_alma_doc(fine_id: int, alma_fine_id: str, line: ledger.AlmaLine, stamp: datetime, *, new: bool,
                   trans_id: str | None = None, created: datetime | None = None, note: str | None = None) -> Doc:
    """A trans_alma document: one Alma line of a fine; `new` flags it for the export."""
    return {"fine": fine_id, "almaFineId": alma_fine_id, "almaTransId": trans_id, "almaCreated": created,
            "type": line.type, "amt": line.amt, "almaNote": note, "newAlmaImp": new,
            "created": stamp, "updated": stamp}


def trans_burs_doc(fine_id: int, line: ledger.BursLine, stamp: datetime, *, export: bool,
                   sent_line: int | None = None) -> Doc:
    """A trans_burs document: one Bursar line of a fine; `export` flags it for the next file,
    `sent_line` ties it to the delivered line it was matched to (after a restore)."""
    doc: Doc = {"fine": fine_id, "bursFineId": line.bursFineId, "bursTransId": None, "bursCreated": None,
                "type": line.type, "amt": line.amt, "newBursImp": False, "newBursExp": export,
                "created": stamp, "updated": stamp}
    if sent_line is not None:
        doc["sentLine"] = sent_line
    return doc

