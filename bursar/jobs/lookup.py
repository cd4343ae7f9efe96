"""Read-only commands: lookupFine and printLastExport."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..store import Store


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def dumps(value: Any) -> str:
    """Indented JSON that shows text as it is ("Über"), not as escapes ("\\u00dcber")."""
    return json.dumps(value, indent=4, default=_jsonable, ensure_ascii=False)


def _with_ledgers(store: Store, fine: dict) -> dict:
    fine_id = fine["id"]
    exports = []
    for tb in store.find("trans_burs", {"fine": fine_id}):
        for link in store.find("burs_export_trans", {"transBurs": tb["id"]}):
            export = store.get("burs_exports", link["bursExport"]) or {}
            exports.append({"export": link["bursExport"], "transBurs": tb["id"], "state": export.get("state"),
                            "chargesFilename": export.get("chargesFilename"),
                            "reversalsFilename": export.get("reversalsFilename"),
                            "sent_to_bursar": export.get("sent_to_bursar"), "line": link["line"],
                            "profile": link.get("profile")})
    out = dict(fine)
    out["burs_fine_md"] = list(store.find("fine_mds", {"fine": fine_id}))
    out["trans_alma"] = list(store.find("trans_alma", {"fine": fine_id}))
    out["trans_burs"] = list(store.find("trans_burs", {"fine": fine_id}))
    out["item_details"] = list(store.find("item_details", {"fine": fine_id}))
    out["exports"] = exports
    out["payments"] = list(store.find("burs_payments", {"fine": fine_id}))
    return out


def lookup_fine(store: Store, *, root_id: str | None = None, loan_id: str | None = None) -> str:
    if root_id is not None:
        label, fines = f"rootAlmaFineId {root_id}", list(store.find("fines", {"rootAlmaFineId": root_id}))
    else:
        label, fines = f"almaLoanId {loan_id}", list(store.find("fines", {"almaLoanId": loan_id}))
    if not fines:
        return f"No fine with {label} found."
    head = f"Fine with {label} found:" if len(fines) == 1 else f"WARNING: {len(fines)} fines with {label} found:"
    body = [_with_ledgers(store, f) for f in fines]
    return head + "\n" + dumps(body[0] if len(body) == 1 else body)


def last_export(store: Store) -> str:
    export = store.find_one("burs_exports", {}, order_by="id", descending=True)
    if export is None:
        return "No Bursar export yet."
    export.pop("exported_fines", None)  # legacy key some migrated documents carry
    charges = (f"  {export.get('numCharges') or 0} lines  ${export.get('chargesTotal') or 0:,.2f}"
               if export.get("numCharges") is not None else "")
    reversals = (f"  {export.get('numReversals') or 0} lines  ${export.get('reversalsTotal') or 0:,.2f}"
                 if export.get("numReversals") is not None else "")
    if export.get("chargesFilename") and not export.get("reversalsFilename") and export.get("numReversals"):
        # a one-file profile (docs/profiles.md): charges and reversals are in the same file
        files = [f"  file           {export['chargesFilename']}  (charges and reversals)",
                 f"  charges        {charges.strip() or '-'}", f"  reversals      {reversals.strip() or '-'}"]
    else:
        files = [f"  charges file   {export.get('chargesFilename') or '-'}{charges}",
                 f"  reversals file {export.get('reversalsFilename') or '-'}{reversals}"]
    lines = [
        f"Export {export['id']} ({export.get('state') or 'sent'})",
        f"  created        {export['created']:%Y-%m-%d %H:%M:%S} UTC" if export.get("created")
        else "  created        -",
        *files,
        f"  total lines    {export.get('numSent') if export.get('numSent') is not None else '-'}",
        f"  sent           {export['sent_to_bursar']:%Y-%m-%d %H:%M:%S} UTC" if export.get("sent_to_bursar")
        else "  sent           not yet",
    ]
    return "\n".join(lines)
