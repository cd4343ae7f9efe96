"""exportBurs: Direction 1, step 2.  Turn new Alma activity into Bursar lines and write the files.

Three phases, each safe to interrupt:
1. apply: for every fine with new Alma lines, the decision table (ledger.decide) adds Bursar
   lines.  Re-running after a crash finds a zero difference for fines already handled.
2. build: every Bursar line not yet exported is formatted and attached to the export in state
   `building` (created on the first good line, so export ids only count real exports).  The
   97-character line is stored with it, so a resumed export writes the same bytes.
3. write: the `.1`/`.2` files are written atomically (temp, fsync, rename, mode 0600) from the
   stored lines, and only then is the export marked `written`.  A crash in between leaves a
   `building` export that the next run finishes with the same lines.

One bad fine (an inconsistent ledger, a value too wide for its field) is reported and left for a
later run; it never blocks the others.
"""

from __future__ import annotations

from decimal import Decimal

from .. import bursar_file as bf
from .. import crash, ledger
from .. import profile as pf
from ..errors import FieldTooWide, StoreError
from ..leftovers import export_leftovers
from ..money import ZERO
from ..summary import Summary
from .context import JobContext, midnight, recorded
from .export_files import Labels, known_profiles, remember
from .ledger_store import fine_state
from .rollforward import settle_sent_lines
from .send import local_export_ids


def run(ctx: JobContext) -> Summary:
    summary = ctx.effects.summary("exportBurs")
    ctx.effects.remove_leftovers(export_leftovers, ctx.settings.exports_dir, ctx.settings.file_prefix,
                                 known_profiles(ctx))
    with recorded(ctx, "BursExport", summary):
        with ctx.store.transaction():
            apply_alma_imports(ctx, summary)
        crash.point("export.after_apply")
        with ctx.store.transaction():
            export = build_export(ctx, summary)
        crash.point("export.after_build")
        if export is not None:
            write_export(ctx, export, summary)
    return summary


_KIND_LABEL = {"newFine": "new charges", "waive": "waives", "credit": "credits", "zeroDiff": "no difference"}


def apply_alma_imports(ctx: JobContext, summary: Summary) -> None:
    store = ctx.store
    stamp = ctx.utc_now
    settle_sent_lines(ctx, summary)  # lines the Bursar has already (a restore): counted before deciding
    fine_ids = list(dict.fromkeys(t["fine"] for t in store.find("trans_alma", {"newAlmaImp": True})))
    for fine_id in fine_ids:
        fine = store.get("fines", fine_id)
        if fine is None:
            summary.flag(f"ledger fine id {fine_id}", "Alma lines point to a fine that does not exist")
            continue
        decision = ledger.decide(fine_state(store, fine))
        if decision.kind == "error":
            summary.flag(f"fine {fine['rootAlmaFineId']}", f"{decision.error}; left for a later run")
            continue
        # Bursar lines first, flags second: if the process dies in between, the next run sees a
        # zero difference for this fine and only clears the flags.
        for line in decision.lines:
            store.insert("trans_burs", {
                "fine": fine_id, "bursFineId": line.bursFineId, "bursTransId": None, "bursCreated": None,
                "type": line.type, "amt": line.amt, "newBursImp": False, "newBursExp": True,
                "created": stamp, "updated": stamp,
            })
        store.update_where("trans_alma", {"fine": fine_id, "newAlmaImp": True},
                           {"newAlmaImp": False, "updated": stamp})
        summary.count(f"fines: {_KIND_LABEL[decision.kind]}")


