"""The ledger as the pure rules see it, read from the store (one place, used by every job)."""

from __future__ import annotations

from datetime import date

from bursar import profile as pf
from bursar.rules import ledger
from bursar.rules.money import ZERO
from bursar.store import Store


def burs_lines(store: Store, fine_id: int) -> list[ledger.BursLine]:
    """A fine's Bursar-side lines (trans_burs) in the order they were created."""
    return [ledger.BursLine(t["type"], t["amt"], t["bursFineId"]) for t in store.find("trans_burs", {"fine": fine_id})]


def fine_state(store: Store, fine: dict) -> ledger.FineState:
    """Everything the decision table needs about one fine."""
    return ledger.FineState(
        fine_id=fine["id"],
        orig_amt=fine["origAmtAlma"],
        is_sierra=bool(fine["isSierraFine"]),
        alma=[ledger.AlmaLine(t["type"], t["amt"]) for t in store.find("trans_alma", {"fine": fine["id"]})],
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
