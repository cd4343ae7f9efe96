"""exportBurs: Direction 1, step 2.  Turn new Alma activity into Bursar lines and write the files.

Three phases, each safe to interrupt:
1. apply: for every fine with new Alma lines, the decision table (ledger.decide) adds Bursar
   lines.  Re-running after a crash finds a zero difference for fines already handled.
2. build: every Bursar line not yet exported is formatted and attached to the export in state
   `building` (created on the first good line, so export ids only count real exports).  The
   97-character line is stored with it, so a resumed export writes the same bytes.
3. write: the `.1`/`.2` files are written atomically (temp, fsync, rename, mode 0600) from the
   stored lines, streamed, and only then is the export marked `written`.  A crash in between leaves a
   `building` export that the next run finishes with the same lines.

One bad fine (an inconsistent ledger, a value too wide for its field) is reported and left for a
later run; it never blocks the others.  Every phase streams from the store, so memory does not
grow with the number of fines (except the groups of aggregate = "patron", summed in memory).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal

from bursar import profile as pf
from bursar.errors import FieldTooWide, StoreError
from bursar.jobs.context import JobContext, midnight, recorded
from bursar.jobs.export_files import Labels, known_profiles, remember
from bursar.jobs.ledger_store import fine_state, selection_verdict, trans_burs_doc
from bursar.jobs.rollforward import settle_sent_lines
from bursar.jobs.send import local_export_ids
from bursar.rules import bursar_file as bf
from bursar.rules import ledger
from bursar.rules.money import ZERO
from bursar.runtime import crash
from bursar.runtime.idbits import IdBits
from bursar.runtime.leftovers import export_leftovers
from bursar.runtime.summary import Summary


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
    # Each fine once, in the order of its first new Alma line, streamed: the flags cleared below
    # drop its other lines from the batches still to come, and `seen` skips those already read.
    seen = IdBits()
    for t in store.find("trans_alma", {"newAlmaImp": True}):
        fine_id = t["fine"]
        if fine_id in seen:
            continue
        seen.add(fine_id)
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
            store.insert("trans_burs", trans_burs_doc(fine_id, line, stamp, export=True))
        store.update_where("trans_alma", {"fine": fine_id, "newAlmaImp": True},
                           {"newAlmaImp": False, "updated": stamp})
        summary.count(f"fines: {_KIND_LABEL[decision.kind]}")


@dataclass(frozen=True)
class _Line:
    """A Bursar line ready to attach: its ledger line, part, values and text."""

    tb_id: int
    md: dict
    ref: str
    values: pf.LineValues
    md_changes: dict
    text: str
    group: str | None = None  # aggregate = "patron": the key of the patron's line


def build_export(ctx: JobContext, summary: Summary) -> dict | None:
    """Attach every unexported Bursar line to the `building` export; return it (or None)."""
    store = ctx.store
    stamp = ctx.utc_now
    export = store.find_one("burs_exports", {"state": "building"})
    layout = ctx.settings.profile
    ready: Iterable[_Line]
    if layout.aggregate == "patron":  # a group's text needs all its members first
        ready = _aggregate(ctx, export, list(_lines_to_attach(ctx, summary, attached_at_once=False)), summary)
    else:  # each line attached as it is formatted: memory stays flat in the number of lines
        ready = _lines_to_attach(ctx, summary, attached_at_once=True)
    for line in ready:
        if export is None:
            export = _new_export(ctx)
        store.insert("burs_export_trans", {"transBurs": line.tb_id, "bursExport": export["id"],
                                           "bursFineMd": line.md["id"], "line": line.text, "profile": layout.label,
                                           "lineGroup": line.group, "created": stamp, "updated": stamp})
        if line.md_changes:
            store.update("fine_mds", line.md["id"], {**line.md_changes, "updated": stamp})
        store.update("trans_burs", line.tb_id, {"newBursExp": False, "updated": stamp})
        crash.point("export.build_line")
    return export


def _new_export(ctx: JobContext) -> dict:
    store = ctx.store
    stamp = ctx.utc_now
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
    return export


def _lines_to_attach(ctx: JobContext, summary: Summary, *, attached_at_once: bool) -> Iterator[_Line]:
    """Every pending Bursar line that can go out now, formatted (one line per ledger line), in
    the order of the ledger lines; the others are reported and stay pending.  Streamed: with
    `attached_at_once` the caller attaches each line before the next is read (so a part's
    charge is stored before its reversal is formatted); otherwise the charges of this run are
    remembered here."""
    store = ctx.store
    s = ctx.settings
    stamp = ctx.utc_now
    billing = ctx.today
    layout = s.profile
    due = pf.profile_due_date(layout, billing, s.due_day)
    term = pf.profile_term(layout, billing)
    decided = IdBits()  # fines whose selection was decided (once a run: it is counted)
    held = IdBits()  # those of them whose lines stay pending
    charged: dict[int, str] = {}  # part id -> the term of its charge in this run (not stored yet)
    # Only this line changes while it is read (a line attached, a zero line cleared), so the
    # streamed document is current.
    for tb in store.find("trans_burs", {"newBursExp": True}):
        tb_id = tb["id"]
        fine = store.get("fines", tb["fine"])
        ref = f"fine {fine['rootAlmaFineId'] if fine else tb['fine']}"
        if tb["fine"] not in decided:
            decided.add(tb["fine"])
            reason = not_yet_billed(ctx, tb["fine"])
            if reason is not None:
                held.add(tb["fine"])
            if reason is not None and reason[0] == pf.UNKNOWN:
                summary.flag(ref, f"not billed: {reason[1]}; left for a later run")
            elif reason is not None:
                summary.count("fines not billed: " + ("excluded by the profile" if reason[0] == pf.EXCLUDED
                                                      else "not yet eligible"))
                summary.note(f"{ref} not billed: {reason[1]}")
        if tb["fine"] in held:
            continue  # left pending: billed on the first export after it becomes eligible
        if store.find_one("burs_export_trans", {"transBurs": tb_id}) is not None:
            # attached before a crash, flag not yet cleared
            store.update("trans_burs", tb_id, {"newBursExp": False, "updated": stamp})
            continue
        md = store.find_one("fine_mds", {"fine": tb["fine"], "bursFineId": tb["bursFineId"]})
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
            billed_term = md["termCode"] or charged.get(md["id"])
            if not billed_term:
                summary.flag(ref, f"reversal of part {tb['bursFineId']} before any charge was sent for it "
                                  "(no term code); left for a later run")
                continue
            values = pf.LineValues(**shown, term=billed_term)
        try:
            text = pf.format_line(layout, values)
        except (FieldTooWide, bf.BadLine) as exc:
            summary.flag(ref, f"{exc}; left for a later run")
            continue
        if md_changes and not attached_at_once:
            charged[md["id"]] = term
        yield _Line(tb_id, md, ref, values, md_changes, text)


def line_group(values: pf.LineValues) -> str:
    """The key of the patron's line a ledger line is summed into (aggregate = "patron"): lines
    that differ only in their amount and their fine share a line.  Charges and credits never
    share one; every charge of one export day has the same term and dates, and a credit
    carries the term of what it reverses (docs/profiles.md)."""
    return json.dumps(["credit" if values.amount < 0 else "charge", values.emplid, values.account, values.term,
                       values.billing_date.isoformat() if values.billing_date else None,
                       values.due_date.isoformat() if values.due_date else None], separators=(",", ":"))


def _aggregate(ctx: JobContext, export: dict | None, ready: list[_Line], summary: Summary) -> list[_Line]:
    """aggregate = "patron": one line per patron's group in the export.  Each ledger line is
    still attached on its own (so it is recorded as billed in this export, exactly once), and
    every member stores the group's text; a group that gains members (an export resumed after
    a crash) has its text recomputed before the file is written.  A group whose sum cannot be
    formatted is reported and its new lines stay pending (with any reversal of a charge among
    them, which cannot go out before its charge)."""
    store = ctx.store
    attached: dict[str, list[dict]] = {}
    if export is not None:
        for row in store.find("burs_export_trans", {"bursExport": export["id"]}):
            if row.get("lineGroup"):
                attached.setdefault(row["lineGroup"], []).append(row)
    while True:
        texts, failed = _group_texts(ctx, attached, ready)
        held_parts = {m.md["id"] for key in failed for m in failed[key][1] if m.md_changes}
        dependent = [m for m in ready if m.values.amount < 0 and not m.md["termCode"] and m.md["id"] in held_parts
                     and line_group(m.values) not in failed]
        if not dependent:
            break
        for m in dependent:
            summary.flag(m.ref, "a reversal of a charge held back in this export; left for a later run")
        dropped = {m.tb_id for m in dependent}
        ready = [m for m in ready if m.tb_id not in dropped]
    for why, members in failed.values():
        for m in members:
            summary.flag(m.ref, f"{why}; left for a later run")
    for key, text in texts.items():
        for row in attached.get(key, []):
            if row["line"] != text:
                store.update("burs_export_trans", row["id"], {"line": text, "updated": ctx.utc_now})
    return [replace(m, text=texts[key], group=key) for m in ready if (key := line_group(m.values)) in texts]


def _group_texts(ctx: JobContext, attached: dict[str, list[dict]], ready: list[_Line],
                 ) -> tuple[dict[str, str], dict[str, tuple[str, list[_Line]]]]:
    """Each group's line text, and the groups whose sum cannot be formatted (why, members)."""
    groups: dict[str, list[_Line]] = {}
    for line in ready:
        groups.setdefault(line_group(line.values), []).append(line)
    texts: dict[str, str] = {}
    failed: dict[str, tuple[str, list[_Line]]] = {}
    for key, members in groups.items():
        before = attached.get(key, [])
        total = sum((m.values.amount for m in members), ZERO)
        for row in before:
            tb = ctx.store.get("trans_burs", row["transBurs"])
            total += tb["amt"] if tb is not None else ZERO
        values = replace(members[0].values, amount=total, fine_id="", description="", item_code="")
        try:
            texts[key] = pf.format_line(ctx.settings.profile, values)
        except (FieldTooWide, bf.BadLine) as exc:
            failed[key] = (f"the patron's line summing {len(members) + len(before)} ledger lines ({total}): {exc}",
                           members)
    return texts, failed