def build_export(ctx: JobContext, summary: Summary) -> dict | None:
    """Attach every unexported Bursar line to the `building` export; return it (or None)."""
    store = ctx.store
    s = ctx.settings
    stamp = ctx.utc_now
    export = store.find_one("burs_exports", {"state": "building"})
    pending = [t["id"] for t in store.find("trans_burs", {"newBursExp": True})]
    billing = ctx.today
    layout = s.profile
    due = pf.profile_due_date(layout, billing, s.due_day)
    term = pf.profile_term(layout, billing)
    held: dict[int, tuple[str, str] | None] = {}
    for tb_id in pending:
        tb = store.get("trans_burs", tb_id)
        if tb is None or not tb["newBursExp"]:
            continue
        if tb["fine"] not in held:
            reason = held[tb["fine"]] = not_yet_billed(ctx, tb["fine"])
            if reason is not None:
                summary.count("fines not billed: " + ("excluded by the profile" if reason[0] == "excluded"
                                                      else "not yet eligible"))
                summary.note(f"fine {tb['fine']} not billed: {reason[1]}")
        if held[tb["fine"]] is not None:
            continue  # left pending: billed on the first export after it becomes eligible
        if store.find_one("burs_export_trans", {"transBurs": tb_id}) is not None:
            # attached before a crash, flag not yet cleared
            store.update("trans_burs", tb_id, {"newBursExp": False, "updated": stamp})
            continue
        fine = store.get("fines", tb["fine"])
        md = store.find_one("fine_mds", {"fine": tb["fine"], "bursFineId": tb["bursFineId"]})
        ref = f"fine {fine['rootAlmaFineId'] if fine else tb['fine']}"
        if fine is None or md is None:
            summary.flag(ref, f"Bursar line {tb_id} has no Bursar part {tb['bursFineId']}; left for a later run")
            continue
        amount: Decimal = tb["amt"]
        if amount == ZERO:
            store.update("trans_burs", tb_id, {"newBursExp": False, "updated": stamp})
            continue
        md_changes = {}
        item = store.find_one("item_details", {"fine": tb["fine"]}) or {}
        shown = {"emplid": fine["almaPatronId"], "account": md["chargeAcc"], "amount": amount,
                 "fine_id": tb["bursFineId"], "description": fine.get("type") or "",
                 "item_code": pf.item_code_for(layout, fine.get("type") or "", item.get("locationCode"))}
        if amount > 0:
            md_changes = {"billingDate": midnight(billing), "fineDueDate": midnight(due), "termCode": term}
            values = pf.LineValues(**shown, term=term, billing_date=billing, due_date=due)
        else:
            if not md["termCode"]:
                summary.flag(ref, f"reversal of part {tb['bursFineId']} before any charge was sent for it "
                                  "(no term code); left for a later run")
                continue
            values = pf.LineValues(**shown, term=md["termCode"])
        try:
            text = pf.format_line(layout, values)
        except (FieldTooWide, bf.BadLine) as exc:
            summary.flag(ref, f"{exc}; left for a later run")
            continue
        if export is None:
            # above every id a file name already carries (the archive outlives a restore)
            store.raise_ids("burs_exports", max(local_export_ids(ctx), default=0))
            export_id = store.insert("burs_exports", {
                "state": "building", "exportDate": f"{ctx.today:%Y%m%d}", "chargesFilename": None,
                "reversalsFilename": None, "numSent": None, "sent_to_bursar": None,
                "created": stamp, "updated": stamp,
            })
            export = store.get("burs_exports", export_id)
            if export is None:  # a store that loses what it just wrote: stop before writing lines
                raise StoreError(f"export {export_id} was not found right after it was created")
        store.insert("burs_export_trans", {"transBurs": tb_id, "bursExport": export["id"], "bursFineMd": md["id"],
                                           "line": text, "profile": layout.label, "created": stamp, "updated": stamp})
        if md_changes:
            store.update("fine_mds", md["id"], {**md_changes, "updated": stamp})
        store.update("trans_burs", tb_id, {"newBursExp": False, "updated": stamp})
        crash.point("export.build_line")
    return export


