"""After a restore: roll the store forward from what survives outside it.

A backup is older than the Bursar's view of the world.  Exports sent after it was taken are on
the Bursar's side already, and their export ids are in file names the Bursar has.  Restoring
the store alone would bill those lines again and hand out those ids again.  So a restore is
followed by a roll-forward, from evidence kept outside the store:

- `EXPORTS_DIR/sent`: every file we delivered (a file is archived there only after the server
  held exactly its bytes), so its lines are lines the Bursar has;
- `EXPORTS_DIR`: files written and perhaps not yet delivered (delivered only when the server
  holds exactly their bytes; otherwise set aside, so the restore's undo stands);
- the upload folder's listing on the Bursar's server, when it can be reached: the names the
  Bursar holds (a cross-check; its files may be moved away by the Bursar at any time);
- the store as it was just before the restore (its sent exports and highest export id),
  captured by the restore itself when that store could still be read.

Each export found in the files but not sent in the restored store is recorded again, under its
own id, with its lines kept in `burs_sent_lines`.  Those lines are matched to the ledger
(`settle_sent_lines`) as soon as their fine is in the store again, before the import mirrors
Alma payments and before the export decides what is new; so a charge or reversal the Bursar
already has is never sent twice.  Payments need no evidence here: before every pay the payments
job looks for the row's external id among the fee's transactions in Alma.

When the evidence does not account for everything (the archive lost with the store, a file on
the server nobody knows), the gap is recorded in the store and every command that bills or
pays refuses until the evidence is back, or until an operator accepts the risk with
--accept-restore-gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bursar import profile as pf
from bursar import profile_read as pr
from bursar.clients.sftp import file_sha256
from bursar.errors import BursarError
from bursar.jobs.context import JobContext, log, midnight
from bursar.jobs.export_files import LEGACY_LABEL, Labels, known_profiles, remember
from bursar.jobs.ledger_store import trans_burs_doc
from bursar.jobs.send import ARCHIVE
from bursar.profile import BadLine, LineValues, Profile
from bursar.rules import ledger
from bursar.rules.money import ZERO
from bursar.runtime.summary import Summary
from bursar.store import Store

KEY = "rollForward"  # meta: {"state": pending|done|gap|accepted, "backup", "before", "gaps", ...}
ACCEPT_FLAG = "--accept-restore-gap"


class RestoreGapError(BursarError):
    """The evidence after a restore does not account for everything the Bursar may have."""


# -- what the store knew before the restore -------------------------------------------------
def capture(store: Store, *, since: datetime | None = None) -> dict[str, Any]:
    """The facts about the current store that a restore must not forget (JSON).  `since`
    (UTC): exports created before it are in the backup, so their patron lines need not be kept."""
    top = next(store.find("burs_exports", None, order_by="id", descending=True, limit=1), None)
    sent = {str(e["id"]): [n for n in (e["chargesFilename"], e["reversalsFilename"]) if n]
            for e in store.find("burs_exports", {"state": "sent"})}
    return {"maxExportId": top["id"] if top else 0, "sent": sent,
            "appliedPayments": store.count("burs_payments", {"state": "applied"}),
            "patronLines": _patron_lines(store, since)}


SINCE_SLACK = timedelta(days=1)  # a backup's time is its name's; the export may have been made a moment before


def _patron_lines(store: Store, since: datetime | None) -> dict[str, list[dict[str, str]]]:
    """aggregate = "patron" (docs/restore-roll-forward.md, "One line per patron"): for each written
    or sent export made since `since` (less SINCE_SLACK), the fines in each of its patron lines,
    so that a delivered patron line can be matched back to them after the restore.  An export whose
    members cannot all be told is left out (then it is a gap, never a guess)."""
    floor = since.astimezone(UTC).replace(tzinfo=None) - SINCE_SLACK if since is not None else None
    out: dict[str, list[dict[str, str]]] = {}
    for export in store.find("burs_exports", {"state": ["written", "sent"]}):
        created = export.get("created")
        if floor is not None and created is not None and created < floor:
            continue
        members: list[dict[str, str]] = []
        complete = True
        for row in store.find("burs_export_trans", {"bursExport": export["id"]}):
            if not row.get("lineGroup"):
                continue
            tb = store.get("trans_burs", row["transBurs"])
            if tb is None or not tb["bursFineId"]:
                complete = False
                break
            members.append({"line": row["line"], "group": row["lineGroup"], "profile": row["profile"] or "",
                            "ref": tb["bursFineId"], "amt": str(tb["amt"])})
        if members and complete:
            out[str(export["id"])] = members
    return out


def begin(store: Store, *, backup: str, before: dict[str, Any] | None, now: datetime) -> None:
    """Mark the freshly restored store as needing a roll-forward (run right after the restore)."""
    store.set_meta(KEY, {"state": "pending", "backup": backup, "before": before,
                         "restoredAt": now.isoformat(timespec="seconds"), "gaps": []},
                   now=now.astimezone(UTC).replace(tzinfo=None, microsecond=0))


# -- the evidence ----------------------------------------------------------------------------
@dataclass
class _ExportFiles:
    """The files of one export id found outside the store, and the profiles that make their names."""

    export_id: int
    export_date: str
    paths: dict[str, Path] = field(default_factory=dict)  # file name -> where (the archived copy wins)
    makers: dict[str, list[tuple[Profile, pr.ExportName]]] = field(default_factory=dict)  # name -> who makes it
    delivered: bool = False  # at least one of its files is in the archive


@dataclass
class _Read:
    """An export's files read back with the profile that wrote them; by kind (1 charges or the
    only file, 2 credits)."""

    profile: Profile
    names: dict[int, str]
    lines: dict[int, list[str]]
    values: dict[int, list[LineValues]]

    def all_values(self) -> list[LineValues]:
        return [v for kind in sorted(self.values) for v in self.values[kind]]


def _local_evidence(ctx: JobContext, profiles: list[Profile]) -> tuple[dict[int, _ExportFiles], list[str]]:
    """The export files in the archive and the exports folder, by export id, and the names in
    the archive that no known profile makes."""
    prefix = ctx.settings.file_prefix
    found: dict[int, _ExportFiles] = {}
    strangers: list[str] = []
    exports_dir = ctx.settings.exports_dir
    for folder, delivered in ((exports_dir / ARCHIVE, True), (exports_dir, False)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            makers = pr.recognise(profiles, prefix, path.name)
            if not makers:
                if delivered:
                    strangers.append(path.name)
                continue
            first = makers[0][1]
            entry = found.setdefault(first.export_id, _ExportFiles(first.export_id, first.export_date))
            entry.paths.setdefault(path.name, path)  # the archived copy wins: it is what arrived
            entry.makers.setdefault(path.name, [(p, n) for p, n in makers if n.export_id == first.export_id])
            entry.delivered = entry.delivered or delivered
    return found, strangers


def _read_files(files: _ExportFiles) -> _Read | str:
    """The export's files read back with a profile that makes all their names and reads all
    their lines; a gap message when none does, or when two read them differently."""
    names = sorted(files.paths)
    shown = ", ".join(names)
    said = {name: {id(p): n for p, n in files.makers[name]} for name in names}
    common = [p for p, _ in files.makers[names[0]] if all(id(p) in said[n] for n in names)]
    if not common:
        return f"the files of export {files.export_id} ({shown}) are named by different profiles"
    reads: list[_Read] = []
    errors: list[str] = []
    for p in common:
        read = _Read(p, {}, {}, {})
        try:
            for name in names:
                parsed = said[name][id(p)]
                if parsed.kind in read.names:
                    raise BadLine(f"{read.names[parsed.kind]} and {name} are the same file of the export")
                content = pr.parse_file(p, files.paths[name].read_bytes(), parsed, summed=True)
                read.names[parsed.kind] = name
                read.lines[parsed.kind], read.values[parsed.kind] = content.lines, content.values
        except (OSError, BadLine) as exc:
            errors.append(f"{p.label}: {exc}")
            continue
        reads.append(read)
    if not reads:
        return f"the files of export {files.export_id} cannot be read as Bursar lines ({'; '.join(errors)})"
    first = [(v.fine_id, v.amount) for v in reads[0].all_values()]
    for other in reads[1:]:
        if [(v.fine_id, v.amount) for v in other.all_values()] != first:
            return (f"the files of export {files.export_id} ({shown}) read differently with profiles "
                    f"{reads[0].profile.label} and {other.profile.label}")
    return reads[0]


def _server_view(ctx: JobContext, summary: Summary, check: set[str]) -> dict[str, str | None] | None:
    """The upload folder's listing as name -> sha256 (computed only for the names in `check`,
    None for the others), or None when no server is configured or it cannot be reached."""
    conf = ctx.settings.bursar_sftp
    if not conf.host:
        return None
    from bursar.clients import sftp
    from bursar.jobs.context import sftp_endpoint

    try:
        with sftp.connect(sftp_endpoint(ctx, "bursar_sftp")) as session:
            names = [f.name for f in session.listdir()]
            return {n: session.sha256(n) if n in check else None for n in names}
    except BursarError as exc:
        summary.note(f"roll-forward: the Bursar's server was not checked ({exc})")
        return None


# -- the roll-forward ------------------------------------------------------------------------
def roll_forward(ctx: JobContext, summary: Summary) -> list[str]:
    """Record what the evidence shows and return the gaps (empty when everything is accounted
    for).  Safe to run again: what is recorded already is left as it is."""
    store = ctx.store
    state = store.get_meta(KEY)
    if not state or state.get("state") in ("done", "accepted"):
        return []
    profiles = known_profiles(ctx)
    evidence, strangers = _local_evidence(ctx, profiles)
    exports = {e["id"]: e for e in store.find("burs_exports")}
    unknown = {p.name for f in evidence.values() if not f.delivered and f.export_id not in exports
               for p in f.paths.values()}
    server = _server_view(ctx, summary, unknown)
    gaps: list[str] = []
    for export_id in sorted(evidence):
        files = evidence[export_id]
        if not files.delivered and export_id not in exports:
            # written after the backup, never archived: delivered only if the server has its bytes
            outcome = _delivered_unarchived(ctx, files, server, summary)
            if outcome is None:
                continue  # not delivered: set aside, its id stays used
            if isinstance(outcome, str):
                gaps.append(outcome)
                continue
        gap = _record(ctx, files, exports.get(export_id), state.get("before"), summary)
        if gap:
            gaps.append(gap)
    exports = {e["id"]: e for e in store.find("burs_exports")}
    gaps += _unaccounted(ctx, state.get("before"), exports, evidence, server, profiles)
    gaps += [f"{ctx.settings.exports_dir / ARCHIVE / name} is in the archive of sent files, but no known profile "
             "makes that name (set BURSAR_PROFILE to the profile that wrote it, or move the file away if it is "
             "not an export)" for name in strangers]
    known = [*evidence, *exports, (state.get("before") or {}).get("maxExportId", 0),
             *pr.export_ids(profiles, ctx.settings.file_prefix, server or {})]
    top = max(known, default=0)
    if not gaps:  # with a gap nothing may export, and a later roll-forward still needs the ids free
        store.raise_ids("burs_exports", top)
    store.set_meta(KEY, {**state, "state": "gap" if gaps else "done", "gaps": gaps, "topExportId": top},
                   now=ctx.utc_now)
    if gaps:
        for gap in gaps:
            summary.flag("restore", gap)
    else:
        summary.note("roll-forward: every export the Bursar may have is accounted for; payments applied after "
                     "the backup are found in Alma by their external ids before any pay")
    return gaps


SET_ASIDE = "written-before-restore"
RECORDING = "recording"  # an export being recorded again from its files (never exported to)


def _delivered_unarchived(ctx: JobContext, files: _ExportFiles, server: dict[str, str | None] | None,
                          summary: Summary) -> bool | str | None:
    """An export the restored store does not know, found written but not archived.  True when
    the server holds exactly its files (it was delivered: recorded as sent); None when the
    server has none of them (never delivered: the files are set aside in EXPORTS_DIR/SET_ASIDE,
    and the store's undo stands); a gap message when it cannot be told."""
    names = sorted(files.paths)
    if server is None:
        return (f"export {files.export_id} ({', '.join(names)}) was written after the backup and the Bursar's "
                "server could not be checked for it")
    present = [p for p in files.paths.values() if p.name in server]
    if not present:
        aside = ctx.settings.exports_dir / SET_ASIDE
        ctx.effects.ensure_dir(aside, f"EXPORTS_DIR/{SET_ASIDE}")
        for path in files.paths.values():
            ctx.effects.move(path, aside / path.name)
        summary.note(f"roll-forward: export {files.export_id} ({', '.join(names)}) was written after the backup "
                     f"but never delivered: moved to {aside}; its id is not used again")
        return None
    if len(present) == len(files.paths) and all(server[p.name] == file_sha256(p) for p in present):
        files.delivered = True
        return True
    return (f"export {files.export_id} ({', '.join(names)}) was written after the backup, and the Bursar's server "
            "holds only part of it or other content under its names")


def _record(ctx: JobContext, files: _ExportFiles, export: dict | None, before: dict[str, Any] | None,
            summary: Summary) -> str | None:
    """Bring one export found in the files into the store; a gap message when it cannot."""
    store = ctx.store
    if export is not None and (export["state"] == "sent" or export["sent_to_bursar"] is not None):
        return None  # the restored store knows it was sent
    read = _read_files(files)
    if isinstance(read, str):
        return read
    members: Members | None = None
    if read.profile.aggregate == "patron" and (export is None or export["state"] == RECORDING):
        found = _patron_members(files, read, before)
        if isinstance(found, str):
            return found
        members = found
    remember(ctx, read.profile)  # its lines are read back with it later (settle_sent_lines)
    with store.transaction():
        return _record_lines(ctx, files, export, read, members, summary)


Members = list[list[dict[str, str]]]  # per patron line of an export's files, the fines summed into it


def _patron_members(files: _ExportFiles, read: _Read, before: dict[str, Any] | None) -> Members | str:
    """The fines of each delivered patron line (aggregate = "patron"; docs/restore-roll-forward.md,
    "One line per patron"), from the replaced store's record of the export: per line of the
    files (in order), its members.  A gap message when that record is missing or does not hold
    exactly the files' lines (the same texts with the same sums); never a guess from the Emplid
    and the amount."""
    shown = ", ".join(sorted(read.names.values()))
    captured = ((before or {}).get("patronLines") or {}).get(str(files.export_id))
    if not captured:
        return (f"export {files.export_id} ({shown}) was sent after the backup with one line per patron "
                f"(profile {read.profile.label}): its lines name no fine, and neither the backup nor the store "
                "before the restore records which fines they hold")
    groups: dict[str, list[dict[str, str]]] = {}
    for m in captured:
        groups.setdefault(m["group"], []).append(m)
    pool: dict[tuple[str, Decimal], list[list[dict[str, str]]]] = {}
    for group in groups.values():
        texts = {m["line"] for m in group}
        if len(texts) != 1 or any(m["profile"] != read.profile.label for m in group):
            return f"export {files.export_id} ({shown}): the store before the restore has an inconsistent record of it"
        total = sum((Decimal(m["amt"]) for m in group), ZERO)
        pool.setdefault((group[0]["line"], total), []).append(group)
    out: Members = []
    for kind in sorted(read.lines):
        for text, value in zip(read.lines[kind], read.values[kind]):
            candidates = pool.get((text, value.amount))
            if not candidates:
                return (f"export {files.export_id} ({shown}) holds the patron line {text!r}, which the store before "
                        "the restore does not record for it with that amount")
            out.append(candidates.pop())
    if any(pool.values()):
        return (f"export {files.export_id} ({shown}): the store before the restore records patron lines for it "
                "that its files do not hold")
    return out


def _record_lines(ctx: JobContext, files: _ExportFiles, export: dict | None, read: _Read,
                  members: Members | None, summary: Summary) -> str | None:
    store = ctx.store
    shown = ", ".join(sorted(read.names.values()))
    if export is not None and export["state"] != RECORDING:
        # the backup has this export, not yet sent: its lines must be the files' lines
        from bursar.jobs.export import ordered_lines

        rows = ordered_lines(ctx, export["id"])
        if read.profile.split:
            expected = {1: [t for t, a in rows if a > 0], 2: [t for t, a in rows if a < 0]}
        else:
            expected = {1: [t for t, _ in rows], 2: []}
        if expected != {k: read.lines.get(k, []) for k in (1, 2)}:
            return f"export {files.export_id} in the backup has other lines than its files {shown}"
        if files.delivered:
            _mark_sent(ctx, export["id"], files, read)
            summary.note(f"roll-forward: export {files.export_id} ({shown}) was sent after the backup: "
                         "recorded as sent")
        return None
    stamp = ctx.utc_now
    if export is None:
        store.raise_ids("burs_exports", files.export_id - 1)
        # never "building": the export job would attach new lines to it
        new_id = store.insert("burs_exports", {
            "state": RECORDING, "exportDate": files.export_date, "chargesFilename": None,
            "reversalsFilename": None, "numSent": None, "sent_to_bursar": None, "created": stamp, "updated": stamp})
        if new_id != files.export_id:
            store.delete_where("burs_exports", {"id": new_id})
            return f"export {files.export_id} ({shown}) is in the files, but its id was already used in the store"
    else:  # a roll-forward stopped half-way (MongoDB has no transactions): record it again
        new_id = export["id"]
        store.delete_where("burs_sent_lines", {"bursExport": new_id})
    counted = 0
    position = 0
    for kind in sorted(read.lines):
        for number, (text, value) in enumerate(zip(read.lines[kind], read.values[kind]), 1):
            # a patron's line: one row per fine summed into it
            parts = [(m["ref"], Decimal(m["amt"]), m["group"]) for m in members[position]] \
                if members is not None else [(value.fine_id, value.amount, None)]
            position += 1
            for ref, amount, group in parts:
                store.insert("burs_sent_lines", {
                    "bursExport": new_id, "fileName": read.names[kind], "lineNumber": number, "line": text,
                    "profile": read.profile.label, "bursFineId": ref, "amt": amount, "lineGroup": group,
                    "transBurs": None, "created": stamp, "updated": stamp})
                counted += 1
    _mark_sent(ctx, new_id, files, read)  # only delivered exports get here
    summed = f" ({counted} ledger lines in those, one line per patron and account)" if members is not None else ""
    summary.note(f"roll-forward: export {new_id} ({shown}) was sent after the backup: recorded as sent; "
                 f"its {len(read.all_values())} lines count as billed{summed}")
    return None


def _set_files(ctx: JobContext, export_id: int, read: _Read, extra: dict[str, Any]) -> None:
    amounts = [v.amount for v in read.all_values()]
    ctx.store.update("burs_exports", export_id, {
        "chargesFilename": read.names.get(1), "reversalsFilename": read.names.get(2),
        "numSent": len(amounts), "numCharges": sum(a > 0 for a in amounts),
        "numReversals": sum(a < 0 for a in amounts), "chargesTotal": sum((a for a in amounts if a > 0), ZERO),
        "reversalsTotal": sum((-a for a in amounts if a < 0), ZERO), "updated": ctx.utc_now, **extra})


def _mark_sent(ctx: JobContext, export_id: int, files: _ExportFiles, read: _Read) -> None:
    when = max(datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in files.paths.values())
    sent = when.replace(tzinfo=None, microsecond=0)
    _set_files(ctx, export_id, read, {
        "state": "sent", "sent_to_bursar": sent,
        "chargesSent": sent if 1 in read.names else None, "reversalsSent": sent if 2 in read.names else None})


def _unaccounted(ctx: JobContext, before: dict[str, Any] | None, exports: dict[int, dict],
                 evidence: dict[int, _ExportFiles], server: dict[str, str | None] | None,
                 profiles: list[Profile]) -> list[str]:
    """What the evidence cannot account for."""
    gaps = []
    archive = ctx.settings.exports_dir / ARCHIVE
    ours_sent = [e for e in exports.values() if e["state"] == "sent"]
    if ours_sent:
        newest = max(ours_sent, key=lambda e: e["id"])
        if newest["id"] not in evidence:
            gaps.append(f"export {newest['id']}, the newest the backup knows as sent, is not in {archive}: the "
                        "archive of sent files is missing or incomplete, so exports sent after the backup "
                        "cannot be found")
    for key, names in sorted(((before or {}).get("sent") or {}).items(), key=lambda kv: int(kv[0])):
        export_id = int(key)
        if export_id not in evidence and exports.get(export_id, {}).get("state") != "sent":
            gaps.append(f"export {export_id} ({', '.join(names)}) was sent before the restore, but its files are "
                        f"not in {archive}")
    for name in sorted(server or {}):
        ids = pr.export_ids(profiles, ctx.settings.file_prefix, [name])
        if ids and not any(i in evidence or i in exports for i in ids):
            gaps.append(f"the Bursar's server has {name}, which neither the restored store nor {archive} knows")
    return gaps


# -- the gate --------------------------------------------------------------------------------
def check(ctx: JobContext, *, accept: bool) -> None:
    """Before a command bills or pays: refuse while a restore left a gap.  The evidence is
    looked at again first, so putting the archive back is enough."""
    state = ctx.store.get_meta(KEY)
    if not state or state.get("state") in ("done", "accepted"):
        return
    scratch = Summary("roll-forward")
    gaps = roll_forward(ctx, scratch)
    for note in scratch.notes:
        log.info("%s", note)
    if not gaps:
        return
    if accept:
        log.warning("restore gap accepted with %s: %s", ACCEPT_FLAG, "; ".join(gaps))
        state = ctx.store.get_meta(KEY)
        ctx.store.raise_ids("burs_exports", int(state.get("topExportId") or 0))
        ctx.store.set_meta(KEY, {**state, "state": "accepted"}, now=ctx.utc_now)
        return
    raise RestoreGapError(
        f"after the restore of {state.get('backup')}, pyBursar cannot account for: {'; '.join(gaps)}. Nothing "
        f"was sent or paid. Put the missing files back in {ctx.settings.exports_dir / ARCHIVE} and run again, or "
        f"run again with {ACCEPT_FLAG} to go on (what is missing may then be billed again)")


# -- matching delivered lines to the ledger --------------------------------------------------
def settle_sent_lines(ctx: JobContext, summary: Summary) -> None:
    """Attach every delivered line whose fine is in the store again to that fine's ledger, so
    the Bursar side counts it and nothing exports it again.  Each write is idempotent (the
    ledger line carries `sentLine`), so a crash anywhere is repaired by running again."""
    store = ctx.store
    stamp = ctx.utc_now
    labels: Labels | None = None
    for evidence_id in [e["id"] for e in store.find("burs_sent_lines", {"transBurs": None})]:
        ev = store.get("burs_sent_lines", evidence_id)
        if ev is None:
            continue
        md = store.find_one("fine_mds", {"bursFineId": ev["bursFineId"]})
        if md is None:
            continue  # its fine is not imported yet: matched by a later run
        tb = store.find_one("trans_burs", {"sentLine": ev["id"]}) or _pending_twin(store, md, ev)
        if tb is None:
            line = ledger.BursLine("Fine" if ev["amt"] > 0 else "Waive", ev["amt"], ev["bursFineId"])
            tb_id = store.insert("trans_burs", trans_burs_doc(md["fine"], line, stamp, export=False,
                                                              sent_line=ev["id"]))
        else:
            tb_id = tb["id"]
            store.update("trans_burs", tb_id, {"newBursExp": False, "sentLine": ev["id"], "updated": stamp})
        if store.find_one("burs_export_trans", {"transBurs": tb_id}) is None:
            store.insert("burs_export_trans", {"transBurs": tb_id, "bursExport": ev["bursExport"],
                                               "bursFineMd": md["id"], "line": ev["line"],
                                               "profile": ev.get("profile") or LEGACY_LABEL,
                                               "lineGroup": ev.get("lineGroup"), "created": stamp, "updated": stamp})
        if ev["amt"] > 0:  # a charge sets the part's dates, as exporting it did
            labels = labels or Labels(ctx)
            dates = _charge_dates(ctx, labels, ev)
            if isinstance(dates, str):
                summary.flag(f"Bursar reference {ev['bursFineId']}", dates)
            else:
                billing, due, term = dates
                store.update("fine_mds", md["id"], {"billingDate": midnight(billing), "fineDueDate": midnight(due),
                                                    "termCode": term, "updated": stamp})
        store.update("burs_sent_lines", ev["id"], {"transBurs": tb_id, "updated": stamp})
        summary.count("lines the Bursar already had (found after a restore)", amount=abs(ev["amt"]))


def _charge_dates(ctx: JobContext, labels: Labels, ev: dict) -> tuple[date, date, str] | str:
    """(billing date, due date, term) of a delivered charge line: what the line shows, the rest
    from the export's date and the rules of the profile that wrote it; a message when the line
    cannot be read back."""
    try:
        p, values = labels.parse(ev["line"], ev.get("profile"), credit=False, summed=bool(ev.get("lineGroup")))
    except BadLine as exc:
        return f"the delivered line {ev['fileName']}:{ev['lineNumber']} cannot be read back ({exc}); its dates " \
               "and term are not set"
    billing = values.billing_date
    if billing is None:
        export = ctx.store.get("burs_exports", ev["bursExport"]) or {}
        try:
            billing = datetime.strptime(str(export.get("exportDate")), "%Y%m%d").date()
        except ValueError:
            billing = ctx.today
    due = values.due_date or pf.profile_due_date(p, billing, ctx.settings.due_day)
    return billing, due, values.term or pf.profile_term(p, billing)


def _pending_twin(store: Store, md: dict, ev: dict) -> dict | None:
    """A ledger line not yet exported with the same part and amount: the line this delivered
    line was made from (the backup was taken before it was sent)."""
    for tb in store.find("trans_burs", {"fine": md["fine"], "bursFineId": ev["bursFineId"], "newBursExp": True}):
        if tb["amt"] == ev["amt"] and tb["sentLine"] is None:
            return tb
    return None