def not_yet_billed(ctx: JobContext, fine_id: int) -> tuple[str, str] | None:
    """The profile's selection, for a fine nothing of which was billed yet (what was billed is
    always reversed, whatever the profile now selects)."""
    return selection_verdict(ctx.store, ctx.settings.profile.select, fine_id, ctx.today)


def ordered_lines(ctx: JobContext, export_id: int) -> list[tuple[str, Decimal]]:
    """The export's lines with their signed amounts, in the order the ledger lines were created.
    The amount is the ledger line's (so any profile's text will do); a line whose ledger line is
    gone is read back with the profile that wrote it.  The ledger lines of one patron's line
    (aggregate = "patron") are one line, at its first member's place, with their sum (or the
    line's own amount, read back, when a member's ledger line is gone)."""
    out: list[tuple[str, Decimal]] = []
    at: dict[str, int] = {}
    read_back: set[str] = set()
    for row, amount, known in _rows_with_amounts(ctx, export_id):
        group = row.get("lineGroup")
        if group and group in at:
            text, total = out[at[group]]
            if not known:
                out[at[group]] = (text, amount)
                read_back.add(group)
            elif group not in read_back:
                out[at[group]] = (text, total + amount)
            continue
        if group:
            at[group] = len(out)
            if not known:
                read_back.add(group)
        out.append((row["line"], amount))
    return out