def not_yet_billed(ctx: JobContext, fine_id: int) -> tuple[str, str] | None:
    """The profile's selection, for a fine nothing of which was billed yet (what was billed is
    always reversed, whatever the profile now selects)."""
    sel = ctx.settings.profile.select
    if sel == pf.Selection():
        return None
    store = ctx.store
    if any(md["termCode"] for md in store.find("fine_mds", {"fine": fine_id})):
        return None
    fine = store.get("fines", fine_id)
    if fine is None:
        return None
    item = store.find_one("item_details", {"fine": fine_id}) or {}
    amount = sum((t["amt"] for t in store.find("trans_burs", {"fine": fine_id, "newBursExp": True})), ZERO)
    created = fine.get("almaCreated")
    return pf.not_billed_because(sel, fee_type=fine.get("type") or "", location=item.get("locationCode"),
                                 amount=amount, created=created.date() if created else None, today=ctx.today)


def export_lines(ctx: JobContext, export_id: int) -> tuple[list[str], list[str]]:
    """The export's charge and reversal lines, in the order the ledger lines were created."""
    rows = ordered_lines(ctx, export_id)
    return [t for t, a in rows if a > 0], [t for t, a in rows if a < 0]


def ordered_lines(ctx: JobContext, export_id: int) -> list[tuple[str, Decimal]]:
    """The export's stored lines with their signed amounts (from the ledger line, so any
    profile's text will do), in the order the ledger lines were created."""
    out = []
    labels: Labels | None = None
    for row in ctx.store.find("burs_export_trans", {"bursExport": export_id}, order_by="transBurs"):
        tb = ctx.store.get("trans_burs", row["transBurs"])
        if tb is not None:
            out.append((row["line"], tb["amt"]))
            continue
        labels = labels or Labels(ctx)
        out.append((row["line"], labels.parse(row["line"], row.get("profile"))[1].amount))
    return out


def write_export(ctx: JobContext, export: dict, summary: Summary) -> None:
    s = ctx.settings
    rows = ordered_lines(ctx, export["id"])
    charges = [r for r in rows if r[1] > 0]
    reversals = [r for r in rows if r[1] < 0]
    if not charges and not reversals:
        ctx.store.delete_where("burs_exports", {"id": export["id"]})  # created just before a crash
        return
    layout = s.profile
    remember(ctx, layout)  # its files are recognised by it after a change of profile (export_files)
    names: dict[int, str | None] = {}
    totals = {bf.CHARGES_KIND: sum((a for _, a in charges), ZERO),
              bf.REVERSALS_KIND: sum((-a for _, a in reversals), ZERO)}
    if layout.split:
        files = ((bf.CHARGES_KIND, charges), (bf.REVERSALS_KIND, reversals))
    else:  # one file, in the order the ledger lines were created
        files = ((bf.CHARGES_KIND, rows), (bf.REVERSALS_KIND, []))
    for kind, lines in files:
        names[kind] = (pf.file_name(layout, s.file_prefix, export["exportDate"], export["id"], kind)
                       if lines else None)
    ctx.effects.ensure_dir(s.exports_dir, "EXPORTS_DIR")
    for kind, lines in files:
        name = names[kind]
        if name is not None:  # named only when it has lines
            text = pf.file_lines(layout, [t for t, _ in lines], [a for _, a in lines],
                                 export_date=export["exportDate"], export_id=export["id"])
            ctx.effects.write_export(s.exports_dir / name, text, layout.line_ending, layout.encoding,
                                     preview=layout.preview)
            crash.point(f"export.after_write_{kind}")
    ctx.store.update("burs_exports", export["id"], {
        "state": "written", "chargesFilename": names[1], "reversalsFilename": names[2],
        "numSent": len(charges) + len(reversals), "numCharges": len(charges), "numReversals": len(reversals),
        "chargesTotal": totals[1], "reversalsTotal": totals[2], "updated": ctx.utc_now,
    })
    summary.count("charge lines", len(charges), totals[1])
    summary.count("reversal lines", len(reversals), totals[2])
    summary.note(f"export {export['id']}: " + ", ".join(n for n in names.values() if n)
                 + f" in {s.exports_dir}")

