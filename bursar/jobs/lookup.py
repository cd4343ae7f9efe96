"""Read-only commands: lookupFine and printLastExport."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from bursar import profile as pf
from bursar.errors import BursarError
from bursar.jobs.ledger_store import selection_verdict
from bursar.rules.money import ZERO
from bursar.rules.rows import load_ignore_list
from bursar.settings import Settings
from bursar.store import Store


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


def _ignored(settings: Settings | None) -> tuple[frozenset[str], str | None]:
    """The ignore list's ids, or why it could not be read (lookupFine still answers)."""
    if settings is None or settings.ignore_file is None:
        return frozenset(), None
    try:
        return load_ignore_list(settings.ignore_file.read_text(encoding="utf-8")), None
    except OSError as exc:
        return frozenset(), f"the ignore list BURSAR_IGNORE_FILE {settings.ignore_file} cannot be read: {exc.strerror}"
    except BursarError as exc:
        return frozenset(), f"the ignore list BURSAR_IGNORE_FILE {settings.ignore_file} is not valid: {exc}"


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def billing_status(store: Store, fine: dict, settings: Settings | None, ignored: frozenset[str]) -> list[str]:
    """Why each of a fine's Bursar lines is where it is: billed (in which export and file, by
    which profile), pending, held or excluded by the profile's selection (naming the key), or
    ignored; one sentence each (docs/profiles.md)."""
    out: list[str] = []
    if fine["rootAlmaFineId"] in ignored:
        out.append("ignored: the fine is on the ignore list (BURSAR_IGNORE_FILE), so its rows in the Alma "
                   "reports are skipped and nothing that happened to it since it was listed is imported")
    if any(t["newAlmaImp"] for t in store.find("trans_alma", {"fine": fine["id"]})):
        out.append("new Alma activity not yet turned into Bursar lines: the next exportBurs does it")
    pending: list[dict] = []
    for tb in store.find("trans_burs", {"fine": fine["id"]}):
        what = f"{'charge' if tb['amt'] > 0 else 'reversal'} {_money(abs(tb['amt']))} of part {tb['bursFineId']}"
        links = list(store.find("burs_export_trans", {"transBurs": tb["id"]}))
        for link in links:
            export = store.get("burs_exports", link["bursExport"]) or {}
            name = export.get("chargesFilename") if tb["amt"] > 0 or not export.get("reversalsFilename") \
                else export.get("reversalsFilename")
            state = export.get("state") or ("sent" if export.get("sent_to_bursar") else "unknown")
            out.append(f"billed: {what} in export {link['bursExport']} ({state}"
                       + (f", file {name}" if name else "") + "), line written by profile "
                       + f"{link.get('profile') or 'pybursar (before profiles were recorded)'}"
                       + (", summed into the patron's line" if link.get("lineGroup") else ""))
        if links:
            continue
        if tb["newBursExp"]:
            pending.append(tb)
        elif tb["amt"] == ZERO:
            out.append(f"nothing to send: a zero Bursar line of part {tb['bursFineId']}")
        else:
            out.append(f"billed: {what}, recorded as already with the Bursar (a migrated or restored line, "
                       "in no export of this ledger)")
    if pending:
        total = sum((t["amt"] for t in pending), ZERO)
        lines = f"{len(pending)} Bursar line{'s' if len(pending) != 1 else ''} (net {_money(total)})"
        verdict = None
        if settings is not None:
            verdict = selection_verdict(store, settings.profile.select, fine["id"], settings.today())
        label = settings.profile.label if settings is not None else "the profile"
        if verdict is None:
            out.append(f"pending: {lines}, to go out with the next exportBurs")
        elif verdict[0] == pf.EXCLUDED:
            out.append(f"excluded: {lines} never billed under profile {label}: {verdict[1]}")
        elif verdict[0] == pf.WAITING:
            out.append(f"held: {lines} under profile {label}, {verdict[1]}")
        else:
            out.append(f"held and flagged by exportBurs: {lines} under profile {label}: {verdict[1]}")
    if not out:
        out.append("nothing to bill: no Bursar line was needed for this fine")
    return out


def lookup_fine(store: Store, *, root_id: str | None = None, loan_id: str | None = None,
                settings: Settings | None = None) -> str:
    ignored, unreadable = _ignored(settings)
    if root_id is not None:
        label, fines = f"rootAlmaFineId {root_id}", list(store.find("fines", {"rootAlmaFineId": root_id}))
    else:
        label, fines = f"almaLoanId {loan_id}", list(store.find("fines", {"almaLoanId": loan_id}))
    if not fines:
        text = f"No fine with {label} found."
        if root_id is not None and root_id in ignored:
            text += (f" It is on the ignore list (BURSAR_IGNORE_FILE {settings.ignore_file if settings else ''}), "
                     "so importAlmaFines never imports it.")
        return text + (f"\nNote: {unreadable}." if unreadable else "")
    head = f"Fine with {label} found:" if len(fines) == 1 else f"WARNING: {len(fines)} fines with {label} found:"
    body = [{**_with_ledgers(store, f), "billing": billing_status(store, f, settings, ignored)} for f in fines]
    if unreadable:
        head += f"\nNote: {unreadable}."
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