def _streamed_lines(ctx: JobContext, export_id: int) -> Iterator[tuple[str, Decimal]]:
    """`ordered_lines` of an export without patron's lines (aggregate = "patron"), streamed."""
    return ((row["line"], amount) for row, amount, _ in _rows_with_amounts(ctx, export_id))


def _rows_with_amounts(ctx: JobContext, export_id: int) -> Iterator[tuple[dict, Decimal, bool]]:
    """Each stored line of the export, in ledger-line order, with its signed amount and whether
    that came from its ledger line (True) or from reading the line back with its profile."""
    labels: Labels | None = None
    for row in ctx.store.find("burs_export_trans", {"bursExport": export_id}, order_by="transBurs"):
        tb = ctx.store.get("trans_burs", row["transBurs"])
        if tb is not None:
            yield row, tb["amt"], True
        else:
            labels = labels or Labels(ctx)
            yield row, labels.parse(row["line"], row.get("profile"))[1].amount, False


def write_export(ctx: JobContext, export: dict, summary: Summary) -> None:
    """Each file is written from a stream of its lines (read from the store again for each
    file, after one pass that counts them), so memory does not grow with the export; an
    export of patron's lines (aggregate = "patron") is summed in memory first."""
    s = ctx.settings
    export_id = export["id"]
    grouped = any(row.get("lineGroup") for row in ctx.store.find("burs_export_trans", {"bursExport": export_id}))
    summed = ordered_lines(ctx, export_id) if grouped else None

    def rows() -> Iterator[tuple[str, Decimal]]:
        if summed is not None:
            return iter(summed)
        return _streamed_lines(ctx, export_id)

    every, charges, reversals = pf.Tally(), pf.Tally(), pf.Tally()
    totals = {bf.CHARGES_KIND: ZERO, bf.REVERSALS_KIND: ZERO}
    for _, amount in rows():
        every.add(amount)
        if amount > 0:
            charges.add(amount)
            totals[bf.CHARGES_KIND] += amount
        elif amount < 0:
            reversals.add(amount)
            totals[bf.REVERSALS_KIND] += -amount
    if not charges.count and not reversals.count:
        ctx.store.delete_where("burs_exports", {"id": export_id})  # created just before a crash
        return
    layout = s.profile
    remember(ctx, layout)  # its files are recognised by it after a change of profile (export_files)
    names: dict[int, str | None] = {}
    files: tuple[tuple[int, pf.Tally, Callable[[Decimal], bool]], ...]
    if layout.split:
        files = ((bf.CHARGES_KIND, charges, lambda a: a > 0), (bf.REVERSALS_KIND, reversals, lambda a: a < 0))
    else:  # one file, in the order the ledger lines were created
        files = ((bf.CHARGES_KIND, every, lambda a: True), (bf.REVERSALS_KIND, pf.Tally(), lambda a: False))
    for kind, tally, _ in files:
        names[kind] = (pf.file_name(layout, s.file_prefix, export["exportDate"], export_id, kind)
                       if tally.count else None)
    ctx.effects.ensure_dir(s.exports_dir, "EXPORTS_DIR")
    for kind, tally, belongs in files:
        name = names[kind]
        if name is not None:  # named only when it has lines
            text = pf.file_stream(layout, (t for t, a in rows() if belongs(a)), tally,
                                  export_date=export["exportDate"], export_id=export_id)
            ctx.effects.write_export(s.exports_dir / name, text, layout.line_ending, layout.encoding,
                                     preview=layout.preview)
            crash.point(f"export.after_write_{kind}")
    ctx.store.update("burs_exports", export["id"], {
        "state": "written", "chargesFilename": names[1], "reversalsFilename": names[2],
        "numSent": charges.count + reversals.count, "numCharges": charges.count, "numReversals": reversals.count,
        "chargesTotal": totals[1], "reversalsTotal": totals[2], "updated": ctx.utc_now,
    })
    summary.count("charge lines", charges.count, totals[1])
    summary.count("reversal lines", reversals.count, totals[2])
    members = sum(1 for _ in ctx.store.find("burs_export_trans", {"bursExport": export_id}))
    if members != every.count:  # aggregate = "patron"
        summary.count("ledger lines in those (one line per patron and account)", members)
    summary.note(f"export {export['id']}: " + ", ".join(n for n in names.values() if n)
                 + f" in {s.exports_dir}")

