"""The ledger as the pure rules see it, read from the store (one place, used by every job)."""

from __future__ import annotations

from bursar.rules import ledger
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
