"""The ledger as the pure rules see it, read from the store, and the ledger lines as the store
keeps them (one place, used by every job)."""

from __future__ import annotations

from datetime import datetime

from .. import ledger
from ..store import Doc, Store


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

